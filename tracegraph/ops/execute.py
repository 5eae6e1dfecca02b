"""Running ops on arrays: the single path every executor uses (define-by-run, the
interpreter, the jax lowering, and control-flow ops evaluating their subgraphs).

`run_impl` runs one node's op implementation, checks its output types against the
shape rule and re-raises failures naming the node and its user line. `Program` is a
graph pre-resolved for execution (each node's op looked up once, every value given a
slot), and `evaluate` runs one on JAX values (arrays or tracers).
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from ..errors import Error
from ..ir import registry


def weak_of(a) -> bool:
    if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
        return True
    aval = getattr(a, "aval", None)
    if aval is not None:
        return bool(getattr(aval, "weak_type", False))
    return bool(getattr(a, "weak_type", False))


def run_impl(op, node, arrays) -> list:
    """``op.impl(*arrays, **node.attrs)`` as a list of outputs, type-checked."""
    try:
        out = op.impl(*arrays, **node.attrs)
    except Error:
        raise
    except Exception as e:  # a JAX error: re-raise naming the op and the user line
        raise Error(
            f"{node.op} at {node.location or '?'} failed: {type(e).__name__}: {e}"
        ) from e
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    check_outputs(node, outs)
    return outs


def check_outputs(node, arrays) -> None:
    if len(arrays) != len(node.outputs):
        raise Error(
            f"internal error in op {node.op!r}: implementation gave {len(arrays)} outputs, "
            f"the shape rule {len(node.outputs)}"
        )
    for a, v in zip(arrays, node.outputs):
        t = v.type
        if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
            dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.asarray(a).dtype))  # weak scalar
        else:
            dtype = np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype)
        if tuple(np.shape(a)) != t.shape or dtype != t.dtype or weak_of(a) != t.weak:
            got = f"{dtype}{list(np.shape(a))}{'~' if weak_of(a) else ''}"
            raise Error(
                f"internal error in op {node.op!r} at {node.location or '?'}: the "
                f"implementation returned {got} but the shape rule says {t}"
            )


class Step:
    __slots__ = ("node", "op", "impl", "attrs", "ins", "outs")

    def __init__(self, node, op, ins, outs):
        self.node = node
        self.op = op
        self.impl = op.impl
        self.attrs = node.attrs
        self.ins = ins
        self.outs = outs


class Program:
    def __init__(self, graph):
        self.graph = graph
        slot: dict[int, int] = {}
        for v in graph.values():
            slot[id(v)] = len(slot)
        self.num_slots = len(slot)
        self.input_slots = [slot[id(v)] for v in graph.inputs]
        self.constants = [(slot[id(v)], _constant_value(v)) for v in graph.constants]
        self.steps = [
            Step(
                n,
                registry.lookup(n.op),
                [slot[id(v)] for v in n.inputs],
                [slot[id(v)] for v in n.outputs],
            )
            for n in graph.nodes
        ]
        self.output_slots = [slot[id(v)] for v in graph.outputs]

    def initial_env(self, flat_args) -> list:
        env = [None] * self.num_slots
        for s, a in zip(self.input_slots, flat_args):
            env[s] = a
        for s, c in self.constants:
            env[s] = c
        return env


def _constant_value(v):
    if v.type.weak:
        return np.asarray(v.data).item()  # a Python scalar keeps JAX's weak typing
    return v.data


def program_of(graph) -> Program:
    """The (cached) Program of a graph. Graphs are not mutated after construction."""
    prog = graph._cache.get("program")
    if prog is None:
        prog = graph._cache["program"] = Program(graph)
    return prog


def evaluate(graph, flat_args) -> list:
    """Evaluate ``graph`` on JAX values (arrays or tracers); returns the flat outputs."""
    prog = program_of(graph)
    env = prog.initial_env(flat_args)
    for step in prog.steps:
        outs = run_impl(step.op, step.node, [env[i] for i in step.ins])
        for s, o in zip(step.outs, outs):
            env[s] = o
    return [env[s] for s in prog.output_slots]
