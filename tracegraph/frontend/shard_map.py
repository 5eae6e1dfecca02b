"""`shard_map` and the collectives of its bodies, with JAX's names and signatures:
`psum`, `pmean`, `pmax`, `pmin`, `all_gather`, `psum_scatter`, `ppermute`, `all_to_all`,
`axis_index`.

`shard_map(f, mesh=, in_specs=, out_specs=)` traces ``f`` into a subgraph on the
per-shard (local) types of its arguments, in every mode (tg.jit, the interpreter and
define-by-run alike: a body's values differ per shard, so Python cannot branch on
them), and binds one ``shard_map`` node holding it, the mesh and the specs (see
`tracegraph.ops.collectives`). Tensors the body uses from outside become operands
replicated over the mesh. While a body is traced its mesh axes are bound (`bound_axes`);
a collective over an axis no enclosing `shard_map` binds is a `tg.ShapeError` naming the
op, the axis and the line.

Example::

    mesh = jax.make_mesh((8,), ("data",))

    @functools.partial(tg.shard_map, mesh=mesh, in_specs=(P(), P("data")), out_specs=P())
    def loss(w, x):
        return tg.psum(tg.sum((x @ w) ** 2), "data")
"""

from __future__ import annotations

import contextvars
import functools

import jax
import numpy as np
from jax.sharding import PartitionSpec

from ..errors import Error, ShapeError, user_location_long
from ..core import Tensor, bind, current_trace, type_of
from ..ops.collectives import local_type
from .control_flow import _Body, _close

# mesh axis name -> size, for the axes the shard_map bodies being traced bind
_BOUND: contextvars.ContextVar[dict] = contextvars.ContextVar("tracegraph_mesh_axes", default={})


def bound_axes() -> dict:
    """The mesh axes (name -> size) that enclosing `shard_map` bodies bind here."""
    return dict(_BOUND.get())


def _is_tensor(x):
    return isinstance(x, Tensor)


def _flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_tensor)


def _mesh_axes(mesh) -> tuple[tuple, tuple]:
    """(axis names, sizes) of a `jax.sharding.Mesh`, an ``AbstractMesh`` or a dict."""
    shape = dict(mesh) if isinstance(mesh, dict) else getattr(mesh, "shape", None)
    if not shape:
        raise Error(
            f"shard_map needs a mesh (jax.make_mesh((n,), ('data',)) or a dict of axis "
            f"sizes), got {mesh!r:.60}"
        )
    names = tuple(str(n) for n in shape)
    return names, tuple(int(shape[n]) for n in shape)


def _spec(spec, ndim: int, what: str, who: str = "shard_map") -> tuple:
    """A PartitionSpec as the IR's tuple of ``ndim`` entries (missing trailing entries
    are None, as in JAX)."""
    if spec is None:
        raise Error(f"{who} {what}: None (a static argument) is not supported")
    entries = tuple(spec)
    if len(entries) > ndim:
        raise ShapeError(f"{who} {what} {spec} has {len(entries)} entries for a value of rank {ndim}")
    if any(e is PartitionSpec.UNCONSTRAINED for e in entries):
        raise Error(f"{who} {what} {spec}: P.UNCONSTRAINED is not supported")
    return tuple(None if e is None else e if isinstance(e, str) else tuple(e) for e in entries) + (
        None,
    ) * (ndim - len(entries))


def _broadcast_specs(specs, tree, what, who: str = "shard_map") -> list:
    """One spec (or sharding) per leaf of ``tree``: ``specs`` is a prefix of it (JAX's rule)."""
    out = []

    def leaf(s):
        return s is None or isinstance(s, (PartitionSpec, jax.sharding.Sharding))

    def take(spec, sub):
        out.extend([spec] * len(_flatten(sub)[0]))

    try:
        jax.tree_util.tree_map(take, specs, tree, is_leaf=leaf)
    except ValueError as e:
        raise Error(f"{who} {what} is not a prefix of the values' structure: {e}") from None
    return out


def shard_map(f=None, /, *, mesh, in_specs, out_specs, check_vma: bool = True, axis_names=frozenset()):
    """``jax.shard_map``: ``f`` maps shards of its arguments to shards of its results over
    the devices of ``mesh``; its collectives (`psum`, `all_gather` ...) communicate along
    the mesh's named axes. Also a decorator (``functools.partial(tg.shard_map, mesh=...)``).

    Arguments:
      mesh: a ``jax.sharding.Mesh`` (``jax.make_mesh``); only its axis names and sizes are
        recorded: the node runs on the first devices of ``jax.devices()``.
      in_specs, out_specs: ``PartitionSpec`` pytrees, prefixes of the arguments and results.
      check_vma: JAX's replication checks (and the gradients they give, see
        `tracegraph.ops.collectives`).

    Example::

        f = tg.shard_map(lambda x: tg.psum(x, "data"), mesh=mesh, in_specs=P("data"),
                         out_specs=P())
    """
    if f is None:
        return functools.partial(
            shard_map, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma,
            axis_names=axis_names,
        )
    names, sizes = _mesh_axes(mesh)
    if axis_names and set(axis_names) != set(names):
        raise Error("shard_map axis_names (manual over some mesh axes only) is not supported")

    @functools.wraps(f)
    def mapped(*args):
        b = current_trace()
        leaves, treedef = _flatten(args)
        ins = [b.lift(x) for x in leaves]
        given = _broadcast_specs(in_specs, jax.tree_util.tree_unflatten(treedef, ins), "in_specs")
        specs = [_spec(s, type_of(t).ndim, "in_specs") for s, t in zip(given, ins)]
        mesh_sizes = dict(zip(names, sizes))
        for s in specs:
            unknown = {a for e in s if e for a in ((e,) if isinstance(e, str) else e)} - set(names)
            if unknown:
                raise ShapeError(
                    f"shard_map in_specs name axes {sorted(unknown)} not in the mesh {mesh_sizes}"
                )
        local = [local_type(type_of(t), s, mesh_sizes) for t, s in zip(ins, specs)]
        token = _BOUND.set({**_BOUND.get(), **mesh_sizes})
        try:
            body = _Body(lambda *xs: f(*jax.tree_util.tree_unflatten(treedef, xs)), local, b, "body")
        finally:
            _BOUND.reset(token)
        (graph,), consts = _close([body])
        out_tree = jax.tree_util.tree_unflatten(body.out_treedef, body.outs)
        outs = [
            _spec(s, t.type.ndim, "out_specs")
            for s, t in zip(_broadcast_specs(out_specs, out_tree, "out_specs"), body.outs)
        ]
        specs += [(None,) * type_of(c).ndim for c in consts]  # closed-over values: replicated
        res = bind(
            "shard_map", *ins, *consts, body=graph, mesh_axes=names, mesh_shape=sizes,
            in_specs=tuple(specs), out_specs=tuple(outs), check_vma=bool(check_vma),
        )
        return jax.tree_util.tree_unflatten(body.out_treedef, list(res))

    return mapped


# -- collectives ------------------------------------------------------------------------------


def _axes(axis_name, op, depth=3) -> tuple[tuple, int]:
    """The axes tuple of ``axis_name`` and the number of shards along them; ShapeError
    for an axis no enclosing shard_map binds."""
    axes = tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)
    bound = _BOUND.get()
    for a in axes:
        if not isinstance(a, str):
            raise ShapeError(f"{op}: mesh axis names are strings, got {a!r:.40}")
        if a not in bound:
            where = f"inside a shard_map over {sorted(bound)}" if bound else "outside tg.shard_map"
            raise ShapeError(
                f"{op} over mesh axis {a!r} {where}: no enclosing shard_map binds {a!r} "
                f"(at {user_location_long(depth)})"
            )
    return axes, int(np.prod([bound[a] for a in axes], dtype=np.int64))


def _no_groups(op, axis_index_groups):
    if axis_index_groups is not None:
        raise Error(f"{op}: axis_index_groups is not supported")


def _each(fn, x):
    # not jax.tree_util.tree_map: nodes record the first frame outside tracegraph
    leaves, treedef = _flatten(x)
    return jax.tree_util.tree_unflatten(treedef, [fn(v) for v in leaves])


def with_sharding_constraint(x, shardings):
    """``x`` (a pytree) placed as ``shardings`` says, JAX's function of that name: a
    ``NamedSharding`` (a mesh and a spec) or a ``PartitionSpec`` (over the mesh set
    around the call: ``jax.sharding.use_mesh``), one for all leaves or a pytree prefix
    of ``x``. An IR op (``sharding_constraint``): the printed graph shows the placement
    on the output type (``f32[8,4]{"data", none}``).

    Example::

        mesh = jax.make_mesh((8,), ("data",))
        h = tg.with_sharding_constraint(h, NamedSharding(mesh, P("data", None)))
    """
    leaves, tree = _flatten(x)
    per_leaf = _broadcast_specs(shardings, x, "with_sharding_constraint")
    out = []
    for leaf, s in zip(leaves, per_leaf):
        if isinstance(s, jax.sharding.NamedSharding):
            names, shape = _mesh_axes(s.mesh)
            spec = s.spec
        elif isinstance(s, PartitionSpec):
            names, shape, spec = (), (), s
        else:
            raise ShapeError(
                f"with_sharding_constraint takes a NamedSharding or a PartitionSpec, got "
                f"{type(s).__name__} (at {user_location_long(2)})"
            )
        ndim = len(getattr(leaf, "shape", np.shape(leaf)))
        out.append(bind("sharding_constraint", leaf, spec=_spec(spec, ndim, "with_sharding_constraint"),
                        mesh_axes=names, mesh_shape=shape))
    return jax.tree_util.tree_unflatten(tree, out)


def psum(x, axis_name, *, axis_index_groups=None):
    """``jax.lax.psum``: the sum of ``x`` (a pytree) over the shards along ``axis_name``."""
    _no_groups("psum", axis_index_groups)
    axes, _ = _axes(axis_name, "psum")
    return _each(lambda v: bind("psum", v, axes=axes), x)


def pmean(x, axis_name, *, axis_index_groups=None):
    """``jax.lax.pmean``: the mean of ``x`` over the shards along ``axis_name``."""
    _no_groups("pmean", axis_index_groups)
    axes, n = _axes(axis_name, "pmean")
    return _each(lambda v: bind("pmean", v, axes=axes, axis_size=n), x)


def pmax(x, axis_name, *, axis_index_groups=None):
    """``jax.lax.pmax``: the elementwise maximum of ``x`` over the shards."""
    _no_groups("pmax", axis_index_groups)
    axes, _ = _axes(axis_name, "pmax")
    return _each(lambda v: bind("pmax", v, axes=axes), x)


def pmin(x, axis_name, *, axis_index_groups=None):
    """``jax.lax.pmin``: the elementwise minimum of ``x`` over the shards."""
    _no_groups("pmin", axis_index_groups)
    axes, _ = _axes(axis_name, "pmin")
    return _each(lambda v: bind("pmin", v, axes=axes), x)


def all_gather(x, axis_name, *, axis_index_groups=None, axis=0, tiled=False):
    """``jax.lax.all_gather``: every shard's ``x``, stacked on a new axis ``axis`` (or,
    ``tiled``, concatenated along ``axis``)."""
    _no_groups("all_gather", axis_index_groups)
    axes, n = _axes(axis_name, "all_gather")
    return _each(
        lambda v: bind("all_gather", v, axes=axes, axis=int(axis), tiled=bool(tiled), axis_size=n), x
    )


def psum_scatter(x, axis_name, *, scatter_dimension=0, axis_index_groups=None, tiled=False):
    """``jax.lax.psum_scatter``: the psum of ``x``, each shard keeping its block of
    ``scatter_dimension``."""
    _no_groups("psum_scatter", axis_index_groups)
    axes, n = _axes(axis_name, "psum_scatter")
    return _each(
        lambda v: bind("psum_scatter", v, axes=axes, scatter_dimension=int(scatter_dimension),
                       tiled=bool(tiled), axis_size=n),
        x,
    )


def ppermute(x, axis_name, perm):
    """``jax.lax.ppermute``: shard ``src``'s ``x`` goes to shard ``dst`` for each pair of
    ``perm``; shards nothing is sent to get zeros."""
    axes, _ = _axes(axis_name, "ppermute")
    pairs = tuple((int(s), int(d)) for s, d in perm)
    return _each(lambda v: bind("ppermute", v, axes=axes, perm=pairs), x)


def all_to_all(x, axis_name, split_axis, concat_axis, *, axis_index_groups=None, tiled=False):
    """``jax.lax.all_to_all``: ``split_axis`` cut into one block per shard, block ``i``
    sent to shard ``i``, the blocks received concatenated along ``concat_axis`` (not
    ``tiled``: ``x.shape[split_axis]`` is the number of shards, that axis is removed and
    a new one inserted at ``concat_axis``)."""
    _no_groups("all_to_all", axis_index_groups)
    axes, n = _axes(axis_name, "all_to_all")

    def one(v):
        s, c = int(split_axis), int(concat_axis)
        ndim = type_of(v).ndim
        s, c = s % ndim if ndim else s, c % ndim if ndim else c
        if not tiled:
            if type_of(v).shape[s] != n:
                raise ShapeError(
                    f"all_to_all: x.shape[split_axis] is {type_of(v).shape[s]}, the axes have {n} shards"
                )
            if s < c:
                c += 1
                v = bind("expand_dims", v, axes=(c,))
            elif c < s:
                v = bind("expand_dims", v, axes=(c,))
                s += 1
        out = bind("all_to_all", v, axes=axes, split_axis=s, concat_axis=c, axis_size=n)
        if not tiled and s != c:
            out = bind("squeeze", out, axes=(s,))
        return out

    return _each(one, x)


def axis_index(axis_name):
    """``jax.lax.axis_index``: this shard's index along ``axis_name`` (an int32 scalar)."""
    axes, _ = _axes(axis_name, "axis_index")
    return bind("axis_index", axes=axes)


from ..errors import public_functions as _public_functions

_public_functions(globals(), exclude=("bound_axes",))
