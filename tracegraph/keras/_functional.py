"""Keras' functional API: `Input` gives a symbolic `KerasTensor`; calling layers on
KerasTensors records which layer ran on what (`Node`), and ``Model(inputs, outputs)``
replays that record on real inputs (`Wiring`).

A layer called on KerasTensors builds from their shapes and finds its output shape by
running once on a small zero batch (the batch dimension and any other unknown dimension
are tried at two sizes, and the dimensions that follow them come out as None), so every
layer's shape rule is its real implementation: there is no second shape function to
disagree with it.

Example::

    inputs = tg.keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = tg.keras.Model(inputs, outputs)
"""

from __future__ import annotations

import itertools
import typing

import jax
import numpy as np

from ..errors import ShapeError
from ..frontend.tape import no_grad
from ..nn.init import param_dtype

_IDS = itertools.count()
OUT_SHAPE = "_tg_keras_output_shape"  # a layer's bookkeeping: its last output shape (summary)


class Node(typing.NamedTuple):
    """One recorded layer call: the layer, its positional arguments (KerasTensors inside
    a pytree), its keyword arguments, and the KerasTensors it returned."""

    layer: object
    args: tuple
    kwargs: dict
    outputs: list


class KerasTensor:
    """A symbolic tensor of the functional API: a shape (None for unknown sizes, the
    batch first), a dtype, and the layer call that made it (None for an `Input`)."""

    __array_priority__ = 100

    def __init__(self, shape, dtype="float32", name=None, node=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(param_dtype(dtype)).name
        self.name = name
        self.node = node
        self.id = next(_IDS)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_history(self):
        return self.node

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self):
        raise TypeError("a KerasTensor is symbolic: it has no value to test")


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """``keras.Input``: a symbolic input of ``shape`` (without the batch dimension).

    Example::

        x = tg.keras.Input(shape=(28, 28, 1))       # KerasTensor (None, 28, 28, 1)
    """
    if sparse:
        raise NotImplementedError("keras.Input: sparse inputs are not supported")
    if batch_shape is None:
        if shape is None:
            raise ShapeError("keras.Input needs shape= (or batch_shape=)")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        batch_shape = (batch_size, *shape)
    return KerasTensor(batch_shape, dtype or "float32", name=name or f"input_layer_{next(_IDS)}")


def _is_kt(x) -> bool:
    return isinstance(x, KerasTensor)


def _zeros(kt: KerasTensor, unknown: int):
    return np.zeros(tuple(unknown if d is None else d for d in kt.shape), kt.dtype)


def _concrete_run(layer, args, kwargs, unknown: int):
    concrete = jax.tree_util.tree_map(lambda kt: _zeros(kt, unknown), args, is_leaf=_is_kt)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with no_grad():
        out = layer(*concrete, **kwargs)
    return jax.tree_util.tree_map(lambda a: (tuple(a.shape), np.dtype(a.dtype).name), out,
                                  is_leaf=lambda a: hasattr(a, "shape"))


def _merge_shapes(a, b):
    (sa, dt), (sb, _) = a, b
    if len(sa) != len(sb):
        return (tuple(None for _ in sa), dt)
    return (tuple(x if x == y else None for x, y in zip(sa, sb)), dt)


def infer_outputs(layer, args, kwargs):
    """The output (shape, dtype) pytree of ``layer(*args, **kwargs)`` on KerasTensors,
    unknown sizes as None (see the module docstring)."""
    first = _concrete_run(layer, args, kwargs, 2)
    second = _concrete_run(layer, args, kwargs, 3)
    return jax.tree_util.tree_map(_merge_shapes, first, second,
                                  is_leaf=lambda a: isinstance(a, tuple) and len(a) == 2
                                  and isinstance(a[1], str))


def symbolic_call(layer, args, kwargs):
    """``layer(*args, **kwargs)`` on KerasTensors: build, infer the outputs, record."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    specs = infer_outputs(layer, args, kwargs)
    node = Node(layer, tuple(args), dict(kwargs), [])
    is_spec = lambda a: isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], str)

    def make(spec):
        kt = KerasTensor(spec[0], spec[1], name=f"{layer.name}_output", node=node)
        node.outputs.append(kt)
        return kt

    out = jax.tree_util.tree_map(make, specs, is_leaf=is_spec)
    layer.__dict__[OUT_SHAPE] = jax.tree_util.tree_map(lambda s: s[0], specs, is_leaf=is_spec)
    return out


def output_shapes(layer, input_shape):
    """``compute_output_shape``: the output shape(s) for ``input_shape`` (batch first)."""
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
        args = ([KerasTensor(s) for s in input_shape],)
    else:
        args = (KerasTensor(input_shape),)
    specs = infer_outputs(layer, args, {})
    return jax.tree_util.tree_map(lambda s: s[0], specs,
                                  is_leaf=lambda a: isinstance(a, tuple) and len(a) == 2
                                  and isinstance(a[1], str))


# -- the recorded graph of a functional model -------------------------------------------------


class Wiring(typing.NamedTuple):
    """The static part of a functional model: which layer (an index into the model's
    ``layers``) runs on which values (ids), in order. Hashable, so it is static data of
    the model's pytree."""

    inputs_def: object  # treedef of the inputs
    input_ids: tuple
    steps: tuple  # (layer index, args treedef, argument ids (None: not a tensor), kwargs items, output treedef, output ids)
    outputs_def: object
    output_ids: tuple


def trace_wiring(inputs, outputs):
    """The layers (in call order) and the `Wiring` from ``inputs`` to ``outputs``."""
    in_leaves, in_def = jax.tree_util.tree_flatten(inputs, is_leaf=_is_kt)
    out_leaves, out_def = jax.tree_util.tree_flatten(outputs, is_leaf=_is_kt)
    for kt in (*in_leaves, *out_leaves):
        if not _is_kt(kt):
            raise ShapeError(f"keras.Model(inputs, outputs) takes KerasTensors (from "
                             f"keras.Input and layer calls), got {type(kt).__name__}")
    known = {kt.id for kt in in_leaves}
    order: list[Node] = []
    seen: set = set()

    def visit(kt):
        if kt.id in known:
            return
        node = kt.node
        if node is None:
            raise ShapeError(f"keras.Model: output depends on {kt.name!r}, an Input that is "
                             f"not among the model's inputs")
        if id(node) in seen:
            return
        for a in jax.tree_util.tree_leaves(node.args, is_leaf=_is_kt):
            if _is_kt(a):
                visit(a)
        seen.add(id(node))
        order.append(node)

    for kt in out_leaves:
        visit(kt)
    layers: list = []
    index: dict = {}
    steps = []
    for node in order:
        if id(node.layer) not in index:
            index[id(node.layer)] = len(layers)
            layers.append(node.layer)
        arg_leaves, arg_def = jax.tree_util.tree_flatten(node.args, is_leaf=_is_kt)
        ids = tuple(a.id if _is_kt(a) else None for a in arg_leaves)
        if any(i is None for i in ids):
            raise ShapeError(f"keras.Model: layer {node.layer.name!r} was called with a "
                             f"non-symbolic argument; pass constants as layer options")
        kwargs = tuple(sorted(node.kwargs.items()))
        o_leaves = jax.tree_util.tree_leaves(node.outputs, is_leaf=_is_kt)
        steps.append((index[id(node.layer)], arg_def, ids, kwargs,
                      tuple(kt.id for kt in o_leaves)))
    wiring = Wiring(in_def, tuple(kt.id for kt in in_leaves), tuple(steps), out_def,
                    tuple(kt.id for kt in out_leaves))
    return layers, wiring


def run_wiring(layers, wiring: Wiring, inputs, training):
    """Replay the recorded calls on real ``inputs``."""
    if wiring.inputs_def.num_leaves == 1 and not isinstance(inputs, dict):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        leaves = [inputs]
    else:
        leaves = jax.tree_util.tree_leaves(inputs, is_leaf=_is_array)
    if len(leaves) != len(wiring.input_ids):
        raise ShapeError(f"the model takes {len(wiring.input_ids)} inputs, got {len(leaves)}")
    env = dict(zip(wiring.input_ids, leaves))
    for layer_index, arg_def, ids, kwargs, out_ids in wiring.steps:
        args = arg_def.unflatten([env[i] for i in ids])
        kw = dict(kwargs)
        if training is not None:
            kw.setdefault("training", training)
        out = layers[layer_index](*args, **kw)
        env.update(zip(out_ids, jax.tree_util.tree_leaves(out, is_leaf=_is_array)))
    return wiring.outputs_def.unflatten([env[i] for i in wiring.output_ids])


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")
