"""Random ops with explicit keys, and dropout.

A key is a raw ``u32[2]`` array, as ``jax.random.PRNGKey(seed)`` returns; every op calls
the matching ``jax.random`` function, so results equal JAX's bit for bit for the same key
(the references are those same jax.random calls: the contract is equality with JAX, and
there is no other formulation of threefry worth comparing against).

NOTE: the ops are pure functions of their key (same key and attributes, same bits), yet
they are marked ``random=True`` so that CSE never merges two draws: two identical draws
in a user's graph are almost always a reused key, and merging them would hide the bug in
the optimized IR instead of leaving it visible where the user wrote it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.core.primitives import random_gamma_p
from jax import lax
import numpy as np

from ..errors import IRError
from ..ir.types import is_float, is_key, key_data_shape, key_dtype
from .defop import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    bind,
    broadcast_shapes,
    default_int,
    defop,
    first_dtype,
    first_sharding,
    first_weak,
    fixed_dtype,
    never_weak,
    no_sharding,
    normalize_axis,
)
from .samples import FLOATS, arr

KEY_TYPE = TensorType((2,), np.uint32)


def _raw(t: TensorType) -> bool:
    return t.shape == KEY_TYPE.shape and t.dtype == KEY_TYPE.dtype


def _check_key(key: TensorType):
    """The key of a draw: one key, typed (``key<threefry2x32>[]``) or raw (``u32[2]``)."""
    if not (_raw(key) or (is_key(key.dtype) and key.shape == ())):
        raise ShapeError(
            "a random key must be one key: key<threefry2x32>[] (tg.random.key, "
            f"jax.random.key) or u32[2] (tg.random.PRNGKey, jax.random.PRNGKey), got {key}"
        )


def _check_keys(op: str, key: TensorType):
    """The keys of a key op: typed keys of any shape (one op on each, as JAX's key
    primitives batch), or one raw ``u32[2]`` key."""
    if not (_raw(key) or is_key(key.dtype)):
        raise ShapeError(
            f"{op} needs typed keys (key<threefry2x32>[...]) or one raw u32[2] key, got {key}"
        )


def _check_shape(shape):
    if any(d < 0 for d in shape):
        raise ShapeError(f"negative dimension in shape {shape}")


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if not is_float(dt):
        raise ShapeError(f"random floats need a floating-point dtype, got {dt}")
    return dt


def _each_key(fn, keys, *rest):
    """``fn(key, *rest)`` for each key of a typed key array (and the matching elements
    of ``rest``), stacked in the keys' shape: what JAX's key primitives do on a batch,
    since ``jax.vmap`` of the one-key function is their batching rule."""
    batch = keys.shape
    if not batch:
        return fn(keys, *rest)
    flat = [keys.reshape(-1)] + [r.reshape(-1) for r in rest]
    out = jax.vmap(fn)(*flat)
    return out.reshape(batch + out.shape[1:])


def _key(seed):
    return np.asarray(jax.random.PRNGKey(seed))


def _typed(seed, impl="threefry2x32"):
    return jax.random.key(seed, impl=impl)


def _keys():
    return [(_key(0), "key0"), (_key(42), "key42"), (_key(2**31 - 1), "key-max")]


def _typed_keys():
    """Typed keys of every implementation and a batch (key samples of the key ops)."""
    return [
        (_typed(0), "typed"),
        (_typed(5, "rbg"), "rbg"),
        (_typed(6, "unsafe_rbg"), "unsafe-rbg"),
        (jax.random.split(_typed(7), 6).reshape(2, 3), "batch"),
    ]


def _key_dtype_of(impl: str):
    try:
        return key_dtype(impl)
    except IRError as e:
        raise ShapeError(str(e)) from None


# -- keys ---------------------------------------------------------------------------
# A key is typed (``key<impl>[...]``: JAX's key arrays, `jax.random.key`) or raw (a
# ``u32[2]``: `jax.random.PRNGKey`, one threefry key). The key ops take either; on typed
# keys they act on each key of the array, as JAX's key primitives (random_seed,
# random_split, random_fold_in, random_bits, random_wrap, random_unwrap) do.


def _seed_shape(seed: TensorType, *, impl):
    if seed.dtype.kind not in "iu":
        raise ShapeError(f"a seed must be an integer scalar, got {seed}")
    if not impl:
        if seed.shape != ():
            raise ShapeError(f"a seed must be an integer scalar, got {seed}")
        return KEY_TYPE.shape
    _key_dtype_of(impl)
    return seed.shape


def _seed(seed, *, impl):
    if not impl:
        return jax.random.PRNGKey(seed)
    return _each_key(lambda s: jax.random.key(s, impl=impl), seed)


random_seed = defop(
    "random_seed",
    shape=_seed_shape,
    dtype=lambda seed, *, impl: _key_dtype_of(impl) if impl else KEY_TYPE.dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_seed,
    attrs={"impl": Attr("str", "")},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: [
        Sample((np.asarray(7, np.int32),), name="i32"),
        Sample((np.asarray(-3, np.int32),), name="negative"),
        Sample((np.asarray(2**40 + 5, np.int64),), name="i64"),
        Sample((np.asarray(9, np.uint32),), name="u32"),
        Sample((np.asarray(7, np.int32),), {"impl": "threefry2x32"}, "typed"),
        Sample((np.asarray([1, 2, 3], np.int32),), {"impl": "threefry2x32"}, "typed-batch"),
        Sample((np.asarray(4, np.uint32),), {"impl": "rbg"}, "rbg"),
    ],
    reference=lambda seed, *, impl="": (
        jax.random.PRNGKey(seed) if not impl
        else jax.vmap(lambda s: jax.random.key(s, impl=impl))(np.ravel(seed)).reshape(np.shape(seed))
    ),
    doc="Keys from integer seeds. ``impl`` empty: one raw u32[2] key from a scalar seed "
    "(jax.random.PRNGKey); ``impl`` named (threefry2x32, rbg, unsafe_rbg): typed keys, one "
    "per seed (jax.random.key). A Python int seed becomes a constant instead.",
)


def _wrap_shape(data: TensorType, *, impl):
    kd = _key_dtype_of(impl)
    tail = key_data_shape(kd)
    if data.dtype != np.uint32 or data.shape[-1:] != tail:
        raise ShapeError(
            f"random_wrap of {impl} keys needs u32[..., {tail[0]}] key data, got {data}"
        )
    return data.shape[:-1]


random_wrap = defop(
    "random_wrap",
    shape=_wrap_shape,
    dtype=lambda data, *, impl: _key_dtype_of(impl),
    weak=never_weak,
    sharding=no_sharding,
    impl=lambda data, *, impl: jax.random.wrap_key_data(data, impl=impl),
    attrs={"impl": Attr("str", "threefry2x32")},
    vjp=NOT_DIFFERENTIABLE,
    keys=True,
    samples=lambda: [
        Sample((_key(3),), name="one"),
        Sample((np.asarray(jax.random.split(_key(3), 4)),), name="batch"),
        Sample((np.asarray(jax.random.key_data(_typed(1, "rbg"))),), {"impl": "rbg"}, "rbg"),
        Sample((np.zeros((0, 2), np.uint32),), name="empty"),
    ],
    reference=lambda data, *, impl="threefry2x32": jax.random.wrap_key_data(
        np.asarray(data), impl=impl
    ),
    doc="Typed keys of implementation ``impl`` from their u32 data (the last axis: 2 words "
    "for threefry2x32, 4 for rbg): jax.random.wrap_key_data.",
)


def _unwrap_shape(keys: TensorType):
    if not is_key(keys.dtype):
        raise ShapeError(f"random_unwrap needs typed keys, got {keys}")
    return keys.shape + key_data_shape(keys.dtype)


random_unwrap = defop(
    "random_unwrap",
    shape=_unwrap_shape,
    dtype=fixed_dtype(np.uint32),
    weak=never_weak,
    sharding=no_sharding,
    impl=jax.random.key_data,
    vjp=NOT_DIFFERENTIABLE,
    keys=True,
    samples=lambda: [Sample((k,), name=name) for k, name in _typed_keys()],
    reference=lambda keys: np.asarray(jax.random.key_data(keys)),
    doc="The u32 data of typed keys (one more axis: 2 words for threefry2x32), "
    "jax.random.key_data.",
)


def _split_shape(key, *, num):
    _check_keys("random_split", key)
    if num < 0:
        raise ShapeError(f"split needs num >= 0, got {num}")
    if _raw(key):
        return (num,) + KEY_TYPE.shape
    return key.shape + (num,)


def _split(key, *, num):
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.split(key, num)
    return _each_key(lambda k: jax.random.split(k, num), key)


random_split = defop(
    "random_split",
    shape=_split_shape,
    dtype=first_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_split,
    attrs={"num": Attr("int", 2)},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    keys=True,
    samples=lambda: (
        [Sample((k,), {"num": n}, f"{name}-{n}") for k, name in _keys() for n in (2, 3)]
        + [Sample((_key(1),), {"num": 1}, "one"), Sample((_key(1),), {"num": 0}, "zero")]
        + [Sample((k,), {"num": 3}, name) for k, name in _typed_keys()]
    ),
    reference=lambda key, *, num: (
        jax.random.split(key, num) if np.shape(key) in ((), (2,))
        else jax.vmap(lambda k: jax.random.split(k, num))(key.reshape(-1)).reshape(key.shape + (num,))
    ),
    doc="``num`` new keys per key: a raw u32[2] key gives the rows of a u32[num, 2]; typed "
    "keys key[...] give key[..., num] (jax.random.split of each).",
)


def _fold_in_shape(key, data):
    _check_keys("random_fold_in", key)
    if data.dtype.kind not in "iu":
        raise ShapeError(f"fold_in needs an integer scalar to fold in, got {data}")
    if _raw(key):
        if data.shape != ():
            raise ShapeError(f"fold_in needs an integer scalar to fold in, got {data}")
        return KEY_TYPE.shape
    return broadcast_shapes(key.shape, data.shape)


def _fold_in(key, data):
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.fold_in(key, data)
    shape = jnp.broadcast_shapes(key.shape, jnp.shape(data))
    key, data = jnp.broadcast_to(key, shape), jnp.broadcast_to(data, shape)
    return _each_key(jax.random.fold_in, key, data)


random_fold_in = defop(
    "random_fold_in",
    shape=_fold_in_shape,
    dtype=first_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_fold_in,
    arity=2,
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    keys=True,
    samples=lambda: [
        Sample((_key(0), np.asarray(1, np.int32)), name="i32"),
        Sample((_key(5), np.asarray(123456, np.uint32)), name="u32"),
        Sample((_key(5), np.asarray(-2, np.int32)), name="negative"),
        Sample((_typed(5), np.asarray(3, np.uint32)), name="typed"),
        Sample((jax.random.split(_typed(5), 3), np.asarray([1, 2, 3], np.uint32)), name="batch"),
        Sample((jax.random.split(_typed(5), 3), np.asarray(9, np.uint32)), name="broadcast"),
    ],
    reference=lambda key, data: (
        jax.random.fold_in(key, data) if key.shape in ((), (2,))
        else jax.vmap(jax.random.fold_in)(key, np.broadcast_to(data, key.shape))
    ),
    doc="New keys from keys and integers (a step or layer number): jax.random.fold_in of "
    "each key with its (broadcast) integer.",
)


_BIT_WIDTHS = (8, 16, 32, 64)


def _bits_shape(key, *, bit_width, shape):
    _check_keys("random_bits", key)
    if bit_width not in _BIT_WIDTHS:
        raise ShapeError(f"random_bits: bit_width must be one of {_BIT_WIDTHS}, got {bit_width}")
    _check_shape(shape)
    return (() if _raw(key) else key.shape) + tuple(shape)


def _bits_dtype(key, *, bit_width, shape):
    return np.dtype(jax.dtypes.canonicalize_dtype(np.dtype(f"uint{bit_width}")))


def _bits(key, *, bit_width, shape):
    dtype = np.dtype(f"uint{bit_width}")
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.bits(key, tuple(shape), dtype)
    return _each_key(lambda k: jax.random.bits(k, tuple(shape), dtype), key)


random_bits = defop(
    "random_bits",
    shape=_bits_shape,
    dtype=_bits_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_bits,
    attrs={"bit_width": Attr("int", 32), "shape": Attr("ints", ())},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    keys=True,
    samples=lambda: (
        [Sample((k,), {"shape": (3, 4)}, name) for k, name in _keys()[:2]]
        + [Sample((k,), {"shape": (5,)}, name) for k, name in _typed_keys()]
        + [Sample((_typed(2),), {"shape": (4,), "bit_width": w}, f"u{w}") for w in (8, 16)]
        + [Sample((_typed(2),), {"shape": ()}, "scalar"),
           Sample((_typed(2),), {"shape": (0, 3)}, "empty")]
    ),
    reference=lambda key, *, bit_width=32, shape=(): (
        jax.random.bits(key, tuple(shape), np.dtype(f"uint{bit_width}"))
        if np.shape(key) in ((), (2,))
        else jax.vmap(lambda k: jax.random.bits(k, tuple(shape), np.dtype(f"uint{bit_width}")))(
            key.reshape(-1)).reshape(key.shape + tuple(shape))
    ),
    doc="Uniform random bits of ``bit_width`` (8, 16, 32, 64) in ``shape`` for each key "
    "(the keys' shape comes first): jax.random.bits, the source every sampler draws from.",
)


# -- draws --------------------------------------------------------------------------


def _draw_shape(key, *, shape, dtype=None, **_):
    # the shape rule of draws, which also checks a float dtype attribute
    _check_key(key)
    _check_shape(shape)
    if dtype is not None:
        _float_dtype(dtype)
    return tuple(shape)


def _draw_dtype(key, *, dtype, **_):
    return _float_dtype(dtype)


def _normal(key, *, shape, dtype):
    return jax.random.normal(key, shape, jax.dtypes.canonicalize_dtype(dtype))


random_normal = defop(
    "random_normal",
    keys=True,
    shape=_draw_shape,
    dtype=_draw_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_normal,
    attrs={"shape": Attr("ints", ()), "dtype": Attr("dtype", np.dtype(np.float32))},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: (
        [Sample((k,), {"shape": (3, 4)}, name) for k, name in _keys()]
        + [Sample((_key(3),), {"shape": (5,), "dtype": dt}, dt) for dt in FLOATS if dt != "f64"]
        + [
            Sample((_key(3),), {"shape": ()}, "scalar"),
            Sample((_key(3),), {"shape": (0, 2)}, "empty"),
        ]
    ),
    reference=_normal,
    doc="Standard normal draws, equal to jax.random.normal(key, shape, dtype).",
)


def _uniform(key, *, shape, dtype, minval, maxval):
    return jax.random.uniform(key, shape, jax.dtypes.canonicalize_dtype(dtype), minval, maxval)


random_uniform = defop(
    "random_uniform",
    keys=True,
    shape=_draw_shape,
    dtype=_draw_dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_uniform,
    attrs={
        "shape": Attr("ints", ()),
        "dtype": Attr("dtype", np.dtype(np.float32)),
        "minval": Attr("float", 0.0),
        "maxval": Attr("float", 1.0),
    },
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: (
        [Sample((k,), {"shape": (3, 4)}, name) for k, name in _keys()]
        + [Sample((_key(3),), {"shape": (5,), "dtype": dt}, dt) for dt in FLOATS if dt != "f64"]
        + [
            Sample((_key(4),), {"shape": (6,), "minval": -3.0, "maxval": 2.5}, "range"),
            Sample((_key(4),), {"shape": ()}, "scalar"),
            Sample((_key(4),), {"shape": (0,)}, "empty"),
        ]
    ),
    reference=_uniform,
    doc="Uniform draws in [minval, maxval), equal to jax.random.uniform.",
)


def _bernoulli(key, *, p, shape):
    return jax.random.bernoulli(key, p, shape)


random_bernoulli = defop(
    "random_bernoulli",
    keys=True,
    shape=_draw_shape,
    dtype=fixed_dtype(np.bool_),
    weak=never_weak,
    sharding=no_sharding,
    impl=_bernoulli,
    attrs={"p": Attr("float", 0.5), "shape": Attr("ints", ())},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: (
        [Sample((k,), {"p": 0.5, "shape": (4, 5)}, name) for k, name in _keys()]
        + [
            Sample((_key(9),), {"p": 0.1, "shape": (50,)}, "p0.1"),
            Sample((_key(9),), {"p": 0.0, "shape": (5,)}, "p0"),
            Sample((_key(9),), {"p": 1.0, "shape": (5,)}, "p1"),
            Sample((_key(9),), {"p": 0.3, "shape": ()}, "scalar"),
        ]
    ),
    reference=_bernoulli,
    doc="True with probability p, equal to jax.random.bernoulli(key, p, shape).",
)


def _categorical_shape(key, logits, *, axis, shape):
    _check_key(key)
    if not is_float(logits.dtype):
        raise ShapeError(f"random_categorical needs floating-point logits, got {logits}")
    if logits.ndim == 0:
        raise ShapeError("random_categorical needs logits of rank >= 1 (a class axis)")
    axis = normalize_axis(axis, logits.ndim)
    if logits.shape[axis] == 0:
        raise ShapeError(f"random_categorical needs at least one class, got logits {logits}")
    _check_shape(shape)
    batch = logits.shape[:axis] + logits.shape[axis + 1 :]
    lead = len(shape) - len(batch)
    if lead < 0 or any(b not in (1, s) for b, s in zip(batch, shape[lead:])):
        raise ShapeError(
            f"random_categorical: shape {tuple(shape)} does not hold the batch shape "
            f"{batch} of the logits (it must broadcast to it, as in jax.random.categorical)"
        )
    return tuple(shape)


def _categorical(key, logits, *, axis, shape):
    return jax.random.categorical(key, logits, axis=axis, shape=tuple(shape))


random_categorical = defop(
    "random_categorical",
    keys=True,
    shape=_categorical_shape,
    dtype=lambda key, logits, **_: default_int(),
    weak=never_weak,
    sharding=no_sharding,
    impl=_categorical,
    attrs={"axis": Attr("int", -1), "shape": Attr("ints", ())},
    arity=2,
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    # one sample (each compiles jax.random.categorical per mode); the type matrix runs
    # every dtype through the rules
    samples=lambda: [
        Sample((_key(7), arr((4, 3), "f32", -2, 2, "logits")), {"axis": 0, "shape": (2, 3)},
               "axis0-shape"),
    ],
    reference=_categorical,
    doc="Class ids drawn with probabilities softmax(logits) along ``axis``, of shape "
    "``shape`` (which the batch shape of the logits broadcasts to), equal to "
    "jax.random.categorical(key, logits, axis, shape).",
)


# -- dropout ------------------------------------------------------------------------


def _dropout_shape(x, key, *, rate):
    _check_key(key)
    if not is_float(x.dtype):
        raise ShapeError(f"dropout needs a floating-point operand, got {x}")
    if not 0.0 <= rate <= 1.0:
        raise ShapeError(f"dropout rate must be in [0, 1], got {rate}")
    return x.shape


def _dropout(x, key, *, rate):
    if rate == 0.0:
        return x
    if rate == 1.0:
        return x * 0  # every unit dropped; avoids 0/0
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    # lax with constants like x (a strong bool or a Python float would widen a weak f16
    # x to f32); a multiplication by the reciprocal, as PyTorch scales, rounds the same
    # compiled and op by op (XLA turns a division by a constant into one under jit)
    x = jax.numpy.asarray(x)
    return lax.select(keep, lax.mul(x, lax.full_like(x, 1.0 / (1.0 - rate))), lax.full_like(x, 0))


def _dropout_reference(x, key, *, rate):
    if rate == 0.0:
        return x
    if rate == 1.0:
        return jax.numpy.zeros_like(x)
    keep = np.asarray(jax.random.bernoulli(key, 1.0 - rate, x.shape))
    out = np.where(keep, np.asarray(x).astype(np.float64) / (1.0 - rate), 0.0)
    return jax.numpy.asarray(out).astype(x.dtype)


random_dropout = defop(
    "dropout",
    keys=True,
    shape=_dropout_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_dropout,
    attrs={"rate": Attr("float")},
    arity=2,
    # Linear in x: the cotangent goes through the same mask (same key, same rate).
    vjp=lambda ct, x, key, *, out, rate: [bind("dropout", ct, key, rate=rate), None],
    random=True,
    samples=lambda: (
        [Sample((arr((4, 5), dt), _key(1)), {"rate": 0.5}, dt) for dt in FLOATS]
        + [
            Sample((arr((100,)), _key(2)), {"rate": 0.1}, "rate0.1"),
            Sample((arr((3, 3)), _key(2)), {"rate": 0.0}, "rate0"),
            Sample((arr((3, 3)), _key(2)), {"rate": 1.0}, "rate1"),
            Sample((arr(()), _key(2)), {"rate": 0.5}, "scalar"),
            Sample((arr((0, 3)), _key(2)), {"rate": 0.5}, "empty"),
        ]
    ),
    reference=_dropout_reference,
    doc="Zero each element with probability ``rate`` and scale the rest by 1/(1-rate); the "
    "mask is jax.random.bernoulli(key, 1-rate, x.shape).",
)


# -- gamma --------------------------------------------------------------------------------
# random_gamma binds JAX's own primitive, so the draws are JAX's bit for bit (its rejection
# sampler, a while loop per element, is not worth re-expressing in IR ops); its gradient in
# ``a`` is JAX's implicit reparameterization, the random_gamma_grad op (ops/special.py).


def _gamma_shape(keys: TensorType, a: TensorType, *, log_space):
    if not is_key(keys.dtype):
        raise ShapeError(f"random_gamma needs typed keys (key<threefry2x32>[...]), got {keys}")
    if not is_float(a.dtype):
        raise ShapeError(f"random_gamma needs a floating-point a, got {a}")
    if a.shape[: keys.ndim] != keys.shape:
        raise ShapeError(f"random_gamma: the keys' shape must lead a's shape, got {keys} and {a}")
    return a.shape


def _gamma(keys, a, *, log_space):
    # a strong result: JAX's abstract rule keeps a weak ``a``'s flag, its eager
    # implementation drops it; tracegraph's rule says one thing in every mode
    a = lax.convert_element_type(a, jnp.asarray(a).dtype)
    return random_gamma_p.bind(keys, a, log_space=bool(log_space))


def _gamma_vjp(ct, keys, a, *, out, log_space):
    if not log_space:
        return [None, ct * bind("random_gamma_grad", a, out)]
    # d log(x) = dx / x, with x = exp(out) never 0 (as jax.random.loggamma's rule)
    x = bind("exp", out)
    tiny = bind("full", shape=tuple(x.shape), value=float(jnp.finfo(x.dtype).tiny), dtype=x.dtype)
    x = bind("where", bind("eq", x, 0), tiny, x)
    return [None, ct * bind("random_gamma_grad", a, x) / x]


def _gamma_reference(keys, a, *, log_space=False):
    draw = jax.random.loggamma if log_space else jax.random.gamma
    if np.shape(keys) == ():
        return draw(keys, a, dtype=a.dtype)
    n = int(np.prod(np.shape(keys)))
    rest = np.shape(a)[np.ndim(keys):]
    flat = jax.vmap(lambda k, b: draw(k, b, dtype=a.dtype))(keys.reshape(n), jnp.reshape(a, (n, *rest)))
    return flat.reshape(np.shape(a))


def _gamma_samples():
    # grad=False: JAX's gradient (implicit reparameterization, d x / d a = -(dP/da) / pdf
    # at the drawn x) is not the derivative of the rejection sampler's output at a fixed
    # key, so finite differences disagree by design; tests/test_from_jax_random.py checks
    # tracegraph's gradient against jax.grad instead
    batch = jax.random.split(_typed(3), 4).reshape(2, 2)

    def s(key, a, log_space, name):
        return Sample((key, a), {"log_space": log_space}, name, grad=False)

    return [
        s(_typed(1), arr((3,), "f32", 0.5, 3.0), False, "f32"),
        s(_typed(1), arr((2, 3), "f64", 0.5, 3.0), False, "f64"),
        s(_typed(2), arr((4,), "f32", 0.2, 3.0), True, "log-space"),
        s(batch, arr((2, 2), "f32", 0.5, 3.0), False, "batch"),
        s(batch, arr((2, 2, 3), "f32", 0.5, 3.0), False, "batch-split"),
        s(_typed(4, "rbg"), arr((3,), "f32", 0.5, 3.0), False, "rbg"),
        s(_typed(1), np.array([1e-3, 0.05, 50.0], np.float32), True, "small-and-large"),
        s(_typed(1), arr((0,), "f32", 0.5, 3.0), False, "empty"),
    ]


random_gamma = defop(
    "random_gamma",
    keys=True,
    shape=_gamma_shape,
    dtype=lambda keys, a, **_: a.dtype,
    weak=never_weak,
    sharding=no_sharding,
    impl=_gamma,
    attrs={"log_space": Attr("bool", False)},
    arity=2,
    vjp=_gamma_vjp,
    random=True,
    samples=_gamma_samples,
    reference=_gamma_reference,
    doc="Gamma(a, 1) draws, one per element of ``a``, from typed keys whose shape leads "
    "a's (each key split over the rest, as JAX's random_gamma primitive); ``log_space`` "
    "gives their logs (jax.random.loggamma). Bit for bit JAX's.",
)
