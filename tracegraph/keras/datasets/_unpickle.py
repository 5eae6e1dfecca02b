"""Reading the pickles of Keras' data sets without running code from the file.

CIFAR's batches are Python 2 pickles of a dict holding a numpy array, and IMDB's
``.npz`` stores its ragged sequences as numpy object arrays, which numpy can only keep
as a pickle. The only globals those streams name are the three numpy uses to rebuild
an array: ``numpy.core.multiarray._reconstruct`` (``numpy._core`` when written by
numpy 2), ``numpy.ndarray`` and ``numpy.dtype`` (checked on the opcodes of batches
written as Python 2's cPickle with numpy 1.x writes them, protocols 0, 1 and 2). Every
other global is refused with a `DataError` before anything is called.

NOTE: even those three are not handed to the pickle. ``find_class`` returns stand-ins
that only record what the stream says (``_reconstruct`` an empty placeholder, ``dtype``
its type code and state, ``ndarray`` an inert marker that cannot be called), and
`as_array` builds the array afterwards, once its shape, dtype and payload agree: the
payload must hold exactly the bytes the declared shape needs, so a forged shape can never
make us allocate more than the file holds, and no numpy code runs on the stream's
arguments. Stream protocols that rebuild arrays differently (protocol 5's
``_frombuffer``, Python 3's protocol 2 ``_codecs.encode`` for bytes) are refused, as
Keras refuses them.

Example::

    batch = unpickle(path, open(path, "rb").read())   # {b"data": <stub>, b"labels": [...]}
    x = as_array(batch[b"data"], path)                  # uint8[10000, 3072]
"""

from __future__ import annotations

import io
import math
import pickle
import re

import numpy as np

from ...data._errors import DataError

_MAX_DIMS = 32
_TYPECODE = re.compile(r"[biufcO]\d{0,2}")


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` in a stream; only `_reconstruct` accepts it."""

    __slots__ = ()

    def __repr__(self):
        return "<numpy.ndarray (not callable while unpickling)>"


_NDARRAY = _NdarrayMarker()


class _ArrayStub:
    """What ``_reconstruct(ndarray, (0,), b"b")`` made; the BUILD opcode gives its state
    ``(version, shape, dtype, is_fortran, payload)``."""

    __slots__ = ("state",)

    def __init__(self):
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _DtypeStub:
    """What ``numpy.dtype(code, align, copy)`` made; BUILD gives its state
    ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, meta])``."""

    __slots__ = ("code", "state")

    def __init__(self, code=None, align=0, copy=0):
        self.code = code
        self.state = None

    def __setstate__(self, state):
        self.state = state


def _reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError(f"_reconstruct of {type(cls).__name__}, not of numpy.ndarray")
    return _ArrayStub()


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeStub,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise DataError(
                f"{self._path}: refusing to load: the pickle names the global "
                f"{module}.{name}, and a data set file only ever needs numpy's array "
                f"reconstruction ({', '.join(sorted({m + '.' + n for m, n in _ALLOWED}))}). "
                f"The file is damaged or was tampered with; nothing from it was run.")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def unpickle(path: str, data: bytes):
    """Unpickle ``data`` (read from ``path``) allowing only array reconstruction; arrays
    come back as stubs for `as_array`. Any problem raises `DataError` naming ``path``."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged stream can raise almost anything
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None


def _text(v) -> str | None:
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return v if isinstance(v, str) else None


def _dtype(stub, path: str, allow_object: bool) -> np.dtype:
    # getattr: a NEWOBJ opcode can make a stub without running __init__
    code = _text(getattr(stub, "code", None)) if isinstance(stub, _DtypeStub) else None
    state = getattr(stub, "state", None) if isinstance(stub, _DtypeStub) else None
    if code is None or not _TYPECODE.fullmatch(code):
        raise DataError(f"{path}: array of unsupported dtype {code!r}")
    if state is not None:
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise DataError(f"{path}: array dtype {code!r} with an unsupported state "
                            f"(structured or subarray dtypes are not data set arrays)")
        order = _text(state[1])
    else:
        order = "|"
    try:
        dtype = np.dtype(code)
    except TypeError:
        raise DataError(f"{path}: array of unsupported dtype {code!r}") from None
    if dtype.kind == "O" and not allow_object:
        raise DataError(f"{path}: holds a Python-object array where numbers belong")
    if order in ("<", ">"):
        dtype = dtype.newbyteorder(order)
    elif order not in ("|", "="):
        raise DataError(f"{path}: array dtype {code!r} with byte order {order!r}")
    return dtype


def as_array(obj, path: str, *, allow_object: bool = False) -> np.ndarray:
    """The numpy array a stub from `unpickle` describes, after checking its shape, dtype
    and payload agree (object arrays only with ``allow_object``: their elements are
    whatever the stream built from plain pickle opcodes, never objects of a class)."""
    if not isinstance(obj, _ArrayStub):
        raise DataError(f"{path}: expected a numpy array, found {type(obj).__name__}")
    state = getattr(obj, "state", None)
    if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
        state = state[1:]
    if not isinstance(state, tuple) or len(state) != 4:
        raise DataError(f"{path}: numpy array with an unreadable state")
    shape, dtype_stub, fortran, payload = state
    if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise DataError(f"{path}: numpy array with a bad shape {shape!r}")
    dtype = _dtype(dtype_stub, path, allow_object)
    order = "F" if fortran else "C"
    count = math.prod(shape)
    if dtype.kind == "O":
        if not isinstance(payload, list) or len(payload) != count:
            got = len(payload) if isinstance(payload, list) else type(payload).__name__
            raise DataError(f"{path}: object array of shape {shape} holds {got} elements")
        out = np.empty(count, dtype=object)
        for i, v in enumerate(payload):  # one by one: a list element must stay a list
            out[i] = v
        return out.reshape(shape, order=order)
    if not isinstance(payload, (bytes, bytearray)):
        raise DataError(f"{path}: numpy array payload is {type(payload).__name__}, not bytes")
    if len(payload) != count * dtype.itemsize:
        raise DataError(f"{path}: numpy array of shape {shape} and dtype {dtype.name} needs "
                        f"{count * dtype.itemsize} bytes, the file holds {len(payload)}")
    out = np.frombuffer(payload, dtype).reshape(shape, order=order)
    return out.astype(dtype.newbyteorder("="), copy=True)  # writable, native order
