"""An HTML report of one compilation, like a compile log viewer: `compilation_report`.

One self-contained page (no scripts, no network): the signature and why it was traced,
the pass table, the traced IR, each pass as a diff of the IR before and after it with its
time, the optimized IR, the StableHLO and the optimized HLO. In the IR listings each
module scope is a foldable block (``<details>``), every operand ``%3`` links to the line
that defines it, and each node shows the user's ``file:line``; in the HLO listings every
``op_name`` that names an IR node (see `tracegraph.backends.jax_backend`) links to that
node in the optimized IR. `tg.jit(..., dump=DIR)` writes it as ``report.html`` beside the
text files.
"""

from __future__ import annotations

import difflib
import html
import re

__all__ = ["compilation_report"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
pre, .ir { font-family: monospace; font-size: 12px; white-space: pre; }
details { margin-left: 1em; border-left: 2px solid #ccd; padding-left: .5em; }
summary { cursor: pointer; color: #446; }
.loc { color: #888; } .add { background: #dfd; } .del { background: #fdd; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; }
a.v { color: #063; text-decoration: none; } :target { background: #ffa; }
"""

_VALUE = re.compile(r"%([\w.]+)(:?)")
_SCOPE = re.compile(r"#\s+\S+(?:\s+(\S+))?\s*$")
_HLO_NODE = re.compile(r'op_name="[^"]*?/?(%[\w.]+) = (\S+) at ([^"/]+)')


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _ir_html(text: str, prefix: str) -> str:
    """An IR listing: operands linked to their definitions (anchors ``prefix-NAME``),
    consecutive nodes of one top-level module scope folded into a ``<details>``."""
    out, open_scope = [], None
    for line in text.splitlines():
        scope = None
        m = _SCOPE.search(line)
        if m and m.group(1) and line.lstrip().startswith("%"):
            scope = m.group(1).split(".")[0]
        if scope != open_scope:
            if open_scope is not None:
                out.append("</details>")
            if scope is not None:
                out.append(f"<details open><summary>{_esc(scope)}</summary>")
            open_scope = scope
        body, _, comment = line.partition("  #")

        def value(v):
            name = _esc(v.group(1))
            if v.group(2):  # "%x:" defines the value: the anchor its uses link to
                return f'<span id="{prefix}-{name}">%{name}</span>:'
            return f'<a class="v" href="#{prefix}-{name}">%{name}</a>'

        linked = _VALUE.sub(value, _esc(body))
        tail = f'<span class="loc">  #{_esc(comment)}</span>' if comment else ""
        out.append(f"<div>{linked}{tail}</div>")
    if open_scope is not None:
        out.append("</details>")
    return '<div class="ir">' + "\n".join(out) + "</div>"


def _diff_html(before: str, after: str) -> str:
    lines = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after",
                                     lineterm="", n=2):
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        lines.append(f'<div class="{cls}">{_esc(line)}</div>' if cls else f"<div>{_esc(line)}</div>")
    return '<div class="ir">' + ("\n".join(lines) or "(no change)") + "</div>"


def _hlo_html(text: str) -> str:
    """HLO text with each op_name naming an IR node linked to it in the optimized IR."""
    out = []
    for line in text.splitlines():
        esc = _esc(line)
        m = _HLO_NODE.search(line)
        if m:
            name = m.group(1)[1:]
            esc += (f'  <a class="v" href="#opt-{_esc(name)}">&#8594; %{_esc(name)} '
                    f'{_esc(m.group(2))} at {_esc(m.group(3))}</a>')
        out.append(f"<div>{esc}</div>")
    return '<div class="ir">' + "\n".join(out) + "</div>"


def compilation_report(title: str, header: str, stages, records, stablehlo: str | None,
                       hlo: str | None) -> str:
    """The report page. ``stages``: ``[(name, graph)]`` from the traced graph to the
    optimized one (a `PassManager` result's ``stages``), ``records`` its pass records,
    ``header`` the signature lines, ``stablehlo``/``hlo`` the texts (None: not compiled)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{_esc(title)}</h1><pre>{_esc(header)}</pre>",
             "<h2 id='passes'>Passes</h2><table><tr><th>pass</th><th>ms</th><th>nodes</th></tr>"]
    for rec in records:
        parts.append(f"<tr><td><a href='#pass-{_esc(rec.name)}-{id(rec)}'>{_esc(rec.name)}</a></td>"
                     f"<td>{rec.seconds * 1e3:.2f}</td><td>{rec.nodes_before} &#8594; "
                     f"{rec.nodes_after}</td></tr>")
    parts.append("</table>")
    texts = [(name, str(g)) for name, g in stages]
    parts.append("<h2 id='traced'>Traced IR</h2>" + _ir_html(texts[0][1], "traced"))
    for (name, text), prev, rec in zip(texts[1:], texts, records):
        parts.append(f"<h2 id='pass-{_esc(rec.name)}-{id(rec)}'>Pass {_esc(name)} "
                     f"({rec.seconds * 1e3:.2f} ms)</h2>" + _diff_html(prev[1], text))
    parts.append("<h2 id='optimized'>Optimized IR</h2>" + _ir_html(texts[-1][1], "opt"))
    if stablehlo is not None:
        parts.append("<h2 id='stablehlo'>StableHLO</h2><details><summary>show</summary>"
                     f"<pre>{_esc(stablehlo)}</pre></details>")
    if hlo is not None:
        parts.append("<h2 id='hlo'>Optimized HLO</h2>" + _hlo_html(hlo))
    parts.append("</body></html>")
    return "\n".join(parts)
