"""The table that `tg.from_jax` reads: for each JAX primitive, a rule that emits the
tracegraph ops computing it.

A rule is ``rule(ctx, eqn, *inputs) -> Tensor | list[Tensor]``: ``eqn`` is the jaxpr
equation (its ``params`` are the primitive's static parameters), ``inputs`` are the
Tensors of its operands, and it emits ops with `bind`. A rule may carry a ``check(eqn)``
that returns why a particular use of the primitive cannot be expressed (or None); the
converter runs every check before emitting anything, so one error lists every problem.

NOTE: most primitives map onto existing ops, sometimes several ops per primitive
(``integer_pow`` is JAX's own square-and-multiply chain, ``gather`` a transpose +
reshape + ``take``, ``dynamic_update_slice`` a masked ``where``). That keeps every
emitted node an ordinary op with a VJP rule, so tracegraph's autodiff differentiates
converted code with no JAX-specific rules.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..frontend.builder import bind
from ..frontend.control_flow import cond, scan, while_loop
from ..frontend.tensor import Tensor


@dataclasses.dataclass(frozen=True)
class Rule:
    emit: Callable
    check: Callable | None = None


RULES: dict[str, Rule] = {}


def rule(*names, check=None):
    def register(fn):
        for n in names:
            RULES[n] = Rule(fn, check)
        return fn

    return register


# -- helpers -----------------------------------------------------------------------------


def literal_value(eqn, i):
    """The Python value of operand ``i`` if it is a jaxpr literal, else None."""
    v = eqn.invars[i]
    if isinstance(v, jcore.Literal):
        return np.asarray(v.val).item()
    return None


def out_aval(eqn, i=0):
    return eqn.outvars[i].aval


def cast(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    return x if x.dtype == dtype else bind("astype", x, dtype=dtype)


def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(int(d) for d in shape)
    return x if tuple(x.shape) == shape else bind("reshape", x, shape=shape)


def transpose(x: Tensor, perm) -> Tensor:
    perm = tuple(int(p) for p in perm)
    return x if perm == tuple(range(len(perm))) else bind("transpose", x, perm=perm)


def static_slice(x: Tensor, start, limit, strides=None) -> Tensor:
    start, limit = tuple(int(s) for s in start), tuple(int(s) for s in limit)
    strides = None if strides is None or all(s == 1 for s in strides) else tuple(strides)
    if start == (0,) * x.ndim and limit == tuple(x.shape) and strides is None:
        return x
    return bind("slice", x, start=start, limit=limit, strides=strides)


def _is_float(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


def _is_bool(dtype) -> bool:
    return np.dtype(dtype) == np.bool_


# -- elementwise -----------------------------------------------------------------------------


def _same(op):
    return lambda ctx, eqn, *xs: bind(op, *xs)


for _prim, _op in {
    "neg": "neg", "sqrt": "sqrt", "rsqrt": "rsqrt", "exp": "exp", "log": "log",
    "log1p": "log1p", "expm1": "expm1", "tanh": "tanh", "logistic": "sigmoid", "sin": "sin",
    "cos": "cos", "abs": "abs", "sign": "sign", "floor": "floor", "ceil": "ceil", "erf": "erf",
    "erfc": "erfc", "erf_inv": "erf_inv", "stop_gradient": "stop_gradient",
    "add": "add", "sub": "sub", "mul": "mul", "max": "maximum", "min": "minimum",
    "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
}.items():
    RULES[_prim] = Rule(_same(_op))


@rule("copy", "copy_p", "sharding_constraint", "optimization_barrier", "pvary")
def _identity(ctx, eqn, *xs):
    return list(xs)


@rule("square")
def _square(ctx, eqn, x):
    return bind("mul", x, x)


@rule("integer_pow")
def _integer_pow(ctx, eqn, x):
    # lax's own lowering: square-and-multiply, then a reciprocal for negative powers.
    y = eqn.params["y"]
    if y == 0:
        return bind("full", shape=x.shape, value=1, dtype=x.dtype)
    neg, y = y < 0, abs(y)
    acc = None
    while y > 0:
        if y & 1:
            acc = x if acc is None else bind("mul", acc, x)
        y >>= 1
        if y > 0:
            x = bind("mul", x, x)
    if neg:
        one = bind("full", shape=acc.shape, value=1, dtype=acc.dtype)
        acc = bind("div", one, acc)
    return acc


@rule("pow")
def _pow(ctx, eqn, x, y):
    # lax.pow(float, int) converts the exponent to the base's dtype when lowering
    return bind("pow", x, cast(y, x.dtype))


@rule("exp2")
def _exp2(ctx, eqn, x):
    return bind("exp", bind("mul", x, _scalar_like(x, math.log(2.0))))


@rule("tan")
def _tan(ctx, eqn, x):
    return bind("div", bind("sin", x), bind("cos", x))


@rule("sinh")
def _sinh(ctx, eqn, x):
    # (expm1(x) - expm1(-x)) / 2 keeps its digits near 0, unlike (exp(x) - exp(-x)) / 2
    d = bind("sub", bind("expm1", x), bind("expm1", bind("neg", x)))
    return bind("mul", d, _scalar_like(x, 0.5))


@rule("cosh")
def _cosh(ctx, eqn, x):
    s = bind("add", bind("exp", x), bind("exp", bind("neg", x)))
    return bind("mul", s, _scalar_like(x, 0.5))


@rule("is_finite")
def _is_finite(ctx, eqn, x):
    # x - x is 0 for finite x and NaN for inf and NaN
    return bind("eq", bind("sub", x, x), _scalar_like(x, 0.0))


def _scalar_like(x, value):
    """A scalar constant of x's dtype (weak only where jax would make it weak)."""
    return bind("full", shape=(), value=value, dtype=x.dtype)


@rule("div")
def _div(ctx, eqn, x, y):
    if not np.issubdtype(x.dtype, np.integer):
        return bind("div", x, y)
    # lax.div of integers rounds toward zero; floor_divide rounds down
    q = bind("floor_divide", x, y)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return q
    r = bind("remainder", x, y)
    inexact = bind("ne", r, _scalar_like(r, 0))
    signs_differ = bind("ne", bind("lt", x, _scalar_like(x, 0)), bind("lt", y, _scalar_like(y, 0)))
    fix = bind("logical_and", inexact, signs_differ)
    return bind("where", fix, bind("add", q, _scalar_like(q, 1)), q)


@rule("rem")
def _rem(ctx, eqn, x, y):
    # lax.rem is C's fmod (the sign of the dividend); remainder is Python's (the divisor's)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return bind("remainder", x, y)
    r = bind("remainder", bind("abs", x), bind("abs", y))
    return bind("mul", bind("sign", x), r)


@rule("round")
def _round(ctx, eqn, x):
    if int(eqn.params.get("rounding_method", 0)) == int(lax.RoundingMethod.TO_NEAREST_EVEN):
        return bind("round", x)
    # away from zero: trunc(x) + sign(x) where the fraction is exactly one half
    t = bind("mul", bind("sign", x), bind("floor", bind("abs", x)))
    half = bind("eq", bind("abs", bind("sub", x, t)), _scalar_like(x, 0.5))
    return bind("where", half, bind("add", t, bind("sign", x)), bind("round", x))


def _bool_only(what):
    def check(eqn):
        if not all(_is_bool(v.aval.dtype) for v in eqn.invars):
            return f"{what} of integers (bitwise) is not supported, only of bools"
        return None

    return check


for _prim, _op in {"and": "logical_and", "or": "logical_or", "xor": "logical_xor"}.items():
    RULES[_prim] = Rule(_same(_op), _bool_only(_prim))


@rule("not")
def _not(ctx, eqn, x):
    if _is_bool(x.dtype):
        return bind("logical_not", x)
    # two's complement: ~x == -x - 1, also for unsigned integers (both wrap)
    return bind("sub", bind("neg", x), _scalar_like(x, 1))


@rule("select_n")
def _select_n(ctx, eqn, pred, *cases):
    if len(cases) == 1:
        return cases[0]
    if _is_bool(pred.dtype):
        false_case, true_case = cases
        return bind("select", pred, true_case, false_case)
    out = cases[0]
    for k, c in enumerate(cases[1:], start=1):
        out = bind("select", bind("eq", pred, _scalar_like(pred, k)), c, out)
    return out


@rule("clamp")
def _clamp(ctx, eqn, lo, x, hi):
    return bind("minimum", bind("maximum", x, lo), hi)


@rule("convert_element_type")
def _convert(ctx, eqn, x):
    return cast(x, eqn.params["new_dtype"])


# -- shapes -------------------------------------------------------------------------------------


def _static_shape(eqn):
    return "dynamic shapes are not supported" if len(eqn.invars) > 1 else None


@rule("broadcast_in_dim", check=_static_shape)
def _broadcast_in_dim(ctx, eqn, x):
    shape, dims = tuple(eqn.params["shape"]), eqn.params["broadcast_dimensions"]
    value = literal_value(eqn, 0)
    if value is not None:  # a constant fill: jnp.zeros, jnp.full
        return bind("full", shape=shape, value=value, dtype=out_aval(eqn).dtype)
    inter = [1] * len(shape)
    for i, d in enumerate(dims):
        inter[d] = x.shape[i]
    y = reshape(x, inter)
    return y if tuple(inter) == shape else bind("broadcast_to", y, shape=shape)


@rule("reshape", check=_static_shape)
def _reshape(ctx, eqn, x):
    dims = eqn.params.get("dimensions")
    if dims is not None:
        x = transpose(x, dims)
    return reshape(x, eqn.params["new_sizes"])


@rule("squeeze")
def _squeeze(ctx, eqn, x):
    return bind("squeeze", x, axes=tuple(eqn.params["dimensions"]))


@rule("transpose")
def _transpose(ctx, eqn, x):
    return transpose(x, eqn.params["permutation"])


@rule("rev")
def _rev(ctx, eqn, x):
    return bind("rev", x, axes=tuple(eqn.params["dimensions"]))


@rule("concatenate")
def _concatenate(ctx, eqn, *xs):
    return bind("concatenate", *xs, axis=eqn.params["dimension"])


@rule("stack")
def _stack(ctx, eqn, *xs):
    return bind("stack", *xs, axis=eqn.params["axis"])


@rule("split")
def _split(ctx, eqn, x):
    axis, outs, start = eqn.params["axis"], [], 0
    for size in eqn.params["sizes"]:
        lo = [0] * x.ndim
        hi = list(x.shape)
        lo[axis], hi[axis] = start, start + size
        outs.append(static_slice(x, lo, hi))
        start += size
    return outs


@rule("slice")
def _slice(ctx, eqn, x):
    p = eqn.params
    return static_slice(x, p["start_indices"], p["limit_indices"], p["strides"])


def pad_static(x: Tensor, config, value) -> Tensor:
    """lax.pad with a static pad value: interior padding, then (lo, hi) edges, where a
    negative edge crops."""
    for axis, (_, _, interior) in enumerate(config):
        if interior > 0 and x.shape[axis] > 0:
            x = _interior_pad(x, axis, interior, value)
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi, _ in config)
    if any(lo or hi for lo, hi in grow):
        x = bind("pad", x, pads=grow, value=value)
    if any(lo < 0 or hi < 0 for lo, hi, _ in config):
        start = [max(-lo, 0) for lo, _, _ in config]
        limit = [d - max(-hi, 0) for d, (_, hi, _) in zip(x.shape, config)]
        x = static_slice(x, start, limit)
    return x


def _interior_pad(x, axis, k, value):
    # (.., n, ..) -> (.., n, 1, ..) -> pad the new axis to 1 + k -> merge -> drop the tail
    n = x.shape[axis]
    shape = list(x.shape)
    y = reshape(x, shape[: axis + 1] + [1] + shape[axis + 1 :])
    pads = [(0, 0)] * y.ndim
    pads[axis + 1] = (0, k)
    y = bind("pad", y, pads=tuple(pads), value=value)
    merged = shape[:axis] + [n * (k + 1)] + shape[axis + 1 :]
    y = reshape(y, merged)
    limit = list(merged)
    limit[axis] = n * (k + 1) - k
    return static_slice(y, [0] * y.ndim, limit)


@rule("pad")
def _pad(ctx, eqn, x, padding_value):
    config = [tuple(int(v) for v in c) for c in eqn.params["padding_config"]]
    value = literal_value(eqn, 1)
    if value is not None:
        return pad_static(x, config, value)
    # a traced pad value: pad with zeros, then fill the padded positions from a mask
    zeros = pad_static(x, config, 0)
    inside = pad_static(bind("full", shape=x.shape, value=True, dtype=np.bool_), config, False)
    return bind("where", inside, zeros, padding_value)


@rule("iota", check=lambda eqn: "dynamic shapes are not supported" if eqn.invars else None)
def _iota(ctx, eqn):
    p = eqn.params
    shape, dim, dtype = tuple(p["shape"]), p["dimension"], p["dtype"]
    r = bind("arange", start=0, stop=shape[dim], step=1, dtype=dtype)
    inter = [1] * len(shape)
    inter[dim] = shape[dim]
    r = reshape(r, inter)
    return r if tuple(inter) == shape else bind("broadcast_to", r, shape=shape)


# -- dynamic slicing -----------------------------------------------------------------------------


def _start(eqn, i, start, dim, size):
    """A start index clamped to [0, dim - size] as lax does: an int if static, else a
    Tensor."""
    v = literal_value(eqn, i)
    if v is not None:
        return min(max(int(v), 0), dim - size)
    return bind("clip", start, lo=0, hi=dim - size)


@rule("dynamic_slice")
def _dynamic_slice(ctx, eqn, x, *starts):
    sizes = eqn.params["slice_sizes"]
    begins = [_start(eqn, 1 + a, s, x.shape[a], sizes[a]) for a, s in enumerate(starts)]
    lo = [b if isinstance(b, int) else 0 for b in begins]
    hi = [lo[a] + sizes[a] if isinstance(b, int) else x.shape[a] for a, b in enumerate(begins)]
    x = static_slice(x, lo, hi)
    for a, b in enumerate(begins):
        if not isinstance(b, int):  # gather the window: start + arange(size)
            offsets = bind("arange", start=0, stop=sizes[a], step=1, dtype=b.dtype)
            x = bind("take", x, bind("add", b, offsets), axis=a)
    return x


@rule("dynamic_update_slice")
def _dynamic_update_slice(ctx, eqn, x, update, *starts):
    begins = [
        _start(eqn, 2 + a, s, x.shape[a], update.shape[a]) for a, s in enumerate(starts)
    ]
    if all(isinstance(b, int) for b in begins):
        pads = [(b, d - u - b, 0) for b, d, u in zip(begins, x.shape, update.shape)]
        placed = pad_static(update, pads, 0)
        mask = np.zeros(x.shape, np.bool_)
        mask[tuple(slice(b, b + u) for b, u in zip(begins, update.shape))] = True
        return bind("where", mask, placed, x)
    # per axis: position i of x reads update[i - start] where 0 <= i - start < size
    mask, placed = None, update
    for a, b in enumerate(begins):
        n, m = x.shape[a], update.shape[a]
        if m == n:
            continue
        pos = np.arange(n, dtype=np.int64 if isinstance(b, int) else b.dtype)
        rel = pos - b if isinstance(b, int) else bind("sub", pos, b)
        inside = bind("logical_and", bind("ge", rel, 0), bind("lt", rel, m))
        placed = bind("take", placed, bind("clip", rel, lo=0, hi=m - 1), axis=a)
        shape = [1] * x.ndim
        shape[a] = n
        inside = reshape(inside, shape)
        mask = inside if mask is None else bind("logical_and", mask, inside)
    return placed if mask is None else bind("where", mask, placed, x)


# -- gather -------------------------------------------------------------------------------------


def _gather_check(eqn):
    dn, sizes = eqn.params["dimension_numbers"], eqn.params["slice_sizes"]
    mode = eqn.params["mode"]
    if mode not in (lax.GatherScatterMode.CLIP, lax.GatherScatterMode.FILL_OR_DROP,
                    lax.GatherScatterMode.PROMISE_IN_BOUNDS):
        return f"gather mode {mode} is not supported"
    for d in dn.start_index_map:
        if sizes[d] != 1:
            return "gather of windows wider than 1 along an indexed dimension is not supported"
    for d in dn.collapsed_slice_dims:
        if d not in dn.start_index_map:
            return "gather collapsing a dimension that is not indexed is not supported"
    return None


def _fill_value(dtype, given):
    if given is not None:
        return given
    dt = np.dtype(dtype)
    if _is_float(dt):
        return float("nan")
    if dt.kind == "b":
        return True
    return int(np.iinfo(dt).min if dt.kind == "i" else np.iinfo(dt).max)


@rule("gather", check=_gather_check)
def _gather(ctx, eqn, x, idx):
    """The index forms of jnp indexing, take and take_along_axis: every indexed or
    batching dimension is merged into one axis (a transpose + reshape), the indices
    into one linear index, and a single ``take`` gathers."""
    p = eqn.params
    dn, sizes = p["dimension_numbers"], p["slice_sizes"]
    smap, batch_x = dn.start_index_map, dn.operand_batching_dims
    batch_i = dn.start_indices_batching_dims
    B = tuple(idx.shape[:-1])
    # windows along non-indexed dims start at 0
    free = [d for d in range(x.ndim) if d not in smap and d not in batch_x]
    x = static_slice(x, [0] * x.ndim, [sizes[d] if d in free else n for d, n in enumerate(x.shape)])
    merged = list(batch_x) + list(smap)
    lin, valid, stride = None, None, 1
    for pos in reversed(range(len(merged))):
        d = merged[pos]
        n = x.shape[d]
        if pos < len(batch_x):  # a batching dim: the position along the indices' batch dim
            bdim = batch_i[pos]
            shape = [1] * len(B)
            shape[bdim] = B[bdim]
            comp = reshape(bind("arange", start=0, stop=n, step=1, dtype=idx.dtype), shape)
        else:
            j = pos - len(batch_x)
            comp = static_slice(idx, [0] * len(B) + [j], list(B) + [j + 1])
            comp = reshape(comp, B)
            if p["mode"] == lax.GatherScatterMode.FILL_OR_DROP:
                ok = bind("logical_and", bind("ge", comp, 0), bind("le", comp, n - 1))
                valid = ok if valid is None else bind("logical_and", valid, ok)
            comp = bind("clip", comp, lo=0, hi=max(n - 1, 0))
        term = comp if stride == 1 else bind("mul", comp, stride)
        lin = term if lin is None else bind("add", lin, term)
        stride *= n
    rest = [d for d in range(x.ndim) if d not in merged]
    if len(merged) == 1:
        d = merged[0]
        got = bind("take", x, lin, axis=d)
        layout = [("o", r) for r in rest if r < d] + [("b", i) for i in range(len(B))]
        layout += [("o", r) for r in rest if r > d]
    else:
        if lin is None:
            lin = bind("full", shape=B, value=0, dtype=idx.dtype)
        xt = transpose(x, merged + rest)
        xf = reshape(xt, (stride,) + tuple(x.shape[d] for d in rest))
        got = bind("take", xf, lin, axis=0)
        layout = [("b", i) for i in range(len(B))] + [("o", r) for r in rest]
    if valid is not None:
        shape = [B[lab[1]] if lab[0] == "b" else 1 for lab in layout]
        fill = _fill_value(x.dtype, p["fill_value"])
        fill = bind("full", shape=(), value=fill, dtype=x.dtype)
        got = bind("where", reshape(valid, shape), got, fill)
    # offset dims: the operand dims not collapsed and not batching, in order; an indexed
    # dim that is not collapsed stays as a unit axis
    offset = [d for d in range(x.ndim) if d not in dn.collapsed_slice_dims and d not in batch_x]
    final, batch_iter = [], iter(range(len(B)))
    for q in range(len(B) + len(offset)):
        if q in dn.offset_dims:
            final.append(("o", offset[list(dn.offset_dims).index(q)]))
        else:
            final.append(("b", next(batch_iter)))
    present = [lab for lab in final if lab in layout]
    perm = [layout.index(lab) for lab in present]
    got = transpose(got, perm)
    return reshape(got, out_aval(eqn).shape)


# -- contractions, reductions, scans --------------------------------------------------------------


def _is_matmul(x, y, contracting, batch):
    (lc, rc), (lb, rb) = contracting, batch
    k = len(lb)
    if k:
        return (tuple(lb) == tuple(rb) == tuple(range(k)) and x.ndim == y.ndim == k + 2
                and tuple(lc) == (k + 1,) and tuple(rc) == (k,))
    return (x.ndim >= 1 and 1 <= y.ndim <= 2 and tuple(lc) == (x.ndim - 1,) and tuple(rc) == (0,)
            and (y.ndim == 2 or x.ndim <= 2))


@rule("dot_general")
def _dot_general(ctx, eqn, x, y):
    contracting, batch = eqn.params["dimension_numbers"]
    want = eqn.params.get("preferred_element_type")
    if want is not None:  # accumulate in the preferred type, as XLA does
        x, y = cast(x, want), cast(y, want)
    contracting = tuple(tuple(int(d) for d in c) for c in contracting)
    batch = tuple(tuple(int(d) for d in b) for b in batch)
    if _is_matmul(x, y, contracting, batch):
        out = bind("matmul", x, y)
    else:
        out = bind("dot_general", x, y, contracting=contracting, batch=batch)
    return cast(out, out_aval(eqn).dtype)


def _reduction(op):
    def emit(ctx, eqn, x):
        return cast(bind(op, x, axes=tuple(eqn.params["axes"])), out_aval(eqn).dtype)

    return emit


RULES["reduce_sum"] = Rule(_reduction("sum"))
RULES["reduce_max"] = Rule(_reduction("max"))
RULES["reduce_min"] = Rule(_reduction("min"))
RULES["reduce_prod"] = Rule(_reduction("prod"))


@rule("reduce_or", check=_bool_only("reduce_or"))
def _reduce_or(ctx, eqn, x):
    count = bind("sum", x, axes=tuple(eqn.params["axes"]))
    return bind("gt", count, 0)


@rule("reduce_and", check=_bool_only("reduce_and"))
def _reduce_and(ctx, eqn, x):
    count = bind("sum", bind("logical_not", x), axes=tuple(eqn.params["axes"]))
    return bind("eq", count, 0)


def _arg(op):
    def emit(ctx, eqn, x):
        (axis,) = eqn.params["axes"]
        return cast(bind(op, x, axis=int(axis)), eqn.params["index_dtype"])

    return emit


RULES["argmax"] = Rule(_arg("argmax"))
RULES["argmin"] = Rule(_arg("argmin"))


@rule("cumsum")
def _cumsum(ctx, eqn, x):
    return bind("cumsum", x, axis=eqn.params["axis"], reverse=bool(eqn.params["reverse"]))


# -- convolution and pooling ----------------------------------------------------------------------

_SPATIAL_LETTERS = "HWDXYZUVABEFGJ"


def _conv_check(eqn):
    if not all(_is_float(v.aval.dtype) for v in eqn.invars):
        return "convolution of non-float operands is not supported"
    return None


@rule("conv_general_dilated", check=_conv_check)
def _conv(ctx, eqn, x, w):
    p = eqn.params
    dn = p["dimension_numbers"]
    n = x.ndim - 2
    letters = _SPATIAL_LETTERS[:n]

    def spec(dims, a, b):
        s = [""] * (n + 2)
        s[dims[0]], s[dims[1]] = a, b
        for i in range(n):
            s[dims[2 + i]] = letters[i]
        return "".join(s)

    lhs, rhs = spec(dn.lhs_spec, "N", "C"), spec(dn.rhs_spec, "O", "I")
    out = spec(dn.out_spec, "N", "C")
    # with string specs the spatial attributes follow the letters' order in rhs_spec
    order = sorted(range(n), key=lambda i: dn.rhs_spec[2 + i])
    want = p.get("preferred_element_type")
    if want is not None:
        x, w = cast(x, want), cast(w, want)
    y = bind(
        "conv_general",
        x,
        w,
        window_strides=tuple(p["window_strides"][i] for i in order),
        padding=tuple(tuple(p["padding"][i]) for i in order),
        lhs_dilation=tuple(p["lhs_dilation"][i] for i in order),
        rhs_dilation=tuple(p["rhs_dilation"][i] for i in order),
        lhs_spec=lhs,
        rhs_spec=rhs,
        out_spec=out,
        feature_group_count=p["feature_group_count"],
        batch_group_count=p["batch_group_count"],
    )
    return cast(y, out_aval(eqn).dtype)


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
    if not _is_float(eqn.invars[0].aval.dtype):
        return None
    active = [i for i in range(len(dims)) if dims[i] != 1 or strides[i] != 1 or pads[i] != (0, 0)]
    return active if 1 <= len(active) <= 2 else None


def _window_check(eqn):
    if _pool2d_form(eqn) is None and math.prod(_window_params(eqn)[0]) > _MAX_SLICED_WINDOW:
        return (f"a reduce_window with a window of {math.prod(_window_params(eqn)[0])} "
                f"elements over more than two dims (or dilated) is not supported")
    return None


def _reduce_window(kind):
    def emit(ctx, eqn, x):
        active = _pool2d_form(eqn)
        if active is not None:
            return _via_pool2d(kind, eqn, x, active)
        return _via_slices(kind, eqn, x)

    return emit


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
        y = bind("mul", mean, _scalar_like(mean, float(math.prod(window))))
    out_spatial = list(y.shape[2:])[-len(active):]
    y = reshape(y, lead + out_spatial)
    inverse = np.argsort(others + active)
    return transpose(y, inverse)


def _via_slices(kind, eqn, x):
    dims, strides, pads, base, wdil = _window_params(eqn)
    if kind == "sum":
        init, combine = 0, "add"
    elif _is_float(x.dtype):
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


for _kind in ("max", "min", "sum"):
    RULES[f"reduce_window_{_kind}"] = Rule(_reduce_window(_kind), _window_check)


# -- calls and control flow ------------------------------------------------------------------------


@rule("jit", "pjit", "closed_call", "core_call")
def _call(ctx, eqn, *xs):
    closed = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
    return ctx.run_closed(closed, xs)


@rule("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")
def _custom_call(ctx, eqn, *xs):
    # The primal computation; tracegraph differentiates it with its own rules.
    closed = eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
    return ctx.run_closed(closed, xs)


@rule("remat2", "checkpoint", "remat")
def _remat(ctx, eqn, *xs):
    return ctx.run(eqn.params["jaxpr"], (), xs)


@rule("cond")
def _cond(ctx, eqn, index, *ops):
    return _switch(ctx, index, list(eqn.params["branches"]), list(ops), 0)


def _switch(ctx, index, branches, ops, k):
    """lax.switch as nested two-way conds: branch k if index <= k, else the rest (an
    index past the end takes the last branch, as lax clamps it)."""
    if len(branches) == 1:
        return ctx.run_closed(branches[0], ops)
    if _is_bool(index.dtype):
        return cond(
            index,
            lambda *a: ctx.run_closed(branches[1], a),
            lambda *a: ctx.run_closed(branches[0], a),
            *ops,
        )
    return cond(
        bind("le", index, k),
        lambda *a: ctx.run_closed(branches[0], a),
        lambda *a: _switch(ctx, index, branches[1:], list(a), k + 1),
        *ops,
    )


@rule("while")
def _while(ctx, eqn, *xs):
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = xs[:nc], xs[nc : nc + nb], list(xs[nc + nb :])
    return while_loop(
        lambda carry: ctx.run_closed(p["cond_jaxpr"], [*cond_consts, *carry])[0],
        lambda carry: ctx.run_closed(p["body_jaxpr"], [*body_consts, *carry]),
        init,
    )


@rule("scan")
def _scan(ctx, eqn, *xs):
    p = eqn.params
    nk, nc = p["num_consts"], p["num_carry"]
    consts, init, seqs = xs[:nk], list(xs[nk : nk + nc]), list(xs[nk + nc :])

    def step(carry, x):
        outs = ctx.run_closed(p["jaxpr"], [*consts, *carry, *x])
        return outs[:nc], outs[nc:]

    carry, ys = scan(step, init, seqs, length=p["length"], reverse=bool(p["reverse"]))
    return [*carry, *ys]
