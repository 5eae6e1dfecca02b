"""Define-then-run: lower a graph to one JAX function and compile it with ``jax.jit``.

Each node calls its op's implementation on JAX tracers; XLA sees the whole graph at once
and fuses it. The output types of every node are checked against the IR while JAX
traces (once per compilation, not per call).

Each node is lowered inside a JAX name scope naming it as the printed graph does: its
module scope (``enc.0.attn`` as nested scopes ``enc/0/attn``), then ``%3 = relu
at mlp.py:12`` (its first result, its op, the user's line). JAX carries the name stack into
the StableHLO locations and the optimized HLO's ``op_name`` metadata, so an HLO op, and a
profile of the compiled program, leads back to the IR node and the user's line.
"""

from __future__ import annotations

import jax

from ..core import at_bottom, call_graph, evaluate_named
from ..ir.graph import register_runner
from .program import coerce_inputs


def evaluate(graph, flat_args) -> list:
    """Evaluate ``graph`` on JAX values (arrays, or tracers while ``jax.jit`` traces) at
    the bottom of the trace stack, each node in its name scope; returns the flat outputs."""
    return evaluate_named(graph, flat_args)


def as_jax_function(graph):
    """A Python function of the flat inputs that evaluates the graph (for ``jax.jit``,
    ``jax.vmap`` or ``jax.make_jaxpr``)."""

    def fn(*flat_args):
        return evaluate(graph, flat_args)

    fn.__name__ = graph.name
    return fn


def jitted(graph):
    """The graph compiled with ``jax.jit`` (cached on the graph)."""
    f = graph._cache.get("jit")
    if f is None:
        f = graph._cache["jit"] = jax.jit(as_jax_function(graph))
    return f


def run_jit(graph, *args, **kwargs):
    if not at_bottom():  # called inside a trace (tg.jit, tg.eager): inline the graph
        return graph.unflatten_outputs(call_graph(graph, *graph.flatten_args(args, kwargs)))
    flat = coerce_inputs(graph, graph.flatten_args(args, kwargs))
    return graph.unflatten_outputs(list(jitted(graph)(*flat)))


register_runner("jit", run_jit)
