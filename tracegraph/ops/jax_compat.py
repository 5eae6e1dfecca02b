"""Ops that JAX primitives need and the rest of the library did not have: ``expm1``,
``erfc``, ``erf_inv`` and ``cumsum``. `tg.from_jax` maps most primitives onto the
existing ops; these four have no faithful expression in them (``exp(x) - 1`` and
``1 - erf(x)`` lose every digit where the result is small, and a cumulative sum
written as a triangular matmul is quadratic).

References are float64 numpy/scipy, independent of the lax implementations.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.special
from jax import lax

from .defop import (
    Attr,
    Sample,
    ShapeError,
    TensorType,
    bind,
    defop,
    as_inexact,
    inexact_dtype,
    inexact_weak,
    normalize_axis,
    same_shape,
    to_inexact,
)
from .samples import FLOATS, INTS, arr

_SHAPES = [(), (5,), (2, 3), (0, 3)]


def _unary_samples(low, high, dtypes=FLOATS):
    out = [
        Sample((arr(s, dt, low, high),), name=f"{dt}{list(s)}") for dt in dtypes for s in _SHAPES
    ]
    out.append(Sample((arr((2, 3), "i32", -2, 2),), name="i32-input"))
    return out


def _float64_reference(fn):
    """A reference evaluated in float64 numpy, cast to the float dtype the op gives."""

    def ref(x):
        dt = to_inexact(x.dtype)
        return jnp.asarray(fn(np.asarray(x).astype(np.float64))).astype(dt)

    return ref


_as_float = as_inexact  # jax.numpy's: a weak int becomes a weak float


expm1 = defop(
    "expm1",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=inexact_weak,
    impl=lambda x: lax.expm1(_as_float(x)),
    vjp=lambda ct, x, *, out: [ct * (out + 1)],
    samples=lambda: _unary_samples(-3.0, 3.0)
    + [Sample((np.array([1e-7, -3e-6, 0.0], np.float32),), name="tiny")],
    reference=_float64_reference(np.expm1),
    doc="``exp(x) - 1``, accurate where the result is near 0.",
)

erfc = defop(
    "erfc",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=inexact_weak,
    impl=lambda x: lax.erfc(_as_float(x)),
    # d/dx erfc(x) = -2/sqrt(pi) exp(-x^2)
    vjp=lambda ct, x, *, out: [ct * bind("exp", -(x * x)) * (-2 / math.sqrt(math.pi))],
    samples=lambda: _unary_samples(-3.0, 3.0)
    + [Sample((np.array([4.0, 6.0, -5.0], np.float32),), name="tail")],
    reference=_float64_reference(scipy.special.erfc),
    tolerances={"f32": (2e-5, 1e-7)},
    doc="``1 - erf(x)``, accurate in the upper tail (jax.nn.gelu(approximate=False)).",
)

erf_inv = defop(
    "erf_inv",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=inexact_weak,
    impl=lambda x: lax.erf_inv(_as_float(x)),
    # d/dx erf_inv(x) = sqrt(pi)/2 exp(erf_inv(x)^2)
    vjp=lambda ct, x, *, out: [ct * bind("exp", out * out) * (math.sqrt(math.pi) / 2)],
    samples=lambda: [
        Sample((arr(s, dt, -0.95, 0.95),), name=f"{dt}{list(s)}") for dt in FLOATS for s in _SHAPES
    ]
    + [Sample((np.array([-1.0, 1.0, 0.0], np.float32),), name="poles", grad=False)],
    reference=_float64_reference(scipy.special.erfinv),
    tolerances={"f32": (2e-5, 2e-6), "bf16": (3e-2, 3e-2)},
    doc="Inverse of erf on (-1, 1); -inf and inf at -1 and 1.",
)


# -- cumsum ---------------------------------------------------------------------------


def _cumsum_shape(x: TensorType, *, axis, reverse):
    if x.ndim == 0:
        raise ShapeError("cumsum needs an operand of rank >= 1")
    if x.dtype.kind == "b":
        raise ShapeError(f"cumsum needs a numeric operand, got {x}")
    normalize_axis(axis, x.ndim)
    return x.shape


def _cumsum_impl(x, *, axis, reverse):
    return lax.cumsum(x, axis=normalize_axis(axis, np.ndim(x)), reverse=reverse)


def _cumsum_reference(x, *, axis, reverse):
    a = np.asarray(x)
    ax = normalize_axis(axis, a.ndim)
    w = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
    if reverse:
        w = np.flip(w, ax)
    out = np.cumsum(w, axis=ax)
    if reverse:
        out = np.flip(out, ax)
    return jnp.asarray(out).astype(a.dtype)


def _cumsum_samples():
    out = []
    for dt in FLOATS + INTS:
        out.append(Sample((arr((3, 4), dt, -3, 3),), {"axis": 1, "reverse": False}, f"{dt}"))
    out += [
        Sample((arr((3, 4)),), {"axis": 0, "reverse": True}, "reverse-axis0"),
        Sample((arr((2, 3, 4), "f64"),), {"axis": -2, "reverse": False}, "f64-negative-axis"),
        Sample((arr((5,)),), {"axis": 0, "reverse": True}, "1d-reverse"),
        Sample((arr((0, 3)),), {"axis": 0, "reverse": False}, "empty"),
        Sample((arr((4,), "u8", 50, 100),), {"axis": 0, "reverse": False}, "u8-wraps-as-lax"),
    ]
    return out


cumsum = defop(
    "cumsum",
    shape=_cumsum_shape,
    impl=_cumsum_impl,
    attrs={"axis": Attr("int", 0), "reverse": Attr("bool", False)},
    # the adjoint of a running sum is the running sum in the other direction
    vjp=lambda ct, x, *, out, axis, reverse: [
        bind("cumsum", ct, axis=axis, reverse=not reverse)
    ],
    samples=_cumsum_samples,
    reference=_cumsum_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="lax.cumsum: running sum along ``axis`` (from the end with ``reverse``); keeps "
    "the dtype (integers wrap, no widening as in jnp.cumsum).",
)
