"""Rolling a recorded loop back up: a run of identical guarded iterations becomes a ``scan``.

`tg.compile` records one path through the user's function, so a Python loop whose exit
depends on a value (``while err > tol:``, ``for ...: if done: break``) is recorded
unrolled: one copy of the loop body per iteration, each ending in the ``guard`` of the
loop's test. Compiled as it is, that straight-line program costs more than the loop:
XLA fuses each iteration's test (a reduction) with the elementwise work of the earlier
iterations it depends on and recomputes it (a 5-iteration Newton loop ran at 1.9x its
own ``while_loop``), and a long loop is a long compile. Tracing JITs (LuaJIT, PyPy) close
such a trace into a loop; this pass does the same on the IR.

`roll_guarded_loops` looks for runs of consecutive guards of one user line, kind and
expected value, plus the ``bool`` decision the other way that left the loop, and takes
the nodes from one guard to the next as an iteration. A run is rolled when its
iterations are the same code, node for node:

- the same op, attributes (a subgraph by its printed form; a guard's expected value
  aside), output types, user line and scope;
- each input read from the same place in every iteration: an earlier node of the same
  iteration, a node of the iteration just before (the loop's *carry*; the first
  iteration reads the carry's initial value from before the loop at those places, of
  the same type), or one value from before the loop (an invariant);
- what follows the run reads only the last iteration's values, the carry that
  iteration started from, and the guards' outputs, which are consecutive graph outputs
  (the path's guards) and read by nothing else.

The run becomes one ``scan`` node (``num_xs=0``, the invariants as its constant
operands, at the guard's line). Its carry is the loop's carry, then the carry each
iteration started from and the last iteration's other values where later nodes read
them (those start as zeros). Its stacked output is the iterations' guards, one bool
each, in order, at the place of the first: where the last iteration left the loop, a
``ne`` with a constant mask turns the body's guard (the staying decision) into the exit's.
So the path computes the same values and the same guard vector as before: its
decisions, which `tg.compile` checks, are unchanged, and a different trip count still
fails the guard it failed before.

Example (the path of a Newton loop that took 5 iterations, the last one leaving it)::

    %0: f32[128,256], %1: bool[5] = scan(%x, %x, length=5, ...)  { body = graph loop(...) }  # newton.py:8
    %2: bool[5] = ne(%1, %exit)          # %exit = const [false, false, false, false, true]
    return (%0..., %2)
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node, Value
from ..ir.tree import default_out_tree
from .cse import attr_key
from .rewrite import constant_array, graph_attr_keys

_GUARD = "guard"
_CONSTANT_SIZE_COMPARED = 4096  # elements of a constant compared by value, not identity


def roll_guarded_loops(graph: Graph, first_guard: int, min_iterations: int = 2) -> Graph:
    """``graph`` with each rollable run of guarded iterations as a ``scan`` (see the
    module docstring). ``graph.outputs[first_guard:]`` are the guards' outputs, one per
    guard node; in the result, a rolled run's guards are one ``bool[n]`` output at the
    place of its first. Returns ``graph`` itself when nothing is rolled."""
    start = 0
    while True:
        found = _next_run(graph, first_guard, start, max(2, min_iterations))
        if found is None:
            return graph
        rolled, start = found
        if rolled is not None:
            graph = rolled


def _next_run(graph, first_guard, start, min_iterations):
    """The graph with the first rollable run of guards at or after node ``start``
    rolled, and where to look next (None for the graph when that run cannot be
    rolled); None when no run is left."""
    guards = [i for i, n in enumerate(graph.nodes) if n.op == _GUARD and i >= start]
    i = 0
    while i < len(guards):
        first = graph.nodes[guards[i]]
        j = i + 1
        while j < len(guards) and _same(graph.nodes[guards[j]], first, exit_too=False):
            j += 1
        if j < len(guards) and _same(graph.nodes[guards[j]], first, exit_too=True):
            j += 1  # the decision that left the loop
        run = guards[i:j]
        if len(run) >= min_iterations:
            # iterations are the same length: split where the distance between guards changes
            a = 0
            while a < len(run) - 1:
                b = a + 1
                while b + 1 < len(run) and run[b + 1] - run[b] == run[a + 1] - run[a]:
                    b += 1
                if b + 1 - a >= min_iterations:
                    rolled = _roll(graph, first_guard, run[a: b + 1], min_iterations)
                    if rolled is not None:
                        return rolled, 0
                a = b
            return None, run[-1] + 1
        i = j
    return None


def _same(node, first, exit_too: bool) -> bool:
    """Whether guard ``node`` is ``first``'s decision again: the same line, scope, kind
    and expected value, or with ``exit_too`` a ``bool`` decision the other way (the
    iteration that left the loop)."""
    if node.location != first.location or node.scope != first.scope or node.attrs["kind"] != first.attrs["kind"]:
        return False
    same = attr_key(node.attrs["expect"]) == attr_key(first.attrs["expect"])
    if not exit_too:
        return same
    return not same and first.attrs["kind"] == "bool" and bool(node.attrs["expect"]) != bool(first.attrs["expect"])


def _roll(graph, first_guard, positions, min_iterations):
    """Roll the iterations ending at the guard nodes ``positions`` (one line's
    decisions, evenly spaced), or None if they are not the same code. The first may not be: before a
    ``while`` loop's first test comes the code before the loop, not the body."""
    nodes = graph.nodes
    m = positions[1] - positions[0]  # iterations of m nodes each, ending at their guards
    ends = list(positions)
    for drop in (0, 1):
        tried = ends[drop:]
        if len(tried) < min_iterations:
            return None
        begin = tried[0] - m + 1
        if begin >= 0 and not any(n.op == _GUARD for n in nodes[begin: tried[0]]):
            rolled = _roll_iterations(graph, first_guard, begin, [nodes[e - m + 1: e + 1] for e in tried])
            if rolled is not None:
                return rolled
    return None


def _roll_iterations(graph, first_guard, begin, iters):
    """The graph with ``iters`` (lists of nodes, the first at ``begin``) as one scan, or
    None if they are not the same code or what follows reads more than it may."""
    nodes = graph.nodes
    k = len(iters)
    end = begin + k * len(iters[0]) - 1  # the last node of the run
    where = {}  # id(value) -> (iteration, index in it, output index)
    for i, it in enumerate(iters):
        for p, node in enumerate(it):
            for o, v in enumerate(node.outputs):
                where[id(v)] = (i, p, o)
    reads = [_reads(it, i, where) for i, it in enumerate(iters)]
    if reads[1] is None or any(r != reads[1] for r in reads[2:]):
        return None
    statics = [_static(n) for n in iters[1]]
    if any([_static(n) for n in it] != statics for it in iters):
        return None
    decision = iters[0][-1]
    exits = [not _same(it[-1], decision, exit_too=False) for it in iters]
    if any(exits[:-1]):
        return None
    # the carry: (index, output) in the iteration before; its initial value is what the
    # first iteration reads at the same places, from before the loop
    init: dict = {}
    for p, node in enumerate(iters[0]):
        for v, r in zip(node.inputs, reads[1][p]):
            src = where.get(id(v))
            if r[0] == "prev":
                if src is not None or init.setdefault(r[1:], v) is not v:
                    return None
            elif r[0] == "in" and (src is None or src[1:] != r[1:]):
                return None
            elif r[0] == "outer" and (src is not None or r != _outer(v)):
                return None
    carry = sorted(init)
    if any(init[qo].type != iters[0][qo[0]].outputs[qo[1]].type for qo in carry):  # e.g. a weak start
        return None
    # after the run: the guards (graph outputs only), the last iteration's values and
    # the carry it started from
    guards = {id(it[-1].outputs[0]) for it in iters}
    in_last = {id(v): (p, o) for p, node in enumerate(iters[-1]) for o, v in enumerate(node.outputs)}
    before_last = {id(iters[-2][q].outputs[o]): (q, o) for q, o in carry}
    last, lagged = [], []

    def readable(v) -> bool:
        i = id(v)
        if i not in where:
            return True
        if i in guards:
            return False
        qo = in_last.get(i)
        if qo is not None:
            if qo not in init and qo not in last:
                last.append(qo)
            return True
        qo = before_last.get(i)
        if qo is not None and qo not in lagged:
            lagged.append(qo)
        return qo is not None

    if not all(readable(v) for node in nodes[end + 1:] for v in node.inputs):
        return None
    if not all(readable(v) for v in graph.outputs if id(v) not in guards):
        return None
    if any(id(v) in guards for it in iters for node in it for v in node.inputs):
        return None
    at = [i for i, v in enumerate(graph.outputs) if id(v) in guards]
    if len(at) != k or at[0] < first_guard or at[-1] - at[0] != k - 1:
        return None
    if any(graph.outputs[i] is not it[-1].outputs[0] for i, it in zip(at, iters)):
        return None
    if any(not _zeros_ok(iters[-1][q].outputs[o].type) for q, o in last):
        return None
    return _rebuild(graph, begin, iters, reads[1], init, carry, lagged, last, at, exits)


def _reads(it, i, where):
    """Where each input of each node of iteration ``i`` comes from: ("in", p, o) an
    earlier node of the same iteration, ("prev", p, o) the iteration before, ("outer",
    id) a value from before the run; None if it reads an older iteration."""
    out = []
    for node in it:
        row = []
        for v in node.inputs:
            src = where.get(id(v))
            if src is None:
                row.append(_outer(v))
            elif src[0] == i:
                row.append(("in", src[1], src[2]))
            elif src[0] == i - 1:
                row.append(("prev", src[1], src[2]))
            else:
                return None
        out.append(row)
    return out


def _outer(v):
    """How an iteration's read of ``v``, a value from before the run, is compared: a
    constant by its type and bytes (a numpy scalar operand is a constant of its own at
    each use), anything else by identity."""
    if v.is_constant and v.type.size <= _CONSTANT_SIZE_COMPARED:
        data = constant_array(v, _CONSTANT_SIZE_COMPARED)
        if data is not None:
            return ("outer", v.type, data.tobytes())
    return ("outer", id(v))


def _static(node):
    """What must be the same in every iteration (a guard's expected value aside: the
    last iteration's may be the exit's); a subgraph compares by its printed form."""
    graphs = graph_attr_keys(node.op)
    attrs = tuple((k, str(v) if k in graphs else attr_key(v)) for k, v in sorted(node.attrs.items())
                  if not (node.op == _GUARD and k == "expect"))
    return node.op, attrs, tuple(v.type for v in node.outputs), node.location, node.scope, len(node.inputs)


def _zeros_ok(t) -> bool:
    """Whether a ``full`` of zeros can stand for a value of type ``t`` before the loop."""
    return t.dtype.kind in "biuf" and t.sharding is None


def _rebuild(graph, begin, iters, reads, init, carry, lagged, last, guard_at, exits):
    """The graph with ``iters`` as one scan node. Its carry: the loop's carry, then the
    carry each iteration started from (``lagged``: what follows may read the last
    iteration's), then values of the last iteration that are not carried (``last``,
    starting as zeros); its stacked output: the iterations' guards."""
    template = iters[1]
    loc, scope = iters[0][-1].location, iters[0][-1].scope
    invariants, seen = [], {}  # one body input or constant per distinct read
    for node, row in zip(template, reads):
        for v, r in zip(node.inputs, row):
            if r[0] == "outer" and r not in seen:
                seen[r] = v
                invariants.append(v)
    typ = lambda qo: template[qo[0]].outputs[qo[1]].type  # noqa: E731
    c_in = {qo: Value(typ(qo), f"c{j}") for j, qo in enumerate(carry)}
    lag_in = [Value(typ(qo), f"lag{j}") for j, qo in enumerate(lagged)]
    last_in = [Value(typ(qo), f"last{j}") for j, qo in enumerate(last)]
    outer, consts, operands = {}, [], []
    for v in invariants:
        if v.is_constant:  # a constant of the graph: the body's own copy
            outer[id(v)] = Value(v.type, v.name, data=v.data)
            consts.append(outer[id(v)])
        else:
            outer[id(v)] = Value(v.type, v.name)
            operands.append(v)
    local: dict = {}
    body_nodes = []
    for p, (node, row) in enumerate(zip(template, reads)):
        ins = [local[r[1:]] if r[0] == "in" else c_in[r[1:]] if r[0] == "prev" else outer[id(seen[r])]
               for v, r in zip(node.inputs, row)]
        outs = [Value(v.type, v.name) for v in node.outputs]
        body_nodes.append(Node(node.op, ins, dict(node.attrs), outs, node.location, node.scope))
        local.update({(p, o): v for o, v in enumerate(outs)})
    body_out = [local[qo] for qo in carry] + [c_in[qo] for qo in lagged] + [local[qo] for qo in last]
    body = Graph("loop", [c_in[qo] for qo in carry] + lag_in + last_in + [outer[id(v)] for v in operands],
                 consts, body_nodes, body_out + [body_nodes[-1].outputs[0]])
    zeros = [Node("full", (), {"shape": typ(qo).shape, "value": False if typ(qo).dtype.kind == "b" else 0,
                               "dtype": typ(qo).dtype, "weak": typ(qo).weak},
                  [Value(typ(qo))], loc, scope) for qo in last]
    k = len(iters)
    finals = [Value(v.type, v.name) for v in body_out]
    ys = Value(body_nodes[-1].outputs[0].type.with_(shape=(k,)), "held")
    scan = Node("scan", [init[qo] for qo in carry] + [init[qo] for qo in lagged] + [z.outputs[0] for z in zeros] + operands,
                {"body": body, "length": k, "reverse": False, "num_carry": len(body_out), "num_xs": 0},
                finals + [ys], loc, scope)
    new_nodes = list(graph.nodes[:begin]) + zeros + [scan]
    constants = list(graph.constants)
    held = ys
    if exits[-1]:  # the last decision left the loop: its guard holds where the body's fails
        mask = Value(ys.type, "exit", data=np.array(exits, np.bool_))
        constants.append(mask)
        held = Value(ys.type, "held")
        new_nodes.append(Node("ne", [ys, mask], {}, [held], loc, scope))
    # what follows reads the scan's results
    env = {id(iters[-1][q].outputs[o]): finals[j] for j, (q, o) in enumerate(carry)}
    env.update({id(iters[-2][q].outputs[o]): finals[len(carry) + j] for j, (q, o) in enumerate(lagged)})
    env.update({id(iters[-1][q].outputs[o]): finals[len(carry) + len(lagged) + j] for j, (q, o) in enumerate(last)})
    for node in graph.nodes[begin + k * len(template):]:
        ins = [env.get(id(v), v) for v in node.inputs]
        if all(a is b for a, b in zip(ins, node.inputs)):
            new_nodes.append(node)
            continue
        outs = [Value(v.type, v.name) for v in node.outputs]
        new_nodes.append(Node(node.op, ins, node.attrs, outs, node.location, node.scope))
        env.update({id(a): b for a, b in zip(node.outputs, outs)})
    outputs = [env.get(id(v), v) for v in graph.outputs]
    outputs[guard_at[0]: guard_at[-1] + 1] = [held]
    return Graph(graph.name, graph.inputs, constants, new_nodes, outputs, graph.in_tree, default_out_tree(len(outputs)))


__all__ = ["roll_guarded_loops"]
