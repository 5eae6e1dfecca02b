"""The shardings of a `tg.jit` signature, as the graph shows them.

``tg.jit(f, in_shardings=..., out_shardings=...)`` hands both to ``jax.jit``, which
places the arguments and results; the traced graph shows the same placements:

* each graph input given a ``NamedSharding`` (or a ``PartitionSpec``, over the mesh set
  around the call) has its partition spec in its type: ``%x: f32[8,3]{"data", none}``,
  and the ops after it propagate it as they do a `with_sharding_constraint`'s;
* each result given one ends in a ``sharding_constraint`` node (spec and mesh), so the
  return types carry the placement too.

Both print, parse, serialize and save as any type and node do. They are computed when a
signature is traced, never per call. ``None`` (and JAX's unspecified value) leaves a leaf
unannotated, as do shardings with no partition spec (``SingleDeviceSharding``).

NOTE: the inputs' types hold the spec only, not the mesh: a type is per value, and the
mesh is the function's (``jax.jit`` checks that every sharding is over one mesh). The
results' constraints record the mesh, as every ``sharding_constraint`` does.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from contextlib import nullcontext

from ..core import Tensor, current_trace, provenance
from ..errors import ShapeError
from .shard_map import _broadcast_specs, _mesh_axes, _spec, with_sharding_constraint


def _is_unspecified(s) -> bool:
    return s is None or type(s).__name__ == "UnspecifiedValue"


def _context_mesh() -> dict:
    """Axis name -> size of the mesh set around the call (``jax.set_mesh``), or {}."""
    try:
        mesh = jax.sharding.get_abstract_mesh()
    except Exception:  # noqa: BLE001 - no mesh API, or none set: nothing to check against
        return {}
    return {} if getattr(mesh, "empty", True) else dict(zip(mesh.axis_names, mesh.axis_sizes))


def as_prefix(shardings):
    """``jax.jit``'s reading of a top-level list: a tuple (one entry per argument)."""
    return tuple(shardings) if isinstance(shardings, list) else shardings


def input_specs(in_shardings, args: tuple, leaf_names, leaf_types) -> list:
    """The partition spec (IR tuple form, or None) of each array leaf of ``args`` (the
    dynamic positional arguments) under ``in_shardings`` (a pytree prefix of ``args``,
    as ``jax.jit`` reads it). Raises `tg.ShapeError` naming the argument when a
    dimension does not split into the shards its spec asks for."""
    per_leaf = _broadcast_specs(as_prefix(in_shardings), args, "in_shardings", who="jit")
    specs = []
    for s, name, t in zip(per_leaf, leaf_names, leaf_types):
        if _is_unspecified(s):
            specs.append(None)
            continue
        if isinstance(s, NamedSharding):
            names, sizes = _mesh_axes(s.mesh)
            spec, mesh = s.spec, dict(zip(names, sizes))
        elif isinstance(s, PartitionSpec):
            spec, mesh = s, _context_mesh()
        else:  # a sharding with no partition spec (one device, ...): not shown
            specs.append(None)
            continue
        spec = _spec(spec, t.ndim, f"in_shardings of {name}", who="jit")
        _check_divides(spec, t, mesh, name)
        specs.append(spec)
    return specs


def _check_divides(spec, t, mesh: dict, name: str):
    for dim, (d, e) in enumerate(zip(t.shape, spec)):
        if e is None or not mesh:
            continue
        axes = (e,) if isinstance(e, str) else e
        if any(a not in mesh for a in axes):
            raise ShapeError(
                f"in_shardings of {name}: {PartitionSpec(*spec)} names mesh axes "
                f"{sorted(set(axes) - set(mesh))} that the mesh {mesh} does not have"
            )
        parts = int(np.prod([mesh[a] for a in axes]))
        if d % parts:
            over = " x ".join(f"{a!r} ({mesh[a]})" for a in axes)
            raise ShapeError(
                f"in_shardings of {name}: dimension {dim} of {t} has size {d}, which does not "
                f"split into {parts} shards over mesh axis {over}; make it a multiple of {parts}"
            )


def constrain_outputs(out, out_shardings, location=None):
    """``out`` with a ``sharding_constraint`` on each leaf given a ``NamedSharding`` or a
    ``PartitionSpec`` by ``out_shardings`` (a pytree prefix of ``out``); the nodes carry
    ``location`` (where the shardings were given) and the scope ``out_shardings``."""
    leaves, treedef = jax.tree_util.tree_flatten(out, is_leaf=lambda x: isinstance(x, Tensor))
    per_leaf = _broadcast_specs(as_prefix(out_shardings), out, "out_shardings", who="jit")
    trace = current_trace()
    where = provenance(trace, location, "out_shardings") if hasattr(trace, "builder") else nullcontext()
    with where:
        placed = [
            with_sharding_constraint(x, s) if isinstance(s, (NamedSharding, PartitionSpec)) else x
            for x, s in zip(leaves, per_leaf)
        ]
    return jax.tree_util.tree_unflatten(treedef, placed)
