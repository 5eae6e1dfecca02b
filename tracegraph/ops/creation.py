"""Creation ops (no array inputs): ``full``, ``arange``, ``eye``.

Their dtype attribute is canonicalized as JAX does (``f64`` becomes ``f32`` unless
``jax_enable_x64`` is on). ``full(weak=True)`` is jnp.full of a Python scalar: weakly
typed, so it takes the dtype of the strong operand it meets.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .defop import NOT_DIFFERENTIABLE, Attr, Sample, ShapeError, defop, never_weak
from .shape import check_shape


def canonical_dtype(dtype) -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


_WEAK_KINDS = {"i": (np.int64, int), "f": (np.float64, float), "c": (np.complex128, complex)}


def _weak_python_type(dtype, weak):
    """The Python scalar type whose jnp.full is weak of ``dtype``, or None if none is."""
    dt = canonical_dtype(dtype)
    entry = _WEAK_KINDS.get(dt.kind)
    if not weak or entry is None or canonical_dtype(entry[0]) != dt:
        return None
    return entry[1]


# -- full ------------------------------------------------------------------------------


def _attr_dtype(**attrs) -> np.dtype:
    """The dtype rule of creation ops: their ``dtype`` attribute, canonicalized."""
    return canonical_dtype(attrs["dtype"])


def _full_impl(*, shape, value, dtype, weak):
    py = _weak_python_type(dtype, weak)
    if py is not None:
        return lax.full(shape, py(value))  # a Python scalar fill: jax keeps it weak
    return lax.full(shape, value, canonical_dtype(dtype))


full = defop(
    "full",
    vjp=NOT_DIFFERENTIABLE,  # no array inputs
    shape=lambda *, shape, value, dtype, weak: check_shape(shape),
    dtype=_attr_dtype,
    weak=lambda *, shape, value, dtype, weak: _weak_python_type(dtype, weak) is not None,
    impl=_full_impl,
    attrs={
        "shape": Attr("ints"),
        "value": Attr("scalar"),
        "dtype": Attr("dtype"),
        "weak": Attr("bool", False),
    },
    arity=0,
    samples=lambda: [
        Sample((), {"shape": (2, 3), "value": 1.5, "dtype": "f32"}, name="f32"),
        Sample((), {"shape": (4,), "value": -2, "dtype": "i32"}, name="i32"),
        Sample((), {"shape": (2, 2), "value": 0.25, "dtype": "bf16"}, name="bf16"),
        Sample((), {"shape": (3,), "value": 7, "dtype": "f16"}, name="int-into-f16"),
        Sample((), {"shape": (3,), "value": 2.9, "dtype": "i32"}, name="float-into-i32"),
        Sample((), {"shape": (3,), "value": True, "dtype": "bool"}, name="bool"),
        Sample((), {"shape": (2,), "value": 3, "dtype": "u8"}, name="u8"),
        Sample((), {"shape": (), "value": 0.0, "dtype": "f32"}, name="scalar"),
        Sample((), {"shape": (0, 3), "value": 1.0, "dtype": "f32"}, name="empty"),
        Sample((), {"shape": (2,), "value": 1.0, "dtype": "f32", "weak": True}, name="weak-float"),
        Sample((), {"shape": (2,), "value": 3, "dtype": "i32", "weak": True}, name="weak-int"),
        Sample(
            (), {"shape": (2,), "value": 3, "dtype": "i8", "weak": True}, name="weak-i8-is-strong"
        ),
    ],
    reference=lambda shape, value, dtype, weak=False: jnp.full(
        shape, value, canonical_dtype(dtype)
    ),
    doc="An array of ``shape`` filled with ``value`` (cast to ``dtype``).",
)


# -- arange -----------------------------------------------------------------------------


def arange_length(start, stop, step) -> int:
    """Number of elements of arange(start, stop, step), as numpy and jax.numpy count."""
    if step == 0:
        raise ShapeError("arange step must not be zero")
    n = (stop - start) / step
    if not math.isfinite(n):
        raise ShapeError(f"arange({start}, {stop}, {step}) has no finite length")
    return max(0, math.ceil(n))


def _arange_shape(*, start, stop, step, dtype):
    dt = canonical_dtype(dtype)
    if dt.kind not in "iuf" and dt.name != "bfloat16":
        raise ShapeError(f"arange needs an integer or float dtype, got {dt}")
    return check_shape((arange_length(start, stop, step),))


arange = defop(
    "arange",
    vjp=NOT_DIFFERENTIABLE,  # no array inputs
    shape=_arange_shape,
    dtype=_attr_dtype,
    weak=never_weak,
    impl=lambda *, start, stop, step, dtype: jnp.arange(
        start, stop, step, dtype=canonical_dtype(dtype)
    ),
    attrs={
        "start": Attr("scalar", 0),
        "stop": Attr("scalar"),
        "step": Attr("scalar", 1),
        "dtype": Attr("dtype"),
    },
    arity=0,
    samples=lambda: [
        Sample((), {"start": 0, "stop": 5, "step": 1, "dtype": "i32"}, name="i32"),
        Sample((), {"start": 2, "stop": 11, "step": 3, "dtype": "i32"}, name="step3"),
        Sample((), {"start": 5, "stop": -4, "step": -2, "dtype": "i32"}, name="negative-step"),
        Sample((), {"start": 0.5, "stop": 3.0, "step": 0.25, "dtype": "f32"}, name="f32"),
        Sample((), {"start": 0, "stop": 8, "step": 1, "dtype": "bf16"}, name="bf16"),
        Sample((), {"start": 1, "stop": 7, "step": 2, "dtype": "f16"}, name="f16"),
        Sample((), {"start": 0, "stop": 6, "step": 1, "dtype": "u8"}, name="u8"),
        Sample((), {"start": 3, "stop": 3, "step": 1, "dtype": "i32"}, name="empty"),
        Sample((), {"start": 5, "stop": 0, "step": 1, "dtype": "f32"}, name="empty-backwards"),
    ],
    reference=lambda start, stop, step, dtype: jnp.asarray(
        np.arange(start, stop, step, dtype=np.float64), dtype=canonical_dtype(dtype)
    ),
    doc="Evenly spaced values ``start, start + step, ...`` below ``stop`` (numpy length rule).",
)


# -- eye ------------------------------------------------------------------------------------


eye = defop(
    "eye",
    vjp=NOT_DIFFERENTIABLE,  # no array inputs
    shape=lambda *, n, m, k, dtype: check_shape((n, n if m is None else m)),
    dtype=_attr_dtype,
    weak=never_weak,
    impl=lambda *, n, m, k, dtype: jnp.eye(n, m, k=k, dtype=canonical_dtype(dtype)),
    attrs={
        "n": Attr("int"),
        "m": Attr("opt_int", None),
        "k": Attr("int", 0),
        "dtype": Attr("dtype"),
    },
    arity=0,
    samples=lambda: [
        Sample((), {"n": 3, "dtype": "f32"}, name="square"),
        Sample((), {"n": 2, "m": 4, "k": 1, "dtype": "i32"}, name="wide-k1"),
        Sample((), {"n": 4, "m": 3, "k": -2, "dtype": "bool"}, name="tall-k-2"),
        Sample((), {"n": 3, "k": 5, "dtype": "bf16"}, name="k-outside"),
        Sample((), {"n": 0, "dtype": "f32"}, name="empty"),
    ],
    reference=lambda n, m=None, k=0, dtype=np.float32: jnp.asarray(
        np.eye(n, m, k), dtype=canonical_dtype(dtype)
    ),
    doc="A 2-d array with ones on the ``k``-th diagonal and zeros elsewhere (numpy eye).",
)
