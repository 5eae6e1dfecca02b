"""The tg.* creation functions: zeros, ones, full, empty, arange, linspace, logspace, eye
and the ``*_like`` forms, with numpy's signatures and PyTorch's keywords: ``device=``
(`devices`: the array is made there) and ``requires_grad=`` (a PyTorch-style leaf
tensor), and PyTorch's spellings (``tg.zeros(2, 3)``, ``tg.linspace(a, b, steps=n)``).

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
from .devices import check_traced, place
from .tape import as_leaf


def _made(out, device, requires_grad, what: str):
    """A created array placed on ``device`` and made a leaf tensor when
    ``requires_grad`` is given (PyTorch's keywords of every creation function)."""
    if device is not None:
        if isinstance(out, Tensor):  # traced: the compiled program places it
            check_traced(device, what)
        else:
            out = place(out, device)
    return as_leaf(out, requires_grad)


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


def full(shape, fill_value, dtype=None, *, requires_grad=None, device=None):
    """An array of ``shape`` filled with ``fill_value`` (a number, or an array that
    broadcasts to ``shape``). ``tg.full((2, 2), 7, dtype="i32")``."""
    return _made(_full(shape, fill_value, dtype), device, requires_grad, "full")


def _full(shape, fill_value, dtype):
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


def zeros(shape, *more, dtype=None, requires_grad=None, device=None):
    """An array of zeros; default dtype float32 (float64 with x64). ``tg.zeros((3, 4))``,
    ``tg.zeros(3, 4)``; with ``requires_grad=`` a PyTorch-style leaf tensor."""
    shape, dtype = _torch_shape(shape, more, dtype)
    out = bind("full", shape=_shape_arg(shape), value=0, dtype=canonical_dtype(dtype))
    return _made(out, device, requires_grad, "zeros")


def empty(shape, *more, dtype=None, requires_grad=None, device=None):
    """PyTorch's ``torch.empty`` / numpy's ``empty``: an array of ``shape`` whose values
    the program sets before reading (zeros here: XLA has no uninitialized memory)."""
    return zeros(shape, *more, dtype=dtype, requires_grad=requires_grad, device=device)


def ones(shape, *more, dtype=None, requires_grad=None, device=None):
    """An array of ones; default dtype float32 (float64 with x64). ``tg.ones(5, "i32")``,
    ``tg.ones(2, 3)``; with ``requires_grad=`` a PyTorch-style leaf tensor."""
    shape, dtype = _torch_shape(shape, more, dtype)
    out = bind("full", shape=_shape_arg(shape), value=1, dtype=canonical_dtype(dtype))
    return _made(out, device, requires_grad, "ones")


def _torch_shape(shape, more, dtype):
    """numpy's ``zeros(shape, dtype)`` and PyTorch's ``zeros(*sizes)`` spellings."""
    if not more:
        return shape, dtype
    if len(more) == 1 and not isinstance(more[0], (int, np.integer)):
        if dtype is not None:
            raise TypeError("dtype given twice")
        return shape, more[0]
    return (shape, *more), dtype


def full_like(x, fill_value, dtype=None, shape=None, *, requires_grad=None, device=None):
    """``full`` with ``x``'s shape and dtype (weak if ``x`` is). ``tg.full_like(x, 0.5)``."""
    return _made(_full_like(x, fill_value, dtype, shape), device, requires_grad, "full_like")


def _full_like(x, fill_value, dtype, shape):
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


def zeros_like(x, dtype=None, shape=None, *, requires_grad=None, device=None):
    """Zeros with ``x``'s shape and dtype. ``tg.zeros_like(params)``."""
    return full_like(x, 0, dtype, shape, requires_grad=requires_grad, device=device)


def ones_like(x, dtype=None, shape=None, *, requires_grad=None, device=None):
    """Ones with ``x``'s shape and dtype. ``tg.ones_like(x)``."""
    return full_like(x, 1, dtype, shape, requires_grad=requires_grad, device=device)


def empty_like(x, dtype=None, shape=None, *, requires_grad=None, device=None):
    """``empty`` with ``x``'s shape and dtype (zeros)."""
    return full_like(x, 0, dtype, shape, requires_grad=requires_grad, device=device)


def arange(start, stop=None, step=None, dtype=None, *, end=None, requires_grad=None, device=None):
    """numpy arange: ``arange(stop)``, ``arange(start, stop)``, ``arange(start, stop, step)``.

    The default dtype is jnp's: the result type of the arguments (Python ints give the
    default int, any float the default float). ``tg.arange(0.0, 1.0, 0.25)`` -> f32[4].
    PyTorch's ``end=`` names ``stop``.
    """
    stop = _stop_of(stop, end, required=False)
    return _made(_arange(start, stop, step, dtype), device, requires_grad, "arange")


def _arange(start, stop, step, dtype):
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


def eye(N, M=None, k=0, dtype=None, *, requires_grad=None, device=None):  # noqa: N803 - numpy's names
    """A 2-d array with ones on diagonal ``k``. ``tg.eye(3)``, ``tg.eye(2, 4, k=1)``."""
    out = bind("eye", n=N, m=M, k=k, dtype=canonical_dtype(dtype))
    return _made(out, device, requires_grad, "eye")


def linspace(start, stop=None, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             end=None, steps=None, requires_grad=None, device=None):
    """``num`` evenly spaced values from ``start`` to ``stop``: numpy's / jax.numpy's
    ``linspace(start, stop, num, endpoint, retstep, dtype, axis)`` and PyTorch's
    ``linspace(start, end, steps)``, computed as ``jnp.linspace`` computes it (``start *
    (1 - t) + stop * t``, the end point exact). ``tg.linspace(-math.pi, math.pi, 2000)``."""
    stop, num = _stop_of(stop, end), _num_of(num, steps)
    out, delta = _linspace(start, stop, num, endpoint, dtype, axis)
    out = _made(out, device, requires_grad, "linspace")
    return (out, delta) if retstep else out


def logspace(start, stop=None, num=50, endpoint=True, base=10.0, dtype=None, axis=0, *,
             end=None, steps=None, requires_grad=None, device=None):
    """``base ** linspace(start, stop, num)``: numpy's ``logspace`` and PyTorch's
    ``logspace(start, end, steps, base)``."""
    stop, num = _stop_of(stop, end), _num_of(num, steps)
    exponents, _ = _linspace(start, stop, num, endpoint, None, axis)
    out = fn_math.power(base, exponents) if _is_python_scalar(base) else fn_math.power(
        fn_math.astype(base, _dtype_of(exponents)), exponents)
    if dtype is not None:
        dt = canonical_dtype(dtype)
        if np.issubdtype(dt, np.integer):
            out = fn_math.floor(out)
        out = fn_math.astype(out, dt)
    return _made(out, device, requires_grad, "logspace")


def _stop_of(stop, end, required: bool = True):
    """numpy's ``stop`` or PyTorch's ``end=``: the same argument, given once."""
    if end is not None:
        if stop is not None:
            raise TypeError("stop and end are the same argument; give one")
        return end
    if stop is None and required:
        raise TypeError("missing its stop (end) argument")
    return stop


def _num_of(num, steps) -> int:
    """numpy's ``num`` or PyTorch's ``steps=``: a non-negative int."""
    v = _static_scalar(num if steps is None else steps)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"the number of values must be an int, got {v!r}")
    if v < 0:
        raise ValueError(f"Number of samples, {v}, must be non-negative.")
    return int(v)


def _inexact(dt) -> np.dtype:
    """``dt`` if it is a float or complex type, else the default float (jnp's
    ``to_inexact_dtype``)."""
    return dt if np.issubdtype(dt, np.inexact) or dt == canonical_dtype("bf16") else default_float()


def _linspace(start, stop, num, endpoint, dtype, axis):
    from .fn_shape import concatenate, expand_dims, reshape

    if dtype is None:
        kinds = [v if _is_python_scalar(v) else _dtype_of(v) for v in (start, stop)]
        dt = _inexact(canonical_dtype(jax.dtypes.result_type(*kinds)))
    else:
        dt = canonical_dtype(dtype)
    comp = _inexact(dt)
    start, stop = fn_math.astype(start, comp), fn_math.astype(stop, comp)
    bounds = list(np.broadcast_shapes(shape_of(start), shape_of(stop)))
    start, stop = broadcast_to(start, tuple(bounds)), broadcast_to(stop, tuple(bounds))
    axis = len(bounds) + axis + 1 if axis < 0 else axis
    shape = bounds[:axis] + [1] + bounds[axis:]
    div = num - 1 if endpoint else num
    if num > 1:
        delta = fn_math.divide(fn_math.subtract(stop, start), full((), div, comp))
        real = np.dtype(jax.dtypes.finfo(comp).dtype)
        iota_shape = [1] * len(shape)
        iota_shape[axis] = div
        t = fn_math.divide(reshape(_arange(0, div, 1, real), tuple(iota_shape)), full((), div, real))
        t = fn_math.astype(t, comp)
        out = fn_math.add(fn_math.multiply(reshape(start, tuple(shape)), fn_math.subtract(full((), 1, comp), t)),
                          fn_math.multiply(reshape(stop, tuple(shape)), t))
        if endpoint:
            out = concatenate([out, expand_dims(stop, axis)], axis)
    elif num == 1:
        delta = full((), np.nan, comp) if endpoint else fn_math.subtract(stop, start)
        out = reshape(start, tuple(shape))
    else:  # no values
        delta = full((), np.nan, comp)
        out = zeros(tuple(bounds[:axis] + [0] + bounds[axis:]), dtype=comp)
    if np.issubdtype(dt, np.integer):
        out = fn_math.floor(out)
    return fn_math.astype(out, dt), delta


def identity(n, dtype=None):
    """The ``n x n`` identity matrix. ``tg.identity(4)``."""
    return eye(n, dtype=dtype)


from ..errors import public_functions as _public_functions

_public_functions(globals(), exclude=("canonical_dtype",))
