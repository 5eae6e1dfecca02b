"""Rules for JAX's reductions: along axes (``reduce_sum`` ...), arg-reductions, cumulative
ops, windowed reductions (pooling) and max/min pooling's gradient; and the reductions and
pooling derivatives with no mapping yet."""

from __future__ import annotations

import math

import numpy as np
from jax import lax

from ...core import bind
from ._rule import (
    RuleTable,
    cast,
    is_float,
    out_aval,
    reshape,
    scalar_like,
    static_slice,
    transpose,
)
from ._shape import pad_static

RULES = RuleTable()
rule = RULES.register


def _reduction(op):
    def convert(ctx, eqn, x):
        return cast(bind(op, x, axes=tuple(eqn.params["axes"])), out_aval(eqn).dtype)

    return convert


for _prim, _op in {
    lax.reduce_sum_p: "sum", lax.reduce_max_p: "max", lax.reduce_min_p: "min",
    lax.reduce_prod_p: "prod",
}.items():
    rule(_prim)(_reduction(_op))


def _any(x, axes):
    return bind("gt", bind("sum", x, axes=axes), 0)


def _all(x, axes):
    return bind("eq", bind("sum", bind("logical_not", x), axes=axes), 0)


def _parity(x, axes):
    return bind("eq", bind("remainder", bind("sum", x, axes=axes), 2), 1)


def _bitwise_reduction(logical):
    """``reduce_or``/``reduce_and``/``reduce_xor``: of bools the logical reduction; of
    integers the same on each bit (read with a logical shift and a mask, least
    significant first) and the reduced bits put back in place (``shift_left``,
    ``bitwise_or``), two's complement as in lax."""

    def convert(ctx, eqn, x):
        axes = tuple(eqn.params["axes"])
        if x.dtype == np.bool_:
            return logical(x, axes)
        out = None
        for b in range(np.dtype(x.dtype).itemsize * 8):
            bit = bind("ne", bind("bitwise_and", bind("shift_right_logical", x, b), 1), 0)
            placed = bind("shift_left", cast(logical(bit, axes), x.dtype), b)
            out = placed if out is None else bind("bitwise_or", out, placed)
        return out

    return convert


rule(lax.reduce_or_p)(_bitwise_reduction(_any))
rule(lax.reduce_and_p)(_bitwise_reduction(_all))
rule(lax.reduce_xor_p)(_bitwise_reduction(_parity))


def _arg(op):
    def convert(ctx, eqn, x):
        (axis,) = eqn.params["axes"]
        return cast(bind(op, x, axis=int(axis)), eqn.params["index_dtype"])

    return convert


rule(lax.argmax_p)(_arg("argmax"))
rule(lax.argmin_p)(_arg("argmin"))


def _cumulative(op):
    def convert(ctx, eqn, x):
        return bind(op, x, axis=eqn.params["axis"], reverse=bool(eqn.params["reverse"]))

    return convert


for _prim, _op in {
    lax.cumsum_p: "cumsum", lax.cumprod_p: "cumprod", lax.cummax_p: "cummax",
    lax.cummin_p: "cummin", lax.cumlogsumexp_p: "cumlogsumexp",
}.items():
    rule(_prim)(_cumulative(_op))


# -- windowed reductions (pooling) ---------------------------------------------------------

_MAX_SLICED_WINDOW = 64


def _window_params(eqn):
    p = eqn.params
    return (tuple(p["window_dimensions"]), tuple(p["window_strides"]),
            tuple(tuple(q) for q in p["padding"]), tuple(p["base_dilation"]),
            tuple(p["window_dilation"]))


def _pool2d_form(eqn):
    """The dims a pool2d op can reduce over, or None: at most two windowed dims, no
    dilation, a float operand."""
    dims, strides, pads, base, wdil = _window_params(eqn)
    if any(b != 1 for b in base) or any(d != 1 for d in wdil):
        return None
    if not is_float(eqn.invars[0].aval.dtype):
        return None
    active = [i for i in range(len(dims)) if dims[i] != 1 or strides[i] != 1 or pads[i] != (0, 0)]
    return active if 1 <= len(active) <= 2 else None


def _window_check(eqn):
    if _pool2d_form(eqn) is None and math.prod(_window_params(eqn)[0]) > _MAX_SLICED_WINDOW:
        return (f"a reduce_window with a window of {math.prod(_window_params(eqn)[0])} "
                f"elements over more than two dims (or dilated) is not supported")
    return None


def _reduce_window(kind):
    def convert(ctx, eqn, x):
        active = _pool2d_form(eqn)
        if active is not None:
            return _via_pool2d(kind, eqn, x, active)
        return _via_slices(kind, eqn, x)

    return convert


def _via_pool2d(kind, eqn, x, active):
    dims, strides, pads, _, _ = _window_params(eqn)
    others = [i for i in range(x.ndim) if i not in active]
    xt = transpose(x, others + active)
    lead = [x.shape[i] for i in others]
    window, stride = [dims[i] for i in active], [strides[i] for i in active]
    padding, spatial = [pads[i] for i in active], [x.shape[i] for i in active]
    if len(active) == 1:
        window, stride, spatial = [1, *window], [1, *stride], [1, *spatial]
        padding = [(0, 0), *padding]
    x4 = reshape(xt, (math.prod(lead), 1, *spatial))
    attrs = dict(window=tuple(window), stride=tuple(stride), padding=tuple(padding))
    if kind == "max":
        y = bind("max_pool2d", x4, **attrs)
    elif kind == "min":
        y = bind("neg", bind("max_pool2d", bind("neg", x4), **attrs))
    else:
        mean = bind("avg_pool2d", x4, count_include_pad=True, **attrs)
        y = bind("mul", mean, scalar_like(mean, float(math.prod(window))))
    out_spatial = list(y.shape[2:])[-len(active):]
    y = reshape(y, lead + out_spatial)
    inverse = np.argsort(others + active)
    return transpose(y, inverse)


def _via_slices(kind, eqn, x):
    dims, strides, pads, base, wdil = _window_params(eqn)
    if kind == "sum":
        init, combine = 0, "add"
    elif is_float(x.dtype):
        init, combine = (-math.inf, "maximum") if kind == "max" else (math.inf, "minimum")
    else:
        info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        lo, hi = (int(info.min), int(info.max)) if info else (False, True)
        init, combine = (lo, "maximum") if kind == "max" else (hi, "minimum")
    xp = pad_static(x, [(lo, hi, b - 1) for (lo, hi), b in zip(pads, base)], init)
    extent = [(d - 1) * r + 1 for d, r in zip(dims, wdil)]
    out = [max(0, (n - e) // s + 1) for n, e, s in zip(xp.shape, extent, strides)]
    acc = None
    for offs in np.ndindex(*dims):
        start = [o * r for o, r in zip(offs, wdil)]
        limit = [b + (m - 1) * s + 1 if m else b for b, m, s in zip(start, out, strides)]
        part = static_slice(xp, start, limit, strides)
        acc = part if acc is None else bind(combine, acc, part)
    return acc


for _prim, _kind in {
    lax.reduce_window_max_p: "max", lax.reduce_window_min_p: "min",
    lax.reduce_window_sum_p: "sum",
}.items():
    rule(_prim, check=_window_check)(_reduce_window(_kind))


# -- the gradient of max/min pooling (select_and_scatter_add) --------------------------------


def _scatter_form(eqn):
    """The windowed dims of a select_and_scatter_add that max_pool2d_grad covers, or a
    reason: at most two of them, a float operand, a max (ge) or min (le) selection."""
    p = eqn.params
    dims, strides = tuple(p["window_dimensions"]), tuple(p["window_strides"])
    pads = tuple(tuple(q) for q in p["padding"])
    if p["select_prim"] not in (lax.ge_p, lax.le_p):
        return f"a select_and_scatter_add selecting by {p['select_prim']} (only max/min pooling's ge/le)"
    if not is_float(eqn.invars[1].aval.dtype):
        return "the gradient of an integer max/min pooling"
    active = [i for i in range(len(dims)) if dims[i] != 1 or strides[i] != 1 or pads[i] != (0, 0)]
    if len(active) > 2:
        return (f"the gradient of a max/min pooling over {len(active)} windowed dims "
                f"(max_pool2d_grad covers two)")
    return active


def _pool_grad_check(eqn):
    form = _scatter_form(eqn)
    return form if isinstance(form, str) else None


@rule(lax.select_and_scatter_add_p, check=_pool_grad_check)
def _select_and_scatter_add(ctx, eqn, ct, x):
    # JAX's max pooling gradient: each window's cotangent to its first maximum, which is
    # what max_pool2d_grad gives (it is jax.vjp of the same reduce_window); the windowed
    # dims go last, the others fold into max_pool2d_grad's batch dim (as _via_pool2d)
    p = eqn.params
    active = _scatter_form(eqn)
    if not active:  # 1x1 windows, stride 1: every element is its own window
        return ct
    dims, strides, pads = p["window_dimensions"], p["window_strides"], p["padding"]
    others = [i for i in range(x.ndim) if i not in active]
    lead = [x.shape[i] for i in others]
    window, stride = [dims[i] for i in active], [strides[i] for i in active]
    padding = [tuple(pads[i]) for i in active]
    spatial, pooled = [x.shape[i] for i in active], [ct.shape[i] for i in active]
    if len(active) == 1:
        window, stride, spatial, pooled = [1, *window], [1, *stride], [1, *spatial], [1, *pooled]
        padding = [(0, 0), *padding]
    x4 = reshape(transpose(x, others + active), (math.prod(lead), 1, *spatial))
    ct4 = reshape(transpose(ct, others + active), (math.prod(lead), 1, *pooled))
    if p["select_prim"] is lax.le_p:  # the first minimum is the first maximum of -x
        x4 = bind("neg", x4)
    g = bind("max_pool2d_grad", x4, ct4, window=tuple(window), stride=tuple(stride),
             padding=tuple(padding))
    g = reshape(g, lead + [x.shape[i] for i in active])
    return transpose(g, [int(i) for i in np.argsort(others + active)])


@rule(lax.sort_p)
def _sort(ctx, eqn, *operands):
    # every operand permuted by the order of the keys (JAX's argsort sorts (x, iota)).
    # One key: it goes through `sort`, whose gradient is a gather, the others by
    # take_along_axis. Several (jnp.lexsort): stable argsorts from the last key to the
    # first, each of the order so far, give the lexicographic order (first key most
    # significant, ties in their original order, as lax.sort's stable sort keeps them)
    axis = eqn.params["dimension"]
    keys = operands[: eqn.params["num_keys"]]
    if len(keys) == 1:
        outs = [bind("sort", keys[0], axis=axis, descending=False)]
        if len(operands) > 1:
            perm = bind("argsort", keys[0], axis=axis, descending=False)
            outs += [bind("take_along_axis", x, perm, axis=axis) for x in operands[1:]]
        return outs
    perm = bind("argsort", keys[-1], axis=axis, descending=False)
    for key in reversed(keys[:-1]):
        order = bind("argsort", bind("take_along_axis", key, perm, axis=axis), axis=axis, descending=False)
        perm = bind("take_along_axis", perm, order, axis=axis)
    return [bind("take_along_axis", x, perm, axis=axis) for x in operands]


@rule(lax.top_k_p)
def _top_k(ctx, eqn, x):
    # tracegraph's top_k works on the last axis: another axis is moved there and back
    axis = eqn.params.get("axis", x.ndim - 1) % x.ndim
    perm = tuple(d for d in range(x.ndim) if d != axis) + (axis,)
    back = tuple(int(i) for i in np.argsort(perm))
    moved = axis != x.ndim - 1
    values, indices = bind("top_k", bind("transpose", x, perm=perm) if moved else x, k=eqn.params["k"])
    if moved:
        values, indices = (bind("transpose", t, perm=back) for t in (values, indices))
    return [values, indices]


# -- not yet supported -------------------------------------------------------------------

_POOL_GRAD = (
    "JAX's forward-mode or generic derivative of a max/min pooling (jax.grad's "
    "select_and_scatter_add is mapped); differentiate the pooling with tracegraph instead"
)

NOT_YET_SUPPORTED = {
    lax.reduce_p: "a reduction with a user computation (lax.reduce); only the named "
    "reductions (reduce_sum, reduce_max, ...) are mapped",
    lax.reduce_window_p: "a windowed reduction with a user computation (lax.reduce_window); "
    "only its max/min/sum forms are mapped",
    lax.select_and_gather_add_p: _POOL_GRAD,
    lax.select_and_scatter_p: _POOL_GRAD,
    lax.approx_top_k_p: "an approximate top_k (TPU); use lax.top_k",
}
