"""Graph builders: where ops applied to `Tensor`s turn into IR nodes.

A `Builder` collects inputs, constants and nodes for one graph. Tracing (define-then-run)
uses an abstract builder: tensors carry only types. Define-by-run uses an eager builder:
every op also runs at once on concrete arrays (the op's one implementation) and the node
lands on the tape. `bind` is the single entry point that every tg.* function goes through.

NOTE: builders form a stack. A tensor from an outer builder used inside an inner one
(a closure in a control-flow body) is captured: the inner builder turns it into an
explicit input of its subgraph (see `Builder.capture`).
"""

from __future__ import annotations

import contextlib
import numbers

import jax
import numpy as np

from ..errors import Error, ShapeError, TracingError, user_location, user_location_long
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.tree import TreeSpec
from ..ir.types import TensorType
from ..ops.core import install_hooks
from ..ops.execute import run_impl
from .tensor import Tensor

_STACK: list["Builder"] = []


class Builder:
    """Collects one graph. ``eager=True`` also executes each op as it is added."""

    def __init__(self, name: str = "graph", eager: bool = False, parent: "Builder | None" = None):
        self.name = name
        self.eager = eager
        self.parent = parent
        self.inputs: list[Value] = []
        self.constants: list[Value] = []
        self.nodes: list[Node] = []
        # a nested builder (a control-flow body, a function being differentiated) starts
        # in the scope it was opened in, so its nodes keep their module path
        self.scopes: list[str] = list(parent.scopes) if parent is not None else []
        # outer Value -> (inner input Value, outer Tensor) for closures (control flow)
        self.captures: dict[int, tuple[Value, Tensor]] = {}
        self._const_cache: dict = {}
        # define-by-run: the concrete array of every value on the tape (the saved
        # activations that reverse mode reads), keyed by id(Value)
        self.live: dict[int, object] = {}
        # (location, scope) forced onto new nodes, e.g. backward nodes that carry the
        # line of the forward op they differentiate; None: take them from the stack
        self.provenance: tuple[str | None, str] | None = None

    # -- values -------------------------------------------------------------------
    def add_input(self, type: TensorType, name: str | None = None, data=None) -> Tensor:
        v = Value(type, name=name)
        self.inputs.append(v)
        if data is not None:
            self.live[id(v)] = data
        return Tensor(v, self, data)

    def tensor(self, v: Value) -> Tensor:
        """The Tensor of one of this builder's values (with its data when eager)."""
        return Tensor(v, self, self.live.get(id(v)))

    def add_constant(self, array, weak: bool = False) -> Tensor:
        arr = array if hasattr(array, "dtype") and hasattr(array, "shape") else np.asarray(array)
        if weak:
            # keyed on the bytes: 0.0 == -0.0 (and NaN != NaN) as Python values
            key = (arr.dtype, np.asarray(arr).tobytes())
            hit = self._const_cache.get(key)
            if hit is not None:
                return hit
        v = Value(TensorType(arr.shape, arr.dtype, weak), data=arr)
        self.constants.append(v)
        t = Tensor(v, self, _as_device(arr, weak) if self.eager else None)
        if self.eager:
            self.live[id(v)] = t._data
        if weak:
            self._const_cache[key] = t
        return t

    def capture(self, t: Tensor) -> Tensor:
        """Use a tensor of an enclosing builder here: it becomes an input of this graph."""
        hit = self.captures.get(id(t._value))
        if hit is not None:
            return Tensor(hit[0], self, t._data)
        if self.parent is None or not self.parent.owns_or_encloses(t):
            raise TracingError(
                f"a tensor from another trace ({t._value.type}) is used at "
                f"{user_location_long(3)}; tensors cannot leak out of the function that "
                "created them (was one stored in a global or an attribute during tracing?)"
            )
        outer = self.parent.resolve(t)
        v = Value(t._value.type, name=t._value.name)
        self.inputs.append(v)
        self.captures[id(t._value)] = (v, outer)
        if t._data is not None:
            self.live[id(v)] = t._data
        return Tensor(v, self, t._data)

    def owns_or_encloses(self, t: Tensor) -> bool:
        b = self
        while b is not None:
            if t._builder is b:
                return True
            b = b.parent
        return False

    def resolve(self, t: Tensor) -> Tensor:
        if t._builder is self:
            return t
        return self.capture(t)

    # -- scopes -------------------------------------------------------------------
    @property
    def scope(self) -> str:
        return ".".join(self.scopes)

    # -- graph ----------------------------------------------------------------------
    def finish(self, outputs: list[Tensor], out_tree: TreeSpec, in_tree: TreeSpec | None = None) -> Graph:
        outs = [self.resolve(t)._value for t in outputs]
        return Graph(self.name, self.inputs, self.constants, self.nodes, outs, in_tree, out_tree)


def _as_device(arr, weak):
    if weak:
        return arr.item()  # a Python scalar: jax keeps it weakly typed
    return arr


def current() -> Builder | None:
    return _STACK[-1] if _STACK else None


@contextlib.contextmanager
def building(builder: Builder):
    _STACK.append(builder)
    try:
        yield builder
    finally:
        popped = _STACK.pop()
        assert popped is builder


@contextlib.contextmanager
def scope(name: str):
    """Name scope for the nodes created inside: ``with tg.scope("encoder"): ...``.

    Scopes nest with dots (``encoder.layer0.attn``) and print after each node's location.
    """
    b = current()
    if b is None:
        yield
        return
    b.scopes.append(str(name))
    try:
        yield
    finally:
        b.scopes.pop()


# -- binding ops ----------------------------------------------------------------------


def _python_scalar_dtype(x):
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, numbers.Integral):
        return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))
    if isinstance(x, numbers.Real):
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    return np.dtype(jax.dtypes.canonicalize_dtype(np.complex128))


def as_tensor(b: Builder, x) -> Tensor:
    """Convert an operand to a Tensor of builder ``b``: Tensors pass (captured if they
    belong to an enclosing builder); Python scalars become weak constants; arrays become
    constants."""
    if isinstance(x, Tensor):
        return x if x._builder is b else b.capture(x)
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        dt = _python_scalar_dtype(x)
        # JAX treats Python int/float/complex as weakly typed, but never bool
        return b.add_constant(np.asarray(x, dtype=dt), weak=not isinstance(x, bool))
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        if isinstance(x, jax.core.Tracer):
            if b.eager:
                raise TracingError(
                    "a JAX tracer reached a define-by-run tg.eager function; call tg.eager code "
                    "outside jax transformations, or use tg.jit / tg.from_jax"
                )
            return b.add_constant(x)
        dt = jax.dtypes.canonicalize_dtype(x.dtype)
        if isinstance(x, np.ndarray) or isinstance(x, np.generic):
            return b.add_constant(np.asarray(x, dtype=dt))
        return b.add_constant(x if x.dtype == dt else x.astype(dt))
    if isinstance(x, (list, tuple)):
        return b.add_constant(np.asarray(x))
    raise TracingError(
        f"cannot use a {type(x).__name__} as an array operand (at {user_location_long(3)})"
    )


def bind(op_name: str, *args, **attrs):
    """Apply op ``op_name`` to operands; returns a Tensor, or a tuple for multi-output ops.

    Outside any trace (plain arrays in, no tg.jit/tg.eager active) the op runs at once
    and plain jax arrays come back.
    """
    b = current()
    if b is None:
        if any(isinstance(a, Tensor) for a in args):
            raise TracingError(
                f"{op_name}: a traced tensor is used outside the trace that made it "
                f"(at {user_location_long(2)})"
            )
        with building(Builder("eager", eager=True)) as tmp:
            out = bind(op_name, *args, **attrs)
        del tmp
        return tuple(t._data for t in out) if isinstance(out, tuple) else out._data
    op = registry.lookup(op_name)
    ins = [as_tensor(b, a) for a in args]
    try:
        attrs = op.check_attrs(attrs)
        op.check_arity(len(ins))
        out_types = op.infer([t._value.type for t in ins], attrs)
    except Error as e:
        operands = ", ".join(str(t._value.type) for t in ins)
        # attribute and arity mistakes in user code are tracing errors, not malformed IR
        cls = ShapeError if isinstance(e, ShapeError) else TracingError
        raise cls(f"{op_name}({operands}): {e} (at {user_location_long(2)})") from None
    outs = [Value(t) for t in out_types]
    if b.provenance is None:
        location, scope_ = user_location(2), b.scope
    else:
        location, scope_ = b.provenance
    node = Node(op_name, [t._value for t in ins], attrs, outs, location, scope_)
    b.nodes.append(node)
    if b.eager:
        datas = run_impl(op, node, [t._data for t in ins])
        for v, d in zip(outs, datas):
            b.live[id(v)] = d
    else:
        datas = [None] * len(outs)
    results = tuple(Tensor(v, b, d) for v, d in zip(outs, datas))
    return results if len(results) != 1 or _multi(op) else results[0]


def inline(b: Builder, graph: Graph, inputs: list[Tensor], data: dict | None = None) -> dict:
    """Append ``graph``'s nodes to builder ``b``, its inputs bound to ``inputs``.

    Returns a map from each of ``graph``'s values (by id) to the Tensor of ``b`` that
    stands for it. In define-by-run the nodes execute as they are appended, except
    where ``data`` (id(Value) -> array, e.g. the live arrays of the builder that
    recorded the graph) already holds their results. Nodes keep their location and
    scope; output Values are fresh, so a graph can be inlined any number of times.
    """
    env: dict[int, Tensor] = {}
    for v, t in zip(graph.inputs, inputs):
        env[id(v)] = as_tensor(b, t)
    for v in graph.constants:
        env[id(v)] = b.add_constant(v.data, weak=v.type.weak)
    for node in graph.nodes:
        ins = [env[id(v)] for v in node.inputs]
        outs = [Value(v.type) for v in node.outputs]
        new = Node(node.op, [t._value for t in ins], node.attrs, outs, node.location, node.scope)
        b.nodes.append(new)
        if b.eager:
            if data is not None and all(id(v) in data for v in node.outputs):
                datas = [data[id(v)] for v in node.outputs]
            else:
                datas = run_impl(registry.lookup(node.op), new, [t._data for t in ins])
            for v, d in zip(outs, datas):
                b.live[id(v)] = d
        else:
            datas = [None] * len(outs)
        for old, v, d in zip(node.outputs, outs, datas):
            env[id(old)] = Tensor(v, b, d)
    return env


def _multi(op) -> bool:
    return op.multi_output


def call_graph(graph: Graph, *args) -> list[Tensor]:
    """Inline ``graph`` into the graph being built; returns its output tensors."""
    env = inline(current(), graph, list(args))
    return [env[id(v)] for v in graph.outputs]


install_hooks(emit=bind, call=call_graph)  # rules in the op library build IR through these
