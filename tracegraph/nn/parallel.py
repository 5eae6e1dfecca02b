"""``tg.nn.parallel``: data and tensor parallelism for `tg.nn` models on XLA's SPMD
partitioner, chosen by a device mesh (``jax.make_mesh``; the axes ``"data"`` and
``"model"``).

* **Data parallelism** (axis ``"data"``): every parameter is replicated, each batch is
  split along its leading dimension; XLA sums the gradients over the data shards
  (all-reduce).
* **Tensor parallelism** (axis ``"model"``, Megatron-style): in an MLP (two `Linear`
  layers with only activations or dropout between them, in a `Sequential`, or a
  `TransformerEncoderLayer`'s ``linear1``/``linear2``) the first `Linear` is split by
  its output features (column-parallel) and the second by its input features
  (row-parallel); in `MultiHeadAttention` the q/k/v projections are split by heads
  (column) and the output projection by its input (row). Embeddings, norms and every
  other parameter are replicated. `Linear` stores its weight as ``(out, in)`` (PyTorch's
  layout), so column-parallel is ``P("model", None)`` and row-parallel
  ``P(None, "model")``.

The parameters are placed with ``jax.device_put``; the step is a `tg.jit` with
``in_shardings``/``out_shardings`` (so its graph shows each placement), and inside it
each split `Linear` constrains its output (`tg.with_sharding_constraint`, see
`activation_sharding`): XLA's SPMD partitioner inserts the all-gathers, reduce-scatters
and all-reduces.

Example::

    mesh = tg.nn.parallel.parse_mesh("data=4,model=2")   # jax.make_mesh((4, 2), ...)
    plan = tg.nn.parallel.plan(model, mesh)
    state = plan.place(tg.train.TrainState(model, optimizer.init(model), 0))
    step = plan.jit(tg.train.make_step(loss_fn, optimizer), state)
    state, metrics = step(state, plan.place_batch(batch))
"""

from __future__ import annotations

import fnmatch
import functools
import re

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..errors import Error, ShapeError, public_functions
from ..jit import JitFunction, jit
from ._activation import GELU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from ._activation_sharding import activation_sharding
from ._attention import MultiHeadAttention
from ._dropout import Dropout
from ._linear import Identity, Linear
from ._module import Module
from ._sequential import Sequential
from ._transformer import TransformerEncoderLayer

_ELEMENTWISE = (GELU, ReLU, Sigmoid, SiLU, Tanh, Softmax, LogSoftmax, Dropout, Identity)
_ROLES = ("column", "row", "replicated")
_SPEC_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(\d+)\s*$")


def mesh_shape(spec: str) -> dict:
    """The axis sizes a mesh spec string names, in order: ``"data=4,model=2"`` ->
    ``{"data": 4, "model": 2}``; a `tg.Error` if malformed.

    Example::

        n = math.prod(tg.nn.parallel.mesh_shape("data=4,model=2").values())   # 8 devices
    """
    if not isinstance(spec, str) or not spec.strip():
        raise Error(f"a mesh spec is a string like 'data=4,model=2', got {spec!r:.60}")
    shape: dict[str, int] = {}
    for part in spec.split(","):
        m = _SPEC_RE.match(part)
        if m is None:
            raise Error(f"mesh spec {spec!r}: {part.strip()!r} is not NAME=SIZE (e.g. 'data=4,model=2')")
        name, size = m.group(1), int(m.group(2))
        if name in shape:
            raise Error(f"mesh spec {spec!r} names the axis {name!r} twice")
        if size < 1:
            raise Error(f"mesh spec {spec!r}: the axis {name!r} has size {size}; sizes are >= 1")
        shape[name] = size
    return shape


def parse_mesh(spec: str, *, devices=None) -> Mesh:
    """The device mesh a spec string names: ``"data=4,model=2"`` is
    ``jax.make_mesh((4, 2), ("data", "model"))`` (JAX's Auto axes), over the first
    devices of ``devices`` (default ``jax.devices()``). A `tg.Error` for a malformed
    spec, or when there are too few devices (on CPU the message says how to simulate
    them).

    Example::

        mesh = tg.nn.parallel.parse_mesh("data=8")
    """
    shape = mesh_shape(spec)
    names, sizes = list(shape), list(shape.values())
    devices = list(jax.devices() if devices is None else devices)
    need = int(np.prod(sizes))
    if need > len(devices):
        platform = devices[0].platform if devices else "no"
        hint = (f"; on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={need} before "
                "JAX is imported" if platform == "cpu" else "")
        raise Error(f"mesh {spec!r} needs {need} devices, {len(devices)} {platform} device(s) "
                    f"are available{hint}")
    return jax.make_mesh(tuple(sizes), tuple(names), axis_types=(AxisType.Auto,) * len(names),
                         devices=devices[:need])


def _axis_size(mesh, axis) -> int | None:
    """The size of ``axis`` in ``mesh`` (a Mesh or a dict of sizes), or None if it has none."""
    shape = dict(mesh) if isinstance(mesh, dict) else dict(mesh.shape)
    return shape.get(axis)


def _linear_pairs(seq: Sequential):
    """The (first, second) `Linear` pairs of an MLP in ``seq``: two Linears with only
    elementwise layers (activations, dropout, functions) between them."""
    pairs, first = [], None
    for layer in seq.layers:
        if isinstance(layer, Linear):
            if first is not None and first.out_features == layer.in_features:
                pairs.append((first, layer))
                first = None
            else:
                first = layer
        elif isinstance(layer, _ELEMENTWISE) or not isinstance(layer, Module):
            continue
        else:
            first = None
    return pairs


def _roles(model) -> tuple[dict, dict]:
    """The Megatron rules (module doc): id(Linear) -> "column" | "row", and id(Linear) ->
    (number of heads, attention path) for the q/k/v projections (split by whole heads)."""
    roles: dict[int, str] = {}
    heads: dict[int, tuple[int, str]] = {}
    for path, m in model.named_modules():
        if isinstance(m, MultiHeadAttention):
            for p in (m.q_proj, m.k_proj, m.v_proj):
                roles[id(p)] = "column"
                heads[id(p)] = (m.num_heads, path)
            roles[id(m.out_proj)] = "row"
        elif isinstance(m, TransformerEncoderLayer):
            roles[id(m.linear1)], roles[id(m.linear2)] = "column", "row"
        elif isinstance(m, Sequential):
            for a, b in _linear_pairs(m):
                roles[id(a)], roles[id(b)] = "column", "row"
    return roles, heads


def _linear_specs(layer: Linear, role: str, axis: str) -> dict:
    """id(param) -> PartitionSpec of a Linear's weight ``(out, in)`` and bias ``(out,)``."""
    if role == "column":
        w, b = PartitionSpec(axis, None), PartitionSpec(axis)
    elif role == "row":
        w, b = PartitionSpec(None, axis), PartitionSpec()
    else:
        w = b = PartitionSpec()
    out = {id(layer.weight): w}
    if layer.bias is not None:
        out[id(layer.bias)] = b
    return out


def partition_specs(model: Module, mesh=None, *, model_axis: str = "model", rules=None):
    """The ``PartitionSpec`` of each parameter of ``model``, as a pytree shaped like it:
    replicated (``P()``) but for the tensor-parallel `Linear` layers (module doc) when
    ``mesh`` (a Mesh, or a dict of axis sizes) has ``model_axis``. ``rules`` overrides
    layers by module path: ``{"blocks.*.mlp.0": "replicated", "head": "column"}``
    (``fnmatch`` patterns over ``model.named_modules()`` paths; roles ``"column"``,
    ``"row"``, ``"replicated"``). A `tg.ShapeError` if a split width (heads, hidden
    features) does not divide over the model axis.

    Example::

        specs = tg.nn.parallel.partition_specs(block, {"data": 4, "model": 2})
        specs.mlp.layers[0].weight          # PartitionSpec('model', None)
    """
    if not isinstance(model, Module):
        raise Error(f"partition_specs takes a tg.nn.Module, got {type(model).__name__}")
    rules = dict(rules or {})
    for pattern, given in rules.items():
        if given not in _ROLES:
            raise Error(f"partition_specs rules: {pattern!r} -> {given!r}; a role is one of {_ROLES}")
    linears = [(p, m) for p, m in model.named_modules() if isinstance(m, Linear)]
    for pattern in rules:
        if not any(fnmatch.fnmatchcase(p, pattern) for p, _ in linears):
            raise Error(f"partition_specs rules: {pattern!r} matches no Linear layer of the model "
                        f"(its Linear layers: {', '.join(p for p, _ in linears[:12]) or 'none'})")
    size = None if mesh is None else _axis_size(mesh, model_axis)
    table: dict[int, PartitionSpec] = {}
    if mesh is None or size is not None:
        roles, heads = _roles(model)
        for path, m in linears:
            role = roles.get(id(m))
            for pattern, given in rules.items():  # the last matching rule wins
                if fnmatch.fnmatchcase(path, pattern):
                    role = given
            if role is None:
                continue
            if size and role == "column" and id(m) in heads and heads[id(m)][0] % size:
                n, where = heads[id(m)]
                raise ShapeError(
                    f"tensor parallelism: the number of heads of {where} is {n}, which does not "
                    f"split over the mesh axis {model_axis!r} of size {size}; choose a "
                    f"{model_axis!r} size that divides it, or keep its projections replicated "
                    f"(rules={{'{where}.*': 'replicated'}})")
            need = {"column": m.out_features, "row": m.in_features}.get(role, 0)
            if size and need % size:
                raise ShapeError(
                    f"tensor parallelism: {path} ({role}-parallel) has {need} features, which do "
                    f"not split over the mesh axis {model_axis!r} of size {size}; choose a size "
                    f"that divides it, or keep it replicated (rules={{'{path}': 'replicated'}})")
            table.update(_linear_specs(m, role, model_axis))
    return jax.tree_util.tree_map(lambda a: table.get(id(a), PartitionSpec()), model)


class Plan:
    """How one model trains on one mesh (made by `plan`): the parameters' shardings, and
    the helpers that place a train state and batches and compile the step.

    Attributes: ``mesh``, ``data_axis`` and ``model_axis`` (None when the mesh lacks
    them), ``specs`` (`partition_specs` of the model), ``param_shardings`` (the same
    pytree of ``NamedSharding``s).
    """

    def __init__(self, model: Module, mesh: Mesh, *, data_axis: str = "data",
                 model_axis: str = "model", rules=None):
        if not isinstance(mesh, Mesh):
            raise Error(f"plan takes a jax.sharding.Mesh (jax.make_mesh or parse_mesh), got "
                        f"{type(mesh).__name__}")
        names = set(mesh.axis_names)
        self.mesh = mesh
        self.data_axis = data_axis if data_axis in names else None
        self.model_axis = model_axis if model_axis in names else None
        if self.data_axis is None and self.model_axis is None:
            raise Error(f"plan: the mesh {dict(mesh.shape)} has neither a {data_axis!r} nor a "
                        f"{model_axis!r} axis")
        self.specs = partition_specs(model, mesh, model_axis=model_axis, rules=rules)
        self.param_shardings = jax.tree_util.tree_map(lambda s: NamedSharding(mesh, s), self.specs,
                                                      is_leaf=_is_spec)
        self._model_type = jax.tree_util.tree_structure(model)
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.batch_sharding = (NamedSharding(mesh, PartitionSpec(self.data_axis))
                               if self.data_axis else self.replicated)

    def __repr__(self):
        split = sum(1 for s in jax.tree_util.tree_leaves(self.specs, is_leaf=_is_spec) if any(s))
        total = len(jax.tree_util.tree_leaves(self.specs, is_leaf=_is_spec))
        return (f"<tg.nn.parallel.Plan mesh={dict(self.mesh.shape)} data={self.data_axis!r} "
                f"model={self.model_axis!r}: {split} of {total} parameters split>")

    # -- shardings and placement ---------------------------------------------------------
    def _is_model(self, x) -> bool:
        return isinstance(x, Module) and jax.tree_util.tree_structure(x) == self._model_type

    def shardings(self, tree):
        """A ``NamedSharding`` for each leaf of ``tree`` (a model, optimizer state,
        `tg.train.TrainState` ...): every subtree shaped like the model (the parameters,
        Adam's moments) gets the parameters' shardings, every other leaf is replicated."""
        return jax.tree_util.tree_map(
            lambda x: self.param_shardings if self._is_model(x) else self.replicated,
            tree, is_leaf=self._is_model)

    def place(self, tree):
        """``tree`` moved onto the mesh as `shardings` says (``jax.device_put``)."""
        return jax.device_put(tree, self.shardings(tree))

    def _check_batch(self, batch, what="place_batch"):
        if self.data_axis is None:
            return
        n = self.mesh.shape[self.data_axis]
        for path, x in jax.tree_util.tree_flatten_with_path(batch)[0]:
            shape = np.shape(x)
            if not shape or shape[0] % n:
                where = jax.tree_util.keystr(path) or "the batch"
                rows = f"{shape[0]} rows" if shape else "no batch dimension"
                raise ShapeError(
                    f"{what}: {where} has {rows} (shape {tuple(shape)}), which do not split "
                    f"over the mesh axis {self.data_axis!r} of size {n}; use a batch size that "
                    f"is a multiple of {n}"
                )

    def place_batch(self, batch):
        """``batch`` split along its leading dimension over the data axis (replicated
        when the mesh has none). A `tg.ShapeError` if a leaf's leading dimension does
        not divide by the data axis size."""
        self._check_batch(batch)
        return jax.device_put(batch, self.batch_sharding)

    def batches(self, data):
        """``data`` (an iterable of batches) with each batch placed by `place_batch`, as
        it is drawn; ``len()`` is ``data``'s."""
        return _PlacedBatches(self, data)

    # -- the step -----------------------------------------------------------------------
    def jit(self, step, state, **jit_kwargs) -> JitFunction:
        """``step(state, batch) -> (state, metrics)`` compiled with `tg.jit` for this
        mesh: ``in_shardings`` are the state's `shardings` and the batch split over the
        data axis; ``out_shardings`` keep the state where it is and replicate the
        metrics. The step runs inside `activation_sharding`, so split `Linear` layers
        constrain their outputs. ``state`` (or one shaped like it) gives the structure;
        other keywords go to `tg.jit` (e.g. ``dump=``).
        """
        shardings = self.shardings(state)
        mesh, data_axis, model_axis = self.mesh, self.data_axis, self.model_axis

        @functools.wraps(step)
        def sharded_step(state, batch):
            with activation_sharding(mesh, data_axis=data_axis, model_axis=model_axis):
                return step(state, batch)

        return jit(sharded_step, in_shardings=(shardings, self.batch_sharding),
                   out_shardings=(shardings, self.replicated), **jit_kwargs)


class _PlacedBatches:
    def __init__(self, plan: Plan, data):
        self._plan, self._data = plan, data

    def __iter__(self):
        for batch in self._data:
            yield self._plan.place_batch(batch)

    def __len__(self):
        return len(self._data)


def _is_spec(x) -> bool:
    return isinstance(x, PartitionSpec)


def plan(model: Module, mesh: Mesh, *, data_axis: str = "data", model_axis: str = "model",
         rules=None) -> Plan:
    """The `Plan` of ``model`` on ``mesh``: data parallel over ``data_axis``, tensor
    parallel over ``model_axis`` (either may be missing from the mesh). ``rules``: see
    `partition_specs`.

    Example::

        plan = tg.nn.parallel.plan(model, tg.nn.parallel.parse_mesh("data=4,model=2"))
        plan.specs                          # each parameter's PartitionSpec
    """
    return Plan(model, mesh, data_axis=data_axis, model_axis=model_axis, rules=rules)


public_functions(globals(), exclude=("activation_sharding",), kind=Error)

__all__ = ["Plan", "activation_sharding", "mesh_shape", "parse_mesh", "partition_specs", "plan"]
