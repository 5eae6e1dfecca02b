"""``tg.debug``: find where two runs of one program part ways.

`bisect(fn, *args)` runs the graph of ``fn`` twice — a *reference* and a *test* run — and
names the first node whose own result differs beyond a tolerance, with its op, module
scope, user line, both values and the error.

The error of a node is its *local* error: the test run computes the node from the
reference run's values of its inputs, so a node downstream of a difference is not
blamed for what it was given (``y = x * 1e6`` after a wrong ``x`` differs by far more
than ``x`` does, and is not where the runs parted). References:

- ``reference="compiled"`` (default): every intermediate value of the graph compiled
  with ``jax.jit`` (all returned at once, so XLA materializes each), against the op
  implementations run one by one (the interpreter's and ``tg.eager``'s way): where does
  compiled code differ from eager code?
- ``reference="float64"``: the same graph run in float64 (floating inputs, constants
  and dtypes widened, ``jax_enable_x64`` on), against each node run in the program's
  own float dtype on the float64 inputs rounded to it: where is precision lost? Two
  float32 runs that are wrong the same way do not pass here, and a sum whose order
  changed is not blamed (its local error is a few ULPs).
- ``reference="reloaded"``: the graph run op by op (as ``tg.eager`` ran it), against the
  graph written to a `tg.save` file and read back (``via="json"`` or ``via="text"``:
  its JSON or printed form parsed back, with the arrays the text elides), each reloaded
  node run on the reference's values: does what a user saved still compute what ran?
  A node whose op, attributes or types changed in the round trip is reported even
  before its values are compared.

A control-flow node whose local error exceeds the tolerance is probed inside: the branch
that ran, each loop iteration in turn (carried on the reference's values) or the wrapped
function, down to the first body node that diverges (``report.inner``, a `Divergence` of
the body with ``iteration`` set for a loop).

The tolerance is in units in the last place (ULPs) of the test dtype, of the largest
magnitude in the node's reference result (so an error on a near-zero element of a large
result counts as small): ``ulps=64`` by default for the compiled reference, ``ulps=4``
for float64 (a correctly rounded op is within 0.5 ULP; XLA's fast math and fusions are
not), ``ulps=0`` for a reloaded graph (the same ops on the same values: bit for bit).

Example::

    report = tg.debug.bisect(step, params, batch)
    print(report)          # first diverging node: %12 = log at model.py:40 (enc.0) ...
    report.node, report.error_ulps
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from .backends.interpreter import Interpreter
from .backends.jax_backend import as_jax_function
from .core import EVAL, eval_graph, weak_value
from .errors import Error, public
from .frontend.tracing import trace_function
from .ir import registry
from .ir import files
from .ir.graph import Graph
from .ir.parser import text_constants
from .ir.printer import Namer, format_graph
from .ir.types import is_float, is_key
from .transforms.rewrite import graph_attr_keys

__all__ = ["Divergence", "bisect", "bisect_flat"]


@dataclasses.dataclass
class Divergence:
    """What `bisect` found: the first node whose local error exceeds the tolerance (None
    if every node agreed), its error in ULPs, the two results, and the ``worst`` nodes
    (name, op, location, error in ULPs), largest error first."""

    graph: Graph
    reference: str
    ulps: float
    node: object = None
    name: str = ""
    error_ulps: float = 0.0
    expected: np.ndarray | None = None
    got: np.ndarray | None = None
    worst: list = dataclasses.field(default_factory=list)
    inner: "Divergence | None" = None  # inside a control-flow node: where its body diverged
    where: str = ""  # which body (``true_branch``, ``body``, ...)
    iteration: int | None = None  # the loop iteration the body diverged in
    changed: str = ""  # reloaded: what the round trip changed in the node (op, attrs, types)

    @property
    def diverged(self) -> bool:
        return self.node is not None

    @property
    def innermost(self) -> "Divergence":
        """The deepest report: the body node where the runs parted."""
        d = self
        while d.inner is not None:
            d = d.inner
        return d

    def __str__(self):
        lines = [f"tg.debug.bisect of graph {self.graph.name}: {_WHAT[self.reference]}, "
                 f"tolerance {self.ulps:g} ULPs"]
        if self.node is None:
            lines.append("every node agrees within the tolerance")
        else:
            lines += self._node_lines("")
        if self.worst:
            lines.append("largest local errors (ULPs):")
            for name, op, loc, err in self.worst:
                lines.append(f"  {err:10.3g}  {name} = {op} at {loc or '?'}")
        return "\n".join(lines)


    def _node_lines(self, indent: str) -> list:
        n = self.node
        lines = [f"{indent}first diverging node: {self.name} = {n.op} at {n.location or '?'}"
                 + (f" ({n.scope})" if n.scope else "")]
        if self.changed:
            lines.append(f"{indent}  changed by the round trip: {self.changed}")
        elif self.got is not None:
            lines.append(f"{indent}  error: {self.error_ulps:.3g} ULPs of {self.got.dtype}")
            lines.append(f"{indent}  expected: {_preview(self.expected)}")
            lines.append(f"{indent}  got:      {_preview(self.got)}")
        inner = self.inner
        if inner is not None and inner.node is not None:
            at = f", iteration {inner.iteration}" if inner.iteration is not None else ""
            lines.append(f"{indent}  inside its {inner.where}{at}:")
            lines += inner._node_lines(indent + "    ")
        return lines


_WHAT = {"compiled": "compiled (jax.jit) vs op by op", "float64": "float64 vs its own dtype",
         "reloaded": "op by op vs the graph saved and reloaded"}
_DEFAULT_ULPS = {"compiled": 64.0, "float64": 4.0, "reloaded": 0.0}
_MAX_ITERATIONS = 10_000  # loop iterations probed for a diverging body


def _preview(a) -> str:
    flat = np.asarray(a).ravel()
    text = np.array2string(flat[:6], precision=8, separator=", ")
    return text[:-1] + ", ...]" if flat.size > 6 else text


@public("debug.bisect")
def bisect(fn, *args, reference: str = "compiled", ulps: float | None = None,
           top: int = 5, via: str = "file", **kwargs) -> Divergence:
    """The first node of ``fn``'s graph (a function, traced on ``args``, or a `tg.Graph`)
    whose result in the test run differs from the reference run by more than ``ulps``
    (see the module docstring); returns a `Divergence` (``str()`` it for a report).
    ``via``: how ``reference="reloaded"`` reloads the graph (``"file"``, ``"json"``,
    ``"text"``)."""
    graph = fn if isinstance(fn, Graph) else trace_function(fn, args, kwargs)
    return bisect_flat(graph, graph.flatten_args(args, kwargs), reference=reference, ulps=ulps,
                       top=top, via=via)


def bisect_flat(graph: Graph, flat, *, reference: str = "compiled", ulps: float | None = None,
                top: int = 5, via: str = "file") -> Divergence:
    """`bisect` of a graph on its flat inputs (one array per graph input)."""
    if reference not in _WHAT:
        raise Error(f"bisect: reference must be one of {', '.join(map(repr, _WHAT))}, got {reference!r}")
    if via not in ("file", "json", "text"):
        raise Error(f"bisect: via must be 'file', 'json' or 'text', got {via!r}")
    tol = ulps if ulps is not None else _DEFAULT_ULPS[reference]
    test = _reloaded(graph, via) if reference == "reloaded" else graph
    return _bisect(graph, test, list(flat), reference, tol, top)[0]


def _bisect(graph, test, flat, reference, tol, top):
    """The `Divergence` of ``test`` (``graph`` itself, or its reloaded copy) against the
    reference run of ``graph``, and the reference's values of the graph's outputs."""
    probes = [v for n in graph.nodes for v in n.outputs]
    if reference == "compiled":
        ref = _compiled_values(graph, flat)
    elif reference == "float64":
        ref = _float64_values(graph, probes, flat)
    else:
        ref = _op_by_op_values(graph, flat)
    for v, a in zip(graph.inputs, flat):
        ref.setdefault(id(v), a)
    for c in graph.constants:
        ref.setdefault(id(c), EVAL.lift_constant(c))
    # the test graph's values by the reference graph's (the same graph, or its reloaded
    # copy: the round trip keeps inputs, constants and nodes in order)
    same = {}
    for a, b in zip(test.inputs, graph.inputs):
        same[id(a)] = id(b)
    own = {}  # a reloaded graph's constants are its own (a round trip may change them)
    for a, b in zip(test.constants, graph.constants):
        same[id(a)] = id(b)
        if a is not b:
            own[id(a)] = EVAL.lift_constant(a)
    namer = Namer(graph)
    report = Divergence(graph, reference, tol)
    errors = []
    if test is not graph and (len(test.nodes) != len(graph.nodes) or len(test.inputs) != len(graph.inputs)
                              or len(test.constants) != len(graph.constants)):
        report.node = graph.nodes[0] if graph.nodes else None
        report.name = "graph"
        report.changed = (f"{len(graph.inputs)} inputs, {len(graph.constants)} constants, "
                          f"{len(graph.nodes)} nodes became {len(test.inputs)}, "
                          f"{len(test.constants)}, {len(test.nodes)}")
        return report, [ref.get(id(v)) for v in graph.outputs]
    for node, tnode in zip(graph.nodes, test.nodes):
        for a, b in zip(tnode.outputs, node.outputs):
            same[id(a)] = id(b)
        if tnode is not node:
            changed = _round_trip_change(node, tnode, same)
            if changed:
                if report.node is None:
                    report.node, report.name, report.changed = node, _name(namer, node), changed
                continue
        if registry.lookup(node.op).random and reference == "float64":
            continue  # draws at another width are other numbers, not a loss of precision
        ins = [own[id(v)] if id(v) in own else _as_test(ref[same[id(v)]], v.type) for v in tnode.inputs]
        try:  # op by op: a control-flow node runs its bodies node by node too
            if graph_attr_keys(tnode.op):
                outs = Interpreter(test).run_node(tnode, ins)
            else:
                outs = EVAL.process_node(tnode, ins)
        except Error as e:
            raise Error(f"bisect: {_name(namer, node)} = {node.op} at {node.location or '?'} "
                        f"fails on the reference values: {e}") from None
        for v, got in zip(node.outputs, outs):
            if is_key(v.type.dtype) or not is_float(v.type.dtype):
                continue
            want = np.asarray(ref[id(v)], np.float64)
            got = np.asarray(got)
            err = _error_ulps(got, want, v.type.dtype)
            errors.append((err, namer(v), node.op, node.location))
            if err > tol and report.node is None:
                report.node, report.name, report.error_ulps = node, namer(v), err
                report.expected, report.got = want.astype(got.dtype), got
                report.inner = _probe_inside(tnode, [ref[same[id(x)]] for x in tnode.inputs],
                                             reference, tol, top)
    errors.sort(key=lambda e: -e[0])
    report.worst = [(name, op, loc, err) for err, name, op, loc in errors[:top] if err > 0]
    return report, [ref.get(id(v)) for v in graph.outputs]


def _name(namer, node) -> str:
    return namer(node.outputs[0]) if node.outputs else node.op


def _round_trip_change(node, tnode, same) -> str:
    """What a round trip changed in a node ('' if nothing): op, operands, types, attrs."""
    if tnode.op != node.op:
        return f"op {node.op} became {tnode.op}"
    if [same.get(id(v)) for v in tnode.inputs] != [id(v) for v in node.inputs]:
        return "its operands"
    if [v.type for v in tnode.outputs] != [v.type for v in node.outputs]:
        return (f"result types {', '.join(str(v.type) for v in node.outputs)} became "
                f"{', '.join(str(v.type) for v in tnode.outputs)}")
    graphs = set(graph_attr_keys(node.op))
    for k in sorted(set(node.attrs) | set(tnode.attrs)):
        a, b = node.attrs.get(k), tnode.attrs.get(k)
        if k in graphs:
            if (a is None) != (b is None) or (a is not None and format_graph(a) != format_graph(b)):
                return f"attribute {k} (a subgraph)"
        elif not _same_attr(a, b):
            return f"attribute {k}: {a!r} became {b!r}"
    return ""


def _same_attr(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex() or (a != a and b != b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_attr(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _reloaded(graph, via: str) -> Graph:
    """``graph`` through a `tg.save` file, its JSON, or its printed text, read back."""
    if via == "text":  # the constants the text elides (<N elements>) come with it
        return Graph.parse(format_graph(graph), text_constants(graph))
    if via == "json":
        return Graph.from_json(graph.to_json())
    fd, path = tempfile.mkstemp(prefix="tracegraph-bisect-", suffix=".tg")
    os.close(fd)
    try:
        files.save(graph, path)
        return files.load(path)
    finally:
        os.unlink(path)


def _probe_inside(node, ins, reference, tol, top):
    """The `Divergence` inside a control-flow node whose result diverged (None for other
    nodes, or when no body node diverges on its own): ``ins`` are the reference's
    values of the node's operands."""
    attrs = node.attrs
    if node.op == "cond":
        taken = "true_branch" if bool(np.asarray(ins[0])) else "false_branch"
        return _inner(attrs[taken], ins[1:], reference, tol, top, taken, None)[0]
    if node.op == "custom_vjp":
        return _inner(attrs["fn"], ins, reference, tol, top, "function", None)[0]
    if node.op == "while_loop":
        body, test = attrs["body_graph"], attrs["cond_graph"]
        n = len(body.outputs)
        carry, consts = list(ins[:n]), list(ins[n:])
        for i in range(_MAX_ITERATIONS):
            operands = [_as_test(a, v.type) for a, v in zip(carry + consts, test.inputs)]
            holds = _op_by_op_outputs(test, operands)
            if not bool(np.asarray(holds[0])):
                return None
            inner, outs = _inner(body, carry + consts, reference, tol, top, "body", i)
            if inner is not None:
                return inner
            carry = outs
        return None
    if node.op == "scan":
        body, length = attrs["body"], attrs["length"]
        nc, nx = attrs["num_carry"], attrs["num_xs"]
        carry, xs, consts = list(ins[:nc]), ins[nc:nc + nx], list(ins[nc + nx:])
        for step in range(min(length, _MAX_ITERATIONS)):
            i = length - 1 - step if attrs["reverse"] else step
            row = [x[i] if is_key(getattr(x, "dtype", None)) else np.asarray(x)[i] for x in xs]
            inner, outs = _inner(body, carry + row + consts, reference, tol, top, "body", i)
            if inner is not None:
                return inner
            carry = outs[:nc]
        return None
    return None  # shard_map bodies run per shard: not probed


def _inner(body, ins, reference, tol, top, where, iteration):
    ins = [_as_test(a, v.type) if reference != "float64" else a for a, v in zip(ins, body.inputs)]
    report, outs = _bisect(body, body, ins, reference, tol, top)
    if report.node is None:
        return None, outs
    report.where, report.iteration = where, iteration
    return report, outs


def _as_test(a, t):
    """A reference value as the test run's operand of type ``t``: rounded to its dtype,
    weak where it is weak (a Python scalar's value)."""
    if is_key(getattr(a, "dtype", None)) or isinstance(a, (int, float, bool)):
        return a
    arr = jnp.asarray(a)
    if arr.dtype != t.dtype:
        arr = arr.astype(t.dtype)
    return weak_value(arr, t.dtype) if t.weak else arr


def _compiled_values(graph, flat) -> dict:
    """Every node output's value from one compiled run of ``graph`` returning them all
    (the probing function is compiled once per graph)."""
    f = graph._cache.get("bisect_probe")
    if f is None:
        probes = [v for n in graph.nodes for v in n.outputs]
        g = Graph(graph.name, graph.inputs, graph.constants, graph.nodes, probes)
        f = graph._cache["bisect_probe"] = (probes, jax.jit(as_jax_function(g)))
    probes, fn = f
    values = fn(*flat)
    return {id(v): a for v, a in zip(probes, values)}


def _op_by_op_values(graph, flat) -> dict:
    """Every node output's value with the graph's nodes run one by one (the
    interpreter's and ``tg.eager``'s way)."""
    probes = [v for n in graph.nodes for v in n.outputs]
    _, kept = eval_graph(graph, list(flat), trace=EVAL, run_node=Interpreter(graph).run_node, keep=probes)
    return kept


def _op_by_op_outputs(graph, flat) -> list:
    return Interpreter(graph).run(*flat)


def _float64_values(graph, probes, flat) -> dict:
    """Every probe's value with floats widened to float64: the graph's nodes run one by
    one on widened operands, each op's dtype attributes widened too."""
    with jax.enable_x64(True):
        env = {}
        for v, a in zip(graph.inputs, flat):
            env[id(v)] = _widen(a)
        for c in graph.constants:
            env[id(c)] = _widen(EVAL.lift_constant(c))
        for node in graph.nodes:
            ins = [env[id(v)] for v in node.inputs]
            op = registry.lookup(node.op)
            if graph_attr_keys(node.op):
                # control flow: its bodies are typed for the program's dtypes, so the node
                # runs in them as a whole (its inside is not probed)
                outs = EVAL.process_node(node, [_as_test(a, v.type) for a, v in zip(ins, node.inputs)])
                outs = [_widen(o) for o in outs]
            else:
                attrs = {k: (np.dtype(np.float64) if isinstance(a, np.dtype) and is_float(a) else a)
                         for k, a in node.attrs.items()}
                outs = op.impl(*ins, **attrs)
                outs = list(outs) if op.multi_output else [outs]
            for v, o in zip(node.outputs, outs):
                env[id(v)] = o
        return {id(v): np.asarray(env[id(v)]) if not is_key(v.type.dtype) else env[id(v)]
                for v in probes}


def _widen(a):
    if isinstance(a, (bool, int)) or is_key(getattr(a, "dtype", None)):
        return a
    if isinstance(a, float):
        return np.float64(a)
    arr = jnp.asarray(a)
    return arr.astype(jnp.float64) if is_float(arr.dtype) else arr


def _error_ulps(got, want, dtype) -> float:
    """The largest |got - want|, in ULPs of ``dtype`` at the largest magnitude of
    ``want`` (NaN where the other is not NaN, or infinities that differ: infinite)."""
    got = got.astype(np.float64)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    if np.any(nan_g != nan_w):
        return float("inf")
    ok = ~nan_w
    g, w = got[ok], want[ok]
    inf = np.isinf(g) | np.isinf(w)
    if np.any(g[inf] != w[inf]):
        return float("inf")
    g, w = g[~inf], w[~inf]
    if g.size == 0:
        return 0.0
    info = jnp.finfo(dtype)
    scale = float(np.max(np.abs(w)))
    if scale >= float(info.smallest_normal):  # the spacing of dtype's floats at scale
        ulp = 2.0 ** (np.floor(np.log2(scale)) - info.nmant)
    else:
        ulp = float(info.smallest_subnormal)
    return float(np.max(np.abs(g - w))) / ulp
