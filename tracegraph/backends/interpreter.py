"""The eager interpreter: runs a graph node by node, calling each op's implementation
(the same one the JAX lowering uses) on concrete arrays.

Subclass `Interpreter` and override `run_node` to add behaviour, as with torch.fx::

    class Printing(tg.Interpreter):
        def run_node(self, node, args):
            outs = super().run_node(node, args)
            print(node.op, [o.shape for o in outs])
            return outs

Hooks are callables ``hook(node, inputs, outputs)``; one that returns a list replaces
the node's outputs (to watch or patch values).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import Error
from ..ir.graph import register_runner
from ..ops.execute import check_outputs, program_of, run_impl
from .program import coerce_inputs


class NaNError(Error, FloatingPointError):
    """A NaN or Inf appeared; the message names the node, its op and its user line."""


class Interpreter:
    def __init__(self, graph, *, hooks=(), check_nans: bool = False):
        self.graph = graph
        self.program = program_of(graph)
        self.hooks = list(hooks)
        self.check_nans = check_nans
        self._ops = {id(step.node): step.op for step in self.program.steps}

    def run(self, *flat_args) -> list:
        """Run on flat inputs (one per graph input); returns the flat outputs."""
        prog = self.program
        env = prog.initial_env(coerce_inputs(self.graph, flat_args))
        if self.check_nans:
            for v, a in zip(self.graph.inputs, flat_args):
                self._check_finite(None, a, f"input %{v.name}")
        for step in prog.steps:
            args = [env[i] for i in step.ins]
            outs = self.run_node(step.node, args)
            for hook in self.hooks:
                replaced = hook(step.node, args, outs)
                if replaced is not None:
                    outs = list(replaced)
            if self.check_nans:
                for o in outs:
                    self._check_finite(step.node, o)
            for s, o in zip(step.outs, outs):
                env[s] = o
        return [env[s] for s in prog.output_slots]

    def run_node(self, node, args) -> list:
        """Execute one node on concrete arrays; returns its outputs as a list.

        Control-flow nodes run with Python control flow over interpretations of their
        subgraphs (so hooks and NaN checks reach inside loop bodies and branches)."""
        control = _CONTROL.get(node.op)
        if control is not None:
            outs = control(self, node, list(args))
            check_outputs(node, outs)
            return outs
        return run_impl(self._ops[id(node)], node, args)

    def subinterpreter(self, graph) -> "Interpreter":
        """An interpreter of the same kind and options for a subgraph."""
        return type(self)(graph, hooks=self.hooks, check_nans=self.check_nans)

    # -- control flow ---------------------------------------------------------------
    def _run_cond(self, node, args):
        pred, ops = args[0], args[1:]
        branch = node.attrs["true_branch"] if bool(pred) else node.attrs["false_branch"]
        return self.subinterpreter(branch).run(*ops)

    def _run_while(self, node, args):
        cond, body = node.attrs["cond_graph"], node.attrs["body_graph"]
        n = len(body.outputs)
        carry, consts = args[:n], args[n:]
        run_cond, run_body = self.subinterpreter(cond), self.subinterpreter(body)
        while bool(run_cond.run(*carry, *consts)[0]):
            carry = run_body.run(*carry, *consts)
        return list(carry)

    def _run_scan(self, node, args):
        a = node.attrs
        nc, nx, length = a["num_carry"], a["num_xs"], a["length"]
        carry, xs, consts = args[:nc], args[nc : nc + nx], args[nc + nx :]
        body = self.subinterpreter(a["body"])
        steps = range(length - 1, -1, -1) if a["reverse"] else range(length)
        ys = [None] * length
        for i in steps:
            outs = body.run(*carry, *[x[i] for x in xs], *consts)
            carry, ys[i] = outs[:nc], outs[nc:]
        stacked = []
        for j, v in enumerate(node.outputs[nc:]):
            if length:
                stacked.append(jnp.stack([y[j] for y in ys]))
            else:
                stacked.append(jnp.zeros(v.type.shape, v.type.dtype))
        return list(carry) + stacked

    def _check_finite(self, node, x, what=None):
        a = jnp.asarray(x)
        if not jnp.issubdtype(a.dtype, jnp.inexact) or bool(jnp.all(jnp.isfinite(a))):
            return
        bad = "NaN" if bool(jnp.any(jnp.isnan(a))) else "Inf"
        if node is None:
            raise NaNError(f"{bad} in {what} of graph {self.graph.name}")
        raise NaNError(
            f"{bad} produced by node {self.graph.nodes.index(node)} ({node.op}) at "
            f"{node.location or '?'}{' in scope ' + node.scope if node.scope else ''}: "
            f"output {_type_of(a)}"
        )


_CONTROL = {
    "cond": Interpreter._run_cond,
    "while_loop": Interpreter._run_while,
    "scan": Interpreter._run_scan,
}


def _type_of(a):
    return f"{np.dtype(a.dtype)}{list(a.shape)}"


def interpret(graph, *args, hooks=(), check_nans=False, **kwargs):
    """Run ``graph`` with the interpreter on a pytree of arguments, like ``graph(...)``."""
    flat = graph.flatten_args(args, kwargs)
    outs = Interpreter(graph, hooks=hooks, check_nans=check_nans).run(*flat)
    return graph.unflatten_outputs(outs)


register_runner("interpret", interpret)
