"""``x.at[idx]``: jax.numpy's functional indexed update, on tensors.

``x.at[idx].set(v)`` is ``x`` with ``x[idx] = v`` done to a copy; likewise ``add``,
``subtract``, ``multiply`` (``mul``), ``divide``, ``power``, ``min``, ``max``, and
``get()`` reads ``x[idx]``. Every numpy index form works (ints, slices, None, ``...``,
integer arrays or tensors broadcasting together, boolean masks whose values are known),
with jax.numpy's keywords: ``mode`` (``None``, ``"promise_in_bounds"``, ``"clip"``,
``"drop"``, ``"fill"``), ``wrap_negative_indices``, ``fill_value`` (get), and the
accepted and ignored hints ``indices_are_sorted`` / ``unique_indices``.

The results equal JAX's bit for bit, also out of bounds: an update at an index outside
the array (after a negative one wraps) is dropped by default, clamped with
``mode="clip"``; ``get()`` clamps by default and fills with ``mode="fill"``. As in JAX,
x and the values are first promoted to a common dtype (an int array updated with floats
is updated in floats, then converted back) and the values broadcast to the shape of
``x[idx]``. Of repeated indices, ``add``/``multiply``/``min``/``max`` combine all
updates and ``set`` keeps the last (JAX: unspecified; the same on CPU).

NOTE: one path for every index form. ``x[idx]`` applied to the row-major positions of
x (an ``arange`` shaped like x) gives, for each element the index selects, its position
in the flattened x; one scatter op (``index_set``, ``index_add``, ...) along the flat
axis then writes them, as ``tg.from_jax`` does for lax's scatters. Out-of-bounds
indices are normalized first: clamped (``clip``), or pointed at an extra slot past the
end of their axis that holds the position ``x.size``, which the scatter's ``"drop"``
mode drops. The positions cost one int32 per element of x (XLA fuses the iota).

Example::

    y = x.at[0].set(0.0)                        # x with row 0 zeroed
    counts = tg.zeros(10).at[labels].add(1.0)   # a histogram: repeats accumulate
    x.at[idx].get(mode="fill", fill_value=-1)
"""

from __future__ import annotations

import math

import jax
import numpy as np

from . import fn_math
from .fn_creation import _dtype_of, _weak_of, ones_like
from .fn_shape import (
    _ARRAY,
    _ELLIPSIS,
    _INT,
    _SLICE,
    _classify,
    _where,
    getitem,
    shape_of,
)
from ..core import Tensor, bind
from ..errors import Error, ShapeError
from ..ir.types import TensorType
from ..ops.defop import promote


class IndexUpdateHelper:
    """``x.at``: index it (``x.at[idx]``) to get an `IndexUpdateRef`."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor

    def __getitem__(self, index) -> "IndexUpdateRef":
        return IndexUpdateRef(self.tensor, index)

    def __repr__(self):
        return f"IndexUpdateHelper({self.tensor!r})"


class IndexUpdateRef:
    """``x.at[idx]``: its methods return an updated copy of x (see the module docstring).

    Example: ``x.at[:, 0].add(1.0)``; ``x.at[ids].max(v, mode="drop")``.
    """

    __slots__ = ("tensor", "index")

    def __init__(self, tensor, index):
        self.tensor = tensor
        self.index = index

    def __repr__(self):
        return f"IndexUpdateRef({self.tensor!r}, {self.index!r})"

    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None,
            fill_value=None, wrap_negative_indices=True):
        """``x[idx]``; ``mode="fill"`` gives ``fill_value`` (default NaN, the int
        minimum (maximum if unsigned), True) out of bounds, other modes clamp."""
        x = self.tensor
        fill = _mode(mode, "get") == "drop"
        pos, n = _positions(x, self.index, clip=not fill, wrap=wrap_negative_indices)
        value = _fill_value(x.dtype, fill_value) if fill else None
        if n == 0 or math.prod(pos.shape) == 0:
            return bind("full", shape=tuple(pos.shape), value=value or 0, dtype=x.dtype)
        got = bind("take", bind("reshape", x, shape=(n,)), pos, axis=0)
        if fill:
            got = bind("where", pos == n, bind("full", shape=(), value=value, dtype=x.dtype), got)
        return got

    def set(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        """``x[idx] = values`` (of repeated indices the last update wins)."""
        return _update(self, values, "index_set", "set", mode, wrap_negative_indices)

    def add(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        """``x[idx] += values`` (repeated indices accumulate)."""
        return _update(self, values, "index_add", "add", mode, wrap_negative_indices)

    def subtract(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
                 wrap_negative_indices=True):
        """``x[idx] -= values``."""
        return _update(self, values, "index_add", "subtract", mode, wrap_negative_indices)

    def multiply(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
                 wrap_negative_indices=True):
        """``x[idx] *= values``."""
        return _update(self, values, "index_mul", "multiply", mode, wrap_negative_indices)

    mul = multiply

    def divide(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
               wrap_negative_indices=True):
        """``x[idx] /= values``: as JAX, x divided by ``ones_like(x).at[idx].multiply(values)``
        (so an int x gives floats)."""
        ref = IndexUpdateRef(ones_like(self.tensor), self.index)
        den = _update(ref, values, "index_mul", "divide", mode, wrap_negative_indices)
        return fn_math.divide(self.tensor, den)

    def power(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
              wrap_negative_indices=True):
        """``x[idx] **= values``: as JAX, x to the power ``ones_like(x).at[idx].multiply(values)``."""
        ref = IndexUpdateRef(ones_like(self.tensor), self.index)
        exponent = _update(ref, values, "index_mul", "power", mode, wrap_negative_indices)
        return fn_math.power(self.tensor, exponent)

    def min(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        """``x[idx] = minimum(x[idx], values)``."""
        return _update(self, values, "index_min", "min", mode, wrap_negative_indices)

    def max(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        """``x[idx] = maximum(x[idx], values)``."""
        return _update(self, values, "index_max", "max", mode, wrap_negative_indices)

    def apply(self, func, **_):
        raise Error(
            f"x.at[...].apply(func) is not supported (at {_where()}): it applies a Python "
            "function once per occurrence of each index. Where the indices are unique, "
            "write x.at[idx].set(func(x[idx]))"
        )


# -- the one path -------------------------------------------------------------------------------


def _mode(mode, method):
    """"clip" or "drop" for an ``.at`` mode: None and "promise_in_bounds" clamp reads
    and drop writes, as XLA does for in-bounds promises."""
    try:
        m = jax.lax.GatherScatterMode.from_any(mode)
    except ValueError:
        raise ShapeError(f"at[...].{method}: unknown mode {mode!r} (at {_where()})") from None
    if m == jax.lax.GatherScatterMode.CLIP:
        return "clip"
    if mode is None or m == jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS:
        return "clip" if method == "get" else "drop"
    if m == jax.lax.GatherScatterMode.FILL_OR_DROP:
        return "drop"
    raise ShapeError(f"at[...].{method}: mode {mode!r} is not supported (at {_where()})")


def _fill_value(dtype, given):
    if given is not None:
        if isinstance(given, Tensor) or np.ndim(given) != 0:
            raise ShapeError(f"at[...].get: fill_value must be a static scalar (at {_where()})")
        return np.asarray(given).item()
    if dtype.kind == "b":
        return True
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return int(info.min if dtype.kind == "i" else info.max)
    return float("nan")


def _index_dtype(n):
    wide = n + 1 > np.iinfo(np.int32).max
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64)) if wide else np.dtype(np.int32)


def _bounded(v, d, clip, wrap, dtype):
    """An integer index into an axis of size ``d`` made non-negative: wrapped once (if
    ``wrap``), then clamped (``clip``) or, if out of bounds, ``d`` (an extra slot). Also
    whether the extra slot is needed."""
    if not isinstance(v, Tensor):  # ints and constant arrays: in numpy
        a = np.asarray(v)
        signed = a.dtype.kind == "i"
        a = a.astype(np.int64)
        if wrap and signed:
            a = np.where(a < 0, a + d, a)
        inside = (a >= 0) & (a < d)
        if clip and d > 0:
            return np.clip(a, 0, d - 1).astype(dtype), False
        return np.where(inside, a, d).astype(dtype), not bool(np.all(inside))
    t = v if v.dtype == dtype else fn_math.astype(v, dtype)
    if wrap and v.dtype.kind == "i":
        t = fn_math.where(t < 0, t + d, t)
    if clip and d > 0:
        return fn_math.clip(t, 0, d - 1), False
    return fn_math.where(fn_math.logical_and(t >= 0, t < d), t, d), True


def _positions(x, index, *, clip, wrap):
    """(positions, n): for each element ``x[index]`` selects, its position in x flattened
    (shape: that of ``x[index]``), an index out of bounds giving ``n = x.size`` unless
    ``clip``."""
    shape = tuple(x.shape)
    n = math.prod(shape)
    dtype = _index_dtype(n)
    key = index if isinstance(index, tuple) else (index,)
    raw = [_classify(k) for k in key]
    consumed = sum(v.ndim if kind == "mask" else kind in (_SLICE, _INT, _ARRAY) for kind, v in raw)
    if consumed > len(shape):
        raise ShapeError(
            f"too many indices: the tensor is {len(shape)}-dimensional but {consumed} were "
            f"indexed (at {_where()})"
        )
    new, extra, dim = [], [], 0
    for k, (kind, v) in zip(key, raw):
        if kind == "mask":  # its positions, one integer array per axis it covers
            if v.shape != shape[dim : dim + v.ndim]:
                raise ShapeError(
                    f"boolean index of shape {list(v.shape)} does not match the indexed axes "
                    f"{list(shape[dim : dim + v.ndim])} (at {_where()})"
                )
            new += [i.astype(np.int32) for i in np.nonzero(v)]
            dim += v.ndim
        elif kind in (_INT, _ARRAY):  # an int is a 0-d array here: out of bounds is legal
            t, past_end = _bounded(v, shape[dim], clip, wrap, dtype)
            if past_end:
                extra.append(dim)
            new.append(t)
            dim += 1
        elif kind == _ELLIPSIS:
            new.append(Ellipsis)
            dim += len(shape) - consumed
        else:
            new.append(k)
            dim += kind == _SLICE
    iota = bind("arange", start=0, stop=n, step=1, dtype=dtype)
    iota = bind("reshape", iota, shape=shape)
    if extra:
        pads = tuple((0, 1) if a in extra else (0, 0) for a in range(len(shape)))
        iota = bind("pad", iota, pads=pads, value=n, mode="constant")
    return getitem(iota, tuple(new)), n


def _value_type(v) -> TensorType:
    if isinstance(v, Tensor):
        return v.type
    return TensorType(tuple(shape_of(v)), _dtype_of(v), _weak_of(v))


def _update(ref, values, op, method, mode, wrap):
    x = ref.tensor
    clip = _mode(mode, method) == "clip"
    pos, n = _positions(x, ref.index, clip=clip, wrap=wrap)
    target = tuple(pos.shape)
    vshape = tuple(shape_of(values))
    if len(vshape) > len(target) or any(
        a != b and a != 1 for a, b in zip(vshape[::-1], target[::-1])
    ):
        raise ShapeError(
            f"at[...].{method}: values of shape {list(vshape)} do not broadcast to the "
            f"indexed shape {list(target)} (at {_where()})"
        )
    if math.prod(target) == 0:  # nothing selected: x as it is (not even promoted)
        return x
    if (
        isinstance(values, int)
        and x.dtype.kind in "iu"
        and np.iinfo(x.dtype).min <= values <= np.iinfo(x.dtype).max
    ):
        values = np.asarray(values, x.dtype)  # as jax: an int that fits keeps x's dtype
    dt = promote(x.type, _value_type(values))[0]
    v = values if isinstance(values, Tensor) and values.dtype == dt else fn_math.astype(values, dt)
    if tuple(v.shape) != target:
        v = bind("broadcast_to", v, shape=target)
    if method == "subtract":
        v = fn_math.negative(v)
    flat = bind("reshape", x, shape=(n,))
    if dt != x.dtype:
        flat = fn_math.astype(flat, dt)
    out = bind(op, flat, pos, v, axis=0, mode="clip" if clip else "drop")
    if dt != x.dtype:
        out = fn_math.astype(out, x.dtype)
    return bind("reshape", out, shape=tuple(x.shape))
