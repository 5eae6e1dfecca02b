"""`save` / `load`: a graph in one file.

The file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays): the JSON form of the
graph as the uint8 entry ``__graph__.json``, and every constant as its own array entry
(``const_0``, ``const_1``, ...), which the JSON names with ``{"array": "const_0"}``
instead of inlining base64. bfloat16 constants are stored as their uint16 bit pattern
(the ``.npy`` format cannot name bfloat16 without pickle); the JSON keeps the dtype.

NOTE: saving is atomic — the archive is written to a temporary file in the target's
directory, flushed and fsync'ed, then renamed over the target — so a crash or a failing
save never leaves a half-written file or destroys an existing one.

NOTE: loading is a trust boundary and never calls ``np.load``: it reads the zip directory
and each entry's ``.npy`` header itself, and checks every size against the types the
graph declares *before* anything is inflated or allocated (an entry's directory size must
be its header plus exactly the declared bytes; `save` stores entries uncompressed, and a
deflated entry may expand at most 32x, plus 1 MiB: a compression bomb is refused from the
zip directory, before it is inflated). Data is then inflated in bounded chunks straight
into an array of the declared size, and an entry that runs past its declared end or
fails its CRC is refused. So a file never makes the loader allocate more than its
declared constants plus a small constant; every failure is a `tg.IRError`. The graph is
then validated as `Graph.from_json` does.

Example::

    tg.save(g, "mlp.tg")
    g2 = tg.load("mlp.tg")
    assert str(g2) == str(g)
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from .._atomic import write_atomically
from ..errors import IRError
from . import serialize
from .graph import Graph, Node, Value
from .parser import IRClasses
from .types import DTYPE_NAMES

GRAPH_ENTRY = "__graph__.json"
_BF16 = DTYPE_NAMES.get("bf16")
_NPY_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 65536  # bytes of a .npy header (numpy writes a few hundred)
_CHUNK = 1 << 20  # bytes inflated per read
_MAX_INFLATION = 32  # how much a deflated entry may expand (tg.save stores entries)
_INFLATION_SLACK = 2**20  # ... beyond that, so that small entries always read


def save(graph: Graph, path) -> None:
    """Write ``graph`` to ``path`` (one ``.npz`` file; any file name), atomically.

    Example::

        tg.save(tg.trace(f, x), "f.tg")
    """
    arrays: dict[str, np.ndarray] = {}

    def store(arr: np.ndarray) -> str:
        name = f"const_{len(arrays)}"
        arrays[name] = arr.view(np.uint16) if arr.dtype == _BF16 else arr
        return name

    text = serialize.dumps(serialize.document(graph, store))
    arrays[GRAPH_ENTRY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_atomically(os.fspath(path), lambda f: np.savez(f, allow_pickle=False, **arrays))


def load(path) -> Graph:
    """Read a graph written by `save`; raises `tg.IRError` if the file is not a valid
    tracegraph file (corrupt, truncated, not an npz, missing arrays, malformed graph,
    entries larger than the graph declares).

    Example::

        g = tg.load("f.tg"); g(x)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:  # a missing file is an OSError, not an IRError
        if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise IRError(f"{path}: not a tracegraph file (a bare .npy array, not an archive)")
        f.seek(0)
        try:
            archive = zipfile.ZipFile(f)
        except Exception as e:  # noqa: BLE001 - whatever a damaged file makes zipfile raise
            raise IRError(f"{path}: not a tracegraph file ({type(e).__name__}: {e})") from None
        with archive:
            members = _members(archive, path, os.fstat(f.fileno()).st_size)
            if GRAPH_ENTRY not in members:
                raise IRError(f"{path}: not a tracegraph file (no {GRAPH_ENTRY} entry)")
            raw = _read(archive, members[GRAPH_ENTRY], path, _json_entry_fits)

            def fetch(name: str, t):
                if name == GRAPH_ENTRY or name not in members:
                    raise IRError(f"the file has no array {name!r}")
                return _read(archive, members[name], path,
                             lambda shape, dtype: _constant_fits(t, shape, dtype))

            ir = IRClasses(Graph, Node, Value)
            return serialize.load_document(raw.tobytes(), ir, fetch)


def _members(archive: zipfile.ZipFile, path: str, file_size: int) -> dict:
    """Entry name (``const_0``, without ``.npy``) -> ZipInfo, from the zip directory only;
    refuses what the bounded reader cannot read within its bounds."""
    members: dict = {}
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        if name in members:
            raise IRError(f"{path}: entry {name!r} appears twice in the archive")
        if info.header_offset + info.compress_size > file_size:
            # else a directory could claim a huge stored entry the file does not hold
            raise IRError(f"{path}: entry {name!r} claims {info.compress_size} bytes at "
                          f"offset {info.header_offset}, past the end of the file (truncated?)")
        if info.flag_bits & 0x1:
            raise IRError(f"{path}: entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # bzip2 and lzma inflate without an output bound per call
            raise IRError(f"{path}: entry {name!r} uses zip compression {info.compress_type}, "
                          "not stored or deflated")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise IRError(f"{path}: stored entry {name!r} declares {info.file_size} bytes "
                          f"in {info.compress_size}")
        if (info.compress_type != zipfile.ZIP_STORED
                and info.file_size > info.compress_size * _MAX_INFLATION + _INFLATION_SLACK):
            # tg.save stores every entry: a deflated one comes from another tool, and one
            # that expands this much is a compression bomb, whatever its header declares
            raise IRError(f"{path}: entry {name!r} inflates {info.compress_size} bytes to "
                          f"{info.file_size}, more than {_MAX_INFLATION}x (a compression bomb?)")
        members[name] = info
    return members


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, check) -> np.ndarray:
    """One ``.npy`` entry, read with every size bounded before anything is inflated or
    allocated: the zip directory's size must leave room for no more than a header and the
    data ``check(shape, dtype)`` accepts (it raises IRError otherwise, returning the
    data's byte count); the header is read in bounded pieces; the data goes straight into
    an array of the declared size, and the entry must end exactly there (CRC checked)."""
    name = info.filename.removesuffix(".npy")
    try:
        with archive.open(info) as f:
            shape, fortran, dtype, header_len = _read_header(f, info.file_size)
            nbytes = check(shape, dtype)
            if info.file_size != header_len + nbytes:
                raise IRError(f"holds {info.file_size - header_len} bytes of data, "
                              f"its header declares {nbytes}")
            buf = np.empty(nbytes, np.uint8)
            view, done = memoryview(buf), 0
            while done < nbytes:
                chunk = f.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    raise IRError(f"is truncated after {done} of {nbytes} data bytes")
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
            if f.read(1):  # also checks the CRC, at the end of the entry
                raise IRError("has data after its declared end")
    except IRError as e:
        raise IRError(f"{path}: entry {name!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - corrupt or truncated entry, bad CRC, ...
        raise IRError(f"{path}: entry {name!r} cannot be read ({type(e).__name__}: {e})") from None
    arr = buf.view(dtype)
    if fortran and len(shape) > 1:  # as numpy reads it: the reversed shape, transposed
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


def _read_header(f, file_size: int):
    """(shape, fortran_order, dtype, header bytes) of a ``.npy`` stream, reading at most
    `_MAX_HEADER` bytes; numpy's own header reader then parses the bounded copy."""
    magic = _read_exactly(f, 8, "magic")
    if magic[:6] != _NPY_MAGIC:
        raise IRError("is not a .npy array")
    version = (magic[6], magic[7])
    if version == (1, 0):
        size = _read_exactly(f, 2, "header length")
        length = int.from_bytes(size, "little")
    elif version == (2, 0):
        size = _read_exactly(f, 4, "header length")
        length = int.from_bytes(size, "little")
    else:
        raise IRError(f"unsupported .npy format version {version}")
    if length > _MAX_HEADER or 8 + len(size) + length > file_size:
        raise IRError(f".npy header of {length} bytes is too long")
    body = _read_exactly(f, length, "header")
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    try:
        shape, fortran, dtype = reader(io.BytesIO(size + body))  # after the magic
    except Exception as e:  # noqa: BLE001 - a malformed header dict
        raise IRError(f"bad .npy header ({type(e).__name__}: {e})") from None
    return tuple(shape), fortran, dtype, len(magic) + len(size) + length


def _read_exactly(f, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise IRError(f"is truncated in its .npy {what}")
    return data


def _json_entry_fits(shape, dtype) -> int:
    if dtype != np.uint8 or len(shape) != 1:
        raise IRError(f"holds {dtype}{list(shape)}, not the bytes of a JSON document")
    if shape[0] > serialize.MAX_JSON_BYTES:
        raise IRError(f"JSON document of {shape[0]} bytes exceeds {serialize.MAX_JSON_BYTES}")
    return shape[0]


def _constant_fits(t, shape, dtype) -> int:
    stored = np.dtype(np.uint16) if t.dtype == _BF16 else t.dtype  # bf16 as its bits
    if tuple(shape) != t.shape or dtype not in (stored, t.dtype):
        raise IRError(f"holds {dtype}{list(shape)}, the graph declares {t}")
    return t.size * t.dtype.itemsize
