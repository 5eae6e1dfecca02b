"""Common-subexpression elimination: compute each distinct expression once.

Two nodes are the same expression when they have the same op, the same (already merged)
input values, equal attributes and the same output types; the later one's outputs are
replaced by the earlier one's, which keeps its location and scope. Equal constants (same
type, same bytes — so ``0.0`` and ``-0.0`` stay apart, and NaNs of one bit pattern
merge) become one constant.

What is never merged:

- ops marked ``random=True`` in their `OpDef` (random bits, dropout): two draws are two
  draws, even from one key, as written;
- graph inputs (two arguments are different arguments, whatever their values);
- constants larger than `MAX_CONSTANT_KEY` elements (they are compared by identity:
  hashing their bytes would cost more than it saves).

Attributes compare exactly: floats by bit pattern (``lo=0.0`` and ``lo=-0.0`` differ,
``nan`` equals ``nan``), ``1``, ``1.0`` and ``True`` are different values, and subgraph
attributes compare by identity of the (already CSE'd) subgraph object only — two
structurally equal bodies traced twice are not merged. The operands of commutative ops
(``add``, ``mul``, ``maximum``, ``minimum``, ``eq``, ``ne``, the logical ops) are
compared as a set: ``x * y`` and ``y * x`` are one expression.

Linear in graph size (one dict lookup per node). Subgraphs are CSE'd separately; they
are closed, so nothing merges across a subgraph boundary.

Example::

    g = tg.trace(lambda x: tg.exp(x) + tg.exp(x), tg.spec((3,)))
    print(dce(cse(g)))      # one exp, then add(%0, %0)
"""

from __future__ import annotations

import numpy as np

from ..ir import registry
from ..ir.graph import Graph
from .rewrite import Rewrite, SubgraphMap, constant_array

MAX_CONSTANT_KEY = 1 << 16

COMMUTATIVE = frozenset(
    {"add", "mul", "maximum", "minimum", "eq", "ne", "logical_and", "logical_or", "logical_xor",
     "bitwise_and", "bitwise_or", "bitwise_xor"}
)


def cse(graph: Graph) -> Graph:
    """The graph with repeated expressions and repeated constants merged."""
    subs = SubgraphMap(lambda g: _cse(g, subs))
    return _cse(graph, subs)


def _cse(graph: Graph, subs: SubgraphMap) -> Graph:
    rw = Rewrite(graph)
    constants = []
    seen_const: dict = {}
    for c in graph.constants:
        arr = constant_array(c, MAX_CONSTANT_KEY)
        if arr is None:
            constants.append(c)
            continue
        key = (c.type, arr.tobytes())
        first = seen_const.get(key)
        if first is None:
            seen_const[key] = c
            constants.append(c)
        else:
            rw.env[id(c)] = first
    rw.set_constants(constants)

    table: dict = {}
    for node in graph.nodes:
        ins = rw.inputs(node)
        attrs = subs.attrs(node)
        op = registry.lookup(node.op)
        if op.random:
            rw.keep(node, ins, attrs)
            continue
        ids = [id(v) for v in ins]
        if node.op in COMMUTATIVE:
            ids.sort()
        key = (
            node.op,
            tuple(ids),
            tuple((k, attr_key(v)) for k, v in attrs.items()),
            tuple(o.type for o in node.outputs),
        )
        first = table.get(key)
        if first is not None:
            rw.replace(node, first)
            rw.drop(node)
            continue
        table[key] = rw.keep(node, ins, attrs)
    return rw.finish()


def attr_key(v):
    """A hashable key under which two attribute values are equal exactly when they mean
    the same thing (see the module docstring)."""
    if v is None:
        return ("none",)
    if isinstance(v, (bool, np.bool_)):
        return ("bool", bool(v))
    if isinstance(v, (int, np.integer)):
        return ("int", int(v))
    if isinstance(v, (float, np.floating)):
        return ("float", np.float64(v).tobytes())
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, np.dtype):
        return ("dtype", v.str, v.name)
    if isinstance(v, tuple):
        return ("tuple", tuple(attr_key(x) for x in v))
    # a subgraph (or anything else): identity only
    return ("object", id(v))
