"""The eager interpreter: runs a graph node by node through THE evaluation loop
(`core.eval_graph`, which frees each value after its last use), calling each op's
implementation (the same one the JAX lowering uses) on concrete arrays, compiled by
itself for the node's input types once per (op, attributes, input types) and shared with
define-by-run (`core.execute.executable`), so a node costs one call through JAX's C++
dispatch, as a ``jax.jit`` function does. An operand at its last use that a node made and
nothing else holds is donated: the node's output is written into its buffer (an
executable compiled with ``donate_argnums``; not with hooks or in a subclass that
overrides ``run_node``, which may read operands afterwards). Control-flow ops run their
``interpret`` facet: Python control flow over interpretations of their subgraphs.

Subclass `Interpreter` and override `run_node` to add behaviour, as with torch.fx::

    class Printing(tg.Interpreter):
        def run_node(self, node, args):
            outs = super().run_node(node, args)
            print(node.op, [o.shape for o in outs])
            return outs

Instruments (``instruments.py``; all reach into control-flow bodies):

- ``check_nans=True``: the first NaN/Inf raises `NaNError` naming the node, its op, its
  statement and its user ``file:line``.
- ``hooks``: callables ``hook(node, inputs, outputs)``; one that returns something
  replaces the node's outputs (a list, or one array for a one-output node). `Hook`
  selects nodes by op, scope or node; `Watch` records the values of the nodes it selects.
- ``profile``: a `Profile` that collects the time of every node (self time: a
  control-flow node's time excludes the nodes it ran), printable as a table with totals
  by op type and by scope. `profile(graph, *args)` does the warm-up and the runs.

Example::

    w = tg.Watch(op="matmul")
    g.interpret(x, hooks=[w]); w.values          # every matmul output, in order
    print(tg.profile(g, x))                      # per-node and per-op timing
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
from jax._src.array import ArrayImpl  # the concrete array type

from ..core import (
    EVAL,
    check_outputs,
    eval_graph,
    is_python_scalar,
    program_of,
    run_compiled,
    run_impl,
)
from ..core.execute import executable
from ..ir import registry
from ..ir.graph import register_runner
from .instruments import Hook, NaNError, Profile, Watch, _replacement, check_finite
from .program import coerce_inputs


class Interpreter:
    """Runs one graph. Options as in the module docstring; they pass on to the
    interpreters of subgraphs (`subinterpreter`)."""

    def __init__(self, graph, *, hooks=(), check_nans: bool = False, profile: "Profile | None" = None):
        self.graph = graph
        self.hooks = list(hooks)
        self.check_nans = check_nans
        self.profile = profile
        # each node's op resolved once per graph, with whether its outputs were checked
        # against the node's types (once is enough: a graph's types do not change) and
        # its compiled implementation (None until its first run; False: none, the plain one)
        ops = graph._cache.get("interpreter_ops")
        if ops is None:
            prog = program_of(graph)
            made = {prog.slot[id(v)] for n in graph.nodes for v in n.outputs}
            ops = {id(s.node): [registry.lookup(s.node.op), False, None, _donatable(s, made), None]
                   for s in prog.steps}
            graph._cache["interpreter_ops"] = ops
        self._ops = ops
        # an operand at its last use, held by nothing else, gives its buffer to the
        # node's output; not where a hook or a subclass's run_node may read it afterwards
        self._donate = not self.hooks and type(self).run_node is Interpreter.run_node

    def run(self, *flat_args) -> list:
        """Run on flat inputs (one per graph input); returns the flat outputs."""
        args = coerce_inputs(self.graph, flat_args)
        if self.check_nans:
            for v, a in zip(self.graph.inputs, args):
                check_finite(self.graph, None, a, f"input %{v.name}")
            for i, v in enumerate(self.graph.constants):
                check_finite(self.graph, None, v.data, f"constant {i} ({v.type})")
        instrumented = self.hooks or self.check_nans or self.profile is not None
        step = self._instrumented if instrumented else self.run_node
        outs = eval_graph(self.graph, args, trace=EVAL, run_node=step)
        # a weak scalar travels as a Python scalar; hand back arrays (weakly typed)
        return [jnp.asarray(o) if is_python_scalar(o) else o for o in outs]

    def run_node(self, node, args) -> list:
        """Execute one node on concrete arrays; returns its outputs as a list.

        Control-flow nodes run their op's ``interpret`` facet, with Python control flow
        over interpretations of their subgraphs (`run_graph`)."""
        plan = self._ops[id(node)]
        op = plan[0]
        if op.interpret is not None:
            outs = list(op.interpret(self.run_graph, *args, **node.attrs))
            check_outputs(node, outs)
            return outs
        fn = plan[2]
        if fn is None:
            fn = plan[2] = executable(op, node.attrs, [v.type for v in node.inputs]) or False
        if fn is False:
            outs = run_impl(op, node, args, check=not plan[1])
        else:
            if plan[3] and self._donate and plan[1]:
                fn = self._donating(node, plan, args) or fn
            outs = run_compiled(op, node, args, fn, check=not plan[1])
        plan[1] = True
        return outs

    @staticmethod
    def _donating(node, plan, args):
        """The node's executable that reuses the buffers of its dying operands, when
        this call's arrays are held by ``args`` alone (a reference count of 2: the list
        and the call's argument); None when none may be given."""
        free = tuple(i for i in plan[3] if type(args[i]) is ArrayImpl and sys.getrefcount(args[i]) == 2)
        if not free:
            return None
        made = plan[4]
        if made is None:
            made = plan[4] = {}
        exe = made.get(free)
        if exe is None:
            exe = made[free] = executable(plan[0], node.attrs, [v.type for v in node.inputs], free) or False
        return exe or None

    def run_graph(self, graph, args) -> list:
        """Run a subgraph (a branch, a loop body) with an interpreter of this kind."""
        return self.subinterpreter(graph).run(*args)

    def subinterpreter(self, graph) -> "Interpreter":
        """An interpreter of the same kind and options for a subgraph."""
        return type(self)(graph, hooks=self.hooks, check_nans=self.check_nans, profile=self.profile)

    def _instrumented(self, node, args) -> list:
        outs = self.run_node(node, args) if self.profile is None else self._timed(node, args)
        for hook in self.hooks:
            replaced = hook(node, args, outs)
            if replaced is not None:
                outs = _replacement(hook, node, replaced)
        if self.check_nans:
            for o in outs:
                check_finite(self.graph, node, o)
        return outs

    def _timed(self, node, args):
        prof = self.profile
        mark = prof._accounted
        start = time.perf_counter()
        outs = self.run_node(node, args)
        jax.block_until_ready(outs)
        elapsed = time.perf_counter() - start
        nested = prof._accounted - mark  # time of the nodes a control-flow node ran
        prof._record(self.graph, node, elapsed, elapsed - nested)
        return outs


def _donatable(step, made) -> tuple:
    """Positions of ``step``'s operands whose buffers its outputs may take: values a
    node of the graph made (not inputs or constants), read for the last time here, once,
    and of the shape and dtype of an output not already matched."""
    node = step.node
    if not step.dead or len(node.outputs) == 0:
        return ()
    dead = set(step.dead)
    outs = [(v.type.shape, v.type.dtype) for v in node.outputs if v.type.sharding is None]
    out = []
    for i, (s, v) in enumerate(zip(step.ins, node.inputs)):
        if s in dead and s in made and step.ins.count(s) == 1 and v.type.sharding is None:
            kind = (v.type.shape, v.type.dtype)
            if kind in outs and v.type.size > 0:
                outs.remove(kind)
                out.append(i)
    return tuple(out)


def profile(graph, *args, warmup: int = 1, repeat: int = 1, **kwargs) -> Profile:
    """Run ``graph`` with the interpreter ``warmup`` times untimed (JAX compiles each op
    on first use), then ``repeat`` times timing every node; returns the `Profile`.

    Example::

        print(tg.profile(g, x, repeat=5))
    """
    return profile_leaves(graph, graph.flatten_args(args, kwargs), warmup=warmup, repeat=repeat)


def profile_leaves(graph, flat, *, warmup: int = 1, repeat: int = 1) -> Profile:
    """`profile` on flat inputs (one per graph input)."""
    for _ in range(warmup):
        jax.block_until_ready(Interpreter(graph).run(*flat))
    prof = Profile(graph)
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(Interpreter(graph, profile=prof).run(*flat))
        prof.wall += time.perf_counter() - start
        prof.runs += 1
    return prof


def interpret(graph, *args, hooks=(), check_nans=False, profile=None, **kwargs):
    """Run ``graph`` with the interpreter on a pytree of arguments, like ``graph(...)``."""
    flat = graph.flatten_args(args, kwargs)
    outs = Interpreter(graph, hooks=hooks, check_nans=check_nans, profile=profile).run(*flat)
    if profile is not None:
        profile.runs += 1
        if profile.root is None:
            profile.root = graph
    return graph.unflatten_outputs(outs)


register_runner("interpret", interpret)


__all__ = ["Hook", "Interpreter", "NaNError", "Profile", "Watch", "interpret", "profile", "profile_leaves"]
