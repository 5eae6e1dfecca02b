"""``sharding_constraint``: JAX's ``with_sharding_constraint`` as an IR op.

The node names the partition spec its output must have and the mesh it is over (axis
names and sizes; an empty mesh means the mesh set around the call,
``jax.sharding.use_mesh`` / ``jax.set_mesh``, at lowering time). Its output type carries
the spec, so the printed graph shows where values are placed: ``f32[8,4]{"data", none}``.
Under ``jax.jit`` it lowers to ``jax.lax.with_sharding_constraint`` (XLA's SPMD
partitioner then places every value it reaches); run op by op (the interpreter,
``tg.eager``) it moves its concrete value there with ``jax.device_put``, so every mode
places the value the same way. The values are unchanged: the reference is the input.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ..ir.types import check_sharding
from .collectives import make_mesh
from .defop import Attr, Sample, ShapeError, bind, defop, first_dtype, first_weak
from .samples import FLOATS, arr


def _check(x, spec, mesh_axes, mesh_shape):
    if len(mesh_axes) != len(mesh_shape):
        raise ShapeError(f"sharding_constraint: mesh axes {mesh_axes} and sizes {mesh_shape} differ in length")
    try:
        spec = check_sharding(spec, x.ndim)
    except Exception as e:  # an IRError: the spec does not fit the operand
        raise ShapeError(f"sharding_constraint of {x}: {e}") from None
    used = {n for e in spec if e is not None for n in ((e,) if isinstance(e, str) else e)}
    if mesh_axes and not used <= set(mesh_axes):
        raise ShapeError(
            f"sharding_constraint: spec {spec} names mesh axes {sorted(used - set(mesh_axes))} "
            f"that the mesh {dict(zip(mesh_axes, mesh_shape))} does not have"
        )
    for d, e in zip(x.shape, spec):
        parts = int(np.prod([dict(zip(mesh_axes, mesh_shape))[n] for n in ((e,) if isinstance(e, str) else e)])) if (
            e is not None and mesh_axes) else 1
        if d % parts:
            raise ShapeError(f"sharding_constraint: a dimension of {d} does not split into {parts} shards ({spec})")
    return spec


def _shape(x, *, spec, mesh_axes, mesh_shape):
    _check(x, spec, mesh_axes, mesh_shape)
    return x.shape


def _sharding(x, *, spec, mesh_axes, mesh_shape):
    return _check(x, spec, mesh_axes, mesh_shape)


def _named(spec, mesh_axes, mesh_shape):
    if not mesh_axes:
        return PartitionSpec(*spec)  # the mesh set around the call
    return NamedSharding(make_mesh(tuple(mesh_axes), tuple(mesh_shape)), PartitionSpec(*spec))


def _impl(x, *, spec, mesh_axes, mesh_shape):
    sharding = _named(spec, mesh_axes, mesh_shape)
    if isinstance(x, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(x, sharding)
    if isinstance(sharding, PartitionSpec):  # op by op without a mesh: nothing to place on
        return x
    return jax.device_put(x, sharding)


def _vjp(ct, x, *, out, spec, mesh_axes, mesh_shape):
    # JAX transposes a sharding constraint into the same constraint on the cotangent
    return [bind("sharding_constraint", ct, spec=spec, mesh_axes=mesh_axes, mesh_shape=mesh_shape)]


sharding_constraint = defop(
    "sharding_constraint",
    shape=_shape,
    dtype=first_dtype,
    weak=first_weak,
    sharding=_sharding,
    impl=_impl,
    attrs={"spec": Attr("spec"), "mesh_axes": Attr("names", ()), "mesh_shape": Attr("ints", ())},
    vjp=_vjp,
    keys=True,
    samples=lambda: (
        [Sample((arr((4, 3), dt),), {"spec": ("data", None), "mesh_axes": ("data",),
                                     "mesh_shape": (1,)}, dt) for dt in FLOATS]
        + [Sample((arr((2, 4)),), {"spec": (None, ("data", "model")), "mesh_axes": ("data", "model"),
                                   "mesh_shape": (1, 1)}, "two-axes"),
           Sample((arr(()),), {"spec": (), "mesh_axes": ("data",), "mesh_shape": (1,)}, "scalar")]
    ),
    reference=lambda x, **_: x,
    doc="x placed as ``spec`` over the mesh (jax.lax.with_sharding_constraint; "
    "jax.device_put op by op).",
)
