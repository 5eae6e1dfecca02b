"""Neural-network ops: softmax, log_softmax, one_hot, stop_gradient, conv2d and 2-D pooling.

Layouts are PyTorch's: activations NCHW, convolution weights OIHW. Padding is always
explicit ``((top, bottom), (left, right))``; the front end turns "SAME"/"VALID"/ints
into pairs. References are written in float64 numpy (softmax from exp/sum, convolution
and pooling from explicit patch extraction), independent of the lax implementations.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import Error
from ..ir.types import is_float
from .core import (
    NOT_DIFFERENTIABLE,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    defop,
    emit,
    normalize_axis,
    promote,
    same_type,
    to_inexact,
)
from .samples import FLOATS, arr

# -- softmax ------------------------------------------------------------------------


def _softmax_rule(x: TensorType, *, axis: int) -> TensorType:
    if x.ndim == 0:
        raise ShapeError("softmax needs an operand of rank >= 1")
    normalize_axis(axis, x.ndim)
    # jax.nn.softmax drops the weak flag.
    return x.with_(dtype=to_inexact(x.dtype), weak=False)


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
    inner = emit("sum", ct * out, axes=(axis,), keepdims=True)
    return [out * (ct - inner)]


def _log_softmax_vjp(ct, x, *, out, axis):
    # d log_softmax = ct - softmax * sum(ct) along the axis; softmax = exp(out).
    total = emit("sum", ct, axes=(axis,), keepdims=True)
    return [ct - emit("exp", out) * total]


softmax = defop(
    "softmax",
    shape=_softmax_rule,
    impl=lambda x, *, axis: jax.nn.softmax(_as_inexact(x), axis=axis),
    attrs={"axis": Attr("int", -1)},
    vjp=_softmax_vjp,
    samples=_softmax_samples,
    reference=_softmax_reference,
    doc="Numerically stable softmax along ``axis`` (the max is subtracted first).",
)

log_softmax = defop(
    "log_softmax",
    shape=_softmax_rule,
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


def _one_hot_rule(x: TensorType, *, num_classes: int, dtype) -> TensorType:
    if x.dtype.kind not in "iu":
        raise ShapeError(f"one_hot needs integer class ids, got {x}")
    if num_classes < 0:
        raise ShapeError(f"one_hot needs num_classes >= 0, got {num_classes}")
    return TensorType(x.shape + (num_classes,), _canonical(dtype))


one_hot = defop(
    "one_hot",
    shape=_one_hot_rule,
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
    shape=same_type,
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


# -- conv_general -------------------------------------------------------------------
# lax.conv_general_dilated in full: any number of spatial dims, any layout, dilation of
# either side, feature and batch groups, negative padding. Layouts are strings: lhs and
# out name their batch/feature dims N and C, rhs names its output/input features O and I,
# and the spatial dims share letters across the three. Spatial attributes (strides,
# padding, dilations) are in the order the spatial letters appear in rhs_spec, as in lax.


def _spatial(rhs_spec):
    return [c for c in rhs_spec if c not in "OI"]


def _check_conv_specs(lhs_spec, rhs_spec, out_spec, ndim):
    specs = (("lhs", lhs_spec, "NC"), ("rhs", rhs_spec, "OI"), ("out", out_spec, "NC"))
    for what, spec, special in specs:
        if len(spec) != ndim:
            raise ShapeError(
                f"{what}_spec {spec!r} names {len(spec)} dims, the operands have {ndim}"
            )
        if len(set(spec)) != len(spec):
            raise ShapeError(f"{what}_spec {spec!r} repeats a letter")
        for c in special:
            if c not in spec:
                raise ShapeError(
                    f"{what}_spec {spec!r} must name dims {special[0]!r} and {special[1]!r}"
                )
    sp = set(_spatial(rhs_spec))
    if set(lhs_spec) - set("NC") != sp or set(out_spec) - set("NC") != sp:
        raise ShapeError(
            f"lhs_spec {lhs_spec!r}, rhs_spec {rhs_spec!r} and out_spec {out_spec!r} must name "
            "the same spatial dims"
        )


def _dilate(d, k):
    return 0 if d == 0 else (d - 1) * k + 1


def _conv_general_rule(
    x, w, *, window_strides, padding, lhs_dilation, rhs_dilation, lhs_spec, rhs_spec,
    out_spec, feature_group_count, batch_group_count,
):
    if x.ndim != w.ndim or x.ndim < 2:
        raise ShapeError(f"conv_general needs lhs and rhs of the same rank >= 2, got {x} and {w}")
    for t in (x, w):
        if not is_float(t.dtype):
            raise ShapeError(f"conv_general needs floating-point operands, got {t}")
    _check_conv_specs(lhs_spec, rhs_spec, out_spec, x.ndim)
    sp = _spatial(rhs_spec)
    n = len(sp)
    per_dim = (
        ("window_strides", window_strides),
        ("lhs_dilation", lhs_dilation),
        ("rhs_dilation", rhs_dilation),
    )
    for name, v in per_dim:
        if len(v) != n:
            raise ShapeError(f"{name} needs {n} entries (one per spatial dim), got {v}")
        if min(v, default=1) < 1:
            raise ShapeError(f"{name} must be >= 1, got {v}")
    if len(padding) != n or any(len(p) != 2 for p in padding):
        raise ShapeError(f"padding needs {n} (low, high) pairs, got {padding}")
    fg, bg = feature_group_count, batch_group_count
    if fg < 1 or bg < 1:
        raise ShapeError(f"feature_group_count {fg} and batch_group_count {bg} must be >= 1")
    if fg > 1 and bg > 1:
        raise ShapeError("at most one of feature_group_count and batch_group_count may be > 1")
    lhs = dict(zip(lhs_spec, x.shape))
    rhs = dict(zip(rhs_spec, w.shape))
    if lhs["C"] % fg or lhs["C"] // fg != rhs["I"]:
        raise ShapeError(
            f"lhs has {lhs['C']} features; with feature_group_count={fg} the rhs input "
            f"feature dim (I) must be {lhs['C']} / {fg}, got {rhs['I']}"
        )
    for g, what in ((fg, "feature_group_count"), (bg, "batch_group_count")):
        if rhs["O"] % g:
            raise ShapeError(
                f"rhs output features (O = {rhs['O']}) must be a multiple of {what}={g}"
            )
    if lhs["N"] % bg:
        raise ShapeError(f"batch_group_count={bg} must divide the lhs batch size {lhs['N']}")
    out = {"N": lhs["N"] // bg, "C": rhs["O"]}
    for i, c in enumerate(sp):
        size = _dilate(lhs[c], lhs_dilation[i]) + padding[i][0] + padding[i][1]
        if size < 0:
            raise ShapeError(
                f"padding {tuple(padding[i])} of spatial dim {c!r} removes more than its "
                f"size {_dilate(lhs[c], lhs_dilation[i])}"
            )
        extent = _dilate(rhs[c], rhs_dilation[i])
        out[c] = max(0, (size - extent) // window_strides[i] + 1)
    dt, _ = promote(x, w)
    weak = x.weak and w.weak and x.dtype == w.dtype
    return TensorType(tuple(out[c] for c in out_spec), dt, weak)


def _conv_general_impl(
    x, w, *, window_strides, padding, lhs_dilation, rhs_dilation, lhs_spec, rhs_spec,
    out_spec, feature_group_count, batch_group_count,
):
    dt = jnp.result_type(x, w)
    x = x if x.dtype == dt else lax.convert_element_type(x, dt)
    w = w if w.dtype == dt else lax.convert_element_type(w, dt)
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(window_strides),
        padding=tuple(tuple(p) for p in padding),
        lhs_dilation=tuple(lhs_dilation),
        rhs_dilation=tuple(rhs_dilation),
        dimension_numbers=(lhs_spec, rhs_spec, out_spec),
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
    )


def _conv_general_reference(
    x, w, *, window_strides, padding, lhs_dilation, rhs_dilation, lhs_spec, rhs_spec,
    out_spec, feature_group_count, batch_group_count,
):
    # float64 numpy: dilate the input with zeros, pad (or crop), take every window by
    # explicit slicing, contract per group with einsum.
    dt = jnp.result_type(x, w)
    sp = _spatial(rhs_spec)
    a = np.transpose(np.asarray(x, np.float64), [lhs_spec.index(c) for c in "NC" + "".join(sp)])
    k = np.transpose(np.asarray(w, np.float64), [rhs_spec.index(c) for c in "OI" + "".join(sp)])
    for i, d in enumerate(lhs_dilation):
        ax, size = 2 + i, a.shape[2 + i]
        dil = np.zeros(a.shape[:ax] + (_dilate(size, d),) + a.shape[ax + 1 :])
        idx = [slice(None)] * a.ndim
        idx[ax] = slice(None, None, d)
        dil[tuple(idx)] = a
        a = dil
    a = np.pad(a, [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in padding])
    a = a[(slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), a.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding)
    )]
    window = k.shape[2:]
    outs = [
        max(0, (a.shape[2 + i] - _dilate(window[i], rhs_dilation[i])) // window_strides[i] + 1)
        for i in range(len(sp))
    ]
    patches = np.zeros(a.shape[:2] + tuple(window) + tuple(outs))
    for offs in np.ndindex(*window):
        idx = tuple(
            slice(o * r, o * r + s * (m - 1) + 1, s) if m else slice(0, 0)
            for o, r, s, m in zip(offs, rhs_dilation, window_strides, outs)
        )
        patches[(slice(None), slice(None)) + offs] = a[(slice(None), slice(None)) + idx]
    n, c = patches.shape[:2]
    o, kprod = k.shape[0], int(np.prod(window))
    fg, bg = feature_group_count, batch_group_count
    if bg > 1:  # batch group g: lhs batch rows [g*n/bg, (g+1)*n/bg) with O group g
        p = patches.reshape((bg, n // bg, c, kprod) + tuple(outs))
        kk = k.reshape((bg, o // bg, c, kprod))
        res = np.einsum("gncj...,gocj->ngo...", p, kk).reshape((n // bg, o) + tuple(outs))
    else:  # feature group g: lhs features [g*c/fg, (g+1)*c/fg) with O group g
        p = patches.reshape((n, fg, c // fg, kprod) + tuple(outs))
        kk = k.reshape((fg, o // fg, c // fg, kprod))
        res = np.einsum("ngcj...,gocj->ngo...", p, kk).reshape((n, o) + tuple(outs))
    canon = "NC" + "".join(sp)
    res = np.transpose(res, [canon.index(ch) for ch in out_spec])
    return jnp.asarray(res).astype(dt)


def _reshape_axis_out_of(src, size1, x):
    shape = list(x.shape)
    shape[src : src + 1] = [size1, shape[src] // size1]
    return emit("reshape", x, shape=tuple(shape))


def _reshape_axis_into(src, dst, x):
    # Merge axis src into axis dst (dst counted after src is removed), src the major part.
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    shape = [x.shape[i] for i in range(x.ndim) if i != src]
    shape[dst] *= x.shape[src]
    if perm != list(range(x.ndim)):
        x = emit("transpose", x, perm=tuple(perm))
    return emit("reshape", x, shape=tuple(shape))


def _rename(spec, mapping):
    return "".join(mapping.get(c, c) for c in spec)


def _emit_conv(lhs, rhs, lhs_spec, rhs_spec, out_spec, by_dim, fg=1, bg=1):
    """A conv_general node; ``by_dim`` maps each spatial letter to its (stride, padding,
    lhs dilation, rhs dilation), put in the order of the new rhs_spec."""
    sp = _spatial(rhs_spec)
    return emit(
        "conv_general",
        lhs,
        rhs,
        window_strides=tuple(by_dim[c][0] for c in sp),
        padding=tuple(by_dim[c][1] for c in sp),
        lhs_dilation=tuple(by_dim[c][2] for c in sp),
        rhs_dilation=tuple(by_dim[c][3] for c in sp),
        lhs_spec=lhs_spec,
        rhs_spec=rhs_spec,
        out_spec=out_spec,
        feature_group_count=fg,
        batch_group_count=bg,
    )


def _conv_dilated_sizes(ct, x, w, a):
    """Per spatial letter (in rhs order): dilated input, window and output sizes."""
    lhs_spec, rhs_spec, out_spec = a["lhs_spec"], a["rhs_spec"], a["out_spec"]
    out = {}
    for i, c in enumerate(_spatial(rhs_spec)):
        out[c] = (
            _dilate(x.shape[lhs_spec.index(c)], a["lhs_dilation"][i]),
            _dilate(w.shape[rhs_spec.index(c)], a["rhs_dilation"][i]),
            _dilate(ct.shape[out_spec.index(c)], a["window_strides"][i]),
        )
    return out


def _conv_transpose_lhs(ct, x, w, a):
    # A port of jax.lax's _conv_general_dilated_transpose_lhs: convolve the cotangent
    # with the spatially flipped kernel, its O and I roles swapped; strides of the
    # forward become lhs dilation of the backward and vice versa.
    lhs_spec, rhs_spec, out_spec = a["lhs_spec"], a["rhs_spec"], a["out_spec"]
    fg, bg = a["feature_group_count"], a["batch_group_count"]
    sizes = _conv_dilated_sizes(ct, x, w, a)
    if fg > 1 or bg > 1:
        o, i = rhs_spec.index("O"), rhs_spec.index("I")
        w = _reshape_axis_into(o, i, _reshape_axis_out_of(o, max(fg, bg), w))
    sp = _spatial(rhs_spec)
    by_dim = {}
    for k, c in enumerate(sp):
        lhs_d, rhs_d, out_d = sizes[c]
        before = rhs_d - a["padding"][k][0] - 1
        after = lhs_d + rhs_d - 1 - out_d - before
        by_dim[c] = (
            a["lhs_dilation"][k], (before, after), a["window_strides"][k], a["rhs_dilation"][k]
        )
    flipped = emit("rev", w, axes=tuple(rhs_spec.index(c) for c in sp))
    t_rhs_spec = _rename(rhs_spec, {"O": "I", "I": "O"})
    out = _emit_conv(ct, flipped, out_spec, t_rhs_spec, lhs_spec, by_dim, fg=max(fg, bg))
    if bg > 1:
        c, n = lhs_spec.index("C"), lhs_spec.index("N")
        out = _reshape_axis_into(c, n, _reshape_axis_out_of(c, bg, out))
    return out


def _conv_transpose_rhs(ct, x, w, a):
    # A port of jax.lax's _conv_general_dilated_transpose_rhs: convolve the input with
    # the cotangent, batch and feature roles swapped (feature groups become batch groups
    # and vice versa); forward strides become rhs dilation.
    if 0 in ct.shape:
        return emit("full", shape=w.shape, value=0, dtype=w.dtype)
    lhs_spec, rhs_spec, out_spec = a["lhs_spec"], a["rhs_spec"], a["out_spec"]
    fg, bg = a["feature_group_count"], a["batch_group_count"]
    sizes = _conv_dilated_sizes(ct, x, w, a)
    by_dim = {}
    for k, c in enumerate(_spatial(rhs_spec)):
        lhs_d, rhs_d, out_d = sizes[c]
        lo = a["padding"][k][0]
        hi = (out_d - lhs_d) + (rhs_d - lo - 1)
        by_dim[c] = (a["rhs_dilation"][k], (lo, hi), a["lhs_dilation"][k], a["window_strides"][k])
    return _emit_conv(
        x,
        ct,
        _rename(lhs_spec, {"N": "C", "C": "N"}),
        _rename(out_spec, {"C": "O", "N": "I"}),
        _rename(rhs_spec, {"I": "N", "O": "C"}),
        by_dim,
        fg=bg,
        bg=fg,
    )


def _conv_general_vjp(ct, x, w, *, out, **attrs):
    return [_conv_transpose_lhs(ct, x, w, attrs), _conv_transpose_rhs(ct, x, w, attrs)]


def _cg(specs, strides, padding=None, lhs_dilation=None, rhs_dilation=None, fg=1, bg=1):
    n = len(strides)
    return {
        "window_strides": strides,
        "padding": padding or ((0, 0),) * n,
        "lhs_dilation": lhs_dilation or (1,) * n,
        "rhs_dilation": rhs_dilation or (1,) * n,
        "lhs_spec": specs[0],
        "rhs_spec": specs[1],
        "out_spec": specs[2],
        "feature_group_count": fg,
        "batch_group_count": bg,
    }


_NCHW = ("NCHW", "OIHW", "NCHW")
_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv_general_samples():
    def w(shape, dt="f32"):
        return arr(shape, dt, -0.5, 0.5, "w")

    out = [
        Sample((arr((2, 3, 6, 5), dt), w((4, 3, 3, 2), dt)), _cg(_NCHW, (1, 1)), f"{dt}-nchw")
        for dt in FLOATS
    ]
    out += [
        Sample((arr((2, 6, 5, 3), dt), w((3, 2, 3, 4), dt)), _cg(_NHWC, (1, 1)), f"{dt}-nhwc")
        for dt in ("f32", "f64")
    ]
    out += [
        Sample(
            (arr((2, 7, 8, 3)), w((3, 3, 3, 4))),
            _cg(_NHWC, (2, 3), ((1, 1), (2, 0))),
            "nhwc-stride-pad",
        ),
        Sample(
            (arr((2, 3, 9)), w((4, 3, 3))), _cg(("NCH", "OIH", "NCH"), (2,), ((1, 2),)), "1d-nch"
        ),
        Sample(
            (arr((2, 9, 3), "f64"), w((3, 3, 4), "f64")),
            _cg(("NWC", "WIO", "NWC"), (1,), ((2, 1),), (2,), (2,)),
            "f64-1d-nwc-dilated",
        ),
        Sample(
            (arr((1, 2, 5, 6), "f64"), w((3, 2, 3, 2), "f64")),
            _cg(_NCHW, (2, 1), ((1, 2), (0, 1)), (2, 1), (1, 2)),
            "f64-both-dilations",
        ),
        Sample(
            (arr((1, 2, 7, 6)), w((3, 2, 2, 3))),
            _cg(_NCHW, (3, 2), ((0, 1), (1, 1)), (1, 2), (2, 1)),
            "lhs-dilation-stride",
        ),
        Sample(
            (arr((2, 5, 5, 4)), w((3, 3, 2, 6))),
            _cg(_NHWC, (1, 1), ((1, 1), (1, 1)), fg=2),
            "nhwc-groups",
        ),
        Sample(
            (arr((1, 3, 6, 6), "f64"), w((6, 1, 3, 3), "f64")),
            _cg(_NCHW, (2, 2), ((1, 1), (1, 1)), fg=3),
            "f64-depthwise-stride",
        ),
        Sample((arr((4, 3, 5, 5)), w((4, 3, 2, 2))), _cg(_NCHW, (1, 1), bg=2), "batch-groups"),
        Sample(
            (arr((6, 4, 5, 2), "f64"), w((2, 3, 2, 6), "f64")),
            _cg(_NHWC, (2, 1), ((1, 0), (0, 1)), rhs_dilation=(1, 2), bg=3),
            "f64-nhwc-batch-groups",
        ),
        Sample(
            (arr((1, 2, 6, 6)), w((2, 2, 2, 2))),
            _cg(_NCHW, (1, 1), ((-1, 0), (1, -2))),
            "negative-padding",
        ),
        Sample(
            (arr((1, 2, 4, 3, 5)), w((3, 2, 2, 2, 3))),
            _cg(("NCDHW", "OIDHW", "NCDHW"), (1, 2, 1), ((0, 0), (1, 1), (0, 1))),
            "3d",
        ),
        Sample(
            (arr((6, 2, 5, 3)), w((2, 3, 3, 4))),
            _cg(("HNWC", "WIHO", "CWNH"), (1, 2), ((1, 0), (0, 1)), rhs_dilation=(2, 1)),
            "permuted-layouts",
        ),
        Sample((arr((1, 2, 3, 3)), w((2, 2, 4, 4))), _cg(_NCHW, (1, 1)), "empty-output"),
        Sample((arr((0, 4, 4, 2)), w((2, 2, 2, 3))), _cg(_NHWC, (1, 1)), "empty-batch"),
        Sample(
            (arr((1, 2, 4, 4), "bf16"), w((3, 2, 2, 2), "f32")), _cg(_NCHW, (1, 1)), "mixed"
        ),
    ]
    return out


conv_general = defop(
    "conv_general",
    shape=_conv_general_rule,
    impl=_conv_general_impl,
    attrs={
        "window_strides": Attr("ints"),
        "padding": Attr("int_pairs"),
        "lhs_dilation": Attr("ints"),
        "rhs_dilation": Attr("ints"),
        "lhs_spec": Attr("str"),
        "rhs_spec": Attr("str"),
        "out_spec": Attr("str"),
        "feature_group_count": Attr("int", 1),
        "batch_group_count": Attr("int", 1),
    },
    arity=2,
    vjp=_conv_general_vjp,
    samples=_conv_general_samples,
    reference=_conv_general_reference,
    tolerances={"f16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)},
    doc="lax.conv_general_dilated: N-d convolution with layouts given as strings "
    "(lhs/out N,C; rhs O,I; shared spatial letters), explicit (possibly negative) padding, "
    "dilation of either side, feature or batch groups. Spatial attributes follow the order "
    "of the spatial letters in rhs_spec. Operands are promoted to a common dtype first.",
)


_SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


def conv_general_attrs(
    *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
    feature_group_count=1, batch_group_count=1, **_ignored,
) -> dict:
    """The attributes of op ``conv_general`` for the parameters of a jaxpr's
    ``conv_general_dilated`` equation, whose ``dimension_numbers`` is a
    ``lax.ConvDimensionNumbers`` of integer tuples (spatial dims in rhs order).
    ``precision`` and ``preferred_element_type`` are not represented.

    Example::

        eqn = jax.make_jaxpr(flax_conv.apply)(params, x).eqns[0]
        attrs = conv_general_attrs(**eqn.params)   # lhs_spec "NHWC", rhs_spec "HWIO", ...
    """
    lhs, rhs, out = (tuple(s) for s in dimension_numbers)
    n = len(lhs) - 2
    letters = _SPATIAL_LETTERS.get(n) or "ABEFGJKLMPQRSTUVXYZ"[:n]
    if len(letters) != n:
        raise Error(f"conv_general supports at most 19 spatial dims, got {n}")

    def spec(perm, special):
        chars = [""] * len(perm)
        for i, d in enumerate(perm):
            chars[d] = special[i] if i < 2 else letters[i - 2]
        return "".join(chars)

    # Integer form lists spatial dims in rhs_spec order; the string form in the order
    # their letters appear in rhs_spec.
    order = sorted(range(n), key=lambda i: rhs[2 + i])
    ones = (1,) * n
    return {
        "window_strides": tuple(int(window_strides[i]) for i in order),
        "padding": tuple(tuple(int(p) for p in padding[i]) for i in order),
        "lhs_dilation": tuple(int((lhs_dilation or ones)[i]) for i in order),
        "rhs_dilation": tuple(int((rhs_dilation or ones)[i]) for i in order),
        "lhs_spec": spec(lhs, "NC"),
        "rhs_spec": spec(rhs, "OI"),
        "out_spec": spec(out, "NC"),
        "feature_group_count": int(feature_group_count),
        "batch_group_count": int(batch_group_count),
    }


# -- conv2d -------------------------------------------------------------------------


def _check_pairs(name, value, n=2):
    if len(value) != n:
        raise ShapeError(f"{name} needs {n} entries, got {value}")


def _check_padding(padding):
    _check_pairs("padding", padding)
    for p in padding:
        if len(p) != 2:
            raise ShapeError(f"padding needs (low, high) pairs, got {padding}")
        if min(p) < 0:
            raise ShapeError(f"padding must be >= 0, got {padding}")


def _window_out(size, pad, window, stride, dilation=1, what="kernel"):
    extent = dilation * (window - 1) + 1
    padded = size + pad[0] + pad[1]
    if padded < extent:
        raise ShapeError(f"the {what} (extent {extent}) is larger than the padded input ({padded})")
    return (padded - extent) // stride + 1


def _conv2d_rule(x, w, *, stride, padding, dilation, groups):
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d needs x of rank 4 (NCHW) and w of rank 4 (OIHW), got {x} and {w}")
    for t in (x, w):
        if not is_float(t.dtype):
            raise ShapeError(f"conv2d needs floating-point operands, got {t}")
    _check_pairs("stride", stride)
    _check_pairs("dilation", dilation)
    _check_padding(padding)
    if min(stride) < 1 or min(dilation) < 1:
        raise ShapeError(f"stride {stride} and dilation {dilation} must be >= 1")
    n, c, h, wd = x.shape
    o, i, kh, kw = w.shape
    if groups < 1 or c % groups or o % groups:
        raise ShapeError(
            f"groups={groups} must be >= 1 and divide both input channels ({c}) and "
            f"output channels ({o})"
        )
    if c != i * groups:
        raise ShapeError(
            f"x has {c} channels but w expects {i} per group x {groups} groups = {i * groups}"
        )
    ho = _window_out(h, padding[0], kh, stride[0], dilation[0])
    wo = _window_out(wd, padding[1], kw, stride[1], dilation[1])
    dt, _ = promote(x, w)
    weak = x.weak and w.weak and x.dtype == w.dtype
    return TensorType((n, o, ho, wo), dt, weak)


def _conv2d_impl(x, w, *, stride, padding, dilation, groups):
    dt = jnp.result_type(x, w)
    x = x if x.dtype == dt else lax.convert_element_type(x, dt)
    w = w if w.dtype == dt else lax.convert_element_type(w, dt)
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=padding,
        rhs_dilation=dilation,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=groups,
    )


def _patches(a, window, stride, padding, dilation=(1, 1), fill=0.0):
    """(N, C, H, W) -> (N, C, kh, kw, Ho, Wo): every window position, by explicit slicing."""
    a = np.pad(a, ((0, 0), (0, 0), tuple(padding[0]), tuple(padding[1])), constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    ho = (a.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (a.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.empty(a.shape[:2] + (kh, kw, ho, wo), a.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = a[
                :,
                :,
                i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                j * dw : j * dw + sw * (wo - 1) + 1 : sw,
            ]
    return out


def _conv2d_reference(x, w, *, stride, padding, dilation, groups):
    dt = jnp.result_type(x, w)
    p = _patches(np.asarray(x).astype(np.float64), np.shape(w)[2:], stride, padding, dilation)
    n, c, kh, kw, ho, wo = p.shape
    g = groups
    p = p.reshape(n, g, c // g, kh, kw, ho, wo)
    k = np.asarray(w).astype(np.float64)
    k = k.reshape(g, k.shape[0] // g, c // g, kh, kw)
    out = np.einsum("ngcijhw,gocij->ngohw", p, k).reshape(n, np.shape(w)[0], ho, wo)
    return jnp.asarray(out).astype(dt)


def _conv(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _conv2d_samples():
    out = [
        Sample(
            (arr((2, 3, 6, 6), dt), arr((4, 3, 3, 3), dt, -0.5, 0.5, "w")), _conv(), f"{dt}-valid"
        )
        for dt in FLOATS
    ]
    out += [
        Sample((arr((1, 2, 7, 8)), arr((3, 2, 3, 2), tag="w")), _conv(stride=(2, 3)), "stride"),
        Sample(
            (arr((2, 2, 5, 5)), arr((2, 2, 3, 3), tag="w")),
            _conv(padding=((1, 1), (2, 0))),
            "padding",
        ),
        Sample((arr((1, 2, 9, 9)), arr((2, 2, 3, 3), tag="w")), _conv(dilation=(2, 3)), "dilation"),
        Sample((arr((2, 4, 5, 5)), arr((6, 2, 3, 3), tag="w")), _conv(groups=2), "groups"),
        Sample(
            (arr((1, 3, 5, 5)), arr((3, 1, 3, 3), tag="w")),
            _conv(padding=((1, 1), (1, 1)), groups=3),
            "depthwise",
        ),
        Sample(
            (arr((1, 4, 8, 7), "f64"), arr((4, 2, 3, 2), "f64", tag="w")),
            _conv((2, 1), ((1, 2), (0, 1)), (1, 2), 2),
            "f64-all",
        ),
        Sample((arr((1, 1, 4, 4)), arr((1, 1, 4, 4), tag="w")), _conv(), "1x1-out"),
        Sample((arr((0, 2, 4, 4)), arr((3, 2, 2, 2), tag="w")), _conv(), "empty-batch"),
        Sample((arr((1, 2, 4, 4), "bf16"), arr((3, 2, 2, 2), "f32", tag="w")), _conv(), "mixed"),
    ]
    return out


def _conv2d_vjp(ct, x, w, *, out, stride, padding, dilation, groups):
    # The backward pass is two conv_general nodes (see _conv_transpose_lhs/_rhs).
    return _conv_general_vjp(
        ct,
        x,
        w,
        out=out,
        window_strides=stride,
        padding=padding,
        lhs_dilation=(1, 1),
        rhs_dilation=dilation,
        lhs_spec="NCHW",
        rhs_spec="OIHW",
        out_spec="NCHW",
        feature_group_count=groups,
        batch_group_count=1,
    )


conv2d = defop(
    "conv2d",
    shape=_conv2d_rule,
    impl=_conv2d_impl,
    vjp=_conv2d_vjp,
    attrs={
        "stride": Attr("ints", (1, 1)),
        "padding": Attr("int_pairs", ((0, 0), (0, 0))),
        "dilation": Attr("ints", (1, 1)),
        "groups": Attr("int", 1),
    },
    arity=2,
    samples=_conv2d_samples,
    reference=_conv2d_reference,
    tolerances={"f16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)},
    doc="2-D cross-correlation, x NCHW, w OIHW (O, C/groups, kh, kw), explicit padding.",
)


# -- pooling ------------------------------------------------------------------------


def _pool_rule(x, *, window, stride, padding, what):
    if x.ndim != 4:
        raise ShapeError(f"{what} needs x of rank 4 (NCHW), got {x}")
    _check_pairs("window", window)
    _check_pairs("stride", stride)
    _check_padding(padding)
    if min(window) < 1 or min(stride) < 1:
        raise ShapeError(f"window {window} and stride {stride} must be >= 1")
    n, c, h, w = x.shape
    ho = _window_out(h, padding[0], window[0], stride[0], what="window")
    wo = _window_out(w, padding[1], window[1], stride[1], what="window")
    return (n, c, ho, wo)


def _max_pool_rule(x, *, window, stride, padding):
    if x.dtype.kind == "b":
        raise ShapeError(f"max_pool2d needs a numeric operand, got {x}")
    return x.with_(
        shape=_pool_rule(x, window=window, stride=stride, padding=padding, what="max_pool2d")
    )


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
    p = _patches(a, window, stride, padding, fill=_lowest(a.dtype))
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
    return [emit("max_pool2d_grad", x, ct, window=window, stride=stride, padding=padding)]


max_pool2d = defop(
    "max_pool2d",
    shape=_max_pool_rule,
    impl=_max_pool_impl,
    attrs=_POOL_ATTRS,
    vjp=_max_pool_vjp,
    samples=lambda: _pool_samples(("i32", "u8")),
    reference=_max_pool_reference,
    doc="Max over each window of an NCHW input; padded positions never win.",
)


def _avg_pool_rule(x, *, window, stride, padding, count_include_pad):
    shape = _pool_rule(x, window=window, stride=stride, padding=padding, what="avg_pool2d")
    if x.dtype.kind == "b":
        raise ShapeError(f"avg_pool2d needs a numeric operand, got {x}")
    return TensorType(shape, to_inexact(x.dtype))


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
    total = _patches(a, window, stride, padding).sum(axis=(2, 3))
    if count_include_pad:
        out = total / (window[0] * window[1])
    else:
        ones = np.ones((1, 1) + a.shape[2:])
        out = total / _patches(ones, window, stride, padding).sum(axis=(2, 3))
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
        emit(
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
    shape=_avg_pool_rule,
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


def _check_same(what, t, ref):
    if t.shape != ref.shape or t.dtype != ref.dtype:
        raise ShapeError(f"{what} must be {ref.with_(weak=False)}, got {t}")


def _float_pool_input(x, what):
    if not is_float(x.dtype):
        raise ShapeError(f"{what} needs a floating-point x, got {x}")


def _max_pool_grad_rule(x, ct, *, window, stride, padding):
    _float_pool_input(x, "max_pool2d_grad")
    pooled = _max_pool_rule(x, window=window, stride=stride, padding=padding)
    _check_same("the cotangent of max_pool2d's output", ct, pooled)
    return TensorType(x.shape, x.dtype)


def _max_pool_grad_impl(x, ct, *, window, stride, padding):
    pool = functools.partial(_max_pool_impl, window=window, stride=stride, padding=padding)
    return jax.vjp(pool, x)[1](ct)[0]


def _max_pool_jvp_rule(x, t, *, window, stride, padding):
    _float_pool_input(x, "max_pool2d_jvp")
    _check_same("the tangent", t, x)
    shape = _pool_rule(x, window=window, stride=stride, padding=padding, what="max_pool2d_jvp")
    return TensorType(shape, x.dtype)


def _max_pool_jvp_impl(x, t, *, window, stride, padding):
    pool = functools.partial(_max_pool_impl, window=window, stride=stride, padding=padding)
    return jax.jvp(pool, (x,), (t,))[1]


def _window_winners(x, window, stride, padding):
    """Index (row-major within the window) of each window's maximum; padding never wins."""
    p = _patches(np.asarray(x).astype(np.float64), window, stride, padding, fill=-np.inf)
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
    p = _patches(np.asarray(t).astype(np.float64), window, stride, padding)
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
        pooled = _pool_rule(TensorType(x.shape, x.dtype), **attrs, what="pool")
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
    shape=_max_pool_grad_rule,
    impl=_max_pool_grad_impl,
    attrs=_POOL_ATTRS,
    arity=2,
    vjp=lambda ct, x, g, *, out, window, stride, padding: [
        None,
        emit("max_pool2d_jvp", x, ct, window=window, stride=stride, padding=padding),
    ],
    samples=_max_pool_grad_samples,
    reference=_max_pool_grad_reference,
    doc="The VJP of max_pool2d: each window's cotangent goes to the position of its "
    "maximum in x (ties as in lax). Inputs (x, cotangent of the pooled output).",
)

max_pool2d_jvp = defop(
    "max_pool2d_jvp",
    shape=_max_pool_jvp_rule,
    impl=_max_pool_jvp_impl,
    attrs=_POOL_ATTRS,
    arity=2,
    vjp=lambda ct, x, t, *, out, window, stride, padding: [
        None,
        emit("max_pool2d_grad", x, ct, window=window, stride=stride, padding=padding),
    ],
    samples=_max_pool_jvp_samples,
    reference=_max_pool_jvp_reference,
    doc="The JVP of max_pool2d: each window takes the tangent at the position of its "
    "maximum in x. The transpose of max_pool2d_grad (its VJP, and vice versa).",
)


def _avg_pool_grad_rule(ct, *, window, stride, padding, count_include_pad, input_size):
    if ct.ndim != 4 or not is_float(ct.dtype):
        raise ShapeError(f"avg_pool2d_grad needs a floating-point cotangent of rank 4, got {ct}")
    _check_pairs("input_size", input_size)
    x = TensorType(ct.shape[:2] + tuple(input_size), ct.dtype)
    pooled = _pool_rule(x, window=window, stride=stride, padding=padding, what="avg_pool2d_grad")
    if pooled != ct.shape:
        raise ShapeError(
            f"avg_pool2d of an input of spatial size {list(input_size)} gives {list(pooled)}, "
            f"but the cotangent is {list(ct.shape)}"
        )
    return x


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
        count = _patches(ones, window, stride, padding).sum(axis=(2, 3))
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
    shape=_avg_pool_grad_rule,
    impl=_avg_pool_grad_impl,
    attrs={**_POOL_ATTRS, "count_include_pad": Attr("bool", True), "input_size": Attr("ints")},
    vjp=lambda ct, g, *, out, window, stride, padding, count_include_pad, input_size: [
        emit(
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
