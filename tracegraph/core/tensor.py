"""`Tensor`: the box user code holds while tracegraph traces or runs it.

A Tensor is an IR `Value` (its type) and the `Trace` that made it, plus the concrete
array when that trace computes values (define-by-run). It has no policy of its own:
every operator goes through `bind` (the numpy-named methods are installed by
`frontend.tensor_methods`, as jax.numpy installs its array methods), and every question
about a concrete value (``bool``, ``int``, ``float``, ``__index__``, ``.item()``,
``np.asarray``) is asked of its trace, which answers, raises, or records a guard.

NOTE: the concrete array lives in exactly one place, here. Graph builders keep Values,
never arrays, so an activation is freed as soon as the last Tensor holding it is.
"""

from __future__ import annotations

import os
import sys

import numpy as np

# jax.Array's binary operators (``jnp_array + t``) call ``other.__jax_array__()`` before
# deferring to ``other``'s reflected operator; they live in this file of JAX.
_JAX_OPERATORS_FILE = os.path.join("numpy", "array_methods.py")


class Tensor:
    __slots__ = ("_value", "_trace", "_data", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our operators: np_array + tensor -> Tensor

    def __init__(self, value, trace, data=None):
        self._value = value
        self._trace = trace
        self._data = data

    # -- static facts -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.type.dtype

    @property
    def ndim(self) -> int:
        return len(self._value.type.shape)

    @property
    def size(self) -> int:
        return self._value.type.size

    @property
    def type(self):
        return self._value.type

    @property
    def is_concrete(self) -> bool:
        return self._data is not None

    def __len__(self):
        # The leading dimension is static, so len() is known while tracing (as in JAX).
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    __hash__ = object.__hash__

    # -- concrete values: the trace decides -----------------------------------------
    def __bool__(self):
        return self._trace.to_bool(self)

    def __int__(self):
        return int(self._trace.concrete(self, "int()"))

    def __float__(self):
        return float(self._trace.concrete(self, "float()"))

    def __complex__(self):
        return complex(self._trace.concrete(self, "complex()"))

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self._trace.concrete(self, "Use as a Python index"))

    def item(self):
        return np.asarray(self._trace.concrete(self, ".item()")).item()

    def numpy(self) -> np.ndarray:
        return np.asarray(self._trace.concrete(self, ".numpy()"))

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._trace.concrete(self, "Conversion to a numpy array"))
        return a if dtype is None else a.astype(dtype)

    @property
    def __jax_array__(self):
        # JAX looks this attribute up on whatever it is given. From jax.Array's binary
        # operators (``jnp_array + t``) the answer is a function returning NotImplemented:
        # JAX's operator then returns NotImplemented and Python calls ``t.__radd__``, so
        # the op is bound, in the graph. Anywhere else (``jnp.sin(t)``) the JAX code
        # would run outside the graph: the trace refuses, naming the function and line.
        caller = sys._getframe(1).f_code
        if caller.co_name.startswith("_operator_") and caller.co_filename.endswith(_JAX_OPERATORS_FILE):
            return _not_implemented
        return self._trace.foreign_call(self)

    def __repr__(self):
        t = self._value.type
        if self._data is None:
            return f"Tensor({t}, traced)"
        return f"Tensor({t}, {np.asarray(self._data)!r})".replace("\n", "\n" + " " * 7)

    __str__ = __repr__


def _not_implemented():
    return NotImplemented
