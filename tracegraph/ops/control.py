"""Structured control flow: ``cond``, ``while_loop`` and ``scan`` nodes that hold their
bodies as subgraph attributes.

Every subgraph is closed: values a body uses from outside (closures) are explicit
operands of the node, passed to the body after its own inputs. The implementations
lower to ``lax.cond`` / ``lax.while_loop`` / ``lax.scan`` and evaluate the subgraphs
with the same op implementations as everything else; the interpreter runs them with
Python control flow instead (see backends/interpreter.py).

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
from .core import Attr, Sample, ShapeError, defop, emit, hooks
from .execute import evaluate
from .samples import arr


def _types(vs):
    return [v.type for v in vs]


def _fmt(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def _check_scalar_pred(p, what):
    if p.shape != () or p.dtype.kind != "b":
        raise ShapeError(f"{what} predicate must be a bool scalar, got {p}")


# -- cond -------------------------------------------------------------------------------


def _cond_rule(pred, *ops, true_branch, false_branch):
    _check_scalar_pred(pred, "cond")
    for name, g in (("true_branch", true_branch), ("false_branch", false_branch)):
        if _types(g.inputs) != list(ops):
            raise ShapeError(f"cond {name} takes {_fmt(_types(g.inputs))}, operands are {_fmt(ops)}")
    t, f = _types(true_branch.outputs), _types(false_branch.outputs)
    if t != f:
        raise ShapeError(f"cond branches return different types: true {_fmt(t)}, false {_fmt(f)}")
    return tuple(t)


def _cond_impl(pred, *ops, true_branch, false_branch):
    return tuple(
        lax.cond(
            pred,
            lambda *a: tuple(evaluate(true_branch, a)),
            lambda *a: tuple(evaluate(false_branch, a)),
            *ops,
        )
    )


def _cond_vjp(ct, pred, *ops, out, true_branch, false_branch):
    cts = emit(
        "cond",
        pred,
        *ops,
        *ct,
        true_branch=hooks.vjp_graph(true_branch),
        false_branch=hooks.vjp_graph(false_branch),
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
    t = hooks.trace(lambda a, b: (emit("sin", a) * b, a), [ty, ty], "true_branch")
    f = hooks.trace(lambda a, b: (a - b, b * 2.0), [ty, ty], "false_branch")
    attrs = {"true_branch": t, "false_branch": f}
    return [
        Sample((arr((), "bool", tag="p1"), x, y), attrs, f"{dt}-p1"),
        Sample((~arr((), "bool", tag="p1"), x, y), attrs, f"{dt}-p0"),
    ]


def _cond_reference(p, x, y, *, true_branch, false_branch):
    return (jnp.where(p, jnp.sin(x) * y, x - y), jnp.where(p, x, y * 2))


cond = defop(
    "cond",
    shape=_cond_rule,
    impl=_cond_impl,
    arity=None,
    min_arity=1,
    attrs={"true_branch": Attr("graph"), "false_branch": Attr("graph")},
    multi_output=True,
    vjp=_cond_vjp,
    samples=_cond_samples,
    reference=_cond_reference,
    doc="cond(pred, *operands): the outputs of true_branch(*operands) or false_branch(...).",
)


# -- while_loop -------------------------------------------------------------------------


def _while_rule(*ins, cond_graph, body_graph):
    n = len(body_graph.outputs)
    carry = list(ins[:n])
    if _types(body_graph.inputs) != list(ins) or _types(cond_graph.inputs) != list(ins):
        raise ShapeError(
            f"while_loop bodies take {_fmt(_types(body_graph.inputs))} and "
            f"{_fmt(_types(cond_graph.inputs))}, operands are {_fmt(ins)}"
        )
    if _types(body_graph.outputs) != carry:
        raise ShapeError(
            f"while_loop body must keep the carry type: takes {_fmt(carry)}, "
            f"returns {_fmt(_types(body_graph.outputs))}"
        )
    outs = _types(cond_graph.outputs)
    if len(outs) != 1:
        raise ShapeError(f"while_loop condition must return one bool scalar, got {_fmt(outs)}")
    _check_scalar_pred(outs[0], "while_loop condition")
    return tuple(carry)


def _while_impl(*ins, cond_graph, body_graph):
    n = len(body_graph.outputs)
    consts = tuple(ins[n:])
    return tuple(
        lax.while_loop(
            lambda c: evaluate(cond_graph, (*c, *consts))[0],
            lambda c: tuple(evaluate(body_graph, (*c, *consts))),
            tuple(ins[:n]),
        )
    )


def _while_vjp(ct, *ins, out, cond_graph, body_graph):
    raise Error(
        "reverse-mode differentiation of tg.while_loop is not supported: its trip count is "
        "only known at run time (as in JAX). Use tg.scan, or tg.fori_loop with Python int "
        "bounds (which becomes a scan)"
    )


def _while_samples():
    f32, i32 = TensorType((), "float32"), TensorType((), "int32")
    c = hooks.trace(lambda i, x, k: i < 5, [i32, f32, f32], "cond")
    b = hooks.trace(lambda i, x, k: (i + 1, x * k + 1.0), [i32, f32, f32], "body")
    return [
        Sample(
            (arr((), "i32", 0, 0), arr((), tag="x"), arr((), tag="k")),
            {"cond_graph": c, "body_graph": b},
            "count-to-5",
        )
    ]


def _while_reference(i, x, k, *, cond_graph, body_graph):
    return lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * k + 1.0), (i, x))


while_loop = defop(
    "while_loop",
    shape=_while_rule,
    impl=_while_impl,
    arity=None,
    attrs={"cond_graph": Attr("graph"), "body_graph": Attr("graph")},
    multi_output=True,
    vjp=_while_vjp,
    samples=_while_samples,
    reference=_while_reference,
    doc="while_loop(*carry, *consts): iterate body_graph while cond_graph holds.",
)


# -- scan -------------------------------------------------------------------------------


def _scan_rule(*ins, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    if nc + nx > len(ins) or length < 0:
        raise ShapeError(f"scan: {len(ins)} operands for {nc} carries and {nx} xs")
    carry, xs, consts = list(ins[:nc]), ins[nc : nc + nx], list(ins[nc + nx :])
    for x in xs:
        if not x.shape or x.shape[0] != length:
            raise ShapeError(f"scan over length {length}: xs operand {x} has the wrong leading axis")
    slices = [x.with_(shape=x.shape[1:]) for x in xs]
    if _types(body.inputs) != carry + slices + consts:
        raise ShapeError(
            f"scan body takes {_fmt(_types(body.inputs))}, expected {_fmt(carry + slices + consts)}"
        )
    outs = _types(body.outputs)
    if outs[:nc] != carry:
        raise ShapeError(
            f"scan body must keep the carry type: takes {_fmt(carry)}, returns {_fmt(outs[:nc])}"
        )
    ys = [y.with_(shape=(length, *y.shape)) for y in outs[nc:]]
    return tuple(carry + ys)


def _scan_impl(*ins, body, length, reverse, num_carry, num_xs):
    nc, nx = num_carry, num_xs
    consts = tuple(ins[nc + nx :])

    def step(c, x):
        outs = evaluate(body, (*c, *x, *consts))
        return tuple(outs[:nc]), tuple(outs[nc:])

    carry, ys = lax.scan(step, tuple(ins[:nc]), tuple(ins[nc : nc + nx]), length=length, reverse=reverse)
    return (*carry, *ys)


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
        outs = hooks.call(body, *a)
        return (*outs, *a[:nc])

    save_body = hooks.trace(saving, in_types, "forward_saving_carries")
    fwd = emit(
        "scan", *init, *xs, *consts,
        body=save_body, length=length, reverse=reverse, num_carry=nc, num_xs=nx,
    )
    saved = fwd[nc + ny :]

    # 2. A reverse scan of the body's VJP; the carry holds the cotangents of the carry
    #    and the running sum of the constants' cotangents.
    body_vjp = hooks.vjp_graph(body)

    def backward(*a):
        ct_c, ct_k = a[:nc], a[nc : nc + nk]
        c_t, x_t, ct_y = a[nc + nk : 2 * nc + nk], a[2 * nc + nk : 2 * nc + nk + nx], a[2 * nc + nk + nx : 2 * nc + nk + nx + ny]
        k = a[2 * nc + nk + nx + ny :]
        g = hooks.call(body_vjp, *c_t, *x_t, *k, *ct_c, *ct_y)
        g_c, g_x, g_k = g[:nc], g[nc : nc + nx], g[nc + nx :]
        return (*g_c, *[acc + gk for acc, gk in zip(ct_k, g_k)], *g_x)

    bwd_types = [c.type for c in init] + [k.type for k in consts]
    bwd_types += [c.type for c in init] + [x.type.with_(shape=x.shape[1:]) for x in xs]
    bwd_types += [y.type.with_(shape=y.shape[1:]) for y in out[nc:]] + [k.type for k in consts]
    bwd_body = hooks.trace(backward, bwd_types, "backward_body")
    zeros_k = [emit("full", shape=k.shape, value=0, dtype=k.dtype) for k in consts]
    res = emit(
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
    body = hooks.trace(lambda h, x, w: (emit("tanh", h * w + x), h * x), [t, t, t], "body")
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
    shape=_scan_rule,
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
    samples=_scan_samples,
    reference=_flat_scan_reference,
    doc="scan(*init, *xs, *consts): lax.scan of body over the leading axis of xs; "
    "outputs the final carry then the stacked per-step outputs.",
)
