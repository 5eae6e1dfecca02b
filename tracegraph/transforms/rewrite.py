"""The machinery every optimization pass shares: rebuild a graph node by node without
touching the original, and apply a pass to the subgraphs of control-flow nodes.

A pass walks the nodes of its input graph in order and, for each, either keeps it,
replaces its outputs by values it already has, or adds new nodes. `Rewrite` holds the
map from old values to new ones and builds the result:

- a node whose inputs and attributes are unchanged is kept as the same `Node` object
  (Nodes are shared between the old and the new graph only when unchanged);
- a node whose inputs were remapped becomes a new Node with fresh output Values (a
  Node's constructor points its outputs back at it, so reusing the old outputs would
  mutate the input graph);
- if nothing changed at all, `finish` returns the input graph itself.

NOTE: control-flow nodes (``cond``, ``while_loop``, ``scan``) hold closed subgraphs as
attributes of kind ``graph``/``graphs``. `SubgraphMap` applies a pass to each subgraph
once (memoized by identity), so a subgraph shared by several nodes maps to one result
object, and a node whose subgraphs did not change keeps its attribute dict.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from ..errors import IRError
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.types import TensorType, is_float


def graph_attr_keys(op_name: str) -> tuple[str, ...]:
    """The attribute names of ``op_name`` that hold subgraphs."""
    try:
        op = registry.lookup(op_name)
    except IRError:  # an unknown op: the verifier reports it, passes leave it alone
        return ()
    return tuple(k for k, a in op.attrs.items() if a.kind in ("graph", "graphs"))


def subgraphs_of(node) -> list:
    """Every subgraph a node holds (in attribute order)."""
    out = []
    for key in graph_attr_keys(node.op):
        val = node.attrs.get(key)
        if isinstance(val, tuple):
            out.extend(val)
        elif val is not None:
            out.append(val)
    return out


class SubgraphMap:
    """Applies a Graph -> Graph function to subgraph attributes, once per subgraph."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.memo: dict[int, tuple] = {}  # id(old) -> (old, new); keeps `old` alive

    def graph(self, g):
        hit = self.memo.get(id(g))
        if hit is None:
            hit = self.memo[id(g)] = (g, self.fn(g))
        return hit[1]

    def attrs(self, node) -> dict:
        """``node.attrs`` with each subgraph passed through the function; the same dict
        object when no subgraph changed."""
        keys = graph_attr_keys(node.op)
        if not keys:
            return node.attrs
        new = None
        for key in keys:
            val = node.attrs.get(key)
            if val is None:
                continue
            if isinstance(val, tuple):
                mapped = tuple(self.graph(g) for g in val)
                changed = any(a is not b for a, b in zip(mapped, val))
            else:
                mapped = self.graph(val)
                changed = mapped is not val
            if changed:
                if new is None:
                    new = dict(node.attrs)
                new[key] = mapped
        return node.attrs if new is None else new


def node_ids(graph) -> set[int]:
    """ids of every Node of a graph and its subgraphs."""
    out: set[int] = set()
    seen: set[int] = set()
    stack = [graph]
    while stack:
        g = stack.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        for node in g.nodes:
            out.add(id(node))
            stack.extend(subgraphs_of(node))
    return out


class Rewrite:
    """Builds the result of one pass over ``graph`` (see the module docstring).

    Example (a pass that keeps every node)::

        rw = Rewrite(g)
        for node in g.nodes:
            rw.keep(node, [rw.value(v) for v in node.inputs], node.attrs)
        assert rw.finish() is g
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.env: dict[int, Value] = {}
        self.nodes: list[Node] = []
        self.constants: list[Value] = list(graph.constants)
        self.changed = False
        # `env` is keyed by id(): keep every replaced value alive, so that no id is
        # reused by a value made later in the pass (a node a rule made and replaced at
        # once is referenced by nothing else)
        self._replaced: list[Value] = []

    def value(self, v: Value) -> Value:
        """The value of the new graph that stands for ``v``."""
        return self.env.get(id(v), v)

    def inputs(self, node) -> list[Value]:
        return [self.env.get(id(v), v) for v in node.inputs]

    def keep(self, node: Node, ins: list[Value], attrs: dict, copy: bool = False) -> tuple[Value, ...]:
        """Emit ``node`` with (possibly remapped) inputs and attributes; returns the
        outputs that stand for its old outputs. ``copy`` forces a new Node even when
        nothing changed (when nodes of a subgraph are inlined)."""
        if not copy and attrs is node.attrs and all(a is b for a, b in zip(ins, node.inputs)):
            self.nodes.append(node)
            return node.outputs
        outs = [Value(o.type, o.name) for o in node.outputs]
        new = Node(node.op, ins, attrs, outs, node.location, node.scope)
        self.nodes.append(new)
        self.replace(node, new.outputs)
        return new.outputs

    def add_node(self, node: Node) -> tuple[Value, ...]:
        """Append a node the pass made (its inputs already values of the new graph)."""
        self.nodes.append(node)
        self.changed = True
        return node.outputs

    def replace(self, node: Node, values) -> None:
        """Let ``values`` stand for the outputs of ``node`` from now on."""
        for old, new in zip(node.outputs, values):
            if old is not new:
                self.env[id(old)] = new
                self._replaced.append(old)
                self.changed = True

    def add_constant(self, array, weak: bool = False) -> Value:
        v = Value(TensorType(array.shape, array.dtype, weak), data=array)
        self.constants.append(v)
        self.changed = True
        return v

    def set_constants(self, constants: list[Value]) -> None:
        if len(constants) != len(self.constants) or any(
            a is not b for a, b in zip(constants, self.constants)
        ):
            self.changed = True
        self.constants = list(constants)

    def drop(self, node: Node) -> None:
        """Leave ``node`` out of the result (its outputs must be unused)."""
        self.changed = True

    def finish(self) -> Graph:
        """The new graph, or the input graph itself when nothing changed."""
        outputs = [self.value(v) for v in self.graph.outputs]
        if not self.changed:
            return self.graph
        g = self.graph
        return Graph(g.name, g.inputs, self.constants, self.nodes, outputs, g.in_tree, g.out_tree)


def constant_array(v: Value, limit: int):
    """The numpy array of a constant ``v`` with at most ``limit`` elements, else None.

    Tracers (constants captured from an enclosing JAX trace) are never looked into."""
    data = v.data
    if data is None or v.type.size > limit:
        return None
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    if isinstance(data, jax.core.Tracer):
        return None
    try:
        return np.asarray(data)
    except Exception:  # noqa: BLE001 - data we cannot read is data we do not look at
        return None


def splat_of_array(arr: np.ndarray):
    """The one value every element of ``arr`` has (a numpy scalar), or None: for no
    elements, unequal elements, NaNs (NaN != NaN), or zeros of both signs."""
    if arr.size == 0:
        return None
    flat = arr.reshape(-1)
    first = flat[0]
    if not bool(np.all(flat == first)):
        return None
    if is_float(arr.dtype) and not bool(np.all(np.signbit(flat) == np.signbit(first))):
        return None
    return first
