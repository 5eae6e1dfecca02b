"""``tg.checkpoint``: save and load any pytree of arrays — parameters, optimizer states,
`tg.nn.Module`s — in one file, atomically, without pickle.

The file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays): leaf ``i`` is the entry
``a{i}``, in `jax.tree_util` flattening order, and the entry ``__checkpoint__.json`` (a
uint8 array) holds the tree structure, each leaf's path, shape and dtype, the step and
the user's metadata. Anything ``.npy`` cannot hold without pickle (bfloat16, float8 and
the other `ml_dtypes` types) is stored as its unsigned-integer bit pattern; the JSON
keeps the real dtype. Jax arrays are fetched to the host.

NOTE: saving is atomic: the archive goes to a temporary file in the target's directory,
which is flushed and fsync'ed, renamed over the target with `os.replace`, and then the
directory is fsync'ed. A crash or kill at any moment leaves the target either as it was
or as the complete new checkpoint — never half-written. (A killed save can leave its
``.NAME.*.tmp`` file behind; it is never read.) Loading uses ``allow_pickle=False``,
checks every entry's size against the declared shape before reading it, and raises
`CheckpointError` for anything damaged.

Example::

    tg.checkpoint.save("run/params.ckpt", params, step=1000, metadata={"loss": 0.12})
    params = tg.checkpoint.load("run/params.ckpt", like=params)   # same structure, checked
    tree = tg.checkpoint.load("run/params.ckpt")                  # dicts/lists/tuples
"""

from __future__ import annotations

import json
import numbers
import os
import re
from dataclasses import dataclass

import jax
import ml_dtypes
import numpy as np

from ._atomic import write_atomically
from .errors import Error

__all__ = ["CheckpointError", "CheckpointInfo", "CheckpointManager", "info", "load", "save"]

FORMAT = "tracegraph-checkpoint"
VERSION = 1
META_ENTRY = "__checkpoint__.json"
MAX_JSON_BYTES = 256 << 20
_NPY_HEADER_ALLOWANCE = 1 << 16  # an .npy header is far smaller than this
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


class CheckpointError(Error):
    """A checkpoint cannot be saved (an unsupported leaf, metadata that is not JSON) or
    loaded (a damaged file, or one that does not match ``like``)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds, read without loading its arrays (see `info`)."""

    step: int | None
    metadata: object
    leaves: tuple  # ((path, shape, dtype name), ...)


# --------------------------------------------------------------------------------------
# save


def save(path, tree, *, step: int | None = None, metadata=None) -> None:
    """Write ``tree`` (a pytree of arrays) to ``path`` atomically.

    Arguments:
        path: the file to write (any name; ``.ckpt`` by convention). Its directory must
            exist. An existing file is replaced only once the new one is complete.
        tree: dicts (str or int keys), lists, tuples, None, and registered pytree nodes
            (`tg.nn.Module`, optax states, ...) with numpy/jax arrays or Python scalars
            as leaves.
        step: an optional training step, returned by `info`.
        metadata: anything JSON can hold (a dict of hyper-parameters, a loss value).

    Example::

        tg.checkpoint.save("params.ckpt", {"w": w, "b": b}, step=10)
    """
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise CheckpointError(f"save: step must be an int or None, got {step!r}")
    entries: dict[str, np.ndarray] = {}
    leaves: list[dict] = []
    structure = _encode(tree, (), entries, leaves)
    doc = {"format": FORMAT, "version": VERSION, "step": None if step is None else int(step),
           "metadata": metadata, "tree": structure, "leaves": leaves}
    try:
        text = json.dumps(doc, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"save: metadata must be JSON-serializable ({e})") from None
    archive = {META_ENTRY: np.frombuffer(text.encode("utf-8"), np.uint8), **entries}
    write_atomically(os.fspath(path), lambda f: _write_archive(f, archive))


def _encode(node, path: tuple, entries: dict, leaves: list):
    """The JSON structure of ``node``; appends its leaves to ``entries`` and ``leaves`` in
    `jax.tree_util` flattening order (so ``like=`` can pair them by position)."""
    if node is None:
        return None
    try:
        children = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
    except Exception as e:  # noqa: BLE001 - e.g. dict keys that cannot be sorted
        raise CheckpointError(f"save: cannot flatten the {type(node).__name__} at "
                              f"{_path_str(path) or 'the root'} ({e})") from None
    if len(children) == 1 and children[0][0] == () and children[0][1] is node:
        return {"leaf": _store_leaf(node, path, entries, leaves)}
    if type(node) is dict:
        for k in node:
            if isinstance(k, bool) or type(k) not in (str, int):
                raise CheckpointError(f"save: dict key {k!r} at {_path_str(path) or 'the root'} "
                                      f"is not a str or int")
    keys = [_key_name(p[0]) for p, _ in children]
    encoded = [_encode(child, path + (k,), entries, leaves) for k, (_, child) in zip(keys, children)]
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


def _store_leaf(leaf, path, entries, leaves) -> int:
    where = _path_str(path) or "<root>"
    py = _PY_SCALARS.get(type(leaf))
    try:
        arr = np.asarray(leaf)  # jax arrays come to the host here
    except Exception as e:  # noqa: BLE001 - a traced value, an arbitrary object
        raise CheckpointError(f"save: leaf {where} ({type(leaf).__name__}) is not an array "
                              f"({e})") from None
    name = arr.dtype.name
    if name in _NUMPY_DTYPES and arr.dtype == _NUMPY_DTYPES[name]:
        stored = arr
    elif name in _BIT_DTYPES:
        stored = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    else:
        raise CheckpointError(f"save: leaf {where} has dtype {arr.dtype} "
                              f"({type(leaf).__name__}); a checkpoint holds numeric arrays")
    i = len(leaves)
    entries[f"a{i}"] = stored
    leaves.append({"path": _path_str(path), "shape": list(arr.shape), "dtype": name, "py": py})
    return i


def _write_archive(f, archive: dict) -> None:
    np.savez(f, allow_pickle=False, **archive)


# --------------------------------------------------------------------------------------
# load


def load(path, like=None, *, strict: bool = True):
    """Read a checkpoint written by `save`.

    Arguments:
        path: the file.
        like: a pytree of the expected structure (e.g. freshly initialized parameters, a
            `tg.nn.Module`, an optax state; its leaves may be arrays or
            ``jax.ShapeDtypeStruct``s). The loaded leaves are put into ``like``'s
            structure after checking that every leaf's shape and dtype match; all
            mismatches are listed in one `CheckpointError`.
        strict: with ``like``, leaves are paired by their paths (names such as
            ``layers/0/w``), which must be the same in both. With ``strict=False`` a tree
            whose names differ is paired by position instead (same leaf count needed).

    Returns:
        the tree, with numpy arrays as leaves (Python scalars where a Python scalar was
        saved). Without ``like``, dicts, lists, tuples and None come back as saved, and a
        registered class (a Module, an optax state) as a dict of its fields — or a
        tuple, when its children have no names.

    Example::

        params = tg.checkpoint.load("params.ckpt", like=init_params)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:  # a missing file is an OSError, not a CheckpointError
        npz = _open_archive(f, path)
        with npz:
            doc = _read_document(npz, path)
            leaves = [_read_leaf(npz, i, spec, path) for i, spec in enumerate(doc["leaves"])]
    if like is None:
        return _decode(doc["tree"], leaves)
    return _into_like(like, leaves, doc["leaves"], path, strict)


def info(path) -> CheckpointInfo:
    """Step, metadata and ``(path, shape, dtype)`` of each leaf, without reading arrays.

    Example::

        tg.checkpoint.info("params.ckpt").step
    """
    path = os.fspath(path)
    with open(path, "rb") as f, _open_archive(f, path) as npz:
        doc = _read_document(npz, path)
    leaves = tuple((s["path"], tuple(s["shape"]), s["dtype"]) for s in doc["leaves"])
    return CheckpointInfo(doc["step"], doc["metadata"], leaves)


def _open_archive(f, path):
    try:
        npz = np.load(f, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - whatever a damaged file makes numpy raise
        raise CheckpointError(f"{path}: not a readable checkpoint, the file is damaged or "
                              f"truncated ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a checkpoint (a bare .npy array, not an archive)")
    return npz


def _read_entry(npz, name: str, max_bytes: int, path: str) -> np.ndarray:
    """One entry, refusing entries larger than declared (so a forged header cannot make
    us allocate more than the checkpoint says it holds)."""
    try:
        size = npz.zip.getinfo(name + ".npy").file_size
    except KeyError:
        raise CheckpointError(f"{path}: damaged checkpoint, the entry {name!r} is missing") from None
    if size > max_bytes + _NPY_HEADER_ALLOWANCE:
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} holds {size} bytes, "
                              f"more than its declared {max_bytes}")
    try:
        return npz[name]
    except Exception as e:  # noqa: BLE001 - corrupt or truncated entry, bad CRC, ...
        raise CheckpointError(f"{path}: damaged checkpoint, entry {name!r} cannot be read "
                              f"({type(e).__name__}: {e})") from None


def _read_document(npz, path: str) -> dict:
    if META_ENTRY not in npz.files:
        raise CheckpointError(f"{path}: not a tracegraph checkpoint (no {META_ENTRY} entry)")
    raw = _read_entry(npz, META_ENTRY, MAX_JSON_BYTES, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: damaged checkpoint, {META_ENTRY} is "
                              f"{raw.dtype}{list(raw.shape)}, not bytes")
    try:
        doc = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint, {META_ENTRY} is not valid JSON "
                              f"({e})") from None
    try:
        _validate(doc)
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint, bad {META_ENTRY}: {e}") from None
    return doc


def _validate(doc) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(f"version {doc.get('version')!r} is not supported (this tracegraph "
                         f"reads version {VERSION})")
    step = doc["step"]
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise TypeError(f"step {step!r} is not an int")
    leaves = doc["leaves"]
    if not isinstance(leaves, list):
        raise TypeError("leaves is not a list")
    for i, s in enumerate(leaves):
        if not isinstance(s, dict) or not isinstance(s["path"], str):
            raise TypeError(f"leaf {i} is malformed")
        shape = s["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"leaf {i} has a bad shape {shape!r}")
        if s["dtype"] not in _NUMPY_DTYPES and s["dtype"] not in _BIT_DTYPES:
            raise ValueError(f"leaf {i} has an unknown dtype {s['dtype']!r}")
        if s.get("py") not in (None, *_PY_SCALARS.values()) or (s.get("py") and shape):
            raise ValueError(f"leaf {i} has a bad scalar kind {s.get('py')!r}")
    used = [0] * len(leaves)
    _validate_tree(doc["tree"], used)
    if any(n != 1 for n in used):
        raise ValueError("the tree does not use every leaf exactly once")


def _validate_tree(node, used) -> None:
    if node is None:
        return
    if not isinstance(node, dict) or len(node) not in (1, 3):
        raise ValueError(f"bad tree node {str(node)[:80]!r}")
    if "leaf" in node:
        i = node["leaf"]
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(used):
            raise ValueError(f"bad leaf index {i!r}")
        used[i] += 1
    elif "dict" in node:
        for item in node["dict"]:
            if not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool) \
                    or not isinstance(item[0], (str, int)):
                raise ValueError(f"bad dict item {str(item)[:80]!r}")
            _validate_tree(item[1], used)
    elif "list" in node or "tuple" in node:
        kids = node.get("list", node.get("tuple"))
        if not isinstance(kids, list):
            raise ValueError("bad list/tuple node")
        for c in kids:
            _validate_tree(c, used)
    elif set(node) == {"node", "keys", "children"}:
        if not isinstance(node["keys"], list) or not isinstance(node["children"], list) \
                or len(node["keys"]) != len(node["children"]):
            raise ValueError("bad custom node")
        for c in node["children"]:
            _validate_tree(c, used)
    else:
        raise ValueError(f"bad tree node {str(node)[:80]!r}")


def _read_leaf(npz, i: int, spec: dict, path: str):
    name = spec["dtype"]
    dtype = _NUMPY_DTYPES.get(name) or _BIT_DTYPES[name]
    storage = dtype if name in _NUMPY_DTYPES else np.dtype(f"u{dtype.itemsize}")
    shape = tuple(spec["shape"])
    nbytes = int(np.prod(shape, dtype=object)) * storage.itemsize
    arr = _read_entry(npz, f"a{i}", nbytes, path)
    if arr.dtype != storage or arr.shape != shape:
        raise CheckpointError(f"{path}: damaged checkpoint, leaf {spec['path'] or '<root>'} is "
                              f"{arr.dtype}{list(arr.shape)}, its header says "
                              f"{storage}{list(shape)}")
    if storage != dtype:
        arr = arr.view(dtype)
    py = spec.get("py")
    if py is not None:
        return {"bool": bool, "int": int, "float": float, "complex": complex}[py](arr[()])
    return arr


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


def _into_like(like, leaves, specs, path: str, strict: bool):
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
    elif not strict and len(flat) == len(leaves):
        order = list(range(len(leaves)))  # renamed leaves: trust the order
    else:
        if len(flat) != len(leaves):
            problems.append(f"the checkpoint has {len(leaves)} leaves, like has {len(flat)}")
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
        if have_shape != want_shape or (
            want_dtype is not None and np.dtype(want_dtype).name != spec["dtype"]
        ):
            wd = np.dtype(want_dtype).name if want_dtype is not None else "scalar"
            problems.append(f"{lp or '<root>'}: checkpoint {spec['dtype']}{list(have_shape)}, "
                            f"like {wd}{list(want_shape)}")
    if problems:
        shown = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            shown.append(f"... and {len(problems) - _MAX_LISTED} more")
        raise CheckpointError(f"{path} does not match like:\n  " + "\n  ".join(shown))
    out = []
    for (_, want), i in zip(flat, order):
        leaf = leaves[i]
        if type(want) in _PY_SCALARS and isinstance(leaf, np.ndarray):
            leaf = type(want)(leaf[()])
        out.append(leaf)
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
        checkpoints beyond ``keep`` (never the one just written). Returns its path."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise CheckpointError(f"CheckpointManager.save: step must be an int >= 0, got {step!r}")
        target = self.path(step)
        save(target, tree, step=int(step), metadata=metadata)
        if self.keep is not None:
            others = [s for s in self.steps() if s != step]
            newest = sorted(others + [step])[-self.keep:]
            for s in others:
                if s not in newest:
                    try:
                        os.unlink(self.path(s))
                    except FileNotFoundError:
                        pass
        return target

    def load(self, step: int | None = None, like=None, *, strict: bool = True):
        """Load ``step`` (default: the newest); see `load`."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise CheckpointError(f"{self.directory}: no checkpoints to load")
        return load(self.path(step), like, strict=strict)

    def __repr__(self) -> str:
        return f"CheckpointManager({self.directory!r}, keep={self.keep}, steps={self.steps()})"
