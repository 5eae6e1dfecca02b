"""Constant folding: evaluate at compile time the nodes whose inputs are all constants.

A node is folded by running its op's one implementation (the same function the
interpreter and the JAX lowering call), compiled by itself for the node's input types as
the interpreter runs it (`core.execute.executable`), on the constants' arrays, and its
outputs become new constants. There is no second, "compile-time" implementation of any
op, so a folded value is exactly what the op computes eagerly (as `Graph.interpret`
would).

Bounded, so that folding never bloats the graph or stalls compilation:

- a node is folded only when each output has at most `MAX_ELEMENTS` (1024) elements and
  its inputs have at most `MAX_INPUT_ELEMENTS` (65536) elements together;
- a creation op with no inputs (``full``, ``arange``, ``eye``) is not folded by itself
  (as a node it is cheaper, more readable, and XLA materializes it anyway; `simplify`
  sees through ``full``): its value is computed only when a node that uses it folds;
- ops marked ``random=True`` are never folded (their bits depend on the PRNG
  implementation configured when the program runs), and neither are control-flow nodes
  (nodes with subgraph attributes); nor is a node giving PRNG keys (a constant is a
  numpy array: a key constant is a ``random_wrap`` of its data);
- a weakly typed result is folded only when it is a scalar (a weak constant is kept as a
  Python scalar, which has no shape);
- a result holding a NaN or an Inf is not folded: the node stays, so the interpreter's
  ``check_nans`` still names the op and the user line that made it;
- a result of more than one element whose elements are all equal becomes a ``full``
  node rather than a dense constant (``full(shape=(64,10), value=0.015625, dtype=f32)``).

If the implementation fails (e.g. a 64-bit constant while ``jax_enable_x64`` is off), the
node is left as it is: folding is an optimization, never a new error. Folding runs under
``jax.ensure_compile_time_eval()`` so it evaluates even while ``jax.jit`` is tracing.

Example::

    g = tg.trace(lambda x: x * (tg.ones(3) * 2), tg.spec((3,)))
    print(fold(g))   # the ones * 2 node is now the constant [2.0, 2.0, 2.0]
"""

from __future__ import annotations

import jax
import numpy as np

from ..errors import Error
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.types import is_float, is_key
from ..core import run_compiled
from .rewrite import Rewrite, SubgraphMap, constant_array, graph_attr_keys, splat_of_array

MAX_ELEMENTS = 1024
MAX_INPUT_ELEMENTS = 1 << 16


def fold(graph: Graph) -> Graph:
    """The graph with every foldable node replaced by constants (see the module doc)."""
    subs = SubgraphMap(lambda g: _fold(g, subs))
    with jax.ensure_compile_time_eval():
        return _fold(graph, subs)


def _fold(graph: Graph, subs: SubgraphMap) -> Graph:
    rw = Rewrite(graph)
    made: dict[int, list | None] = {}  # id(creation node) -> its output arrays, or None
    for node in graph.nodes:
        ins = rw.inputs(node)
        attrs = subs.attrs(node)
        outs = _evaluate(node, ins, made) if ins else None
        if outs is None:
            rw.keep(node, ins, attrs)
            continue
        rw.replace(node, [_result(rw, node, a, o) for a, o in zip(outs, node.outputs)])
        rw.drop(node)
    return rw.finish()


def _result(rw: Rewrite, node, array, out):
    """The value standing for a folded output: a constant, or — for an array of more
    than one element, all equal — a ``full`` node, which reads better than a dense
    constant and leaves XLA a broadcast instead of a literal."""
    real = array.dtype.kind in "biuf" or is_float(array.dtype)  # bf16 is kind "V"
    s = splat_of_array(array) if array.size > 1 and real else None
    if s is not None:
        full = registry.lookup("full")
        value = bool(s) if array.dtype.kind == "b" else int(s) if array.dtype.kind in "iu" else float(s)
        attrs = full.check_attrs({"shape": out.type.shape, "value": value, "dtype": out.type.dtype,
                                  "weak": out.type.weak})
        (t,) = full.infer([], attrs)
        if t == out.type:
            return rw.add_node(Node("full", [], attrs, [Value(t)], node.location, node.scope))[0]
    return rw.add_constant(array, weak=out.type.weak)


def _evaluate(node, ins, made):
    """The output arrays of ``node`` if it can be folded, else None."""
    op = registry.lookup(node.op)
    if op.random or graph_attr_keys(node.op):
        return None
    for o in node.outputs:
        if o.type.size > MAX_ELEMENTS or (o.type.weak and o.type.shape != ()):
            return None
        if is_key(o.type.dtype):  # a constant is a numpy array; a key stays random_wrap
            return None
    if sum(v.type.size for v in ins) > MAX_INPUT_ELEMENTS:
        return None
    arrays = []
    for v in ins:
        if v.data is not None:
            a = constant_array(v, MAX_INPUT_ELEMENTS)
        else:
            a = _created(v, made)
        if a is None or (v.type.weak and a.shape != ()):
            return None
        arrays.append(a.item() if v.type.weak else a)  # a Python scalar stays weak in JAX
    try:
        outs = run_compiled(registry.lookup(node.op), node, arrays)
    except Error:
        return None
    result = []
    for a, o in zip(outs, node.outputs):
        arr = _host(a)
        if arr is None or arr.shape != o.type.shape or arr.dtype != o.type.dtype:
            return None
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            return None  # a NaN/Inf keeps its node: check_nans then names its op and line
        result.append(arr)
    return result


def _created(v, made):
    """The array of a value made by a creation node (no inputs), computed on demand."""
    node = v.producer
    if node is None or node.inputs:
        return None
    if id(node) not in made:
        made[id(node)] = _evaluate_creation(node)
    arrays = made[id(node)]
    return None if arrays is None else arrays[node.outputs.index(v)]


def _evaluate_creation(node):
    op = registry.lookup(node.op)
    if op.random or graph_attr_keys(node.op):
        return None
    if any(o.type.size > MAX_INPUT_ELEMENTS for o in node.outputs):
        return None
    try:
        outs = run_compiled(op, node, [])
    except Error:
        return None
    arrays = [_host(a) for a in outs]
    return None if any(a is None for a in arrays) else arrays


def _host(a):
    """``a`` as a numpy array, or None when it is laid out over devices of other
    processes too (its type's sharding spans a multi-process mesh): no process can
    fetch it whole, so it is not folded."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        return None
    return np.asarray(a)
