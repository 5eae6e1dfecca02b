"""Convolutions: ``conv_general`` (all of lax.conv_general_dilated: any rank, any
layout, feature and batch groups, dilation on both sides) and ``conv2d`` (PyTorch's NCHW /
OIHW form with explicit padding, whose backward pass is readable conv_general IR).

References are float64 numpy from explicit patch extraction, independent of lax.
"""

from __future__ import annotations


import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import Error
from ..ir.types import is_float
from .defop import (
    Attr,
    Sample,
    ShapeError,
    defop,
    bind,
    lax_weak,
    promoted_dtype,
    no_sharding,
)
from .samples import FLOATS, arr
from .windows import check_padding, check_pairs, patches, window_out


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


def _conv_general_shape(
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
    return tuple(out[c] for c in out_spec)


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
    return bind("reshape", x, shape=tuple(shape))


def _reshape_axis_into(src, dst, x):
    # Merge axis src into axis dst (dst counted after src is removed), src the major part.
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    shape = [x.shape[i] for i in range(x.ndim) if i != src]
    shape[dst] *= x.shape[src]
    if perm != list(range(x.ndim)):
        x = bind("transpose", x, perm=tuple(perm))
    return bind("reshape", x, shape=tuple(shape))


def _rename(spec, mapping):
    return "".join(mapping.get(c, c) for c in spec)


def _bind_conv(lhs, rhs, lhs_spec, rhs_spec, out_spec, by_dim, fg=1, bg=1):
    """A conv_general node; ``by_dim`` maps each spatial letter to its (stride, padding,
    lhs dilation, rhs dilation), put in the order of the new rhs_spec."""
    sp = _spatial(rhs_spec)
    return bind(
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
    flipped = bind("rev", w, axes=tuple(rhs_spec.index(c) for c in sp))
    t_rhs_spec = _rename(rhs_spec, {"O": "I", "I": "O"})
    out = _bind_conv(ct, flipped, out_spec, t_rhs_spec, lhs_spec, by_dim, fg=max(fg, bg))
    if bg > 1:
        c, n = lhs_spec.index("C"), lhs_spec.index("N")
        out = _reshape_axis_into(c, n, _reshape_axis_out_of(c, bg, out))
    return out


def _conv_transpose_rhs(ct, x, w, a):
    # A port of jax.lax's _conv_general_dilated_transpose_rhs: convolve the input with
    # the cotangent, batch and feature roles swapped (feature groups become batch groups
    # and vice versa); forward strides become rhs dilation.
    if 0 in ct.shape:
        return bind("full", shape=w.shape, value=0, dtype=w.dtype)
    lhs_spec, rhs_spec, out_spec = a["lhs_spec"], a["rhs_spec"], a["out_spec"]
    fg, bg = a["feature_group_count"], a["batch_group_count"]
    sizes = _conv_dilated_sizes(ct, x, w, a)
    by_dim = {}
    for k, c in enumerate(_spatial(rhs_spec)):
        lhs_d, rhs_d, out_d = sizes[c]
        lo = a["padding"][k][0]
        hi = (out_d - lhs_d) + (rhs_d - lo - 1)
        by_dim[c] = (a["rhs_dilation"][k], (lo, hi), a["lhs_dilation"][k], a["window_strides"][k])
    return _bind_conv(
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
    shape=_conv_general_shape,
    dtype=promoted_dtype,  # the implementation's jnp.result_type
    weak=lax_weak,
    sharding=no_sharding,
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








def _conv2d_shape(x, w, *, stride, padding, dilation, groups):
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d needs x of rank 4 (NCHW) and w of rank 4 (OIHW), got {x} and {w}")
    for t in (x, w):
        if not is_float(t.dtype):
            raise ShapeError(f"conv2d needs floating-point operands, got {t}")
    check_pairs("stride", stride)
    check_pairs("dilation", dilation)
    check_padding(padding)
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
    ho = window_out(h, padding[0], kh, stride[0], dilation[0])
    wo = window_out(wd, padding[1], kw, stride[1], dilation[1])
    return (n, o, ho, wo)


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




def _conv2d_reference(x, w, *, stride, padding, dilation, groups):
    dt = jnp.result_type(x, w)
    p = patches(np.asarray(x).astype(np.float64), np.shape(w)[2:], stride, padding, dilation)
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
    shape=_conv2d_shape,
    dtype=promoted_dtype,  # the implementation's jnp.result_type
    weak=lax_weak,
    sharding=no_sharding,
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
