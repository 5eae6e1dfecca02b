"""The tg.* reductions: numpy names over the reduction ops.

``axis`` is None (all axes), an int or a tuple of ints, negative allowed; the IR records
the axes normalized (non-negative, sorted) when they are valid.

Example::

    tg.sum(x, axis=-1, keepdims=True)   # op sum {axes=(1,), keepdims=true}
"""

from __future__ import annotations

import builtins
import operator

import jax
import numpy as np

from ..core import bind
from .fn_shape import _slice_axis, concatenate, ndim_of, ravel, shape_of


def normalize_axis_arg(axis, ndim: int):
    """``axis`` as the ops take it: None, or a tuple of axes, non-negative and sorted
    where valid (an invalid axis is passed on unchanged, for the shape rule to report)."""
    if axis is None:
        return None
    axes = tuple(operator.index(a) for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if all(-ndim <= a < ndim for a in axes):
        normed = tuple(a % ndim for a in axes)
        if len(set(normed)) == len(normed):
            return tuple(sorted(normed))
    return axes


def _reduction(op, doc):
    def f(x, axis=None, keepdims=False):
        return bind(op, x, axes=normalize_axis_arg(axis, ndim_of(x)), keepdims=keepdims)

    f.__name__ = op
    f.__qualname__ = op
    f.__doc__ = doc
    return f


sum = _reduction(  # noqa: A001 - numpy's name
    "sum",
    """Sum over ``axis`` (None: all). Bool and small ints give the default int, as in
    jax.numpy. Example: ``tg.sum(x, axis=0)``.""",
)
mean = _reduction(
    "mean",
    """Mean over ``axis`` (None: all); ints and bools give floats. Example:
    ``tg.mean(x, axis=(0, 1), keepdims=True)``.""",
)
max = _reduction(  # noqa: A001 - numpy's name
    "max", """Maximum over ``axis`` (None: all). Example: ``tg.max(x, axis=-1)``."""
)
min = _reduction(  # noqa: A001 - numpy's name
    "min", """Minimum over ``axis`` (None: all). Example: ``tg.min(x)``."""
)
prod = _reduction("prod", """Product over ``axis`` (None: all). Example: ``tg.prod(x, 1)``.""")
logsumexp = _reduction(
    "logsumexp",
    """``log(sum(exp(x), axis))``, computed stably. Example: ``tg.logsumexp(logits, -1)``.""",
)
amax = max
amin = min


def _arg_reduction(op):
    def f(x, axis=None, keepdims=False):
        if axis is not None:
            axis = operator.index(axis)
            n = ndim_of(x)
            if -n <= axis < n:
                axis %= n
        return bind(op, x, axis=axis, keepdims=keepdims)

    f.__name__ = op
    f.__qualname__ = op
    f.__doc__ = (
        f"Index of the first {op[3:]}imum along ``axis`` (None: of the flattened array), "
        f"as the default int dtype. Example: ``tg.{op}(logits, axis=-1)``."
    )
    return f


argmax = _arg_reduction("argmax")
argmin = _arg_reduction("argmin")



def var(x, axis=None, ddof: int = 0, keepdims: bool = False):
    """Variance over ``axis`` (None: all): ``sum((x - mean(x)) ** 2) / (n - ddof)``,
    numpy's and jax.numpy's default ``ddof=0`` (the biased estimate; PyTorch's
    ``torch.var`` defaults to ``ddof=1``, which `Tensor.var` follows). Ints and bools
    give floats. A composition of ``mean``, ``sub``, ``mul`` and ``sum`` (two passes,
    as jnp.var), so it needs no gradient rule of its own.

    Example::

        tg.var(x, axis=0)                  # per column
        tg.var(x, axis=-1, ddof=1, keepdims=True)
    """
    axes = normalize_axis_arg(axis, ndim_of(x))
    centered = bind("sub", x, bind("mean", x, axes=axes, keepdims=True))
    squares = bind("mul", centered, centered)
    if not ddof:
        return bind("mean", squares, axes=axes, keepdims=keepdims)
    shape = shape_of(x)
    n = 1
    for a in range(len(shape)) if axes is None else axes:
        n *= shape[a]
    total = bind("sum", squares, axes=axes, keepdims=keepdims)
    return bind("div", total, float(builtins.max(n - operator.index(ddof), 0)))


def std(x, axis=None, ddof: int = 0, keepdims: bool = False):
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, ddof))`` (numpy's default
    ``ddof=0``; see `var`).

    Example::

        tg.std(x, axis=0, ddof=1)          # torch.std(x, dim=0)
    """
    return bind("sqrt", var(x, axis, ddof, keepdims))

def sort(x, axis=-1, *, descending=False):
    """jnp.sort along ``axis`` (None: of the flattened array); NaNs sort last."""
    if axis is None:
        x, axis = ravel(x), 0
    return bind("sort", x, axis=operator.index(axis), descending=bool(descending))


def argsort(x, axis=-1, *, stable=True, descending=False):
    """jnp.argsort: the indices that sort along ``axis`` (None: flattened). The sort is
    always stable (ties keep their order); ``stable=False`` allows no other order."""
    if axis is None:
        x, axis = ravel(x), 0
    return bind("argsort", x, axis=operator.index(axis), descending=bool(descending))


def top_k(x, k):
    """lax.top_k: ``(values, indices)`` of the ``k`` largest along the last axis (ties: the
    lower index first)."""
    return bind("top_k", x, k=operator.index(k))


# -- cumulative -------------------------------------------------------------------------


def _dtype_of(x) -> np.dtype:
    dt = getattr(x, "dtype", None)
    return np.dtype(dt) if dt is not None else np.dtype(jax.dtypes.canonicalize_dtype(np.result_type(x)))


def _cumulative_operand(x, axis, dtype, promote_integers):
    """jax.numpy's cumulative operand: flattened for ``axis=None``, converted to
    ``dtype``, else a bool made the default int (and with ``promote_integers`` integers
    narrower than the default int widened to it, as jnp.cumulative_sum does)."""
    if axis is None:
        x, axis = ravel(x), 0
    have = _dtype_of(x)
    if dtype is None and (have.kind == "b" or (promote_integers and have.kind in "iu")):
        default = np.dtype(jax.dtypes.canonicalize_dtype(np.int64))
        if have.kind == "b":
            dtype = default
        elif have.itemsize < default.itemsize:
            dtype = np.dtype(f"{have.kind}{default.itemsize}")
    if dtype is not None and np.dtype(jax.dtypes.canonicalize_dtype(dtype)) != have:
        x = bind("astype", x, dtype=dtype)
    return x, operator.index(axis)


def _cumulative(op, name):
    def f(x, axis=None, dtype=None):
        x, axis = _cumulative_operand(x, axis, dtype, False)
        return bind(op, x, axis=axis, reverse=False)

    f.__name__ = f.__qualname__ = name
    return f


cumsum = _cumulative("cumsum", "cumsum")
cumsum.__doc__ = """jnp.cumsum: running sum along ``axis`` (None: of the flattened array) in the
    operand's dtype (bools: the default int), as in jax.numpy (op ``cumsum``).
    Example: ``tg.cumsum(x, axis=1)``."""
cumprod = _cumulative("cumprod", "cumprod")
cumprod.__doc__ = """jnp.cumprod: running product along ``axis`` (None: flattened); the dtypes as
    `cumsum` (op ``cumprod``). Example: ``tg.cumprod(x, axis=0)``."""


def _with_initial(y, axis, value):
    """``y`` with one slice of ``value`` before the first along ``axis``."""
    first = _slice_axis(y, axis, 0, 1)
    return concatenate([bind("full", shape=shape_of(first), value=value, dtype=_dtype_of(y)), y], axis)


def _cumulative_api(op, name, initial, promote_integers):
    def f(x, /, *, axis=None, dtype=None, include_initial=False):
        if axis is None:
            if ndim_of(x) > 1:
                raise ValueError(f"{name}: an operand of rank > 1 needs an axis")
            axis = 0
        x, axis = _cumulative_operand(x, axis, dtype, promote_integers)
        axis %= builtins.max(ndim_of(x), 1)
        y = bind(op, x, axis=axis, reverse=False)
        return _with_initial(y, axis, initial) if include_initial else y

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"numpy 2's / jnp.{name}: as `{op}`, ``axis`` required for rank > 1; "
                 f"``include_initial`` starts with {initial}. Example: ``tg.{name}(x, axis=0)``.")
    return f


# jax.numpy widens narrow integers in cumulative_sum only
cumulative_sum = _cumulative_api("cumsum", "cumulative_sum", 0, True)
cumulative_prod = _cumulative_api("cumprod", "cumulative_prod", 1, False)


def cummax(x, axis=0, reverse=False):
    """lax.cummax: running maximum along ``axis`` (from the end with ``reverse``); the
    dtype kept (op ``cummax``). Example: ``tg.cummax(x, axis=1)``."""
    return bind("cummax", x, axis=operator.index(axis), reverse=bool(reverse))


def cummin(x, axis=0, reverse=False):
    """lax.cummin: running minimum along ``axis`` (op ``cummin``)."""
    return bind("cummin", x, axis=operator.index(axis), reverse=bool(reverse))


def cumlogsumexp(x, axis=0, reverse=False):
    """lax.cumlogsumexp: running ``log(sum(exp(x)))`` along ``axis`` without overflow
    (op ``cumlogsumexp``). Example: ``tg.cumlogsumexp(logits, axis=-1)``."""
    return bind("cumlogsumexp", x, axis=operator.index(axis), reverse=bool(reverse))


from ..errors import public_functions as _public_functions

_public_functions(globals(), exclude=("normalize_axis_arg",))
