"""Neural-network ops: softmax, log_softmax, one_hot and stop_gradient.

(Convolutions live in conv.py, pooling in pooling.py.) References are written in
float64 numpy, independent of the implementations.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .defop import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    defop,
    bind,
    inexact_dtype,
    never_weak,
    normalize_axis,
    same_shape,
    to_inexact,
)
from .samples import FLOATS, arr


# -- softmax ------------------------------------------------------------------------


def _softmax_shape(x: TensorType, *, axis: int) -> tuple[int, ...]:
    if x.ndim == 0:
        raise ShapeError("softmax needs an operand of rank >= 1")
    normalize_axis(axis, x.ndim)
    return x.shape


def _as_inexact(x):
    dt = to_inexact(x.dtype)
    return x if x.dtype == dt else x.astype(dt)


def _softmax_reference(x, *, axis, log=False):
    dt = to_inexact(x.dtype)
    a = np.asarray(x).astype(np.float64)
    shifted = a - a.max(axis=axis, keepdims=True)
    if log:
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    else:
        e = np.exp(shifted)
        out = e / e.sum(axis=axis, keepdims=True)
    return jnp.asarray(out).astype(dt)


def _softmax_samples():
    out = [Sample((arr((2, 5), dt, -4, 4),), {"axis": -1}, f"{dt}-last") for dt in FLOATS]
    out += [
        Sample((arr((3, 4, 2)),), {"axis": 1}, "middle"),
        Sample((arr((6,)),), {"axis": 0}, "1d"),
        Sample((arr((2, 3), "f32", 80, 120),), {"axis": -1}, "large-logits"),
        Sample((arr((0, 3)),), {"axis": -1}, "empty"),
        Sample((arr((2, 3), "i32", -3, 3),), {"axis": -1}, "int-input"),
    ]
    return out


def _softmax_vjp(ct, x, *, out, axis):
    # d softmax = out * (ct - <ct, out>) along the axis.
    inner = bind("sum", ct * out, axes=(axis,), keepdims=True)
    return [out * (ct - inner)]


def _log_softmax_vjp(ct, x, *, out, axis):
    # d log_softmax = ct - softmax * sum(ct) along the axis; softmax = exp(out).
    total = bind("sum", ct, axes=(axis,), keepdims=True)
    return [ct - bind("exp", out) * total]


softmax = defop(
    "softmax",
    shape=_softmax_shape,
    dtype=inexact_dtype,
    weak=never_weak,  # jax.nn.softmax drops the weak flag
    impl=lambda x, *, axis: jax.nn.softmax(_as_inexact(x), axis=axis),
    attrs={"axis": Attr("int", -1)},
    vjp=_softmax_vjp,
    samples=_softmax_samples,
    reference=_softmax_reference,
    doc="Numerically stable softmax along ``axis`` (the max is subtracted first).",
)

log_softmax = defop(
    "log_softmax",
    shape=_softmax_shape,
    dtype=inexact_dtype,
    weak=never_weak,  # jax.nn.log_softmax drops the weak flag
    impl=lambda x, *, axis: jax.nn.log_softmax(_as_inexact(x), axis=axis),
    attrs={"axis": Attr("int", -1)},
    vjp=_log_softmax_vjp,
    samples=_softmax_samples,
    reference=lambda x, *, axis: _softmax_reference(x, axis=axis, log=True),
    doc="Numerically stable log-softmax along ``axis``.",
)


# -- one_hot ------------------------------------------------------------------------


def _canonical(dtype) -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def _one_hot_shape(x: TensorType, *, num_classes: int, dtype) -> tuple[int, ...]:
    if x.dtype.kind not in "iu":
        raise ShapeError(f"one_hot needs integer class ids, got {x}")
    if num_classes < 0:
        raise ShapeError(f"one_hot needs num_classes >= 0, got {num_classes}")
    return x.shape + (num_classes,)


one_hot = defop(
    "one_hot",
    shape=_one_hot_shape,
    dtype=lambda x, *, num_classes, dtype: _canonical(dtype),
    weak=never_weak,
    impl=lambda x, *, num_classes, dtype: jax.nn.one_hot(x, num_classes, dtype=dtype),
    attrs={"num_classes": Attr("int"), "dtype": Attr("dtype", np.dtype(np.float32))},
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: [
        Sample((arr((5,), "i32", 0, 3),), {"num_classes": 4}, "i32"),
        Sample((arr((2, 3), "i64", -1, 5),), {"num_classes": 4, "dtype": "f64"}, "out-of-range"),
        Sample((arr((4,), "u8", 0, 2),), {"num_classes": 3, "dtype": "bf16"}, "u8-bf16"),
        Sample((arr((3,), "i32", 0, 2),), {"num_classes": 3, "dtype": "i32"}, "int-out"),
        Sample((arr((3,), "i32", 0, 2),), {"num_classes": 3, "dtype": "bool"}, "bool-out"),
        Sample((arr((), "i32", 0, 2),), {"num_classes": 3}, "scalar"),
        Sample((arr((0,), "i32", 0, 2),), {"num_classes": 3}, "empty"),
    ],
    reference=lambda x, *, num_classes, dtype: (
        np.asarray(x)[..., None] == np.arange(num_classes)
    ).astype(_canonical(dtype)),
    doc="Class ids -> one-hot vectors on a new last axis; ids outside [0, n) give zeros.",
)


# -- stop_gradient -------------------------------------------------------------------

stop_gradient = defop(
    "stop_gradient",
    keys=True,
    shape=same_shape,
    impl=lax.stop_gradient,
    # NOTE: not NOT_DIFFERENTIABLE: its input may well be a float that other paths
    # differentiate through; the rule just sends no cotangent back through this use.
    vjp=lambda ct, x, *, out: [None],
    # grad=False: finite differences see an identity; tests/test_autodiff_nn.py checks
    # that the gradient through it is zero.
    samples=lambda: (
        [Sample((arr((2, 3), dt),), name=dt, grad=False) for dt in FLOATS + ("i32", "bool")]
        + [
            Sample((arr(()),), name="scalar", grad=False),
            Sample((arr((0, 2)),), name="empty", grad=False),
        ]
    ),
    reference=lambda x: x,
    doc="Identity in the forward pass; the gradient through it is zero.",
)
