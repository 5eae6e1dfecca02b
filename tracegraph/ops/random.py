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
from jax import lax
import numpy as np

from ..ir.types import is_float
from .defop import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    bind,
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


def _check_key(key: TensorType):
    if key.shape != (2,) or key.dtype != KEY_TYPE.dtype:
        raise ShapeError(
            f"a random key must be u32[2] (as tg.random.key / jax.random.PRNGKey give), got {key}"
        )


def _check_shape(shape):
    if any(d < 0 for d in shape):
        raise ShapeError(f"negative dimension in shape {shape}")


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if not is_float(dt):
        raise ShapeError(f"random floats need a floating-point dtype, got {dt}")
    return dt


def _key(seed):
    return np.asarray(jax.random.PRNGKey(seed))


def _keys():
    return [(_key(0), "key0"), (_key(42), "key42"), (_key(2**31 - 1), "key-max")]


# -- keys ---------------------------------------------------------------------------


# The type rules of ops that give keys.
_key_dtype = fixed_dtype(KEY_TYPE.dtype)


def _seed_shape(seed: TensorType) -> tuple[int, ...]:
    if seed.shape != () or seed.dtype.kind not in "iu":
        raise ShapeError(f"a seed must be an integer scalar, got {seed}")
    return KEY_TYPE.shape


random_seed = defop(
    "random_seed",
    shape=_seed_shape,
    dtype=_key_dtype,
    weak=never_weak,
    impl=jax.random.PRNGKey,
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: [
        Sample((np.asarray(7, np.int32),), name="i32"),
        Sample((np.asarray(-3, np.int32),), name="negative"),
        Sample((np.asarray(2**40 + 5, np.int64),), name="i64"),
        Sample((np.asarray(9, np.uint32),), name="u32"),
    ],
    reference=jax.random.PRNGKey,
    doc="A key from a traced integer seed (a Python int seed becomes a constant instead).",
)


def _split_shape(key, *, num):
    _check_key(key)
    if num < 0:
        raise ShapeError(f"split needs num >= 0, got {num}")
    return (num,) + KEY_TYPE.shape


random_split = defop(
    "random_split",
    shape=_split_shape,
    dtype=_key_dtype,
    weak=never_weak,
    impl=lambda key, *, num: jax.random.split(key, num),
    attrs={"num": Attr("int", 2)},
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: (
        [Sample((k,), {"num": n}, f"{name}-{n}") for k, name in _keys() for n in (2, 3)]
        + [Sample((_key(1),), {"num": 1}, "one"), Sample((_key(1),), {"num": 0}, "zero")]
    ),
    reference=lambda key, *, num: jax.random.split(key, num),
    doc="``num`` new keys, as rows of a u32[num, 2].",
)


def _fold_in_shape(key, data):
    _check_key(key)
    if data.shape != () or data.dtype.kind not in "iu":
        raise ShapeError(f"fold_in needs an integer scalar to fold in, got {data}")
    return KEY_TYPE.shape


random_fold_in = defop(
    "random_fold_in",
    shape=_fold_in_shape,
    dtype=_key_dtype,
    weak=never_weak,
    impl=jax.random.fold_in,
    arity=2,
    vjp=NOT_DIFFERENTIABLE,
    random=True,
    samples=lambda: [
        Sample((_key(0), np.asarray(1, np.int32)), name="i32"),
        Sample((_key(5), np.asarray(123456, np.uint32)), name="u32"),
        Sample((_key(5), np.asarray(-2, np.int32)), name="negative"),
    ],
    reference=jax.random.fold_in,
    doc="A new key from a key and an integer (a step or layer number).",
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
