"""THE evaluation loop: `eval_graph` walks a graph's nodes in order and hands each to
a trace (``trace.process_node``) or to a ``run_node`` override, under the node's own
source location and scope. Because it goes through the trace, the same loop

- computes values (the evaluation trace: plain arrays, or JAX tracers while ``jax.jit``
  lowers a graph; the interpreter, with ``run_node`` as its override point),
- inlines a graph into the one being built (a graph trace), and
- runs and records (define-by-run),

as ``jax.core.eval_jaxpr`` evaluates, inlines and retraces. Every value is freed after
its last use (as ``eval_jaxpr``'s ``clean_up_dead_vars`` and torch.fx's
``garbage_collect_values``), so a chain of ops on a large array holds two arrays at a
time, not all of them.

`Program` is a graph pre-resolved for this loop (cached on the graph): a slot per
value, and for each node the slots to read and the slots that die there.
"""

from __future__ import annotations

import jax

from ..ir.printer import Namer
from .trace import EVAL, current_trace


class Step:
    __slots__ = ("node", "ins", "outs", "dead", "unread", "live")

    def __init__(self, node, ins, outs, dead, unread, live):
        self.node = node
        self.ins = ins  # slots read
        self.outs = outs  # slots written
        self.dead = dead  # slots whose last reader is this node
        self.unread = unread  # output slots nobody reads (freed at once)
        self.live = live  # some graph output depends on this node


class Program:
    def __init__(self, graph):
        self.graph = graph
        slot: dict[int, int] = {}
        for v in graph.values():
            slot[id(v)] = len(slot)
        self.num_slots = len(slot)
        self.input_slots = [slot[id(v)] for v in graph.inputs]
        self.constants = [(slot[id(v)], v) for v in graph.constants]
        self.output_slots = [slot[id(v)] for v in graph.outputs]
        last: dict[int, int] = {}
        for i, n in enumerate(graph.nodes):
            for v in n.inputs:
                last[slot[id(v)]] = i
        live_out = set(self.output_slots)
        dead: list[list[int]] = [[] for _ in graph.nodes]
        for s, i in last.items():
            if s not in live_out:
                dead[i].append(s)
        live, _ = live_nodes(graph)
        self.steps = []
        for i, n in enumerate(graph.nodes):
            outs = [slot[id(v)] for v in n.outputs]
            unread = [s for s in outs if s not in last and s not in live_out]
            self.steps.append(Step(n, [slot[id(v)] for v in n.inputs], outs, dead[i], unread, live[i]))
        self.slot = slot


def live_nodes(graph) -> tuple[list[bool], set[int]]:
    """One backward sweep: which nodes some graph output depends on, and the ids of the
    values those outputs need (graph inputs and constants included)."""
    needed = {id(v) for v in graph.outputs}
    live = [False] * len(graph.nodes)
    for i in range(len(graph.nodes) - 1, -1, -1):
        n = graph.nodes[i]
        if any(id(v) in needed for v in n.outputs):
            live[i] = True
            needed.update(id(v) for v in n.inputs)
    return live, needed


def program_of(graph) -> Program:
    """The (cached) Program of a graph. Graphs are not mutated after construction."""
    prog = graph._cache.get("program")
    if prog is None:
        prog = graph._cache["program"] = Program(graph)
    return prog


def eval_graph(graph, args, *, trace=None, run_node=None, keep=None, prune=False):
    """Evaluate ``graph`` on flat ``args`` (one per input); returns the flat outputs.

    Arguments:
      trace: the trace that processes each node (default: the current one).
      run_node: ``run_node(node, operands) -> outputs`` overriding
        ``trace.process_node`` (the interpreter's instruments hook in here).
      keep: Values of ``graph`` whose results the caller wants as well (autodiff keeps
        the forward values its backward rules read); then ``(outputs, {id(Value):
        result})`` is returned, and those values are not freed.
    """
    prog = program_of(graph)
    if trace is None:
        trace = current_trace()
    if run_node is None:
        run_node = trace.process_node
    env = [None] * prog.num_slots
    for s, a in zip(prog.input_slots, args):
        env[s] = a
    for s, v in prog.constants:
        env[s] = trace.lift_constant(v)
    kept = None
    if keep is not None:
        kept_slots = {prog.slot[id(v)]: id(v) for v in keep if id(v) in prog.slot}
        kept = {}
        for s, vid in kept_slots.items():
            if env[s] is not None:
                kept[vid] = env[s]
    for step in prog.steps:
        if prune and not step.live:
            for i in step.dead:
                env[i] = None
            continue
        ins = [env[i] for i in step.ins]
        for i in step.dead:
            env[i] = None
        outs = run_node(step.node, ins)
        o = None
        for s, o in zip(step.outs, outs):
            env[s] = o
        if kept is not None:
            for s in step.outs:
                if s in kept_slots:
                    kept[kept_slots[s]] = env[s]
        for s in step.unread:
            env[s] = None
        # no reference of this loop outlives the step: an operand's last reader may
        # then find it held by nothing else (the interpreter donates such buffers)
        del ins, outs, o
    result = [env[s] for s in prog.output_slots]
    return result if keep is None else (result, kept)


def node_scope(node, namer) -> str:
    """The JAX name scope a node is lowered in: ``enc/0/%3 = relu at mlp.py:12`` (its
    module scope as nested scopes, its first result as the printed graph names it, its op
    and the user's line)."""
    first = namer(node.outputs[0]) if node.outputs else ""
    label = f"{first} = {node.op}" if first else node.op
    if node.location:
        label += f" at {node.location}"
    return "/".join([*node.scope.split("."), label]) if node.scope else label


def evaluate_named(graph, args) -> list:
    """`eval_graph` at the bottom of the stack (JAX values in and out: arrays, or tracers
    while JAX traces), each node under its JAX name scope (`node_scope`), so StableHLO
    locations and the optimized HLO's ``op_name`` lead back to the node. Control-flow
    implementations evaluate their bodies with it too, so a node inside a loop body is
    named under the loop's node (``%5 = while_loop at f.py:3/.../%2 = mul at f.py:4``)."""
    scopes = graph._cache.get("hlo_scopes")
    if scopes is None:  # made once per graph; lowering runs once per signature
        namer = Namer(graph)
        scopes = graph._cache["hlo_scopes"] = {id(n): node_scope(n, namer) for n in graph.nodes}
    process = EVAL.process_node

    def run(node, operands):
        with jax.named_scope(scopes[id(node)]):
            return process(node, operands)

    return eval_graph(graph, list(args), trace=EVAL, run_node=run)
