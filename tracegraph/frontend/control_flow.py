"""Structured control flow for user code: `cond`, `while_loop`, `fori_loop`, `scan`,
with JAX's signatures and pytree operands and carries.

Where the current trace knows the values (`Trace.known_value`: define-by-run, and plain
arrays with no trace active) the chosen branch or the loop simply runs, op by op, and
a define-by-run tape records what ran. Otherwise (tg.jit, tg.trace) each function is
traced into a subgraph held by one node; tensors a body uses from outside become
explicit operands of that node.

Example::

    def f(x, n):
        return tg.fori_loop(0, n, lambda i, acc: acc * x + i, tg.zeros_like(x))
"""

from __future__ import annotations

import jax
import numpy as np

from ..errors import Error, ShapeError, TracingError, user_location_long
from ..ir.graph import Graph, Value
from ..ir.tree import default_out_tree
from ..core import GraphTrace, Tensor, bind, current_trace, type_of, using


def _is_tensor(x):
    return isinstance(x, Tensor)


def _flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_tensor)


class _Body:
    """``fn`` traced into a child graph trace of ``parent`` on inputs of ``in_types``."""

    def __init__(self, fn, in_types, parent, name: str):
        t = GraphTrace(name, parent=parent)
        ins = [t.new_input(ty, name=f"in{i}") for i, ty in enumerate(in_types)]
        with using(t):
            leaves, self.out_treedef = _flatten(fn(*ins))
            for i, x in enumerate(leaves):
                if not (isinstance(x, (Tensor, bool, int, float, complex)) or hasattr(x, "dtype")):
                    raise TracingError(
                        f"{name} returned a {type(x).__name__} (output {i}); control-flow "
                        f"bodies return arrays"
                    )
            self.outs = [t.lift(x) for x in leaves]
        self.trace = t
        self.builder = t.builder
        self.num_explicit = len(in_types)

    @property
    def out_types(self):
        return [t.type for t in self.outs]

    def cast_outputs(self, types):
        """Outputs that differ from ``types`` only in weak typing take ``types`` (a
        Python scalar in one branch joins the other's dtype, as in JAX)."""
        with using(self.trace):
            for i, (t, want) in enumerate(zip(self.outs, types)):
                if t.type != want and t.shape == want.shape and (t.type.weak or want.weak):
                    self.outs[i] = bind("astype", t, dtype=want.dtype)


def _close(bodies):
    """Turn sibling bodies into closed graphs with one shared input list: explicit
    inputs, then every tensor any of them captured (an input a body does not use is
    simply unused). Returns (graphs, captured outer tensors)."""
    consts: list[Tensor] = []
    index: dict[int, int] = {}
    for body in bodies:
        for inner, outer in body.builder.captures.values():
            if id(outer._value) not in index:
                index[id(outer._value)] = len(consts)
                consts.append(outer)
    graphs = []
    for body in bodies:
        b = body.builder
        slots: list = [None] * len(consts)
        for inner, outer in b.captures.values():
            slots[index[id(outer._value)]] = inner
        slots = [v or Value(consts[i].type, name=f"unused{i}") for i, v in enumerate(slots)]
        inputs = b.inputs[: body.num_explicit] + slots
        outs = [t._value for t in body.outs]
        graphs.append(Graph(b.name, inputs, b.constants, b.nodes, outs, None, default_out_tree(len(outs))))
    return graphs, consts


def _types_str(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def _carry_mismatch(what, treedef, init_types, out_types, depth=3):
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(
        jax.tree_util.tree_unflatten(treedef, list(range(len(init_types)))))[0]]
    lines = [
        f"  carry{p or ''}: {a} -> {b}" for p, a, b in zip(paths, init_types, out_types) if a != b
    ]
    return ShapeError(
        f"{what} must keep the carry's types (at {user_location_long(depth)}):\n" + "\n".join(lines)
    )


def _leaf_types(b, leaves, what):
    """The types of result leaves computed with known values (define-by-run); a leaf
    that is not an array is the same mistake tg.jit reports."""
    types = []
    for i, x in enumerate(leaves):
        try:
            types.append(type_of(b.lift(x)))
        except (TypeError, Error):
            raise TracingError(
                f"{what} returned a {type(x).__name__} (output {i}); control-flow bodies "
                f"return arrays"
            ) from None
    return types


def _loose(t):
    """A type as control flow compares it: a sharding is a placement (JAX's Auto axes),
    not part of the type a branch or a loop carry must keep."""
    return t.with_(sharding=None)


def _carry_ok(a, o) -> bool:
    """Whether a body output of type ``o`` may carry a value of type ``a``: as tg.jit
    decides (a weak carry takes a strong output of the same shape)."""
    a, o = _loose(a), _loose(o)
    return a == o or (a.weak and a.shape == o.shape and (a.dtype == o.dtype or not o.weak))


def _check_carry(b, what, treedef, init_types, out):
    """Define-by-run: a loop body's result must keep the carry's structure and types,
    as tg.jit requires (the modes agree on what they accept)."""
    leaves, out_treedef = _flatten(out)
    if out_treedef != treedef:
        raise TracingError(
            f"{what} returns {out_treedef}, the carry is {treedef} (at {user_location_long(3)})"
        )
    out_types = _leaf_types(b, leaves, what)
    if not all(_carry_ok(a, o) for a, o in zip(init_types, out_types)):
        raise _carry_mismatch(what, treedef, init_types, out_types)


def _bool_pred(trace, pred):
    p = trace.lift(pred)
    if p.shape != ():
        raise ShapeError(f"cond predicate must be a scalar, got {p.type} (at {user_location_long(3)})")
    return p if p.dtype.kind == "b" else bind("ne", p, 0)


# -- cond -------------------------------------------------------------------------------


def cond(pred, true_fn, false_fn, *operands):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)`` (``lax.cond``).

    Both branches must return the same pytree structure and types.
    """
    b = current_trace()
    p = b.lift(pred)
    if tuple(np.shape(p)) != ():
        raise ShapeError(f"cond predicate must be a scalar, got {b.lift(p).type if isinstance(p, Tensor) else np.shape(p)} (at {user_location_long(2)})")
    value = b.known_value(p)
    if value is not None:
        return _cond_known(b, bool(value), true_fn, false_fn, operands)
    p = _bool_pred(b, p)
    leaves, treedef = _flatten(tuple(operands))
    ins = [b.lift(x) for x in leaves]
    types = [t.type for t in ins]

    def call(fn):
        return lambda *xs: fn(*jax.tree_util.tree_unflatten(treedef, xs))

    t = _Body(call(true_fn), types, b, "true_branch")
    f = _Body(call(false_fn), types, b, "false_branch")
    if t.out_treedef != f.out_treedef:
        raise TracingError(
            f"cond branches return different structures: {t.out_treedef} vs "
            f"{f.out_treedef} (at {user_location_long(2)})"
        )
    strong = [x.with_(weak=False) if x != y else x for x, y in zip(t.out_types, f.out_types)]
    t.cast_outputs(strong)
    f.cast_outputs(strong)
    if [_loose(x) for x in t.out_types] != [_loose(y) for y in f.out_types]:
        raise ShapeError(
            f"cond branches return different types: true_fn {_types_str(t.out_types)}, "
            f"false_fn {_types_str(f.out_types)} (at {user_location_long(2)})"
        )
    (gt, gf), consts = _close([t, f])
    outs = bind("cond", p, *ins, *consts, true_branch=gt, false_branch=gf)
    return jax.tree_util.tree_unflatten(t.out_treedef, list(outs))


def _cond_known(b, value, true_fn, false_fn, operands):
    """Define-by-run cond: run the chosen branch; trace the other one (recording
    nothing) to reject what tg.jit rejects: branches of different structures or types."""
    taken, other = (true_fn, false_fn) if value else (false_fn, true_fn)
    names = ("true_fn", "false_fn") if value else ("false_fn", "true_fn")
    result = taken(*operands)
    leaves, treedef = _flatten(result)
    types = _leaf_types(b, leaves, f"cond {names[0]}")
    op_leaves, op_treedef = _flatten(tuple(operands))
    op_types = _leaf_types(b, op_leaves, "cond operands")
    o = _Body(
        lambda *xs: other(*jax.tree_util.tree_unflatten(op_treedef, xs)), op_types, b,
        "false_branch" if value else "true_branch",
    )
    if o.out_treedef != treedef:
        raise TracingError(
            f"cond branches return different structures: {names[0]} {treedef} vs "
            f"{names[1]} {o.out_treedef} (at {user_location_long(3)})"
        )
    joined = []
    for i, (x, y) in enumerate(zip(types, o.out_types)):
        if _loose(x) != _loose(y) and not (x.shape == y.shape and (x.weak or y.weak)):
            mine, theirs = (types, o.out_types) if value else (o.out_types, types)
            raise ShapeError(
                f"cond branches return different types: true_fn {_types_str(mine)}, "
                f"false_fn {_types_str(theirs)} (at {user_location_long(3)})"
            )
        # a weak output joins the other branch's strong dtype, as in tg.jit
        joined.append(bind("astype", leaves[i], dtype=y.dtype) if _loose(x) != _loose(y) and x.weak and not y.weak else leaves[i])
    return jax.tree_util.tree_unflatten(treedef, joined) if joined else result


# -- while_loop -------------------------------------------------------------------------


def _trace_loop(b, make_bodies, init_leaves, what):
    """Trace loop bodies on the carry's types; if the body changes only weak types,
    make those carries strong and trace again (as JAX does)."""
    carry = [b.lift(x) for x in init_leaves]
    for _ in range(2):
        types = [t.type for t in carry]
        bodies = make_bodies(types)
        body_out = [_loose(t) for t in bodies[-1].out_types[: len(types)]]
        if body_out == [_loose(t) for t in types]:
            return carry, bodies
        types = [_loose(t) for t in types]
        fixable = [
            i for i, (a, o) in enumerate(zip(types, body_out))
            if a != o and a.shape == o.shape and a.weak and a.with_(weak=False) == o.with_(weak=False)
        ]
        fixable += [
            i for i, (a, o) in enumerate(zip(types, body_out))
            if a != o and a.shape == o.shape and a.weak and not o.weak and i not in fixable
        ]
        if not fixable:
            break
        for i in fixable:
            carry[i] = bind("astype", carry[i], dtype=body_out[i].dtype)
    return carry, None


def while_loop(cond_fun, body_fun, init_val):
    """Repeat ``val = body_fun(val)`` while ``cond_fun(val)`` (``lax.while_loop``).

    Not reverse-differentiable when traced (the trip count is dynamic); use `scan` or
    `fori_loop` with Python int bounds for gradients.
    """
    b = current_trace()
    return _while_loop(b, cond_fun, body_fun, init_val, "while_loop body")


def _while_loop(b, cond_fun, body_fun, init_val, what):
    if _values_known(b, init_val):
        leaves, treedef = _flatten(init_val)
        init_types = _leaf_types(b, leaves, what)
        val = init_val
        while True:
            c = b.lift(cond_fun(val))
            if tuple(np.shape(c)) != () or type_of(c).dtype.kind != "b":
                raise ShapeError(
                    f"while_loop cond_fun must return a bool scalar, got {type_of(c)} "
                    f"(at {user_location_long(2)})"
                )
            if not bool(b.known_value(c)):
                return val
            val = body_fun(val)
            _check_carry(b, what, treedef, init_types, val)
    leaves, treedef = _flatten(init_val)

    def call(fn):
        return lambda *xs: fn(jax.tree_util.tree_unflatten(treedef, xs))

    def bodies(types):
        c = _Body(call(cond_fun), types, b, "cond")
        body = _Body(call(body_fun), types, b, "body")
        if body.out_treedef != treedef:
            raise TracingError(
                f"while_loop body returns {body.out_treedef}, the carry is {treedef} "
                f"(at {user_location_long(4)})"
            )
        return [c, body]

    carry, bs = _trace_loop(b, bodies, leaves, what)
    if bs is None:
        types = [b.lift(x).type for x in leaves]
        raise _carry_mismatch(what, treedef, types, bodies(types)[1].out_types)
    c, body = bs
    if len(c.outs) != 1 or c.outs[0].shape != () or c.outs[0].dtype.kind != "b":
        raise ShapeError(
            f"while_loop cond_fun must return a bool scalar, got {_types_str(c.out_types)} "
            f"(at {user_location_long(2)})"
        )
    (gc, gb), consts = _close([c, body])
    outs = bind("while_loop", *carry, *consts, cond_graph=gc, body_graph=gb)
    return jax.tree_util.tree_unflatten(treedef, list(outs))


# -- scan ---------------------------------------------------------------------------------


def scan(f, init, xs=None, length=None, reverse: bool = False):
    """``lax.scan``: ``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns
    the final carry and the stacked ``y``s. ``xs`` may be None with ``length`` given."""
    return _scan(f, init, xs, length, reverse, "scan body")


def _scan(f, init, xs, length, reverse, what):
    b = current_trace()
    x_leaves, x_treedef = _flatten(xs)
    x_ts = [b.lift(x) for x in x_leaves]
    lengths = {tuple(np.shape(t))[0] for t in x_ts if np.shape(t)}
    if any(not np.shape(t) for t in x_ts):
        raise ShapeError(f"scan xs leaves need a leading axis (at {user_location_long(2)})")
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ShapeError(
            f"scan needs one length: xs leading axes and length give {sorted(lengths)} "
            f"(at {user_location_long(2)})"
        )
    n = lengths.pop()
    if _values_known(b, (init, x_ts)):
        return _scan_eagerly(b, f, init, x_ts, x_treedef, n, reverse, what)
    c_leaves, c_treedef = _flatten(init)
    nc = len(c_leaves)
    slice_types = [t.type.with_(shape=t.shape[1:]) for t in x_ts]

    def call(types):
        def body(*a):
            carry = jax.tree_util.tree_unflatten(c_treedef, a[:nc])
            x = jax.tree_util.tree_unflatten(x_treedef, a[nc:])
            res = f(carry, x)
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TracingError(
                    f"{what} must return a pair (carry, y) (at {user_location_long(2)})"
                )
            new_c, y = res
            c_l, c_t = _flatten(new_c)
            if c_t != c_treedef:
                raise TracingError(
                    f"scan body returns carry {c_t}, the carry is {c_treedef} "
                    f"(at {user_location_long(2)})"
                )
            y_l, body.y_treedef = _flatten(y)
            return (*c_l, *y_l)

        s = _Body(body, types + slice_types, b, "body")
        s.y_treedef = body.y_treedef
        return [s]

    carry, bs = _trace_loop(b, lambda types: call(types), c_leaves, what)
    if bs is None:
        types = [b.lift(x).type for x in c_leaves]
        raise _carry_mismatch(what, c_treedef, types, call(types)[0].out_types[:nc])
    (gb,), consts = _close(bs)
    outs = bind(
        "scan", *carry, *x_ts, *consts,
        body=gb, length=n, reverse=bool(reverse), num_carry=nc, num_xs=len(x_ts),
    )
    final = jax.tree_util.tree_unflatten(c_treedef, list(outs[:nc]))
    ys = jax.tree_util.tree_unflatten(bs[0].y_treedef, list(outs[nc:]))
    return final, ys


def _scan_eagerly(b, f, init, x_ts, x_treedef, n, reverse, what):
    carry, ys = init, []
    c_leaves, c_treedef = _flatten(init)
    init_types = _leaf_types(b, c_leaves, what)
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        x = jax.tree_util.tree_unflatten(x_treedef, [_index(t, i) for t in x_ts])
        res = f(carry, x)
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TracingError(f"{what} must return a pair (carry, y) (at {user_location_long(2)})")
        carry, y = res
        _check_carry(b, what, c_treedef, init_types, carry)
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys:
        raise ShapeError("scan of length 0 is not supported in define-by-run")
    y_leaves = [_flatten(y)[0] for y in ys]
    treedef = _flatten(ys[0])[1]
    stacked = [bind("stack", *[yl[j] for yl in y_leaves], axis=0) for j in range(len(y_leaves[0]))]
    return carry, jax.tree_util.tree_unflatten(treedef, stacked)


def _index(t, i):
    shape = tuple(np.shape(t))
    s = bind("slice", t, start=(i,) + (0,) * (len(shape) - 1), limit=(i + 1,) + shape[1:],
             strides=(1,) * len(shape))
    return bind("reshape", s, shape=shape[1:])


# -- fori_loop --------------------------------------------------------------------------------


def fori_loop(lower, upper, body_fun, init_val):
    """``for i in range(lower, upper): val = body_fun(i, val)`` (``lax.fori_loop``).

    With Python int bounds it becomes a `scan` (reverse-differentiable); with traced
    bounds, a `while_loop`.
    """
    if _is_static_int(lower) and _is_static_int(upper):
        lower, upper = int(lower), int(upper)
        b = current_trace()
        if _values_known(b, init_val):
            leaves, treedef = _flatten(init_val)
            init_types = _leaf_types(b, leaves, "fori_loop body")
            val = init_val
            for i in range(lower, upper):
                val = body_fun(i, val)
                _check_carry(b, "fori_loop body", treedef, init_types, val)
            return val
        if upper <= lower:
            return init_val

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None

        i0 = b.lift(np.int32(lower))
        (_, val), _ = _scan(step, (i0, init_val), None, upper - lower, False, "fori_loop body")
        return val

    def cond_fun(carry):
        i, hi, _ = carry
        return i < hi

    def body(carry):
        i, hi, val = carry
        return i + 1, hi, body_fun(i, val)

    _, _, val = _while_loop(current_trace(), cond_fun, body, (lower, upper, init_val), "fori_loop body")
    return val


def _values_known(trace, tree) -> bool:
    """Whether the current trace knows the values of ``tree``'s leaves (then loops run
    in Python, op by op; otherwise they are traced into one node)."""
    return all(trace.known_value(trace.lift(x)) is not None for x in _flatten(tree)[0])


def _is_static_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


from ..errors import public_functions as _public_functions

_public_functions(globals())
