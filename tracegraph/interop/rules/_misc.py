"""Rules for the JAX primitives that are neither math nor shapes nor control: value
copies, device placement, JAX's PRNG (its key primitives are tracegraph's key ops, on
the IR's key types, so a converted draw gives JAX's bits) and the collectives of
shard_map bodies (tracegraph's collective ops: ``psum`` and ``psum_invariant`` become
``psum``, ``reduce_scatter`` ``psum_scatter``, ``pvary`` the ``pvary`` marker whose
transpose is ``psum``), and sharding constraints (``sharding_constraint`` nodes, whose
output types carry the spec); and the primitives with no mapping yet because tracegraph
IR has no concept for them (yet): ragged all-to-alls, effects and callbacks, mutable
references.

NOTE: a primitive that changes no value but carries a constraint (a scheduling barrier,
a remat name) is not dropped: it is listed here as not yet supported, so converting it
fails loudly instead of losing the constraint. Only
``copy`` (a value copy is the value) and a ``device_put`` that names no device are
the identity.
"""

from __future__ import annotations

import jax
import jax.extend.core.primitives as prims
import numpy as np
from jax import lax

# NOTE: no public module exports these primitives (jax.lax and jax.extend.core.primitives
# do not); they are listed so that converting them gives a reason, and imported from
# jax._src so that a JAX version that moves one fails here, at import, not silently.
from jax._src.callback import io_callback_p, pure_callback_p
from jax._src.core import pvary_p
from jax._src.lax.parallel import psum_invariant_p, reduce_scatter_p
from jax._src.debugging import debug_callback_p, debug_print_p
from jax._src.random.core import random_clone_p
from jax._src.random.prng import random_unwrap_p, random_wrap_p

from ...core import bind
from ...frontend.shard_map import bound_axes
from ._rule import RuleTable, reshape

RULES = RuleTable()
rule = RULES.register


@rule(lax.copy_p)
def _copy(ctx, eqn, x):
    return x


def _no_placement(eqn):
    if any(d is not None for d in eqn.params["devices"]):
        return "device_put to a device or sharding: placement is not in tracegraph IR yet"
    return None


@rule(lax.device_put_p, check=_no_placement)
def _device_put(ctx, eqn, *xs):
    # with no device named, device_put only makes the operands arrays of the trace
    return list(xs)


# -- JAX's PRNG: key primitives on typed keys ------------------------------------------------
# A jaxpr's keys are typed (``key<fry>[...]``) even where the user passed a raw u32[2] key:
# jax.random wraps it first (``random_wrap``). Each key primitive acts on every key of
# its operand, as the ops do.


def _impl_name(eqn) -> str:
    return eqn.params["impl"].name  # a PRNGImpl; its name is jax.random.key's impl= name


def _known_impl(eqn):
    from ...ir.types import KEY_IMPLS  # noqa: PLC0415

    name = _impl_name(eqn)
    return None if name in KEY_IMPLS else f"a PRNG implementation the IR does not name ({name})"


@rule(prims.random_seed_p, check=_known_impl)
def _random_seed(ctx, eqn, seed):
    return bind("random_seed", seed, impl=_impl_name(eqn))


@rule(random_wrap_p, check=_known_impl)
def _random_wrap(ctx, eqn, data):
    return bind("random_wrap", data, impl=_impl_name(eqn))


@rule(random_unwrap_p)
def _random_unwrap(ctx, eqn, keys):
    return bind("random_unwrap", keys)


@rule(random_clone_p)
def _random_clone(ctx, eqn, keys):
    return keys  # a copy of the keys, for the stateful-PRNG checks tracegraph does not make


@rule(prims.random_split_p)
def _random_split(ctx, eqn, keys):
    shape = tuple(eqn.params["shape"])
    out = bind("random_split", keys, num=int(np.prod(shape, dtype=np.int64)))
    return out if len(shape) == 1 else reshape(out, keys.shape + shape)


@rule(prims.random_fold_in_p)
def _random_fold_in(ctx, eqn, keys, msgs):
    return bind("random_fold_in", keys, msgs)


@rule(prims.random_bits_p)
def _random_bits(ctx, eqn, keys):
    p = eqn.params
    return bind("random_bits", keys, bit_width=int(p["bit_width"]), shape=tuple(p["shape"]))


@rule(prims.random_gamma_p)
def _random_gamma(ctx, eqn, keys, a):
    # jax.random.gamma, loggamma, beta, dirichlet, chisquare, t, f
    return bind("random_gamma", keys, a, log_space=bool(eqn.params["log_space"]))


# -- collectives over shard_map's mesh axes (tracegraph.ops.collectives) -------------------


def _named_axes(eqn) -> tuple:
    p = eqn.params
    axes = p["axes"] if "axes" in p else p["axis_name"]
    return tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)


def _named_only(eqn):
    if eqn.params.get("axis_index_groups") is not None:
        return "axis_index_groups (collectives over groups of shards) is not in tracegraph IR yet"
    if any(not isinstance(a, str) for a in _named_axes(eqn)):
        return "a collective over positional (pmap/vmap) axes; tracegraph collectives name mesh axes"
    return None


def _groups_only(eqn):
    if eqn.params.get("axis_index_groups") is not None:
        return "axis_index_groups (collectives over groups of shards) is not in tracegraph IR yet"
    return None


def _all_reduce(op, reduce):
    """A reduction over ``axes``: the positional ones (what ``jax.vmap(axis_name=...)``
    leaves of a collective over its axis) reduce the array axis, as JAX's do; the named
    ones become the collective ``op``."""

    def convert(ctx, eqn, x):
        axes = _named_axes(eqn)
        pos = tuple(sorted(a % max(x.ndim, 1) for a in axes if isinstance(a, int)))
        named = tuple(a for a in axes if not isinstance(a, int))
        if pos:
            x = bind(reduce, x, axes=pos, keepdims=False)
        return bind(op, x, axes=named) if named else x

    return convert


RULES.register(lax.psum_p, psum_invariant_p, check=_groups_only)(_all_reduce("psum", "sum"))
RULES.register(lax.pmax_p, check=_groups_only)(_all_reduce("pmax", "max"))
RULES.register(lax.pmin_p, check=_groups_only)(_all_reduce("pmin", "min"))


@rule(pvary_p, check=_named_only)
def _pvary(ctx, eqn, x):
    return bind("pvary", x, axes=_named_axes(eqn))


@rule(lax.all_gather_p, check=_named_only)
def _all_gather(ctx, eqn, x):
    p = eqn.params
    return bind(
        "all_gather", x, axes=_named_axes(eqn), axis=int(p["all_gather_dimension"]),
        tiled=bool(p["tiled"]), axis_size=int(p["axis_size"]),
    )


@rule(reduce_scatter_p, check=_named_only)
def _reduce_scatter(ctx, eqn, x):
    p = eqn.params
    return bind(
        "psum_scatter", x, axes=_named_axes(eqn), scatter_dimension=int(p["scatter_dimension"]),
        tiled=bool(p["tiled"]), axis_size=int(p["axis_size"]),
    )


@rule(lax.ppermute_p, check=_named_only)
def _ppermute(ctx, eqn, x):
    perm = tuple((int(s), int(d)) for s, d in eqn.params["perm"])
    return bind("ppermute", x, axes=_named_axes(eqn), perm=perm)


@rule(lax.all_to_all_p, check=_named_only)
def _all_to_all(ctx, eqn, x):
    p, axes = eqn.params, _named_axes(eqn)
    sizes = bound_axes()  # the enclosing shard_map's mesh, while its body converts
    return bind(
        "all_to_all", x, axes=axes, split_axis=int(p["split_axis"]), concat_axis=int(p["concat_axis"]),
        axis_size=int(np.prod([sizes[a] for a in axes], dtype=np.int64)),
    )


@rule(lax.axis_index_p, check=_named_only)
def _axis_index(ctx, eqn):
    return bind("axis_index", axes=_named_axes(eqn))


# -- shardings --------------------------------------------------------------------------------


def _sharding_check(eqn):
    p = eqn.params
    sharding = p["sharding"]
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return f"a sharding constraint to a {type(sharding).__name__} (only NamedSharding is in the IR)"
    if p.get("layout") is not None:
        return "a sharding constraint with a layout"
    if p.get("unconstrained_dims"):
        return "a sharding constraint with P.UNCONSTRAINED dimensions"
    return None


@rule(lax.sharding_constraint_p, check=_sharding_check)
def _sharding_constraint(ctx, eqn, x):
    sharding = eqn.params["sharding"]
    mesh = sharding.mesh
    entries = tuple(None if e is None else e if isinstance(e, str) else tuple(e) for e in sharding.spec)
    spec = entries + (None,) * (x.ndim - len(entries))
    return bind("sharding_constraint", x, spec=spec, mesh_axes=tuple(mesh.axis_names),
                mesh_shape=tuple(int(mesh.shape[n]) for n in mesh.axis_names))


# -- not yet supported -------------------------------------------------------------------

_COLLECTIVE = "a ragged all-to-all (sizes known at run time); tracegraph shapes are static"
_RANDOM = (
    "a PRNG primitive with no tracegraph op yet; draw these numbers with tg.random and pass "
    "them in"
)
@rule(prims.empty2_p)
def _empty(ctx, eqn):
    # an uninitialized buffer (jax.grad's scatter into a cond branch, scan's lowering):
    # its contents are unspecified, so zeros are a faithful value of it
    aval = eqn.outvars[0].aval
    dtype = np.dtype(aval.dtype)
    return bind("full", shape=tuple(aval.shape), value=False if dtype == np.bool_ else 0, dtype=dtype)


_EFFECT = "tracegraph IR has no effects, tokens or host callbacks"
_REF = "a mutable array reference; tracegraph values are immutable"

NOT_YET_SUPPORTED = {
    lax.optimization_barrier_p: "an XLA scheduling barrier; tracegraph IR has no op that "
    "keeps computations from moving across it, and dropping it would lose that guarantee",
    prims.name_p: "a checkpoint_name tag for a remat policy; remat is inlined without its "
    "policy, so the tag would be silently dropped",
    lax.ragged_all_to_all_p: _COLLECTIVE,
    prims.threefry2x32_p: "the threefry hash itself; jax.random leaves it inside random_bits "
    "(where the key ops compute it), so only code calling jax.extend.random's threefry "
    "directly meets it",
    lax.rng_bit_generator_p: _RANDOM,
    lax.rng_uniform_p: _RANDOM,
    lax.after_all_p: _EFFECT,
    lax.create_token_p: _EFFECT,
    lax.dce_sink_p: _EFFECT,
    debug_print_p: _EFFECT + " (jax.debug.print)",
    debug_callback_p: _EFFECT + " (jax.debug.callback)",
    pure_callback_p: _EFFECT,
    io_callback_p: _EFFECT,
    prims.get_p: _REF,
    prims.swap_p: _REF,
    # JAX internals that jax.make_jaxpr does not leave in a jaxpr, so no rule is tested
    lax.stage_p: "lifts a value into a trace (lax.stage); jax.make_jaxpr leaves no use of it",
}
