"""Dead-code elimination: drop nodes (and constants) that no output depends on.

All tracegraph ops are pure (random ops are functions of their key), so a node none of
whose outputs is used can go. Graph inputs always stay (they are the signature), and so
does every input of a subgraph; inside a subgraph, dead nodes go as at the top level.

Linear in graph size: one backward sweep marks live values, one forward sweep rebuilds.
Returns a new Graph (sharing unchanged nodes) and leaves its input untouched; returns
the input itself when nothing is dead.

Example::

    g2 = dce(g)          # same results, no unused nodes
"""

from __future__ import annotations

from ..core import live_nodes
from ..ir.graph import Graph
from .rewrite import Rewrite, SubgraphMap


def dce(graph: Graph) -> Graph:
    """The graph without dead nodes and unused constants (subgraphs included)."""
    subs = SubgraphMap(lambda g: _dce(g, subs))
    return _dce(graph, subs)


def _dce(graph: Graph, subs: SubgraphMap) -> Graph:
    alive, live = live_nodes(graph)

    rw = Rewrite(graph)
    for node, keep in zip(graph.nodes, alive):
        if keep:
            rw.keep(node, rw.inputs(node), subs.attrs(node))
        else:
            rw.drop(node)
    rw.set_constants([c for c in graph.constants if id(c) in live])
    return rw.finish()
