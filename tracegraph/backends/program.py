"""A graph pre-resolved for execution: each node's op implementation looked up once and
every value given a slot number, so running is one flat loop (shared by both backends)."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import Error
from ..ir import registry


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


def coerce_inputs(graph, flat_args) -> list:
    """Check user arrays against the graph's input types; give weak inputs Python
    scalars and strong inputs arrays of the declared dtype."""
    out = []
    for i, (v, a) in enumerate(zip(graph.inputs, flat_args)):
        t = v.type
        shape = tuple(np.shape(a))
        if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
            dtype = np.asarray(a).dtype
        else:
            dtype = np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype)
        if shape != t.shape or not _dtype_ok(dtype, t.dtype):
            raise Error(
                f"graph {graph.name}: input {i} (%{v.name or i}) expects {t}, got "
                f"{dtype}{list(shape)}"
            )
        if t.weak:
            out.append(a if isinstance(a, numbers.Number) else np.asarray(a).item())
        else:
            out.append(a if getattr(a, "dtype", None) == t.dtype else jnp.asarray(a, t.dtype))
    return out


def _dtype_ok(given, declared) -> bool:
    return given == declared or np.dtype(jax.dtypes.canonicalize_dtype(given)) == declared
