"""Rules for JAX's shape primitives (broadcast, reshape, transpose, slices, padding, iota,
tile) and its indexing primitives (dynamic slices, gather, the scatter family)."""

from __future__ import annotations

import numpy as np
from jax import lax

from ...core import bind
from ...core import Tensor
from ._rule import (
    RuleTable,
    cast,
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


_MODES = (lax.GatherScatterMode.CLIP, lax.GatherScatterMode.FILL_OR_DROP,
          lax.GatherScatterMode.PROMISE_IN_BOUNDS)


def _gather_check(eqn):
    mode = eqn.params["mode"]
    if mode not in _MODES:
        return f"gather mode {mode} is not supported"
    return None


def _one_axis_gather(dn, sizes):
    """Whether a gather reads windows of width 1 along its indexed dims and collapses only
    those: then merging the indexed dims into one axis and one ``take`` does it, keeping
    the other dims as they are (else `_gather_elements` gathers element by element)."""
    return all(sizes[d] == 1 for d in dn.start_index_map) and all(
        d in dn.start_index_map for d in dn.collapsed_slice_dims
    )


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
    if not _one_axis_gather(dn, sizes):
        return _gather_elements(eqn, x, idx)
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


# -- element-wise positions: wide gathers and every scatter ---------------------------------


def _window_positions(eqn, x_shape, idx, out_shape, *, offset_dims, collapsed, smap, batch_x,
                      batch_i, sizes):
    """For each element of a gather's output (a scatter's updates), shaped ``out_shape``:
    its position in the operand flattened, and whether its window is in bounds (None when
    the mode clamps).

    NOTE: XLA's window semantics, element by element: along an indexed dim the window
    starts at the index (clamped to [0, n - size] in CLIP mode; in the other modes a
    window not wholly inside is dropped or filled), along a batching dim at the element's
    own batch position, elsewhere at 0; each window dim adds arange(size) on its own
    output dim. Indices are never wrapped (lax's negative index is out of bounds)."""
    n_total = int(np.prod(x_shape))
    dtype = np.dtype(np.int32 if n_total + 1 <= np.iinfo(np.int32).max else np.int64)
    rank = len(out_shape)
    batch_out = [q for q in range(rank) if q not in offset_dims]
    B = tuple(idx.shape[:-1])
    window = [d for d in range(len(x_shape)) if d not in collapsed and d not in batch_x]
    clamp = eqn.params["mode"] == lax.GatherScatterMode.CLIP

    def on_batch_dims(t):  # a tensor of B's rank (dims B[i] or 1) on the output's batch dims
        shape = [1] * rank
        for q, b in zip(batch_out, t.shape):
            shape[q] = b
        return reshape(t, shape)

    pos, valid, stride = None, None, 1
    for d in reversed(range(len(x_shape))):
        n, size = x_shape[d], sizes[d]
        terms = []
        if d in smap:
            j = list(smap).index(d)
            start = reshape(static_slice(idx, [0] * len(B) + [j], list(B) + [j + 1]), B)
            if start.dtype.itemsize < 4:  # room for the bounds below
                start = cast(start, np.int32)
            if not clamp:
                ok = bind("logical_and", bind("ge", start, 0), bind("le", start, n - size))
                valid = ok if valid is None else bind("logical_and", valid, ok)
            start = cast(bind("clip", start, lo=0, hi=max(n - size, 0)), dtype)
            terms.append(on_batch_dims(start))
        elif d in batch_x:
            b = list(batch_i)[list(batch_x).index(d)]
            shape = [1] * len(B)
            shape[b] = B[b]
            own = reshape(bind("arange", start=0, stop=n, step=1, dtype=dtype), shape)
            terms.append(on_batch_dims(own))
        if d in window and size > 1:
            shape = [1] * rank
            shape[offset_dims[window.index(d)]] = size
            terms.append(reshape(bind("arange", start=0, stop=size, step=1, dtype=dtype), shape))
        for t in terms:
            t = t if stride == 1 else bind("mul", t, stride)
            pos = t if pos is None else bind("add", pos, t)
        stride *= n
    if pos is None:
        pos = bind("full", shape=(), value=0, dtype=dtype)
    pos = bind("broadcast_to", pos, shape=tuple(out_shape)) if tuple(pos.shape) != tuple(out_shape) else pos
    if valid is not None:
        valid = bind("broadcast_to", on_batch_dims(valid), shape=tuple(out_shape))
    return pos, valid, n_total


def _gather_elements(eqn, x, idx):
    """A gather read element by element: one ``take`` from the flattened operand."""
    p = eqn.params
    dn, out = p["dimension_numbers"], out_aval(eqn)
    pos, valid, n = _window_positions(
        eqn, x.shape, idx, out.shape, offset_dims=list(dn.offset_dims),
        collapsed=dn.collapsed_slice_dims, smap=dn.start_index_map,
        batch_x=dn.operand_batching_dims, batch_i=dn.start_indices_batching_dims,
        sizes=p["slice_sizes"],
    )
    if n == 0:
        return bind("full", shape=tuple(out.shape), value=_fill_value(x.dtype, p["fill_value"]), dtype=x.dtype)
    got = bind("take", reshape(x, (n,)), pos, axis=0)
    if valid is not None:
        fill = bind("full", shape=(), value=_fill_value(x.dtype, p["fill_value"]), dtype=x.dtype)
        got = bind("where", valid, got, fill)
    return got


_SCATTER_OPS = {
    lax.scatter_p: "index_set",
    lax.scatter_add_p: "index_add",
    lax.scatter_sub_p: "index_add",  # of the negated updates: x - u == x + (-u) exactly
    lax.scatter_mul_p: "index_mul",
    lax.scatter_min_p: "index_min",
    lax.scatter_max_p: "index_max",
}


def _scatter_check(eqn):
    mode = eqn.params["mode"]
    if mode not in _MODES:
        return f"scatter mode {mode} is not supported"
    if eqn.primitive is lax.scatter_p and eqn.params.get("update_jaxpr") is not None:
        return "scatter with an update function (x.at[...].apply) is not supported"
    return None


@rule(*_SCATTER_OPS, check=_scatter_check)
def _scatter(ctx, eqn, x, idx, updates):
    """Every scatter: the position of each update element in the flattened operand
    (`_window_positions`, the windows of XLA's semantics element by element), one
    ``index_*`` op on the flat operand, dropping the windows out of bounds unless the
    mode clamps; then the operand's shape back. Repeated positions: set keeps the last
    update (what XLA does on CPU), the others combine them all."""
    dn = eqn.params["dimension_numbers"]
    window = [d for d in range(x.ndim)
              if d not in dn.inserted_window_dims and d not in dn.operand_batching_dims]
    sizes = [1] * x.ndim
    for d, q in zip(window, dn.update_window_dims):
        sizes[d] = updates.shape[q]
    pos, valid, n = _window_positions(
        eqn, x.shape, idx, updates.shape, offset_dims=list(dn.update_window_dims),
        collapsed=dn.inserted_window_dims, smap=dn.scatter_dims_to_operand_dims,
        batch_x=dn.operand_batching_dims, batch_i=dn.scatter_indices_batching_dims,
        sizes=sizes,
    )
    mode = "clip"
    if valid is not None:
        pos, mode = bind("where", valid, pos, n), "drop"
    if eqn.primitive is lax.scatter_sub_p:
        updates = bind("neg", updates)
    out = bind(_SCATTER_OPS[eqn.primitive], reshape(x, (n,)), pos, updates, axis=0, mode=mode)
    return reshape(out, x.shape)


# -- not yet supported -------------------------------------------------------------------

NOT_YET_SUPPORTED = {}
