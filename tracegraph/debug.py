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

The tolerance is in units in the last place (ULPs) of the test dtype, of the largest
magnitude in the node's reference result (so an error on a near-zero element of a large
result counts as small): ``ulps=64`` by default for the compiled reference, ``ulps=4``
for float64 (a correctly rounded op is within 0.5 ULP; XLA's fast math and fusions are
not).

Example::

    report = tg.debug.bisect(step, params, batch)
    print(report)          # first diverging node: %12 = log at model.py:40 (enc.0) ...
    report.node, report.error_ulps
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .backends.jax_backend import as_jax_function
from .core import EVAL, weak_value
from .errors import Error, public
from .frontend.tracing import trace_function
from .ir import registry
from .ir.graph import Graph
from .ir.printer import Namer
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

    @property
    def diverged(self) -> bool:
        return self.node is not None

    def __str__(self):
        what = {"compiled": "compiled (jax.jit) vs op by op", "float64": "float64 vs its own dtype"}
        lines = [f"tg.debug.bisect of graph {self.graph.name}: {what[self.reference]}, "
                 f"tolerance {self.ulps:g} ULPs"]
        if self.node is None:
            lines.append("every node agrees within the tolerance")
        else:
            n = self.node
            lines.append(f"first diverging node: {self.name} = {n.op} at {n.location or '?'}"
                         + (f" ({n.scope})" if n.scope else ""))
            lines.append(f"  error: {self.error_ulps:.3g} ULPs of {self.got.dtype}")
            lines.append(f"  expected: {_preview(self.expected)}")
            lines.append(f"  got:      {_preview(self.got)}")
        if self.worst:
            lines.append("largest local errors (ULPs):")
            for name, op, loc, err in self.worst:
                lines.append(f"  {err:10.3g}  {name} = {op} at {loc or '?'}")
        return "\n".join(lines)


def _preview(a) -> str:
    flat = np.asarray(a).ravel()
    text = np.array2string(flat[:6], precision=8, separator=", ")
    return text[:-1] + ", ...]" if flat.size > 6 else text


@public("debug.bisect")
def bisect(fn, *args, reference: str = "compiled", ulps: float | None = None,
           top: int = 5, **kwargs) -> Divergence:
    """The first node of ``fn``'s graph (a function, traced on ``args``, or a `tg.Graph`)
    whose result in the test run differs from the reference run by more than ``ulps``
    (see the module docstring); returns a `Divergence` (``str()`` it for a report)."""
    graph = fn if isinstance(fn, Graph) else trace_function(fn, args, kwargs)
    return bisect_flat(graph, graph.flatten_args(args, kwargs), reference=reference, ulps=ulps,
                       top=top)


def bisect_flat(graph: Graph, flat, *, reference: str = "compiled", ulps: float | None = None,
                top: int = 5) -> Divergence:
    """`bisect` of a graph on its flat inputs (one array per graph input)."""
    if reference not in ("compiled", "float64"):
        raise Error(f"bisect: reference must be 'compiled' or 'float64', got {reference!r}")
    flat = list(flat)
    tol = ulps if ulps is not None else (64.0 if reference == "compiled" else 4.0)
    probes = [v for n in graph.nodes for v in n.outputs]
    if reference == "compiled":
        ref = _compiled_values(graph, probes, flat)
        test_dtype = {id(v): v.type.dtype for v in probes}
    else:
        ref = _float64_values(graph, probes, flat)
        test_dtype = {id(v): v.type.dtype for v in probes}
    for v, a in zip(graph.inputs, flat):
        ref.setdefault(id(v), a)
    for c in graph.constants:
        ref.setdefault(id(c), EVAL.lift_constant(c))
    namer = Namer(graph)
    report = Divergence(graph, reference, tol)
    errors = []
    for node in graph.nodes:
        if registry.lookup(node.op).random and reference == "float64":
            continue  # draws at another width are other numbers, not a loss of precision
        ins = [_as_test(ref[id(v)], v.type) for v in node.inputs]
        try:
            outs = EVAL.process_node(node, ins)
        except Error as e:
            raise Error(f"bisect: {namer(node.outputs[0]) if node.outputs else node.op} = "
                        f"{node.op} at {node.location or '?'} fails on the reference "
                        f"values: {e}") from None
        for v, got in zip(node.outputs, outs):
            if is_key(v.type.dtype) or not is_float(v.type.dtype):
                continue
            want = np.asarray(ref[id(v)], np.float64)
            got = np.asarray(got)
            err = _error_ulps(got, want, test_dtype[id(v)])
            errors.append((err, namer(v), node.op, node.location))
            if err > tol and report.node is None:
                report.node, report.name, report.error_ulps = node, namer(v), err
                report.expected, report.got = want.astype(got.dtype), got
    errors.sort(key=lambda e: -e[0])
    report.worst = [(name, op, loc, err) for err, name, op, loc in errors[:top] if err > 0]
    return report


def _as_test(a, t):
    """A reference value as the test run's operand of type ``t``: rounded to its dtype,
    weak where it is weak (a Python scalar's value)."""
    if is_key(getattr(a, "dtype", None)) or isinstance(a, (int, float, bool)):
        return a
    arr = jnp.asarray(a)
    if arr.dtype != t.dtype:
        arr = arr.astype(t.dtype)
    return weak_value(arr, t.dtype) if t.weak else arr


def _compiled_values(graph, probes, flat) -> dict:
    """Every probe's value from one compiled run of ``graph`` returning them all."""
    g = Graph(graph.name, graph.inputs, graph.constants, graph.nodes, probes)
    values = jax.jit(as_jax_function(g))(*flat)
    return {id(v): a for v, a in zip(probes, values)}


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
