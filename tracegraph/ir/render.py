"""Rendering a graph to an image with the Graphviz ``dot`` program: ``g.render(path)``.

The picture is `Graph.to_dot` drawn by Graphviz; the format comes from the file suffix
(``.svg``, ``.png``, ``.pdf``) or ``format=``. Graphviz is a system program, not a
Python package: when ``dot`` is missing the error says how to install it (the Debian and
Ubuntu package is ``graphviz``).

Example::

    g.render("mlp.svg")
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import Error

FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = (
    "the Graphviz `dot` program is not installed (or not on PATH); install it with "
    "`apt-get install graphviz` (Debian/Ubuntu package `graphviz`; `brew install graphviz` "
    "on macOS), or write the DOT text with g.to_dot() and render it elsewhere"
)


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
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise Error(f"cannot render to format {fmt!r}; use one of {', '.join(FORMATS)}")
    exe = find_dot(program)
    text = graph.to_dot()
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
