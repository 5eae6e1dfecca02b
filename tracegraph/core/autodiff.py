"""Reverse mode over the trace machinery: `Linearized` (the forward of one ``vjp``
call, recorded and spliced into the current trace) and its pullback, which walks the
forward nodes backwards binding each op's VJP rule, so the backward pass is IR.

1. The function runs under a child trace of the current one (same kind: define-by-run
   children compute as they go, so Python control flow works), whose inputs stand for
   the primals; closures over outer tensors become extra inputs, treated as constants
   (as in JAX). The result is the forward Graph.
2. That graph is evaluated into the current trace by `eval_graph` (a graph trace
   appends its nodes; define-by-run reuses the values the child already computed, so
   nothing runs twice). Only the values that backward rules may read are kept: the
   inputs and outputs of nodes on a path from the primals.
3. The pullback binds VJP rules in a backward `GraphTrace` whose nodes carry the
   forward op's line and the scope ``grad/<scope>/<op>``; the backward graph is then
   evaluated into the current trace, skipping cotangents nobody asked for.

`vjp_graph` turns a closed graph into its backward graph (control-flow VJP rules
differentiate their bodies with it, as JAX's ``cond`` calls ``backward_pass``).
"""

from __future__ import annotations

import contextlib
import threading

import jax

from .._caches import cache
from ..errors import Error, ShapeError
from ..ir import registry
from ..ir.registry import NOT_DIFFERENTIABLE
from ..ir.types import is_inexact
from .evaluate import eval_graph
from .graph_trace import GraphTrace, call_graph, trace_graph
from .tensor import Tensor
from .execute import attrs_key
from .trace import bind, current_trace, using


def _is_tensor(x):
    return isinstance(x, Tensor)


def flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_tensor)


def function_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "lambda" if name == "<lambda>" else name


def grad_scope(node) -> str:
    path = node.scope.replace(".", "/") + "/" if node.scope else ""
    return f"grad/{path}{node.op}"


@contextlib.contextmanager
def provenance(trace: GraphTrace, location, scope):
    """Nodes bound inside carry ``location`` and ``scope`` (backward nodes carry the
    line of the forward op they differentiate)."""
    b = trace.builder
    saved = b.provenance
    b.provenance = (location, scope)
    try:
        yield
    finally:
        b.provenance = saved


class Linearized:
    """The forward of one `vjp` call under the recording ``trace`` (see module doc)."""

    def __init__(self, trace: GraphTrace, fn, primals, has_aux: bool):
        self.trace = trace
        leaves, self.in_treedef = flatten(tuple(primals))
        with using(trace):
            outer = [trace.lift(x) for x in leaves]
        for i, t in enumerate(outer):
            if not is_inexact(t.dtype):
                raise Error(
                    f"differentiation of {function_name(fn)} needs float inputs, but primal "
                    f"leaf {i} is {t.type} (mark integer arguments non-differentiable by "
                    "leaving them out of argnums)"
                )
        self.num_primals = len(outer)
        inner = trace.child(function_name(fn), keep_values=True)
        ins = [inner.new_input(t.type, name=t._value.name, data=t._data) for t in outer]
        with using(inner):
            res = fn(*jax.tree_util.tree_unflatten(self.in_treedef, ins))
            if has_aux:
                if not (isinstance(res, (tuple, list)) and len(res) == 2):
                    raise Error("has_aux=True needs the function to return a pair (output, aux)")
                res, aux = res
            else:
                aux = None
            out_leaves, self.out_treedef = flatten(res)
            aux_leaves, self.aux_treedef = flatten(aux)
        self.num_outputs = len(out_leaves)
        graph = inner.finish(out_leaves + aux_leaves)
        del res, aux, out_leaves, aux_leaves, ins
        self.graph = graph
        captured = [outer_t for (_, outer_t) in inner.builder.captures.values()]
        self.active = self._activity()
        keep = self._read_by_rules()
        known = getattr(inner, "values", None)
        run_node = None
        if known is not None:
            def run_node(node, operands):
                data = [known.get(id(v)) for v in node.outputs]
                return trace.process_node(node, operands, data=None if None in data else data)
        outs, self.env = eval_graph(graph, outer + captured, trace=trace, run_node=run_node, keep=keep)
        self.outputs = outs[: self.num_outputs]
        self.aux = outs[self.num_outputs :]

    @classmethod
    def of_graph(cls, trace: GraphTrace, graph, env: dict, num_primals: int) -> "Linearized":
        """The linearization of a forward ``graph`` that already ran: ``env`` maps each
        of its Values (by id) to a Tensor of ``trace`` holding it; the first
        ``num_primals`` inputs are the primals. The imperative tape builds its backward
        graphs this way (its forward ran op by op, before anyone asked for a gradient)."""
        self = cls.__new__(cls)
        self.trace, self.graph, self.env = trace, graph, env
        self.num_primals, self.num_outputs = num_primals, len(graph.outputs)
        self.in_treedef = jax.tree_util.tree_structure([0] * num_primals)
        self.out_treedef = jax.tree_util.tree_structure([0] * self.num_outputs)
        self.outputs = [env[id(v)] for v in graph.outputs]
        self.aux, self.aux_treedef = [], jax.tree_util.tree_structure(None)
        self.active = self._activity()
        return self

    def _activity(self) -> set[int]:
        """Values that depend differentiably on the primals (forward sweep)."""
        active = {id(v) for v in self.graph.inputs[: self.num_primals]}
        for node in self.graph.nodes:
            op = registry.lookup(node.op)
            if op.vjp is NOT_DIFFERENTIABLE:
                continue
            if any(id(v) in active for v in node.inputs):
                active.update(id(v) for v in node.outputs if is_inexact(v.type.dtype))
        return active

    def _read_by_rules(self) -> list:
        """The forward values a VJP rule may read: those of nodes with an active input.
        Everything else is freed as soon as the forward no longer needs it."""
        keep = list(self.graph.outputs[: self.num_outputs])
        for node in self.graph.nodes:
            if any(id(v) in self.active for v in node.inputs):
                keep.extend(node.inputs)
                keep.extend(node.outputs)
        return keep

    def out_tree(self, leaves):
        return jax.tree_util.tree_unflatten(self.out_treedef, leaves)

    def aux_tree(self):
        return jax.tree_util.tree_unflatten(self.aux_treedef, self.aux)

    def pullback(self, cotangents):
        """Cotangents of the outputs (a pytree like the output) -> cotangents of the
        primals (a tuple, one pytree per primal argument), bound in ``self.trace``."""
        trace = self.trace
        with using(trace):
            return self._pullback(trace, cotangents)

    def _pullback(self, trace, cotangents):
        ct_leaves, ct_treedef = flatten(cotangents)
        if ct_treedef != self.out_treedef:
            raise Error(f"cotangent structure {ct_treedef} does not match output {self.out_treedef}")
        cts = []
        for i, (c, out) in enumerate(zip(ct_leaves, self.outputs)):
            c = trace.lift(c)
            if c.shape != out.shape:
                raise ShapeError(f"cotangent {i} has shape {list(c.shape)}, output is {out.type}")
            if is_inexact(out.dtype) and not is_inexact(c.dtype):
                raise ShapeError(f"cotangent {i} has dtype {c.type}, output is {out.type} (a float output needs a float cotangent)")
            cts.append(c if c.dtype == out.dtype else bind("astype", c, dtype=out.dtype))
        g_bwd, captured, blocks = self._cached_backward([c.type for c in cts])
        grads = trace.call_block(
            lambda xs: eval_graph(g_bwd, xs, trace=current_trace(), prune=True), cts + captured, blocks, "backward"
        )
        return jax.tree_util.tree_unflatten(self.in_treedef, grads)

    def _cached_backward(self, ct_types) -> tuple:
        """`backward_graph`, cached by the forward graph's structure (ops, attributes,
        wiring, types, lines and scopes) and the cotangent types: a training step
        differentiated define-by-run builds the same backward every step. Returns the
        graph, the Tensors for its trailing inputs, and the dict where the current trace
        keeps what it made of this backward (`Trace.call_block`)."""
        values = list(self.graph.values())
        key = (_structure(self.graph, values), self.num_primals, self.num_outputs, tuple(ct_types))
        try:
            with _BACKWARD_LOCK:
                hit = _BACKWARDS.get(key)
        except TypeError:  # an unhashable attribute: built every time
            g_bwd, captured = self.backward_graph(ct_types)
            return g_bwd, captured, {}
        if hit is not None:
            g_bwd, positions, blocks = hit
            return g_bwd, [self.env[id(values[i])] for i in positions], blocks
        g_bwd, captured = self.backward_graph(ct_types)
        position = {}
        for i, v in enumerate(values):
            t = self.env.get(id(v))
            if t is not None:
                position.setdefault(id(t), i)
        positions = [position.get(id(t)) for t in captured]
        if None not in positions:
            with _BACKWARD_LOCK:
                if len(_BACKWARDS) >= _BACKWARDS_MAX:
                    _BACKWARDS.pop(next(iter(_BACKWARDS)))
                _BACKWARDS[key] = (g_bwd, positions, {})
                blocks = _BACKWARDS[key][2]
            return g_bwd, captured, blocks
        return g_bwd, captured, {}

    def backward_graph(self, ct_types) -> tuple:
        """The backward graph for output cotangents of ``ct_types``: it takes
        ``(cotangents..., captured...)`` and returns one cotangent per primal; returns it
        with ``captured``, the Tensors of ``self.trace`` (forward values the rules read)
        to pass for its trailing inputs."""
        graph, active = self.graph, self.active
        bwd = GraphTrace("backward", parent=self.trace)
        with using(bwd):
            ct_map: dict[int, Tensor] = {}
            ct_ins = [bwd.new_input(t, name=f"ct{i}") for i, t in enumerate(ct_types)]
            for v, c in zip(graph.outputs[: self.num_outputs], ct_ins):
                if id(v) in active:
                    _accumulate(ct_map, v, c)
            for node in reversed(graph.nodes):
                out_cts = [ct_map.get(id(v)) for v in node.outputs]
                if all(c is None for c in out_cts):
                    continue
                if not any(id(v) in active for v in node.inputs):
                    continue
                op = registry.lookup(node.op)
                if op.vjp is NOT_DIFFERENTIABLE:
                    continue
                if op.vjp is None:
                    raise Error(
                        f"op {node.op!r} (at {node.location or '?'}) has no VJP rule yet: "
                        "it cannot be differentiated"
                    )
                with provenance(bwd, node.location, grad_scope(node)):
                    self._apply_rule(bwd, op, node, out_cts, ct_map)
            results = []
            for v in graph.inputs[: self.num_primals]:
                c = ct_map.get(id(v))
                if c is None:
                    c = bind("full", shape=v.type.shape, value=0, dtype=v.type.dtype)
                results.append(c)
        g_bwd = bwd.finish(results)
        return g_bwd, [outer_t for (_, outer_t) in bwd.builder.captures.values()]

    def _apply_rule(self, bwd, op, node, out_cts, ct_map):
        env = self.env
        ins = [env[id(v)] for v in node.inputs]
        outs = [env[id(v)] for v in node.outputs]
        if op.multi_output:
            ct = tuple(
                c if c is not None else bind("full", shape=o.shape, value=0, dtype=o.dtype)
                for c, o in zip(out_cts, outs)
            )
            in_cts = op.vjp(ct, *ins, out=tuple(outs), **node.attrs)
        else:
            in_cts = op.vjp(out_cts[0], *ins, out=outs[0], **node.attrs)
        if len(in_cts) != len(node.inputs):
            raise Error(f"VJP rule of {node.op!r} returned {len(in_cts)} cotangents for {len(ins)} inputs")
        for v, c in zip(node.inputs, in_cts):
            if c is None or id(v) not in self.active:
                continue
            if not isinstance(c, Tensor):
                c = bwd.lift(c)
            if tuple(c.shape) != v.type.shape:
                raise Error(
                    f"internal error: VJP rule of {node.op!r} gave a cotangent of shape "
                    f"{list(c.shape)} for an input of type {v.type}"
                )
            if c.dtype != v.type.dtype:
                c = bind("astype", c, dtype=v.type.dtype)
            _accumulate(ct_map, v, c)


# forward structure -> (backward graph, forward value index of each captured input,
# the blocks a trace made of it)
_BACKWARDS: dict = cache({})
_BACKWARDS_MAX = 256
_BACKWARD_LOCK = threading.Lock()


def _structure(graph, values) -> tuple:
    """What a backward graph depends on: each node's op, attributes, input positions,
    output types, line and scope; the types of the inputs and constants; the outputs."""
    index = {id(v): i for i, v in enumerate(values)}
    nodes = tuple(
        (n.op, attrs_key(n.attrs), tuple(index[id(v)] for v in n.inputs), tuple(v.type for v in n.outputs),
         n.location, n.scope)
        for n in graph.nodes
    )
    return (tuple(v.type for v in graph.inputs), tuple(v.type for v in graph.constants), nodes,
            tuple(index[id(v)] for v in graph.outputs))


def _accumulate(ct_map, v, c):
    prev = ct_map.get(id(v))
    ct_map[id(v)] = c if prev is None else bind("add", prev, c)


def vjp_graph(graph):
    """Graph -> Graph reverse mode: the result takes ``(inputs..., output cotangents...)``
    and returns one cotangent per input (zeros for integer inputs). Control-flow VJP
    rules differentiate their bodies with it. Cached on the graph."""
    cached = graph._cache.get("vjp_graph")
    if cached is not None:
        return cached
    n = len(graph.inputs)
    diff = [i for i, v in enumerate(graph.inputs) if is_inexact(v.type.dtype)]

    def backward(*args):
        xs, cts = list(args[:n]), list(args[n:])

        def forward(*d):
            full = list(xs)
            for i, v in zip(diff, d):
                full[i] = v
            return call_graph(graph, *full)

        lin = Linearized(current_trace(), forward, [xs[i] for i in diff], False)
        grads = iter(lin.pullback(lin.out_tree(cts)))
        return [
            next(grads) if i in diff else bind("full", shape=x.shape, value=0, dtype=x.dtype)
            for i, x in enumerate(xs)
        ]

    in_types = [v.type for v in graph.inputs] + [v.type.with_(weak=False) for v in graph.outputs]
    result = trace_graph(backward, in_types, f"{graph.name}_vjp")
    graph._cache["vjp_graph"] = result
    return result
