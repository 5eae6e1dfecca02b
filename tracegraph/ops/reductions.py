"""Reductions: sum, mean, max, min, prod, logsumexp over ``axes`` (None = all), and
argmax/argmin along one ``axis``; all with ``keepdims``.

Result dtypes follow jax.numpy exactly: sum/prod widen bool and small integers to the
default int (unsigned to the default uint), mean and logsumexp give floats, max/min keep
the dtype, argmax/argmin give the default int, and every reduction drops the weak flag.
A sharded operand's partition spec loses the reduced dims (unpartitioned with keepdims).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .defop import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    default_int,
    defop,
    bind,
    never_weak,
    normalize_axes,
    normalize_axis,
    to_inexact,
)
from .samples import arr

# -- shape rules --------------------------------------------------------------------


def _reduced_shape(dims, axes, keepdims, kept=1):
    """``dims`` (a shape, or a partition spec) without ``axes``, or with ``kept`` there."""
    if keepdims:
        return tuple(kept if i in axes else d for i, d in enumerate(dims))
    return tuple(d for i, d in enumerate(dims) if i not in axes)


def _default_uint() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.uint64))


def _accumulating_dtype(dtype) -> np.dtype:
    # jnp's sum/prod: bool and integers narrower than the default int are widened.
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return default_int()
    if dt.kind == "i":
        return dt if dt.itemsize >= default_int().itemsize else default_int()
    if dt.kind == "u":
        return dt if dt.itemsize >= _default_uint().itemsize else _default_uint()
    return dt


def _reduce_shape(needs_identity=False):
    def rule(x: TensorType, *, axes, keepdims):
        ax = normalize_axes(axes, x.ndim)
        if needs_identity and any(x.shape[a] == 0 for a in ax):
            raise ShapeError(
                f"cannot reduce over a zero-size axis (shape {list(x.shape)}, axes {ax}): "
                "the reduction has no identity"
            )
        return _reduced_shape(x.shape, ax, keepdims)

    return rule


def _reduce_dtype(dtype_of):
    return lambda x, *, axes, keepdims: dtype_of(x.dtype)


def _reduce_sharding(x: TensorType, *, axes, keepdims):
    if x.sharding is None:
        return None
    ax = normalize_axes(axes, x.ndim)
    return _reduced_shape(x.sharding, ax, keepdims, kept=None)


def _arg_shape(x: TensorType, *, axis, keepdims):
    if axis is None:
        if x.size == 0:
            raise ShapeError(f"cannot take the arg-extremum of an empty array {x}")
        return (1,) * x.ndim if keepdims else ()
    a = normalize_axis(axis, x.ndim)
    if x.ndim == 0:
        raise ShapeError("axis given for a 0-d array")
    if x.shape[a] == 0:
        raise ShapeError(f"cannot take the arg-extremum over axis {axis} of size 0 ({x})")
    return _reduced_shape(x.shape, (a,), keepdims)


def _arg_sharding(x: TensorType, *, axis, keepdims):
    if x.sharding is None:
        return None
    ax = tuple(range(x.ndim)) if axis is None else (normalize_axis(axis, x.ndim),)
    return _reduced_shape(x.sharding, ax, keepdims, kept=None)


# -- samples ------------------------------------------------------------------------


def _reduce_samples(dtypes, low=-2.0, high=2.0, empty=True):
    out = []
    for dt in dtypes:
        x = arr((2, 3, 4), dt, low, high)
        out += [
            Sample((x,), {}, name=f"{dt}-all"),
            Sample((x,), {"axes": (1,)}, name=f"{dt}-axis1"),
            Sample((x,), {"axes": (-1, 0), "keepdims": True}, name=f"{dt}-neg-keepdims"),
        ]
    out += [
        Sample((arr((), "f32", low, high),), {}, name="scalar"),
        Sample((arr((), "f32", low, high),), {"axes": (), "keepdims": True}, name="scalar-no-axes"),
        Sample((arr((5,), "f32", low, high),), {"keepdims": True}, name="vector-keepdims"),
        Sample((arr((2, 3), "f32", low, high),), {"axes": ()}, name="no-axes"),
        Sample((arr((0, 3), "f32", low, high),), {"axes": (1,)}, name="empty-kept-axis"),
    ]
    if empty:
        out += [
            Sample((arr((0, 3), "f32", low, high),), {"axes": (0,)}, name="empty-reduced", grad=False),
            Sample((arr((0, 3), "i32", low, high),), {}, name="empty-all-int"),
        ]
    return out


_REDUCE_ATTRS = {"axes": Attr("opt_ints", None), "keepdims": Attr("bool", False)}
_ALL = ("f32", "f64", "f16", "bf16", "i32", "i64", "u8", "i8", "bool")


def _axes(axes):
    return None if axes is None else tuple(axes)


# -- VJP rules ----------------------------------------------------------------------


def _restore(ct, x, axes, keepdims):
    """Broadcast a reduced cotangent back to the operand's shape."""
    ax = normalize_axes(axes, len(x.shape))
    if not keepdims and ax:
        ct = bind("expand_dims", ct, axes=ax)
    return bind("broadcast_to", ct, shape=x.shape) if tuple(ct.shape) != tuple(x.shape) else ct


def _count(x, axes):
    ax = normalize_axes(axes, len(x.shape))
    n = 1
    for a in ax:
        n *= x.shape[a]
    return n


def _sum_vjp(ct, x, *, out, axes, keepdims):
    return [_restore(ct, x, axes, keepdims)]


def _mean_vjp(ct, x, *, out, axes, keepdims):
    return [_restore(ct, x, axes, keepdims) / max(_count(x, axes), 1)]


def _chooser_vjp(ct, x, *, out, axes, keepdims):
    # As JAX: the cotangent is shared equally among the elements equal to the extremum.
    hit = bind("eq", x, _restore(out, x, axes, keepdims))
    mask = bind("astype", hit, dtype=ct.dtype)
    count = bind("sum", mask, axes=axes, keepdims=True)
    share = _restore(ct, x, axes, keepdims) / bind("broadcast_to", count, shape=x.shape)
    return [share * mask]


def _prod_vjp(ct, x, *, out, axes, keepdims):
    # d prod / d x_i = product of the others. Exact with zeros: one zero in a group gets
    # the product of the non-zeros, everything else 0; two or more zeros give 0 throughout.
    is_zero = bind("eq", x, 0)
    safe = bind("where", is_zero, 1, x)
    p_nz = bind("prod", safe, axes=axes, keepdims=True)
    zeros = bind("sum", bind("astype", is_zero, dtype="int32"), axes=axes, keepdims=True)
    p_nz, zeros = (bind("broadcast_to", t, shape=x.shape) for t in (p_nz, zeros))
    others = bind(
        "where",
        zeros == 0,
        p_nz / safe,
        bind("where", bind("logical_and", zeros == 1, is_zero), p_nz, 0),
    )
    return [_restore(ct, x, axes, keepdims) * others]


def _logsumexp_vjp(ct, x, *, out, axes, keepdims):
    return [_restore(ct, x, axes, keepdims) * bind("exp", x - _restore(out, x, axes, keepdims))]


# -- ops ----------------------------------------------------------------------------

sum_ = defop(
    "sum",
    shape=_reduce_shape(),
    dtype=_reduce_dtype(_accumulating_dtype),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jnp.sum(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_sum_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(_ALL),
    reference=lambda x, axes=None, keepdims=False: jnp.sum(
        x, axis=axes, keepdims=keepdims, dtype=_accumulating_dtype(x.dtype)
    ),
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="Sum over ``axes`` (None: all). Bool and small ints widen to the default int.",
)

prod = defop(
    "prod",
    shape=_reduce_shape(),
    dtype=_reduce_dtype(_accumulating_dtype),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jnp.prod(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_prod_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(_ALL, low=-1.5, high=1.5),
    reference=lambda x, axes=None, keepdims=False: jnp.prod(
        x, axis=axes, keepdims=keepdims, dtype=_accumulating_dtype(x.dtype)
    ),
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="Product over ``axes`` (None: all), with sum's dtype rule.",
)


def _mean_reference(x, axes=None, keepdims=False):
    dt = to_inexact(x.dtype)
    ax = normalize_axes(axes, x.ndim)
    count = int(np.prod([x.shape[a] for a in ax])) if ax else 1
    total = jnp.sum(
        x.astype(np.float64 if dt == np.float64 else np.float32), axis=ax, keepdims=keepdims
    )
    return (total / count).astype(dt)


mean = defop(
    "mean",
    shape=_reduce_shape(),
    dtype=_reduce_dtype(to_inexact),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jnp.mean(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_mean_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(_ALL),
    reference=_mean_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="Arithmetic mean over ``axes``; integer and bool inputs give floats.",
)

max_ = defop(
    "max",
    shape=_reduce_shape(needs_identity=True),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jnp.max(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_chooser_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(_ALL, empty=False),
    reference=lambda x, axes=None, keepdims=False: (
        -jnp.min(-x, axis=axes, keepdims=keepdims)
        if x.dtype.kind not in "bu"
        else jnp.max(x, axis=axes, keepdims=keepdims)
    ),
    doc="Maximum over ``axes``; a zero-size reduced axis is an error (no identity).",
)

min_ = defop(
    "min",
    shape=_reduce_shape(needs_identity=True),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jnp.min(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_chooser_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(_ALL, empty=False),
    reference=lambda x, axes=None, keepdims=False: (
        -jnp.max(-x, axis=axes, keepdims=keepdims)
        if x.dtype.kind not in "bu"
        else jnp.min(x, axis=axes, keepdims=keepdims)
    ),
    doc="Minimum over ``axes``; a zero-size reduced axis is an error (no identity).",
)


def _logsumexp_reference(x, axes=None, keepdims=False):
    dt = to_inexact(x.dtype)
    work = x.astype(np.float64 if dt == np.float64 else np.float32)
    ax = normalize_axes(axes, x.ndim)
    m = jnp.max(work, axis=ax, keepdims=True, initial=-np.inf)
    out = jnp.log(jnp.sum(jnp.exp(work - m), axis=ax, keepdims=True)) + m
    if not keepdims:
        out = jnp.squeeze(out, axis=ax)
    return out.astype(dt)


logsumexp = defop(
    "logsumexp",
    shape=_reduce_shape(),
    dtype=_reduce_dtype(to_inexact),
    weak=never_weak,
    sharding=_reduce_sharding,
    impl=lambda x, *, axes, keepdims: jax.nn.logsumexp(x, axis=_axes(axes), keepdims=keepdims),
    vjp=_logsumexp_vjp,
    attrs=_REDUCE_ATTRS,
    samples=lambda: _reduce_samples(("f32", "f64", "f16", "bf16", "i32", "bool"), empty=True),
    reference=_logsumexp_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="``log(sum(exp(x)))`` over ``axes``, computed stably (max-shifted).",
)


# -- argmax / argmin ------------------------------------------------------------------


def _arg_samples():
    out = []
    for dt in ("f32", "f64", "f16", "bf16", "i32", "u8", "bool"):
        x = arr((3, 4), dt, -3, 3)
        out += [
            Sample((x,), {}, name=f"{dt}-flat"),
            Sample((x,), {"axis": 1}, name=f"{dt}-axis1"),
            Sample((x,), {"axis": -2, "keepdims": True}, name=f"{dt}-neg-keepdims"),
        ]
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], np.float32)
    out += [
        Sample((ties,), {"axis": 1}, name="ties-first"),
        Sample((arr((), "f32"),), {}, name="scalar"),
        Sample((arr((), "f32"),), {"keepdims": True}, name="scalar-keepdims"),
        Sample((arr((2, 3, 4)),), {"keepdims": True}, name="flat-keepdims"),
        Sample((arr((0, 3)),), {"axis": 1}, name="empty-kept-axis"),
    ]
    return out


def _numpy_arg(fn, x, axis, keepdims):
    a = np.asarray(x)
    if a.dtype.kind == "V" or (a.dtype.kind == "f" and a.dtype.itemsize == 2):
        a = a.astype(np.float32)  # bf16/f16 -> f32 is exact and keeps the order
    return jnp.asarray(fn(a, axis=axis, keepdims=keepdims), dtype=default_int())


_ARG_ATTRS = {"axis": Attr("opt_int", None), "keepdims": Attr("bool", False)}

argmax = defop(
    "argmax",
    shape=_arg_shape,
    dtype=lambda x, *, axis, keepdims: default_int(),
    weak=never_weak,
    sharding=_arg_sharding,
    impl=lambda x, *, axis, keepdims: jnp.argmax(x, axis=axis, keepdims=keepdims),
    attrs=_ARG_ATTRS,
    vjp=NOT_DIFFERENTIABLE,
    samples=_arg_samples,
    reference=lambda x, axis=None, keepdims=False: _numpy_arg(np.argmax, x, axis, keepdims),
    doc="Index of the first maximum along ``axis`` (None: of the flattened array).",
)

argmin = defop(
    "argmin",
    shape=_arg_shape,
    dtype=lambda x, *, axis, keepdims: default_int(),
    weak=never_weak,
    sharding=_arg_sharding,
    impl=lambda x, *, axis, keepdims: jnp.argmin(x, axis=axis, keepdims=keepdims),
    attrs=_ARG_ATTRS,
    vjp=NOT_DIFFERENTIABLE,
    samples=_arg_samples,
    reference=lambda x, axis=None, keepdims=False: _numpy_arg(np.argmin, x, axis, keepdims),
    doc="Index of the first minimum along ``axis`` (None: of the flattened array).",
)
