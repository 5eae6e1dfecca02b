"""The eager interpreter: runs a graph node by node, calling each op's implementation
(the same one the JAX lowering uses) on concrete arrays.

Subclass `Interpreter` and override `run_node` to add behaviour, as with torch.fx::

    class Printing(tg.Interpreter):
        def run_node(self, node, args):
            outs = super().run_node(node, args)
            print(node.op, [o.shape for o in outs])
            return outs

Instruments (all reach into control-flow bodies, which run with Python control flow):

- ``check_nans=True``: the first NaN/Inf raises `NaNError` naming the node, its op, its
  statement and its user ``file:line``.
- ``hooks``: callables ``hook(node, inputs, outputs)``; one that returns something
  replaces the node's outputs (a list, or one array for a one-output node). `Hook`
  selects nodes by op, scope or node; `Watch` records the values of the nodes it selects.
- ``profile``: a `Profile` that collects the time of every node (self time: a
  control-flow node's time excludes the nodes it ran), printable as a table with totals
  by op type and by scope. `profile(graph, *args)` does the warm-up and the runs.

Example::

    w = tg.Watch(op="matmul")
    g.interpret(x, hooks=[w]); w.values          # every matmul output, in order
    print(tg.profile(g, x))                      # per-node and per-op timing
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import Error
from ..ir import printer
from ..ir.graph import register_runner
from ..ops.execute import check_outputs, program_of, run_impl
from .program import coerce_inputs


class NaNError(Error, FloatingPointError):
    """A NaN or Inf appeared; the message names the node, its op and its user line."""


class Interpreter:
    """Runs one graph. Options as in the module docstring; they pass on to the
    interpreters of subgraphs (`subinterpreter`)."""

    def __init__(self, graph, *, hooks=(), check_nans: bool = False, profile: "Profile | None" = None):
        self.graph = graph
        self.program = program_of(graph)
        self.hooks = list(hooks)
        self.check_nans = check_nans
        self.profile = profile
        self._ops = {id(step.node): step.op for step in self.program.steps}

    def run(self, *flat_args) -> list:
        """Run on flat inputs (one per graph input); returns the flat outputs."""
        prog = self.program
        env = prog.initial_env(coerce_inputs(self.graph, flat_args))
        if self.check_nans:
            for v, a in zip(self.graph.inputs, flat_args):
                self._check_finite(None, a, f"input %{v.name}")
        hooks, check, prof = self.hooks, self.check_nans, self.profile
        for step in prog.steps:
            args = [env[i] for i in step.ins]
            if prof is None:
                outs = self.run_node(step.node, args)
            else:
                outs = self._timed(step.node, args)
            for hook in hooks:
                replaced = hook(step.node, args, outs)
                if replaced is not None:
                    outs = _replacement(hook, step.node, replaced)
            if check:
                for o in outs:
                    self._check_finite(step.node, o)
            for s, o in zip(step.outs, outs):
                env[s] = o
        return [env[s] for s in prog.output_slots]

    def run_node(self, node, args) -> list:
        """Execute one node on concrete arrays; returns its outputs as a list.

        Control-flow nodes run with Python control flow over interpretations of their
        subgraphs (so hooks, profiles and NaN checks reach inside loop bodies and branches)."""
        control = _CONTROL.get(node.op)
        if control is not None:
            outs = control(self, node, list(args))
            check_outputs(node, outs)
            return outs
        return run_impl(self._ops[id(node)], node, args)

    def subinterpreter(self, graph) -> "Interpreter":
        """An interpreter of the same kind and options for a subgraph."""
        return type(self)(graph, hooks=self.hooks, check_nans=self.check_nans, profile=self.profile)

    def _timed(self, node, args):
        prof = self.profile
        mark = prof._accounted
        start = time.perf_counter()
        outs = self.run_node(node, args)
        jax.block_until_ready(outs)
        elapsed = time.perf_counter() - start
        nested = prof._accounted - mark  # time of the nodes a control-flow node ran
        prof._record(self.graph, node, elapsed, elapsed - nested)
        return outs

    # -- control flow ---------------------------------------------------------------
    def _run_cond(self, node, args):
        pred, ops = args[0], args[1:]
        branch = node.attrs["true_branch"] if bool(pred) else node.attrs["false_branch"]
        return self.subinterpreter(branch).run(*ops)

    def _run_while(self, node, args):
        cond, body = node.attrs["cond_graph"], node.attrs["body_graph"]
        n = len(body.outputs)
        carry, consts = args[:n], args[n:]
        run_cond, run_body = self.subinterpreter(cond), self.subinterpreter(body)
        while bool(run_cond.run(*carry, *consts)[0]):
            carry = run_body.run(*carry, *consts)
        return list(carry)

    def _run_scan(self, node, args):
        a = node.attrs
        nc, nx, length = a["num_carry"], a["num_xs"], a["length"]
        carry, xs, consts = args[:nc], args[nc : nc + nx], args[nc + nx :]
        body = self.subinterpreter(a["body"])
        steps = range(length - 1, -1, -1) if a["reverse"] else range(length)
        ys = [None] * length
        for i in steps:
            outs = body.run(*carry, *[x[i] for x in xs], *consts)
            carry, ys[i] = outs[:nc], outs[nc:]
        stacked = []
        for j, v in enumerate(node.outputs[nc:]):
            if length:
                stacked.append(jnp.stack([y[j] for y in ys]))
            else:
                stacked.append(jnp.zeros(v.type.shape, v.type.dtype))
        return list(carry) + stacked

    # -- NaN checks -----------------------------------------------------------------
    def _check_finite(self, node, x, what=None):
        a = jnp.asarray(x)
        if not jnp.issubdtype(a.dtype, jnp.inexact) or bool(jnp.all(jnp.isfinite(a))):
            return
        bad = "NaN" if bool(jnp.any(jnp.isnan(a))) else "Inf"
        if node is None:
            raise NaNError(f"{bad} in {what} of graph {self.graph.name}")
        raise NaNError(f"{bad} produced by {describe_node(self.graph, node)}: output {_type_of(a)}")


_CONTROL = {
    "cond": Interpreter._run_cond,
    "while_loop": Interpreter._run_while,
    "scan": Interpreter._run_scan,
}


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


def profile(graph, *args, warmup: int = 1, repeat: int = 1, **kwargs) -> Profile:
    """Run ``graph`` with the interpreter ``warmup`` times untimed (JAX compiles each op
    on first use), then ``repeat`` times timing every node; returns the `Profile`.

    Example::

        print(tg.profile(g, x, repeat=5))
    """
    return profile_leaves(graph, graph.flatten_args(args, kwargs), warmup=warmup, repeat=repeat)


def profile_leaves(graph, flat, *, warmup: int = 1, repeat: int = 1) -> Profile:
    """`profile` on flat inputs (one per graph input)."""
    for _ in range(warmup):
        jax.block_until_ready(Interpreter(graph).run(*flat))
    prof = Profile(graph)
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(Interpreter(graph, profile=prof).run(*flat))
        prof.wall += time.perf_counter() - start
        prof.runs += 1
    return prof


def interpret(graph, *args, hooks=(), check_nans=False, profile=None, **kwargs):
    """Run ``graph`` with the interpreter on a pytree of arguments, like ``graph(...)``."""
    flat = graph.flatten_args(args, kwargs)
    outs = Interpreter(graph, hooks=hooks, check_nans=check_nans, profile=profile).run(*flat)
    if profile is not None:
        profile.runs += 1
        if profile.root is None:
            profile.root = graph
    return graph.unflatten_outputs(outs)


register_runner("interpret", interpret)
