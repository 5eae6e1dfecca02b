"""Compilation dumps: ``TRACEGRAPH_DUMP=DIR`` or ``tg.jit(fn, dump=DIR)``.

For every compiled function and signature, a folder ``DIR/<function>/<n>/`` (``n`` counts
the signatures of that function from 0) with numbered files, in the order the compiler
produced them::

    00_traced.txt            the IR as traced
    01_after_fold.txt        the IR after each pass of the pipeline
    02_after_simplify.txt
    ...
    05_graph.json            the optimized IR as JSON (tg.Graph.from_json reads it)
    06_graph.dot             Graphviz of the optimized IR (dot -Tsvg 06_graph.dot -o g.svg)
    07_stablehlo.mlir        what JAX hands XLA: f.lower(...).as_text()
    08_hlo_optimized.txt     what XLA made of it: f.lower(...).compile().as_text()
    index.txt                the signature, why it was traced, the pass table, the files
    report.html              all of it on one page (`tracegraph.report`): each pass as a
                             diff, module scopes folded, operands and HLO ops linked to
                             the IR nodes they come from

The IR files are written when the signature is traced; the StableHLO and HLO after the
first call with it has compiled (a call of ``f.trace`` alone compiles nothing). Dumping
happens once per signature, never on the cached-call path.
"""

from __future__ import annotations

import os
import re
import threading

from .report import compilation_report
from .transforms.pass_manager import format_records

DUMP_ENV = "TRACEGRAPH_DUMP"

_claimed: dict[str, set[str]] = {}
_lock = threading.Lock()


def dump_dir_from(option) -> str | None:
    """The dump folder for ``tg.jit(dump=option)``: the option, else ``$TRACEGRAPH_DUMP``;
    ``dump=False`` turns dumping off even when the variable is set."""
    if option is False:
        return None
    if option is None or option is True:
        env = os.environ.get(DUMP_ENV, "")
        if env:
            return env
        return "tracegraph_dump" if option is True else None
    return os.fspath(option)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "function"


class Dumper:
    """Writes the dumps of one `tg.jit` function (one folder per signature)."""

    def __init__(self, root: str, function_name: str):
        self.root = root
        base = _safe(function_name)
        with _lock:
            taken = _claimed.setdefault(os.path.abspath(root), set())
            name, k = base, 2
            while name in taken:  # two functions of one name get two folders
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
        self.folder = os.path.join(root, name)
        self._files: dict[str, list] = {}  # signature folder -> [(file, what)]
        self._next: dict[str, int] = {}  # signature folder -> number of the next file
        self._headers: dict[str, str] = {}
        self._results: dict[str, object] = {}  # signature folder -> PassManager result

    def signature_dir(self, index: int) -> str:
        return os.path.join(self.folder, str(index))

    def write_ir(self, index: int, signature: str, reason: str, traced, result) -> str:
        """The IR files of one signature: traced, after each pass, JSON, DOT, index."""
        d = self.signature_dir(index)
        os.makedirs(d, exist_ok=True)
        files: list[tuple[str, str]] = []
        n = 0

        def put(suffix: str, what: str, text: str):
            nonlocal n
            fname = f"{n:02d}_{suffix}"
            n += 1
            with open(os.path.join(d, fname), "w") as f:
                f.write(text if text.endswith("\n") else text + "\n")
            files.append((fname, what))

        put("traced.txt", "the IR as traced", str(traced))
        for (name, g), rec in zip(result.stages[1:], result.records):
            put(f"after_{_safe(name)}.txt", f"the IR after pass {name} ({_short(rec)})", str(g))
        graph = result.graph
        try:
            put("graph.json", "the optimized IR as JSON (tg.Graph.from_json)", graph.to_json(indent=1))
        except Exception as e:  # noqa: BLE001 - a dump must never break compilation
            files.append(("-", f"JSON not written: {type(e).__name__}: {e}"))
        try:
            put("graph.dot", "Graphviz of the optimized IR (dot -Tsvg FILE -o graph.svg)", graph.to_dot())
        except Exception as e:  # noqa: BLE001
            files.append(("-", f"DOT not written: {type(e).__name__}: {e}"))
        self._files[d] = files
        self._next[d] = n
        self._headers[d] = (
            f"tracegraph dump: function {graph.name}, signature {index}\n"
            f"signature: {signature}\n"
            f"traced because: {reason}\n\n"
            f"passes:\n{_indent(format_records(result.records))}\n"
        )
        self._results[d] = result
        self._write_index(d)
        self._write_report(d, graph.name, None, None)
        return d

    def _write_report(self, d: str, name: str, stablehlo, hlo) -> None:
        result = self._results.get(d)
        if result is None:
            return
        try:
            page = compilation_report(f"tracegraph: {name}", self._headers.get(d, ""),
                                      result.stages, result.records, stablehlo, hlo)
            with open(os.path.join(d, "report.html"), "w") as f:
                f.write(page)
            files = [entry for entry in self._files.setdefault(d, []) if entry[0] != "report.html"]
            files.append(("report.html", "all of the above on one page, linked (open in a browser)"))
            self._files[d] = files
        except Exception as e:  # noqa: BLE001 - a dump must never break compilation
            self._files.setdefault(d, []).append(("-", f"report not written: {type(e).__name__}: {e}"))

    def write_compiled(self, index: int, lowered) -> None:
        """StableHLO and XLA-optimized HLO of one signature, from a jax ``Lowered``."""
        d = self.signature_dir(index)
        files = self._files.setdefault(d, [])
        n = self._next.get(d, len(files))
        text = hlo = None
        try:
            text = lowered.as_text()
            name = f"{n:02d}_stablehlo.mlir"
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
            files.append((name, "StableHLO handed to XLA (f.lower(...).as_text())"))
            n += 1
            hlo = lowered.compile().as_text()
            name = f"{n:02d}_hlo_optimized.txt"
            with open(os.path.join(d, name), "w") as f:
                f.write(hlo)
            files.append((name, "HLO after XLA's optimizations (f.lower(...).compile().as_text())"))
            n += 1
        except Exception as e:  # noqa: BLE001 - a dump must never break the call
            files.append(("-", f"HLO not written: {type(e).__name__}: {e}"))
        self._next[d] = n
        result = self._results.get(d)
        if result is not None:
            self._write_report(d, result.graph.name, text, hlo)
        self._write_index(d)

    def _write_index(self, d: str):
        width = max((len(f) for f, _ in self._files[d]), default=0)
        lines = [self._headers.get(d, ""), "files:"]
        lines += [f"  {f.ljust(width)}  {what}" for f, what in self._files[d]]
        with open(os.path.join(d, "index.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def _short(rec) -> str:
    return f"{rec.seconds * 1e3:.2f} ms, {rec.nodes_before} -> {rec.nodes_after} nodes"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
