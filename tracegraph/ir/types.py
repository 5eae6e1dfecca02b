"""Types of IR values: ``TensorType(shape, dtype, weak, sharding)`` and the short dtype
names.

The element type is a numpy dtype, or a PRNG key type: JAX's own key dtype (what
``jax.random.key(0).dtype`` is), named after its implementation: ``key<threefry2x32>[]``
is one key, ``key<threefry2x32>[4]`` four (``jax.random.split``'s result). A key is
opaque: only the random ops and the ops that move elements without reading them
(reshape, slices, concatenation, selection, control flow) take keys; ``random_unwrap``
gives a key's ``u32`` data and ``random_wrap`` makes keys of it.

A type prints as ``f32[128,784]``; a scalar as ``f32[]``. ``weak`` marks a weakly typed
value (a Python scalar, as in JAX): it takes the dtype of the strong operand it meets
in a binary op. A weak type prints with a trailing ``~``: ``f32[]~``.

``sharding`` is optional: a partition spec as in ``jax.sharding.PartitionSpec``, one entry
per dimension, each ``None`` (not partitioned), a mesh axis name, or a tuple of axis
names (partitioned over their product). It prints after the rest, only when present:
``f32[8,4]{"data", none}``, ``f32[8,4]{("data", "model"), none}``.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .._caches import cache
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


# The PRNG implementations JAX names (``jax.random.key(seed, impl=NAME)``,
# ``jax_default_prng_impl``); each gives one key type.
KEY_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


@functools.cache
def _key_dtypes() -> dict:
    import jax  # noqa: PLC0415 - JAX's key types exist only once JAX is imported

    return {
        impl: jax.eval_shape(lambda impl=impl: jax.random.key(0, impl=impl)).dtype
        for impl in KEY_IMPLS
    }


@functools.cache
def _key_names() -> dict:
    return {dt: impl for impl, dt in _key_dtypes().items()}


def key_dtype(impl: str = "threefry2x32"):
    """JAX's key dtype of PRNG implementation ``impl`` (one of `KEY_IMPLS`)."""
    try:
        return _key_dtypes()[impl]
    except (KeyError, TypeError):
        raise IRError(
            f"unknown PRNG implementation {impl!r:.40}; known: {', '.join(KEY_IMPLS)}"
        ) from None


def is_key(dtype) -> bool:
    """Whether ``dtype`` is a PRNG key type (JAX's extended key dtype)."""
    # by the class name: no JAX import for the numpy dtypes that almost every call sees
    return not isinstance(dtype, np.dtype) and type(dtype).__name__ == "KeyTy"


def key_impl(dtype) -> str:
    """The implementation name of key type ``dtype``: ``threefry2x32`` ...; IRError for
    a key type of an implementation the IR cannot name (a user-registered PRNG)."""
    try:
        return _key_names()[dtype]
    except KeyError:
        raise IRError(
            f"PRNG key type {dtype} is not one of the implementations the IR knows "
            f"({', '.join(KEY_IMPLS)})"
        ) from None


def key_data_shape(dtype) -> tuple[int, ...]:
    """The trailing shape of one key's ``u32`` data: ``(2,)`` for threefry2x32."""
    return (dtype.itemsize // 4,)


def as_dtype(dtype):
    """``dtype`` as an element type of the IR: a numpy dtype or a key type (a JAX key
    dtype passes through; anything else goes through ``np.dtype``)."""
    if isinstance(dtype, np.dtype):
        return dtype
    if is_key(dtype):
        key_impl(dtype)  # refuses a key type the IR cannot print
        return dtype
    return np.dtype(dtype)


def _np_dtype(dtype):
    """``np.dtype(dtype)``, or None for a key type (which has no numpy kind)."""
    if isinstance(dtype, np.dtype):
        return dtype
    if is_key(dtype):
        return None
    return np.dtype(dtype)


def dtype_name(dtype) -> str:
    """Short name of a dtype: ``f32``, ``bf16``, ``i32``, ``bool``, ``key<threefry2x32>`` ..."""
    if is_key(dtype):
        return f"key<{key_impl(dtype)}>"
    dt = np.dtype(dtype)
    try:
        return _NAME_OF[dt]
    except KeyError:
        raise IRError(f"unsupported dtype {dt}") from None


_KEY_NAME = re.compile(r"key<(\w+)>\Z")


def dtype_from_name(name: str):
    """The element type named ``name`` (`dtype_name`'s inverse): a numpy dtype or a key
    type; raises IRError for an unknown name."""
    if isinstance(name, str):
        dt = DTYPE_NAMES.get(name)
        if dt is not None:
            return dt
        m = _KEY_NAME.match(name)
        if m is not None:
            return key_dtype(m.group(1))
    raise IRError(
        f"unknown dtype {name!r:.40}; known: {', '.join(DTYPE_NAMES)}, "
        + ", ".join(f"key<{impl}>" for impl in KEY_IMPLS)
    )


def is_float(dtype) -> bool:
    dt = _np_dtype(dtype)
    return dt is not None and (dt.kind == "f" or dt == _BF16)


def is_int(dtype) -> bool:
    dt = _np_dtype(dtype)
    return dt is not None and dt.kind in "iu"


def is_bool(dtype) -> bool:
    dt = _np_dtype(dtype)
    return dt is not None and dt.kind == "b"


def is_complex(dtype) -> bool:
    dt = _np_dtype(dtype)
    return dt is not None and dt.kind == "c"


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


def check_sharding(spec, ndim: int) -> tuple:
    """A partition spec for a value of rank ``ndim``, normalized to a tuple whose entries
    are None, an axis name, or a tuple of two or more axis names (a one-name tuple
    becomes the name); raises IRError if malformed: not a sequence, the wrong length,
    names that are not identifiers, a mesh axis used twice."""
    if isinstance(spec, (str, bytes, dict, set, frozenset)) or not hasattr(spec, "__iter__"):
        raise IRError(f"a sharding is a tuple of per-dimension entries, got {spec!r:.60}")
    entries = tuple(spec)
    if len(entries) != ndim:
        raise IRError(
            f"sharding {_spec_repr(entries)} has {len(entries)} entries for a value of rank {ndim}"
        )
    out, seen = [], set()
    for e in entries:
        names = (e,) if isinstance(e, str) else e
        if e is None:
            out.append(None)
            continue
        if not isinstance(names, (tuple, list)) or not names:
            raise IRError(
                f"sharding entry {e!r:.40} is not None, a mesh axis name or a tuple of names"
            )
        for n in names:
            if not isinstance(n, str) or not n.isidentifier():
                raise IRError(f"sharding axis name {n!r:.40} is not an identifier")
            if n in seen:
                raise IRError(f"sharding {_spec_repr(entries)} uses mesh axis {n!r} twice")
            seen.add(n)
        out.append(names[0] if len(names) == 1 else tuple(names))
    return tuple(out)


def format_sharding(spec) -> str:
    """``{"data", none}``: the text form of a partition spec (as `TensorType` prints it)."""

    def entry(e):
        if e is None:
            return "none"
        if isinstance(e, str):
            return f'"{e}"'  # identifiers: no escapes needed
        return "(" + ", ".join(f'"{n}"' for n in e) + ")"

    return "{" + ", ".join(entry(e) for e in spec) + "}"


def _spec_repr(entries) -> str:
    text = repr(entries)
    return text if len(text) <= 80 else text[:77] + "..."


_KEEP = object()


class TensorType:
    """The static type of a value: shape (tuple of ints), dtype (numpy dtype), weak flag,
    and an optional sharding (a partition spec, see the module docstring; None: none
    given)."""

    __slots__ = ("shape", "dtype", "weak", "sharding", "_hash")

    def __init__(self, shape, dtype, weak: bool = False, sharding=None):
        self.shape = tuple(map(int, shape))
        self.dtype = dtype if isinstance(dtype, np.dtype) else as_dtype(dtype)
        self.weak = bool(weak)
        self.sharding = None if sharding is None else check_sharding(sharding, len(self.shape))
        self._hash = hash((self.shape, self.dtype, self.weak, self.sharding))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_(self, shape=None, dtype=None, weak=None, sharding=_KEEP) -> "TensorType":
        """A copy with the given fields replaced. A new ``shape`` drops the sharding
        (a partition spec describes the dims of one shape) unless ``sharding`` is given;
        ``sharding=None`` drops it."""
        if sharding is _KEEP:
            sharding = self.sharding if shape is None else None
        return TensorType(
            self.shape if shape is None else shape,
            self.dtype if dtype is None else dtype,
            self.weak if weak is None else weak,
            sharding,
        )

    def __eq__(self, other):
        return (
            isinstance(other, TensorType)
            and self.shape == other.shape
            and self.dtype == other.dtype
            and self.weak == other.weak
            and self.sharding == other.sharding
        )

    def __hash__(self):
        return self._hash

    def __str__(self):
        dims = ",".join(str(d) for d in self.shape)
        text = f"{dtype_name(self.dtype)}[{dims}]{'~' if self.weak else ''}"
        return text if self.sharding is None else text + format_sharding(self.sharding)

    def __repr__(self):
        extra = ", weak" if self.weak else ""
        if self.sharding is not None:
            extra += f", sharding={self.sharding!r}"
        return f"TensorType({self.shape}, {dtype_name(self.dtype)}{extra})"


# one object per distinct type, for the hot paths that key caches on types (define-by-run
# plans): a lookup with interned types compares by identity, not through `__eq__`
_INTERNED: dict = cache({})
_INTERNED_MAX = 1 << 16


def interned(t: TensorType) -> TensorType:
    """The one shared object equal to ``t`` (``t`` itself the first time it is seen)."""
    hit = _INTERNED.get(t)
    if hit is None:
        hit = t
        if len(_INTERNED) < _INTERNED_MAX:
            _INTERNED[t] = t
    return hit
