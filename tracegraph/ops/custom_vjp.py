"""``custom_vjp``: a computation with a user-given reverse-mode rule, the node that
`tg.custom_vjp` and `tg.from_jax` (for JAX's ``custom_jvp``/``custom_vjp`` functions)
bind.

The node holds three closed graphs as attributes, as ``cond`` holds its branches:

- ``fn``: the primal, ``(*args, *consts) -> outputs``;
- ``fwd``: the forward of the rule, ``(*args, *consts) -> (*outputs, *residuals)``;
- ``bwd``: the backward of the rule, ``(*residuals, *output cotangents, *consts) ->``
  one cotangent per float arg (shaped and typed like it).

``args`` are the function's arguments; ``consts`` (values the functions close over)
follow them and get no cotangent, as in JAX, where a custom rule differentiates only
the explicit inputs; neither do integer, bool or key args. The counts follow from the
graphs (``bwd`` takes the consts after the residuals and cotangents), so the node has
no other attributes.

Evaluation (the implementation, the interpreter) runs ``fn`` only. The VJP rule inlines
``fwd`` (for the residuals) and then ``bwd`` into the backward graph: the custom rule's
own ops, with the user lines of the rule, are ordinary IR there, so they print, run in
every mode and can be differentiated again (``tg.grad(tg.grad(f))``).

NOTE: the backward recomputes ``fwd`` rather than saving its residuals from the
forward: the node's outputs are ``fn``'s, so a graph that is never differentiated pays
nothing for the rule. Under tg.jit, XLA merges the recomputation with the forward where
they compute the same thing; elsewhere it is a recomputation, as ``jax.checkpoint``'s.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import call_graph, evaluate_named, trace_graph
from ..ir.types import TensorType, is_inexact
from .control import _fmt, _type_rules, _types
from .defop import Attr, Sample, ShapeError, bind, defop
from .samples import arr


def _split(ins, fn, fwd, bwd):
    """(args, consts, residual types) of a node's operands."""
    n_out, n_res = len(fn.outputs), len(fwd.outputs) - len(fn.outputs)
    n_consts = len(bwd.inputs) - n_res - n_out
    if n_res < 0 or not 0 <= n_consts <= len(ins):
        raise ShapeError(
            f"custom_vjp: fn returns {n_out} outputs, fwd {len(fwd.outputs)} and bwd takes "
            f"{len(bwd.inputs)} inputs for {len(ins)} operands"
        )
    k = len(ins) - n_consts
    return ins[:k], ins[k:], _types(fwd.outputs[n_out:])


def _cotangent_types(graph) -> list[TensorType]:
    """The types of the output cotangents ``bwd`` takes for primal ``graph``'s outputs
    (strong, as every cotangent autodiff makes)."""
    return [t.with_(weak=False) for t in _types(graph.outputs)]


def _check(*ins, fn, fwd, bwd):
    ins = list(ins)
    args, consts, res = _split(ins, fn, fwd, bwd)
    for name, g in (("fn", fn), ("fwd", fwd)):
        if _types(g.inputs) != ins:
            raise ShapeError(f"custom_vjp {name} takes {_fmt(_types(g.inputs))}, operands are {_fmt(ins)}")
    outs = _cotangent_types(fn)
    fwd_outs = [t.with_(weak=False) for t in _types(fwd.outputs[: len(fn.outputs)])]
    if fwd_outs != outs:  # weak typing may differ
        raise ShapeError(f"custom_vjp fwd returns {_fmt(_types(fwd.outputs))}, fn returns {_fmt(outs)} first")
    want = res + outs + consts
    if _types(bwd.inputs) != want:
        raise ShapeError(
            f"custom_vjp bwd takes {_fmt(_types(bwd.inputs))}, expected residuals, output "
            f"cotangents and constants {_fmt(want)}"
        )
    diff = [a.with_(weak=False) for a in args if is_inexact(a.dtype)]
    grads = _types(bwd.outputs)
    if [(t.shape, t.dtype) for t in grads] != [(t.shape, t.dtype) for t in diff]:
        raise ShapeError(f"custom_vjp bwd returns {_fmt(grads)}, the float operands are {_fmt(diff)}")


def _out_types(*ins, fn, fwd, bwd):
    return _types(fn.outputs)


def _impl(*ins, fn, fwd, bwd):
    return tuple(evaluate_named(fn, ins))


def _interpret(run_graph, *ins, fn, fwd, bwd):
    return run_graph(fn, ins)


def _vjp(ct, *ins, out, fn, fwd, bwd):
    args, consts, _ = _split(list(ins), fn, fwd, bwd)
    res = call_graph(fwd, *ins)[len(fn.outputs) :]
    cts = [
        c if c.type == t else bind("astype", c, dtype=t.dtype)
        for c, t in zip(ct, _cotangent_types(fn))
    ]
    grads = iter(call_graph(bwd, *res, *cts, *consts))
    # non-float operands have no cotangent; the constants get none (as in JAX)
    return [next(grads) if is_inexact(a.dtype) else None for a in args] + [None] * len(consts)


def _samples():
    out = []
    for dt in ("f32", "f64"):
        with jax.enable_x64(dt == "f64"):  # f64 graphs are built (and run) with x64 on
            out += _sample(dt)
    return out


def _sample(dt):
    # JAX's documentation example, sin(x) * y with residuals cos x, sin x and y, plus a
    # second output x * y. The rule is the true derivative, so jax.vjp of the
    # implementation checks the plumbing
    x, y = arr((2, 3), dt), arr((2, 3), dt, tag="y")
    t = TensorType((2, 3), x.dtype)
    fn = trace_graph(lambda a, b: (bind("sin", a) * b, a * b), [t, t], "fn")
    fwd = trace_graph(
        lambda a, b: (bind("sin", a) * b, a * b, bind("cos", a), bind("sin", a), a, b), [t, t], "fwd"
    )
    bwd = trace_graph(
        lambda cos, sin, a, b, g, h: (cos * g * b + h * b, sin * g + h * a), [t, t, t, t, t, t], "bwd"
    )
    return [Sample((x, y), {"fn": fn, "fwd": fwd, "bwd": bwd}, f"{dt}-sin-times")]


def _reference(x, y, *, fn, fwd, bwd):
    return (jnp.sin(x) * y, x * y)


custom_vjp = defop(
    "custom_vjp",
    keys=True,
    **_type_rules(_check, _out_types),
    impl=_impl,
    arity=None,
    attrs={"fn": Attr("graph"), "fwd": Attr("graph"), "bwd": Attr("graph")},
    multi_output=True,
    vjp=_vjp,
    interpret=_interpret,
    samples=_samples,
    reference=_reference,
    doc="custom_vjp(*args, *consts): fn's outputs; differentiated by the rule fwd/bwd.",
)
