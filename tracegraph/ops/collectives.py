"""Collectives over named mesh axes (``psum``, ``pmean``, ``pmax``, ``pmin``,
``all_gather``, ``psum_scatter``, ``ppermute``, ``all_to_all``, ``axis_index``,
``pvary``) and the ``shard_map`` node that binds those axes: JAX's names, signatures and
meanings.

Each collective names its mesh axes in an attribute (``axes=("data",)``); its
implementation is the ``jax.lax`` collective, valid only where JAX binds the axis: while
JAX traces the body of the ``shard_map`` node's ``jax.shard_map`` (the front end refuses
a collective outside `tg.shard_map` with a `tg.ShapeError` naming the op, the axis and
the user's line; `_unbound` turns JAX's own error into one for graphs built otherwise).

``shard_map`` holds its body as a subgraph attribute on the per-shard (local) types, with
the mesh (``mesh_axes``, ``mesh_shape``), ``in_specs`` / ``out_specs`` (partition specs,
validated as `TensorType` shardings are) and ``check_vma``. Its implementation builds a
``jax.sharding.Mesh`` of the first devices of ``jax.devices()`` and calls
``jax.shard_map`` on a function evaluating the body (jitted, cached on the body). It has
no ``interpret`` facet: a body cannot run op by op per device, so the interpreter (and
define-by-run) run the whole node through the implementation, as `tg.jit` does.

NOTE: emulating the shards on one device with ``jax.vmap(..., axis_name=...)`` was
considered and not taken: JAX's vmap rules of the collectives are not shard_map's in
every case (``ppermute``'s batcher requires a full permutation, where shard_map fills
the shards no pair sends to with zeros; ``pvary`` has no meaning outside shard_map), and
under vmap the interpreter's instruments would see tracers, not values, so the
interpreter would not be op by op either. One semantics, JAX's shard_map, in every mode.

NOTE (reverse mode, as JAX's ``check_vma=True``): a value in a body is *varying* over
the mesh axes its shards differ along (an input over the axes its in_spec names,
``axis_index`` over its axis) and *invariant* over the rest. Where an invariant value
meets a varying one, JAX inserts ``pvary`` (the identity; its transpose is ``psum``);
``psum``'s transpose is ``pvary``. So the gradient of a replicated parameter used on a
sharded batch is summed over the batch axis, exactly once. The VJP of ``shard_map``
makes those implicit ``pvary``s explicit nodes (`with_pvary`: a forward sweep over the
body's varying axes), then differentiates the body with `vjp_graph` and binds a
``shard_map`` of that backward graph. ``check_vma=False`` (JAX's ``psum`` transposing
to ``psum``) has no VJP here and says so.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import current_trace, eval_graph, evaluate_named, trace_graph, vjp_graph
from ..errors import Error
from ..ir.types import TensorType, is_inexact
from .defop import (
    NOT_DIFFERENTIABLE, Attr, Sample, ShapeError, bind, defop, first_dtype, first_weak,
    fixed_dtype, never_weak, no_sharding, normalize_axis,
)
from .samples import arr

_AXES = Attr("names")


def _check_axes(axes, op):
    if not axes:
        raise ShapeError(f"{op} needs at least one mesh axis name")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op} names a mesh axis twice: {axes}")


def _unbound(op, axes, fn):
    """``fn()``, with JAX's error for an axis no shard_map binds as a `tg.ShapeError`."""
    try:
        return fn()
    except NameError as e:
        raise ShapeError(
            f"{op} over mesh axis {', '.join(map(repr, axes))} outside tg.shard_map: no "
            f"enclosing shard_map binds it ({e})"
        ) from None


def _missing_vma(x, axes):
    """The axes of ``axes`` that ``x`` does not vary over yet (JAX's check_vma types)."""
    varying = getattr(getattr(jax.typeof(x), "mat", None), "varying", None)
    return tuple(axes) if varying is None else tuple(a for a in axes if a not in varying)


# -- all-reduces ------------------------------------------------------------------------


def _reduce_shape(x, *, axes, **_):
    _check_axes(axes, "collective")
    return x.shape


def _sum_dtype(x, **_):
    return np.dtype(np.int32) if x.dtype == np.bool_ else x.dtype  # as lax.psum


def _psum_vjp(ct, x, *, out, axes):
    return [bind("pvary", ct, axes=axes)]  # psum_invariant's transpose (check_vma)


psum = defop(
    "psum",
    shape=_reduce_shape,
    dtype=_sum_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, *, axes: _unbound("psum", axes, lambda: lax.psum(x, axes)),
    attrs={"axes": _AXES},
    vjp=_psum_vjp,
    doc="psum(x, axes=...): the sum of x over the shards of the named mesh axes "
    "(jax.lax.psum); valid inside shard_map.",
)


def _pmean_vjp(ct, x, *, out, axes, axis_size):
    return [bind("pvary", ct, axes=axes) / axis_size]


def _pmean_shape(x, *, axes, axis_size):
    if axis_size < 1:
        raise ShapeError(f"pmean over axes of size {axis_size}")
    return _reduce_shape(x, axes=axes)


pmean = defop(
    "pmean",
    shape=_pmean_shape,
    dtype=lambda x, **_: x.dtype if is_inexact(x.dtype) else np.dtype(np.float32),
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, *, axes, axis_size: _unbound("pmean", axes, lambda: lax.pmean(x, axes)),
    attrs={"axes": _AXES, "axis_size": Attr("int")},
    vjp=_pmean_vjp,
    doc="pmean(x, axes=..., axis_size=n): the mean of x over the shards of the named mesh "
    "axes, n shards in all (jax.lax.pmean).",
)


def _pminmax_vjp():
    def vjp(ct, x, *, out, axes):
        # JAX defines no transpose for pmax/pmin: the gradient goes to the shards that
        # hold the extreme (split between ties), as jnp.max's does
        hit = bind("astype", bind("eq", x, out), dtype=x.dtype)
        count = bind("psum", hit, axes=axes)
        return [bind("pvary", ct, axes=axes) * hit / count]

    return vjp


pmax = defop(
    "pmax",
    shape=_reduce_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, *, axes: _unbound("pmax", axes, lambda: lax.pmax(x, axes)),
    attrs={"axes": _AXES},
    vjp=_pminmax_vjp(),
    doc="pmax(x, axes=...): the elementwise maximum over the shards (jax.lax.pmax).",
)

pmin = defop(
    "pmin",
    shape=_reduce_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, *, axes: _unbound("pmin", axes, lambda: lax.pmin(x, axes)),
    attrs={"axes": _AXES},
    vjp=_pminmax_vjp(),
    doc="pmin(x, axes=...): the elementwise minimum over the shards (jax.lax.pmin).",
)


def _pvary_impl(x, *, axes):
    missing = _missing_vma(x, axes)
    return lax.pcast(x, missing, to="varying") if missing else x


pvary = defop(
    "pvary",
    shape=_reduce_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=_pvary_impl,
    attrs={"axes": _AXES},
    vjp=lambda ct, x, *, out, axes: [bind("psum", ct, axes=axes)],
    doc="pvary(x, axes=...): x, marked as varying over the named mesh axes (the "
    "identity; jax.lax.pcast(x, axes, to='varying')). Its transpose is psum.",
)


# -- gathers, scatters, permutations -----------------------------------------------------


def _gather_shape(x, *, axes, axis, tiled, axis_size):
    _check_axes(axes, "all_gather")
    if tiled:
        a = normalize_axis(axis, x.ndim)
        return x.shape[:a] + (x.shape[a] * axis_size,) + x.shape[a + 1 :]
    a = normalize_axis(axis, x.ndim + 1)
    return x.shape[:a] + (axis_size,) + x.shape[a:]


def _gather_impl(x, *, axes, axis, tiled, axis_size):
    return _unbound("all_gather", axes, lambda: lax.all_gather(x, axes, axis=axis, tiled=tiled))


def _gather_vjp(ct, x, *, out, axes, axis, tiled, axis_size):
    dim = normalize_axis(axis, x.ndim if tiled else x.ndim + 1)
    return [bind("psum_scatter", ct, axes=axes, scatter_dimension=dim, tiled=tiled, axis_size=axis_size)]


all_gather = defop(
    "all_gather",
    shape=_gather_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=_gather_impl,
    attrs={"axes": _AXES, "axis": Attr("int", 0), "tiled": Attr("bool", False), "axis_size": Attr("int")},
    vjp=_gather_vjp,
    doc="all_gather(x, axes=..., axis=0, tiled=False, axis_size=n): every shard's x, "
    "stacked on a new axis (tiled: concatenated along axis) (jax.lax.all_gather).",
)


def _scatter_shape(x, *, axes, scatter_dimension, tiled, axis_size):
    _check_axes(axes, "psum_scatter")
    d = normalize_axis(scatter_dimension, x.ndim)
    if tiled:
        if x.shape[d] % axis_size:
            raise ShapeError(
                f"psum_scatter: dimension {d} of size {x.shape[d]} does not split into {axis_size} shards"
            )
        return x.shape[:d] + (x.shape[d] // axis_size,) + x.shape[d + 1 :]
    if x.shape[d] != axis_size:
        raise ShapeError(f"psum_scatter: dimension {d} has size {x.shape[d]}, the axes {axis_size} shards")
    return x.shape[:d] + x.shape[d + 1 :]


def _scatter_impl(x, *, axes, scatter_dimension, tiled, axis_size):
    return _unbound(
        "psum_scatter", axes,
        lambda: lax.psum_scatter(x, axes, scatter_dimension=scatter_dimension, tiled=tiled),
    )


def _scatter_vjp(ct, x, *, out, axes, scatter_dimension, tiled, axis_size):
    d = normalize_axis(scatter_dimension, x.ndim)
    return [bind("all_gather", ct, axes=axes, axis=d, tiled=tiled, axis_size=axis_size)]


psum_scatter = defop(
    "psum_scatter",
    shape=_scatter_shape,
    dtype=_sum_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=_scatter_impl,
    attrs={
        "axes": _AXES, "scatter_dimension": Attr("int", 0), "tiled": Attr("bool", False),
        "axis_size": Attr("int"),
    },
    vjp=_scatter_vjp,
    doc="psum_scatter(x, axes=..., scatter_dimension=0, tiled=False, axis_size=n): the "
    "psum of x, each shard keeping its block of scatter_dimension (jax.lax.psum_scatter).",
)


def _permute_shape(x, *, axes, perm):
    _check_axes(axes, "ppermute")
    srcs, dsts = [p[0] for p in perm], [p[1] for p in perm]
    if any(len(p) != 2 for p in perm) or len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
        raise ShapeError(f"ppermute perm must be unique (source, destination) pairs, got {perm}")
    return x.shape


ppermute = defop(
    "ppermute",
    shape=_permute_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, *, axes, perm: _unbound("ppermute", axes, lambda: lax.ppermute(x, axes, perm)),
    attrs={"axes": _AXES, "perm": Attr("int_pairs")},
    vjp=lambda ct, x, *, out, axes, perm: [
        bind("ppermute", ct, axes=axes, perm=tuple((d, s) for s, d in perm))
    ],
    doc="ppermute(x, axes=..., perm=((src, dst), ...)): shard src's x sent to shard dst; "
    "shards no pair sends to get zeros (jax.lax.ppermute).",
)


def _all_to_all_shape(x, *, axes, split_axis, concat_axis, axis_size):
    _check_axes(axes, "all_to_all")
    s, c = normalize_axis(split_axis, x.ndim), normalize_axis(concat_axis, x.ndim)
    if x.shape[s] % axis_size:
        raise ShapeError(
            f"all_to_all: split_axis {s} of size {x.shape[s]} does not split into {axis_size} shards"
        )
    shape = list(x.shape)
    shape[s] //= axis_size
    shape[c] *= axis_size
    return tuple(shape)


def _all_to_all_impl(x, *, axes, split_axis, concat_axis, axis_size):
    return _unbound(
        "all_to_all", axes,
        lambda: lax.all_to_all(x, axes, split_axis, concat_axis, tiled=True),
    )


all_to_all = defop(
    "all_to_all",
    shape=_all_to_all_shape,
    dtype=first_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_all_to_all_impl,
    attrs={"axes": _AXES, "split_axis": Attr("int"), "concat_axis": Attr("int"), "axis_size": Attr("int")},
    vjp=lambda ct, x, *, out, axes, split_axis, concat_axis, axis_size: [
        bind("all_to_all", ct, axes=axes, split_axis=concat_axis, concat_axis=split_axis, axis_size=axis_size)
    ],
    doc="all_to_all(x, axes=..., split_axis=s, concat_axis=c, axis_size=n): split_axis cut "
    "into n blocks, block i sent to shard i, the blocks received concatenated along "
    "concat_axis (jax.lax.all_to_all's primitive: tiled).",
)


def _axis_index_shape(*, axes):
    _check_axes(axes, "axis_index")
    return ()


axis_index = defop(
    "axis_index",
    shape=_axis_index_shape,
    dtype=fixed_dtype(np.int32),
    weak=never_weak,
    sharding=no_sharding,
    impl=lambda *, axes: _unbound(
        "axis_index", axes, lambda: lax.axis_index(axes if len(axes) > 1 else axes[0])
    ),
    attrs={"axes": _AXES},
    arity=0,
    vjp=NOT_DIFFERENTIABLE,
    doc="axis_index(axes=...): this shard's index along the named mesh axes (row-major "
    "over several) (jax.lax.axis_index).",
)

# NOTE: a collective runs only where a shard_map binds its axes, so these ops have no
# samples of their own (the op matrix binds each op at top level): shard_map's samples
# hold every one of them in their bodies, and tests/test_shard_map.py checks them on
# eight devices.
COLLECTIVES = (
    "psum", "pmean", "pmax", "pmin", "pvary", "all_gather", "psum_scatter", "ppermute", "all_to_all",
    "axis_index",
)


# -- shard_map --------------------------------------------------------------------------


def _spec_axes(spec) -> set:
    out = set()
    for e in spec:
        if e is not None:
            out.update((e,) if isinstance(e, str) else e)
    return out


def _shards(entry, sizes: dict) -> int:
    """How many shards a spec entry (None, a name, names) splits a dimension into."""
    names = (entry,) if isinstance(entry, str) else entry or ()
    return int(np.prod([sizes[a] for a in names], dtype=np.int64))


def local_type(t: TensorType, spec, sizes: dict) -> TensorType:
    """The per-shard type of a value of type ``t`` split by partition spec ``spec`` over a
    mesh of axis ``sizes``; ShapeError where a dimension does not split evenly."""
    shape = []
    for d, e in zip(t.shape, spec):
        n = _shards(e, sizes)
        if d % n:
            raise ShapeError(f"shard_map: dimension of size {d} does not split into {n} shards ({spec})")
        shape.append(d // n)
    return t.with_(shape=tuple(shape), sharding=None)


def _mesh_sizes(mesh_axes, mesh_shape) -> dict:
    if len(mesh_axes) != len(mesh_shape) or len(set(mesh_axes)) != len(mesh_axes):
        raise ShapeError(f"shard_map mesh: axes {mesh_axes} and shape {mesh_shape} do not match")
    if any(n < 1 for n in mesh_shape):
        raise ShapeError(f"shard_map mesh shape {mesh_shape} has an empty axis")
    return dict(zip(mesh_axes, mesh_shape))


def _check_specs(specs, types, sizes, what):
    if len(specs) != len(types):
        raise ShapeError(f"shard_map has {len(specs)} {what} for {len(types)} values")
    for s, t in zip(specs, types):
        if len(s) != t.ndim:
            raise ShapeError(f"shard_map {what[:-1]} {s} is for rank {len(s)}, the value is {t}")
        unknown = _spec_axes(s) - set(sizes)
        if unknown:
            raise ShapeError(f"shard_map {what[:-1]} {s} names axes {sorted(unknown)} not in the mesh")


def _out_types(*ins, body, mesh_axes, mesh_shape, in_specs, out_specs, check_vma):
    sizes = _mesh_sizes(mesh_axes, mesh_shape)
    _check_specs(in_specs, ins, sizes, "in_specs")
    want = [local_type(t, s, sizes) for t, s in zip(ins, in_specs)]
    got = [v.type for v in body.inputs]
    if got != want:
        raise ShapeError(
            "shard_map body takes (" + ", ".join(map(str, got)) + "), the operands' shards are ("
            + ", ".join(map(str, want)) + ")"
        )
    outs = [v.type for v in body.outputs]
    _check_specs(out_specs, outs, sizes, "out_specs")
    result = []
    for t, s in zip(outs, out_specs):
        shape = [d * _shards(e, sizes) for d, e in zip(t.shape, s)]
        result.append(t.with_(shape=tuple(shape), sharding=None))
    return result


def _field(field):
    return lambda *ins, **attrs: tuple(getattr(t, field) for t in _out_types(*ins, **attrs))


def _jax_spec(spec):
    return jax.sharding.PartitionSpec(*spec)


@functools.lru_cache(maxsize=64)
def make_mesh(mesh_axes: tuple, mesh_shape: tuple):
    """A ``jax.sharding.Mesh`` of the first devices of ``jax.devices()`` (mesh axes of
    the Auto type, as shard_map's classic semantics have them); `tg.Error` if there are
    too few devices."""
    need = int(np.prod(mesh_shape, dtype=np.int64))
    devices = jax.devices()
    if need > len(devices):
        raise Error(
            f"shard_map over a mesh {dict(zip(mesh_axes, mesh_shape))} needs {need} devices, "
            f"{len(devices)} {devices[0].platform} device(s) are available (on CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={need} before JAX is imported)"
        )
    auto = (jax.sharding.AxisType.Auto,) * len(mesh_axes)
    return jax.make_mesh(tuple(mesh_shape), tuple(mesh_axes), axis_types=auto, devices=devices[:need])


def _shard_map_impl(*ins, body, mesh_axes, mesh_shape, in_specs, out_specs, check_vma):
    # one jitted jax.shard_map per body and attributes, cached on the body: the
    # interpreter and define-by-run call it again and again (inside tg.jit it is inlined)
    key = ("shard_map", tuple(mesh_axes), tuple(mesh_shape), in_specs, out_specs, check_vma)
    f = body._cache.get(key)
    if f is None:
        mesh = make_mesh(tuple(mesh_axes), tuple(mesh_shape))

        def run(*xs):
            return tuple(evaluate_named(body, xs))

        f = body._cache[key] = jax.jit(jax.shard_map(
            run, mesh=mesh, in_specs=tuple(map(_jax_spec, in_specs)),
            out_specs=tuple(map(_jax_spec, out_specs)), check_vma=check_vma,
        ))
    return tuple(f(*ins))


# The varying axes of each value (`with_pvary`): how each collective changes them.
_REDUCING = ("psum", "pmean", "pmax", "pmin")
_VARYING = ("all_gather", "psum_scatter", "ppermute", "all_to_all", "pvary")


def with_pvary(body, in_specs, out_specs):
    """``body`` with JAX's implicit ``pvary``s as explicit nodes (see the module NOTE):
    before each collective, on each operand of an op that varies over fewer axes than
    another operand, and on each output that varies over fewer axes than its out_spec
    names. Nested control-flow bodies are taken as a whole (their outputs vary over
    every axis their operands vary over)."""
    vma: dict = {}

    def vary(x, axes):
        missing = tuple(a for a in axes if a not in vma[id(x)])
        if not missing or not is_inexact(x.dtype):  # integers have no cotangents
            return x
        y = bind("pvary", x, axes=missing)
        vma[id(y)] = vma[id(x)] | set(missing)
        keep.append(y)
        return y

    def run_node(node, operands):
        for x in operands:
            vma.setdefault(id(x), set())  # constants: invariant
        axes = node.attrs.get("axes", ())
        if node.op == "pvary":
            pass  # already explicit (tg.from_jax of JAX's bodies)
        elif node.op in _REDUCING or node.op in _VARYING:
            operands = [vary(operands[0], axes)]
        elif operands:
            union = set().union(*(vma[id(x)] for x in operands))
            operands = [vary(x, tuple(sorted(union))) for x in operands]
        outs = current_trace().process_node(node, operands)
        if node.op in _REDUCING:
            out_vma = vma[id(operands[0])] - set(axes)
        elif node.op in _VARYING or node.op == "axis_index":
            out_vma = (vma[id(operands[0])] if operands else set()) | set(axes)
        else:
            out_vma = set().union(*(vma[id(x)] for x in operands)) if operands else set()
        for o in outs:
            vma[id(o)] = set(out_vma)
        keep.extend(outs)
        return outs

    keep: list = []  # the ids in vma stay valid while the values live

    def fn(*xs):
        for x, s in zip(xs, in_specs):
            vma[id(x)] = _spec_axes(s)
        keep.extend(xs)
        outs = eval_graph(body, list(xs), run_node=run_node)
        return [vary(o, tuple(sorted(_spec_axes(s)))) for o, s in zip(outs, out_specs)]

    return trace_graph(fn, [v.type for v in body.inputs], body.name)


def _shard_map_vjp(ct, *ins, out, body, mesh_axes, mesh_shape, in_specs, out_specs, check_vma):
    if not check_vma:
        raise Error(
            "reverse-mode differentiation of a shard_map with check_vma=False is not "
            "supported (JAX's gradients then depend on unchecked replication); use check_vma=True"
        )
    backward = vjp_graph(with_pvary(body, in_specs, out_specs))
    cts = bind(
        "shard_map", *ins, *ct,
        body=backward, mesh_axes=mesh_axes, mesh_shape=mesh_shape,
        in_specs=tuple(in_specs) + tuple(out_specs), out_specs=tuple(in_specs), check_vma=True,
    )
    return list(cts)


def _sample_body(w, x):
    ax = ("data",)
    y = bind("matmul", x, bind("pvary", w, axes=ax))
    s = bind("psum", bind("sum", y * y), axes=ax)
    m = bind("pmean", y, axes=ax, axis_size=1)
    g = bind("all_gather", bind("sin", x), axes=ax, axis=0, tiled=True, axis_size=1)
    p = bind("ppermute", x * 2.0, axes=ax, perm=((0, 0),))
    r = bind("psum_scatter", bind("cos", x), axes=ax, scatter_dimension=0, tiled=True, axis_size=1)
    i = bind("astype", bind("axis_index", axes=ax), dtype=x.dtype)
    a = bind("all_to_all", bind("exp", x), axes=ax, split_axis=1, concat_axis=0, axis_size=1)
    return s, m, g + i, p, r + a


def _sample_extremes(x):
    return bind("pmax", x, axes=("data",)), bind("pmin", x, axes=("data",))


def _shard_map_samples():
    out = []
    for dt in ("f32", "f64"):
        with jax.enable_x64(dt == "f64"):  # f64 graphs are built (and run) with x64 on
            out += _shard_map_sample(dt)
    return out


def _shard_map_sample(dt):
    # a mesh of one shard runs on one device; the bodies hold every collective
    w, x = arr((3, 2), dt, tag="w"), arr((4, 3), dt, tag="x")
    tw, tx = TensorType((3, 2), w.dtype), TensorType((4, 3), x.dtype)
    data = ("data", None)
    mesh = {"mesh_axes": ("data",), "mesh_shape": (1,), "check_vma": True}
    collectives = {
        "body": trace_graph(_sample_body, [tw, tx], "body"),
        "in_specs": ((None, None), data), "out_specs": ((), data, data, data, data), **mesh,
    }
    extremes = {
        "body": trace_graph(_sample_extremes, [tx], "body"),
        "in_specs": (data,), "out_specs": (data, data), **mesh,
    }
    # JAX defines no gradient of pmax/pmin: their VJPs are checked by finite differences
    return [
        Sample((w, x), collectives, f"{dt}-collectives"),
        Sample((x,), extremes, f"{dt}-pmax-pmin", jax_vjp=False),
    ]


def _shard_map_reference(*args, body, in_specs, out_specs, **_):
    P = jax.sharding.PartitionSpec

    def collectives(w, x):
        y = x @ w
        s = lax.psum(jnp.sum(y * y), "data")
        m = lax.pmean(y, "data")
        g = lax.all_gather(jnp.sin(x), "data", axis=0, tiled=True)
        i = lax.axis_index("data").astype(x.dtype)
        p = lax.ppermute(x * 2.0, "data", [(0, 0)])
        r = lax.psum_scatter(jnp.cos(x), "data", scatter_dimension=0, tiled=True)
        a = lax.all_to_all(jnp.exp(x), "data", 1, 0, tiled=True)
        return s, m, g + i, p, r + a

    def extremes(x):
        return lax.pmax(x, "data"), lax.pmin(x, "data")

    f = collectives if len(args) == 2 else extremes
    return jax.shard_map(
        f, mesh=make_mesh(("data",), (1,)), in_specs=tuple(P(*s) for s in in_specs),
        out_specs=tuple(P(*s) for s in out_specs),
    )(*args)


shard_map = defop(
    "shard_map",
    keys=True,
    shape=lambda *ins, **attrs: tuple(t.shape for t in _out_types(*ins, **attrs)),
    dtype=_field("dtype"),
    weak=_field("weak"),
    sharding=_field("sharding"),
    impl=_shard_map_impl,
    arity=None,
    attrs={
        "body": Attr("graph"),
        "mesh_axes": _AXES,
        "mesh_shape": Attr("ints"),
        "in_specs": Attr("specs"),
        "out_specs": Attr("specs"),
        "check_vma": Attr("bool", True),
    },
    multi_output=True,
    vjp=_shard_map_vjp,
    samples=_shard_map_samples,
    reference=_shard_map_reference,
    doc="shard_map(*operands): jax.shard_map of body over the mesh (mesh_axes, "
    "mesh_shape): each operand split by its in_spec, the outputs joined by out_specs.",
)
