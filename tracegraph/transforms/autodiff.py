"""Reverse-mode autodiff as a transform of tracegraph IR: `vjp`, `grad`, `value_and_grad`.

How it works (one mechanism for tg.jit, tg.eager and plain arrays):

1. The function is traced into a child graph whose inputs are the primals (closures over
   outer tensors become extra inputs, treated as constants, as in JAX).
2. That forward graph is inlined into the graph being built, unchanged (define-by-run
   reuses the values it already computed: nothing runs twice).
3. The pullback walks the forward nodes in reverse and calls each op's VJP rule — rules
   written in tracegraph ops — to build a *backward graph*: ordinary IR whose nodes carry
   the user line of the forward op they differentiate and the scope
   ``grad/<scope>/<op>``. Only nodes on a path from the requested inputs are visited, and
   dead-code elimination drops cotangents nobody asked for.
4. The backward graph is inlined too: inside tg.jit it is part of the one compiled graph;
   under tg.eager its nodes execute one by one as they are appended (PyTorch's model).

Because backward nodes are ordinary ops with VJP rules of their own, `grad(grad(f))`
differentiates the first backward graph like any other code.

Example::

    loss = lambda w, x: tg.sum(tg.tanh(x @ w) ** 2)
    print(tg.trace(tg.grad(loss), tg.spec((3, 2)), tg.spec((4, 3))))
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import Error
from ..frontend.builder import Builder, as_tensor, bind, building, call_graph, current, inline
from ..frontend.tensor import Tensor
from ..frontend.tracing import function_name, trace_types
from ..ir import registry
from ..ir.registry import NOT_DIFFERENTIABLE
from ..ir.tree import default_out_tree
from ..ir.types import is_inexact
from ..ops.core import install_hooks
from .dce import dce


def _is_tensor(x):
    return isinstance(x, Tensor)


def _flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_tensor)


def grad_scope(node) -> str:
    path = node.scope.replace(".", "/") + "/" if node.scope else ""
    return f"grad/{path}{node.op}"


@contextlib.contextmanager
def _provenance(b: Builder, location, scope):
    saved = b.provenance
    b.provenance = (location, scope)
    try:
        yield
    finally:
        b.provenance = saved


class _Linearized:
    """The forward graph of one `vjp` call, inlined into builder ``b``."""

    def __init__(self, b: Builder, fn, primals, has_aux: bool):
        self.b = b
        leaves, self.in_treedef = _flatten(tuple(primals))
        outer = [as_tensor(b, x) for x in leaves]
        for i, t in enumerate(outer):
            if not is_inexact(t.dtype):
                raise Error(
                    f"differentiation of {function_name(fn)} needs float inputs, but primal "
                    f"leaf {i} is {t.type} (mark integer arguments non-differentiable by "
                    "leaving them out of argnums)"
                )
        self.num_primals = len(outer)
        inner = Builder(function_name(fn), eager=b.eager, parent=b)
        ins = [inner.add_input(t.type, name=t._value.name, data=t._data) for t in outer]
        with building(inner):
            res = fn(*jax.tree_util.tree_unflatten(self.in_treedef, ins))
            if has_aux:
                if not (isinstance(res, (tuple, list)) and len(res) == 2):
                    raise Error("has_aux=True needs the function to return a pair (output, aux)")
                res, aux = res
            else:
                aux = None
            out_leaves, self.out_treedef = _flatten(res)
            aux_leaves, self.aux_treedef = _flatten(aux)
            outs = [as_tensor(inner, x) for x in out_leaves]
            auxs = [as_tensor(inner, x) for x in aux_leaves]
        self.num_outputs = len(outs)
        graph = inner.finish(outs + auxs, default_out_tree(len(outs) + len(auxs)))
        self.graph = graph
        captured = [outer_t for (_, outer_t) in inner.captures.values()]
        self.env = inline(b, graph, outer + captured, data=inner.live if b.eager else None)
        self.outputs = [self.env[id(v)] for v in graph.outputs[: self.num_outputs]]
        self.aux = [self.env[id(v)] for v in graph.outputs[self.num_outputs :]]
        self.active = self._activity()

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

    def out_tree(self, leaves):
        return jax.tree_util.tree_unflatten(self.out_treedef, leaves)

    def aux_tree(self):
        return jax.tree_util.tree_unflatten(self.aux_treedef, self.aux)

    def pullback(self, cotangents):
        """Cotangents of the outputs (a pytree like the output) -> cotangents of the
        primals (a tuple, one pytree per primal argument)."""
        b = self.b
        ct_leaves, ct_treedef = _flatten(cotangents)
        if ct_treedef != self.out_treedef:
            raise Error(f"cotangent structure {ct_treedef} does not match output {self.out_treedef}")
        cts = []
        for i, (c, out) in enumerate(zip(ct_leaves, self.outputs)):
            c = as_tensor(b, c)
            if c.shape != out.shape:
                raise Error(f"cotangent {i} has shape {list(c.shape)}, output is {out.type}")
            cts.append(c if c.dtype == out.dtype else bind("astype", c, dtype=out.dtype))
        graph, active = self.graph, self.active
        bwd = Builder("backward", eager=False, parent=b)
        with building(bwd):
            ct_map: dict[int, Tensor] = {}
            ct_ins = [bwd.add_input(c.type, name=f"ct{i}") for i, c in enumerate(cts)]
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
                with _provenance(bwd, node.location, grad_scope(node)):
                    self._apply_rule(op, node, out_cts, ct_map)
            results = []
            for v in graph.inputs[: self.num_primals]:
                c = ct_map.get(id(v))
                if c is None:
                    c = bind("full", shape=v.type.shape, value=0, dtype=v.type.dtype)
                results.append(c)
        g_bwd = dce(bwd.finish(results, default_out_tree(len(results))))
        captured = [outer_t for (_, outer_t) in bwd.captures.values()]
        env2 = inline(b, g_bwd, cts + captured)
        grads = [env2[id(v)] for v in g_bwd.outputs]
        return jax.tree_util.tree_unflatten(self.in_treedef, grads)

    def _apply_rule(self, op, node, out_cts, ct_map):
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
                c = as_tensor(current(), c)
            if tuple(c.shape) != v.type.shape:
                raise Error(
                    f"internal error: VJP rule of {node.op!r} gave a cotangent of shape "
                    f"{list(c.shape)} for an input of type {v.type}"
                )
            if c.dtype != v.type.dtype:
                c = bind("astype", c, dtype=v.type.dtype)
            _accumulate(ct_map, v, c)


def _accumulate(ct_map, v, c):
    prev = ct_map.get(id(v))
    ct_map[id(v)] = c if prev is None else bind("add", prev, c)


# -- public API -------------------------------------------------------------------


def _unwrap(tree):
    """Tensors -> jax arrays (for results handed back outside any trace)."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x._data) if isinstance(x, Tensor) else x, tree, is_leaf=_is_tensor
    )


@contextlib.contextmanager
def _builder_for_call():
    """The builder to record into: the active one, or a temporary define-by-run one when
    called on plain arrays (then results are unwrapped to jax arrays)."""
    b = current()
    if b is not None:
        yield b, False
        return
    top = Builder("autodiff", eager=True)
    with building(top):
        yield top, True


def vjp(fn, *primals, has_aux: bool = False):
    """Reverse-mode: ``out, vjp_fn = tg.vjp(fn, *primals)``; ``vjp_fn(ct)`` returns a tuple
    of cotangents, one per primal (JAX's meaning). With ``has_aux=True`` returns
    ``(out, vjp_fn, aux)``.

    Example::

        out, pull = tg.vjp(lambda x: tg.sin(x) * 2, x)
        (dx,) = pull(tg.ones_like(out))
    """
    with _builder_for_call() as (b, top):
        lin = _Linearized(b, fn, primals, has_aux)
        out = lin.out_tree(lin.outputs)
        aux = lin.aux_tree() if has_aux else None

    def vjp_fn(ct):
        if top:
            with building(b):
                return _unwrap(lin.pullback(ct))
        return lin.pullback(ct)

    if top:
        out, aux = _unwrap(out), _unwrap(aux)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def value_and_grad(fn, argnums=0, has_aux: bool = False):
    """``f(*args) -> (value, grad)`` (or ``((value, aux), grad)`` with ``has_aux``);
    ``argnums`` an int or a tuple of ints (then grad is a tuple), as in JAX."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        for i in nums:
            if not -len(args) <= i < len(args):
                raise Error(f"argnums {argnums} out of range for {len(args)} positional arguments")
        idx = [i % len(args) for i in nums]

        def partial(*dargs):
            full = list(args)
            for i, d in zip(idx, dargs):
                full[i] = d
            return fn(*full, **kwargs)

        partial.__name__ = function_name(fn)
        with _builder_for_call() as (b, top):
            lin = _Linearized(b, partial, [args[i] for i in idx], has_aux)
            if len(lin.outputs) != 1 or lin.outputs[0].shape != () or not is_inexact(lin.outputs[0].dtype):
                types = ", ".join(str(t.type) for t in lin.outputs)
                raise Error(
                    f"grad of {function_name(fn)} needs a scalar float output, got ({types}); "
                    "use tg.vjp for non-scalar outputs"
                )
            value = lin.outputs[0]
            one = b.add_constant(np.ones((), value.dtype))
            grads = lin.pullback(lin.out_tree([one]))
            g = grads[0] if isinstance(argnums, int) else tuple(grads)
            result = ((value, lin.aux_tree()), g) if has_aux else (value, g)
            return _unwrap(result) if top else result

    return wrapped


def grad(fn, argnums=0, has_aux: bool = False):
    """The gradient of a scalar function, with JAX's meaning of ``argnums`` and
    ``has_aux``. Works inside tg.jit (one compiled graph), under tg.eager (backward runs
    op by op), on plain arrays, and composed (``tg.grad(tg.grad(f))``).

    Example::

        df = tg.grad(lambda x: tg.sum(tg.sin(x)))
        df(np.zeros(3))   # -> [1., 1., 1.]
    """
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        res, g = vg(*args, **kwargs)
        return (g, res[1]) if has_aux else g

    return wrapped


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

        _, pull = vjp(forward, *[xs[i] for i in diff])
        grads = iter(pull(cts))
        return [
            next(grads) if i in diff else bind("full", shape=x.shape, value=0, dtype=x.dtype)
            for i, x in enumerate(xs)
        ]

    in_types = [v.type for v in graph.inputs] + [v.type.with_(weak=False) for v in graph.outputs]
    result = trace_types(backward, in_types, f"{graph.name}_vjp")
    graph._cache["vjp_graph"] = result
    return result


install_hooks(vjp_graph=vjp_graph)
