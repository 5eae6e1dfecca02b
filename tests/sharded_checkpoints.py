"""Sharded checkpoints written by hand, for the tests that read them on one device
(tests/test_checkpoint_sharding.py, the fuzzer in tests/test_loader_fuzz.py): the same
files `tg.checkpoint.save` writes for arrays sharded over a mesh, in one file or (as
several processes write them) with shard files next to it."""

import itertools
import json

import numpy as np

TOKEN = "0123456789abcdef"


def _ranges(n: int, parts: int) -> list:
    cuts = np.linspace(0, n, parts + 1).astype(int).tolist()
    return list(zip(cuts[:-1], cuts[1:]))


def write_npz(path, entries: dict) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would add ".npz" to a name
        np.savez(f, allow_pickle=False, **entries)


def forge(path, arrays: dict, splits: dict, *, processes: int = 1, token: str = TOKEN,
          step=None) -> dict:
    """Write ``arrays`` (a flat dict) to ``path``, the ones named in ``splits`` sharded:
    ``splits[name]`` gives the number of blocks per dimension (a mesh axis ``m<d>`` per
    split dimension). With ``processes`` > 1, block ``j`` is written by process
    ``j % processes`` (process 0's in ``path``, the others' in their shard files).
    Returns the document."""
    leaves, entries = [], {}
    sides = {p: {} for p in range(1, processes)}
    for i, (name, arr) in enumerate(arrays.items()):
        arr = np.asarray(arr)
        grid = splits.get(name)
        if grid is None:
            entries[f"a{i}"] = arr
            leaves.append({"path": name, "shape": list(arr.shape), "dtype": arr.dtype.name,
                           "py": None, "sharding": None})
            continue
        axes = [d for d, k in enumerate(grid) if k > 1]
        blocks = list(itertools.product(*(_ranges(n, k) for n, k in zip(arr.shape, grid))))
        shards = []
        for j, block in enumerate(blocks):
            file = j % processes
            data = arr[tuple(slice(a, b) for a, b in block)]
            (entries if file == 0 else sides[file])[f"a{i}.{j}"] = data
            shards.append({"file": file, "index": [list(r) for r in block]})
        leaves.append({"path": name, "shape": list(arr.shape), "dtype": arr.dtype.name, "py": None,
                       "sharding": {"mesh": {"axes": [f"m{d}" for d in axes],
                                             "shape": [grid[d] for d in axes]},
                                    "spec": [f"m{d}" if grid[d] > 1 else None for d in range(len(grid))],
                                    "shards": shards}})
    used = sorted({s["file"] for leaf in leaves if leaf["sharding"] for s in leaf["sharding"]["shards"]} - {0})
    doc = {"format": "tracegraph-checkpoint", "version": 2, "step": step, "metadata": None,
           "tree": {"dict": [[name, {"leaf": i}] for i, name in enumerate(arrays)]},
           "leaves": leaves,
           "shard_files": {"token": token, "processes": used} if used else None}
    write_document(path, doc, entries)
    for p, side in sides.items():
        if side:
            write_side(side_path(path, token, p), token, p, side)
    return doc


def side_path(path, token: str, process: int) -> str:
    return f"{path}.{token}.p{process:05d}.shards"


def write_document(path, doc, entries: dict) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    write_npz(path, {"__checkpoint__.json": np.frombuffer(text.encode(), np.uint8), **entries})


def write_side(path, token: str, process: int, entries: dict, doc=None) -> None:
    doc = doc if doc is not None else {"format": "tracegraph-checkpoint-shards", "version": 1,
                                       "token": token, "process": process}
    write_npz(path, {"__shards__.json": np.frombuffer(json.dumps(doc).encode(), np.uint8),
                     **entries})
