"""Dead-code elimination: drop nodes (and constants) that no output depends on.

All tracegraph ops are pure (random ops are functions of their key), so a node whose
outputs are unused can go. Linear in graph size; returns a new Graph and leaves its
input untouched (nodes are shared, not copied).
"""

from __future__ import annotations

from ..ir.graph import Graph


def dce(graph: Graph) -> Graph:
    live = {id(v) for v in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if any(id(v) in live for v in node.outputs):
            kept.append(node)
            live.update(id(v) for v in node.inputs)
    kept.reverse()
    constants = [c for c in graph.constants if id(c) in live]
    return Graph(
        graph.name, graph.inputs, constants, kept, graph.outputs, graph.in_tree, graph.out_tree
    )
