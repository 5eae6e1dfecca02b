"""The tg.* shape functions (numpy names) and `Tensor` indexing (``x[...]``).

Shape functions resolve numpy conveniences (``-1`` in reshape, negative axes, ``axis=None``
meaning "flattened", pad widths in any numpy spelling) into the static attributes of the
shape ops, so the IR states exact shapes and axes.

Indexing follows numpy/jax.numpy: ints (negative ok), slices with any step, ``None``,
``...``, integer arrays or tensors on one or several axes (advanced indexing: broadcast
together; the result's indexed axes sit where the first advanced index was if the
advanced indices are adjacent, else at the front), and boolean masks when their values
are known. It is composed of a few ops: one ``slice``, one ``rev`` for negative steps,
one ``reshape`` for dropped (int) and new (None) axes, and for advanced indices a
``transpose`` + ``reshape`` merging the indexed axes into one and a single ``take``.

Example::

    x[0]                       # slice + reshape
    x[:, ::-1]                 # slice + rev
    x[tg.arange(n), labels]    # reshape (merge both axes) + take at arange(n) * c + labels
"""

from __future__ import annotations

import math
import operator

import jax
import numpy as np

from ..errors import ShapeError, TracingError, user_location_long
from . import fn_math
from ..core import bind
from ..core import Tensor

# -- helpers shared by the front-end modules ------------------------------------------------


def shape_of(x) -> tuple[int, ...]:
    """Static shape of a tg.* operand: Tensor, array, or Python scalar/sequence."""
    if isinstance(x, Tensor):
        return x.shape
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else np.shape(x)


def ndim_of(x) -> int:
    return len(shape_of(x))


def _where() -> str:
    return user_location_long(1)


def _shape_arg(shape) -> tuple[int, ...]:
    if isinstance(shape, (tuple, list)):
        return tuple(operator.index(d) for d in shape)
    return (operator.index(shape),)


def _norm_axis(axis, ndim):
    """A non-negative axis where valid; otherwise unchanged (the op's rule reports it)."""
    axis = operator.index(axis)
    return axis % ndim if ndim and -ndim <= axis < ndim else axis


def _norm_axes(axes, ndim, what="axis"):
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{what} {a} is out of range for rank {ndim} (at {_where()})")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated {what} in {tuple(axes)} (at {_where()})")
    return out


# -- reshaping --------------------------------------------------------------------------------


def reshape(x, shape):
    """Reshape to ``shape``; one entry may be -1 (inferred). ``tg.reshape(x, (2, -1))``."""
    shape = _shape_arg(shape)
    old = shape_of(x)
    if -1 in shape:
        unknown = [i for i, d in enumerate(shape) if d == -1]
        size = math.prod(old)
        known = math.prod(d for d in shape if d != -1)
        if len(unknown) > 1 or known <= 0 or size % known:
            raise ShapeError(
                f"reshape: cannot reshape {list(old)} to {list(shape)} (at {_where()}); "
                "at most one -1, and the other dims must divide the size"
            )
        shape = tuple(size // known if d == -1 else d for d in shape)
    return bind("reshape", x, shape=shape)


def flatten(x):
    """The elements in row-major order as a 1-d tensor. ``tg.flatten(x)``."""
    return bind("reshape", x, shape=(math.prod(shape_of(x)),))


ravel = flatten


def transpose(x, axes=None, perm=None):
    """Permute axes (default: reverse them). ``tg.transpose(x, (1, 0, 2))``; ``perm=``
    is TF's name for ``axes``."""
    if perm is not None:
        if axes is not None:
            raise ShapeError(f"transpose: give axes or perm, not both (at {_where()})")
        axes = perm
    n = ndim_of(x)
    perm = tuple(range(n))[::-1] if axes is None else tuple(_norm_axis(a, n) for a in axes)
    return bind("transpose", x, perm=perm)


def swapaxes(x, axis1, axis2):
    """Exchange two axes. ``tg.swapaxes(x, 0, -1)``."""
    n = ndim_of(x)
    (a,), (b,) = _norm_axes((axis1,), n), _norm_axes((axis2,), n)
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    return bind("transpose", x, perm=tuple(perm))


def moveaxis(x, source, destination):
    """Move axes to new positions, the others keep their order. ``tg.moveaxis(x, 0, -1)``."""
    n = ndim_of(x)
    src = _norm_axes(source if isinstance(source, (tuple, list)) else (source,), n, "source axis")
    dst = _norm_axes(
        destination if isinstance(destination, (tuple, list)) else (destination,),
        n,
        "destination axis",
    )
    if len(src) != len(dst):
        raise ShapeError(
            f"moveaxis: source {source} and destination {destination} differ in length "
            f"(at {_where()})"
        )
    order = [a for a in range(n) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return bind("transpose", x, perm=tuple(order))


def broadcast_to(x, shape):
    """Broadcast to ``shape`` by numpy rules. ``tg.broadcast_to(b, (4, 3))``."""
    return bind("broadcast_to", x, shape=_shape_arg(shape))


def expand_dims(x, axis):
    """Insert unit axes at ``axis`` (int or tuple) of the result. ``tg.expand_dims(x, 0)``."""
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    n = ndim_of(x) + len(axes)
    return bind("expand_dims", x, axes=tuple(sorted(_norm_axes(axes, n))))


def squeeze(x, axis=None):
    """Drop unit axes: ``axis`` (int or tuple), or all of them. ``tg.squeeze(x, -1)``."""
    shape = shape_of(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        axes = tuple(
            sorted(_norm_axes(axis if isinstance(axis, (tuple, list)) else (axis,), len(shape)))
        )
    return bind("squeeze", x, axes=axes)


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (``axis=None``: flattened first)."""
    arrays = list(arrays)
    if not arrays:
        raise ShapeError(f"concatenate needs at least one array (at {_where()})")
    if axis is None:
        arrays, axis = [flatten(a) for a in arrays], 0
    return bind("concatenate", *arrays, axis=_norm_axis(axis, ndim_of(arrays[0])))


def stack(arrays, axis=0):
    """Join same-shaped arrays along a new axis. ``tg.stack([x, y], axis=-1)``."""
    arrays = list(arrays)
    if not arrays:
        raise ShapeError(f"stack needs at least one array (at {_where()})")
    return bind("stack", *arrays, axis=_norm_axis(axis, ndim_of(arrays[0]) + 1))


def _slice_axis(x, axis, start, stop):
    shape = shape_of(x)
    starts = [0] * len(shape)
    limits = list(shape)
    starts[axis], limits[axis] = start, stop
    return bind("slice", x, start=tuple(starts), limit=tuple(limits), strides=None)


def split(x, indices_or_sections, axis=0):
    """numpy split: ``n`` equal parts, or cut before each index of a list.

    Example: ``a, b, c = tg.split(x, 3, axis=-1)``; ``tg.split(x, [2, 5])``.
    """
    shape = shape_of(x)
    (axis,) = _norm_axes((axis,), len(shape))
    n = shape[axis]
    if isinstance(indices_or_sections, (tuple, list, np.ndarray)):
        cuts = [operator.index(i) for i in indices_or_sections]
        bounds = [0] + cuts + [n]
        # numpy semantics: indices are Python-slice bounds (negative counts from the end,
        # large ones clamp), so a later cut before an earlier one gives an empty piece.
        pieces = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            lo, hi, _ = slice(lo, hi).indices(n)
            pieces.append(_slice_axis(x, axis, lo, max(lo, hi)))
        return pieces
    sections = operator.index(indices_or_sections)
    if sections <= 0 or n % sections:
        raise ShapeError(
            f"split: axis {axis} of size {n} does not split into {sections} equal parts "
            f"(at {_where()})"
        )
    step = n // sections
    return [_slice_axis(x, axis, i * step, (i + 1) * step) for i in range(sections)]


# -- gathers and padding ----------------------------------------------------------------------


def _index_operand(indices):
    if isinstance(indices, (list, tuple)):
        a = np.asarray(indices)
        return a.astype(np.int32) if a.size == 0 else a
    return indices


def take(x, indices, axis=None):
    """numpy take (``axis=None``: from the flattened array). Negative indices wrap and
    out-of-bounds ones clamp, as ``x[idx]`` does in jax.numpy. ``tg.take(emb, ids, 0)``."""
    if axis is None:
        x, axis = flatten(x), 0
    return bind("take", x, _index_operand(indices), axis=_norm_axis(axis, ndim_of(x)))


def take_along_axis(arr, indices, axis):
    """numpy take_along_axis: indices of the same rank as ``arr`` pick along ``axis``.

    Example: ``tg.take_along_axis(logp, labels[:, None], axis=1)``.
    """
    if axis is None:
        arr, axis = flatten(arr), 0
    return bind(
        "take_along_axis", arr, _index_operand(indices), axis=_norm_axis(axis, ndim_of(arr))
    )


def _pad_pairs(pad_width, ndim):
    # numpy's pad-width spellings: n, (n,), (lo, hi), ((lo, hi),), or one pair per axis.
    w = np.asarray(pad_width)
    if w.dtype.kind not in "iu" and w.size:
        raise ShapeError(f"pad: pad_width must be integers, got {pad_width!r} (at {_where()})")
    w = w.astype(np.int64)
    if w.size == 1:
        return ((int(w.ravel()[0]),) * 2,) * ndim
    if w.size == 2 and w.shape != (2, 1):
        lo, hi = (int(v) for v in w.ravel())
        return ((lo, hi),) * ndim
    try:
        w = np.broadcast_to(w, (ndim, 2))
    except ValueError:
        raise ShapeError(
            f"pad: pad_width {pad_width!r} does not fit a rank-{ndim} array (at {_where()})"
        ) from None
    return tuple((int(lo), int(hi)) for lo, hi in w)


def pad(x, pad_width, mode="constant", constant_values=0):
    """numpy pad with modes ``constant``, ``edge`` and ``reflect``.

    Example: ``tg.pad(img, ((0, 0), (1, 1), (1, 1)))``.
    """
    value = constant_values
    if isinstance(value, Tensor):
        value = value.item()  # a TracingError while tracing: the fill must be static
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__jax_array__"):
        if np.ndim(value) != 0:
            raise ShapeError(f"pad: constant_values must be a scalar (at {_where()})")
        value = np.asarray(value).item()
    mode = mode.lower() if isinstance(mode, str) else mode  # TF spells them "CONSTANT" ...
    return bind("pad", x, pads=_pad_pairs(pad_width, ndim_of(x)), value=value, mode=mode)


# -- indexing -----------------------------------------------------------------------------------

_NONE, _ELLIPSIS, _SLICE, _INT, _ARRAY, _SCALAR_BOOL = range(6)


def _classify(k):
    """One index entry as (kind, value). Boolean masks come back as ("mask", array)."""
    if k is None:
        return _NONE, None
    if k is Ellipsis:
        return _ELLIPSIS, None
    if isinstance(k, slice):
        return _SLICE, k
    if isinstance(k, (bool, np.bool_)):
        return _SCALAR_BOOL, bool(k)
    if isinstance(k, (int, np.integer)):
        return _INT, int(k)
    if isinstance(k, Tensor):
        kind = k.dtype.kind
        if kind == "b":
            mask = k._trace.known_value(k)
            if mask is None:
                raise TracingError(
                    f"boolean mask indexing x[mask] of a traced mask {k.type} at {_where()}: the "
                    "result's shape would depend on the mask's values, which are not known while "
                    "tracing. Use tg.where(mask, x, 0) to keep the shape (or a masked reduction), "
                    "or run define-by-run with tg.eager where masks are concrete."
                )
            return _mask(np.asarray(mask))
        if kind not in "iu":
            raise ShapeError(
                f"index tensors must be integers or booleans, got {k.type} (at {_where()})"
            )
        return _ARRAY, k
    if isinstance(k, jax.core.Tracer):
        raise TracingError(
            f"a JAX tracer used as an index at {_where()}; pass indices as tracegraph tensors"
        )
    if isinstance(k, (list, tuple)) or (hasattr(k, "shape") and hasattr(k, "dtype")):
        a = np.asarray(k)
        if a.size == 0 and a.dtype.kind == "f":
            a = a.astype(np.int32)  # [] is an empty integer index, as in numpy
        if a.dtype.kind == "b":
            return _mask(a)
        if a.dtype.kind not in "iu":
            raise ShapeError(
                f"index arrays must be integers or booleans, got {a.dtype} (at {_where()})"
            )
        if a.dtype.itemsize == 8:
            a = a.astype(np.dtype(jax.dtypes.canonicalize_dtype(a.dtype)))
        return _ARRAY, a
    raise ShapeError(
        f"only integers, slices (:), ellipsis (...), None and integer or boolean arrays are "
        f"valid indices, got {type(k).__name__} {k!r:.40} (at {_where()})"
    )


def _mask(a):
    if a.ndim == 0:
        return _SCALAR_BOOL, bool(a)
    return "mask", a


def _parse_key(shape, key):
    """The index as a list of (kind, value), one per axis of the tensor or new axis,
    with boolean masks expanded into integer arrays and the Ellipsis into full slices;
    plus whether the advanced (int/array) entries are adjacent -- jax.numpy's rule,
    judged before the Ellipsis is expanded, with None counting as a separator."""
    if not isinstance(key, tuple):
        key = (key,)
    raw = [_classify(k) for k in key]
    consumed = sum(v.ndim if kind == "mask" else kind in (_SLICE, _INT, _ARRAY) for kind, v in raw)
    n_ellipsis = sum(kind == _ELLIPSIS for kind, _ in raw)
    if n_ellipsis > 1:
        raise ShapeError(f"an index can only have a single ellipsis (...) (at {_where()})")
    if consumed > len(shape):
        raise ShapeError(
            f"too many indices: the tensor is {len(shape)}-dimensional but {consumed} were "
            f"indexed (at {_where()})"
        )
    # Expand boolean masks into one integer array per axis they cover.
    expanded = []
    dim = 0
    for kind, v in raw:
        if kind == "mask":
            want = shape[dim : dim + v.ndim]
            if v.shape != want:
                raise ShapeError(
                    f"boolean index of shape {list(v.shape)} does not match the indexed axes "
                    f"{list(want)} (at {_where()})"
                )
            expanded += [(_ARRAY, idx.astype(np.int32)) for idx in np.nonzero(v)]
            dim += v.ndim
        else:
            expanded.append((kind, v))
            dim += 1 if kind in (_SLICE, _INT, _ARRAY) else 0
            if kind == _ELLIPSIS:
                dim += len(shape) - consumed
    positions = [i for i, (kind, _) in enumerate(expanded) if kind in (_INT, _ARRAY)]
    adjacent = all(b - a == 1 for a, b in zip(positions, positions[1:]))
    entries = []
    for kind, v in expanded:
        if kind == _ELLIPSIS:
            entries += [(_SLICE, slice(None))] * (len(shape) - consumed)
        else:
            entries.append((kind, v))
    entries += [(_SLICE, slice(None))] * (len(shape) - consumed if not n_ellipsis else 0)
    return entries, adjacent


def getitem(x: Tensor, key):
    """``x[key]`` with numpy semantics (see the module docstring)."""
    shape = x.shape
    entries, adjacent = _parse_key(shape, key)
    # Any index array of rank >= 1 (or a scalar bool) makes this advanced indexing, in
    # which plain ints count as (0-d) index arrays too, as in numpy.
    advanced_mode = any(
        kind == _SCALAR_BOOL or (kind == _ARRAY and len(_index_shape(v)) > 0) for kind, v in entries
    )
    adjacent = adjacent or not advanced_mode  # lone 0-d index tensors gather in place

    starts, limits, strides, rev_axes = [], [], [], []
    y_shape = []  # shape after slicing, with int axes dropped and None axes added
    advanced = []  # (axis in y, index array or tensor, size of that axis)

    def keep(lo, hi, step=1):
        starts.append(lo)
        limits.append(hi)
        strides.append(step)

    dim = 0
    for kind, v in entries:
        if kind in (_NONE, _SCALAR_BOOL):
            if kind == _SCALAR_BOOL:  # numpy: a new unit axis gathered by [0] (True) or [] (False)
                advanced.append((len(y_shape), np.arange(int(v), dtype=np.int32), 1))
            y_shape.append(1)
            continue
        d = shape[dim]
        if kind == _SLICE:
            lo, hi, step = _slice_bounds(v, d)
            keep(lo, hi, abs(step))
            if step < 0 and hi - lo > 1:
                rev_axes.append(dim)
            y_shape.append(-(-(hi - lo) // abs(step)))
        elif kind == _INT:
            if not -d <= v < d:
                raise ShapeError(
                    f"index {v} is out of bounds for axis {dim} with size {d} (at {_where()})"
                )
            if advanced_mode:
                keep(0, d)
                advanced.append((len(y_shape), np.asarray(v % d, dtype=np.int32), d))
                y_shape.append(d)
            else:
                keep(v % d, v % d + 1)
        else:  # _ARRAY
            keep(0, d)
            advanced.append((len(y_shape), v, d))
            y_shape.append(d)
        dim += 1

    y = x
    if any(s != 0 or e != d or st != 1 for s, e, st, d in zip(starts, limits, strides, shape)):
        y = bind(
            "slice",
            y,
            start=tuple(starts),
            limit=tuple(limits),
            strides=None if all(st == 1 for st in strides) else tuple(strides),
        )
    if rev_axes:
        y = bind("rev", y, axes=tuple(rev_axes))
    if tuple(y_shape) != y.shape:
        y = bind("reshape", y, shape=tuple(y_shape))
    if not advanced:
        return y
    return _advanced(y, advanced, adjacent)


def _slice_bounds(s: slice, d: int):
    """(lo, hi, step) with ``lo <= hi``: elements lo, lo+|step|, ... < hi, reversed if step < 0."""
    start, stop, step = s.indices(d)  # Tensors in a slice: __index__ (TracingError if traced)
    n = len(range(start, stop, step))
    if n == 0:
        return 0, 0, step
    if step > 0:
        return start, start + (n - 1) * step + 1, step
    last = start + (n - 1) * step
    return last, start + 1, step


def _index_shape(v):
    return v.shape if isinstance(v, Tensor) else np.shape(v)


def _advanced(y, advanced, adjacent):
    """Gather with the advanced (integer array) indices on axes ``advanced`` of ``y``."""
    try:
        np.broadcast_shapes(*(_index_shape(v) for _, v, _ in advanced))
    except ValueError:
        raise ShapeError(
            "shape mismatch: indexing arrays could not be broadcast together with shapes "
            + " ".join(str(list(_index_shape(v))) for _, v, _ in advanced)
            + f" (at {_where()})"
        ) from None
    axes = [a for a, _, _ in advanced]
    others = [a for a in range(y.ndim) if a not in axes]
    # jax.numpy: adjacent advanced indices keep their place, separated ones go in front.
    p = axes[0] if adjacent else 0
    p = sum(1 for a in others if a < p)
    perm = others[:p] + axes + others[p:]
    if perm != list(range(y.ndim)):
        y = bind("transpose", y, perm=tuple(perm))
    if len(advanced) == 1:
        return bind("take", y, advanced[0][1], axis=p)
    # Several indexed axes: merge them into one and gather once with row-major flat indices.
    sizes = [d for _, _, d in advanced]
    merged = math.prod(sizes)
    y = bind("reshape", y, shape=y.shape[:p] + (merged,) + y.shape[p + len(advanced) :])
    flat = _flat_index([v for _, v, _ in advanced], sizes)
    return bind("take", y, flat, axis=p)


def _flat_index(indices, sizes):
    """sum_i wrap_and_clamp(index_i) * stride_i, in numpy where the indices are constants."""
    strides = [math.prod(sizes[i + 1 :]) for i in range(len(sizes))]
    wide = math.prod(sizes) > np.iinfo(np.int32).max
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.int64)) if wide else np.dtype(np.int32)
    const = np.zeros((), np.int64)
    traced = None
    for v, d, stride in zip(indices, sizes, strides):
        if isinstance(v, Tensor):
            t = fn_math.astype(v, dtype) if v.dtype != dtype else v
            if v.dtype.kind == "i":
                t = fn_math.where(fn_math.less(t, 0), fn_math.add(t, d), t)
            t = fn_math.clip(t, 0, max(d - 1, 0))
            if stride != 1:
                t = fn_math.multiply(t, stride)
            traced = t if traced is None else fn_math.add(traced, t)
        else:
            a = np.asarray(v).astype(np.int64)
            if np.asarray(v).dtype.kind == "i":
                a = np.where(a < 0, a + d, a)
            const = const + np.clip(a, 0, max(d - 1, 0)) * stride
    const = const.astype(dtype)
    if traced is None:
        return const
    if const.ndim == 0 and int(const) == 0:
        return traced
    return fn_math.add(traced, const)


def iterate(x: Tensor):
    """``iter(x)``: the sub-tensors along the leading axis, ``x[0], x[1], ...``."""
    if not x.shape:
        raise TypeError("iteration over a 0-d tensor")
    return (getitem(x, i) for i in range(x.shape[0]))


from ..errors import public_functions as _public_functions

_public_functions(globals(), exclude=("shape_of", "ndim_of", "iterate"), renames={"getitem": "index"})
