"""Reading the ``.npz`` archives of Keras' data sets (MNIST, Boston housing, IMDB).

An ``.npz`` is a zip of ``.npy`` members: a magic string, a header (shape, order, dtype,
parsed by numpy's own literal-only reader) and the raw elements. Numeric members are read
with pickling off; a Python-object member (IMDB's ragged sequences) only where the caller
allows it, through the restricted unpickler of `_unpickle`.

NOTE: numpy's ``np.load`` allocates the array the header declares before it reads the
data; here the declared size must first equal what the zip member holds, and the payload
is read in chunks, so a forged header cannot make us allocate more than the file holds.
A damaged archive, member or header raises `DataError` naming the file and member.

Example::

    arrays = load_npz("~/.keras/datasets/mnist.npz", ["x_train", "y_train"])
    arrays["x_train"].shape     # (60000, 28, 28)
"""

from __future__ import annotations

import math
import zipfile
import zlib

import numpy as np

from ...data._errors import DataError
from ._unpickle import as_array, unpickle

_CHUNK = 1 << 22
_NUMERIC_KINDS = "biufc"


def load_npz(path: str, keys, *, allow_object: bool = False) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` archive at ``path`` (each must be there).

    Object arrays are refused unless ``allow_object``; then they are rebuilt by the
    restricted unpickler (plain lists and numbers only, never objects of a class).
    """
    with open(path, "rb") as file:  # an error opening it is the disk's, raised as is
        return _load(file, path, keys, allow_object)


def _load(file, path: str, keys, allow_object: bool) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
            out = {}
            for key in keys:
                member = f"{key}.npy"
                if member not in names:
                    held = ", ".join(sorted(n[:-4] for n in names if n.endswith(".npy")))
                    raise DataError(f"{path}: no array {key!r} in the archive (it holds: "
                                    f"{held or 'no arrays'})")
                out[key] = _read_member(archive, member, f"{path}[{key}]", allow_object)
            return out
    except DataError:
        raise
    # OSError: a seek to a damaged offset; RuntimeError: an encrypted member
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError,
            RuntimeError, OSError) as e:
        raise DataError(f"{path}: damaged .npz archive ({type(e).__name__}: {e})") from None


def _read_member(archive: zipfile.ZipFile, member: str, where: str, allow_object: bool):
    info = archive.getinfo(member)
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:  # 2.0 and 3.0 differ only in the header's text encoding
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as e:
            raise DataError(f"{where}: not a .npy array ({e})") from None
        left = info.file_size - f.tell()
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not allow_object:
                raise DataError(f"{where}: holds a Python-object array where numbers "
                                f"belong; refusing to unpickle it")
            arr = as_array(unpickle(where, _read_exactly(f, left)), where, allow_object=True)
            if arr.shape != shape:
                raise DataError(f"{where}: the header declares shape {shape}, the pickled "
                                f"array has {arr.shape}")
            return arr
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise DataError(f"{where}: array of unsupported dtype {dtype} (numbers only)")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != left:
            raise DataError(f"{where}: the header declares {dtype.name}{list(shape)} "
                            f"({nbytes} bytes), the member holds {left} bytes")
        payload = _read_exactly(f, nbytes)
        if len(payload) != nbytes:
            raise DataError(f"{where}: truncated: {len(payload)} of {nbytes} bytes")
        arr = np.frombuffer(payload, dtype).reshape(shape, order=order)
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        return arr


def _read_exactly(f, n: int) -> bytearray:
    # chunks into a growing buffer: what we hold is what the stream really gave
    buf = bytearray()
    while len(buf) < n:
        part = f.read(min(_CHUNK, n - len(buf)))
        if not part:
            break
        buf += part
    return buf
