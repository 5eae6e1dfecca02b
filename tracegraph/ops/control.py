"""Structured control flow: ``cond``, ``while_loop`` and ``scan`` nodes that hold their
bodies as subgraph attributes.

Every subgraph is closed: values a body uses from outside (closures) are explicit
operands of the node, passed to the body after its own inputs. The implementations
lower to ``lax.cond`` / ``lax.while_loop`` / ``lax.scan`` and evaluate the subgraphs
with `evaluate_named` at the bottom of the trace stack (the same op implementations as
everything else); each op's ``interpret`` facet is the interpreter's variant, which runs
the subgraphs with Python control flow (so hooks, profiles and NaN checks reach inside).

Reverse mode: ``cond`` differentiates each branch (a Graph -> Graph VJP) inside a
backward ``cond``; ``scan`` re-runs the forward scan saving each step's carry, then runs
the body's VJP in a reverse scan; a dynamic ``while_loop`` has no reverse mode (as in
JAX) and says so.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..errors import Error
from ..ir.types import TensorType
from ..core import call_graph, evaluate_named, trace_graph, vjp_graph
from .defop import Attr, Sample, ShapeError, bind, defop
from .samples import arr


def _types(vs):
    return [v.type for v in vs]


def _loose(types):
    """Types as control flow compares them: a sharding is a placement (JAX's Auto axes),
    not part of the type a branch or a loop carry must keep."""
    return [t.with_(sharding=None) for t in types]


def _joined(a_types, b_types):
    """The types of values that are either ``a`` or ``b``: ``a``'s, keeping a sharding
    only where both have it."""
    return [a if a.sharding == b.sharding else a.with_(sharding=None) for a, b in zip(a_types, b_types)]


def _fmt(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def _check_scalar_pred(p, what):
    if p.shape != () or p.dtype.kind != "b":
        raise ShapeError(f"{what} predicate must be a bool scalar, got {p}")


# The output types of a control-flow op come whole from its subgraphs: each op has a
# check (its shape rule) and an ``out_types`` function; the other rules read one field.


def _shape_rule(check, out_types):
    def rule(*ins, **attrs):
        check(*ins, **attrs)
        return tuple(t.shape for t in out_types(*ins, **attrs))

    return rule


def _field_rule(out_types, field):
    def rule(*ins, **attrs):
        return tuple(getattr(t, field) for t in out_types(*ins, **attrs))

    return rule


def _type_rules(check, out_types) -> dict:
    """``defop`` keywords: the shape rule (``check``, then the shapes of ``out_types``)
    and the dtype, weak and sharding rules reading ``out_types``."""
    return {
        "shape": _shape_rule(check, out_types),
        "dtype": _field_rule(out_types, "dtype"),
        "weak": _field_rule(out_types, "weak"),
        "sharding": _field_rule(out_types, "sharding"),
    }


# -- cond -------------------------------------------------------------------------------


def _cond_check(pred, *ops, true_branch, false_branch):
    _check_scalar_pred(pred, "cond")
    for name, g in (("true_branch", true_branch), ("false_branch", false_branch)):
        if _loose(_types(g.inputs)) != _loose(ops):
            raise ShapeError(f"cond {name} takes {_fmt(_types(g.inputs))}, operands are {_fmt(ops)}")
    t, f = _types(true_branch.outputs), _types(false_branch.outputs)
    if _loose(t) != _loose(f):
        raise ShapeError(f"cond branches return different types: true {_fmt(t)}, false {_fmt(f)}")


def _cond_out_types(pred, *ops, true_branch, false_branch):
    return _joined(_types(true_branch.outputs), _types(false_branch.outputs))


def _evaluate(graph, args):
    return evaluate_named(graph, args)


def _cond_impl(pred, *ops, true_branch, false_branch):
    return tuple(
        lax.cond(
            pred,
            lambda *a: tuple(_evaluate(true_branch, a)),
            lambda *a: tuple(_evaluate(false_branch, a)),
            *ops,
        )
    )


def _cond_interpret(run_graph, pred, *ops, true_branch, false_branch):
    return run_graph(true_branch if bool(pred) else false_branch, ops)


def _cond_vjp(ct, pred, *ops, out, true_branch, false_branch):
    cts = bind(
        "cond",
        pred,
        *ops,
        *ct,
        true_branch=vjp_graph(true_branch),
        false_branch=vjp_graph(false_branch),
    )
    return [None, *cts]


def _cond_samples():
    out = []
    for dt in ("f32", "f64"):
        with jax.enable_x64(dt == "f64"):  # f64 graphs are built (and run) with x64 on
            out += _cond_sample(dt)
    return out


def _cond_sample(dt):
    x, y = arr((2, 3), dt), arr((2, 3), dt, tag="y")
    ty = TensorType((2, 3), x.dtype)
    t = trace_graph(lambda a, b: (bind("sin", a) * b, a), [ty, ty], "true_branch")
    f = trace_graph(lambda a, b: (a - b, b * 2.0), [ty, ty], "false_branch")
    attrs = {"true_branch": t, "false_branch": f}
    return [
        Sample((arr((), "bool", tag="p1"), x, y), attrs, f"{dt}-p1"),
        Sample((~arr((), "bool", tag="p1"), x, y), attrs, f"{dt}-p0"),
    ]


def _cond_reference(p, x, y, *, true_branch, false_branch):
    return (jnp.where(p, jnp.sin(x) * y, x - y), jnp.where(p, x, y * 2))


cond = defop(
    "cond",
    keys=True,
    **_type_rules(_cond_check, _cond_out_types),
    impl=_cond_impl,
    arity=None,
    min_arity=1,
    attrs={"true_branch": Attr("graph"), "false_branch": Attr("graph")},
    multi_output=True,
    vjp=_cond_vjp,
    interpret=_cond_interpret,
    samples=_cond_samples,
    reference=_cond_reference,
    doc="cond(pred, *operands): the outputs of true_branch(*operands) or false_branch(...).",
)


# -- while_loop -------------------------------------------------------------------------


def _while_check(*ins, cond_graph, body_graph):
    n = len(body_graph.outputs)
    carry = list(ins[:n])
    if _loose(_types(body_graph.inputs)) != _loose(ins) or _loose(_types(cond_graph.inputs)) != _loose(ins):
        raise ShapeError(
            f"while_loop bodies take {_fmt(_types(body_graph.inputs))} and "
            f"{_fmt(_types(cond_graph.inputs))}, operands are {_fmt(ins)}"
        )
    if _loose(_types(body_graph.outputs)) != _loose(carry):
        raise ShapeError(
            f"while_loop body must keep the carry type: takes {_fmt(carry)}, "
            f"returns {_fmt(_types(body_graph.outputs))}"
        )
    outs = _types(cond_graph.outputs)
    if len(outs) != 1:
        raise ShapeError(f"while_loop condition must return one bool scalar, got {_fmt(outs)}")
    _check_scalar_pred(outs[0], "while_loop condition")


def _while_out_types(*ins, cond_graph, body_graph):
    return _joined(ins[: len(body_graph.outputs)], _types(body_graph.outputs))  # the carry


def _while_impl(*ins, cond_graph, body_graph):
    n = len(body_graph.outputs)
    consts = tuple(ins[n:])
    return tuple(
        lax.while_loop(
            lambda c: _evaluate(cond_graph, (*c, *consts))[0],
            lambda c: tuple(_evaluate(body_graph, (*c, *consts))),
            tuple(ins[:n]),
        )
    )


def _while_interpret(run_graph, *ins, cond_graph, body_graph):
    n = len(body_graph.outputs)
    carry, consts = list(ins[:n]), list(ins[n:])
    while bool(run_graph(cond_graph, carry + consts)[0]):
        carry = list(run_graph(body_graph, carry + consts))
    return carry


def _while_vjp(ct, *ins, out, cond_graph, body_graph):
    raise Error(
        "reverse-mode differentiation of tg.while_loop is not supported: its trip count is "
        "only known at run time (as in JAX). Use tg.scan, or tg.fori_loop with Python int "
        "bounds (which becomes a scan)"
    )


def _while_samples():
    f32, i32 = TensorType((), "float32"), TensorType((), "int32")
    c = trace_graph(lambda i, x, k: i < 5, [i32, f32, f32], "cond")
    b = trace_graph(lambda i, x, k: (i + 1, x * k + 1.0), [i32, f32, f32], "body")
    return [
        Sample(
            (arr((), "i32", 0, 0), arr((), tag="x"), arr((), tag="k")),
            {"cond_graph": c, "body_graph": b},
            "count-to-5",
            grad=False,  # no reverse mode through a dynamic loop (as in JAX): it raises
        )
    ]


def _while_reference(i, x, k, *, cond_graph, body_graph):
    return lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * k + 1.0), (i, x))


while_loop = defop(
    "while_loop",
    keys=True,
    **_type_rules(_while_check, _while_out_types),
    impl=_while_impl,
    arity=None,
    attrs={"cond_graph": Attr("graph"), "body_graph": Attr("graph")},
    multi_output=True,
    vjp=_while_vjp,
    interpret=_while_interpret,
    samples=_while_samples,
    reference=_while_reference,
    doc="while_loop(*carry, *consts): iterate body_graph while cond_graph holds.",
)


# -- scan -------------------------------------------------------------------------------


def _scan_check(*ins, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    if nc + nx > len(ins) or length < 0:
        raise ShapeError(f"scan: {len(ins)} operands for {nc} carries and {nx} xs")
    carry, xs, consts = list(ins[:nc]), ins[nc : nc + nx], list(ins[nc + nx :])
    for x in xs:
        if not x.shape or x.shape[0] != length:
            raise ShapeError(f"scan over length {length}: xs operand {x} has the wrong leading axis")
    slices = [x.with_(shape=x.shape[1:]) for x in xs]
    if _loose(_types(body.inputs)) != _loose(carry + slices + consts):
        raise ShapeError(
            f"scan body takes {_fmt(_types(body.inputs))}, expected {_fmt(carry + slices + consts)}"
        )
    outs = _types(body.outputs)
    if _loose(outs[:nc]) != _loose(carry):
        raise ShapeError(
            f"scan body must keep the carry type: takes {_fmt(carry)}, returns {_fmt(outs[:nc])}"
        )


def _scan_out_types(*ins, body, length, reverse, num_carry, num_xs):
    # the carry, then each step's outputs stacked on a new (unpartitioned) leading axis
    ys = [
        y.with_(shape=(length, *y.shape), sharding=None if y.sharding is None else (None, *y.sharding))
        for y in _types(body.outputs[num_carry:])
    ]
    return _joined(ins[:num_carry], _types(body.outputs[:num_carry])) + ys


def _scan_impl(*ins, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    consts = tuple(ins[nc + nx :])

    def step(c, x):
        outs = _evaluate(body, (*c, *x, *consts))
        return tuple(outs[:nc]), tuple(outs[nc:])

    carry, ys = lax.scan(step, tuple(ins[:nc]), tuple(ins[nc : nc + nx]), length=length, reverse=reverse)
    return (*carry, *ys)


def _scan_interpret(run_graph, *ins, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    carry, xs, consts = list(ins[:nc]), ins[nc : nc + nx], list(ins[nc + nx :])
    steps = range(length - 1, -1, -1) if reverse else range(length)
    ys = [None] * length
    for i in steps:
        outs = run_graph(body, carry + [x[i] for x in xs] + consts)
        carry, ys[i] = list(outs[:nc]), outs[nc:]
    stacked = []
    for j, v in enumerate(body.outputs[nc:]):
        if length:
            stacked.append(jnp.stack([y[j] for y in ys]))
        else:
            stacked.append(jnp.zeros((0, *v.type.shape), v.type.dtype))
    return carry + stacked


def _scan_vjp(ct, *ins, out, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    nk = len(ins) - nc - nx
    init, xs, consts = ins[:nc], ins[nc : nc + nx], ins[nc + nx :]
    ct_carry, ct_ys = ct[:nc], ct[nc:]
    ny = len(ct_ys)
    in_types = [t.type for t in init] + [x.type.with_(shape=x.shape[1:]) for x in xs]
    in_types += [k.type for k in consts]

    # 1. The forward scan again, also stacking the carry each step starts from.
    def saving(*a):
        outs = call_graph(body, *a)
        return (*outs, *a[:nc])

    save_body = trace_graph(saving, in_types, "forward_saving_carries")
    fwd = bind(
        "scan", *init, *xs, *consts,
        body=save_body, length=length, reverse=reverse, num_carry=nc, num_xs=nx,
    )
    saved = fwd[nc + ny :]

    # 2. A reverse scan of the body's VJP; the carry holds the cotangents of the carry
    #    and the running sum of the constants' cotangents.
    body_vjp = vjp_graph(body)

    def backward(*a):
        ct_c, ct_k = a[:nc], a[nc : nc + nk]
        c_t, x_t, ct_y = a[nc + nk : 2 * nc + nk], a[2 * nc + nk : 2 * nc + nk + nx], a[2 * nc + nk + nx : 2 * nc + nk + nx + ny]
        k = a[2 * nc + nk + nx + ny :]
        g = call_graph(body_vjp, *c_t, *x_t, *k, *ct_c, *ct_y)
        g_c, g_x, g_k = g[:nc], g[nc : nc + nx], g[nc + nx :]
        return (*g_c, *[acc + gk for acc, gk in zip(ct_k, g_k)], *g_x)

    bwd_types = [c.type for c in init] + [k.type for k in consts]
    bwd_types += [c.type for c in init] + [x.type.with_(shape=x.shape[1:]) for x in xs]
    bwd_types += [y.type.with_(shape=y.shape[1:]) for y in out[nc:]] + [k.type for k in consts]
    bwd_body = trace_graph(backward, bwd_types, "backward_body")
    zeros_k = [bind("full", shape=k.shape, value=0, dtype=k.dtype) for k in consts]
    res = bind(
        "scan", *ct_carry, *zeros_k, *saved, *xs, *ct_ys, *consts,
        body=bwd_body, length=length, reverse=not reverse, num_carry=nc + nk, num_xs=nc + nx + ny,
    )
    ct_init, ct_consts, ct_xs = res[:nc], res[nc : nc + nk], res[nc + nk :]
    return [*ct_init, *ct_xs, *ct_consts]


def _scan_samples():
    out = []
    for dt in ("f32", "f64"):
        with jax.enable_x64(dt == "f64"):  # f64 graphs are built (and run) with x64 on
            out += _scan_sample(dt)
    return out


def _scan_sample(dt):
    h0, xs, wv = arr((3,), dt, tag="h"), arr((4, 3), dt, tag="xs"), arr((3,), dt, tag="w")
    t = TensorType((3,), h0.dtype)
    body = trace_graph(lambda h, x, w: (bind("tanh", h * w + x), h * x), [t, t, t], "body")
    attrs = {"body": body, "length": 4, "reverse": False, "num_carry": 1, "num_xs": 1}
    return [
        Sample((h0, xs, wv), attrs, f"{dt}-rnn"),
        Sample((h0, xs, wv), {**attrs, "reverse": True}, f"{dt}-rnn-reverse"),
    ]


def _scan_reference(h0, xs, w, *, body, length, reverse, num_carry, num_xs):
    def step(h, x):
        return jnp.tanh(h * w + x), h * x

    return lax.scan(step, h0, xs, reverse=reverse)


def _flat_scan_reference(*args, **attrs):
    carry, ys = _scan_reference(*args, **attrs)
    return (carry, ys)


scan = defop(
    "scan",
    keys=True,
    **_type_rules(_scan_check, _scan_out_types),
    impl=_scan_impl,
    arity=None,
    attrs={
        "body": Attr("graph"),
        "length": Attr("int"),
        "reverse": Attr("bool", False),
        "num_carry": Attr("int"),
        "num_xs": Attr("int"),
    },
    multi_output=True,
    vjp=_scan_vjp,
    interpret=_scan_interpret,
    samples=_scan_samples,
    reference=_flat_scan_reference,
    doc="scan(*init, *xs, *consts): lax.scan of body over the leading axis of xs; "
    "outputs the final carry then the stacked per-step outputs.",
)
