"""`save` / `load`: a graph in one file.

The file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays): the JSON form of the
graph as the uint8 entry ``__graph__.json``, and every constant as its own array entry
(``const_0``, ``const_1``, ...), which the JSON names with ``{"array": "const_0"}``
instead of inlining base64. bfloat16 constants are stored as their uint16 bit pattern
(the ``.npy`` format cannot name bfloat16 without pickle); the JSON keeps the dtype.

NOTE: saving is atomic — the archive is written to a temporary file in the target's
directory, flushed and fsync'ed, then renamed over the target — so a crash or a failing
save never leaves a half-written file or destroys an existing one. Loading reads with
``allow_pickle=False``, checks each entry's header against the type the graph declares
before reading it (numpy allocates what a header says), and validates the graph as
`Graph.from_json` does.

Example::

    tg.save(g, "mlp.tg")
    g2 = tg.load("mlp.tg")
    assert str(g2) == str(g)
"""

from __future__ import annotations

import os

import numpy as np

from .._atomic import write_atomically
from ..errors import IRError
from . import serialize
from .graph import Graph, Node, Value
from .parser import IRClasses
from .types import DTYPE_NAMES

GRAPH_ENTRY = "__graph__.json"
_BF16 = DTYPE_NAMES.get("bf16")


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
    tracegraph file (corrupt, truncated, not an npz, missing arrays, malformed graph).

    Example::

        g = tg.load("f.tg"); g(x)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:  # a missing file is an OSError, not an IRError
        try:
            npz = np.load(f, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - whatever a damaged file makes numpy raise
            raise IRError(f"{path}: not a tracegraph file ({type(e).__name__}: {e})") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise IRError(f"{path}: not a tracegraph file (a bare .npy array, not an archive)")
        with npz:
            if GRAPH_ENTRY not in npz.files:
                raise IRError(f"{path}: not a tracegraph file (no {GRAPH_ENTRY} entry)")
            raw = _read(npz, GRAPH_ENTRY, path, _json_entry_fits)

            def fetch(name: str, t):
                if name == GRAPH_ENTRY or name not in npz.files:
                    raise IRError(f"the file has no array {name!r}")
                return _read(npz, name, path, lambda shape, dtype: _constant_fits(t, shape, dtype))

            ir = IRClasses(Graph, Node, Value)
            return serialize.load_document(raw.tobytes(), ir, fetch)


def _read(npz, name: str, path: str, check_header) -> np.ndarray:
    """One entry of the archive. Its ``.npy`` header is checked first (``check_header(shape,
    dtype)`` raises IRError), since numpy allocates what the header says before reading:
    a forged header cannot make us allocate more than the graph declares."""
    member = name + ".npy" if name + ".npy" in npz.zip.namelist() else name
    try:
        with npz.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise IRError(f"unsupported .npy format version {version}")
    except IRError as e:
        raise IRError(f"{path}: entry {name!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - corrupt or truncated entry, bad CRC, ...
        raise IRError(f"{path}: entry {name!r} cannot be read ({type(e).__name__}: {e})") from None
    try:
        check_header(shape, dtype)
    except IRError as e:
        raise IRError(f"{path}: entry {name!r}: {e}") from None
    try:
        return npz[name]
    except Exception as e:  # noqa: BLE001 - corrupt or truncated entry, bad CRC, ...
        raise IRError(f"{path}: entry {name!r} cannot be read ({type(e).__name__}: {e})") from None


def _json_entry_fits(shape, dtype):
    if dtype != np.uint8 or len(shape) != 1:
        raise IRError(f"holds {dtype}{list(shape)}, not the bytes of a JSON document")
    if shape[0] > serialize.MAX_JSON_BYTES:
        raise IRError(f"JSON document of {shape[0]} bytes exceeds {serialize.MAX_JSON_BYTES}")


def _constant_fits(t, shape, dtype):
    stored = np.dtype(np.uint16) if t.dtype == _BF16 else t.dtype  # bf16 as its bits
    if tuple(shape) != t.shape or dtype not in (stored, t.dtype):
        raise IRError(f"holds {dtype}{list(shape)}, the graph declares {t}")
