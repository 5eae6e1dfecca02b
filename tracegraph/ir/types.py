"""Types of IR values: ``TensorType(shape, dtype, weak)`` and the short dtype names.

A type prints as ``f32[128,784]``; a scalar as ``f32[]``. ``weak`` marks a weakly typed
value (a Python scalar, as in JAX): it takes the dtype of the strong operand it meets
in a binary op. A weak type prints with a trailing ``~``: ``f32[]~``.
"""

from __future__ import annotations

import numpy as np

from ..errors import IRError

try:  # bfloat16 and friends; ml_dtypes ships with jaxlib
    import ml_dtypes

    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - jaxlib always brings ml_dtypes
    _BF16 = None

DTYPE_NAMES: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "c64": np.dtype(np.complex64),
    "c128": np.dtype(np.complex128),
}
if _BF16 is not None:
    DTYPE_NAMES["bf16"] = _BF16

_NAME_OF: dict[np.dtype, str] = {dt: name for name, dt in DTYPE_NAMES.items()}

# Element counts above this are refused on load: no real tensor is that large, and the
# bound keeps byte counts far from any integer overflow in numpy or XLA.
MAX_ELEMENTS = 2**48


def dtype_name(dtype) -> str:
    """Short name of a dtype: ``f32``, ``bf16``, ``i32``, ``bool`` ..."""
    dt = np.dtype(dtype)
    try:
        return _NAME_OF[dt]
    except KeyError:
        raise IRError(f"unsupported dtype {dt}") from None


def dtype_from_name(name: str) -> np.dtype:
    try:
        return DTYPE_NAMES[name]
    except KeyError:
        raise IRError(f"unknown dtype name {name!r}; known: {', '.join(DTYPE_NAMES)}") from None


def is_float(dtype) -> bool:
    dt = np.dtype(dtype)
    return dt.kind == "f" or dt == _BF16


def is_int(dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def is_bool(dtype) -> bool:
    return np.dtype(dtype).kind == "b"


def is_complex(dtype) -> bool:
    return np.dtype(dtype).kind == "c"


def is_inexact(dtype) -> bool:
    return is_float(dtype) or is_complex(dtype)


def checked_num_elements(shape) -> int:
    """Product of dims, refusing non-int, negative or absurdly large shapes."""
    n = 1
    for d in shape:
        if type(d) is not int:  # bool is an int subclass; refuse it too
            raise IRError(f"shape {shape!r}: dimension {d!r} is not an int")
        if d < 0:
            raise IRError(f"shape {shape!r}: negative dimension {d}")
        if d > MAX_ELEMENTS:
            raise IRError(f"shape {shape!r}: dimension {d} exceeds {MAX_ELEMENTS}")
        n *= d
        if n > MAX_ELEMENTS:
            raise IRError(f"shape {shape!r}: more than {MAX_ELEMENTS} elements")
    return n


class TensorType:
    """The static type of a value: shape (tuple of ints), dtype (numpy dtype), weak flag."""

    __slots__ = ("shape", "dtype", "weak", "_hash")

    def __init__(self, shape, dtype, weak: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak = bool(weak)
        self._hash = hash((self.shape, self.dtype, self.weak))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_(self, shape=None, dtype=None, weak=None) -> "TensorType":
        return TensorType(
            self.shape if shape is None else shape,
            self.dtype if dtype is None else dtype,
            self.weak if weak is None else weak,
        )

    def __eq__(self, other):
        return (
            isinstance(other, TensorType)
            and self.shape == other.shape
            and self.dtype == other.dtype
            and self.weak == other.weak
        )

    def __hash__(self):
        return self._hash

    def __str__(self):
        dims = ",".join(str(d) for d in self.shape)
        return f"{dtype_name(self.dtype)}[{dims}]{'~' if self.weak else ''}"

    def __repr__(self):
        return f"TensorType({self.shape}, {dtype_name(self.dtype)}{', weak' if self.weak else ''})"
