"""Rules for JAX's shape primitives (broadcast, reshape, transpose, slices, padding, iota,
tile) and its indexing primitives (dynamic slices, gather); the scatter family has no
mapping yet."""

from __future__ import annotations

import numpy as np
from jax import lax

from ...core import bind
from ...core import Tensor
from ._rule import (
    RuleTable,
    is_float,
    literal_value,
    out_aval,
    reshape,
    static_slice,
    transpose,
)

RULES = RuleTable()
rule = RULES.register


# -- shapes -------------------------------------------------------------------------------


def _static_shape(eqn):
    return "dynamic shapes are not supported" if len(eqn.invars) > 1 else None


@rule(lax.broadcast_in_dim_p, check=_static_shape)
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


@rule(lax.reshape_p, check=_static_shape)
def _reshape(ctx, eqn, x):
    dims = eqn.params.get("dimensions")
    if dims is not None:
        x = transpose(x, dims)
    return reshape(x, eqn.params["new_sizes"])


@rule(lax.squeeze_p)
def _squeeze(ctx, eqn, x):
    return bind("squeeze", x, axes=tuple(eqn.params["dimensions"]))


@rule(lax.transpose_p)
def _transpose(ctx, eqn, x):
    return transpose(x, eqn.params["permutation"])


@rule(lax.rev_p)
def _rev(ctx, eqn, x):
    return bind("rev", x, axes=tuple(eqn.params["dimensions"]))


@rule(lax.concatenate_p)
def _concatenate(ctx, eqn, *xs):
    return bind("concatenate", *xs, axis=eqn.params["dimension"])


@rule(lax.stack_p)
def _stack(ctx, eqn, *xs):
    return bind("stack", *xs, axis=eqn.params["axis"])


def _pieces(x, axis, sizes):
    """Consecutive static slices of x along axis, of the given sizes."""
    outs, start = [], 0
    for size in sizes:
        lo = [0] * x.ndim
        hi = list(x.shape)
        lo[axis], hi[axis] = start, start + size
        outs.append(static_slice(x, lo, hi))
        start += size
    return outs


@rule(lax.split_p)
def _split(ctx, eqn, x):
    return _pieces(x, eqn.params["axis"], eqn.params["sizes"])


@rule(lax.unstack_p)
def _unstack(ctx, eqn, x):
    axis = eqn.params["axis"]
    rest = x.shape[:axis] + x.shape[axis + 1 :]
    return [reshape(p, rest) for p in _pieces(x, axis, [1] * x.shape[axis])]


@rule(lax.tile_p)
def _tile(ctx, eqn, x):
    # (.., n, ..) -> (.., 1, n, ..) -> broadcast to (.., r, n, ..) -> merge to (.., r * n, ..)
    reps = tuple(int(r) for r in eqn.params["reps"])
    if all(r == 1 for r in reps):
        return x
    pairs = [(1, n) for n in x.shape]
    y = reshape(x, [d for p in pairs for d in p])
    y = bind("broadcast_to", y, shape=tuple(d for r, n in zip(reps, x.shape) for d in (r, n)))
    return reshape(y, [r * n for r, n in zip(reps, x.shape)])


@rule(lax.slice_p)
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


@rule(lax.pad_p)
def _pad(ctx, eqn, x, padding_value):
    config = [tuple(int(v) for v in c) for c in eqn.params["padding_config"]]
    value = literal_value(eqn, 1)
    if value is not None:
        return pad_static(x, config, value)
    # a traced pad value: pad with zeros, then fill the padded positions from a mask
    zeros = pad_static(x, config, 0)
    inside = pad_static(bind("full", shape=x.shape, value=True, dtype=np.bool_), config, False)
    return bind("where", inside, zeros, padding_value)


@rule(lax.iota_p, check=lambda eqn: "dynamic shapes are not supported" if eqn.invars else None)
def _iota(ctx, eqn):
    p = eqn.params
    shape, dim, dtype = tuple(p["shape"]), p["dimension"], p["dtype"]
    r = bind("arange", start=0, stop=shape[dim], step=1, dtype=dtype)
    inter = [1] * len(shape)
    inter[dim] = shape[dim]
    r = reshape(r, inter)
    return r if tuple(inter) == shape else bind("broadcast_to", r, shape=shape)


# -- dynamic slicing ------------------------------------------------------------------------


def _start(eqn, i, start, dim, size):
    """A start index clamped to [0, dim - size] as lax does: an int if static, else a
    Tensor."""
    v = literal_value(eqn, i)
    if v is not None:
        return min(max(int(v), 0), dim - size)
    return bind("clip", start, lo=0, hi=dim - size)


@rule(lax.dynamic_slice_p)
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


@rule(lax.dynamic_update_slice_p)
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


# -- gather ---------------------------------------------------------------------------------


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
    if is_float(dt):
        return float("nan")
    if dt.kind == "b":
        return True
    return int(np.iinfo(dt).min if dt.kind == "i" else np.iinfo(dt).max)


@rule(lax.gather_p, check=_gather_check)
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


# -- not yet supported -------------------------------------------------------------------

_SCATTER = (
    "scatter (x.at[i].set/add/..., and JAX's own gradient of a gather) is not mapped yet"
)

NOT_YET_SUPPORTED = {
    lax.scatter_p: _SCATTER,
    lax.scatter_add_p: _SCATTER,
    lax.scatter_sub_p: _SCATTER,
    lax.scatter_mul_p: _SCATTER,
    lax.scatter_min_p: _SCATTER,
    lax.scatter_max_p: _SCATTER,
}
