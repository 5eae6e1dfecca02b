"""The tg.* functions as TensorFlow spells them: ``reduce_mean``, ``cast``, ``concat``,
``gather``, ``tile``, ``range``, ``fill``, ``one_hot``, ``clip_by_value`` ...

Each is a few tg.* ops with TF's argument names and semantics, so ``import tracegraph as
tf`` runs TF 2 code, and every one works wherever the tg.* functions do: under tg.jit,
tg.eager, on imperative tensors and on plain arrays. TF's ``name=`` argument is accepted
and ignored. Where TF and numpy give one name two meanings, the top-level name keeps
numpy's (``tg.argmax(x)`` flattens, ``tg.split`` cuts at indices); ``tg.math`` holds TF's
``argmax``/``argmin`` (``axis`` defaults to 0, ``output_type``).

Example::

    import tracegraph as tf
    loss = tf.reduce_mean(tf.square(y_pred - y))
    ids = tf.cast(tf.range(10) % 3, tf.int32)
    tf.one_hot(ids, depth=3, on_value=5.0, off_value=-1.0)
    tf.gather(table, ids, axis=0)
    tf.tile(x, [2, 1])
"""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ..core import Tensor, bind
from ..errors import ShapeError, user_location_long
from . import fn_math, fn_reduce
from .fn_creation import _dtype_of, arange, canonical_dtype, full
from .fn_shape import _slice_axis
from .fn_shape import (
    broadcast_to, concatenate, moveaxis, ndim_of, reshape, shape_of, take, transpose,
)

# -- reductions (TF: ``input_tensor, axis=None, keepdims=False``) ----------------------------


def _axis(axis):
    """TF's axis: None, an int, a list/tuple, or a 1-d array or tensor of ints."""
    if axis is None or isinstance(axis, (numbers.Integral, tuple, list)):
        return axis
    if isinstance(axis, Tensor):
        axis = axis.numpy()  # a TracingError while tracing: an axis must be static
    return np.asarray(axis).tolist()


def _reduced_axes(x, axis) -> tuple:
    n = ndim_of(x)
    axes = fn_reduce.normalize_axis_arg(axis, n)
    return tuple(builtins.range(n)) if axes is None else axes


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None):
    """Sum over ``axis`` (None: all axes). ``tf.reduce_sum(x, axis=1)``."""
    return fn_reduce.sum(input_tensor, _axis(axis), keepdims)


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    """Mean over ``axis`` (None: all axes). As in TF, an integer input gives an integer
    mean, truncated toward zero (``tf.reduce_mean([1, 0, 1, 0]) == 0``)."""
    axis = _axis(axis)
    dt = np.dtype(_dtype_of(input_tensor))
    if dt.kind not in "iu":
        return fn_reduce.mean(input_tensor, axis, keepdims)
    shape = shape_of(input_tensor)
    count = math.prod(shape[a] for a in _reduced_axes(input_tensor, axis))
    s = fn_math.astype(fn_reduce.sum(input_tensor, axis, keepdims), dt)
    if count == 0:
        return s
    if dt.kind == "u":
        return fn_math.floor_divide(s, np.asarray(count, dt))
    # C's integer division: the quotient of |s| and the sign of s
    q = fn_math.floor_divide(fn_math.abs(s), np.asarray(count, dt))
    return fn_math.multiply(fn_math.sign(s), q)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None):
    """Maximum over ``axis`` (None: all axes)."""
    return fn_reduce.max(input_tensor, _axis(axis), keepdims)


def reduce_min(input_tensor, axis=None, keepdims=False, name=None):
    """Minimum over ``axis`` (None: all axes)."""
    return fn_reduce.min(input_tensor, _axis(axis), keepdims)


def reduce_prod(input_tensor, axis=None, keepdims=False, name=None):
    """Product over ``axis`` (None: all axes)."""
    return fn_reduce.prod(input_tensor, _axis(axis), keepdims)


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None):
    """``log(sum(exp(x), axis))``, computed stably."""
    return fn_reduce.logsumexp(input_tensor, _axis(axis), keepdims)


def _logical_reduction(x, axis, keepdims, any_):
    x = fn_math.astype(x, np.bool_)
    axis = _axis(axis)
    shape = shape_of(x)
    if any(shape[a] == 0 for a in _reduced_axes(x, axis) if isinstance(a, int) and 0 <= a < len(shape)):
        # an empty axis: the reduction's identity (max/min have none); count the Trues
        count = fn_reduce.sum(fn_math.astype(x, np.int32), axis, keepdims)
        return (fn_math.not_equal if any_ else fn_math.equal)(count, 0)
    return (fn_reduce.max if any_ else fn_reduce.min)(x, axis, keepdims)


def reduce_any(input_tensor, axis=None, keepdims=False, name=None):
    """Logical or over ``axis`` (None: all axes); False over an empty axis."""
    return _logical_reduction(input_tensor, axis, keepdims, True)


def reduce_all(input_tensor, axis=None, keepdims=False, name=None):
    """Logical and over ``axis`` (None: all axes); True over an empty axis."""
    return _logical_reduction(input_tensor, axis, keepdims, False)


def argmax(input, axis=None, output_type=np.int64, name=None):  # noqa: A002 - TF's name
    """TF's ``tf.math.argmax``: ``axis`` None means axis 0 (not the flattened array, as
    `tg.argmax`); the result has ``output_type`` (int64: int32 unless x64 is on)."""
    return fn_math.astype(fn_reduce.argmax(input, 0 if axis is None else axis), canonical_dtype(output_type))


def argmin(input, axis=None, output_type=np.int64, name=None):  # noqa: A002 - TF's name
    """TF's ``tf.math.argmin``: ``axis`` None means axis 0."""
    return fn_math.astype(fn_reduce.argmin(input, 0 if axis is None else axis), canonical_dtype(output_type))


# -- elementwise --------------------------------------------------------------------------


def cast(x, dtype, name=None):
    """Convert to ``dtype`` (floats to ints truncate toward zero). ``tf.cast(x, tf.int32)``."""
    return fn_math.astype(x, canonical_dtype(dtype))


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """Clamp ``t`` to ``[clip_value_min, clip_value_max]`` (numbers, or arrays that
    broadcast to ``t``'s shape)."""
    static = all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.ndarray)) for v in (clip_value_min, clip_value_max)
    )
    if static:  # one clip op with static bounds
        lo, hi = (v.item() if isinstance(v, np.generic) else v for v in (clip_value_min, clip_value_max))
        return fn_math.clip(t, lo, hi)
    return fn_math.minimum(fn_math.maximum(t, clip_value_min), clip_value_max)


truediv = fn_math.divide
pow = fn_math.power  # noqa: A001 - TF's name
floordiv = fn_math.floor_divide
floormod = fn_math.remainder


# -- creation and shapes ----------------------------------------------------------------------


def _static_ints(v, what):
    """A shape-like argument (list, tuple, int, 1-d array or concrete tensor) as ints."""
    if isinstance(v, Tensor):
        v = v.numpy()
    if isinstance(v, numbers.Integral):
        return (int(v),)
    try:
        return tuple(int(d) for d in np.asarray(v).reshape(-1).tolist())
    except (TypeError, ValueError):
        raise ShapeError(f"{what} must be ints, got {v!r} (at {user_location_long(2)})") from None


def range(start, limit=None, delta=1, dtype=None, name=None):  # noqa: A001 - TF's name
    """``start, start + delta, ...`` up to ``limit`` (exclusive); ``range(n)`` counts
    from 0. The dtype is inferred from the arguments (ints: int32, floats: float32)
    unless given. ``tf.range(3, 18, 3)`` -> ``[3, 6, 9, 12, 15]``."""
    if limit is None:
        start, limit = 0, start
    return arange(start, limit, delta, dtype=dtype)


def fill(dims, value, name=None):
    """An array of shape ``dims`` filled with ``value``, of ``value``'s dtype (a Python
    float gives float32, an int int32). ``tf.fill([2, 3], 9)``."""
    return full(_static_ints(dims, "fill: dims"), value, dtype=_dtype_of(value))


def concat(values, axis, name=None):
    """Join tensors along an existing ``axis``. ``tf.concat([a, b], axis=0)``."""
    return concatenate(list(values), axis=int(axis))


def tile(input, multiples, name=None):  # noqa: A002 - TF's name
    """Repeat ``input`` ``multiples[i]`` times along axis ``i`` (one multiple per axis).
    ``tf.tile([[1, 2]], [2, 3])`` has shape ``[2, 6]``."""
    shape = shape_of(input)
    reps = _static_ints(multiples, "tile: multiples")
    if len(reps) != len(shape):
        raise ShapeError(
            f"tile: {len(reps)} multiples for a rank-{len(shape)} input {list(shape)} "
            f"(one per axis) (at {user_location_long(1)})"
        )
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile: multiples must be >= 0, got {list(reps)} (at {user_location_long(1)})")
    if all(r == 1 for r in reps):
        return reshape(input, shape)
    # (d0, d1) -> (1, d0, 1, d1) -> broadcast (m0, d0, m1, d1) -> (m0 d0, m1 d1)
    spread = tuple(v for d in shape for v in (1, d))
    wide = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    out = broadcast_to(reshape(input, spread), wide)
    return reshape(out, tuple(r * d for r, d in zip(reps, shape)))


def gather(params, indices, validate_indices=None, axis=None, batch_dims=0, name=None):
    """Slices of ``params`` along ``axis`` (default: ``batch_dims``) at ``indices``:
    the result's shape is ``params.shape[:axis] + indices.shape[batch_dims:] +
    params.shape[axis + 1:]``. Out-of-range indices clamp (TF raises on CPU and gives
    zeros on GPU). ``validate_indices`` is ignored, as in TF 2.

    Example::

        tf.gather(emb, ids)                               # rows
        tf.gather(x, [2, 0], axis=1)                      # columns
        tf.gather(x, idx, axis=1, batch_dims=1)           # per-example picks
    """
    p_shape = shape_of(params)
    if isinstance(indices, (list, tuple)):
        indices = np.asarray(indices, np.int32)
    i_shape = shape_of(indices)
    b = int(batch_dims) + (len(i_shape) if batch_dims < 0 else 0)
    axis = b if axis is None else int(axis) + (len(p_shape) if int(axis) < 0 else 0)
    where = user_location_long(1)
    if not 0 <= axis < len(p_shape):
        raise ShapeError(f"gather: axis {axis} is out of range for params {list(p_shape)} (at {where})")
    if b == 0:
        return take(params, indices, axis=axis)
    if not 0 < b <= min(axis, len(i_shape)) or tuple(p_shape[:b]) != tuple(i_shape[:b]):
        raise ShapeError(
            f"gather: batch_dims={batch_dims} needs batch_dims <= axis ({axis}) and params "
            f"{list(p_shape)} and indices {list(i_shape)} to agree on the first batch_dims "
            f"axes (at {where})"
        )
    # move the gathered axis next to the batch axes, merge both, and take at
    # batch * size + index: one take for all batches
    rest = [d for d in builtins.range(b, len(p_shape)) if d != axis]
    p = transpose(params, tuple(builtins.range(b)) + (axis,) + tuple(rest))
    nb, size = math.prod(p_shape[:b]), p_shape[axis]
    p = reshape(p, (nb * size,) + tuple(p_shape[d] for d in rest))
    idx = fn_math.clip(reshape(indices, (nb,) + tuple(i_shape[b:])), 0, builtins.max(size - 1, 0))
    offsets = reshape(fn_math.multiply(arange(nb, dtype=_dtype_of(idx)), size), (nb,) + (1,) * (len(i_shape) - b))
    out = take(p, fn_math.add(idx, offsets), axis=0)
    out = reshape(out, tuple(p_shape[:b]) + tuple(i_shape[b:]) + tuple(p_shape[d] for d in rest))
    # (batch, indices, params before axis, params after axis) -> TF's order
    ni, nbefore = len(i_shape) - b, axis - b
    order = (
        list(builtins.range(b))
        + [b + ni + k for k in builtins.range(nbefore)]
        + [b + k for k in builtins.range(ni)]
        + list(builtins.range(b + ni + nbefore, len(p_shape) - 1 + ni))
    )
    return transpose(out, tuple(order))


def one_hot(indices, depth=None, on_value=None, off_value=None, axis=None, dtype=None, name=None, *, num_classes=None):
    """One-hot vectors of length ``depth`` for integer ``indices`` on a new axis ``axis``
    (default: last): ``on_value`` (default 1) where the index matches, ``off_value``
    (default 0) elsewhere; indices outside ``[0, depth)`` give all ``off_value``. The
    dtype is ``dtype``, else that of ``on_value``/``off_value``, else float32.
    ``num_classes=`` is accepted for ``depth`` (jax.nn's name).

    Example: ``tf.one_hot([0, 2, -1], 3)`` -> ``[[1, 0, 0], [0, 0, 1], [0, 0, 0]]``.
    """
    if depth is None:
        depth = num_classes
    elif num_classes is not None:
        raise TypeError("one_hot: give depth or num_classes, not both")
    if depth is None:
        raise TypeError("one_hot: missing depth")
    depth = int(depth) if not isinstance(depth, Tensor) else int(depth.numpy())
    if dtype is not None:
        dt = canonical_dtype(dtype)
    elif on_value is not None or off_value is not None:
        dt = canonical_dtype(_dtype_of(on_value if on_value is not None else off_value))
    else:
        dt = canonical_dtype(np.float32)
    if on_value is None and off_value is None:
        out = bind("one_hot", indices, num_classes=depth, dtype=dt)
    else:
        mask = bind("one_hot", indices, num_classes=depth, dtype=np.bool_)
        on = 1 if on_value is None else on_value
        off = 0 if off_value is None else off_value
        out = fn_math.astype(fn_math.where(mask, on, off), dt)
    if axis is None or axis == -1:
        return out
    return moveaxis(out, -1, int(axis))


# -- cumulative (TF: ``x, axis=0, exclusive=False, reverse=False``) -----------------------------


def _tf_cumulative(op, identity, name):
    def f(x, axis=0, exclusive=False, reverse=False, name=None):
        nd = builtins.max(ndim_of(x), 1)
        axis = int(axis) % nd
        y = bind(op, x, axis=axis, reverse=bool(reverse))
        if not exclusive:
            return y
        # exclusive: each output leaves its own element out, i.e. the inclusive result
        # moved one step along the scan with the identity in front
        n = shape_of(y)[axis]
        kept = _slice_axis(y, axis, 1, n) if reverse else _slice_axis(y, axis, 0, builtins.max(n - 1, 0))
        first = _slice_axis(y, axis, 0, builtins.min(n, 1))
        pad = full(shape_of(first), identity, dtype=y.dtype)
        return concatenate([kept, pad] if reverse else [pad, kept], axis)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"tf.math.{name}: running ``{op}`` along ``axis`` (default 0); ``exclusive`` "
                 f"leaves each element out, ``reverse`` runs from the end. "
                 f"Example: ``tf.math.{name}(x, axis=1, exclusive=True)``.")
    return f


cumsum = _tf_cumulative("cumsum", 0, "cumsum")
cumprod = _tf_cumulative("cumprod", 1, "cumprod")
cumulative_logsumexp = _tf_cumulative("cumlogsumexp", -math.inf, "cumulative_logsumexp")


from ..errors import public_functions as _public_functions

_public_functions(globals())
