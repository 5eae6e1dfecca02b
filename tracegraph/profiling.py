"""Profiles of compiled programs folded back onto IR nodes: ``f.profile_compiled(*args)``.

`jax.profiler` records the XLA ops a compiled call runs (on CPU, GPU or TPU) with their
device times. Each XLA op names the HLO instruction it ran; the optimized HLO names, in
its ``op_name`` metadata, the IR node each instruction was lowered from (the JAX name
scope `tracegraph.backends.jax_backend` gives every node: module scope, printed result,
op, user line). `profile_compiled` joins the two: each XLA op's time goes to every IR node
inside it — a fusion holds the nodes of all the instructions it fused, so its time is
shown on each of them (``shared`` counts them), and the per-node times add up to more
than the program's time when XLA fuses. `CompiledProfile.by_scope` sums by module scope.

Example::

    f = tg.jit(step)
    print(f.profile_compiled(params, batch, repeat=20))
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tempfile
import threading

import jax

from .errors import Error

__all__ = ["CompiledProfile", "NodeTime", "hlo_node_map", "profile_compiled"]

# one profiler session per process: jax.profiler refuses a second
_LOCK = threading.Lock()

_NODE_LABEL = re.compile(r"^(%\S+) = (\S+)(?: at (.+))?$")
_COMPUTATION = re.compile(r"^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)=\{?([%\w.\-, ]+)\}?")


@dataclasses.dataclass
class NodeTime:
    """One IR node's share of a compiled profile."""

    name: str  # the printed result, "%3"
    op: str
    location: str
    scope: str
    seconds: float = 0.0  # device time of the XLA ops holding the node, per call
    xla_ops: int = 0  # how many XLA ops hold it
    shared: int = 0  # the largest number of IR nodes it shares one XLA op with


@dataclasses.dataclass
class CompiledProfile:
    """``by_node`` (slowest first), ``by_scope``, the program's own time per call
    (``seconds``, the XLA ops' time without double counting), the calls profiled, and
    the XLA ops no IR node is named in (``unattributed``: copies, parameter moves)."""

    nodes: list
    seconds: float
    calls: int
    unattributed: dict
    # (XLA op, seconds per call, the (scope, name) keys of the IR nodes it holds)
    xla_ops: list = dataclasses.field(default_factory=list)

    def by_node(self) -> list:
        return sorted(self.nodes, key=lambda n: -n.seconds)

    def by_scope(self) -> list[tuple[str, int, float]]:
        """(scope, nodes, seconds per call) — a scope includes its nested scopes; an XLA
        op's time counts once per scope even when it holds several of its nodes."""
        acc: dict[str, list] = {}
        for n in self.nodes:
            for s in _scopes_of(n.scope):
                acc.setdefault(s, [0, 0.0])[0] += 1
        for _, seconds, keys in self.xla_ops:
            for s in set().union(*(_scopes_of(scope) for scope, _ in keys)):
                acc[s][1] += seconds
        return sorted(((s, *r) for s, r in acc.items()), key=lambda r: (-r[2], r[0]))

    def __str__(self):
        lines = [f"compiled profile: {self.seconds * 1e3:.3f} ms per call of XLA ops, "
                 f"{self.calls} calls"]
        lines.append(f"{'node':>8} {'op':<14} {'ms/call':>9} {'XLA ops':>8} {'shared':>7}  where")
        for n in self.by_node()[:30]:
            where = (f"{n.location}  {n.scope}" if n.scope else n.location) or "?"
            lines.append(f"{n.name:>8} {n.op:<14} {n.seconds * 1e3:>9.3f} {n.xla_ops:>8} "
                         f"{n.shared:>7}  {where}")
        scopes = self.by_scope()
        if scopes:
            lines.append("by module scope (ms/call):")
            lines += [f"  {s:<30} {t * 1e3:>9.3f}  ({k} nodes)" for s, k, t in scopes[:15]]
        return "\n".join(lines)


def _scopes_of(scope: str) -> list[str]:
    """A module scope and the scopes it is nested in: ``a.b`` -> ``a``, ``a.b``."""
    parts = scope.split(".") if scope else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))] or ["(no scope)"]


def hlo_node_map(hlo_text: str) -> dict[str, set]:
    """For each instruction of optimized HLO text, the IR nodes it computes: the node
    named in its own ``op_name`` and in those of every instruction of the computations
    it calls (a fusion's body). Nodes are ``(scope, "%3", op, location)`` tuples."""
    own: dict[str, set] = {}
    calls: dict[str, list] = {}
    body: dict[str, list] = {}
    current = None
    for line in hlo_text.splitlines():
        m = _INSTRUCTION.match(line)
        if m is None:
            c = _COMPUTATION.match(line)  # a header: `%fused_computation.3 (p: f32[4], /*index=5*/...) -> f32[4] {`
            if c is not None:
                current = c.group(1)
                body.setdefault(current, [])
            continue
        name = m.group(1)
        if current is not None:
            body[current].append(name)
        label = _OP_NAME.search(line)
        own[name] = {n for n in [_node_of(label.group(1))] if n} if label else set()
        calls[name] = [c.strip().lstrip("%") for g in _CALLS.findall(line) for c in g.split(",")
                       if c.strip()]
    memo: dict[str, set] = {}

    def nodes_of(instr, depth=0):
        if instr in memo or depth > 64:
            return memo.get(instr, set())
        out = set(own.get(instr, ()))
        for comp in calls.get(instr, ()):
            for inner in body.get(comp, ()):
                out |= nodes_of(inner, depth + 1)
        memo[instr] = out
        return out

    return {name: nodes_of(name) for name in own}


def _node_of(op_name: str):
    """``(scope, name, op, location)`` of the IR node an ``op_name`` names, or None."""
    parts = op_name.split("/")
    for i, p in enumerate(parts):
        m = _NODE_LABEL.match(p)
        if m is not None:
            scope = ".".join(parts[1:i])  # parts[0] is jax.jit's "jit(f)"
            return scope, m.group(1), m.group(2), m.group(3) or ""
    return None


def profile_compiled(jit_fn, *args, repeat: int = 10, **kwargs) -> CompiledProfile:
    """Profile ``repeat`` compiled calls of ``jit_fn`` (a `tg.jit` function) on ``args``
    with `jax.profiler`, folded onto IR nodes (see the module docstring)."""
    jax.block_until_ready(jit_fn(*args, **kwargs))  # compiled and warm
    compiled = jit_fn.lower(*args, **kwargs).compile()
    hlo = compiled.as_text()
    module = re.search(r"HloModule\s+([\w.\-]+)", hlo)
    module = module.group(1) if module else None
    node_map = hlo_node_map(hlo)
    if not _LOCK.acquire(blocking=False):
        raise Error("profile_compiled: another profile is being taken in this process")
    try:
        with tempfile.TemporaryDirectory(prefix="tracegraph-profile-") as d:
            jax.profiler.start_trace(d)
            try:
                for _ in range(repeat):
                    jax.block_until_ready(jit_fn(*args, **kwargs))
            finally:
                jax.profiler.stop_trace()
            files = glob.glob(os.path.join(d, "**", "*.xplane.pb"), recursive=True)
            if not files:
                raise Error("profile_compiled: jax.profiler wrote no trace")
            data = jax.profiler.ProfileData.from_file(files[0])
            times: dict[str, float] = {}
            for plane in data.planes:
                for line in plane.lines:
                    for event in line.events:
                        stats = dict(event.stats)
                        op = stats.get("hlo_op")
                        if op is None or (module and stats.get("hlo_module") != module):
                            continue
                        times[op] = times.get(op, 0.0) + event.duration_ns * 1e-9
    finally:
        _LOCK.release()
    per_node: dict[tuple, NodeTime] = {}
    unattributed: dict[str, float] = {}
    xla_ops = []
    for op, seconds in times.items():
        nodes = node_map.get(op, set())
        if not nodes:
            unattributed[op] = seconds / repeat
            continue
        xla_ops.append((op, seconds / repeat, frozenset((scope, name) for scope, name, _, _ in nodes)))
        for scope, name, kind, location in nodes:
            row = per_node.get((scope, name))
            if row is None:
                row = per_node[(scope, name)] = NodeTime(name, kind, location, scope)
            row.seconds += seconds / repeat
            row.xla_ops += 1
            row.shared = max(row.shared, len(nodes))
    return CompiledProfile(list(per_node.values()), sum(times.values()) / repeat, repeat,
                           unattributed, xla_ops)
