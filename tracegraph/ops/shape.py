"""Shape ops: reshape, transpose, broadcast_to, expand_dims, squeeze, concatenate, stack,
static slicing (``slice`` with lax.slice semantics, ``rev`` for negative steps), gathers
(``take``, ``take_along_axis``; their transposes, the scatters, are in scatter.py) and
``pad``.

All of them keep the dtype and the weak flag of their operand (concatenate and stack
promote their operands as jax.numpy does). Shardings follow the dims where that is plain:
transpose permutes the partition spec, expand_dims/squeeze/broadcast_to add or drop
unpartitioned dims; the rest keep an operand's sharding only where the output has its
shape (the standard rule; an identity reshape, slice or pad), and the gathers give none. The gathers follow ``x[idx]`` in jax.numpy:
negative indices wrap once, then out-of-bounds indices clamp to the edge.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import Error, IRError
from ..ir.types import checked_num_elements
from .defop import (
    Attr,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    defop,
    bind,
    first_dtype,
    first_sharding,
    first_weak,
    no_sharding,
    normalize_axes,
    normalize_axis,
    unbroadcast,
)
from .samples import arr

_SOME = ("f32", "f64", "f16", "bf16", "i32", "i64", "u8", "bool")


def check_shape(shape) -> tuple[int, ...]:
    """A static result shape from an attribute: ints >= 0, a sane element count."""
    try:
        checked_num_elements(shape)
    except IRError as e:
        raise ShapeError(str(e)) from None
    return tuple(shape)


# -- VJP rules ----------------------------------------------------------------------------


def _slice_axis(t, axis, lo, hi):
    start = [0] * len(t.shape)
    limit = list(t.shape)
    start[axis], limit[axis] = lo, hi
    return bind("slice", t, start=tuple(start), limit=tuple(limit), strides=None)


def _pad_axis(t, axis, lo, hi):
    pads = [(0, 0)] * len(t.shape)
    pads[axis] = (lo, hi)
    return bind("pad", t, pads=tuple(pads), value=0, mode="constant")


def _concatenate_vjp(ct, *xs, out, axis):
    a = normalize_axis(axis, len(out.shape))
    cts, at = [], 0
    for x in xs:
        n = x.shape[a]
        cts.append(_slice_axis(ct, a, at, at + n))
        at += n
    return cts


def _stack_vjp(ct, *xs, out, axis):
    a = normalize_axis(axis, len(out.shape))
    return [bind("reshape", _slice_axis(ct, a, i, i + 1), shape=x.shape) for i, x in enumerate(xs)]


def _slice_vjp(ct, x, *, out, start, limit, strides):
    # Put each strided axis back in place: interleave zeros between the picked elements
    # (expand, pad the new axis to the stride, merge), then pad to the full length.
    strides = strides or (1,) * len(x.shape)
    g = ct
    for a, (s, e, st, d) in enumerate(zip(start, limit, strides, x.shape)):
        m = g.shape[a]
        if st > 1 and m > 0:
            g = bind("expand_dims", g, axes=(a + 1,))
            g = _pad_axis(g, a + 1, 0, st - 1)
            shape = list(g.shape)
            g = bind("reshape", g, shape=tuple(shape[:a]) + (m * st,) + tuple(shape[a + 2 :]))
            g = _slice_axis(g, a, 0, (m - 1) * st + 1)
        g = _pad_axis(g, a, s, d - s - g.shape[a])
    return [g]


def _clamped_indices(idx, n):
    """The indices ``x[idx]`` actually reads: negatives wrapped once, then clamped."""
    wrapped = bind("where", idx < 0, idx + n, idx)
    return bind("clip", wrapped, lo=0, hi=max(n - 1, 0))


def _take_vjp(ct, x, idx, *, out, axis):
    a = normalize_axis(axis, len(x.shape))
    zeros = bind("full", shape=x.shape, value=0, dtype=ct.dtype)
    return [bind("index_add", zeros, idx, ct, axis=a), None]


def _take_along_axis_vjp(ct, x, idx, *, out, axis):
    # One-hot contraction: dx[..., j, ...] = sum_k [idx[..., k, ...] == j] ct[..., k, ...]
    a = normalize_axis(axis, len(x.shape))
    n = x.shape[a]
    hot = bind("one_hot", _clamped_indices(idx, n), num_classes=n, dtype=ct.dtype)
    hot = bind("broadcast_to", hot, shape=tuple(ct.shape) + (n,))
    g = bind("sum", hot * bind("expand_dims", ct, axes=(len(ct.shape),)), axes=(a,), keepdims=False)
    perm = list(range(len(g.shape) - 1))
    perm.insert(a, len(g.shape) - 1)
    g = bind("transpose", g, perm=tuple(perm))
    return [unbroadcast(g, x.shape), None]


def _pad_vjp(ct, x, *, out, pads, value, mode):
    g = ct
    for a, ((lo, hi), d) in enumerate(zip(pads, x.shape)):
        mid = _slice_axis(g, a, lo, lo + d)
        if mode == "edge" and (lo or hi):
            left = bind("sum", _slice_axis(g, a, 0, lo), axes=(a,), keepdims=True)
            right = bind("sum", _slice_axis(g, a, lo + d, lo + d + hi), axes=(a,), keepdims=True)
            mid = mid + _pad_axis(left, a, 0, d - 1) + _pad_axis(right, a, d - 1, 0)
        elif mode == "reflect" and (lo or hi):
            if lo > d - 1 or hi > d - 1:
                raise Error(
                    f"the gradient of reflect padding wider than the axis ({lo}, {hi} for size "
                    f"{d}) is not supported"
                )
            if lo:
                left = bind("rev", _slice_axis(g, a, 0, lo), axes=(a,))
                mid = mid + _pad_axis(left, a, 1, d - 1 - lo)
            if hi:
                right = bind("rev", _slice_axis(g, a, lo + d, lo + d + hi), axes=(a,))
                mid = mid + _pad_axis(right, a, d - 1 - hi, 1)
        g = mid
    return [g]


# -- reshape --------------------------------------------------------------------------


def _reshape_shape(x: TensorType, *, shape):
    shape = check_shape(shape)
    if checked_num_elements(shape) != x.size:
        raise ShapeError(
            f"cannot reshape {list(x.shape)} ({x.size} elements) to {list(shape)} "
            f"({checked_num_elements(shape)} elements)"
        )
    return shape


reshape = defop(
    "reshape",
    keys=True,
    shape=_reshape_shape,
    impl=lambda x, *, shape: lax.reshape(x, shape),  # jnp.reshape passes numpy arrays through
    vjp=lambda ct, x, *, out, shape: [bind("reshape", ct, shape=x.shape)],
    attrs={"shape": Attr("ints")},
    samples=lambda: (
        [Sample((arr((2, 3, 4), dt),), {"shape": (6, 4)}, name=f"{dt}") for dt in _SOME]
        + [
            Sample((arr((), "f32"),), {"shape": (1, 1)}, name="scalar-up"),
            Sample((arr((1, 1)),), {"shape": ()}, name="to-scalar"),
            Sample((arr((0, 3)),), {"shape": (3, 0, 2)}, name="empty"),
            Sample((arr((2, 6)),), {"shape": (2, 3, 2)}, name="split-dim"),
        ]
    ),
    reference=lambda x, shape: np.reshape(np.asarray(x), shape),
    doc="Row-major reshape to ``shape`` (no -1 here: the front end resolves it).",
)


# -- transpose --------------------------------------------------------------------------


def _transpose_shape(x: TensorType, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"perm {tuple(perm)} is not a permutation of the {x.ndim} axes")
    return tuple(x.shape[p] for p in perm)


def _transpose_sharding(x: TensorType, *, perm):
    return None if x.sharding is None else tuple(x.sharding[p] for p in perm)


transpose = defop(
    "transpose",
    keys=True,
    shape=_transpose_shape,
    sharding=_transpose_sharding,
    impl=lambda x, *, perm: jnp.transpose(x, perm),
    vjp=lambda ct, x, *, out, perm: [bind("transpose", ct, perm=tuple(np.argsort(perm).tolist()))],
    attrs={"perm": Attr("ints")},
    samples=lambda: (
        [Sample((arr((2, 3, 4), dt),), {"perm": (2, 0, 1)}, name=f"{dt}") for dt in _SOME]
        + [
            Sample((arr((), "f32"),), {"perm": ()}, name="scalar"),
            Sample((arr((0, 3)),), {"perm": (1, 0)}, name="empty"),
            Sample((arr((2, 3)),), {"perm": (0, 1)}, name="identity"),
        ]
    ),
    reference=lambda x, perm: np.transpose(np.asarray(x), perm),
)


# -- broadcast_to --------------------------------------------------------------------------


def _broadcast_to_shape(x: TensorType, *, shape):
    shape = check_shape(shape)
    ok = x.ndim <= len(shape) and all(
        d in (1, s) for d, s in zip(reversed(x.shape), reversed(shape))
    )
    if not ok:
        raise ShapeError(f"cannot broadcast {list(x.shape)} to {list(shape)}")
    return shape


def _broadcast_to_sharding(x: TensorType, *, shape):
    # new leading dims and dims broadcast from 1 are not partitioned; the rest keep theirs
    if x.sharding is None:
        return None
    lead = len(shape) - x.ndim
    kept = (e if d == s else None for e, d, s in zip(x.sharding, x.shape, shape[lead:]))
    return (None,) * lead + tuple(kept)


broadcast_to = defop(
    "broadcast_to",
    keys=True,
    shape=_broadcast_to_shape,
    sharding=_broadcast_to_sharding,
    impl=lambda x, *, shape: jnp.broadcast_to(x, shape),
    vjp=lambda ct, x, *, out, shape: [unbroadcast(ct, x.shape)],
    attrs={"shape": Attr("ints")},
    samples=lambda: (
        [Sample((arr((3, 1), dt),), {"shape": (2, 3, 4)}, name=f"{dt}") for dt in _SOME]
        + [
            Sample((arr((), "f32"),), {"shape": (2, 2)}, name="scalar"),
            Sample((arr((), "f32"),), {"shape": ()}, name="scalar-to-scalar"),
            Sample((arr((1, 3)),), {"shape": (0, 3)}, name="to-empty"),
            Sample((arr((2, 3)),), {"shape": (2, 3)}, name="same"),
        ]
    ),
    reference=lambda x, shape: np.broadcast_to(np.asarray(x), shape),
)


# -- expand_dims / squeeze ------------------------------------------------------------------


def _expand_dims_shape(x: TensorType, *, axes):
    out_ndim = x.ndim + len(axes)
    ax = normalize_axes(axes, out_ndim)
    dims = iter(x.shape)
    return tuple(1 if i in ax else next(dims) for i in range(out_ndim))


def _expand_dims_sharding(x: TensorType, *, axes):
    if x.sharding is None:
        return None
    out_ndim = x.ndim + len(axes)
    ax = normalize_axes(axes, out_ndim)
    spec = iter(x.sharding)
    return tuple(None if i in ax else next(spec) for i in range(out_ndim))


def _expand_dims_reference(x, axes):
    shape = _expand_dims_shape(TensorType(x.shape, x.dtype), axes=axes)
    return np.reshape(np.asarray(x), shape)


expand_dims = defop(
    "expand_dims",
    keys=True,
    shape=_expand_dims_shape,
    sharding=_expand_dims_sharding,
    impl=lambda x, *, axes: jnp.expand_dims(x, tuple(axes)),
    vjp=lambda ct, x, *, out, axes: [bind("reshape", ct, shape=x.shape)],
    attrs={"axes": Attr("ints")},
    samples=lambda: (
        [
            Sample((arr((2, 3), dt),), {"axes": (0, -1)}, name=f"{dt}")
            for dt in ("f32", "bf16", "i32", "bool")
        ]
        + [
            Sample((arr((), "f32"),), {"axes": (0,)}, name="scalar"),
            Sample((arr((2, 3)),), {"axes": (1, 3)}, name="inner"),
            Sample((arr((0,)),), {"axes": (1,)}, name="empty"),
            Sample((arr((2,)),), {"axes": ()}, name="none"),
        ]
    ),
    reference=_expand_dims_reference,
)


def _squeeze_axes(x: TensorType, axes):
    if axes is None:
        return tuple(i for i, d in enumerate(x.shape) if d == 1)
    ax = normalize_axes(axes, x.ndim)
    for a in ax:
        if x.shape[a] != 1:
            raise ShapeError(
                f"cannot squeeze axis {a} of size {x.shape[a]} (shape {list(x.shape)})"
            )
    return ax


def _squeeze_shape(x: TensorType, *, axes):
    ax = _squeeze_axes(x, axes)
    return tuple(d for i, d in enumerate(x.shape) if i not in ax)


def _squeeze_sharding(x: TensorType, *, axes):
    if x.sharding is None:
        return None
    ax = _squeeze_axes(x, axes)
    return tuple(e for i, e in enumerate(x.sharding) if i not in ax)


squeeze = defop(
    "squeeze",
    keys=True,
    shape=_squeeze_shape,
    sharding=_squeeze_sharding,
    impl=lambda x, *, axes: jnp.squeeze(x, None if axes is None else tuple(axes)),
    vjp=lambda ct, x, *, out, axes: [bind("reshape", ct, shape=x.shape)],
    attrs={"axes": Attr("opt_ints", None)},
    samples=lambda: (
        [
            Sample((arr((1, 3, 1), dt),), {"axes": (0, -1)}, name=f"{dt}")
            for dt in ("f32", "f16", "i32", "bool")
        ]
        + [
            Sample((arr((1, 3, 1)),), {"axes": None}, name="all-unit"),
            Sample((arr((1, 1)),), {"axes": (0, 1)}, name="to-scalar"),
            Sample((arr(()),), {"axes": ()}, name="scalar"),
            Sample((arr((0, 1)),), {"axes": (1,)}, name="empty"),
        ]
    ),
    reference=lambda x, axes=None: np.squeeze(np.asarray(x), None if axes is None else tuple(axes)),
    doc="Drop unit axes (``axes=None``: every axis of size 1).",
)


# -- concatenate / stack --------------------------------------------------------------------


def _concatenate_shape(*xs: TensorType, axis):
    first = xs[0]
    if first.ndim == 0:
        raise ShapeError("zero-dimensional arrays cannot be concatenated")
    a = normalize_axis(axis, first.ndim)
    for t in xs[1:]:
        if t.ndim != first.ndim or any(
            d != e for i, (d, e) in enumerate(zip(t.shape, first.shape)) if i != a
        ):
            raise ShapeError(
                f"cannot concatenate along axis {axis}: shapes "
                + ", ".join(str(list(u.shape)) for u in xs)
                + " differ off that axis"
            )
    shape = list(first.shape)
    shape[a] = sum(t.shape[a] for t in xs)
    return tuple(shape)


concatenate = defop(
    "concatenate",
    keys=True,
    shape=_concatenate_shape,
    # dtype and weak: the standard rules, jnp.concatenate's promotion (one operand as it is)
    impl=lambda *xs, axis: jnp.concatenate(xs, axis=axis),
    vjp=_concatenate_vjp,
    attrs={"axis": Attr("int", 0)},
    arity=None,
    min_arity=1,
    samples=lambda: (
        [
            Sample((arr((2, 3), dt), arr((1, 3), dt, tag="b")), {"axis": 0}, name=f"{dt}")
            for dt in _SOME
        ]
        + [
            Sample(
                (arr((2, 3)), arr((2, 1), tag="b"), arr((2, 0), tag="c")),
                {"axis": -1},
                name="three-neg",
            ),
            Sample((arr((2, 3)),), {"axis": 1}, name="one"),
            Sample((arr((2, 3)), arr((2, 2), "bf16")), {"axis": 1}, name="promote"),
            Sample((arr((0, 3)), arr((0, 3), tag="b")), {"axis": 0}, name="empty"),
        ]
    ),
    reference=lambda *xs, axis=0: jnp.asarray(
        np.concatenate([np.asarray(x) for x in xs], axis=axis), dtype=jnp.result_type(*xs)
    ),
)


def _stack_shape(*xs: TensorType, axis):
    first = xs[0]
    for t in xs[1:]:
        if t.shape != first.shape:
            raise ShapeError(
                "stack needs operands of one shape, got "
                + ", ".join(str(list(u.shape)) for u in xs)
            )
    a = normalize_axis(axis, first.ndim + 1)
    shape = list(first.shape)
    shape.insert(a, len(xs))
    return tuple(shape)


stack = defop(
    "stack",
    keys=True,
    shape=_stack_shape,
    # dtype and weak: the standard rules, jnp.stack's promotion (one operand as it is)
    impl=lambda *xs, axis: jnp.stack(xs, axis=axis),
    vjp=_stack_vjp,
    attrs={"axis": Attr("int", 0)},
    arity=None,
    min_arity=1,
    samples=lambda: (
        [
            Sample((arr((2, 3), dt), arr((2, 3), dt, tag="b")), {"axis": 0}, name=f"{dt}")
            for dt in ("f32", "f64", "bf16", "i32", "bool")
        ]
        + [
            Sample(
                (arr((2, 3)), arr((2, 3), tag="b"), arr((2, 3), tag="c")), {"axis": -1}, name="last"
            ),
            Sample((arr((2, 3)), arr((2, 3), tag="b")), {"axis": 1}, name="middle"),
            Sample((arr(()), arr((), tag="b")), {"axis": 0}, name="scalars"),
            Sample((arr((0, 2)),), {"axis": 1}, name="empty"),
            Sample((arr((3,), "i32"), arr((3,), "f16")), {"axis": 0}, name="promote"),
        ]
    ),
    reference=lambda *xs, axis=0: jnp.asarray(
        np.stack([np.asarray(x) for x in xs], axis=axis), dtype=jnp.result_type(*xs)
    ),
)


# -- slice / rev ------------------------------------------------------------------------------


def _slice_shape(x: TensorType, *, start, limit, strides):
    n = x.ndim
    strides = (1,) * n if strides is None else strides
    if not (len(start) == len(limit) == len(strides) == n):
        raise ShapeError(
            f"slice of a rank-{n} array needs {n} start, limit and stride values, got "
            f"{tuple(start)}, {tuple(limit)}, {tuple(strides)}"
        )
    shape = []
    for d, s, e, st in zip(x.shape, start, limit, strides):
        if not 0 <= s <= e <= d or st < 1:
            raise ShapeError(
                f"slice start={tuple(start)}, limit={tuple(limit)}, strides={tuple(strides)} "
                f"does not fit shape {list(x.shape)} (need 0 <= start <= limit <= dim, stride >= 1)"
            )
        shape.append(-(-(e - s) // st))
    return tuple(shape)


def _slice_reference(x, start, limit, strides=None):
    strides = (1,) * len(start) if strides is None else strides
    return np.asarray(x)[tuple(slice(s, e, st) for s, e, st in zip(start, limit, strides))]


slice_ = defop(
    "slice",
    keys=True,
    shape=_slice_shape,
    impl=lambda x, *, start, limit, strides: lax.slice(x, start, limit, strides),
    vjp=_slice_vjp,
    attrs={"start": Attr("ints"), "limit": Attr("ints"), "strides": Attr("opt_ints", None)},
    samples=lambda: (
        [
            Sample(
                (arr((4, 6), dt),), {"start": (1, 0), "limit": (3, 6), "strides": (1, 2)}, name=dt
            )
            for dt in _SOME
        ]
        + [
            Sample(
                (arr((5, 7)),),
                {"start": (0, 1), "limit": (5, 7), "strides": (3, 4)},
                name="strided",
            ),
            Sample(
                (arr((5,)),), {"start": (2,), "limit": (2,), "strides": (1,)}, name="empty-result"
            ),
            Sample(
                (arr((0, 3)),),
                {"start": (0, 1), "limit": (0, 3), "strides": None},
                name="empty-input",
            ),
            Sample((arr(()),), {"start": (), "limit": (), "strides": ()}, name="scalar"),
        ]
    ),
    reference=_slice_reference,
    doc="lax.slice: ``start <= limit <= dim`` per axis, positive ``strides`` (None: 1s).",
)


def _rev_shape(x: TensorType, *, axes):
    normalize_axes(axes, x.ndim)
    return x.shape


rev = defop(
    "rev",
    keys=True,
    shape=_rev_shape,
    impl=lambda x, *, axes: lax.rev(x, normalize_axes(axes, np.ndim(x))),
    vjp=lambda ct, x, *, out, axes: [bind("rev", ct, axes=axes)],
    attrs={"axes": Attr("ints")},
    samples=lambda: (
        [Sample((arr((3, 4), dt),), {"axes": (1,)}, name=dt) for dt in _SOME]
        + [
            Sample((arr((2, 3, 4)),), {"axes": (0, -1)}, name="two"),
            Sample((arr(()),), {"axes": ()}, name="scalar"),
            Sample((arr((0, 3)),), {"axes": (0,)}, name="empty"),
        ]
    ),
    reference=lambda x, axes: np.flip(np.asarray(x), tuple(axes)),
    doc="Reverse the order of elements along ``axes`` (negative-step slices).",
)


# -- gathers ----------------------------------------------------------------------------------


def _require_int_indices(op, indices: TensorType):
    if indices.dtype.kind not in "iu":
        raise ShapeError(f"{op} indices must be integers, got {indices}")


def _take_shape(x: TensorType, indices: TensorType, *, axis):
    _require_int_indices("take", indices)
    if x.ndim == 0:
        raise ShapeError("take needs an array of rank >= 1, got a scalar")
    a = normalize_axis(axis, x.ndim)
    if x.shape[a] == 0 and indices.size > 0:
        raise ShapeError(f"index is out of bounds for axis {a} with size 0")
    return x.shape[:a] + indices.shape + x.shape[a + 1 :]


def _take_impl(x, indices, *, axis):
    # jnp indexing, not jnp.take: its mode="clip" does not wrap negative indices first.
    a = axis % np.ndim(x)
    return jnp.asarray(x)[(slice(None),) * a + (indices,)]


def _take_reference(x, indices, axis):
    a = normalize_axis(axis, x.ndim)
    n = x.shape[a]
    idx = np.asarray(indices).astype(np.int64)
    idx = np.clip(np.where(idx < 0, idx + n, idx), 0, max(n - 1, 0))
    return jnp.asarray(np.take(np.asarray(x), idx, axis=a), dtype=x.dtype)


def _index_array(shape, n, tag=""):
    return arr(shape, "i32", -n, n - 1, tag)


take = defop(
    "take",
    keys=True,
    shape=_take_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=_take_impl,
    vjp=_take_vjp,
    attrs={"axis": Attr("int", 0)},
    arity=2,
    samples=lambda: (
        [Sample((arr((4, 3), dt), _index_array((5,), 4)), {"axis": 0}, name=dt) for dt in _SOME]
        + [
            Sample((arr((2, 5, 3)), _index_array((2, 2), 5)), {"axis": 1}, name="2d-indices"),
            Sample(
                (arr((2, 5)), np.array([7, -1, -6, 0], np.int32)),
                {"axis": -1},
                name="clamp-wrap",
                jax_vjp=False,  # JAX drops out-of-bounds gradients its forward clamps
            ),
            Sample((arr((4,)), np.array(2, np.int32)), {"axis": 0}, name="scalar-index"),
            Sample((arr((4, 3)), np.array([1, 3], np.uint8)), {"axis": 0}, name="u8-index"),
            Sample((arr((4, 3)), np.array([1, -2], np.int64)), {"axis": 0}, name="i64-index"),
            Sample((arr((4, 3)), np.zeros((0,), np.int32)), {"axis": 1}, name="no-indices"),
            Sample((arr((0, 3)), np.zeros((0,), np.int32)), {"axis": 0}, name="empty-axis"),
        ]
    ),
    reference=_take_reference,
    doc="Gather along ``axis`` by integer ``indices`` (shape: x's with that axis replaced "
    "by the indices' shape). Negative indices wrap, out-of-bounds ones clamp.",
)


def _take_along_axis_shape(x: TensorType, indices: TensorType, *, axis):
    _require_int_indices("take_along_axis", indices)
    if x.ndim == 0 or indices.ndim != x.ndim:
        raise ShapeError(
            f"take_along_axis needs indices of the array's rank {x.ndim} (>= 1), got {indices}"
        )
    a = normalize_axis(axis, x.ndim)
    if x.shape[a] == 0 and indices.shape[a] > 0:
        raise ShapeError(f"index is out of bounds for axis {a} with size 0")
    others = broadcast_shapes(
        x.shape[:a] + x.shape[a + 1 :], indices.shape[:a] + indices.shape[a + 1 :]
    )
    return others[:a] + (indices.shape[a],) + others[a:]


def _take_along_axis_reference(x, indices, axis):
    a = normalize_axis(axis, x.ndim)
    n = x.shape[a]
    idx = np.asarray(indices).astype(np.int64)
    idx = np.clip(np.where(idx < 0, idx + n, idx), 0, max(n - 1, 0))
    out = np.take_along_axis(np.asarray(x), idx, axis=a)  # numpy broadcasts the other axes
    return jnp.asarray(out, dtype=x.dtype)


take_along_axis = defop(
    "take_along_axis",
    shape=_take_along_axis_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=no_sharding,
    impl=lambda x, indices, *, axis: jnp.take_along_axis(x, indices, axis=axis, mode="clip"),
    vjp=_take_along_axis_vjp,
    attrs={"axis": Attr("int")},
    arity=2,
    samples=lambda: (
        [Sample((arr((3, 4), dt), _index_array((3, 2), 4)), {"axis": 1}, name=dt) for dt in _SOME]
        + [
            Sample((arr((3, 4)), _index_array((5, 4), 3)), {"axis": 0}, name="axis0"),
            Sample((arr((3, 1)), _index_array((3, 5), 3)), {"axis": 0}, name="broadcast"),
            Sample(
                (arr((3, 4)), np.array([[9], [-1], [-9]], np.int32)),
                {"axis": -1},
                name="clamp-wrap",
            ),
            Sample((arr((5,)), np.array([4, 0, 2], np.uint8)), {"axis": 0}, name="1d-u8"),
            Sample((arr((0, 4)), np.zeros((0, 2), np.int32)), {"axis": 1}, name="empty"),
        ]
    ),
    reference=_take_along_axis_reference,
    doc="numpy take_along_axis: pick along ``axis`` by indices of the same rank (other "
    "axes broadcast). Negative indices wrap, out-of-bounds ones clamp.",
)


# -- pad ------------------------------------------------------------------------------------------

PAD_MODES = ("constant", "edge", "reflect")


def _pad_shape(x: TensorType, *, pads, value, mode):
    if mode not in PAD_MODES:
        raise ShapeError(f"pad mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    if len(pads) != x.ndim or any(len(p) != 2 for p in pads):
        raise ShapeError(f"pad of a rank-{x.ndim} array needs {x.ndim} (lo, hi) pairs, got {pads}")
    shape = []
    for d, (lo, hi) in zip(x.shape, pads):
        if lo < 0 or hi < 0:
            raise ShapeError(f"pad widths must be >= 0, got {pads}")
        if mode != "constant" and d == 0 and lo + hi > 0:
            raise ShapeError(
                f"cannot apply {mode!r} padding to an empty axis (shape {list(x.shape)})"
            )
        shape.append(d + lo + hi)
    return check_shape(shape)


def _pad_impl(x, *, pads, value, mode):
    pads = np.asarray(pads, dtype=np.int64).reshape(np.ndim(x), 2)  # (0, 2) for a scalar
    if mode == "constant":
        return jnp.pad(x, pads, mode="constant", constant_values=value)
    return jnp.pad(x, pads, mode=mode)


def _pad_reference(x, pads, value=0, mode="constant"):
    a = np.asarray(x)
    if a.ndim == 0:
        return x  # np.pad refuses 0-d arrays; padding nothing is the identity
    pads = np.asarray(pads, dtype=np.int64).reshape(-1, 2)
    if mode == "constant":
        out = np.pad(a, pads, mode="constant", constant_values=np.asarray(value).astype(a.dtype))
    else:
        out = np.pad(a, pads, mode=mode)
    return jnp.asarray(out, dtype=x.dtype)


pad = defop(
    "pad",
    shape=_pad_shape,
    impl=_pad_impl,
    vjp=_pad_vjp,
    attrs={"pads": Attr("int_pairs"), "value": Attr("scalar", 0), "mode": Attr("str", "constant")},
    samples=lambda: (
        [
            Sample((arr((2, 3), dt),), {"pads": ((1, 0), (2, 1)), "value": 1}, name=dt)
            for dt in _SOME
        ]
        + [
            Sample((arr((2, 3)),), {"pads": ((0, 0), (1, 1)), "value": -0.5}, name="float-value"),
            Sample((arr((3,), "i32"),), {"pads": ((2, 2),), "value": 2.7}, name="int-truncates"),
            Sample((arr((2, 3)),), {"pads": ((1, 2), (0, 3)), "mode": "edge"}, name="edge"),
            Sample((arr((2, 3)),), {"pads": ((1, 1), (2, 2)), "mode": "reflect"}, name="reflect"),
            Sample((arr((3,)),), {"pads": ((5, 4),), "mode": "reflect"}, name="reflect-wide", grad=False),
            Sample(
                (arr((1, 3), "i32"),),
                {"pads": ((2, 1), (0, 0)), "mode": "reflect"},
                name="reflect-unit",
            ),
            Sample((arr((3,), "bf16"),), {"pads": ((1, 1),), "mode": "edge"}, name="edge-bf16"),
            Sample((arr((0, 2)),), {"pads": ((1, 1), (0, 1))}, name="empty-constant"),
            Sample((arr((0, 2)),), {"pads": ((0, 0), (1, 1)), "mode": "edge"}, name="empty-edge"),
            Sample((arr(()),), {"pads": ()}, name="scalar"),
        ]
    ),
    reference=_pad_reference,
    doc="numpy pad with static (lo, hi) widths per axis; modes constant (``value``, cast "
    "to x's dtype), edge and reflect.",
)
