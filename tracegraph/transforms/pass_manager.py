"""The pass manager: run a pipeline of Graph -> Graph passes, verify between them, and
record what each did.

A pass is any function ``Graph -> Graph`` that leaves its input untouched (the built-in
ones are `simplify`, `fold`, `cse` and `dce`; see docs/passes.md). The manager runs them
in order and records, per pass, its wall time and how many nodes it added and removed
(subgraphs included): the provenance of the optimized graph. In debug mode
(``verify=True``, or the environment variable ``TRACEGRAPH_VERIFY_PASSES=1``) it runs the
verifier after every pass and names the pass that broke the graph; with ``dump_dir`` it
writes the IR after every pass as numbered text files.

Example::

    pm = PassManager(["simplify", "cse", "dce"], verify=True)
    result = pm.run(g)
    print(result.graph)
    print(result.report())     # one line per pass: time, nodes before -> after
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Iterable

from ..errors import Error, IRError
from ..ir.graph import Graph
from .cse import cse
from .dce import dce
from .fold import fold
from .rewrite import node_ids
from .simplify import simplify

PASSES: dict[str, Callable[[Graph], Graph]] = {
    "simplify": simplify,
    "fold": fold,
    "cse": cse,
    "dce": dce,
}

# fold first (it makes the constants simplify looks for), simplify, fold again what
# simplify exposed (a branch inlined on a constant predicate), then merge what is left
# and drop what became dead.
DEFAULT_PIPELINE: tuple[str, ...] = ("fold", "simplify", "fold", "cse", "dce")

VERIFY_ENV = "TRACEGRAPH_VERIFY_PASSES"


def register_pass(name: str, fn: Callable[[Graph], Graph]) -> None:
    """Make a pass available by name (to ``tg.jit(passes=[...])`` and the CLI)."""
    if name in PASSES:
        raise ValueError(f"a pass named {name!r} is already registered")
    PASSES[name] = fn


def resolve(passes) -> list[tuple[str, Callable]]:
    """``passes`` (names and/or functions; None: the default pipeline) as (name, fn)."""
    if passes is None:
        passes = DEFAULT_PIPELINE
    if isinstance(passes, str):
        passes = [p for p in passes.replace(",", " ").split() if p]
    out = []
    for p in passes:
        if isinstance(p, str):
            fn = PASSES.get(p)
            if fn is None:
                raise Error(f"unknown pass {p!r}; known passes: {', '.join(PASSES)}")
            out.append((p, fn))
        elif callable(p):
            out.append((getattr(p, "pass_name", None) or getattr(p, "__name__", "pass"), p))
        else:
            raise Error(f"a pass is a name or a function Graph -> Graph, not {p!r}")
    return out


@dataclasses.dataclass
class PassRecord:
    """What one pass did to a graph."""

    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    added: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def __str__(self):
        return (
            f"{self.name}: {self.seconds * 1e3:.2f} ms, nodes {self.nodes_before} -> "
            f"{self.nodes_after} (+{self.added} -{self.removed})"
        )


@dataclasses.dataclass
class PipelineResult:
    """The optimized graph, one `PassRecord` per pass, and (with ``keep_stages``) the
    graph before the first pass and after each: ``[("traced", g0), (name, g1), ...]``."""

    graph: Graph
    records: list[PassRecord]
    stages: list[tuple[str, Graph]]

    def report(self) -> str:
        return format_records(self.records)


def format_records(records: Iterable[PassRecord]) -> str:
    """A small table of pass records."""
    records = list(records)
    if not records:
        return "no passes ran"
    width = max(len(r.name) for r in records)
    lines = [f"{'pass'.ljust(width)}  {'time':>10}  {'nodes':>13}  {'added':>6}  {'removed':>7}"]
    for r in records:
        lines.append(
            f"{r.name.ljust(width)}  {r.seconds * 1e3:>7.2f} ms  "
            f"{f'{r.nodes_before} -> {r.nodes_after}':>13}  {r.added:>6}  {r.removed:>7}"
        )
    total = sum(r.seconds for r in records)
    lines.append(f"{'total'.ljust(width)}  {total * 1e3:>7.2f} ms")
    return "\n".join(lines)


class PassManager:
    """Runs passes in order. See the module docstring.

    Arguments:
      passes: names (``"simplify"``, ``"fold"``, ``"cse"``, ``"dce"``) and/or functions;
        None: `DEFAULT_PIPELINE`; ``()``: none.
      verify: run ``graph.verify()`` after each pass (None: from ``TRACEGRAPH_VERIFY_PASSES``).
      keep_stages: keep the graph after each pass in the result.
      dump_dir: write ``00_input.txt``, ``01_after_<pass>.txt``, ... there.
    """

    def __init__(self, passes=None, *, verify: bool | None = None, keep_stages: bool = False,
                 dump_dir=None):
        self.passes = resolve(passes)
        if verify is None:
            verify = os.environ.get(VERIFY_ENV, "") not in ("", "0")
        self.verify = verify
        self.keep_stages = keep_stages or dump_dir is not None
        self.dump_dir = dump_dir

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.passes]

    def run(self, graph: Graph) -> PipelineResult:
        records: list[PassRecord] = []
        stages = [("input", graph)] if self.keep_stages else []
        before_ids = node_ids(graph) if self.passes else set()
        before_n = len(before_ids)
        for name, fn in self.passes:
            start = time.perf_counter()
            try:
                new = fn(graph)
            except Error:
                raise
            except Exception as e:
                raise Error(f"pass {name} failed on graph {graph.name}: {type(e).__name__}: {e}") from e
            seconds = time.perf_counter() - start
            if not isinstance(new, Graph):
                raise Error(f"pass {name} returned {type(new).__name__}, not a Graph")
            if self.verify:
                try:
                    new.verify()
                except IRError as e:
                    raise IRError(f"the graph is invalid after pass {name}: {e}") from None
            after_ids = before_ids if new is graph else node_ids(new)
            records.append(
                PassRecord(
                    name, seconds, before_n, len(after_ids),
                    added=len(after_ids - before_ids), removed=len(before_ids - after_ids),
                )
            )
            if self.keep_stages:
                stages.append((name, new))
            graph, before_ids, before_n = new, after_ids, len(after_ids)
        result = PipelineResult(graph, records, stages)
        if self.dump_dir is not None:
            write_stages(self.dump_dir, result)
        return result


def write_stages(directory, result: PipelineResult) -> list[str]:
    """Write the text of each stage as ``NN_<stage>.txt``; returns the file names."""
    os.makedirs(directory, exist_ok=True)
    names = []
    for i, (name, g) in enumerate(result.stages):
        fname = f"{i:02d}_{'input' if i == 0 else 'after_' + name}.txt"
        with open(os.path.join(directory, fname), "w") as f:
            f.write(str(g) + "\n")
        names.append(fname)
    return names


def run_passes(graph: Graph, passes=None, *, verify: bool | None = None) -> Graph:
    """``graph`` through ``passes`` (default: the default pipeline).

    Example::

        g2 = run_passes(g, ["cse", "dce"], verify=True)
    """
    return PassManager(passes, verify=verify).run(graph).graph
