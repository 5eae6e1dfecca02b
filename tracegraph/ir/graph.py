"""The IR data structure: `Value`, `Node`, `Graph`.

SSA: every `Value` is defined exactly once — as a graph input, a constant, or a node
output — and nodes are kept in topological order. A `Node` names its op (a registry
name), its input Values, its static attributes, its output Values, the user source line
that created it (``location``) and its module scope.

Example::

    g = tg.trace(lambda x, w: tg.tanh(x @ w), tg.spec((2, 3)), tg.spec((3, 4)))
    print(g)                 # the text form (see docs/ir.md)
    g.nodes[0].op            # 'matmul'
    g2 = tg.Graph.from_json(g.to_json())
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from ..errors import IRError, public
from . import graphviz, parser, printer, serialize, verifier
from .tree import TreeSpec, default_in_tree, default_out_tree
from .types import TensorType


class Value:
    """An SSA value. ``data`` holds the array of a constant; ``producer`` is the Node that
    defines it (None for inputs and constants); ``name`` is a printing hint."""

    __slots__ = ("type", "name", "producer", "data", "__weakref__")

    def __init__(self, type: TensorType, name: str | None = None, producer=None, data=None):
        self.type = type
        self.name = name
        self.producer = producer
        self.data = data

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def __repr__(self):
        return f"Value(%{self.name or '?'}: {self.type})"


class Node:
    """One operation: ``outputs = op(*inputs, **attrs)``."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "location", "scope")

    def __init__(self, op: str, inputs, attrs: dict, outputs, location=None, scope=""):
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = dict(attrs)
        self.outputs = tuple(outputs)
        self.location = location
        self.scope = scope
        for v in self.outputs:
            v.producer = self

    @classmethod
    def make(cls, op: str, inputs: tuple, attrs: dict, outputs, location=None, scope="") -> "Node":
        """A Node from a tuple of inputs and a dict of attributes it may keep as they are
        (no copies: define-by-run makes one node per op it runs)."""
        n = cls.__new__(cls)
        n.op, n.inputs, n.attrs, n.location, n.scope = op, inputs, attrs, location, scope
        n.outputs = outputs = tuple(outputs)
        for v in outputs:
            v.producer = n
        return n

    def __repr__(self):
        ins = ", ".join(f"%{v.name or '?'}" for v in self.inputs)
        return f"Node({self.op}({ins}) @ {self.location or '?'})"


# Backends register how a Graph is run (`g(*args)`, `g.interpret(*args)`); the IR layer
# itself knows nothing of JAX.
_RUNNERS: dict[str, Callable] = {}


def register_runner(kind: str, fn: Callable):
    _RUNNERS[kind] = fn


class Graph:
    """A function in tracegraph IR.

    Attributes:
      name: the function's name.
      inputs: list of input Values (flattened from the argument pytree).
      constants: list of constant Values (each with ``.data``, a numpy array).
      nodes: list of Nodes in topological order.
      outputs: list of output Values (flattened from the result pytree).
      in_tree: `TreeSpec` of ``(args, kwargs)``; out_tree: `TreeSpec` of the result.
    """

    def __init__(self, name, inputs, constants, nodes, outputs, in_tree=None, out_tree=None):
        self.name = name
        self.inputs = list(inputs)
        self.constants = list(constants)
        self.nodes = list(nodes)
        self.outputs = list(outputs)
        self.in_tree = in_tree if in_tree is not None else default_in_tree(len(self.inputs))
        self.out_tree = out_tree if out_tree is not None else default_out_tree(len(self.outputs))
        self._cache = {}

    # -- types --------------------------------------------------------------------
    @property
    def in_types(self) -> list[TensorType]:
        return [v.type for v in self.inputs]

    @property
    def out_types(self) -> list[TensorType]:
        return [v.type for v in self.outputs]

    # -- running (the backends provide these) ---------------------------------------
    @public("graph")
    def __call__(self, *args, **kwargs):
        """Run the graph compiled with ``jax.jit`` (compiled once per graph)."""
        return _runner("jit")(self, *args, **kwargs)

    @public("graph")
    def interpret(self, *args, **kwargs):
        """Run the graph node by node with the eager interpreter."""
        return _runner("interpret")(self, *args, **kwargs)

    # -- text, JSON, files, Graphviz -----------------------------------------------
    def __str__(self):
        return printer.format_graph(self)

    def __repr__(self):
        return f"<tg.Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"

    @classmethod
    def parse(cls, text: str, constants: dict | None = None) -> "Graph":
        """Read a graph from its text form (``str(graph)``); ``constants`` supplies the
        arrays of constants the text elides (see `tracegraph.ir.parser.text_constants`).

        Example::

            g2 = tg.Graph.parse(str(g))
        """
        return parser.parse_graph(text, parser.IRClasses(cls, Node, Value), constants)

    def to_json(self, indent: int | None = None) -> str:
        """The JSON form (docs/ir.md): versioned, constants as base64 bytes."""
        return serialize.to_json(self, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes, arrays: dict | None = None) -> "Graph":
        """Load and validate the JSON form; raises `tg.IRError` for anything malformed.
        ``arrays`` supplies constants the JSON refers to by name (``{"array": name}``)."""
        return serialize.from_json(text, parser.IRClasses(cls, Node, Value), arrays)

    def to_dot(self) -> str:
        """Graphviz DOT text: one node per op, clusters per scope and per subgraph."""
        return graphviz.to_dot(self)

    def render(self, path, format: str | None = None) -> str:
        """Draw the graph to ``path`` (``.svg``/``.png``/``.pdf``) with Graphviz ``dot``;
        raises `tg.Error` naming the package to install when ``dot`` is missing."""
        return graphviz.render(self, path, format)

    def verify(self) -> "Graph":
        """Check SSA, order, ops, attributes and types; raise `tg.IRError` if wrong."""
        verifier.verify(self)
        return self

    # -- misc -----------------------------------------------------------------------
    def values(self):
        """Every Value of the graph: inputs, constants, node outputs (in order)."""
        yield from self.inputs
        yield from self.constants
        for n in self.nodes:
            yield from n.outputs

    def flatten_args(self, args, kwargs) -> list:
        try:
            leaves = flatten_by_spec(self.in_tree, (tuple(args), dict(kwargs)))
        except IRError as e:
            raise IRError(
                f"graph {self.name}: the arguments do not match its inputs "
                f"({len(self.inputs)} arrays: {', '.join(v.name or '?' for v in self.inputs[:8])}"
                f"{', ...' if len(self.inputs) > 8 else ''}): {e}"
            ) from None
        if len(leaves) != len(self.inputs):
            raise IRError(
                f"graph {self.name}: expected {len(self.inputs)} array inputs, got {len(leaves)}"
            )
        return leaves

    def unflatten_outputs(self, leaves):
        return self.out_tree.unflatten(leaves)


def _runner(kind):
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise IRError(f"no {kind} backend is loaded (import tracegraph)") from None


def flatten_by_spec(spec: TreeSpec, obj) -> list:
    """Flatten ``obj`` following ``spec`` (for calling graphs that came from a file)."""
    if spec.py_treedef is not None:
        try:
            return spec.py_treedef.flatten_up_to(obj)
        except (ValueError, TypeError) as e:
            raise IRError(f"arguments do not match the graph's structure: {e}") from None
    out: list = []
    _flatten(spec, obj, out, "args")
    return out


def _flatten(spec: TreeSpec, obj, out: list, path: str):
    k = spec.kind
    if k == "leaf":
        out.append(obj)
    elif k == "none":
        if obj is not None:
            raise IRError(f"{path}: expected None, got {type(obj).__name__}")
    elif k == "dict":
        if not isinstance(obj, dict) or sorted(obj, key=str) != sorted(spec.keys, key=str):
            raise IRError(f"{path}: expected a dict with keys {list(spec.keys)}, got {obj!r:.80}")
        for key, child in zip(spec.keys, spec.children):
            _flatten(child, obj[key], out, f"{path}[{key!r}]")
    else:
        if k == "custom" and not isinstance(obj, (tuple, list)):
            # a registered pytree node (a tg.nn.Module, a namedtuple ...): its children
            obj = jax.tree_util.tree_flatten(obj, is_leaf=lambda c, top=obj: c is not top)[0]
        if not isinstance(obj, (tuple, list)) or len(obj) != len(spec.children):
            raise IRError(f"{path}: expected a sequence of {len(spec.children)}, got {obj!r:.80}")
        for i, (child, item) in enumerate(zip(spec.children, obj)):
            _flatten(child, item, out, f"{path}[{i}]")


def constant(data, name: str | None = None) -> Value:
    """A constant Value holding a numpy array."""
    arr = np.asarray(data)
    return Value(TensorType(arr.shape, arr.dtype), name=name, data=arr)
