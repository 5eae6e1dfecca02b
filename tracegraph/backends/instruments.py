"""Instruments: what the interpreter can do around each node it runs.

- `NaNError` and `check_finite`: the first NaN/Inf names the node, its op, its statement
  and its user ``file:line``;
- `Hook` / `Watch`: per-node callbacks selected by op, scope or node; a hook that returns
  something replaces the node's outputs; a watch records values;
- `Profile`: per-node wall-clock times (self time: a control-flow node's time excludes
  the nodes it ran), printable as a table with totals by op type and by scope.

The `Interpreter` (``interpreter.py``) applies them; they reach into control-flow bodies
because the interpreter runs those with Python control flow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import Error
from ..ir import printer


class NaNError(Error, FloatingPointError):
    """A NaN or Inf appeared; the message names the node, its op and its user line."""


def describe_node(graph, node) -> str:
    """``node 3 (log) at model.py:12 in scope fc1 of graph f: %3: f32[3] = log(%2)``."""
    index = next((i for i, n in enumerate(graph.nodes) if n is node), "?")
    scope = f" in scope {node.scope}" if node.scope else ""
    return (
        f"node {index} ({node.op}) at {node.location or '?'}{scope} of graph {graph.name}: "
        f"{node_statement(graph, node)}"
    )


def node_statement(graph, node) -> str:
    """The node's line of the text form, without its comment or subgraph block."""
    name = printer.Namer(graph)
    outs = ", ".join(f"{name(v)}: {v.type}" for v in node.outputs)
    args = [name(v) for v in node.inputs]
    for key, val in node.attrs.items():
        if printer._is_graph(val) or (isinstance(val, tuple) and val and printer._is_graph(val[0])):
            args.append(f"{key}=<graph>")
        else:
            args.append(f"{key}={printer.format_attr(val)}")
    return f"{outs} = {node.op}({', '.join(args)})"


def _type_of(a):
    return f"{np.dtype(a.dtype)}{list(a.shape)}"


def _replacement(hook, node, replaced) -> list:
    """A hook's replacement outputs, checked against the node's types."""
    if not isinstance(replaced, (list, tuple)):
        replaced = [replaced]
    if len(replaced) != len(node.outputs):
        raise Error(
            f"hook {hook!r} replaced {len(replaced)} outputs of node {node.op} at "
            f"{node.location or '?'}, which has {len(node.outputs)}"
        )
    out = []
    for r, v in zip(replaced, node.outputs):
        t = v.type
        shape = tuple(np.shape(r))
        dtype = np.dtype(getattr(r, "dtype", None) or np.asarray(r).dtype)
        if shape != t.shape or np.dtype(jax.dtypes.canonicalize_dtype(dtype)) != t.dtype:
            raise Error(
                f"hook {hook!r} replaced an output of node {node.op} at {node.location or '?'} "
                f"with {dtype}{list(shape)}; the node's output is {t}"
            )
        # a weak output stays a Python scalar (as weak constants are), a strong one an array
        out.append(np.asarray(r).item() if t.weak else jnp.asarray(r, t.dtype))
    return out


# -- hooks ---------------------------------------------------------------------------


class Hook:
    """Calls ``fn(node, inputs, outputs)`` on the nodes it selects; what ``fn`` returns,
    if not None, replaces the node's outputs (one array, or a list of them).

    Selectors (all given ones must match): ``op`` — an op name or a collection of them;
    ``scope`` — a module scope, matching it and the scopes nested in it
    (``"encoder"`` matches ``encoder.layer0``); ``node`` — a `Node`, a `Value` (its
    producer) or a collection of those; ``where`` — a predicate on the node.

    Example::

        zero_relu = tg.Hook(lambda node, ins, outs: outs[0] * 0, op="relu", scope="fc1")
        f.interpret(x, hooks=[zero_relu])
    """

    def __init__(self, fn=None, *, op=None, scope=None, node=None, where=None):
        self.fn = fn
        self.ops = None if op is None else ({op} if isinstance(op, str) else set(op))
        self.scope = scope
        if node is None:
            self.node_ids = None
        else:
            items = node if isinstance(node, (list, tuple, set, frozenset)) else [node]
            self.node_ids = {id(getattr(n, "producer", None) or n) for n in items}
        self.where = where

    def matches(self, node) -> bool:
        if self.ops is not None and node.op not in self.ops:
            return False
        if self.scope is not None:
            s = node.scope
            if not (s == self.scope or s.startswith(self.scope + ".")):
                return False
        if self.node_ids is not None and id(node) not in self.node_ids:
            return False
        return self.where is None or bool(self.where(node))

    def __call__(self, node, inputs, outputs):
        if self.matches(node):
            return self.call(node, inputs, outputs)
        return None

    def call(self, node, inputs, outputs):
        return self.fn(node, inputs, outputs)

    def __repr__(self):
        parts = [f"op={sorted(self.ops)}" if self.ops else "", f"scope={self.scope!r}" if self.scope else ""]
        return f"{type(self).__name__}({', '.join(p for p in parts if p)})"


class Watch(Hook):
    """A hook that records (node, outputs as numpy arrays) for each node it selects.

    Example::

        w = tg.Watch(scope="encoder")
        f.interpret(x, hooks=[w])
        for node, outs in w.records: print(node.op, outs[0].shape)
    """

    def __init__(self, *, op=None, scope=None, node=None, where=None):
        super().__init__(None, op=op, scope=scope, node=node, where=where)
        self.records: list[tuple] = []

    def call(self, node, inputs, outputs):
        self.records.append((node, [np.asarray(o) for o in outputs]))
        return None

    @property
    def values(self) -> list:
        """The first output of each recorded node, in execution order."""
        return [outs[0] for _, outs in self.records]

    def clear(self):
        self.records.clear()


# -- profiling -------------------------------------------------------------------------


class _Entry:
    __slots__ = ("graph", "node", "calls", "total", "self_time")

    def __init__(self, graph, node):
        self.graph, self.node = graph, node
        self.calls, self.total, self.self_time = 0, 0.0, 0.0


class Profile:
    """Per-node timing collected by interpreter runs (``Interpreter(profile=...)``).

    Times are wall-clock, measured around each node with the result ready
    (``block_until_ready``), so they include JAX's per-op dispatch: they show where an
    op-by-op run spends its time, not what the fused XLA program costs. ``str(profile)``
    is the table (`table`); `by_op` and `by_scope` are the totals as lists.
    """

    def __init__(self, root=None):
        self.root = root  # the top-level graph (nodes of other graphs print as %n@graph)
        self.entries: dict[int, _Entry] = {}
        self.runs = 0
        self.wall = 0.0
        self._accounted = 0.0

    def _record(self, graph, node, total, self_time):
        e = self.entries.get(id(node))
        if e is None:
            e = self.entries[id(node)] = _Entry(graph, node)
        e.calls += 1
        e.total += total
        e.self_time += self_time
        self._accounted += self_time

    @property
    def total(self) -> float:
        """Seconds spent in nodes, all runs together (each node's self time summed)."""
        return sum(e.self_time for e in self.entries.values())

    def by_node(self) -> list[tuple]:
        """(node, graph, calls, self seconds), slowest first."""
        rows = [(e.node, e.graph, e.calls, e.self_time) for e in self.entries.values()]
        return sorted(rows, key=lambda r: -r[3])

    def by_op(self) -> list[tuple[str, int, int, float]]:
        """(op, nodes, calls, self seconds), slowest first."""
        acc: dict[str, list] = {}
        for e in self.entries.values():
            row = acc.setdefault(e.node.op, [0, 0, 0.0])
            row[0] += 1
            row[1] += e.calls
            row[2] += e.self_time
        return sorted(((op, *r) for op, r in acc.items()), key=lambda r: -r[3])

    def by_scope(self) -> list[tuple[str, int, float]]:
        """(scope, nodes, seconds) where a scope's time includes the scopes nested in it
        (``encoder`` includes ``encoder.layer0``); ``(no scope)`` collects the rest."""
        acc: dict[str, list] = {}
        for e in self.entries.values():
            scope = e.node.scope
            names = ["(no scope)"]
            if scope:
                parts = scope.split(".")
                names = [".".join(parts[: i + 1]) for i in range(len(parts))]
            for name in names:
                row = acc.setdefault(name, [0, 0.0])
                row[0] += 1
                row[1] += e.self_time
        return sorted(((s, *r) for s, r in acc.items()), key=lambda r: (-r[2], r[0]))

    def table(self, top: int = 20) -> str:
        """The profile as text: the slowest nodes, then totals by op and by scope."""
        runs = max(self.runs, 1)
        total = self.total
        ms = lambda s: f"{s / runs * 1e3:10.3f}"  # noqa: E731
        pct = lambda s: f"{(100 * s / total) if total else 0.0:6.1f}"  # noqa: E731
        lines = [
            f"profile: {self.runs} run(s), {len(self.entries)} nodes, "
            f"{total / runs * 1e3:.3f} ms per run in nodes"
            + (f" ({self.wall / runs * 1e3:.3f} ms wall)" if self.wall else ""),
            "",
            f"slowest nodes (top {top}; ms per run, self time):",
            f"  {'value':<8} {'op':<14} {'scope':<24} {'location':<24} {'calls':>6} {'ms':>10} {'%':>6}",
        ]
        namers: dict[int, printer.Namer] = {}
        for node, graph, calls, secs in self.by_node()[:top]:
            namer = namers.get(id(graph))
            if namer is None:
                namer = namers[id(graph)] = printer.Namer(graph)
            value = namer(node.outputs[0]) if node.outputs else "-"
            if self.root is not None and graph is not self.root:
                value = f"{value}@{graph.name}"
            lines.append(
                f"  {value:<8} {node.op:<14} {_cut(node.scope or '-', 24):<24} "
                f"{_cut(node.location or '?', 24):<24} {calls // runs:>6} {ms(secs)} {pct(secs)}"
            )
        lines += ["", "by op:", f"  {'op':<16} {'nodes':>6} {'calls':>6} {'ms':>10} {'%':>6}"]
        for op, nodes, calls, secs in self.by_op():
            lines.append(f"  {op:<16} {nodes:>6} {calls // runs:>6} {ms(secs)} {pct(secs)}")
        lines += ["", "by scope (nested scopes included):", f"  {'scope':<32} {'nodes':>6} {'ms':>10} {'%':>6}"]
        for scope, nodes, secs in self.by_scope():
            lines.append(f"  {_cut(scope, 32):<32} {nodes:>6} {ms(secs)} {pct(secs)}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else "..." + s[-(n - 3):]


def check_finite(graph, node, x, what=None):
    """Raise `NaNError` if ``x`` (an output of ``node``, or ``what`` for an input) has
    a NaN or Inf."""
    a = jnp.asarray(x)
    if not jnp.issubdtype(a.dtype, jnp.inexact) or bool(jnp.all(jnp.isfinite(a))):
        return
    bad = "NaN" if bool(jnp.any(jnp.isnan(a))) else "Inf"
    if node is None:
        raise NaNError(f"{bad} in {what} of graph {graph.name}")
    raise NaNError(f"{bad} produced by {describe_node(graph, node)}: output {_type_of(a)}")
