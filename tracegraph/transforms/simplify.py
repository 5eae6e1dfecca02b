"""Algebraic simplification: rewrite nodes into cheaper equal forms, exactly.

Every rewrite here gives bit-identical results under IEEE-754 semantics — signed zeros,
infinities and NaNs included — and never changes the type (shape, dtype, weak flag) of
any value: a rewrite that would is skipped. The full list, with what is deliberately
*not* rewritten, is in docs/passes.md. In short (``c`` is a constant, a ``full`` node, or
a broadcast/reshape of one, whose elements are all equal):

=====================================  ==================================================
rewrite                                condition
=====================================  ==================================================
``x * 1``, ``1 * x``, ``x / 1`` -> x    any real dtype (``x*1`` is exact, NaN/Inf/-0.0 too)
``x + 0``, ``0 + x`` -> x               integer/bool; for floats only when the zero is
                                        ``-0.0`` (``-0.0 + 0.0`` is ``+0.0``)
``x - 0`` -> x                          integer/bool, or a float ``+0.0``
``x * 0``, ``x - x`` -> zeros           integer/bool only (float ``NaN*0``, ``Inf-Inf``)
``neg(neg(x))``, ``not(not(x))`` -> x   always
``f(f(x))`` -> ``f(x)``                 f in abs, relu, floor, ceil, round
``max(x, x)``, ``min(x, x)`` -> x       always
``transpose(transpose(x, p), q)``       composed into one transpose; identity -> x
``reshape/expand_dims/squeeze`` chain   one ``reshape`` of the first input; same shape -> x
``reshape``, ``squeeze``, ``expand_dims``, ``broadcast_to``, ``slice``, ``pad``,
``astype``, one-operand ``concatenate``  -> x when the output type equals x's type
``astype(astype(x, a), x.dtype)`` -> x  when ``a`` holds every value of x's dtype exactly
``where(c, x, y)``, ``select``          constant all-true/all-false predicate, or x is y
``cond`` on a constant predicate        the taken branch is inlined
``random_unwrap(random_wrap(d))`` -> d  always (a key's data is what it was made of)
``random_wrap(random_unwrap(k))`` -> k  when the wrap names k's implementation
=====================================  ==================================================

Complex dtypes get no arithmetic rewrites (``(a+bi)*1`` computes ``b*0``, NaN for an
infinite ``a``). Subnormals: on backends that flush them to zero, ``x*1`` flushes and
``x`` does not, so a rewrite can *keep* a subnormal the original would have flushed.

One forward sweep; each new node is simplified again at once, so the result is in normal
form and a second run changes nothing (the pass is idempotent). Dead nodes are left for
`dce`. Subgraphs of control-flow nodes are simplified too.

Example::

    g = tg.trace(lambda x: -(-(x.T.T * 1.0)), tg.spec((2, 3)))
    print(dce(simplify(g)))      # return %x
"""

from __future__ import annotations

import numpy as np

from ..errors import Error
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.types import is_bool, is_complex, is_float, is_inexact, is_int
from .rewrite import Rewrite, SubgraphMap, constant_array, splat_of_array

# Constants larger than this are not inspected for splat values.
MAX_INSPECT = 4096


def simplify(graph: Graph) -> Graph:
    """The graph with the algebraic rewrites of the module docstring applied."""
    subs = SubgraphMap(lambda g: _Simplifier(g, subs).run())
    return _Simplifier(graph, subs).run()


class _Simplifier:
    def __init__(self, graph: Graph, subs: SubgraphMap):
        self.rw = Rewrite(graph)
        self.subs = subs
        self._splats: dict[int, tuple] = {}  # id(value) -> (value, splat): linear time

    def splat(self, v: Value):
        """`splat`, memoized: each value's chain of shape ops is walked once."""
        chain = []
        while id(v) not in self._splats and v.producer is not None and v.producer.op in _SHAPE_ONLY:
            chain.append(v)
            v = v.producer.inputs[0]
        hit = self._splats.get(id(v))
        if hit is None:
            hit = self._splats[id(v)] = (v, splat(v))
        for u in chain:
            self._splats[id(u)] = (u, hit[1])
        return hit[1]

    def run(self) -> Graph:
        rw = self.rw
        for node in rw.graph.nodes:
            self.visit(node, rw.inputs(node), self.subs.attrs(node))
        return rw.finish()

    def visit(self, node: Node, ins: list[Value], attrs: dict, copy: bool = False):
        """Emit ``node`` (inputs already mapped), simplified; returns its new outputs."""
        rw = self.rw
        rule = RULES.get(node.op)
        plan = rule(self, node, ins, attrs) if rule is not None else None
        if plan is not None:
            result = self.apply(node, plan)
            if result is not None:
                rw.replace(node, result)
                rw.drop(node)
                return result
        return rw.keep(node, ins, attrs, copy=copy)

    def apply(self, node, plan):
        """Carry out a rule's plan if it keeps every output type; else None."""
        kind = plan[0]
        want = [o.type for o in node.outputs]
        if kind == "values":
            values = plan[1]
            return values if [v.type for v in values] == want else None
        if kind == "node":
            _, op_name, ins, attrs = plan
            op = registry.lookup(op_name)
            try:
                attrs = op.check_attrs(attrs)
                types = op.infer([v.type for v in ins], attrs)
            except Error:  # a rule whose node does not type-check is not applied
                return None
            if list(types) != want:
                return None
            new = Node(op_name, ins, attrs, [Value(t) for t in types], node.location, node.scope)
            return list(self.visit(new, list(ins), new.attrs))
        if kind == "inline":
            _, graph, operands = plan
            if [v.type for v in graph.outputs] != want:
                return None
            return self.inline(graph, operands)
        raise AssertionError(f"unknown plan {kind!r}")

    def inline(self, graph: Graph, operands: list[Value]) -> list[Value]:
        """Copy a (closed) subgraph's nodes here, simplifying them in this context."""
        rw = self.rw
        for v, x in zip(graph.inputs, operands):
            rw.env[id(v)] = x
        for c in graph.constants:
            rw.env[id(c)] = rw.add_constant(c.data, weak=c.type.weak)
        for node in graph.nodes:
            self.visit(node, rw.inputs(node), node.attrs, copy=True)
        return [rw.value(v) for v in graph.outputs]


# -- looking at values -----------------------------------------------------------------

_SHAPE_ONLY = ("broadcast_to", "reshape", "expand_dims", "squeeze")


def splat(v: Value):
    """The one value every element of ``v`` has (a numpy scalar of v's dtype), if ``v`` is
    a constant with all elements equal (sign of zero included), a ``full`` node, or a
    shape op applied to one of those; else None."""
    while v.producer is not None and v.producer.op in _SHAPE_ONLY:
        v = v.producer.inputs[0]
    node = v.producer
    if node is not None:
        if node.op == "full":
            return np.asarray(node.attrs["value"]).astype(v.type.dtype)[()]
        return None
    arr = constant_array(v, MAX_INSPECT)
    return None if arr is None else splat_of_array(arr)


def _real(dtype) -> bool:
    return not is_complex(dtype)


def _is_one(s) -> bool:
    return s is not None and _real(s.dtype) and bool(s == 1)


def _is_zero(s) -> bool:
    return s is not None and _real(s.dtype) and bool(s == 0)


def _add_identity(s, out_dtype) -> bool:
    """``x + s == x`` for every x of ``out_dtype``: 0 for integers, -0.0 for floats."""
    if not _is_zero(s):
        return False
    if is_inexact(out_dtype):
        return is_float(s.dtype) and bool(np.signbit(s))
    return True


def _sub_identity(s, out_dtype) -> bool:
    """``x - s == x`` for every x: 0 for integers, +0.0 for floats (an integer 0
    converts to +0.0)."""
    if not _is_zero(s):
        return False
    if is_inexact(out_dtype):
        return not (is_float(s.dtype) and bool(np.signbit(s)))
    return True


def _exact_dtype(dtype) -> bool:
    return is_int(dtype) or is_bool(dtype)


def _zeros(node):
    t = node.outputs[0].type
    return ("node", "full", [], {"shape": t.shape, "value": 0, "dtype": t.dtype, "weak": t.weak})


# -- rules -------------------------------------------------------------------------------
# A rule (simplifier, node, inputs, attrs) -> plan or None. Plans: ("values", [v...]) to reuse existing
# values; ("node", op, inputs, attrs) for one new node (itself simplified in turn);
# ("inline", graph, operands) to inline a subgraph. `apply` refuses any plan that would
# change an output type.


def _mul(s, node, ins, attrs):
    x, y = ins
    dt = node.outputs[0].type.dtype
    if is_complex(dt):
        return None
    sx, sy = s.splat(x), s.splat(y)
    if _is_one(sy):
        return ("values", [x])
    if _is_one(sx):
        return ("values", [y])
    if _exact_dtype(dt) and (_is_zero(sx) or _is_zero(sy)):
        return _zeros(node)
    return None


def _add(s, node, ins, attrs):
    x, y = ins
    dt = node.outputs[0].type.dtype
    if is_complex(dt):
        return None
    if _add_identity(s.splat(y), dt):
        return ("values", [x])
    if _add_identity(s.splat(x), dt):
        return ("values", [y])
    return None


def _sub(s, node, ins, attrs):
    x, y = ins
    dt = node.outputs[0].type.dtype
    if is_complex(dt):
        return None
    if _sub_identity(s.splat(y), dt):
        return ("values", [x])
    if x is y and _exact_dtype(dt):
        return _zeros(node)
    return None


def _div(s, node, ins, attrs):
    x, y = ins
    if is_complex(node.outputs[0].type.dtype):
        return None
    return ("values", [x]) if _is_one(s.splat(y)) else None


def _involution(s, node, ins, attrs):
    (x,) = ins
    p = x.producer
    if p is not None and p.op == node.op:
        return ("values", [p.inputs[0]])
    return None


def _key_round_trip(s, node, ins, attrs):
    """``random_unwrap(random_wrap(d))`` and ``random_wrap(random_unwrap(k))``: the first
    operand back, when its type is the output's (the same key implementation)."""
    (x,) = ins
    p = x.producer
    inverse = {"random_wrap": "random_unwrap", "random_unwrap": "random_wrap"}[node.op]
    if p is not None and p.op == inverse and p.inputs[0].type == node.outputs[0].type:
        return ("values", [p.inputs[0]])
    return None


def _idempotent(s, node, ins, attrs):
    (x,) = ins
    p = x.producer
    if p is not None and p.op == node.op:
        return ("values", [x])
    return None


def _same_operands(s, node, ins, attrs):
    x, y = ins
    return ("values", [x]) if x is y else None


def _identity_if_same_type(s, node, ins, attrs):
    return ("values", [ins[0]]) if len(ins) == 1 else None


def _transpose(s, node, ins, attrs):
    (x,) = ins
    perm = tuple(attrs["perm"])
    if perm == tuple(range(len(perm))):
        return ("values", [x])
    p = x.producer
    if p is not None and p.op == "transpose":
        inner = p.attrs["perm"]
        return ("node", "transpose", [p.inputs[0]], {"perm": tuple(inner[i] for i in perm)})
    return None


def _reshape_like(s, node, ins, attrs):
    (x,) = ins
    out = node.outputs[0].type
    if out == x.type:
        return ("values", [x])
    p = x.producer
    if p is not None and p.op in ("reshape", "expand_dims", "squeeze"):
        return ("node", "reshape", [p.inputs[0]], {"shape": out.shape})
    return None


def _astype(s, node, ins, attrs):
    (x,) = ins
    out = node.outputs[0].type
    if out == x.type:
        return ("values", [x])
    p = x.producer
    if p is not None and p.op == "astype":
        src = p.inputs[0]
        if src.type == out and _holds_exactly(x.type.dtype, src.type.dtype):
            return ("values", [src])
    return None


_MANTISSA = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def _holds_exactly(mid, src) -> bool:
    """Every value of dtype ``src`` converts to ``mid`` and back unchanged."""
    mid, src = np.dtype(mid), np.dtype(src)
    if mid == src or is_bool(src):
        return True
    if is_float(src):
        if not is_float(mid):
            return False
        if src.name == "bfloat16":
            return mid.name in ("float32", "float64")
        if src.name == "float16":
            return mid.name in ("float32", "float64")
        return src.name == "float32" and mid.name == "float64"
    if is_int(src):
        if is_int(mid):
            return bool(np.can_cast(src, mid, "safe"))
        if is_float(mid):
            bits = src.itemsize * 8 - (1 if src.kind == "i" else 0)
            return bits <= _MANTISSA.get(mid.name, 0)
    return False


def _select_like(s, node, ins, attrs):
    c, x, y = ins
    if x is y:
        return ("values", [x])
    p = s.splat(c)
    if p is None:
        return None
    return ("values", [x if bool(p) else y])  # a nonzero predicate selects x


def _cond(s, node, ins, attrs):
    p = s.splat(ins[0])
    if p is None:
        return None
    branch = attrs["true_branch"] if bool(p) else attrs["false_branch"]
    return ("inline", branch, list(ins[1:]))


RULES = {
    "mul": _mul,
    "add": _add,
    "sub": _sub,
    "div": _div,
    "neg": _involution,
    "logical_not": _involution,
    "bitwise_not": _involution,
    "abs": _idempotent,
    "relu": _idempotent,
    "floor": _idempotent,
    "ceil": _idempotent,
    "round": _idempotent,
    "maximum": _same_operands,
    "minimum": _same_operands,
    "transpose": _transpose,
    "reshape": _reshape_like,
    "expand_dims": _reshape_like,
    "squeeze": _reshape_like,
    "broadcast_to": _identity_if_same_type,
    "slice": _identity_if_same_type,
    "pad": _identity_if_same_type,
    "concatenate": _identity_if_same_type,
    "astype": _astype,
    "where": _select_like,
    "select": _select_like,
    "cond": _cond,
    "random_wrap": _key_round_trip,
    "random_unwrap": _key_round_trip,
}
