"""Rules for the JAX primitives that are neither math nor shapes nor control: value
copies, device placement and JAX's PRNG (its key primitives are tracegraph's key ops, on
the IR's key types, so a converted draw gives JAX's bits); and the primitives with no
mapping yet because tracegraph IR has no concept for them (yet): shardings and
collectives, effects and callbacks, mutable references.

NOTE: a primitive that changes no value but carries a constraint (a sharding, a
scheduling barrier, a remat name) is not dropped: it is listed here as not yet
supported, so converting it fails loudly instead of losing the constraint. Only
``copy`` (a value copy is the value) and a ``device_put`` that names no device are
the identity.
"""

from __future__ import annotations

import jax.extend.core.primitives as prims
import numpy as np
from jax import lax

# NOTE: no public module exports these primitives (jax.lax and jax.extend.core.primitives
# do not); they are listed so that converting them gives a reason, and imported from
# jax._src so that a JAX version that moves one fails here, at import, not silently.
from jax._src.callback import io_callback_p, pure_callback_p
from jax._src.core import pvary_p
from jax._src.debugging import debug_callback_p, debug_print_p
from jax._src.random.core import random_clone_p
from jax._src.random.prng import random_unwrap_p, random_wrap_p
from jax._src.shard_map import shard_map_p

from ...core import bind
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


# -- not yet supported -------------------------------------------------------------------

_SHARDING = "shardings are not in tracegraph IR yet; dropping it would silently lose the placement"
_COLLECTIVE = "a collective over named mesh axes (shard_map, pmap); tracegraph has no mesh axes yet"
_RANDOM = (
    "a PRNG primitive with no tracegraph op yet; draw these numbers with tg.random and pass "
    "them in"
)
_EFFECT = "tracegraph IR has no effects, tokens or host callbacks"
_REF = "a mutable array reference; tracegraph values are immutable"

NOT_YET_SUPPORTED = {
    lax.sharding_constraint_p: _SHARDING,
    shard_map_p: "shard_map: shardings and mesh axes are not in tracegraph IR yet",
    pvary_p: "marks a value as varying over shard_map mesh axes, which tracegraph IR has not",
    lax.optimization_barrier_p: "an XLA scheduling barrier; tracegraph IR has no op that "
    "keeps computations from moving across it, and dropping it would lose that guarantee",
    prims.name_p: "a checkpoint_name tag for a remat policy; remat is inlined without its "
    "policy, so the tag would be silently dropped",
    lax.all_gather_p: _COLLECTIVE,
    lax.all_to_all_p: _COLLECTIVE,
    lax.axis_index_p: _COLLECTIVE,
    lax.pmax_p: _COLLECTIVE,
    lax.pmin_p: _COLLECTIVE,
    lax.ppermute_p: _COLLECTIVE,
    lax.psum_p: _COLLECTIVE,
    lax.ragged_all_to_all_p: _COLLECTIVE,
    prims.random_gamma_p: _RANDOM + " (jax.random.gamma, beta, dirichlet)",
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
    prims.empty2_p: "an uninitialized buffer of JAX's scan lowering, not found in jaxprs",
}
