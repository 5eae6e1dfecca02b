"""Sharded `jax.Array`s in checkpoints: the shard layout a checkpoint records for a leaf,
its validation, reading any region of a leaf from its saved shards, and placing a leaf
onto a sharding with `jax.make_array_from_callback`. `tracegraph.checkpoint` holds the
file format; this module knows nothing of files (a shard is read through a callback).

A leaf's record (JSON)::

    {"mesh": {"axes": ["data", "model"], "shape": [4, 2]} | null,
     "spec": [["data"], null] | null,           # the PartitionSpec, per dimension
     "shards": [{"file": 0, "index": [[0, 2], [0, 3]]}, ...]}

``shards`` lists each *distinct* block of the array once (a replicated block once, not
once per device), sorted by index; ``index`` is a ``[start, stop)`` range per dimension of
the stored array (for typed PRNG keys, of their ``u32`` data, trailing key dimensions
included); ``file`` is the process that wrote it (0: the checkpoint file itself). The
blocks must tile the array: along each dimension their distinct ranges cover ``[0, n)``
without gap or overlap, and the blocks are exactly the grid those ranges make (every
sharding over a mesh makes such a grid). So the blocks hold exactly the array's bytes,
and a region of the array is assembled from the blocks that meet it.

NOTE: the process that writes a block is the one holding its first device in the
sharding's device order: JAX's ``replica_id == 0`` (`jax.Array.addressable_shards`), so
every process computes the same layout without talking to the others.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

MAX_SHARDS = 1 << 20  # distinct blocks of one leaf (a mesh of a million devices)
MAX_MESH_AXES = 64
TOKEN = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class ShardingInfo:
    """How a leaf was sharded when it was saved (see `tg.checkpoint.info`).

    ``mesh_axes``/``mesh_shape``: the mesh's axis names and sizes, and ``spec`` the
    `PartitionSpec`, for a `NamedSharding` (else None); ``shards``: each distinct block's
    ``((start, stop), ...)`` per dimension; ``processes``: the process that wrote each.
    ``named_sharding(mesh)`` is the same spec over another mesh with those axis names.
    """

    mesh_axes: tuple | None
    mesh_shape: tuple | None
    spec: PartitionSpec | None
    shards: tuple
    processes: tuple

    def named_sharding(self, mesh) -> NamedSharding:
        if self.spec is None:
            raise ValueError("the leaf was not saved with a NamedSharding: no spec to reuse")
        return NamedSharding(mesh, self.spec)

    def __str__(self) -> str:
        where = (f"mesh {dict(zip(self.mesh_axes, self.mesh_shape))}, spec {_spec_str(self.spec)}"
                 if self.mesh_axes is not None else "no mesh")
        files = len(set(self.processes))
        return (f"{where}, {len(self.shards)} shard{'s' * (len(self.shards) != 1)}"
                + (f" from {files} processes" if files > 1 else ""))


def _spec_str(spec) -> str:
    return "P(" + ", ".join(repr(e) for e in spec) + ")" if spec is not None else "none"


def info_of(record) -> ShardingInfo | None:
    if record is None:
        return None
    mesh = record["mesh"]
    spec = record["spec"]
    return ShardingInfo(
        mesh_axes=None if mesh is None else tuple(mesh["axes"]),
        mesh_shape=None if mesh is None else tuple(mesh["shape"]),
        spec=None if spec is None else PartitionSpec(
            *(tuple(e) if isinstance(e, list) else e for e in spec)),
        shards=tuple(tuple(tuple(r) for r in s["index"]) for s in record["shards"]),
        processes=tuple(s["file"] for s in record["shards"]),
    )


# ----------------------------------------------------------------------------- saving


def is_sharded(leaf) -> bool:
    """A jax.Array laid out over a mesh (or over several devices), whose shards a
    checkpoint records; a single-device array is saved as a plain array."""
    if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
        return False
    try:
        sharding = leaf.sharding
        return isinstance(sharding, NamedSharding) or len(sharding.device_set) > 1
    except Exception:  # noqa: BLE001 - a deleted (donated) array: the caller reports it
        return False


def is_distributed(leaf) -> bool:
    """A leaf with shards on devices of other processes: saving it takes every process."""
    return is_sharded(leaf) and not leaf.is_fully_addressable


def layout(arr, data, distributed: bool) -> tuple[dict, list]:
    """The record of ``arr``'s sharding and ``[(shard number, device array)]`` of the
    blocks this process writes. ``data`` is ``arr`` itself, or the u32 data of a key array
    (laid out as ``arr`` is, with the key's trailing dimensions whole)."""
    sharding = arr.sharding
    shape = tuple(data.shape)
    first: dict = {}  # block -> the first device holding it (JAX's replica 0)
    for device, index in data.sharding.devices_indices_map(shape).items():
        first.setdefault(_ranges(index, shape), device)
    local = {s.device: s for s in data.addressable_shards}
    shards, mine = [], []
    for j, block in enumerate(sorted(first)):
        device = first[block]
        shards.append({"file": device.process_index if distributed else 0,
                       "index": [list(r) for r in block]})
        if device in local:
            mine.append((j, local[device].data))
    mesh = spec = None
    if isinstance(sharding, NamedSharding):
        m = sharding.mesh
        mesh = {"axes": [str(a) for a in m.axis_names], "shape": [int(m.shape[a]) for a in m.axis_names]}
        spec = _spec_record(sharding.spec)
    return {"mesh": mesh, "spec": spec, "shards": shards}, mine


def _ranges(index, shape) -> tuple:
    out = []
    for s, n in zip(index, shape):
        if not isinstance(s, slice):
            raise ValueError(f"a shard index {index} that is not made of slices")
        start, stop, step = s.indices(n)
        if step != 1:
            raise ValueError(f"a strided shard index {index}")
        out.append((start, max(start, stop)))
    return tuple(out)


def _spec_record(spec) -> list | None:
    if getattr(spec, "unreduced", None) or getattr(spec, "reduced", None):
        return None  # partial sums: the blocks still say where the data is
    out = []
    for e in spec:
        if e is None or isinstance(e, str):
            out.append(e)
        elif isinstance(e, tuple) and all(isinstance(a, str) for a in e):
            out.append(list(e))
        else:  # PartitionSpec.UNCONSTRAINED cannot be on a concrete array
            return None
    return out


# ----------------------------------------------------------------------------- validation


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(record, shape: tuple, files: set, what: str) -> None:
    """Check one leaf's record against the stored array's ``shape`` and the allowed
    ``files``; raises ValueError naming ``what`` (the leaf)."""
    if not isinstance(record, dict) or set(record) != {"mesh", "spec", "shards"}:
        raise ValueError(f"{what} has a bad sharding record {str(record)[:80]!r}")
    mesh, spec, shards = record["mesh"], record["spec"], record["shards"]
    axes = None
    if mesh is not None:
        if not isinstance(mesh, dict) or set(mesh) != {"axes", "shape"}:
            raise ValueError(f"{what} has a bad mesh {str(mesh)[:80]!r}")
        axes, sizes = mesh["axes"], mesh["shape"]
        if not isinstance(axes, list) or not isinstance(sizes, list) or len(axes) != len(sizes) \
                or len(axes) > MAX_MESH_AXES or len(set(map(str, axes))) != len(axes) \
                or not all(isinstance(a, str) and 0 < len(a) <= 200 for a in axes) \
                or not all(_is_int(n) and 1 <= n <= MAX_SHARDS for n in sizes) \
                or math.prod(sizes) > MAX_SHARDS:
            raise ValueError(f"{what} has a bad mesh {str(mesh)[:80]!r}")
    if spec is not None:
        if axes is None or not isinstance(spec, list) or len(spec) > len(shape):
            raise ValueError(f"{what} has a bad partition spec {str(spec)[:80]!r}")
        used = []
        for e in spec:
            names = [e] if isinstance(e, str) else e if isinstance(e, list) else [] if e is None else None
            if names is None or not all(isinstance(a, str) and a in axes for a in names):
                raise ValueError(f"{what} has a bad partition spec {str(spec)[:80]!r}")
            used += names
        if len(set(used)) != len(used):
            raise ValueError(f"{what}'s partition spec uses a mesh axis twice")
    if not isinstance(shards, list) or not 1 <= len(shards) <= MAX_SHARDS:
        raise ValueError(f"{what} has a bad list of shards")
    blocks = []
    for j, s in enumerate(shards):
        if not isinstance(s, dict) or set(s) != {"file", "index"} or not _is_int(s["file"]) \
                or s["file"] not in files:
            raise ValueError(f"{what} has a bad shard {j}: {str(s)[:80]!r}")
        index = s["index"]
        if not isinstance(index, list) or len(index) != len(shape) or not all(
                isinstance(r, list) and len(r) == 2 and _is_int(r[0]) and _is_int(r[1])
                and 0 <= r[0] <= r[1] <= n for r, n in zip(index, shape)):
            raise ValueError(f"{what}'s shard {j} has an index {str(index)[:80]} that is not "
                             f"within its shape {list(shape)}")
        blocks.append(tuple((r[0], r[1]) for r in index))
    _check_grid(blocks, shape, what)


def _check_grid(blocks: list, shape: tuple, what: str) -> None:
    """The blocks tile the array exactly: no overlap, no gap, nothing twice."""
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"{what} lists a shard twice")
    count = 1
    for d, n in enumerate(shape):
        ranges = sorted({b[d] for b in blocks})
        at = 0
        for start, stop in ranges:
            if start != at or (stop == start and n != 0):
                problem = "overlap" if start < at else "leave a gap" if start > at else "are empty"
                raise ValueError(f"{what}'s shards {problem} along dimension {d} "
                                 f"(at {min(start, at)} of {n})")
            at = stop
        if at != n:
            raise ValueError(f"{what}'s shards leave a gap along dimension {d} "
                             f"({at} to {n} is in none)")
        count *= len(ranges)
    if count != len(blocks):
        raise ValueError(f"{what}'s {len(blocks)} shards do not tile the array (their ranges "
                         f"make a grid of {count} blocks): some overlap, some are missing")


# ----------------------------------------------------------------------------- reading


def region(blocks, index: tuple, dtype: np.dtype, read) -> np.ndarray:
    """The part ``index`` (``(start, stop)`` per dimension) of an array stored as
    ``blocks`` (validated: they tile it), reading block ``j`` with ``read(j)`` only when
    it meets the region. A region that is one block is that block, not a copy."""
    index = tuple(index)
    for j, block in enumerate(blocks):
        if tuple(block) == index:
            return read(j)
    out = np.empty(tuple(b - a for a, b in index), dtype)
    if not out.size:
        return out
    for j, block in enumerate(blocks):
        meet = [(max(a, c), min(b, d)) for (a, b), (c, d) in zip(block, index)]
        if any(lo >= hi for lo, hi in meet):
            continue
        data = read(j)
        src = tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(meet, block))
        dst = tuple(slice(lo - c, hi - c) for (lo, hi), (c, _) in zip(meet, index))
        out[dst] = data[src]
    return out


def index_ranges(index, shape) -> tuple:
    """A device's index (slices, from `jax.make_array_from_callback`) as ranges."""
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    return _ranges(index, shape)


# ----------------------------------------------------------------------------- placing


def spec_over(record, mesh) -> NamedSharding | str:
    """The saved spec over ``mesh``, or a reason why it cannot be."""
    if record is None or record["spec"] is None:
        return "it was saved without a NamedSharding"
    spec = info_of(record).spec
    missing = [a for e in spec for a in ((e,) if isinstance(e, str) else e or ())
               if a not in mesh.axis_names]
    if missing:
        return (f"it was saved over mesh axes {tuple(record['mesh']['axes'])}; the mesh has "
                f"{tuple(mesh.axis_names)}")
    return NamedSharding(mesh, spec)


def check_target(sharding, shape: tuple) -> None:
    """Raises ValueError if ``sharding`` cannot lay out an array of ``shape``."""
    try:
        check = getattr(sharding, "check_compatible_aval", None)  # the rank (NamedSharding ...)
        if check is not None:
            check(shape)
        sharding.shard_shape(shape)  # divisibility
    except Exception as e:  # noqa: BLE001 - jax's own explanation, reworded by the caller
        raise ValueError(str(e).split("\n")[0]) from None


def place(shape: tuple, sharding, dtype, fetch):
    """A `jax.Array` of ``shape`` laid out by ``sharding``; ``fetch(ranges)`` returns the
    host data of one device's part (only the addressable devices' parts are fetched)."""
    return jax.make_array_from_callback(
        shape, sharding, lambda index: fetch(index_ranges(index, shape)), dtype=dtype)


# ----------------------------------------------------------------------------- processes


def allgather(values: np.ndarray) -> np.ndarray:
    """Every process's ``values`` (uint32, the same shape everywhere), stacked by process:
    a barrier too (a tiny collective over all devices)."""
    return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.uint32)))
