"""The text form of a graph (grammar in docs/ir.md). Deterministic: values are named by
first appearance — inputs by their argument names, constants ``%c0, %c1, ...``, node
outputs ``%0, %1, ...`` — and every line states the type it defines.

    graph mlp(%x: f32[128,784], %w1: f32[784,128], %b1: f32[128]) -> (f32[128,128]) {
      %0: f32[128,128] = matmul(%x, %w1)                # mlp.py:12  fc1
      %1: f32[128,128] = add(%0, %b1)                   # mlp.py:12  fc1
      %2: f32[128,128] = relu(%1)                       # mlp.py:13
      return %2
    }
"""

from __future__ import annotations

import json
import re

import numpy as np

from .tree import default_in_tree
from .types import dtype_name

COMMENT_COLUMN = 50
# Constants with more elements than this print elided; the JSON and file forms keep them.
INLINE_CONSTANT_LIMIT = 64

_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_RESERVED = re.compile(r"(c?\d+)\Z")


def sanitize_name(name: str | None, fallback: str) -> str:
    if not name:
        return fallback
    name = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip(".") or fallback
    if not _NAME_OK.match(name) or _RESERVED.match(name):
        name = "arg_" + name
    return name


class Namer:
    """Assigns printed names to the values of one graph."""

    def __init__(self, graph):
        self.names: dict[int, str] = {}
        used: set[str] = set()
        for i, v in enumerate(graph.inputs):
            base = sanitize_name(v.name, f"arg{i}")
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            self.names[id(v)] = name
        for i, v in enumerate(graph.constants):
            self.names[id(v)] = f"c{i}"
        n = 0
        for node in graph.nodes:
            for v in node.outputs:
                self.names[id(v)] = str(n)
                n += 1

    def __call__(self, v) -> str:
        try:
            return "%" + self.names[id(v)]
        except KeyError:
            return f"%<undefined {v.type}>"


def format_graph(graph, indent: int = 0) -> str:
    return "\n".join(_graph_lines(graph, indent))


def _graph_lines(graph, indent: int):
    pad = "  " * indent
    name = Namer(graph)
    params = ", ".join(f"{name(v)}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    gname = sanitize_name(graph.name, "graph")
    lines = [f"{pad}graph {gname}({params}) -> ({results}) {{"]
    body = pad + "  "
    default_in = graph.in_tree.structure_key() == _default_in_key(len(graph.inputs))
    if not default_in:
        lines.append(f"{body}args {graph.in_tree.format([name(v) for v in graph.inputs])}")
    for v in graph.constants:
        lines.append(f"{body}{name(v)}: {v.type} = const {format_constant(v.data)}")
    for node in graph.nodes:
        lines.extend(_node_lines(node, name, indent + 1))
    lines.append(f"{body}return {graph.out_tree.format([name(v) for v in graph.outputs])}")
    lines.append(f"{pad}}}")
    return lines


def _default_in_key(n):
    return default_in_tree(n).structure_key()


def _node_lines(node, name, indent):
    pad = "  " * indent
    outs = ", ".join(f"{name(v)}: {v.type}" for v in node.outputs)
    args = [name(v) for v in node.inputs]
    nested = []
    for key, val in node.attrs.items():
        if _is_graph(val) or (isinstance(val, tuple) and val and all(_is_graph(g) for g in val)):
            nested.append((key, val))
        else:
            args.append(f"{key}={format_attr(val)}")
    stmt = f"{pad}{outs} = {node.op}({', '.join(args)})"
    comment = format_comment(node.location, node.scope)
    if nested:
        # Control flow: the subgraphs follow in a block, one `key = graph ...` each.
        lines = [_with_comment(stmt + " {", comment)]
        for key, val in nested:
            graphs = val if isinstance(val, tuple) else (val,)
            tag = "graphs" if isinstance(val, tuple) else "graph"
            lines.append(f"{pad}  {key} = {tag} {len(graphs) if tag == 'graphs' else ''}".rstrip())
            for g in graphs:
                lines.extend(_graph_lines(g, indent + 2))
        lines.append(f"{pad}}}")
        return lines
    return [_with_comment(stmt, comment)]


def _with_comment(stmt, comment):
    if not comment:
        return stmt
    return f"{stmt.ljust(COMMENT_COLUMN)}  # {comment}"


def format_comment(location, scope) -> str:
    if not location and not scope:
        return ""
    if not location:
        loc = "?"
    elif location == "?":
        loc = '"?"'  # a location literally called "?", not "no location"
    else:
        loc = _comment_part(location)
    return f"{loc}  {_comment_part(scope) if scope else ''}".rstrip()


_BARE = re.compile(r'[^\s"]+\Z')


def _comment_part(text: str) -> str:
    # A location or scope with spaces or quotes prints as a JSON string, so that the
    # parser can read the comment back unambiguously.
    return text if _BARE.match(text) else json.dumps(text)


def _is_graph(v):
    return hasattr(v, "nodes") and hasattr(v, "inputs") and hasattr(v, "outputs")


def format_attr(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_float(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, np.dtype):
        return dtype_name(v)
    if isinstance(v, tuple):
        inner = ", ".join(format_attr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise TypeError(f"cannot print attribute value {v!r}")


def format_float(x: float) -> str:
    s = repr(float(x))  # shortest repr: parses back to the same double
    return s if ("." in s or "e" in s or "n" in s) else s + ".0"


def format_constant(arr: np.ndarray) -> str:
    arr = np.asarray(arr)
    if arr.size > INLINE_CONSTANT_LIMIT:
        return f"<{arr.size} elements>"
    return _format_nested(arr)


def _format_nested(arr) -> str:
    if arr.ndim == 0:
        return _format_scalar(arr.item() if arr.dtype.kind != "V" else arr, arr.dtype)
    return "[" + ", ".join(_format_nested(a) for a in arr) + "]"


def _format_scalar(x, dtype) -> str:
    kind = np.dtype(dtype).kind
    if kind == "b":
        return "true" if x else "false"
    if kind in "iu":
        return str(int(x))
    if kind == "c":
        return f"complex({format_float(x.real)}, {format_float(x.imag)})"
    return format_float(float(x))  # f16/bf16/f32 values are exact as doubles
