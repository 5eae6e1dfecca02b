"""Graphviz pictures of a graph: the DOT text (``g.to_dot()``) and, through the Graphviz
``dot`` program, an image (``g.render("g.svg")``).

One box per node, labelled with its op, its attributes and its output type(s); an ellipse
per graph input; a note per constant (with its value when it is small); a ``return`` box.
Edges carry the type of the value they move. Nodes of a module scope sit in a cluster
named after it (``encoder.layer0`` nests inside ``encoder``); the subgraphs of a
control-flow node (``cond``, ``while_loop``, ``scan``) are drawn as dashed clusters whose
``return`` feeds the node.

`render` pipes that text to Graphviz; the format comes from the file suffix (``.svg``,
``.png``, ``.pdf``) or ``format=``. Graphviz is a system program, not a Python package:
when ``dot`` is missing the error says how to install it (the Debian and Ubuntu package is
``graphviz``).

Example::

    open("g.dot", "w").write(g.to_dot())   # or: dot -Tsvg g.dot -o g.svg
    g.render("mlp.svg")
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np

from ..errors import Error, IRError
from . import printer

_LABEL_ATTRS_CHARS = 60
_CONST_SHOWN = 4  # constants with at most this many elements show their value

FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = (
    "the Graphviz `dot` program is not installed (or not on PATH); install it with "
    "`apt-get install graphviz` (Debian/Ubuntu package `graphviz`; `brew install graphviz` "
    "on macOS), or write the DOT text with g.to_dot() and render it elsewhere"
)


def to_dot(graph) -> str:
    """The DOT text of ``graph``.

    Example::

        open("g.dot", "w").write(g.to_dot())
    """
    w = _Writer()
    w.lines += [
        f"digraph {quote(printer.sanitize_name(graph.name, 'graph'))} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style=rounded];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    w.graph(graph, "g", 1)
    w.lines.append("}")
    return "\n".join(w.lines) + "\n"


def quote(text: str) -> str:
    """A DOT string literal (quotes and backslashes escaped, newlines as ``\\n``)."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{s}"'


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.clusters = 0

    def cluster_id(self) -> str:
        self.clusters += 1
        return f"cluster_{self.clusters}"

    def graph(self, g, prefix: str, indent: int):
        pad = "  " * indent
        name = printer.Namer(g)
        source: dict[int, str] = {}  # id(value) -> DOT node it comes from
        for i, v in enumerate(g.inputs):
            nid = f"{prefix}_in{i}"
            source[id(v)] = nid
            self.lines.append(
                f"{pad}{nid} [label={quote(f'{name(v)}: {v.type}')}, shape=ellipse, "
                'style=filled, fillcolor="#dbe9f6"];'
            )
        for i, v in enumerate(g.constants):
            nid = f"{prefix}_c{i}"
            source[id(v)] = nid
            arr = np.asarray(v.data)
            if arr.size <= _CONST_SHOWN:
                shown = printer.format_constant(arr)
            else:
                shown = f"<{arr.size} elements>"
            label = f"{name(v)}: {v.type}\n{shown}"
            self.lines.append(
                f'{pad}{nid} [label={quote(label)}, shape=note, style=filled, fillcolor="#f2f2f2"];'
            )

        # nodes, grouped by scope: "a.b" nests inside "a"
        tree: dict = {}
        for j, node in enumerate(g.nodes):
            here = tree
            for part in node.scope.split(".") if node.scope else ():
                here = here.setdefault(("scope", part), {})
            here.setdefault(("nodes",), []).append(j)
        node_ids = [f"{prefix}_n{j}" for j in range(len(g.nodes))]
        self.scope_tree(tree, g, node_ids, name, indent)

        edges = []
        for j, node in enumerate(g.nodes):
            for v in node.outputs:
                source[id(v)] = node_ids[j]
        ret = f"{prefix}_ret"
        uses = [(v, node_ids[j]) for j, node in enumerate(g.nodes) for v in node.inputs]
        uses += [(v, ret) for v in g.outputs]
        for v, dst in uses:
            # an output of a multi-output node is told apart by its name
            multi = v.producer is not None and len(v.producer.outputs) > 1
            label = f"{name(v)}: {v.type}" if multi else str(v.type)
            edges.append(f"{pad}{self.src(source, v, g)} -> {dst} [label={quote(label)}];")
        self.lines.append(f'{pad}{ret} [label="return", shape=box, style=bold];')
        self.lines.extend(edges)

        # subgraphs of control-flow nodes, as dashed clusters feeding their node
        for j, node in enumerate(g.nodes):
            for key, val in node.attrs.items():
                graphs = _graphs_of(val)
                for k, sub in enumerate(graphs):
                    sub_prefix = f"{node_ids[j]}_{self.cluster_id()[len('cluster_'):]}"
                    title = f"{name(node.outputs[0]) if node.outputs else ''} {node.op}: {key}"
                    title += f"[{k}]" if isinstance(val, tuple) else ""
                    title += f" = graph {printer.sanitize_name(sub.name, 'graph')}"
                    self.lines.append(f"{pad}subgraph {self.cluster_id()} {{")
                    self.lines.append(f"{pad}  label={quote(title.strip())}; style=dashed;")
                    self.graph(sub, sub_prefix, indent + 1)
                    self.lines.append(f"{pad}}}")
                    self.lines.append(
                        f"{pad}{sub_prefix}_ret -> {node_ids[j]} "
                        f"[style=dashed, label={quote(key)}];"
                    )

    def scope_tree(self, tree: dict, g, node_ids, name, indent: int):
        pad = "  " * indent
        for j in tree.get(("nodes",), []):
            node = g.nodes[j]
            label = _node_label(node, name)
            self.lines.append(f"{pad}{node_ids[j]} [label={quote(label)}"
                              f"{_tooltip(node)}];")
        for key, sub in tree.items():
            if key[0] != "scope":
                continue
            self.lines.append(f"{pad}subgraph {self.cluster_id()} {{")
            self.lines.append(f'{pad}  label={quote(key[1])}; style="rounded,filled"; '
                              'fillcolor="#fafafa"; color="#999999";')
            self.scope_tree(sub, g, node_ids, name, indent + 1)
            self.lines.append(f"{pad}}}")

    @staticmethod
    def src(source, v, g) -> str:
        try:
            return source[id(v)]
        except KeyError:
            raise IRError(f"graph {g.name}: {v!r} is used but not defined in the graph") from None


def _graphs_of(val) -> tuple:
    if printer._is_graph(val):
        return (val,)
    if isinstance(val, tuple) and val and all(printer._is_graph(x) for x in val):
        return val
    return ()


def _node_label(node, name) -> str:
    lines = [node.op]
    attrs = ", ".join(
        f"{k}={printer.format_attr(v)}" for k, v in node.attrs.items() if not _graphs_of(v)
    )
    if attrs:
        if len(attrs) > _LABEL_ATTRS_CHARS:
            attrs = attrs[: _LABEL_ATTRS_CHARS - 3] + "..."
        lines.append(attrs)
    lines.append(", ".join(f"{name(v)}: {v.type}" for v in node.outputs))
    return "\n".join(lines)


def _tooltip(node) -> str:
    comment = printer.format_comment(node.location, node.scope)
    return f", tooltip={quote(comment)}" if comment else ""


# -- rendering with the dot program --------------------------------------------------------


def find_dot(program: str = "dot") -> str:
    """The path of Graphviz's ``dot``; raises `tg.Error` naming the package if missing."""
    path = shutil.which(program)
    if path is None:
        raise Error(INSTALL_HINT)
    return path


def render(graph, path, format: str | None = None, *, program: str = "dot", timeout: float = 120) -> str:
    """Draw ``graph`` into ``path`` (SVG, PNG or PDF); returns the path.

    Raises `tg.Error` when ``dot`` is missing (naming the package to install), when the
    format is unknown, or when ``dot`` fails (with its message).

    Example::

        render(g, "mlp.svg")   # the same as g.render("mlp.svg")
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise Error(f"cannot render to format {fmt!r}; use one of {', '.join(FORMATS)}")
    exe = find_dot(program)
    text = to_dot(graph)
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}", "-o", path],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise Error(f"Graphviz dot took more than {timeout:.0f} s to draw graph {graph.name}") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip()
        raise Error(f"Graphviz dot failed to draw graph {graph.name} (exit {proc.returncode}): {msg}")
    return path
