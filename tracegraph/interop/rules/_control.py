"""Rules for JAX's call and control-flow primitives: calls (``jit``, ``closed_call``,
``call``), custom derivatives and ``remat`` are inlined; ``cond``, ``while`` and ``scan``
become tracegraph control-flow nodes whose bodies run the nested jaxprs.

NOTE: custom derivatives are not kept. ``custom_jvp_call``, ``custom_vjp_call`` and
``custom_linear_solve`` convert their primal computation, which tracegraph differentiates with
its own rules; ``remat2`` (``jax.checkpoint``) is inlined without its policy.
"""

from __future__ import annotations

import jax.extend.core.primitives as prims
from jax import lax

from ...core import bind
from ...frontend.control_flow import cond, scan, while_loop
from ._rule import RuleTable, is_bool

RULES = RuleTable()
rule = RULES.register


@rule(prims.jit_p)
def _jit(ctx, eqn, *xs):
    return ctx.run_closed(eqn.params["jaxpr"], xs)


@rule(prims.closed_call_p)
def _closed_call(ctx, eqn, *xs):
    return ctx.run_closed(eqn.params["call_jaxpr"], xs)


@rule(prims.call_p)
def _call(ctx, eqn, *xs):
    # an open jaxpr: its constants are among the operands
    return ctx.run(eqn.params["call_jaxpr"], (), xs)


@rule(prims.custom_jvp_call_p, prims.custom_vjp_call_p)
def _custom_call(ctx, eqn, *xs):
    return ctx.run_closed(eqn.params["call_jaxpr"], xs)


@rule(lax.linear_solve_p)
def _linear_solve(ctx, eqn, *xs):
    # operands: the constants of matvec, vecmat, solve, transpose_solve, then b
    lengths = eqn.params["const_lengths"]
    start = lengths.matvec + lengths.vecmat
    solve_consts = xs[start : start + lengths.solve]
    b = xs[sum(lengths) :]
    return ctx.run_closed(eqn.params["jaxprs"].solve, [*solve_consts, *b])


@rule(prims.remat_p)
def _remat(ctx, eqn, *xs):
    return ctx.run(eqn.params["jaxpr"], (), xs)


@rule(lax.cond_p)
def _cond(ctx, eqn, index, *ops):
    return _switch(ctx, index, list(eqn.params["branches"]), list(ops), 0)


def _switch(ctx, index, branches, ops, k):
    """lax.switch as nested two-way conds: branch k if index <= k, else the rest (an
    index past the end takes the last branch, as lax clamps it)."""
    if len(branches) == 1:
        return ctx.run_closed(branches[0], ops)
    if is_bool(index.dtype):
        return cond(
            index,
            lambda *a: ctx.run_closed(branches[1], a),
            lambda *a: ctx.run_closed(branches[0], a),
            *ops,
        )
    return cond(
        bind("le", index, k),
        lambda *a: ctx.run_closed(branches[0], a),
        lambda *a: _switch(ctx, index, branches[1:], list(a), k + 1),
        *ops,
    )


@rule(lax.while_p)
def _while(ctx, eqn, *xs):
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = xs[:nc], xs[nc : nc + nb], list(xs[nc + nb :])
    return while_loop(
        lambda carry: ctx.run_closed(p["cond_jaxpr"], [*cond_consts, *carry])[0],
        lambda carry: ctx.run_closed(p["body_jaxpr"], [*body_consts, *carry]),
        init,
    )


@rule(lax.scan_p)
def _scan(ctx, eqn, *xs):
    p = eqn.params
    nk, nc = p["num_consts"], p["num_carry"]
    consts, init, seqs = xs[:nk], list(xs[nk : nk + nc]), list(xs[nk + nc :])

    def step(carry, x):
        outs = ctx.run_closed(p["jaxpr"], [*consts, *carry, *x])
        return outs[:nc], outs[nc:]

    carry, ys = scan(step, init, seqs, length=p["length"], reverse=bool(p["reverse"]))
    return [*carry, *ys]


# -- not yet supported -------------------------------------------------------------------

NOT_YET_SUPPORTED = {
    prims.custom_lin_p: "an internal of JAX's own linearization (jax.linearize, jax.grad); "
    "pass the undifferentiated function and differentiate with tracegraph",
}
