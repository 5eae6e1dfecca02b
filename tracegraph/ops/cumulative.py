"""The cumulative ops beyond ``cumsum`` (in jax_compat.py): ``cumprod``, ``cummax``,
``cummin`` and ``cumlogsumexp`` — lax's running reductions along ``axis`` (from the end
with ``reverse``), keeping the operand's dtype.

NOTE: the VJPs. JAX differentiates these through ``associative_scan`` of the binary op;
here each has a closed form written with `bind`:

- cumprod: ``d out_j / d x_i = prod_{k <= j, k != i} x_k``. Where no zero comes before,
  the sum over j is ``rcumsum(ct * out)_i / x_i``; at the first zero it is the same sum
  with that zero taken as 1 (and over ``j >= i`` only); past it every term holds the
  zero. So exact zeros get the true gradient, not ``0 / 0``.
- cummax / cummin: each output is one of the inputs, the nearest one (in scan order)
  that equals its running value; the cotangent goes there (a one-hot contraction, as
  take_along_axis's VJP). With ties JAX splits the cotangent by the shape of its scan
  tree (the jvp of ``lax.max`` gives 1/2 to each of two equal operands); tracegraph gives
  it all to the nearest tied input, so samples with ties are forward-only.
- cumlogsumexp: ``d out_j / d x_i = exp(x_i - out_j)`` (i <= j); the sum over j is taken
  as two cumulative logsumexps, of the positive and negative parts of ``ct``, so that no
  exp of a running value overflows.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..ir.types import is_inexact, is_int
from .defop import Attr, Sample, ShapeError, TensorType, bind, defop, normalize_axis
from .samples import FLOATS, INTS, arr
from .shape import _take_along_axis_vjp

_ATTRS = {"axis": Attr("int", 0), "reverse": Attr("bool", False)}


def _cumulative_shape(name, floats_only=False):
    def rule(x: TensorType, *, axis, reverse):
        if x.ndim == 0:
            raise ShapeError(f"{name} needs an operand of rank >= 1")
        real_float = is_inexact(x.dtype) and x.dtype.kind != "c"
        if not (real_float or (is_int(x.dtype) and not floats_only)):
            kind = "a real floating" if floats_only else "a real numeric"
            raise ShapeError(f"{name} needs {kind} operand, got {x}")
        normalize_axis(axis, x.ndim)
        return x.shape

    return rule


def _lax_impl(fn):
    return lambda x, *, axis, reverse: fn(x, axis=normalize_axis(axis, np.ndim(x)), reverse=reverse)


def _reference(accumulate):
    """A float64 (int64) numpy reference: ``accumulate`` along the axis, flipped for
    ``reverse``, cast back to the operand's dtype."""

    def ref(x, *, axis, reverse):
        a = np.asarray(x)
        ax = normalize_axis(axis, a.ndim)
        w = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
        if reverse:
            w = np.flip(w, ax)
        with np.errstate(all="ignore"):
            out = accumulate(w, axis=ax) if w.size else w
        if reverse:
            out = np.flip(out, ax)
        return jnp.asarray(out).astype(a.dtype)

    return ref


def _samples(dtypes, low=-3.0, high=3.0):
    def samples():
        out = [Sample((arr((3, 4), dt, low, high),), {"axis": 1, "reverse": False}, dt) for dt in dtypes]
        out += [
            Sample((arr((3, 4), "f32", low, high),), {"axis": 0, "reverse": True}, "reverse-axis0"),
            Sample((arr((2, 3, 4), "f64", low, high),), {"axis": -2, "reverse": False}, "f64-negative-axis"),
            Sample((arr((5,), "f32", low, high),), {"axis": 0, "reverse": True}, "1d-reverse"),
            Sample((arr((0, 3), "f32", low, high),), {"axis": 0, "reverse": False}, "empty"),
        ]
        return out

    return samples


def _iota(x, axis):
    """int32 positions along ``axis``, shaped like ``x``."""
    ones = bind("full", shape=tuple(x.shape), value=1, dtype=np.dtype(np.int32))
    return bind("cumsum", ones, axis=axis, reverse=False) - 1


def _cast(t, dtype):
    return t if t.dtype == dtype else bind("astype", t, dtype=dtype)


# -- cumprod ---------------------------------------------------------------------------


def _cumprod_vjp(ct, x, *, out, axis, reverse):
    zero = bind("eq", x, 0)
    zeros_so_far = bind("cumsum", _cast(zero, np.dtype(np.int32)), axis=axis, reverse=reverse)
    before = bind("eq", zeros_so_far, 0)  # no zero up to here (in scan order)
    first_zero = bind("logical_and", zero, bind("eq", zeros_so_far, 1))
    one = bind("full", shape=tuple(x.shape), value=1, dtype=x.dtype)
    x1 = bind("where", first_zero, one, x)  # the first zero taken as 1
    out1 = bind("cumprod", x1, axis=axis, reverse=reverse)
    zero_ct = bind("full", shape=tuple(x.shape), value=0, dtype=ct.dtype)
    terms = _cast(out1, ct.dtype) * ct
    before_sum = bind("cumsum", bind("where", before, terms, zero_ct), axis=axis, reverse=not reverse)
    after_sum = bind("cumsum", bind("where", before, zero_ct, terms), axis=axis, reverse=not reverse)
    safe_x = _cast(bind("where", before, x, one), ct.dtype)
    grad = bind("where", before, before_sum / safe_x, bind("where", first_zero, after_sum, zero_ct))
    return [grad]


def _cumprod_samples():
    out = _samples(FLOATS + INTS, -2.0, 2.0)()
    with_zeros = np.array([[1.5, 0.0, 2.0, -1.0, 0.0, 3.0], [0.0, 2.0, 0.5, 1.0, 2.0, -1.5]], np.float64)
    out += [
        Sample((with_zeros,), {"axis": 1, "reverse": False}, "zeros"),
        Sample((with_zeros,), {"axis": 1, "reverse": True}, "zeros-reverse"),
    ]
    return out


cumprod = defop(
    "cumprod",
    shape=_cumulative_shape("cumprod"),
    impl=_lax_impl(lax.cumprod),
    attrs=_ATTRS,
    vjp=_cumprod_vjp,
    samples=_cumprod_samples,
    reference=_reference(np.cumprod),
    tolerances={"f16": (5e-3, 5e-3), "bf16": (5e-2, 5e-2), "f32": (5e-5, 2e-6)},
    doc="lax.cumprod: running product along ``axis`` (from the end with ``reverse``); keeps "
    "the dtype (integers wrap).",
)


# -- cummax, cummin ----------------------------------------------------------------------


def _cumextreme_vjp(ct, x, *, out, axis, reverse):
    # the input each output came from: the nearest position (in scan order) whose value
    # is the running extreme there
    a = normalize_axis(axis, len(x.shape))
    n = x.shape[a]
    pos = _iota(x, a)
    fresh = bind("eq", x, out)
    if reverse:
        far = bind("full", shape=tuple(x.shape), value=n, dtype=pos.dtype)
        src = bind("cummin", bind("where", fresh, pos, far), axis=a, reverse=True)
    else:
        far = bind("full", shape=tuple(x.shape), value=0, dtype=pos.dtype)
        src = bind("cummax", bind("where", fresh, pos, far), axis=a, reverse=False)
    return [_take_along_axis_vjp(ct, x, src, out=out, axis=a)[0]]


def _extreme_samples():
    out = _samples(FLOATS + INTS)()
    ties = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, -1.0, 4.0]], np.float32)
    out += [
        Sample((ties,), {"axis": 1, "reverse": False}, "ties", grad=False),
        Sample((ties,), {"axis": 1, "reverse": True}, "ties-reverse", grad=False),
        Sample((np.array([0.5, -np.inf, np.inf, 1.0], np.float32),), {"axis": 0, "reverse": False},
               "inf", grad=False),
    ]
    return out


cummax = defop(
    "cummax",
    shape=_cumulative_shape("cummax"),
    impl=_lax_impl(lax.cummax),
    attrs=_ATTRS,
    vjp=_cumextreme_vjp,
    samples=_extreme_samples,
    reference=_reference(np.maximum.accumulate),
    doc="lax.cummax: running maximum along ``axis`` (from the end with ``reverse``).",
)

cummin = defop(
    "cummin",
    shape=_cumulative_shape("cummin"),
    impl=_lax_impl(lax.cummin),
    attrs=_ATTRS,
    vjp=_cumextreme_vjp,
    samples=_extreme_samples,
    reference=_reference(np.minimum.accumulate),
    doc="lax.cummin: running minimum along ``axis`` (from the end with ``reverse``).",
)


# -- cumlogsumexp --------------------------------------------------------------------------


def _cumlogsumexp_vjp(ct, x, *, out, axis, reverse):
    # dx_i = sum_{j after i} ct_j exp(x_i - out_j) = exp(x_i + L+_i) - exp(x_i + L-_i),
    # L±_i the cumulative logsumexp (the other way) of log(ct±_j) - out_j
    zero = bind("full", shape=tuple(ct.shape), value=0, dtype=ct.dtype)
    x, out = _cast(x, ct.dtype), _cast(out, ct.dtype)

    def part(c):
        logs = bind("log", bind("maximum", c, zero)) - out
        return bind("exp", x + bind("cumlogsumexp", logs, axis=axis, reverse=not reverse))

    return [part(ct) - part(-ct)]


cumlogsumexp = defop(
    "cumlogsumexp",
    shape=_cumulative_shape("cumlogsumexp", floats_only=True),
    impl=_lax_impl(lax.cumlogsumexp),
    attrs=_ATTRS,
    vjp=_cumlogsumexp_vjp,
    samples=lambda: _samples(FLOATS)()
    + [
        Sample((np.array([[-100.0, 0.0, 80.0, -np.inf, 1.0]], np.float32),), {"axis": 1, "reverse": False},
               "wide-range", grad=False),
        Sample((np.array([[-30.0, 0.0, 20.0, 1.0]], np.float64),), {"axis": 1, "reverse": True},
               "f64-wide-range"),
    ],
    reference=_reference(np.logaddexp.accumulate),
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="lax.cumlogsumexp: running ``log(sum(exp(x)))`` along ``axis`` (from the end with "
    "``reverse``), without overflow.",
)
