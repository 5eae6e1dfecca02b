"""Where a `Linear` layer's output goes under tensor parallelism: the activation follows
the weight's placement, as the IR shows it.

Inside `tg.nn.parallel.activation_sharding(mesh)` (which `Plan.jit` opens around the step
it traces), a `Linear` whose weight's type carries a partition spec over the model axis
constrains its output with `tg.with_sharding_constraint`:

* column-parallel (weight ``(out, in)`` split on ``out``: ``{"model", none}``): the output
  features are split the same way, ``(batch, ..., "model")``;
* row-parallel (split on ``in``: ``{none, "model"}``): the output is whole on every model
  shard, ``(batch, ..., none)`` — XLA's SPMD partitioner sums the partial products there
  (an all-reduce, or a reduce-scatter where the next use is split).

The leading dimension is the batch: it stays split over the data axis. Outside the
context, or for a weight with no such spec (replicated, or run op by op on arrays), the
output is left alone: one ContextVar read per layer call, at trace time.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..core import type_of
from ..frontend.shard_map import with_sharding_constraint


@dataclasses.dataclass(frozen=True)
class _Context:
    mesh: Mesh
    data_axis: str | None
    model_axis: str | None


_ACTIVE: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "tracegraph_nn_activation_sharding", default=None
)


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, *, data_axis: str | None = "data",
                        model_axis: str | None = "model"):
    """Within this context, `Linear` layers whose weights are split over ``model_axis``
    (by ``in_shardings``, see `tg.nn.parallel.Plan`) constrain their outputs so that XLA's
    SPMD partitioner splits activations Megatron-style; the leading (batch) dimension is
    kept split over ``data_axis``. Axes the mesh lacks are ignored.

    Example::

        with tg.nn.parallel.activation_sharding(mesh):
            loss = loss_fn(model, batch)      # inside a tg.jit with in_shardings
    """
    names = set(mesh.axis_names)
    ctx = _Context(mesh, data_axis if data_axis in names else None,
                   model_axis if model_axis in names else None)
    token = _ACTIVE.set(ctx)
    try:
        yield ctx
    finally:
        _ACTIVE.reset(token)


def linear_output(y, weight):
    """``y`` (a `Linear`'s output) constrained as its ``weight``'s placement asks, inside
    `activation_sharding`; else ``y`` itself."""
    ctx = _ACTIVE.get()
    if ctx is None or ctx.model_axis is None:
        return y
    spec = type_of(weight).sharding
    if spec is None or len(spec) != 2:
        return y
    if spec == (ctx.model_axis, None):
        last = ctx.model_axis  # column-parallel: the output features are split
    elif spec == (None, ctx.model_axis):
        last = None  # row-parallel: the output is summed over the model shards
    else:
        return y
    shape = type_of(y).shape
    if not shape:
        return y
    lead = [None] * (len(shape) - 1)
    if lead and ctx.data_axis is not None and shape[0] % ctx.mesh.shape[ctx.data_axis] == 0:
        lead[0] = ctx.data_axis
    return with_sharding_constraint(y, NamedSharding(ctx.mesh, PartitionSpec(*lead, last)))
