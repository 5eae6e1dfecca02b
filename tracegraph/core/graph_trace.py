"""Recording ops as IR: `GraphBuilder` (state) and `GraphTrace` (policy).

A `GraphTrace` turns every op bound under it into a `Node` of its `GraphBuilder`;
its Tensors are abstract (type only). It is the trace of ``tg.jit``/``tg.trace``, of
control-flow bodies, and of the backward graphs autodiff builds. Define-by-run
(``frontend.eager.EagerTrace``) is the same policy plus running each op.

Graph traces nest: a Tensor of an enclosing trace used inside (a closure in a
control-flow body) is *captured* — it becomes an explicit input of the inner graph,
and the enclosing Tensor is remembered so the caller can pass it in.

NOTE: this lives in ``core`` (not the front end) because op rules need it: the VJP
rules of control-flow ops trace their backward bodies into graphs (`trace_graph`),
as JAX's ``lax`` calls ``partial_eval``.
"""

from __future__ import annotations

import jax
import numpy as np

from ..errors import TracingError, user_location, user_location_long
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.tree import TreeSpec, default_out_tree
from ..ir.types import TensorType, interned, is_key, key_impl
from ..ir.verifier import verify
from .evaluate import eval_graph
from .execute import weak_value
from .tensor import Tensor
from .trace import Trace, bind, canonical_array, check_and_infer, is_python_scalar, python_scalar_dtype, using


class GraphBuilder:
    """The state of one graph being built: inputs, constants, nodes, captures, the
    current scope. No policy: `GraphTrace` decides what goes in."""

    def __init__(self, name: str = "graph", scopes=()):
        self.name = name
        self.inputs: list[Value] = []
        self.constants: list[Value] = []
        self.nodes: list[Node] = []
        # a nested builder (a control-flow body, a function being differentiated) starts
        # in the scope it was opened in, so its nodes keep their module path
        self.scopes: list[str] = list(scopes)
        # id(outer Value) -> (inner input Value, outer Tensor): closures
        self.captures: dict[int, tuple[Value, Tensor]] = {}
        self._weak_constants: dict = {}
        self._scalars: dict = {}  # Python int/float -> (constant Value, its data)
        # id(imperative tensor) -> (the tensor, its current value here): reads and writes
        # of PyTorch-style tensors and Variables by the code being recorded
        self.free_reads: dict = {}
        # (location, scope) forced onto new nodes, e.g. backward nodes that carry the
        # line of the forward op they differentiate; None: the user's line and scope
        self.provenance: tuple[str | None, str] | None = None

    @property
    def scope(self) -> str:
        return ".".join(self.scopes)

    def add_input(self, type: TensorType, name: str | None = None) -> Value:
        v = Value(type, name=name)
        self.inputs.append(v)
        return v

    def add_constant(self, array, weak: bool = False) -> Value:
        arr = array if hasattr(array, "dtype") and hasattr(array, "shape") else np.asarray(array)
        key = None
        if weak and arr.shape == () and not isinstance(arr, jax.core.Tracer):
            # keyed on the bytes: 0.0 == -0.0 (and NaN != NaN) as Python values
            key = (arr.dtype, np.asarray(arr).tobytes())
            hit = self._weak_constants.get(key)
            if hit is not None:
                return hit
        v = Value(interned(TensorType(arr.shape, arr.dtype, weak)), data=arr)
        self.constants.append(v)
        if key is not None:
            self._weak_constants[key] = v
        return v

    def add_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def finish(self, outputs: list[Value], out_tree: TreeSpec, in_tree: TreeSpec | None = None,
               check: bool = True) -> Graph:
        """The Graph built so far, verified unless ``check=False`` (its subgraphs were,
        when they were built)."""
        graph = Graph(self.name, self.inputs, self.constants, self.nodes, outputs, in_tree, out_tree)
        if check:
            verify(graph, nested=False)
        return graph


class GraphTrace(Trace):
    """Records every op as a node; Tensors are abstract. ``parent``: the enclosing trace
    whose Tensors may be captured (None: a closed graph)."""

    # verify each finished graph; define-by-run turns it off for the graphs it records
    # (and their children): each node was checked as it was made, and ran
    verify_graphs = True

    def __init__(self, name: str = "graph", parent: Trace | None = None):
        self.parent = parent
        if parent is not None and not getattr(parent, "verify_graphs", True):
            self.verify_graphs = False
        scopes = parent.builder.scopes if isinstance(parent, GraphTrace) else ()
        self.builder = GraphBuilder(name, scopes)

    @property
    def name(self) -> str:
        return self.builder.name

    def child(self, name: str, keep_values: bool = False) -> "GraphTrace":
        """A nested trace of the same kind (e.g. the function being differentiated);
        ``keep_values`` matters only to traces that compute values."""
        return GraphTrace(name, parent=self)

    # -- values -----------------------------------------------------------------------
    def box(self, v: Value, data=None) -> Tensor:
        return Tensor(v, self)

    def new_input(self, type: TensorType, name: str | None = None, data=None) -> Tensor:
        return self.box(self.builder.add_input(type, name), data)

    def lift_constant(self, value: Value) -> Tensor:
        return self.constant(value.data, weak=value.type.weak)

    def constant(self, array, weak: bool = False) -> Tensor:
        v = self.builder.add_constant(array, weak)
        return self.box(v, _constant_data(v))

    def lift(self, x) -> Tensor:
        cls = x.__class__
        if cls is float or cls is int:  # the common scalars: one constant per value
            key = x.hex() if cls is float else x  # floats by their bits: 0.0 and -0.0 apart
            hit = self.builder._scalars.get(key)
            if hit is None:
                v = self.builder.add_constant(np.asarray(x, dtype=python_scalar_dtype(x)), weak=True)
                hit = self.builder._scalars[key] = (v, self.scalar_data(v))
            return self.box(*hit)
        if isinstance(x, Tensor):
            if x._trace is self:
                return x
            if x._trace.free:  # an imperative tensor: the array it holds now
                return self.lift_free(x)
            return self.capture(x)
        if is_python_scalar(x):
            dt = python_scalar_dtype(x)
            # JAX treats Python int/float/complex as weakly typed, but never bool
            return self.constant(np.asarray(x, dtype=dt), weak=not isinstance(x, bool))
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            if isinstance(x, jax.core.Tracer):
                return self.lift_tracer(x)
            if is_key(x.dtype):  # constants are numpy arrays: a key is its data, wrapped
                return self.lift_key(x)
            # a weakly typed JAX array (jnp.full(3, 2.0)) stays weak, as under jax.jit
            return self.constant(canonical_array(x), weak=bool(getattr(x, "weak_type", False)))
        if isinstance(x, (list, tuple)):
            return self.constant(np.asarray(x))
        raise TracingError(
            f"cannot use a {type(x).__name__} as an array operand (at {user_location_long(3)})"
        )

    def scalar_data(self, v: Value):
        """The data a Tensor of the weak scalar constant ``v`` holds."""
        return _constant_data(v)

    def lift_key(self, keys) -> Tensor:
        """A typed key array used here: ``random_wrap`` of a constant of its u32 data (the
        printed graph shows the key's words and implementation)."""
        with jax.ensure_compile_time_eval():  # a concrete key, also while jax traces tg.jit
            data = self.constant(np.asarray(jax.random.key_data(keys)))
        (out,) = self.process(registry.lookup("random_wrap"), [data], {"impl": key_impl(keys.dtype)})
        return out

    # set by tg.jit, whose graphs are cached: a trainable tensor baked in as a constant
    # would be stale after the next optimizer step
    refuse_trainable = False

    def lift_free(self, x: Tensor) -> Tensor:
        """An imperative tensor used here (a PyTorch-style parameter or a `tg.Variable`
        closed over): what `read_free` makes of it, once per graph (later reads, and
        reads after an in-place update here, see the latest value). Inside a nested graph
        it is captured from the enclosing trace."""
        if self.parent is not None:
            return self.capture_free(x)
        hit = self.builder.free_reads.get(id(x))
        if hit is not None:
            return hit[1]
        t = self.read_free(x)
        self.builder.free_reads[id(x)] = (x, t)
        return t

    def read_free(self, x: Tensor) -> Tensor:
        """The first read of imperative tensor ``x`` in this graph: a constant holding its
        current array, as JAX bakes a closed-over array (tg.jit refuses a trainable one
        or a Variable, which would go stale)."""
        if self.refuse_trainable and (getattr(x, "requires_grad", False) or getattr(x, "mutable", False)):
            what = "a tg.Variable" if getattr(x, "mutable", False) else "a tensor that requires grad"
            raise TracingError(
                f"a tg.jit function uses {what} ({x.type}) without "
                f"taking it as an argument (at {user_location_long(3)}): the compiled "
                "graph would keep its current value after the optimizer changes it. Pass "
                "the model or tensor as an argument: tg.jit(lambda model, x: model(x))(model, x)"
            )
        return self.constant(x._data, weak=x._value.type.weak)

    def assign_state(self, t: Tensor, value) -> Tensor:
        """An in-place update of imperative tensor ``t`` (``Variable.assign``,
        ``w.add_(...)``) while this trace records: a compiled graph cannot write it back,
        so it is refused; define-by-run and `tg.function`/`tg.compile` override this."""
        raise TracingError(
            f"an in-place update of an imperative tensor or tg.Variable ({t.type}) inside "
            f"traced code at {user_location_long(3)}: the compiled graph cannot write it back. "
            "Return the new value instead, or compile the function with tg.function (or "
            "tg.compile), which takes the state it reads and writes as inputs and outputs"
        )

    def state_value(self, t: Tensor, value) -> Tensor:
        """``value`` as a new value of ``t``: a Tensor of this trace of ``t``'s dtype and
        shape (a float is not stored in an integer tensor; a broadcastable value is
        broadcast)."""
        with using(self):
            v = self.lift(value)
            if v.dtype != t.dtype:
                if np.dtype(t.dtype).kind in "biu" and np.dtype(v.dtype).kind in "fc":
                    raise TracingError(
                        f"in-place update of {t.type} with a {v.type} value (at "
                        f"{user_location_long(3)}): a float cannot be stored in an integer tensor"
                    )
                v = bind("astype", v, dtype=t.dtype)
            if tuple(v.shape) != tuple(t.shape):
                try:
                    np.broadcast_shapes(tuple(v.shape), tuple(t.shape))
                except ValueError:
                    raise TracingError(
                        f"in-place update of {t.type} with a value of shape {list(v.shape)} "
                        f"(at {user_location_long(3)})"
                    ) from None
                v = bind("broadcast_to", v, shape=tuple(t.shape))
            if v._value.type.weak:
                v = bind("astype", v, dtype=t.dtype)
        return v

    def capture_free(self, x: Tensor) -> Tensor:
        b = self.builder
        hit = b.captures.get(id(x._value))
        if hit is not None:
            return self.box(hit[0], x._data)
        outer = self.parent.lift(x)
        v = b.add_input(x._value.type, x._value.name)
        b.captures[id(x._value)] = (v, outer)
        return self.box(v, outer._data)

    def lift_tracer(self, x) -> Tensor:
        # a JAX tracer of an enclosing jax transformation: a constant of this graph
        return self.constant(x, weak=bool(getattr(x.aval, "weak_type", False)))

    def capture(self, t: Tensor) -> Tensor:
        """Use a Tensor of an enclosing trace here: it becomes an input of this graph."""
        b = self.builder
        hit = b.captures.get(id(t._value))
        if hit is not None:
            return self.box(hit[0], t._data)
        if not self._encloses(t._trace):
            raise TracingError(
                f"a tensor from another trace ({t._value.type}) is used at "
                f"{user_location_long(3)}; tensors cannot leak out of the function that "
                "created them (was one stored in a global or an attribute during tracing?)"
            )
        outer = self.parent.lift(t)
        v = b.add_input(t._value.type, t._value.name)
        b.captures[id(t._value)] = (v, outer)
        return self.box(v, t._data)

    def _encloses(self, trace) -> bool:
        p = self.parent
        while p is not None:
            if p is trace:
                return True
            p = p.parent
        return False

    # -- ops ---------------------------------------------------------------------------
    def process(self, op, operands, attrs) -> list:
        attrs, out_types = check_and_infer(op, [t._value.type for t in operands], attrs)
        b = self.builder
        location, scope = b.provenance or (user_location(1), b.scope)
        node = Node(op.name, [t._value for t in operands], attrs, [Value(t) for t in out_types], location, scope)
        b.nodes.append(node)
        return self.outputs_of(op, node, operands)

    def process_node(self, node, operands, data=None) -> list:
        ins = [self.lift(x) for x in operands]
        outs = [Value(v.type) for v in node.outputs]
        new = Node(node.op, [t._value for t in ins], node.attrs, outs, node.location, node.scope)
        self.builder.nodes.append(new)
        if data is not None:
            return [self.box(v, d) for v, d in zip(outs, data)]
        return self.outputs_of(registry.lookup(node.op), new, ins)

    def outputs_of(self, op, node, operands) -> list:
        """The Tensors of a new node's outputs (define-by-run also computes them)."""
        return [Tensor(v, self) for v in node.outputs]

    # -- scopes and the result ------------------------------------------------------------
    def push_scope(self, name: str) -> None:
        self.builder.scopes.append(name)

    def pop_scope(self) -> None:
        self.builder.scopes.pop()

    def finish(self, outputs, out_tree: TreeSpec | None = None, in_tree: TreeSpec | None = None) -> Graph:
        """The graph whose outputs are ``outputs`` (operands of any kind, lifted)."""
        with using(self):
            outs = [self.lift(x)._value for x in outputs]
        return self.builder.finish(outs, out_tree or default_out_tree(len(outs)), in_tree, self.verify_graphs)


def _constant_data(v: Value):
    return weak_value(v.data, v.type.dtype) if v.type.weak else v.data


def trace_graph(fn, in_types, name: str = "subgraph", parent: Trace | None = None) -> Graph:
    """Trace ``fn(*tensors)`` for flat input types into a graph with flat outputs.

    With ``parent=None`` the graph is closed: using an outer tensor inside is an error.
    """
    trace = GraphTrace(name, parent=parent)
    ins = [trace.new_input(t, name=f"a{i}") for i, t in enumerate(in_types)]
    with using(trace):
        res = fn(*ins)
        leaves, _ = jax.tree_util.tree_flatten(res, is_leaf=lambda x: isinstance(x, Tensor))
    return trace.finish(leaves)


def call_graph(graph: Graph, *args) -> list:
    """Evaluate ``graph`` under the current trace (inlining it into a graph being
    built); returns its outputs."""
    return eval_graph(graph, list(args))


__all__ = ["GraphBuilder", "GraphTrace", "trace_graph", "call_graph"]
