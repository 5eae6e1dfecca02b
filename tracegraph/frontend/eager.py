"""Define-by-run: `tg.eager(fn)` runs ``fn`` op by op on concrete values, PyTorch-style,
and records the graph it builds as it goes (``run.last_graph``, the same IR that
`tg.jit` compiles). Python control flow on tensor values works, because every value is
concrete; the recorded graph is the path that actually ran.

`EagerTrace` is the policy: a `GraphTrace` (every op becomes a node) that also runs each
op's implementation at once. The arrays live only on the Tensors user code holds, so an
activation is freed when the program drops its last reference, as in PyTorch.

Example::

    def f(x):
        return x * 2 if float(x.sum()) > 0 else -x   # Python `if` on a value

    run = tg.eager(f)
    run(np.ones(3))
    print(run.last_graph)                             # the branch that ran
"""

from __future__ import annotations

import functools
import sys

import jax.numpy as jnp
from jax._src.array import ArrayImpl as _ArrayImpl  # a concrete JAX array: used as is

import jax

from .._caches import cache
from ..core import EVAL, GraphTrace, Tensor, at_bottom, eval_graph, run_compiled, run_impl, trace_graph
from ..core.execute import attrs_key, executable, weak_array
from ..core.trace import check_and_infer
from ..errors import Error, TracingError, user_location
from ..ir.graph import Node, Value
from ..ir.types import interned
from .tracing import function_name, trace_with


# (op, input types, attributes, x64 mode) -> [normalized attributes, output types,
# compiled implementation, outputs checked once]
_PLANS: dict = cache({})
_PLANS_MAX = 1 << 16
_new = object.__new__  # the hot path makes its Value, Node and Tensor without __init__


class _Block:
    """A library block as define-by-run met it: how often, its graph and compiled form."""

    __slots__ = ("calls", "graph", "compiled")

    def __init__(self):
        self.calls = 0
        self.graph = None
        self.compiled = None


_BLOCKS_MAX = 64

# (dtype, bytes) -> the weak JAX scalar define-by-run passes for a Python int or float
_SCALARS: dict = cache({})
_SCALARS_MAX = 1 << 12


class EagerTrace(GraphTrace):
    """Records like `GraphTrace` and computes every value as it goes. ``keep_values``:
    also remember each value's array (``self.values``, by id of its IR Value), for a
    caller that needs them after the program dropped its Tensors (autodiff)."""

    verify_graphs = False  # each node was type-checked when made and its outputs when run

    def __init__(self, name: str = "eager", parent=None, keep_values: bool = False):
        super().__init__(name, parent)
        self.values: dict | None = {} if keep_values else None

    def child(self, name: str, keep_values: bool = False) -> "EagerTrace":
        return EagerTrace(name, parent=self, keep_values=keep_values)

    def box(self, v, data=None) -> Tensor:
        if self.values is not None:
            self.values[id(v)] = data
        return Tensor(v, self, data)

    def new_input(self, type, name=None, data=None) -> Tensor:
        # weak values (Python scalars) stay weak; a JAX array of the type is used as is
        if data is not None and not type.weak and not (data.__class__ is _ArrayImpl and data.dtype == type.dtype):
            data = jnp.asarray(data, dtype=type.dtype)
        return self.box(self.builder.add_input(interned(type), name), data)

    def scalar_data(self, v):
        # a Python scalar operand as a weak JAX array, made once per value and dtype: a
        # compiled op called with a float converts it on every call (1.5 us a call)
        key = (v.type.dtype, v.data.tobytes())
        data = _SCALARS.get(key)
        if data is None:
            data = weak_array(v.data, v.type.dtype)
            if len(_SCALARS) < _SCALARS_MAX:
                _SCALARS[key] = data
        return data

    def lift_tracer(self, x):
        raise TracingError(
            "a JAX tracer reached a define-by-run tg.eager function; call tg.eager code "
            "outside jax transformations, or use tg.jit / tg.from_jax"
        )

    def process(self, op, operands, attrs) -> list:
        # `GraphTrace.process` with the shape rule, normalized attributes and compiled
        # implementation resolved once per (op, input types, attributes, x64 mode); the
        # hot path of define-by-run, so written out flat (no helper calls but the op and
        # the user's line), one- and two-operand ops without list building
        n = len(operands)
        if n == 1:
            (a,) = operands
            ins = (a._value,)
            in_types = (ins[0].type,)
            arrays = (a._data,)
        elif n == 2:
            a, c = operands
            ins = (a._value, c._value)
            in_types = (ins[0].type, ins[1].type)
            arrays = (a._data, c._data)
        else:
            ins = tuple([t._value for t in operands])
            in_types = tuple([v.type for v in ins])
            arrays = [t._data for t in operands]
        try:
            # plans key and hold interned types, so the lookup compares by identity
            key = (op.name, in_types, attrs_key(attrs) if attrs else (), jax.config.jax_enable_x64)
            plan = _PLANS.get(key)
        except TypeError:  # an unhashable attribute: resolved every time
            key = plan = None
        if plan is None:
            attrs, out_types, = check_and_infer(op, in_types, attrs)
            plan = [attrs, tuple(map(interned, out_types)), executable(op, attrs, in_types), False]
            if key is not None and len(_PLANS) < _PLANS_MAX:
                _PLANS[(key[0], tuple(map(interned, in_types)), key[2], key[3])] = plan
        attrs, out_types, fn, checked = plan
        b = self.builder
        if b.provenance is None:
            location = user_location(1)
            scope = ".".join(b.scopes) if b.scopes else ""
        else:
            location, scope = b.provenance
        values = self.values
        if len(out_types) == 1 and not op.multi_output and checked and values is None:
            # `Value(...)`, `Node.make(...)` and `Tensor(...)`, inline
            out = _new(Value)
            node = _new(Node)
            out.type, out.name, out.producer, out.data = out_types[0], None, node, None
            node.op, node.inputs, node.attrs, node.outputs, node.location, node.scope = (
                op.name, ins, attrs, (out,), location, scope)
            b.nodes.append(node)
            try:
                data = fn(*arrays)
            except Exception:  # arrays on another device, or a JAX error: run_compiled names it
                (data,) = run_compiled(op, node, list(arrays), fn, check=False)
            t = _new(Tensor)
            t._value, t._trace, t._data = out, self, data
            return [t]
        outputs = [Value(t) for t in out_types]
        node = Node.make(op.name, ins, attrs, outputs, location, scope)
        b.nodes.append(node)
        if values is not None:  # a GradientTape is open here: keep what it may read
            for v, a in zip(ins, arrays):
                values.setdefault(id(v), a)
        if fn is None or not checked:  # the first run of a plan checks the output types
            arrays = list(arrays)
            datas = run_impl(op, node, arrays) if fn is None else run_compiled(op, node, arrays, fn)
            plan[3] = fn is not None
        else:
            datas = run_compiled(op, node, list(arrays), fn, check=False)
        return [self.box(v, d) for v, d in zip(outputs, datas)]

    def call_block(self, build, ins: list, cache: dict, key) -> list:
        # A block seen a third time at the same place (a training loop's optimizer update)
        # runs as one compiled call, as the imperative tape's backward does; its nodes are
        # still recorded, holding no values inside the block.
        if self.values is not None:  # values are kept for a gradient: run it op by op
            return build(ins)
        try:
            block = cache.get(key)
        except TypeError:
            return build(ins)
        if block is None:
            if len(cache) >= _BLOCKS_MAX:
                cache.pop(next(iter(cache)))
            block = cache.setdefault(key, _Block())
        block.calls += 1
        if block.calls < 3:
            return build(ins)
        if block.graph is None:
            block.graph = trace_graph(lambda *xs: build(list(xs)), [t.type for t in ins], "block")
            graph = block.graph
            block.compiled = jax.jit(lambda *a: eval_graph(graph, list(a), trace=EVAL))
        results = block.compiled(*[t._data for t in ins])
        unknown = self._unknown
        outs = eval_graph(block.graph, list(ins), trace=self, run_node=unknown)
        for t, data in zip(outs, results):
            if t._data is None:
                t._data = data
                if self.values is not None:
                    self.values[id(t._value)] = data
        return outs

    def _unknown(self, node, operands) -> list:
        return self.process_node(node, operands, data=[None] * len(node.outputs))

    def assign_state(self, t, value):
        # define-by-run: the update happens at once; later reads see the new value
        new = self.state_value(t, value)
        t._data = new._data
        self.builder.free_reads[id(t)] = (t, new)
        outer = self.parent
        while outer is not None:  # enclosing traces read the new array from now on
            b = getattr(outer, "builder", None)
            if b is not None:
                b.free_reads.pop(id(t), None)
            outer = outer.parent
        return t

    def outputs_of(self, op, node, operands) -> list:
        datas = run_compiled(op, node, [t._data for t in operands])
        return [self.box(v, d) for v, d in zip(node.outputs, datas)]

    def to_bool(self, t) -> bool:
        return bool(t._data)

    def concrete(self, t, what: str):
        return t._data

    def known_value(self, x):
        return x._data if isinstance(x, Tensor) else x


class EagerFunction:
    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.last_graph = None

    def __call__(self, *args, **kwargs):
        if not at_bottom():  # inside another trace or eager run: just run inline
            return self.fn(*args, **kwargs)
        graph, outs = trace_with(EagerTrace(function_name(self.fn)), self.fn, args, kwargs)
        old, self.last_graph = self.last_graph, graph
        if old is not None and sys.getrefcount(old) == 2:  # `old` and the call: nobody else
            _release(old)
        return graph.unflatten_outputs([_as_array(t._data) for t in outs])


def _release(graph) -> None:
    """Free a recorded graph nobody holds now, by reference counting: each node and the
    values it makes point at each other (``value.producer``), so a dropped graph is
    cyclic garbage that Python's cycle collector would find later, about 0.4 us per op of
    a define-by-run loop. A node someone still holds keeps its links."""
    getrefcount = sys.getrefcount
    for node in graph.nodes:
        outputs = node.outputs
        # the graph's node list, each output's producer, this loop and the call
        if getrefcount(node) == 3 + len(outputs):
            for v in outputs:
                v.producer = None


def _as_array(data):
    return data if data.__class__ is _ArrayImpl else jnp.asarray(data)


def eager(fn):
    """Run ``fn`` define-by-run; ``.last_graph`` is the graph the last call recorded (the
    graph of an earlier call is freed at once unless you keep it, or one of its nodes)."""
    return EagerFunction(fn)
