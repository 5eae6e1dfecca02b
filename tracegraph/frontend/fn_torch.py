"""PyTorch's names for what tracegraph has under numpy's, and the few PyTorch functions
its programs reach for first: ``tg.cat``, ``tg.clamp``, ``tg.tril``/``triu``,
``tg.randint``, ``tg.randperm``, ``tg.randn_like``, ``tg.from_numpy``, ``tg.is_tensor``,
``tg.inference_mode``. Each is built from the tg functions (so from IR ops), keeps
PyTorch's argument names (``dim``, ``diagonal``, ``size``) and takes the numpy ones too.

The random ones draw from the global key stream (`tg.manual_seed`) unless given
``key=``, as `tg.randn` does, and make concrete arrays (imperative tensors).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Tensor
from . import fn_math, fn_shape
from .fn_creation import arange, canonical_dtype, zeros_like
from .tape import TapeTensor, _GradMode, leaf, tensor


def cat(tensors, dim=0, *, axis=None, out=None):
    """Join tensors along an existing axis (``torch.cat``; numpy's ``concatenate``)."""
    _no_out(out, "cat")
    return fn_shape.concatenate(list(tensors), dim if axis is None else axis)


concat = cat


def clamp(x, min=None, max=None, *, out=None):  # noqa: A002 - PyTorch's names
    """Limit values to ``[min, max]`` (``torch.clamp``; numpy's ``clip``)."""
    _no_out(out, "clamp")
    return fn_math.clip(x, min, max)


def _no_out(out, what):
    if out is not None:
        raise TypeError(f"{what}: out= is not supported (arrays are immutable); assign the result")


def _band(x, diagonal, keep_lower: bool):
    n, m = fn_shape.shape_of(x)[-2:]
    rows = fn_shape.reshape(arange(n), (n, 1))
    cols = fn_shape.reshape(arange(m), (1, m))
    offset = fn_math.subtract(cols, rows)
    keep = fn_math.less_equal(offset, diagonal) if keep_lower else fn_math.greater_equal(offset, diagonal)
    return fn_math.where(keep, x, zeros_like(x))


def tril(x, diagonal=0, *, k=None):
    """The lower triangle of the last two axes, from ``diagonal`` (numpy's ``k``) down;
    zeros above."""
    return _band(x, operator.index(diagonal if k is None else k), True)


def triu(x, diagonal=0, *, k=None):
    """The upper triangle of the last two axes, from ``diagonal`` (numpy's ``k``) up."""
    return _band(x, operator.index(diagonal if k is None else k), False)


def _key(key):
    from .fn_random import next_key
    from .tape import _array_of

    return jnp.asarray(_array_of(next_key() if key is None else key))


def _made(arr, device, requires_grad):
    from .tape import _placed

    return leaf(_placed(arr, device), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False, key=None):
    """Integers uniform in ``[low, high)`` of shape ``size``: ``tg.randint(10, (3,))`` or
    ``tg.randint(0, 10, (3,))`` (PyTorch's two forms)."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() needs a size: tg.randint(low, high, size)")
    dt = canonical_dtype(dtype, default=canonical_dtype("i64"))
    arr = jax.random.randint(_key(key), tuple(int(d) for d in size), int(low), int(high), dt)
    return _made(arr, device, requires_grad)


def randperm(n, *, dtype=None, device=None, requires_grad=False, key=None):
    """A random permutation of ``0 .. n-1``."""
    dt = canonical_dtype(dtype, default=canonical_dtype("i64"))
    arr = jax.random.permutation(_key(key), int(n)).astype(dt)
    return _made(arr, device, requires_grad)


def _like_shape(x):
    return tuple(fn_shape.shape_of(x))


def randn_like(x, *, dtype=None, device=None, requires_grad=False, key=None):
    """Standard normal samples of ``x``'s shape (and dtype, unless ``dtype=``)."""
    dt = canonical_dtype(dtype if dtype is not None else np.dtype(x.dtype))
    return _made(jax.random.normal(_key(key), _like_shape(x), dt), device, requires_grad)


def rand_like(x, *, dtype=None, device=None, requires_grad=False, key=None):
    """Uniform [0, 1) samples of ``x``'s shape (and dtype, unless ``dtype=``)."""
    dt = canonical_dtype(dtype if dtype is not None else np.dtype(x.dtype))
    return _made(jax.random.uniform(_key(key), _like_shape(x), dt), device, requires_grad)


def from_numpy(array) -> TapeTensor:
    """An imperative tensor with a numpy array's values (a copy: JAX arrays do not share
    numpy's memory, so a later write to ``array`` does not show in the tensor)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return tensor(array)


def as_tensor(data, dtype=None, device=None) -> TapeTensor:
    """``data`` as a tensor: itself when it already is one of that dtype (and device)."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(canonical_dtype(dtype)) == data.dtype):
        return data if device is None else data.to(device)
    return tensor(data, dtype=dtype, device=device)


def is_tensor(x) -> bool:
    """Whether ``x`` is a tensor: a tg tensor or a JAX array."""
    return isinstance(x, (Tensor, jax.Array))


def numel(x) -> int:
    """The number of elements of ``x``."""
    return int(np.prod(fn_shape.shape_of(x), dtype=np.int64))


class inference_mode(_GradMode):  # noqa: N801 - PyTorch's name
    """``torch.inference_mode()``: records nothing, as `no_grad` (a context manager and a
    decorator). ``mode=False`` leaves grad mode as it is."""

    _mode = False

    def __init__(self, mode: bool = True):
        super().__init__()
        self._on = bool(mode)

    def __enter__(self):
        return super().__enter__() if self._on else self

    def __exit__(self, *exc):
        return super().__exit__(*exc) if self._on else False

    def __call__(self, fn):
        return super().__call__(fn) if self._on else fn


from ..errors import public_functions as _public_functions  # noqa: E402

_public_functions(globals())

__all__ = ["as_tensor", "cat", "clamp", "concat", "from_numpy", "inference_mode", "is_tensor", "numel",
           "rand_like", "randint", "randn_like", "randperm", "tril", "triu"]
