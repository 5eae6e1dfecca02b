"""The tg.* creation functions: zeros, ones, full, arange, eye and the ``*_like`` forms.

Dtypes default and canonicalize as in jax.numpy: floats default to float32 (float64
under ``jax_enable_x64``), ``dtype=np.float64`` becomes float32 without x64, and
``tg.full(shape, 1.0)`` of a Python scalar is weakly typed like ``jnp.full``.

Example::

    tg.zeros((2, 3))               # f32[2,3]
    tg.arange(1, 10, 2)            # i32[5]: 1, 3, 5, 7, 9
    tg.full_like(x, -1.0)          # x's shape and dtype
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from ..ir.types import DTYPE_NAMES
from ..ops.defop import default_float
from . import fn_math
from ..core import bind
from .fn_shape import _shape_arg, broadcast_to, shape_of
from ..core import Tensor
from .tape import as_leaf


def canonical_dtype(dtype, default=None) -> np.dtype:
    """A user dtype (numpy/jnp dtype, Python type, or a name like ``"bf16"``) as JAX
    canonicalizes it; ``None`` gives ``default`` (the default float if not given)."""
    if dtype is None:
        return default if default is not None else default_float()
    if isinstance(dtype, str) and dtype in DTYPE_NAMES:
        dtype = DTYPE_NAMES[dtype]
    return np.dtype(jax.dtypes.canonicalize_dtype(np.dtype(dtype)))


def _is_python_scalar(v) -> bool:
    return isinstance(v, (bool, int, float, complex)) and not isinstance(v, np.generic)


def _weak_of(x) -> bool:
    if isinstance(x, Tensor):
        return x.type.weak
    if _is_python_scalar(x):
        return not isinstance(x, bool)
    return bool(getattr(x, "weak_type", False))


def _dtype_of(x) -> np.dtype:
    if isinstance(x, Tensor):
        return x.dtype
    if _is_python_scalar(x):
        return np.dtype(jax.dtypes.canonicalize_dtype(np.asarray(x).dtype))
    return np.dtype(
        jax.dtypes.canonicalize_dtype(np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)
    )


def _static_scalar(v):
    """A fill value as a Python number (numpy scalars and 0-d arrays included)."""
    if isinstance(v, Tensor):
        return v.item()  # TracingError while tracing: use the array-fill path instead
    if isinstance(v, (np.generic, np.ndarray)) or hasattr(v, "__array__"):
        return np.asarray(v).item()
    return v


def full(shape, fill_value, dtype=None):
    """An array of ``shape`` filled with ``fill_value`` (a number, or an array that
    broadcasts to ``shape``). ``tg.full((2, 2), 7, dtype="i32")``."""
    shape = _shape_arg(shape)
    if isinstance(fill_value, Tensor) or (
        not _is_python_scalar(fill_value) and np.ndim(fill_value) > 0
    ):
        v = fill_value if dtype is None else fn_math.astype(fill_value, canonical_dtype(dtype))
        return broadcast_to(v, shape)
    if dtype is None:
        weak = _weak_of(fill_value)
        dt = _dtype_of(fill_value)
    else:
        weak, dt = False, canonical_dtype(dtype)
    return bind("full", shape=shape, value=_static_scalar(fill_value), dtype=dt, weak=weak)


def zeros(shape, *more, dtype=None, requires_grad=None):
    """An array of zeros; default dtype float32 (float64 with x64). ``tg.zeros((3, 4))``,
    ``tg.zeros(3, 4)``; with ``requires_grad=`` a PyTorch-style leaf tensor."""
    shape, dtype = _torch_shape(shape, more, dtype)
    out = bind("full", shape=_shape_arg(shape), value=0, dtype=canonical_dtype(dtype))
    return as_leaf(out, requires_grad)


def ones(shape, *more, dtype=None, requires_grad=None):
    """An array of ones; default dtype float32 (float64 with x64). ``tg.ones(5, "i32")``,
    ``tg.ones(2, 3)``; with ``requires_grad=`` a PyTorch-style leaf tensor."""
    shape, dtype = _torch_shape(shape, more, dtype)
    out = bind("full", shape=_shape_arg(shape), value=1, dtype=canonical_dtype(dtype))
    return as_leaf(out, requires_grad)


def _torch_shape(shape, more, dtype):
    """numpy's ``zeros(shape, dtype)`` and PyTorch's ``zeros(*sizes)`` spellings."""
    if not more:
        return shape, dtype
    if len(more) == 1 and not isinstance(more[0], (int, np.integer)):
        if dtype is not None:
            raise TypeError("dtype given twice")
        return shape, more[0]
    return (shape, *more), dtype


def full_like(x, fill_value, dtype=None, shape=None):
    """``full`` with ``x``'s shape and dtype (weak if ``x`` is). ``tg.full_like(x, 0.5)``."""
    shape = shape_of(x) if shape is None else _shape_arg(shape)
    if dtype is None:
        dt, weak = _dtype_of(x), _weak_of(x)
    else:
        dt, weak = canonical_dtype(dtype), False
    if isinstance(fill_value, Tensor) or (
        not _is_python_scalar(fill_value) and np.ndim(fill_value) > 0
    ):
        return broadcast_to(fn_math.astype(fill_value, dt), shape)
    return bind("full", shape=shape, value=_static_scalar(fill_value), dtype=dt, weak=weak)


def zeros_like(x, dtype=None, shape=None):
    """Zeros with ``x``'s shape and dtype. ``tg.zeros_like(params)``."""
    return full_like(x, 0, dtype, shape)


def ones_like(x, dtype=None, shape=None):
    """Ones with ``x``'s shape and dtype. ``tg.ones_like(x)``."""
    return full_like(x, 1, dtype, shape)


def arange(start, stop=None, step=None, dtype=None):
    """numpy arange: ``arange(stop)``, ``arange(start, stop)``, ``arange(start, stop, step)``.

    The default dtype is jnp's: the result type of the arguments (Python ints give the
    default int, any float the default float). ``tg.arange(0.0, 1.0, 0.25)`` -> f32[4].
    """
    given = [v for v in (start, stop, step) if v is not None]
    values = [_static_scalar(v) for v in given]
    for v in values:
        if not isinstance(v, numbers.Real):
            raise TypeError(f"arange needs real numbers, got {v!r}")
    if dtype is None:
        dt = canonical_dtype(
            jax.dtypes.result_type(
                *[v if _is_python_scalar(v) else np.asarray(v).dtype for v in given]
            )
        )
    else:
        dt = canonical_dtype(dtype)
    start, stop, step = (_static_scalar(v) if v is not None else None for v in (start, stop, step))
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    return bind("arange", start=start, stop=stop, step=step, dtype=dt)


def eye(N, M=None, k=0, dtype=None):  # noqa: N803 - numpy's names
    """A 2-d array with ones on diagonal ``k``. ``tg.eye(3)``, ``tg.eye(2, 4, k=1)``."""
    return bind("eye", n=N, m=M, k=k, dtype=canonical_dtype(dtype))


def identity(n, dtype=None):
    """The ``n x n`` identity matrix. ``tg.identity(4)``."""
    return eye(n, dtype=dtype)


from ..errors import public_functions as _public_functions

_public_functions(globals(), exclude=("canonical_dtype",))
