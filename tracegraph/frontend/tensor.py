"""`Tensor`: what user code holds while tracegraph traces or runs it.

A Tensor wraps an IR `Value` of the builder that made it. Under `tg.jit`/`tg.trace` it is
abstract (shape and dtype only); under `tg.eager` it also holds the concrete array. Its
operators and methods (``x + y``, ``x @ w``, ``x.sum(0)``, ``x[:, 1:3]``) are installed by
`tensor_methods`, which maps each one to a tg.* function.

Asking an abstract tensor for a concrete value (``if x > 0``, ``int(x)``, ``float(x)``,
``np.asarray(x)``) raises `tg.TracingError` naming the user's line and the construct to
use instead.
"""

from __future__ import annotations

import numpy as np

from ..errors import TracingError, user_location_long


class Tensor:
    __slots__ = ("_value", "_builder", "_data", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our operators: np_array + tensor -> Tensor

    def __init__(self, value, builder, data=None):
        self._value = value
        self._builder = builder
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

    # -- concrete values ------------------------------------------------------------
    def _concrete(self, what: str, hint: str):
        if self._data is None:
            raise TracingError(
                f"{what} of a traced tensor ({self._value.type}) at {user_location_long(3)}: "
                f"its value is not known while tracing. {hint}"
            )
        return self._data

    def __bool__(self):
        d = self._concrete(
            "Python truth value (if/while/and/or)",
            "Use tg.where(...) or tg.cond(pred, true_fn, false_fn, ...) for a data-dependent "
            "branch, tg.while_loop(cond_fn, body_fn, init) for a data-dependent loop, or pass "
            "the value as static (tg.jit(..., static_argnums=...)); tg.eager runs Python "
            "control flow on concrete values.",
        )
        return bool(d)

    def __int__(self):
        return int(self._concrete("int()", _STATIC_HINT))

    def __float__(self):
        return float(self._concrete("float()", _STATIC_HINT))

    def __complex__(self):
        return complex(self._concrete("complex()", _STATIC_HINT))

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self._concrete("Use as a Python index", _STATIC_HINT))

    def item(self):
        return np.asarray(self._concrete(".item()", _STATIC_HINT)).item()

    def numpy(self) -> np.ndarray:
        return np.asarray(self._concrete(".numpy()", _STATIC_HINT))

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(
            self._concrete(
                "Conversion to a numpy array",
                "numpy functions cannot run on traced tensors; use the tg.* functions.",
            )
        )
        return a if dtype is None else a.astype(dtype)

    def __jax_array__(self):
        return self._concrete(
            "Use as a JAX array",
            "Call JAX code on tracegraph tensors through tg.from_jax(jax_fn), which turns "
            "its jaxpr into tracegraph IR.",
        )

    def __repr__(self):
        t = self._value.type
        if self._data is None:
            return f"Tensor({t}, traced)"
        return f"Tensor({t}, {np.asarray(self._data)!r})".replace("\n", "\n" + " " * 7)

    __str__ = __repr__


_STATIC_HINT = (
    "Keep it a tensor, or make the argument static (tg.jit(..., static_argnums=...)), "
    "or run define-by-run with tg.eager where values are concrete."
)
