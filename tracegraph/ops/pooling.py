"""2-D pooling over NCHW inputs (max and average) and their backward ops.

Padding is explicit ``((top, bottom), (left, right))``; the front end turns
"SAME"/"VALID"/ints into pairs. References are float64 numpy patch extraction.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..ir.types import is_float
from .defop import (
    Attr,
    Sample,
    ShapeError,
    TensorType,
    defop,
    bind,
    first_dtype,
    inexact_dtype,
    never_weak,
    to_inexact,
)
from .samples import FLOATS, arr
from .windows import check_padding, check_pairs, patches, window_out


# -- pooling ------------------------------------------------------------------------


def _pool_shape(x, *, window, stride, padding, what):
    if x.ndim != 4:
        raise ShapeError(f"{what} needs x of rank 4 (NCHW), got {x}")
    check_pairs("window", window)
    check_pairs("stride", stride)
    check_padding(padding)
    if min(window) < 1 or min(stride) < 1:
        raise ShapeError(f"window {window} and stride {stride} must be >= 1")
    n, c, h, w = x.shape
    ho = window_out(h, padding[0], window[0], stride[0], what="window")
    wo = window_out(w, padding[1], window[1], stride[1], what="window")
    return (n, c, ho, wo)


def _max_pool_shape(x, *, window, stride, padding):
    if x.dtype.kind == "b":
        raise ShapeError(f"max_pool2d needs a numeric operand, got {x}")
    return _pool_shape(x, window=window, stride=stride, padding=padding, what="max_pool2d")


def _lowest(dtype):
    dt = np.dtype(dtype)
    return np.iinfo(dt).min if dt.kind in "iu" else -np.inf


def _max_pool_impl(x, *, window, stride, padding):
    # A numpy init value lets lax recognize the max monoid (reduce_window_max, which has
    # JAX's select-and-scatter gradient); a jnp scalar would give a generic reduce_window.
    init = np.array(_lowest(x.dtype), x.dtype)
    return lax.reduce_window(
        x,
        init,
        lax.max,
        (1, 1) + tuple(window),
        (1, 1) + tuple(stride),
        ((0, 0), (0, 0)) + tuple(padding),
    )


def _max_pool_reference(x, *, window, stride, padding):
    a = np.asarray(x)
    a = a.astype(np.float64) if a.dtype.kind not in "iu" else a
    p = patches(a, window, stride, padding, fill=_lowest(a.dtype))
    return jnp.asarray(p.max(axis=(2, 3))).astype(x.dtype)


def _pool(window, stride=None, padding=((0, 0), (0, 0)), **extra):
    return {"window": window, "stride": stride or window, "padding": padding, **extra}


def _pool_samples(extra_dtypes=()):
    out = [Sample((arr((2, 3, 6, 6), dt),), _pool((2, 2)), f"{dt}-2x2") for dt in FLOATS]
    out += [
        Sample((arr((1, 2, 7, 7)),), _pool((3, 3), (2, 2)), "overlap"),
        Sample((arr((1, 2, 5, 6)),), _pool((3, 2), (1, 2), ((1, 1), (0, 1))), "padding"),
        Sample((arr((1, 1, 5, 5)),), _pool((2, 2), (2, 2), ((1, 0), (1, 0))), "pad-one-side"),
        Sample((arr((2, 1, 4, 4)),), _pool((4, 4)), "global"),
        Sample((arr((0, 2, 4, 4)),), _pool((2, 2)), "empty-batch"),
        Sample((arr((1, 2, 5, 5), "f64"),), _pool((2, 3), (1, 1), ((1, 1), (1, 1))), "f64-pad"),
    ]
    out += [
        Sample(
            (arr((1, 2, 4, 4), dt, -9, 9),), _pool((2, 2), (1, 1), ((1, 1), (0, 0))), f"{dt}-pad"
        )
        for dt in extra_dtypes
    ]
    return out


_POOL_ATTRS = {
    "window": Attr("ints"),
    "stride": Attr("ints"),
    "padding": Attr("int_pairs", ((0, 0), (0, 0))),
}

def _max_pool_vjp(ct, x, *, out, window, stride, padding):
    return [bind("max_pool2d_grad", x, ct, window=window, stride=stride, padding=padding)]


max_pool2d = defop(
    "max_pool2d",
    shape=_max_pool_shape,
    impl=_max_pool_impl,
    attrs=_POOL_ATTRS,
    vjp=_max_pool_vjp,
    samples=lambda: _pool_samples(("i32", "u8")),
    reference=_max_pool_reference,
    doc="Max over each window of an NCHW input; padded positions never win.",
)


def _avg_pool_shape(x, *, window, stride, padding, count_include_pad):
    shape = _pool_shape(x, window=window, stride=stride, padding=padding, what="avg_pool2d")
    if x.dtype.kind == "b":
        raise ShapeError(f"avg_pool2d needs a numeric operand, got {x}")
    return shape


def _avg_pool_impl(x, *, window, stride, padding, count_include_pad):
    out_dt = to_inexact(x.dtype)
    # Sum low-precision floats in float32: an f16 window sum loses digits otherwise.
    acc = jnp.float32 if np.dtype(out_dt).itemsize < 4 else out_dt
    dims, strides = (1, 1) + tuple(window), (1, 1) + tuple(stride)
    pads = ((0, 0), (0, 0)) + tuple(padding)
    zero = np.array(0, acc)  # numpy, so lax uses reduce_window_sum (linear, transposable)
    total = lax.reduce_window(x.astype(acc), zero, lax.add, dims, strides, pads)
    if count_include_pad:
        count = float(window[0] * window[1])
    else:
        ones = jnp.ones(x.shape[2:], acc)
        count = lax.reduce_window(
            ones, zero, lax.add, tuple(window), tuple(stride), tuple(padding)
        )
    out = (total / count).astype(out_dt)
    return out


def _avg_pool_reference(x, *, window, stride, padding, count_include_pad):
    a = np.asarray(x).astype(np.float64)
    total = patches(a, window, stride, padding).sum(axis=(2, 3))
    if count_include_pad:
        out = total / (window[0] * window[1])
    else:
        ones = np.ones((1, 1) + a.shape[2:])
        out = total / patches(ones, window, stride, padding).sum(axis=(2, 3))
    return jnp.asarray(out).astype(to_inexact(x.dtype))


def _avg_pool_samples():
    out = [
        Sample(s.args, {**s.attrs, "count_include_pad": True}, s.name)
        for s in _pool_samples(("i32",))
    ]
    out += [
        Sample(
            (arr((1, 2, 5, 6)),),
            _pool((3, 2), (1, 2), ((1, 1), (0, 1)), count_include_pad=False),
            "exclude-pad",
        ),
        Sample(
            (arr((1, 1, 5, 5), "bf16"),),
            _pool((3, 3), (2, 2), ((1, 1), (1, 1)), count_include_pad=False),
            "bf16-exclude-pad",
        ),
    ]
    return out


def _avg_pool_vjp(ct, x, *, out, window, stride, padding, count_include_pad):
    return [
        bind(
            "avg_pool2d_grad",
            ct,
            window=window,
            stride=stride,
            padding=padding,
            count_include_pad=count_include_pad,
            input_size=x.shape[2:],
        )
    ]


avg_pool2d = defop(
    "avg_pool2d",
    shape=_avg_pool_shape,
    dtype=inexact_dtype,
    weak=never_weak,
    impl=_avg_pool_impl,
    attrs={**_POOL_ATTRS, "count_include_pad": Attr("bool", True)},
    vjp=_avg_pool_vjp,
    samples=_avg_pool_samples,
    reference=_avg_pool_reference,
    doc="Mean over each window of an NCHW input; with count_include_pad=False padded "
    "positions are left out of the divisor (PyTorch's option).",
)


# -- pooling backward ops ---------------------------------------------------------------
# NOTE: the backward passes of pooling are ops of their own (as PyTorch's
# max_pool2d_with_indices_backward and avg_pool2d_backward), implemented with jax.vjp /
# jax.jvp of the forward implementation, so ties in max pooling behave exactly as in
# lax. max_pool2d_grad is linear in its cotangent and its transpose is max_pool2d_jvp
# (pick each window's winner from a tangent); each is the other's VJP, which closes
# reverse mode under repetition (grad of grad of ...). The choice of winners depends on
# x only piecewise-constantly, so neither sends a cotangent to x.


def _check_same(what, t, shape, dtype):
    if t.shape != tuple(shape) or t.dtype != dtype:
        raise ShapeError(f"{what} must be {TensorType(shape, dtype)}, got {t}")


def _float_pool_input(x, what):
    if not is_float(x.dtype):
        raise ShapeError(f"{what} needs a floating-point x, got {x}")


def _max_pool_grad_shape(x, ct, *, window, stride, padding):
    _float_pool_input(x, "max_pool2d_grad")
    pooled = _max_pool_shape(x, window=window, stride=stride, padding=padding)
    _check_same("the cotangent of max_pool2d's output", ct, pooled, x.dtype)
    return x.shape


def _max_pool_grad_impl(x, ct, *, window, stride, padding):
    pool = functools.partial(_max_pool_impl, window=window, stride=stride, padding=padding)
    return jax.vjp(pool, x)[1](ct)[0]


def _max_pool_jvp_shape(x, t, *, window, stride, padding):
    _float_pool_input(x, "max_pool2d_jvp")
    _check_same("the tangent", t, x.shape, x.dtype)
    return _pool_shape(x, window=window, stride=stride, padding=padding, what="max_pool2d_jvp")


def _max_pool_jvp_impl(x, t, *, window, stride, padding):
    pool = functools.partial(_max_pool_impl, window=window, stride=stride, padding=padding)
    return jax.jvp(pool, (x,), (t,))[1]


def _window_winners(x, window, stride, padding):
    """Index (row-major within the window) of each window's maximum; padding never wins."""
    p = patches(np.asarray(x).astype(np.float64), window, stride, padding, fill=-np.inf)
    n, c, kh, kw, ho, wo = p.shape
    return p.reshape(n, c, kh * kw, ho, wo).argmax(axis=2)


def _scatter_windows(vals, shape, stride, padding):
    """Sum per-window contributions ``(N, C, kh, kw, Ho, Wo)`` back onto an input of
    ``shape``; contributions to padding are dropped."""
    n, c, h, w = shape
    (pt, pb), (pl, pr) = padding
    _, _, kh, kw, ho, wo = vals.shape
    sh, sw = stride
    g = np.zeros((n, c, h + pt + pb, w + pl + pr))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (ho - 1) + 1, sh)
            cols = slice(j, j + sw * (wo - 1) + 1, sw)
            g[:, :, rows, cols] += vals[:, :, i, j]
    return g[:, :, pt : pt + h, pl : pl + w]


def _max_pool_grad_reference(x, ct, *, window, stride, padding):
    win = _window_winners(x, window, stride, padding)
    kh, kw = window
    c = np.asarray(ct).astype(np.float64)
    vals = np.stack(
        [np.stack([np.where(win == i * kw + j, c, 0.0) for j in range(kw)], 2) for i in range(kh)],
        2,
    )
    return jnp.asarray(_scatter_windows(vals, np.shape(x), stride, padding)).astype(x.dtype)


def _max_pool_jvp_reference(x, t, *, window, stride, padding):
    win = _window_winners(x, window, stride, padding)
    p = patches(np.asarray(t).astype(np.float64), window, stride, padding)
    n, c, kh, kw, ho, wo = p.shape
    out = np.take_along_axis(p.reshape(n, c, kh * kw, ho, wo), win[:, :, None], axis=2)[:, :, 0]
    return jnp.asarray(out).astype(x.dtype)


def _pool_grad_samples(samples):
    """(x, cotangent) pairs for the float samples of a pooling op."""
    out = []
    for s in samples:
        x = s.args[0]
        if not is_float(x.dtype):
            continue
        attrs = {k: s.attrs[k] for k in _POOL_ATTRS}
        pooled = _pool_shape(TensorType(x.shape, x.dtype), **attrs, what="pool")
        out.append((x, arr(pooled, x.dtype, tag="ct"), s))
    return out


def _max_pool_grad_samples():
    return [Sample((x, ct), s.attrs, s.name) for x, ct, s in _pool_grad_samples(_pool_samples())]


def _max_pool_jvp_samples():
    return [
        Sample((x, arr(x.shape, x.dtype, tag="t")), s.attrs, s.name)
        for x, _, s in _pool_grad_samples(_pool_samples())
    ]


max_pool2d_grad = defop(
    "max_pool2d_grad",
    shape=_max_pool_grad_shape,
    dtype=first_dtype,
    weak=lambda x, ct, **_: x.weak and ct.weak,  # jax.vjp of the pool: weak if both are
    impl=_max_pool_grad_impl,
    attrs=_POOL_ATTRS,
    arity=2,
    vjp=lambda ct, x, g, *, out, window, stride, padding: [
        None,
        bind("max_pool2d_jvp", x, ct, window=window, stride=stride, padding=padding),
    ],
    samples=_max_pool_grad_samples,
    reference=_max_pool_grad_reference,
    doc="The VJP of max_pool2d: each window's cotangent goes to the position of its "
    "maximum in x (ties as in lax). Inputs (x, cotangent of the pooled output).",
)

max_pool2d_jvp = defop(
    "max_pool2d_jvp",
    shape=_max_pool_jvp_shape,
    dtype=first_dtype,
    weak=lambda x, t, **_: x.weak and t.weak,  # jax.jvp of the pool: weak if both are
    impl=_max_pool_jvp_impl,
    attrs=_POOL_ATTRS,
    arity=2,
    vjp=lambda ct, x, t, *, out, window, stride, padding: [
        None,
        bind("max_pool2d_grad", x, ct, window=window, stride=stride, padding=padding),
    ],
    samples=_max_pool_jvp_samples,
    reference=_max_pool_jvp_reference,
    doc="The JVP of max_pool2d: each window takes the tangent at the position of its "
    "maximum in x. The transpose of max_pool2d_grad (its VJP, and vice versa).",
)


def _avg_pool_grad_shape(ct, *, window, stride, padding, count_include_pad, input_size):
    if ct.ndim != 4 or not is_float(ct.dtype):
        raise ShapeError(f"avg_pool2d_grad needs a floating-point cotangent of rank 4, got {ct}")
    check_pairs("input_size", input_size)
    x = TensorType(ct.shape[:2] + tuple(input_size), ct.dtype)
    pooled = _pool_shape(x, window=window, stride=stride, padding=padding, what="avg_pool2d_grad")
    if pooled != ct.shape:
        raise ShapeError(
            f"avg_pool2d of an input of spatial size {list(input_size)} gives {list(pooled)}, "
            f"but the cotangent is {list(ct.shape)}"
        )
    return x.shape


def _avg_pool_grad_impl(ct, *, window, stride, padding, count_include_pad, input_size):
    pool = functools.partial(
        _avg_pool_impl, window=window, stride=stride, padding=padding,
        count_include_pad=count_include_pad,
    )
    x = jax.ShapeDtypeStruct(ct.shape[:2] + tuple(input_size), ct.dtype)
    return jax.linear_transpose(pool, x)(ct)[0]


def _avg_pool_grad_reference(ct, *, window, stride, padding, count_include_pad, input_size):
    c = np.asarray(ct).astype(np.float64)
    shape = c.shape[:2] + tuple(input_size)
    if count_include_pad:
        count = float(window[0] * window[1])
    else:
        ones = np.ones((1, 1) + tuple(input_size))
        count = patches(ones, window, stride, padding).sum(axis=(2, 3))
    share = c / count
    vals = np.broadcast_to(share[:, :, None, None], c.shape[:2] + tuple(window) + c.shape[2:])
    return jnp.asarray(_scatter_windows(vals, shape, stride, padding)).astype(ct.dtype)


def _avg_pool_grad_samples():
    return [
        Sample((ct,), {**s.attrs, "input_size": x.shape[2:]}, s.name)
        for x, ct, s in _pool_grad_samples(_avg_pool_samples())
    ]


avg_pool2d_grad = defop(
    "avg_pool2d_grad",
    shape=_avg_pool_grad_shape,
    weak=never_weak,
    impl=_avg_pool_grad_impl,
    attrs={**_POOL_ATTRS, "count_include_pad": Attr("bool", True), "input_size": Attr("ints")},
    vjp=lambda ct, g, *, out, window, stride, padding, count_include_pad, input_size: [
        bind(
            "avg_pool2d",
            ct,
            window=window,
            stride=stride,
            padding=padding,
            count_include_pad=count_include_pad,
        )
    ],
    samples=_avg_pool_grad_samples,
    reference=_avg_pool_grad_reference,
    doc="The VJP of avg_pool2d (linear): each window's cotangent, divided by the window's "
    "count, is spread over the window's input positions. ``input_size`` is the (H, W) of "
    "the pooled input; its VJP is avg_pool2d again.",
)
