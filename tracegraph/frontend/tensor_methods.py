"""Installs `Tensor`'s Python operators and methods, each mapped to a tg.* function
(as jax.numpy's array_methods does for JAX arrays). Imported once by `tracegraph`."""

from __future__ import annotations

import numpy as np

from . import devices, fn_linalg, fn_math, fn_reduce, fn_shape
from .index_update import IndexUpdateHelper
from .fn_creation import canonical_dtype
from .tape import backward as tape_backward
from ..core import Tensor
from ..errors import TracingError, public, user_location_long
from ..ir.types import DTYPE_NAMES


def _swap(f):
    return lambda self, other: f(other, self)


_OPERATORS = {
    "__add__": fn_math.add,
    "__radd__": _swap(fn_math.add),
    "__sub__": fn_math.subtract,
    "__rsub__": _swap(fn_math.subtract),
    "__mul__": fn_math.multiply,
    "__rmul__": _swap(fn_math.multiply),
    "__truediv__": fn_math.divide,
    "__rtruediv__": _swap(fn_math.divide),
    "__floordiv__": fn_math.floor_divide,
    "__rfloordiv__": _swap(fn_math.floor_divide),
    "__mod__": fn_math.remainder,
    "__rmod__": _swap(fn_math.remainder),
    "__pow__": fn_math.power,
    "__rpow__": _swap(fn_math.power),
    "__neg__": fn_math.negative,
    "__pos__": lambda self: self,
    "__abs__": fn_math.abs,
    "__lt__": fn_math.less,
    "__le__": fn_math.less_equal,
    "__gt__": fn_math.greater,
    "__ge__": fn_math.greater_equal,
    "__eq__": fn_math.equal,
    "__ne__": fn_math.not_equal,
    # numpy's: bitwise on integers, logical on bools
    "__and__": fn_math.bitwise_and,
    "__rand__": _swap(fn_math.bitwise_and),
    "__or__": fn_math.bitwise_or,
    "__ror__": _swap(fn_math.bitwise_or),
    "__xor__": fn_math.bitwise_xor,
    "__rxor__": _swap(fn_math.bitwise_xor),
    "__invert__": fn_math.bitwise_not,
    "__lshift__": fn_math.left_shift,
    "__rlshift__": _swap(fn_math.left_shift),
    "__rshift__": fn_math.right_shift,
    "__rrshift__": _swap(fn_math.right_shift),
    "__matmul__": fn_linalg.matmul,
    "__rmatmul__": _swap(fn_linalg.matmul),
}

_METHODS = {
    "dot": fn_linalg.dot,
    "astype": fn_math.astype,
    "clip": fn_math.clip,
    "exp": fn_math.exp,
    "log": fn_math.log,
    "sqrt": fn_math.sqrt,
    "tanh": fn_math.tanh,
    "abs": fn_math.abs,
    # -- shape, reductions, indexing: see below (filled per op group) --
    "sum": fn_reduce.sum,
    "mean": fn_reduce.mean,
    "max": fn_reduce.max,
    "min": fn_reduce.min,
    "prod": fn_reduce.prod,
    "argmax": fn_reduce.argmax,
    "argmin": fn_reduce.argmin,
    "logsumexp": fn_reduce.logsumexp,
    "sort": fn_reduce.sort,  # jax.Array's: a sorted copy (numpy sorts in place)
    "argsort": fn_reduce.argsort,
    "cumsum": fn_reduce.cumsum,  # jax.Array's (axis=None flattens); x.cumsum(0) as torch's
    "cumprod": fn_reduce.cumprod,
    "reshape": lambda self, *shape: fn_shape.reshape(self, _varargs(shape)),
    "transpose": lambda self, *axes: fn_shape.transpose(self, _varargs(axes) if axes else None),
    "flatten": fn_shape.flatten,
    "ravel": fn_shape.ravel,
    "squeeze": fn_shape.squeeze,
    "swapaxes": fn_shape.swapaxes,
    "take": fn_shape.take,
    "__getitem__": fn_shape.getitem,
    "at": property(IndexUpdateHelper),  # x.at[idx].set(v): jax.numpy's indexed update
    "__iter__": fn_shape.iterate,
    "T": property(lambda self: self if self.ndim < 2 else fn_shape.transpose(self)),
    "mT": property(lambda self: fn_shape.swapaxes(self, -1, -2)),
}


# -- in place: ``t += x`` rebinds the name in traced code (tensors are values there) and
# updates the tensor itself when it is imperative (PyTorch style); see `Trace.inplace`
def _inplace_operator(f):
    return lambda self, other: self._trace.inplace(self, f, other)


_INPLACE_OPERATORS = {
    "__iadd__": fn_math.add,
    "__isub__": fn_math.subtract,
    "__imul__": fn_math.multiply,
    "__itruediv__": fn_math.divide,
    "__ifloordiv__": fn_math.floor_divide,
    "__imod__": fn_math.remainder,
    "__ipow__": fn_math.power,
    "__iand__": fn_math.bitwise_and,
    "__ior__": fn_math.bitwise_or,
    "__ixor__": fn_math.bitwise_xor,
    "__ilshift__": fn_math.left_shift,
    "__irshift__": fn_math.right_shift,
    "__imatmul__": fn_linalg.matmul,
}


def _inplace_method(name, f):
    # x.add_(y) mutates x: only an imperative tensor can; in traced code it would be a
    # silent no-op on the caller's variable, so it is refused
    def method(self, *args, **kwargs):
        if not self._trace.free:
            raise TracingError(
                f"x.{name}() updates a tensor in place, which traced code (tg.jit, tg.eager, "
                f"control-flow bodies) cannot do (at {user_location_long(2)}): write "
                f"x = {name[:-1]}(x, ...) or x = x op y instead"
            )
        return self._trace.inplace(self, lambda t, _: f(t, *args, **kwargs), None)

    method.__name__ = name
    return method


def _alpha(f):
    return lambda x, other, alpha=1: f(x, other if alpha == 1 else fn_math.multiply(other, alpha))


_INPLACE_METHODS = {
    "add_": _alpha(fn_math.add),
    "sub_": _alpha(fn_math.subtract),
    "mul_": fn_math.multiply,
    "div_": fn_math.divide,
    "pow_": fn_math.power,
    "clamp_": lambda x, min=None, max=None: fn_math.clip(x, min, max),
    "neg_": lambda x: fn_math.negative(x),
    "exp_": lambda x: fn_math.exp(x),
}


# -- PyTorch's spellings, for code ported from it: dim=/keepdim=, view, unsqueeze, float()
def _torch_reduction(f, pair=False):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        ax = axis if dim is None else dim
        kd = keepdim if keepdims is None else keepdims
        out = f(self, ax, kd)
        if pair and dim is not None:  # torch: x.max(dim=1) -> (values, indices)
            arg = fn_reduce.argmax if f is fn_reduce.max else fn_reduce.argmin
            return out, _arg(arg, self, dim, kd)
        return out if dtype is None else fn_math.astype(out, dtype)

    return method


def _arg(f, x, dim, keepdim):
    return f(x, dim, keepdim)



def _torch_variance(f):
    # torch.Tensor.var/std: dim, keepdim, correction (default 1, the unbiased estimate)
    # or the older unbiased=; numpy's axis=/ddof= are not taken, as their default differs
    def method(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # x.var(False): the old positional `unbiased`
            dim, unbiased = None, dim
        if correction is None:
            correction = 0 if unbiased is False else 1
        return f(self, dim, correction, keepdim)

    return method

class _Size(int):
    """``t.size``: numpy's element count (an int) that is also PyTorch's ``t.size()``
    (the shape) and ``t.size(dim)``."""

    def __new__(cls, shape):
        n = 1
        for d in shape:
            n *= d
        obj = super().__new__(cls, n)
        obj._shape = tuple(shape)
        return obj

    def __call__(self, dim=None):
        return self._shape if dim is None else self._shape[dim]


_size = property(lambda self: _Size(self.shape))


_TORCH_METHODS = {
    "sum": _torch_reduction(fn_reduce.sum),
    "mean": _torch_reduction(fn_reduce.mean),
    "prod": _torch_reduction(fn_reduce.prod),
    "var": _torch_variance(fn_reduce.var),
    "std": _torch_variance(fn_reduce.std),
    "max": _torch_reduction(fn_reduce.max, pair=True),
    "min": _torch_reduction(fn_reduce.min, pair=True),
    "argmax": lambda self, dim=None, keepdim=False, *, axis=None, keepdims=None: fn_reduce.argmax(
        self, axis if dim is None else dim, keepdim if keepdims is None else keepdims),
    "argmin": lambda self, dim=None, keepdim=False, *, axis=None, keepdims=None: fn_reduce.argmin(
        self, axis if dim is None else dim, keepdim if keepdims is None else keepdims),
    "float": lambda self: fn_math.astype(self, "f32"),
    "double": lambda self: fn_math.astype(self, canonical_dtype("f64")),
    "half": lambda self: fn_math.astype(self, "f16"),
    "bfloat16": lambda self: fn_math.astype(self, "bf16"),
    "long": lambda self: fn_math.astype(self, canonical_dtype("i64")),
    "int": lambda self: fn_math.astype(self, "i32"),
    "bool": lambda self: fn_math.astype(self, "bool"),
    "to": lambda self, *args, **kwargs: _to(self, *args, **kwargs),
    "cpu": lambda self, *a, **k: _to(self, "cpu"),
    "cuda": lambda self, device=None, *a, **k: _to(self, devices.device("cuda", None if device is None else
                                                                       devices.device(device).index)),
    "contiguous": lambda self, *a, **k: self,
    "clone": lambda self: fn_math.astype(self, self.dtype),
    "view": lambda self, *shape: fn_shape.reshape(self, _varargs(shape)),
    "view_as": lambda self, other: fn_shape.reshape(self, other.shape),
    "reshape_as": lambda self, other: fn_shape.reshape(self, other.shape),
    "expand_as": lambda self, other: fn_shape.broadcast_to(self, other.shape),
    "unsqueeze": lambda self, dim: fn_shape.expand_dims(self, dim),
    "permute": lambda self, *dims: fn_shape.transpose(self, _varargs(dims)),
    "t": lambda self: self if self.ndim < 2 else fn_shape.transpose(self),
    "mm": fn_linalg.matmul,
    "matmul": fn_linalg.matmul,
    "eq": fn_math.equal,
    "ne": fn_math.not_equal,
    "lt": fn_math.less,
    "le": fn_math.less_equal,
    "gt": fn_math.greater,
    "ge": fn_math.greater_equal,
    "pow": fn_math.power,
    "sigmoid": lambda self: fn_math.sigmoid(self),
    "relu": lambda self: fn_math.maximum(self, 0),
    "size": _size,
    "backward": lambda self, *args, **kwargs: tape_backward(self, *args, **kwargs),
    "dim": lambda self: self.ndim,
    "numel": lambda self: self.size,
}


@public("to")
def _to(x, *args, dtype=None, device=None, non_blocking=False, copy=False, **_):
    """PyTorch's ``x.to(device)``, ``x.to(dtype)``, ``x.to(device, dtype)``,
    ``x.to(other)`` (its device and dtype). The dtype converts (an op); the device
    places an imperative tensor's array (`devices.place`), and in traced code must be
    the device the program runs on."""
    device, dtype = devices.to_arguments(args, device, dtype)
    out = x if dtype is None or np.dtype(canonical_dtype(dtype)) == x.dtype else fn_math.astype(x, canonical_dtype(dtype))
    if device is None:
        return out
    if not x._trace.free:  # traced: the compiled program places values
        devices.check_traced(device, "Tensor.to")
        return out
    moved = devices.place(out._data, device)
    if moved is out._data:
        return out
    from .tape import _move

    return _move(out, moved)


def _device(x):
    """The `tg.device` of a tensor's array (traced: the device the program runs on)."""
    return devices.device_of(x._data) if x._trace.free else devices.get_default_device()


_PROPERTIES = {
    "device": property(_device),
    "is_cuda": property(lambda self: _device(self).type == "cuda"),
}


def _varargs(args):
    # x.reshape(2, 3) and x.reshape((2, 3)) both work, as on numpy arrays.
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def install():
    for name, f in {**_OPERATORS, **_METHODS, **_TORCH_METHODS, **_PROPERTIES}.items():
        setattr(Tensor, name, f)
    for name, f in _INPLACE_OPERATORS.items():
        setattr(Tensor, name, _inplace_operator(f))
    for name, f in _INPLACE_METHODS.items():
        setattr(Tensor, name, _inplace_method(name, f))
    Tensor.__hash__ = object.__hash__  # __eq__ is elementwise; keep identity hashing


install()
