"""Ops that JAX primitives need and the rest of the library did not have: ``expm1``,
``erfc``, ``erf_inv``, ``cumsum``, ``sort``, ``argsort``, ``top_k`` and
``bitcast_convert_type`` (how jax.random makes floats of random bits). `tg.from_jax`
maps most primitives onto the existing ops; these have no faithful expression in them
(``exp(x) - 1`` and ``1 - erf(x)`` lose every digit where the result is small, a
cumulative sum written as a triangular matmul is quadratic, and sorting is not
elementwise).

References are float64 numpy/scipy (numpy's stable sorts), independent of the lax
implementations.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from jax import lax

from .defop import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    bind,
    defop,
    as_inexact,
    default_int,
    inexact_dtype,
    inexact_weak,
    never_weak,
    normalize_axis,
    same_shape,
    to_inexact,
)
from ..ir.types import dtype_name, is_bool
from .samples import FLOATS, INTS, arr
from .shape import _take_along_axis_vjp

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


# -- sort, argsort, top_k -------------------------------------------------------------------
# JAX's order: ascending by total order (NaNs last), ties in their original order; the
# descending forms are jax.numpy's (ties still in their original order for argsort and
# top_k; jnp.sort(descending=True) is the ascending sort reversed).

_SORT_ATTRS = {"axis": Attr("int", -1), "descending": Attr("bool", False)}


def _sort_shape(x: TensorType, *, axis, descending):
    if x.ndim == 0:
        raise ShapeError(f"sorting needs an operand of rank >= 1, got {x}")
    if x.dtype.kind == "c":
        raise ShapeError(f"sorting needs real operands, got {x}")
    normalize_axis(axis, x.ndim)
    return x.shape


def _stable_argsort(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """numpy reference: stable argsort, descending with ties in their original order."""
    if not descending:
        return np.argsort(a, axis=axis, kind="stable")
    n = a.shape[axis]
    rev = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return n - 1 - np.flip(rev, axis)


def _sort_vjp(ct, x, *, out, axis, descending):
    # out = x permuted along axis: the cotangent goes back through the inverse permutation
    # (a gather, not a scatter); the descending sort is the ascending one reversed
    inv = bind("argsort", bind("argsort", x, axis=axis, descending=False), axis=axis, descending=False)
    if descending:
        inv = (x.shape[normalize_axis(axis, len(x.shape))] - 1) - inv
    return [bind("take_along_axis", ct, inv, axis=axis)]


def _sort_samples():
    out = [Sample((arr((3, 5), dt, -3, 3),), {"axis": -1, "descending": False}, dt) for dt in FLOATS + INTS]
    ties = np.array([[2.0, 1.0, 2.0, np.nan, 1.0, -0.0, 0.0]], np.float32)
    out += [
        Sample((arr((4, 3), "f64"),), {"axis": 0, "descending": False}, "f64-axis0"),
        Sample((arr((2, 6)),), {"axis": 1, "descending": True}, "descending"),
        # ties and a NaN: no derivative there (finite differences), so forward only
        Sample((ties,), {"axis": 1, "descending": False}, "ties-nan", grad=False),
        Sample((ties,), {"axis": 1, "descending": True}, "ties-nan-descending", grad=False),
        Sample((arr((6,), "bool"),), {"axis": 0, "descending": False}, "bool"),
        Sample((arr((0, 3)),), {"axis": 1, "descending": False}, "empty"),
    ]
    return out


def _sort_reference(x, *, axis=-1, descending=False):
    a = np.asarray(x)
    s = np.sort(a, axis=axis, kind="stable")
    return jnp.asarray(np.flip(s, axis) if descending else s)


sort = defop(
    "sort",
    shape=_sort_shape,
    impl=lambda x, *, axis, descending: jnp.sort(x, axis=axis, descending=descending),
    attrs=_SORT_ATTRS,
    vjp=_sort_vjp,
    samples=_sort_samples,
    reference=_sort_reference,
    doc="jnp.sort along ``axis`` (NaNs last; ``descending`` reverses the ascending order).",
)

argsort = defop(
    "argsort",
    shape=_sort_shape,
    dtype=lambda x, **_: default_int(),
    weak=never_weak,
    impl=lambda x, *, axis, descending: jnp.argsort(x, axis=axis, stable=True, descending=descending),
    attrs=_SORT_ATTRS,
    vjp=NOT_DIFFERENTIABLE,
    samples=_sort_samples,
    reference=lambda x, *, axis=-1, descending=False: jnp.asarray(
        _stable_argsort(np.asarray(x), normalize_axis(axis, np.ndim(x)), descending)
    ).astype(default_int()),
    doc="jnp.argsort (stable): the indices that sort along ``axis``; ties keep their order.",
)


def _top_k_check(x: TensorType, *, k):
    if x.ndim == 0:
        raise ShapeError(f"top_k needs an operand of rank >= 1, got {x}")
    if not 0 <= k <= x.shape[-1]:
        raise ShapeError(f"top_k: k={k} is not within [0, {x.shape[-1]}] (the last axis of {x})")
    if x.dtype.kind == "c":
        raise ShapeError(f"top_k needs real operands, got {x}")
    shape = x.shape[:-1] + (k,)
    return shape, shape


def _top_k_vjp(ct, x, *, out, k):
    # the values are x gathered along the last axis by the indices: take_along_axis's VJP
    if ct[0] is None:
        return [None]
    return [_take_along_axis_vjp(ct[0], x, out[1], out=out[0], axis=-1)[0]]


def _top_k_reference(x, *, k):
    a = np.asarray(x)
    idx = _stable_argsort(a, a.ndim - 1, descending=True)[..., :k]
    return jnp.asarray(np.take_along_axis(a, idx, -1)), jnp.asarray(idx.astype(np.int32))


top_k = defop(
    "top_k",
    shape=lambda x, *, k: _top_k_check(x, k=k),
    dtype=lambda x, *, k: (x.dtype, np.dtype(np.int32)),
    weak=lambda x, *, k: (x.weak, x.weak),  # lax.top_k's indices are weak when x is
    sharding=lambda x, *, k: (None, None),
    impl=lambda x, *, k: tuple(lax.top_k(x, k)),
    attrs={"k": Attr("int")},
    multi_output=True,
    vjp=_top_k_vjp,
    samples=lambda: [Sample((arr((3, 6), dt, -3, 3),), {"k": 2}, dt) for dt in FLOATS + ("i32",)]
    + [
        Sample((arr((7,)),), {"k": 7}, "k-all"),
        Sample((np.array([[1.0, 3.0, 3.0, 2.0, 3.0]], np.float32),), {"k": 2}, "ties", grad=False),
        Sample((arr((2, 3, 5), "f64"),), {"k": 1}, "f64-3d"),
        Sample((arr((0, 4)),), {"k": 3}, "empty"),
    ],
    reference=_top_k_reference,
    doc="lax.top_k: the k largest values along the last axis and their int32 indices "
    "(ties: the lower index first).",
)


# -- bitcast_convert_type ------------------------------------------------------------------


def _bitcast_dtype(x: TensorType, *, dtype) -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))  # i64 is i32 while x64 is off


def _bitcast_shape(x: TensorType, *, dtype):
    dtype = _bitcast_dtype(x, dtype=dtype)
    if is_bool(x.dtype) or is_bool(dtype):
        raise ShapeError(f"bitcast_convert_type does not take bool (its bits are not defined), got {x} to {dtype}")
    have, want = x.dtype.itemsize, np.dtype(dtype).itemsize
    if have == want:
        return x.shape
    if have > want:  # each element becomes have // want narrower ones, on a new last axis
        return x.shape + (have // want,)
    if x.shape[-1:] != (want // have,):
        raise ShapeError(
            f"bitcast_convert_type from {x} to {dtype_name(dtype)} needs a last axis of "
            f"{want // have} (the {dtype_name(x.dtype)} elements of one {dtype_name(dtype)})"
        )
    return x.shape[:-1]


def _bitcast_reference(x, *, dtype):
    # numpy's view of the same bytes (little-endian, as XLA's bitcast on every host we run)
    a = np.ascontiguousarray(np.asarray(x))
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    out = a.view(dtype)
    if a.dtype.itemsize > dtype.itemsize:
        return out.reshape(a.shape + (a.dtype.itemsize // dtype.itemsize,))
    if a.dtype.itemsize < dtype.itemsize:
        return out.reshape(a.shape[:-1])
    return out


bitcast_convert_type = defop(
    "bitcast_convert_type",
    shape=_bitcast_shape,
    dtype=_bitcast_dtype,
    weak=never_weak,
    impl=lambda x, *, dtype: lax.bitcast_convert_type(x, dtype),
    attrs={"dtype": Attr("dtype")},
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: [
        Sample((arr((2, 3), "f32"),), {"dtype": np.dtype(np.uint32)}, "f32-u32"),
        Sample((np.array([1065353216, 0x7F800000, 0xFFC00000], np.uint32),), {"dtype": np.dtype(np.float32)}, "u32-f32"),
        Sample((arr((4,), "f32"),), {"dtype": np.dtype(np.uint8)}, "f32-u8"),
        Sample((np.arange(8, dtype=np.uint16).reshape(4, 2),), {"dtype": np.dtype(np.int32)}, "u16-i32"),
        Sample((arr((3,), "bf16"),), {"dtype": np.dtype(np.int16)}, "bf16-i16"),
        Sample((arr((2,), "f64"),), {"dtype": np.dtype(np.int64)}, "f64-i64"),
        Sample((np.zeros((0, 2), np.uint16),), {"dtype": np.dtype(np.float32)}, "empty"),
    ],
    reference=_bitcast_reference,
    doc="The same bits read as ``dtype`` (lax.bitcast_convert_type): a narrower dtype adds "
    "a last axis of the parts of each element, a wider one consumes it.",
)
