"""Installs `Tensor`'s Python operators and methods, each mapped to a tg.* function
(as jax.numpy's array_methods does for JAX arrays). Imported once by `tracegraph`."""

from __future__ import annotations

from . import fn_linalg, fn_math, fn_reduce, fn_shape
from ..core import Tensor


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
    "__and__": fn_math.logical_and,
    "__rand__": _swap(fn_math.logical_and),
    "__or__": fn_math.logical_or,
    "__ror__": _swap(fn_math.logical_or),
    "__xor__": fn_math.logical_xor,
    "__rxor__": _swap(fn_math.logical_xor),
    "__invert__": fn_math.logical_not,
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
    "reshape": lambda self, *shape: fn_shape.reshape(self, _varargs(shape)),
    "transpose": lambda self, *axes: fn_shape.transpose(self, _varargs(axes) if axes else None),
    "flatten": fn_shape.flatten,
    "ravel": fn_shape.ravel,
    "squeeze": fn_shape.squeeze,
    "swapaxes": fn_shape.swapaxes,
    "take": fn_shape.take,
    "__getitem__": fn_shape.getitem,
    "__iter__": fn_shape.iterate,
    "T": property(lambda self: self if self.ndim < 2 else fn_shape.transpose(self)),
    "mT": property(lambda self: fn_shape.swapaxes(self, -1, -2)),
}


def _varargs(args):
    # x.reshape(2, 3) and x.reshape((2, 3)) both work, as on numpy arrays.
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def install():
    for name, f in {**_OPERATORS, **_METHODS}.items():
        setattr(Tensor, name, f)
    Tensor.__hash__ = object.__hash__  # __eq__ is elementwise; keep identity hashing


install()
