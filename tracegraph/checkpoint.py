"""``tg.checkpoint``: save and load any pytree of arrays — parameters, optimizer states,
`tg.nn.Module`s — in one file, atomically, without pickle.

The file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays): leaf ``i`` is the entry
``a{i}``, in `jax.tree_util` flattening order, and the entry ``__checkpoint__.json`` (a
uint8 array) holds the tree structure, each leaf's path, shape and dtype, the step and
the user's metadata. Anything ``.npy`` cannot hold without pickle (bfloat16, float8 and
the other `ml_dtypes` types) is stored as its unsigned-integer bit pattern; the JSON
keeps the real dtype. Jax arrays are fetched to the host.

A jax array sharded over a mesh keeps its sharding (document version 2): each distinct
block is the entry ``a{i}.{j}`` and the leaf's record holds the blocks' index ranges,
the mesh and the `PartitionSpec` (see `tracegraph._checkpoint_shards`). `load` places a
leaf onto a sharding (``like``'s, or ``shardings=``) with `jax.make_array_from_callback`,
each device's part read from the blocks it meets, so a checkpoint loads onto a mesh of
any shape. With several processes each writes only its own blocks, process ``p`` into
the shard file ``PATH.<token>.p<p>.shards``, and process 0 writes ``PATH`` last.

NOTE: saving is atomic: each archive goes to a temporary file in the target's directory,
which is flushed and fsync'ed, renamed over the target with `os.replace`, and then the
directory is fsync'ed. A crash or kill at any moment leaves the target either as it was
or as the complete new checkpoint — never half-written. A killed save can leave its
``.NAME.<random>.tmp`` file behind; it is never read, and the next save into the folder
deletes it (only such files, and only once their writer is dead: see `tracegraph._atomic`).
A save that the file system refuses (a full disk, a read-only folder) raises
`CheckpointWriteError`, naming the target, and leaves the previous checkpoint as it was.

Loading parses the zip and each ``.npy`` header itself (never pickle), checks the JSON
document key by key, the entries against it (no missing or extra ones) and each array's
header against its declared dtype and shape before reading its data, and verifies every
entry's CRC. Anything malformed is a `CheckpointError` naming the file and the problem,
and nothing is returned until every leaf has been read and checked.

Example::

    tg.checkpoint.save("run/params.ckpt", params, step=1000, metadata={"loss": 0.12})
    params = tg.checkpoint.load("run/params.ckpt", like=params)   # same structure, checked
    tree = tg.checkpoint.load("run/params.ckpt")                  # dicts/lists/tuples
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import re
import secrets
import time
import zipfile
import zlib
from dataclasses import dataclass, field

import jax
import ml_dtypes
import numpy as np
from jax.sharding import Mesh, Sharding

from . import _checkpoint_shards as _shards
from ._atomic import write_atomically
from ._checkpoint_shards import ShardingInfo
from .errors import Error
from .ir.types import KEY_IMPLS, dtype_from_name, dtype_name, is_key, key_data_shape

__all__ = ["CheckpointError", "CheckpointInfo", "CheckpointManager", "CheckpointWriteError",
           "ShardingInfo", "info", "load", "save"]

FORMAT = "tracegraph-checkpoint"
VERSION = 1
VERSION_SHARDED = 2  # leaves may record a sharding; a multi-process save has shard files
META_ENTRY = "__checkpoint__.json"
SHARDS_FORMAT = "tracegraph-checkpoint-shards"
SHARDS_ENTRY = "__shards__.json"
MAX_JSON_BYTES = 256 << 20
_NPY_HEADER_ALLOWANCE = 1 << 16  # an .npy header is far smaller than this
_NPY_MAGIC = b"\x93NUMPY"
_NPY_MIN_HEADER = 10  # magic, version and header length, before the header text
_CHUNK = 1 << 18  # bytes read at a time into a leaf's array (zipfile makes a copy of each)
_MAX_INFLATION = 32  # how much a deflated entry may expand (save stores entries)
_INFLATION_SLACK = 1 << 20  # ... beyond that, so that small entries always read
_MAX_LISTED = 20

_NUMPY_DTYPES = {
    np.dtype(n).name: np.dtype(n)
    for n in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float16", "float32", "float64", "complex64", "complex128")
}
_BIT_DTYPES = {  # stored as the unsigned int of their width
    n: np.dtype(getattr(ml_dtypes, n))
    for n in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3b11fnuz",
              "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e3m4", "float8_e4m3",
              "float8_e8m0fnu", "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn",
              "int4", "uint4", "int2", "uint2")
    if hasattr(ml_dtypes, n)
}
_PY_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex"}
# typed PRNG keys (jax.random.key, what Flax NNX Rngs hold): stored as their u32 data,
# one more axis; named by the key type, so they load back as keys of that implementation
_KEY_DTYPES = {f"key<{impl}>": impl for impl in KEY_IMPLS}


class CheckpointError(Error):
    """A checkpoint cannot be saved (an unsupported leaf, metadata that is not JSON) or
    loaded (a damaged file, or one that does not match ``like``)."""


class CheckpointWriteError(CheckpointError, OSError):
    """The file system refused a save (a full disk, a read-only folder, a missing one).

    The message names the target, not the temporary file; ``errno``, ``strerror`` and
    ``filename`` (the target) are those of an `OSError`, which it also is, and the
    original error is its ``__cause__``. The previous checkpoint, if any, is unchanged.
    """

    def __init__(self, path: str, cause: OSError):
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(cause.errno, reason, path)
        kept = ("the previous checkpoint there is unchanged" if os.path.isfile(path)
                else "no file was written")
        self.message = f"{path}: cannot save the checkpoint ({reason}); {kept}"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # OSError pickles its args, which is not our signature
        return (_rebuild_write_error, (self.filename, self.errno, self.strerror, self.message))


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """`load`/`info` of a path where no file is; also the `FileNotFoundError` that
    ``open`` raises (``errno``, ``filename``)."""

    def __init__(self, path: str, cause: OSError):
        super().__init__(cause.errno, cause.strerror, path)
        self.message = f"{path}: no checkpoint there ({cause.strerror})"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (_rebuild_not_found, (self.filename, self.errno, self.strerror, self.message))


def _rebuild_not_found(path, errno, strerror, message):
    e = CheckpointNotFoundError(path, OSError(errno, strerror))
    e.message = message
    return e


def _rebuild_write_error(path, errno, strerror, message):
    e = CheckpointWriteError(path, OSError(errno, strerror))
    e.message = message
    return e


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds, read without loading its arrays (see `info`)."""

    step: int | None
    metadata: object
    leaves: tuple  # ((path, shape, dtype name), ...)
    shardings: tuple = ()  # per leaf: a ShardingInfo, or None (saved as one array)


# --------------------------------------------------------------------------------------
# save


def save(path, tree, *, step: int | None = None, metadata=None) -> None:
    """Write ``tree`` (a pytree of arrays) to ``path`` atomically.

    Arguments:
        path: the file to write (any name; ``.ckpt`` by convention). Its directory must
            exist. An existing file is replaced only once the new one is complete; if
            the file system refuses the write (a full disk, no permission) it is left
            as it was and `CheckpointWriteError` (an `OSError` too) names ``path``.
        tree: dicts (str or int keys), lists, tuples, None, and registered pytree nodes
            (`tg.nn.Module`, optax states, ...) with numpy/jax arrays or Python scalars
            as leaves. A jax array sharded over a mesh keeps its sharding: each distinct
            shard is stored once, with its place in the array and the mesh and
            `PartitionSpec` (`load` puts it back on any mesh, see ``shardings=``).
        step: an optional training step, returned by `info`.
        metadata: anything JSON can hold (a dict of hyper-parameters, a loss value).

    With several processes (`jax.distributed.initialize`) and arrays whose shards live
    in several of them, every process calls ``save`` with the same tree and path (a
    folder all of them see): each writes only its own shards, to
    ``PATH.<token>.p<process>.shards``, and process 0 writes ``path`` itself last, once
    all the others have written theirs, so a crash never leaves a checkpoint that looks
    complete. The processes agree through three tiny collectives.

    Example::

        tg.checkpoint.save("params.ckpt", {"w": w, "b": b}, step=10)
    """
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise CheckpointError(f"save: step must be an int or None, got {step!r}")
    began = time.time()
    saving = _Saving(distributed=_any_distributed(tree))
    structure = _encode(tree, (), saving)
    leaves = saving.leaves
    sharded = any(s.get("sharding") for s in leaves)
    processes: list = []  # those that write shard files, besides process 0
    doc = {"format": FORMAT, "version": VERSION_SHARDED if sharded else VERSION,
           "step": None if step is None else int(step), "metadata": metadata,
           "tree": structure, "leaves": leaves}
    if sharded:
        for s in leaves:
            s.setdefault("sharding", None)
        processes = sorted({sh["file"] for s in leaves if s["sharding"]
                            for sh in s["sharding"]["shards"]} - {0})
        doc["shard_files"] = None  # set below, once the processes agree on a token
    try:
        json.dumps(doc, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"save: metadata must be JSON-serializable ({e})") from None
    target = os.fspath(path)
    if not saving.distributed:
        _write_file(target, doc, saving.entries)
        _remove_orphan_shards(target, None, began)
    else:
        _save_distributed(target, doc, saving, processes, began)


@dataclass
class _Saving:
    """What `_encode` collects: the leaf records, this process's entries of the
    checkpoint file (``entries``) and of its own shard file (``side``)."""

    distributed: bool
    leaves: list = field(default_factory=list)
    entries: dict = field(default_factory=dict)
    side: dict = field(default_factory=dict)


def _any_distributed(tree) -> bool:
    try:
        return any(_shards.is_distributed(x) for x in jax.tree_util.tree_leaves(tree))
    except Exception:  # noqa: BLE001 - _encode reports what cannot be flattened
        return False


def _write_file(target: str, doc: dict, entries: dict, entry: str = META_ENTRY) -> None:
    text = json.dumps(doc, ensure_ascii=False)
    archive = {entry: np.frombuffer(text.encode("utf-8"), np.uint8), **entries}
    try:
        write_atomically(target, lambda f: _write_archive(f, archive), remove_stale=True)
    except OSError as e:  # its filename is the temp file's; name the target instead
        raise CheckpointWriteError(target, e) from e


def _save_distributed(target: str, doc: dict, saving: _Saving, processes: list,
                      began: float) -> None:
    """Every process writes its own shards; process 0 writes the checkpoint file last.

    NOTE: three collectives: (1) agree on process 0's random token (the shard files'
    names, new for every save, so the previous checkpoint's files are never overwritten)
    and check that every process saves the same tree; (2) after the shard files, did
    every process write its own; (3) after process 0 wrote ``target``, did it. A failure
    anywhere makes every process raise and remove its new shard file; ``target`` and the
    files it names are then as they were."""
    me = jax.process_index()
    digest = zlib.crc32(json.dumps([os.path.basename(target), doc["tree"], doc["leaves"]]).encode())
    words = np.frombuffer(secrets.token_bytes(8), ">u4")
    got = _shards.allgather(np.array([*words, digest], np.uint32))
    if len(set(got[:, 2].tolist())) != 1:
        others = [p for p in range(len(got)) if got[p, 2] != got[0, 2]]
        raise CheckpointError(f"save: process {others[0]} saves another tree than process 0 "
                              f"(other leaves, shapes, dtypes or shardings) or to another file "
                              f"name; every process must save the same tree to {target}")
    token = f"{int(got[0, 0]):08x}{int(got[0, 1]):08x}"
    doc["shard_files"] = {"token": token, "processes": processes} if processes else None
    mine = _side_path(target, token, me)
    error = None
    if me != 0 and saving.side:
        side_doc = {"format": SHARDS_FORMAT, "version": 1, "token": token, "process": me}
        try:
            _write_file(mine, side_doc, saving.side, SHARDS_ENTRY)
        except Exception as e:  # noqa: BLE001 - reported after the others know
            error = e
    oks = _shards.allgather(np.array([error is None], np.uint32))[:, 0]
    if oks.all() and me == 0:
        try:
            _write_file(target, doc, saving.entries)
        except Exception as e:  # noqa: BLE001 - reported after the others know
            error = e
    written = oks.all() and bool(_shards.allgather(np.array([error is None], np.uint32))[0, 0])
    if not written:
        with contextlib.suppress(OSError):
            os.unlink(mine)
        if isinstance(error, CheckpointWriteError):
            raise CheckpointWriteError(target, error.__cause__) from error.__cause__
        if error is not None:
            raise error
        who = int(np.flatnonzero(oks == 0)[0]) if not oks.all() else 0
        kept = ("the previous checkpoint there is unchanged" if os.path.isfile(target)
                else "no checkpoint was written")
        raise CheckpointError(f"{target}: cannot save the checkpoint, process {who} could not "
                              f"write its part; {kept}")
    if me == 0:
        _remove_orphan_shards(target, token, began)


def _side_path(target: str, token: str, process: int) -> str:
    """The shard file of ``process`` for the checkpoint ``target`` saved with ``token``."""
    return f"{target}.{token}.p{process:05d}.shards"


def _side_files(target: str) -> dict:
    """``{name: token}`` of the shard files next to ``target`` (any save's)."""
    folder, base = os.path.split(os.path.abspath(target))
    pattern = re.compile(re.escape(base) + r"\.([0-9a-f]{16})\.p\d{5,}\.shards")
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    return {os.path.join(folder, n): m.group(1) for n in names if (m := pattern.fullmatch(n))}


def _remove_orphan_shards(target: str, token: str | None, before: float) -> None:
    """Delete the shard files of ``target`` that its current save (``token``) does not
    use: those of the checkpoint it replaced, and of saves killed before they finished.
    Only files last modified before this save began (``before``) are candidates."""
    for name, t in _side_files(target).items():
        if t == token:
            continue
        with contextlib.suppress(OSError):
            if os.lstat(name).st_mtime < before:
                os.unlink(name)


def _remove_checkpoint(target: str) -> None:
    """Delete a checkpoint: its file first (so it never names missing shard files), then
    its shard files."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    for name in _side_files(target):
        with contextlib.suppress(OSError):
            os.unlink(name)


def _encode(node, path: tuple, saving: _Saving):
    """The JSON structure of ``node``; appends its leaves to ``saving`` in
    `jax.tree_util` flattening order (so ``like=`` can pair them by position)."""
    if node is None:
        return None
    try:
        children = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
    except Exception as e:  # noqa: BLE001 - e.g. dict keys that cannot be sorted
        raise CheckpointError(f"save: cannot flatten the {type(node).__name__} at "
                              f"{_path_str(path) or 'the root'} ({e})") from None
    if len(children) == 1 and children[0][0] == () and children[0][1] is node:
        return {"leaf": _store_leaf(node, path, saving)}
    if type(node) is dict:
        for k in node:
            if isinstance(k, bool) or type(k) not in (str, int):
                raise CheckpointError(f"save: dict key {k!r} at {_path_str(path) or 'the root'} "
                                      f"is not a str or int")
    keys = [_key_name(p[0]) for p, _ in children]
    encoded = [_encode(child, path + (k,), saving) for k, (_, child) in zip(keys, children)]
    if type(node) is dict:
        by_key = dict(zip(keys, encoded))
        return {"dict": [[k, by_key[k]] for k in node]}  # the dict's own key order
    if type(node) is list:
        return {"list": encoded}
    if type(node) is tuple:
        return {"tuple": encoded}
    cls = type(node)
    return {"node": f"{cls.__module__}.{cls.__qualname__}", "keys": keys, "children": encoded}


def _key_name(entry):
    """A path entry of `jax.tree_util` as a plain str or int."""
    for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
        if hasattr(entry, attr):
            k = getattr(entry, attr)
            return k if isinstance(k, (str, int)) and not isinstance(k, bool) else str(k)
    return str(entry)


def _path_str(path) -> str:
    return "/".join(str(k) for k in path)


def _store_leaf(leaf, path, saving: _Saving) -> int:
    where = _path_str(path) or "<root>"
    py = _PY_SCALARS.get(type(leaf))
    i = len(saving.leaves)
    key = is_key(getattr(leaf, "dtype", None))
    if key:
        try:
            name = dtype_name(leaf.dtype)  # key<threefry2x32>
        except Error as e:
            raise CheckpointError(f"save: leaf {where}: {e}") from None
    if _shards.is_sharded(leaf):
        try:
            data = jax.random.key_data(leaf) if key else leaf
            record, mine = _shards.layout(leaf, data, saving.distributed)
            name = name if key else np.dtype(leaf.dtype).name
            if name not in _NUMPY_DTYPES and name not in _BIT_DTYPES and not key:
                raise ValueError(f"dtype {leaf.dtype}; a checkpoint holds numeric arrays")
            into = saving.side if saving.distributed and jax.process_index() != 0 else saving.entries
            for j, shard in mine:
                into[f"a{i}.{j}"] = _stored(np.asarray(shard))
        except Exception as e:  # noqa: BLE001 - a deleted array, a sharding we cannot lay out
            raise CheckpointError(f"save: leaf {where} ({type(leaf).__name__}, sharded) cannot be "
                                  f"saved ({e})") from None
        saving.leaves.append({"path": _path_str(path), "shape": list(leaf.shape), "dtype": name,
                              "py": None, "sharding": record})
        return i
    if key:
        saving.entries[f"a{i}"] = np.asarray(jax.random.key_data(leaf))
        saving.leaves.append({"path": _path_str(path), "shape": list(leaf.shape), "dtype": name,
                              "py": None})
        return i
    try:
        arr = np.asarray(leaf)  # jax arrays come to the host here
    except Exception as e:  # noqa: BLE001 - a traced value, an arbitrary object
        raise CheckpointError(f"save: leaf {where} ({type(leaf).__name__}) is not an array "
                              f"({e})") from None
    name = arr.dtype.name
    if not (name in _NUMPY_DTYPES and arr.dtype == _NUMPY_DTYPES[name]) and name not in _BIT_DTYPES:
        raise CheckpointError(f"save: leaf {where} has dtype {arr.dtype} "
                              f"({type(leaf).__name__}); a checkpoint holds numeric arrays")
    saving.entries[f"a{i}"] = _stored(arr)
    saving.leaves.append({"path": _path_str(path), "shape": list(arr.shape), "dtype": name, "py": py})
    return i


def _stored(arr: np.ndarray) -> np.ndarray:
    """``arr`` as the .npy file holds it: ml_dtypes types as their unsigned bit pattern."""
    return arr.view(np.dtype(f"u{arr.dtype.itemsize}")) if arr.dtype.name in _BIT_DTYPES else arr


def _write_archive(f, archive: dict) -> None:
    np.savez(f, allow_pickle=False, **archive)


# --------------------------------------------------------------------------------------
# load


def load(path, like=None, *, strict: bool = True, shardings=None):
    """Read a checkpoint written by `save`.

    Arguments:
        path: the file.
        like: a pytree of the expected structure (e.g. freshly initialized parameters, a
            `tg.nn.Module`, an optax state; its leaves may be arrays or
            ``jax.ShapeDtypeStruct``s). The loaded leaves are put into ``like``'s
            structure after checking that every leaf's shape and dtype match; all
            mismatches are listed in one `CheckpointError`. A leaf of ``like`` that is a
            jax array laid out over several devices or a mesh, or a
            ``ShapeDtypeStruct`` with a ``sharding``, is loaded onto that sharding.
        strict: with ``like``, leaves are paired by their paths (names such as
            ``layers/0/w``), which must be the same in both. With ``strict=False`` a tree
            whose names differ is paired by position instead (same leaf count needed).
        shardings: where to place the leaves instead: a `jax.sharding.Mesh` (each leaf
            saved with a `PartitionSpec` gets that spec over this mesh, whose axis names
            must include the spec's; the sizes may differ), one `Sharding` for every
            array leaf, or (with ``like``) a pytree of ``like``'s structure with a
            `Sharding` or None (a host array) per leaf.

    Returns:
        the tree, with numpy arrays as leaves (Python scalars where a Python scalar was
        saved), or `jax.Array`s where a sharding was given. A placed leaf is built with
        `jax.make_array_from_callback`: each process reads only the saved shards that
        overlap its own devices' parts, so a checkpoint loads onto a mesh of another
        shape and no process holds a whole array it only needs part of. Without
        ``like``, dicts, lists, tuples and None come back as saved, and a registered
        class (a Module, an optax state) as a dict of its fields — or a tuple, when its
        children have no names.

    Raises:
        CheckpointError: the file is not a checkpoint, is damaged in any way, or does
            not match ``like`` (or a leaf cannot be placed as asked); the message names
            the file and what is wrong. A missing file is a `CheckpointNotFoundError`
            (also a `FileNotFoundError`); another unreadable file is the `OSError` of
            ``open``.

    Example::

        params = tg.checkpoint.load("params.ckpt", like=init_params)
        params = tg.checkpoint.load("params.ckpt", like=params, shardings=mesh)
    """
    path = os.fspath(path)
    with _open_checkpoint(path) as reader:
        specs = reader.doc["leaves"]
        if like is None:
            targets = _targets_without_like(shardings, specs, path)
            leaves = [reader.read_leaf(i, t) for i, t in enumerate(targets)]
            try:
                return _decode(reader.doc["tree"], leaves)
            except RecursionError:
                raise CheckpointError(f"{path}: damaged checkpoint, the tree is nested too "
                                      f"deeply to rebuild") from None
        flat, treedef, like_paths, order, problems = _pair_like(like, specs, strict)
        targets = _targets_of_like(flat, treedef, order, specs, shardings, like_paths, problems)
        _raise_mismatch(path, problems)
        leaves = [reader.read_leaf(i, t) for i, t in zip(order, targets)]
    return _into_like(flat, treedef, like_paths, order, leaves, specs, path)


def info(path) -> CheckpointInfo:
    """Step, metadata and ``(path, shape, dtype)`` of each leaf, without reading arrays;
    ``shardings`` says how each leaf was sharded (a `ShardingInfo`, or None).

    The document, the archive's entries (and a sharded checkpoint's shard files) and each
    array's ``.npy`` header are checked as `load` checks them (raising
    `CheckpointError`); the arrays' data are not read.

    Example::

        tg.checkpoint.info("params.ckpt").step
    """
    path = os.fspath(path)
    with _open_checkpoint(path) as reader:
        reader.check_headers()
        doc = reader.doc
    leaves = tuple((s["path"], tuple(s["shape"]), s["dtype"]) for s in doc["leaves"])
    shardings = tuple(_shards.info_of(s.get("sharding")) for s in doc["leaves"])
    return CheckpointInfo(doc["step"], doc["metadata"], leaves, shardings)


@contextlib.contextmanager
def _open_checkpoint(path: str):
    """A `_Reader` of the checkpoint: its document checked, its entries and those of
    its shard files checked against it (sizes, names); no array data read yet."""
    with _open_archive(path) as zf, contextlib.ExitStack() as stack:
        doc = _read_document(zf, path)
        expected = _expected_entries(doc)
        _check_entries(zf, path, expected.get(0, {}), META_ENTRY, len(doc["leaves"]))
        archives = {0: (zf, path)}
        side = doc.get("shard_files")
        for p in side["processes"] if side else ():
            spath = _side_path(path, side["token"], p)
            try:
                szf = stack.enter_context(_open_archive(spath))
            except CheckpointNotFoundError:
                raise CheckpointError(f"{path}: incomplete checkpoint, the shard file of process "
                                      f"{p} ({os.path.basename(spath)}) is missing; a sharded "
                                      f"checkpoint's shard files keep their names next to "
                                      f"it") from None
            _read_side_document(szf, spath, side["token"], p)
            _check_entries(szf, spath, expected[p], SHARDS_ENTRY, None)
            archives[p] = (szf, spath)
        yield _Reader(path, doc, archives)


class _Reader:
    """Reads the leaves of an open checkpoint (see `_open_checkpoint`)."""

    def __init__(self, path: str, doc: dict, archives: dict):
        self.path, self.doc, self.archives = path, doc, archives

    def _blocks(self, i: int):
        """Leaf ``i``'s stored dtype and shape, its blocks and their (file, entry) names."""
        spec = self.doc["leaves"][i]
        storage, shape = _storage(spec)
        record = spec.get("sharding")
        if record is None:
            return storage, shape, [tuple((0, n) for n in shape)], [(0, f"a{i}")]
        blocks = [tuple(tuple(r) for r in s["index"]) for s in record["shards"]]
        return storage, shape, blocks, [(s["file"], f"a{i}.{j}") for j, s in enumerate(record["shards"])]

    def _entry(self, spec: dict, where: tuple, storage, shape, header_only: bool = False):
        file, name = where
        zf, fpath = self.archives[file]
        try:
            return _read_npy(zf, name, fpath, storage, shape, header_only)
        except _HeaderMismatch as e:
            raise CheckpointError(f"{fpath}: damaged checkpoint, leaf {spec['path'] or '<root>'} "
                                  f"({name}) is {e.dtype}{list(e.shape)}, its header says "
                                  f"{storage}{list(shape)}") from None

    def check_headers(self) -> None:
        for i, spec in enumerate(self.doc["leaves"]):
            storage, _, blocks, names = self._blocks(i)
            for block, where in zip(blocks, names):
                self._entry(spec, where, storage, tuple(b - a for a, b in block), True)

    def read_leaf(self, i: int, target=None):
        """Leaf ``i``: on the host (numpy, or a Python scalar as saved), or placed with the
        sharding ``target``, each device's part read from the blocks that overlap it."""
        spec = self.doc["leaves"][i]
        storage, shape, blocks, names = self._blocks(i)

        def read(j):
            return self._entry(spec, names[j], storage, tuple(b - a for a, b in blocks[j]))

        if target is None:
            whole = _shards.region(blocks, tuple((0, n) for n in shape), storage, read)
            return _host_leaf(whole, spec)
        cache: dict = {}

        def cached(j):  # a block that several of this process's devices need is read once
            if j not in cache:
                cache[j] = read(j)
            return cache[j]

        name, leaf_shape = spec["dtype"], tuple(spec["shape"])
        whole_key = tuple((0, n) for n in shape[len(leaf_shape):])  # a key's u32 data
        if name in _KEY_DTYPES:
            dtype = dtype_from_name(name)

            def convert(a):
                return jax.random.wrap_key_data(a, impl=_KEY_DTYPES[name])
        else:
            dtype = _BIT_DTYPES.get(name, storage)

            def convert(a):
                return a.view(dtype)
        try:
            return _shards.place(leaf_shape, target, dtype, lambda ranges: convert(
                _shards.region(blocks, ranges + whole_key, storage, cached)))
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - what jax says of a sharding it cannot use
            raise CheckpointError(f"{self.path}: cannot place leaf {spec['path'] or '<root>'} "
                                  f"with {target} ({type(e).__name__}: {e})") from None


def _host_leaf(arr: np.ndarray, spec: dict):
    """A leaf's stored array as `load` returns it on the host."""
    name = spec["dtype"]
    if name in _BIT_DTYPES:
        arr = arr.view(_BIT_DTYPES[name])
    if name in _KEY_DTYPES:
        return jax.random.wrap_key_data(arr, impl=_KEY_DTYPES[name])
    py = spec["py"]
    if py is not None:  # _validate checked that the kind fits the dtype
        return {"bool": bool, "int": int, "float": float, "complex": complex}[py](arr[()])
    return arr


@contextlib.contextmanager
def _open_archive(path: str):
    """The checkpoint's zip directory, opened (nothing of the entries read yet)."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - other OSErrors of open are raised as they are
    except FileNotFoundError as e:
        raise CheckpointNotFoundError(path, e) from None
    with f:
        try:
            head = f.read(len(_NPY_MAGIC))
            f.seek(0)
            if not head:
                raise CheckpointError(f"{path}: not a checkpoint, the file is empty")
            if head == _NPY_MAGIC:
                raise CheckpointError(f"{path}: not a checkpoint (a bare .npy array, not an "
                                      f"archive)")
            zf = zipfile.ZipFile(f)
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a damaged zip makes zipfile raise
            raise CheckpointError(f"{path}: not a readable checkpoint, the file is damaged or "
                                  f"truncated ({type(e).__name__}: {e})") from None
        zf.tg_file_size = os.fstat(f.fileno()).st_size  # for _check_entry_size
        with zf:
            yield zf


def _check_unique(zf, path: str) -> list:
    names = zf.namelist()
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"{path}: damaged checkpoint, entries appear twice: "
                              f"{_listed(dups)}")
    return names


def _read_json(zf, path: str, entry: str):
    raw = _read_npy(zf, entry, path, np.dtype(np.uint8), None)
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint, {entry} is not valid JSON "
                              f"({e})") from None


def _read_document(zf, path: str) -> dict:
    """The checked JSON document (the archive's entries are checked against it by
    `_check_entries`)."""
    if META_ENTRY + ".npy" not in _check_unique(zf, path):
        raise CheckpointError(f"{path}: not a tracegraph checkpoint (no {META_ENTRY} entry)")
    doc = _read_json(zf, path, META_ENTRY)
    try:
        _validate(doc)
    except (TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint, bad {META_ENTRY}: {e}") from None
    return doc


def _read_side_document(zf, path: str, token: str, process: int) -> None:
    """Check that the shard file ``path`` is process ``process``'s of the save ``token``."""
    if SHARDS_ENTRY + ".npy" not in _check_unique(zf, path):
        raise CheckpointError(f"{path}: damaged checkpoint, not a shard file (no {SHARDS_ENTRY} "
                              f"entry)")
    doc = _read_json(zf, path, SHARDS_ENTRY)
    want = {"format": SHARDS_FORMAT, "version": 1, "token": token, "process": process}
    if not isinstance(doc, dict) or doc != want or any(type(doc[k]) is not type(want[k]) for k in want):
        raise CheckpointError(f"{path}: damaged checkpoint, the shard file says "
                              f"{str(doc)[:120]}, not {want}")


def _expected_entries(doc: dict) -> dict:
    """``{file: {entry: (stored dtype, shape)}}``: file 0 is the checkpoint itself, file
    ``p`` the shard file of process ``p``."""
    files: dict = {0: {}}
    for i, spec in enumerate(doc["leaves"]):
        storage, shape = _storage(spec)
        record = spec.get("sharding")
        if record is None:
            files[0][f"a{i}"] = (storage, shape)
            continue
        for j, s in enumerate(record["shards"]):
            files.setdefault(s["file"], {})[f"a{i}.{j}"] = (
                storage, tuple(b - a for a, b in s["index"]))
    return files


def _check_entries(zf, path: str, expected: dict, meta: str, leaves: int | None) -> None:
    """The archive holds exactly the ``expected`` entries (and ``meta``), each of a size
    that can hold its declared bytes and no more."""
    present = set(zf.namelist())
    missing = [n for n in expected if n + ".npy" not in present]
    if missing:
        what = f"the entry {missing[0]!r} is" if len(missing) == 1 else \
            f"the entries {_listed(missing)} are"
        raise CheckpointError(f"{path}: damaged checkpoint, {what} missing")
    extra = sorted(present - {n + ".npy" for n in expected} - {meta + ".npy"})
    if extra:
        declares = f" (it declares {leaves} leaves)" if leaves is not None else ""
        raise CheckpointError(f"{path}: damaged checkpoint, unexpected entries "
                              f"{_listed(extra)}{declares}")
    for name, (storage, shape) in expected.items():
        _check_entry_size(zf, name, _nbytes(storage, shape), path)


def _listed(names) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _storage(spec: dict) -> tuple[np.dtype, tuple]:
    """The dtype an entry is stored as (bit patterns for ml_dtypes) and its shape."""
    name = spec["dtype"]
    if name in _NUMPY_DTYPES:
        return _NUMPY_DTYPES[name], tuple(spec["shape"])
    if name in _KEY_DTYPES:
        return np.dtype(np.uint32), tuple(spec["shape"]) + key_data_shape(dtype_from_name(name))
    return np.dtype(f"u{_BIT_DTYPES[name].itemsize}"), tuple(spec["shape"])


def _nbytes(dtype: np.dtype, shape: tuple) -> int:
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


def _check_entry_size(zf, name: str, nbytes: int, path: str,
                      max_bytes: int | None = None) -> zipfile.ZipInfo:
    """The entry's zip record, refusing sizes that cannot hold ``nbytes`` of data (or
    that hold more than ``max_bytes``, default ``nbytes``), so that a forged header
    cannot make us allocate more than the checkpoint says it holds; and refusing an
    entry that the file is too short to hold, or that inflates more than
    `_MAX_INFLATION` times (`save` stores entries uncompressed), so that a forged
    document cannot make us allocate more than the file holds."""
    zi = zf.getinfo(name + ".npy")
    size = zi.file_size
    limit = nbytes if max_bytes is None else max_bytes
    if size > limit + _NPY_HEADER_ALLOWANCE:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} holds {size} bytes, "
                              f"more than its declared {limit}")
    if size < nbytes + _NPY_MIN_HEADER:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} holds {size} bytes, "
                              f"less than its declared {nbytes}")
    if zi.flag_bits & 0x1:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} is encrypted")
    if zi.compress_type == zipfile.ZIP_STORED and zi.compress_size != size:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} is stored with "
                              f"{zi.compress_size} bytes but declares {size}")
    file_size = getattr(zf, "tg_file_size", None)
    if file_size is not None and zi.header_offset + zi.compress_size > file_size:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} claims "
                              f"{zi.compress_size} bytes at offset {zi.header_offset}, past the "
                              f"end of the file (truncated?)")
    if zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} uses zip "
                              f"compression {zi.compress_type}, not stored or deflated")
    if zi.compress_type != zipfile.ZIP_STORED and \
            size > zi.compress_size * _MAX_INFLATION + _INFLATION_SLACK:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} inflates "
                              f"{zi.compress_size} bytes to {size}, more than {_MAX_INFLATION}x "
                              f"(a compression bomb?)")
    return zi


def _read_npy(zf, name: str, path: str, dtype: np.dtype, shape: tuple | None,
              header_only: bool = False):
    """Entry ``name`` as an array of ``dtype`` and ``shape`` (``None``: the document, any
    1-D length up to `MAX_JSON_BYTES`). Its ``.npy`` header is checked before any data is
    read; then exactly the declared bytes are read, and the entry's CRC checked. With
    ``header_only``, only the header is checked (and None returned)."""
    if shape is None:
        zi = _check_entry_size(zf, name, 0, path, MAX_JSON_BYTES)
    else:
        zi = _check_entry_size(zf, name, _nbytes(dtype, shape), path)
    what = f"entry {name!r}"
    try:
        with zf.open(zi) as m:
            version = np.lib.format.read_magic(m)
            if version == (1, 0):
                have_shape, fortran, have = np.lib.format.read_array_header_1_0(m)
            elif version == (2, 0):
                have_shape, fortran, have = np.lib.format.read_array_header_2_0(m)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            same_type = have.newbyteorder("<") == dtype.newbyteorder("<")
            if shape is None:
                if not same_type or len(have_shape) != 1 or \
                        have_shape[0] > MAX_JSON_BYTES:
                    raise CheckpointError(f"{path}: damaged checkpoint, {name} is "
                                          f"{have}{list(have_shape)}, not bytes")
                shape = tuple(have_shape)
            elif not same_type or tuple(have_shape) != shape:
                raise _HeaderMismatch(have, have_shape)
            if header_only:
                return None
            nbytes = _nbytes(have, shape)
            arr = np.empty(nbytes // have.itemsize, have)
            view = arr.view(np.uint8)
            done = 0
            while done < nbytes:
                n = m.readinto(view[done:done + _CHUNK])
                if not n:
                    raise ValueError(f"the data ends after {done} of {nbytes} bytes")
                done += n
            if m.read(1):  # reading to the end also checks the CRC
                raise ValueError(f"bytes after the {nbytes} declared ones")
    except (CheckpointError, _HeaderMismatch):
        raise
    except Exception as e:  # noqa: BLE001 - corrupt or truncated entry, bad CRC, ...
        raise CheckpointError(f"{path}: damaged checkpoint, {what} cannot be read "
                              f"({type(e).__name__}: {e})") from None
    if have != dtype:
        arr = arr.astype(dtype)  # written on a machine of the other byte order
    return arr.reshape(shape, order="F" if fortran else "C")


class _HeaderMismatch(Exception):
    """An entry's .npy header disagrees with the document (reported by the caller, who
    knows the leaf's name)."""

    def __init__(self, dtype, shape):
        super().__init__(dtype, shape)
        self.dtype, self.shape = dtype, tuple(shape)


_DOC_KEYS = ("format", "version", "step", "metadata", "tree", "leaves")
_LEAF_KEYS = ("path", "shape", "dtype", "py")
_PY_KINDS = {"bool": "b", "int": "iu", "float": "f", "complex": "c"}  # dtype kinds
_LIKE_KINDS = {"bool": "b", "int": "biu", "float": "biuf", "complex": "biufc"}  # lossless-ish


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_keys(d: dict, keys: tuple, what: str) -> None:
    missing = [k for k in keys if k not in d]
    extra = [k for k in d if k not in keys]
    if missing or extra:
        raise ValueError(f"{what} " + " and ".join(
            ([f"lacks {_listed(missing)}"] if missing else [])
            + ([f"has unexpected keys {_listed(extra)}"] if extra else [])))


def _validate(doc) -> None:
    """Check the document's every key and type; raises ValueError or TypeError."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT!r}")
    version = doc.get("version")
    if not _is_int(version) or version not in (VERSION, VERSION_SHARDED):
        raise ValueError(f"version {version!r} is not supported (this tracegraph "
                         f"reads versions {VERSION} and {VERSION_SHARDED})")
    sharded = version == VERSION_SHARDED
    _check_keys(doc, _DOC_KEYS + (("shard_files",) if sharded else ()), "the document")
    step = doc["step"]
    if step is not None and not _is_int(step):
        raise TypeError(f"step {step!r} is not an int")
    files = {0}
    side = doc.get("shard_files")
    if side is not None:
        if not isinstance(side, dict) or set(side) != {"token", "processes"} \
                or not isinstance(side["token"], str) \
                or not _shards.TOKEN.fullmatch(side["token"]) \
                or not isinstance(side["processes"], list) or not side["processes"] \
                or not all(_is_int(p) and 1 <= p < _shards.MAX_SHARDS for p in side["processes"]) \
                or side["processes"] != sorted(set(side["processes"])):
            raise ValueError(f"bad shard_files {str(side)[:80]}")
        files |= set(side["processes"])
    leaves = doc["leaves"]
    if not isinstance(leaves, list):
        raise TypeError("leaves is not a list")
    used_files = {0}
    for i, s in enumerate(leaves):
        if not isinstance(s, dict):
            raise TypeError(f"leaf {i} is not an object")
        _check_keys(s, _LEAF_KEYS + (("sharding",) if sharded else ()), f"leaf {i}")
        if not isinstance(s["path"], str):
            raise TypeError(f"leaf {i} has a path {s['path']!r} that is not a string")
        shape = s["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise ValueError(f"leaf {i} has a bad shape {str(shape)[:80]}")
        dtype = s["dtype"]
        if not isinstance(dtype, str) or (
            dtype not in _NUMPY_DTYPES and dtype not in _BIT_DTYPES and dtype not in _KEY_DTYPES
        ):
            raise ValueError(f"leaf {i} has an unknown dtype {str(dtype)[:80]!r}")
        py = s["py"]
        if py is not None and (not isinstance(py, str) or py not in _PY_KINDS or shape
                               or dtype not in _NUMPY_DTYPES
                               or _NUMPY_DTYPES[dtype].kind not in _PY_KINDS[py]):
            raise ValueError(f"leaf {i} has a bad scalar kind {str(py)[:80]!r} for "
                             f"{dtype}{shape}")
        record = s.get("sharding")
        if record is not None:
            if py is not None:
                raise ValueError(f"leaf {i} is a sharded Python scalar")
            _shards.validate(record, _storage(s)[1], files, f"leaf {i}")
            used_files |= {sh["file"] for sh in record["shards"]}
    if used_files != files:
        unused = sorted(files - used_files)
        raise ValueError(f"shard_files lists process {unused[0]}, which holds no shard")
    used: list[list] = [[] for _ in leaves]  # where each leaf sits in the tree
    _validate_tree(doc["tree"], (), used)
    if any(len(w) != 1 for w in used):
        raise ValueError("the tree does not use every leaf exactly once")
    for i, (where,) in enumerate(used):  # like= pairs leaves by these paths
        if leaves[i]["path"] != _path_str(where):
            raise ValueError(f"leaf {i} is named {leaves[i]['path'][:80]!r} but sits at "
                             f"{_path_str(where)[:80]!r} in the tree")


def _validate_tree(node, where: tuple, used: list) -> None:
    """Check one tree node (at path ``where``); records where each leaf sits."""
    if node is None:
        return
    if not isinstance(node, dict) or set(node) not in (
            {"leaf"}, {"dict"}, {"list"}, {"tuple"}, {"node", "keys", "children"}):
        raise ValueError(f"bad tree node {str(node)[:80]!r} at {_path_str(where) or 'the root'}")
    if "leaf" in node:
        i = node["leaf"]
        if not _is_int(i) or not 0 <= i < len(used):
            raise ValueError(f"bad leaf index {str(i)[:80]!r}")
        used[i].append(where)
    elif "dict" in node:
        items = node["dict"]
        if not isinstance(items, list):
            raise ValueError("bad dict node")
        seen = set()
        for item in items:
            if not isinstance(item, list) or len(item) != 2 or not (
                    isinstance(item[0], str) or _is_int(item[0])) or item[0] in seen:
                raise ValueError(f"bad dict item {str(item)[:80]!r}")
            seen.add(item[0])
            _validate_tree(item[1], where + (item[0],), used)
    elif "node" in node:
        keys, kids = node["keys"], node["children"]
        if not isinstance(node["node"], str) or not isinstance(keys, list) \
                or not isinstance(kids, list) or len(keys) != len(kids) \
                or not all(isinstance(k, str) or _is_int(k) for k in keys):
            raise ValueError("bad custom node")
        for k, c in zip(keys, kids):
            _validate_tree(c, where + (k,), used)
    else:
        kids = node.get("list", node.get("tuple"))
        if not isinstance(kids, list):
            raise ValueError("bad list/tuple node")
        for i, c in enumerate(kids):
            _validate_tree(c, where + (i,), used)


def _decode(node, leaves):
    if node is None:
        return None
    if "leaf" in node:
        return leaves[node["leaf"]]
    if "dict" in node:
        return {k: _decode(c, leaves) for k, c in node["dict"]}
    if "list" in node:
        return [_decode(c, leaves) for c in node["list"]]
    if "tuple" in node:
        return tuple(_decode(c, leaves) for c in node["tuple"])
    kids = [_decode(c, leaves) for c in node["children"]]
    keys = node["keys"]
    if all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
        return dict(zip(keys, kids))
    return tuple(kids)


def _leaf_dtype_name(dtype) -> str:
    return dtype_name(dtype) if is_key(dtype) else np.dtype(dtype).name


def _pair_like(like, specs, strict: bool):
    """Pair ``like``'s leaves with the saved ones (by path, or by position), checking
    shapes and dtypes from the document alone; returns ``(flat, treedef, like_paths,
    order, problems)``, ``order`` giving the saved leaf of each of ``like``'s (or None)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    like_paths = [_path_str(tuple(_key_name(e) for e in p)) for p, _ in flat]
    saved_paths = [s["path"] for s in specs]
    problems = []
    # Pair leaves by path: a dict sorts its keys while a class keeps its field order, so
    # positions differ when a saved dict of fields is loaded into a Module.
    order = None
    unique = len(set(like_paths)) == len(like_paths) and len(set(saved_paths)) == len(saved_paths)
    if unique and set(like_paths) == set(saved_paths):
        index = {p: i for i, p in enumerate(saved_paths)}
        order = [index[p] for p in like_paths]
    elif not strict and len(flat) == len(specs):
        order = list(range(len(specs)))  # renamed leaves: trust the order
    else:
        if len(flat) != len(specs):
            problems.append(f"the checkpoint has {len(specs)} leaves, like has {len(flat)}")
        problems += [f"{p or '<root>'}: only in the checkpoint"
                     for p in saved_paths if p not in set(like_paths)]
        problems += [f"{p or '<root>'}: only in like"
                     for p in like_paths if p not in set(saved_paths)]
        if not problems:
            problems.append("leaf paths are not unique; cannot pair them (use strict=False)")
    for (_, want), lp, i in zip(flat, like_paths, order or ()):
        spec = specs[i]
        have_shape, want_shape = tuple(spec["shape"]), tuple(np.shape(want))
        want_dtype = getattr(want, "dtype", None)
        wd = "scalar" if want_dtype is None else _leaf_dtype_name(want_dtype)
        if have_shape != want_shape or (want_dtype is not None and wd != spec["dtype"]):
            problems.append(f"{lp or '<root>'}: checkpoint {spec['dtype']}{list(have_shape)}, "
                            f"like {wd}{list(want_shape)}")
    return flat, treedef, like_paths, order, problems


def _like_sharding(want):
    """Where a leaf of ``like`` asks its loaded value to be: the sharding of a
    ``ShapeDtypeStruct``, or of a jax array over several devices or a mesh; else None (a
    single-device array, as freshly initialized parameters are, loads to the host)."""
    if isinstance(want, jax.ShapeDtypeStruct):
        return getattr(want, "sharding", None)
    return want.sharding if _shards.is_sharded(want) else None


def _check_targets(targets, specs, names, problems) -> None:
    """A problem for each sharding that cannot lay out its leaf."""
    for t, spec, name in zip(targets, specs, names):
        if t is None:
            continue
        storage = _storage(spec)[0]
        if jax.dtypes.canonicalize_dtype(storage) != storage:  # JAX would narrow it, warning only
            problems.append(f"{name or '<root>'}: a {spec['dtype']} array cannot be placed on "
                            f"devices as it is (JAX holds it as "
                            f"{jax.dtypes.canonicalize_dtype(storage)} unless jax_enable_x64 is "
                            f"set); load it to the host (a None sharding)")
            continue
        try:
            _shards.check_target(t, tuple(spec["shape"]))
        except ValueError as e:
            problems.append(f"{name or '<root>'}: cannot be placed with {t} ({e})")


def _mesh_target(mesh, spec, fallback, name, problems):
    record = spec.get("sharding")
    if record is None or record["spec"] is None:
        return fallback
    t = _shards.spec_over(record, mesh)
    if isinstance(t, str):
        problems.append(f"{name or '<root>'}: cannot be placed on the mesh, {t}")
        return None
    return t


def _targets_without_like(shardings, specs, path: str) -> list:
    if shardings is None:
        return [None] * len(specs)
    problems: list = []
    if isinstance(shardings, Mesh):
        targets = [_mesh_target(shardings, s, None, s["path"], problems) for s in specs]
    elif isinstance(shardings, Sharding):
        targets = [None if s["py"] is not None else shardings for s in specs]
    else:
        raise CheckpointError(f"load: shardings= is a {type(shardings).__name__}; without like= "
                              f"it must be a jax.sharding.Mesh or a Sharding (a pytree of "
                              f"shardings pairs with like's leaves)")
    _check_targets(targets, specs, [s["path"] for s in specs], problems)
    if problems:
        _raise_problems(f"{path}: cannot place the leaves as asked", problems)
    return targets


def _targets_of_like(flat, treedef, order, specs, shardings, like_paths, problems) -> list:
    """The sharding (or None) of each of ``like``'s leaves; appends to ``problems``."""
    if order is None or problems:
        return []
    wants = [w for _, w in flat]
    paired = [specs[i] for i in order]
    if shardings is None:
        targets = [_like_sharding(w) for w in wants]
    elif isinstance(shardings, Mesh):
        targets = [_mesh_target(shardings, s, _like_sharding(w), lp, problems)
                   for w, s, lp in zip(wants, paired, like_paths)]
    elif isinstance(shardings, Sharding):
        targets = [None if type(w) in _PY_SCALARS else shardings for w in wants]
    else:
        try:
            targets = treedef.flatten_up_to(shardings)
        except (ValueError, TypeError) as e:
            problems.append(f"shardings does not have like's structure ({str(e)[:200]})")
            return []
        for t, lp in zip(targets, like_paths):
            if t is not None and not isinstance(t, Sharding):
                problems.append(f"{lp or '<root>'}: shardings holds a {type(t).__name__}, not a "
                                f"Sharding or None")
        if problems:
            return []
    _check_targets(targets, paired, like_paths, problems)
    return targets


def _raise_problems(header: str, problems: list) -> None:
    shown = problems[:_MAX_LISTED]
    if len(problems) > _MAX_LISTED:
        shown.append(f"... and {len(problems) - _MAX_LISTED} more")
    raise CheckpointError(header + ":\n  " + "\n  ".join(shown))


def _raise_mismatch(path: str, problems: list) -> None:
    if problems:
        _raise_problems(f"{path} does not match like", problems)


def _into_like(flat, treedef, like_paths, order, leaves, specs, path: str):
    """The loaded leaves in ``like``'s structure; a leaf that ``like`` has as a Python
    scalar becomes one (if it converts without loss)."""
    problems, out = [], []
    for (_, want), lp, i, leaf in zip(flat, like_paths, order, leaves):
        if type(want) in _PY_SCALARS and isinstance(leaf, np.ndarray):
            kind = type(want).__name__
            try:  # a NaN into an int fails; a complex into a float would lose a part
                if leaf.dtype.kind not in _LIKE_KINDS[kind]:
                    raise TypeError(f"a {leaf.dtype} cannot become a Python {kind}")
                leaf = type(want)(leaf[()])
            except (TypeError, ValueError, OverflowError) as e:
                problems.append(f"{lp or '<root>'}: checkpoint {specs[i]['dtype']} value "
                                f"{leaf[()]!r}, like a Python {kind} ({e})")
        out.append(leaf)
    _raise_mismatch(path, problems)
    return jax.tree_util.tree_unflatten(treedef, out)


# --------------------------------------------------------------------------------------
# a folder of step-numbered checkpoints


class CheckpointManager:
    """Checkpoints ``step_00000100.ckpt``, ... in ``directory``, keeping the newest
    ``keep`` (by step; ``None`` keeps all).

    Example::

        mgr = tg.checkpoint.CheckpointManager("run/ckpt", keep=3)
        if mgr.latest() is not None:
            params = mgr.load(like=params)          # resume from the newest
        ...
        mgr.save(step, params, metadata={"loss": float(loss)})
    """

    _NAME = re.compile(r"^step_(\d+)\.ckpt$")

    def __init__(self, directory, keep: int | None = 3):
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise CheckpointError(f"CheckpointManager: keep must be an int >= 1 or None, "
                                  f"got {keep!r}")
        self.directory = os.fspath(directory)
        self.keep = keep
        os.makedirs(self.directory, exist_ok=True)

    def path(self, step: int) -> str:
        return os.path.join(self.directory, f"step_{int(step):08d}.ckpt")

    def steps(self) -> list[int]:
        """The steps saved in the folder, oldest first."""
        found = (self._NAME.match(n) for n in os.listdir(self.directory))
        return sorted(int(m.group(1)) for m in found if m)

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def latest(self) -> str | None:
        """The path of the newest checkpoint, or None."""
        step = self.latest_step()
        return None if step is None else self.path(step)

    def save(self, step: int, tree, *, metadata=None) -> str:
        """Save ``tree`` as ``step`` (atomically, see `save`), then delete the oldest
        checkpoints beyond ``keep`` (never the one just written), with their shard files.
        Returns its path. With several processes and a sharded tree, every process calls
        it (see `save`) and process 0 deletes the old checkpoints."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise CheckpointError(f"CheckpointManager.save: step must be an int >= 0, got {step!r}")
        target = self.path(step)
        everyone = _any_distributed(tree)  # a multi-process save: process 0 prunes
        save(target, tree, step=int(step), metadata=metadata)
        if self.keep is not None and (not everyone or jax.process_index() == 0):
            others = [s for s in self.steps() if s != step]
            newest = sorted(others + [step])[-self.keep:]
            for s in others:
                if s not in newest:
                    _remove_checkpoint(self.path(s))
        return target

    def load(self, step: int | None = None, like=None, *, strict: bool = True, shardings=None):
        """Load ``step`` (default: the newest); see `load`."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise CheckpointError(f"{self.directory}: no checkpoints to load")
        return load(self.path(step), like, strict=strict, shardings=shardings)

    def __repr__(self) -> str:
        return f"CheckpointManager({self.directory!r}, keep={self.keep}, steps={self.steps()})"


# -- tg.save / tg.load: PyTorch's torch.save(obj, f) / torch.load(f), without pickle ------------


def save_object(obj, f, **_options) -> None:
    """``tg.save(obj, path)``, PyTorch's argument order: a `tg.Graph` is written as a
    graph file (`tracegraph.ir.files.save`); anything else — a ``state_dict()``, an
    optimizer's state, a dict of tensors — as a checkpoint of its arrays (`save`; the
    tensors' arrays, without their history). Never pickle: a class that is no pytree
    cannot be saved. PyTorch's other keywords (``pickle_protocol`` ...) are accepted and
    have nothing to set."""
    from .core import Tensor
    from .ir.files import save as save_graph
    from .ir.graph import Graph

    if isinstance(obj, Graph):
        save_graph(obj, f)
        return
    arrays = jax.tree_util.tree_map(lambda x: x._data if isinstance(x, Tensor) and x._trace.free else x, obj,
                                    is_leaf=lambda x: isinstance(x, Tensor))
    save(f, arrays)


def load_object(f, map_location=None, weights_only=None, *, like=None, **_options):
    """``tg.load(path)``: what `save_object` wrote — a graph file gives its `tg.Graph`,
    a checkpoint its tree (dicts of JAX arrays: ``model.load_state_dict(tg.load(path))``;
    `load`'s ``like=`` checks it against a structure). ``map_location`` places the
    arrays on a device (`tg.device`, a string); ``weights_only`` is always so (no pickle,
    no code runs). A file that is neither raises the graph reader's `tg.IRError`."""
    from .frontend.devices import place
    from .ir.files import load as load_graph

    path = os.fspath(f)
    try:
        with zipfile.ZipFile(path) as archive:  # npz members are named NAME.npy
            names = {n[:-4] if n.endswith(".npy") else n for n in archive.namelist()}
    except Exception:  # noqa: BLE001 - a missing or damaged file: the graph reader reports it
        names = set()
    if META_ENTRY not in names:  # a graph file, or neither: the graph reader names the problem
        return load_graph(path)
    tree = load(path, like=like)
    if callable(map_location):
        raise CheckpointError(f"{path}: a callable map_location is not supported; pass a device")
    return jax.tree_util.tree_map(lambda a: place(jax.numpy.asarray(a), map_location)
                                  if isinstance(a, np.ndarray | jax.Array) else a, tree)


from .errors import public_functions as _public_functions

_public_functions(globals(), kind=CheckpointError, renames={"save_object": "save", "load_object": "load"})
