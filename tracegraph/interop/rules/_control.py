"""Rules for JAX's call and control-flow primitives: calls (``jit``, ``closed_call``,
``call``) and ``remat`` are inlined; custom derivatives become ``custom_vjp`` nodes;
``cond``, ``while`` and ``scan`` become tracegraph control-flow nodes whose bodies run
the nested jaxprs, and ``shard_map`` a ``shard_map`` node (through `tg.shard_map`).

NOTE: custom derivatives are kept, with one mechanism for ``custom_jvp_call`` and
``custom_vjp_call``: the equation becomes a `tg.custom_vjp` call whose primal is the
converted ``call_jaxpr``, whose residuals are the primal inputs, and whose backward is
the conversion of JAX's own backward pass of that one equation (`backward_jaxpr`:
``jax.vjp`` of the re-bound equation, which honours the custom rule, so a JVP rule is
linearized and transposed by JAX). So ``relu``'s gradient at 0 is 0 and rules written
for numerical safety (``sinc`` at 0, ``logaddexp`` and ``xlogy`` edge cases) hold, as
under ``jax.grad``. ``custom_linear_solve`` goes the same way: its primal is its
``solve`` computation, its backward JAX's implicit derivative of the solve (the solve
computation reads the matrix under ``stop_gradient``, so differentiating it alone would
lose the matrix's gradient). ``remat2`` (``jax.checkpoint``) is inlined without its
policy.
"""

from __future__ import annotations

import contextvars

import jax
import jax.extend.core as jcore
import jax.extend.core.primitives as prims
import jax.numpy as jnp
import numpy as np
from jax import lax

# NOTE: JAX's own dead-code elimination (as in from_jax.py; jax.extend exports none)
from jax._src.interpreters.partial_eval import dce_jaxpr
from jax._src.lax.control_flow.conditionals import platform_index_p  # no public export
from jax._src.shard_map import shard_map_p

from ..._caches import cache
from ...core import bind
from ...frontend.control_flow import cond, scan, while_loop
from ...frontend.custom_derivatives import custom_vjp
from ...frontend.shard_map import shard_map
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


# id(equation) -> (the equation, its backward jaxpr): JAX caches the jaxprs of jitted
# functions (jax.nn.relu), so one equation object serves every call site
_BACKWARDS: dict = cache({})
_BACKWARDS_MAX = 256


def _is_inexact(aval) -> bool:
    return bool(jnp.issubdtype(aval.dtype, jnp.inexact))


def _struct(aval) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=getattr(aval, "weak_type", False))


def _rebound(eqn):
    """A function that binds ``eqn``'s primitive with its parameters (a one-equation
    jaxpr, so JAX re-creates the custom rule's functions from the parameters)."""
    invars = [jcore.Var(v.aval) for v in eqn.invars]  # literals become inputs too
    call = eqn.params.get("call_jaxpr")
    info = call.jaxpr.debug_info if call is not None else eqn.params["jaxprs"].solve.jaxpr.debug_info
    jaxpr = jcore.Jaxpr([], invars, list(eqn.outvars), [eqn.replace(invars=invars)], eqn.effects,
                        debug_info=info)
    return jcore.jaxpr_as_fun(jcore.ClosedJaxpr(jaxpr, []))


def backward_jaxpr(eqn) -> jcore.ClosedJaxpr | None:
    """JAX's backward pass of one ``custom_jvp_call``/``custom_vjp_call`` equation:
    ``(*primal inputs, *cotangents of the float outputs) -> cotangents of the float
    inputs``, traced from ``jax.vjp`` of the re-bound equation (so it is the custom
    rule's computation), dead code removed; None where JAX cannot differentiate the
    call (then its primal is converted, and differentiated by tracegraph, as it would
    be without the rule). Cached per equation."""
    hit = _BACKWARDS.get(id(eqn))
    if hit is not None and hit[0] is eqn:
        return hit[1]
    try:
        closed = _trace_backward(eqn)
    except Exception:  # JAX's own error would come only when differentiating, in JAX
        closed = None
    if len(_BACKWARDS) >= _BACKWARDS_MAX:
        _BACKWARDS.pop(next(iter(_BACKWARDS)))
    _BACKWARDS[id(eqn)] = (eqn, closed)
    return closed


def _trace_backward(eqn) -> jcore.ClosedJaxpr:
    call = _rebound(eqn)
    diff = [i for i, v in enumerate(eqn.invars) if _is_inexact(v.aval)]
    float_outs = [_is_inexact(v.aval) for v in eqn.outvars]

    def backward(primals, cts):
        def primal(*d):
            full = list(primals)
            for i, x in zip(diff, d):
                full[i] = x
            return call(*full)

        _, pull = jax.vjp(primal, *[primals[i] for i in diff])
        it = iter(cts)
        return pull([next(it) if f else np.zeros(v.aval.shape, jax.dtypes.float0)
                     for f, v in zip(float_outs, eqn.outvars)])

    primals = [_struct(v.aval) for v in eqn.invars]
    cts = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for f, v in zip(float_outs, eqn.outvars) if f]
    closed = jax.make_jaxpr(backward)(primals, cts)
    jaxpr, _ = dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars), instantiate=True)
    return closed.replace(jaxpr=jaxpr)


def _custom_name(eqn) -> str:
    name = eqn.params.get("name")
    if not name:
        call = eqn.params.get("call_jaxpr")  # custom_linear_solve has none
        info = getattr(call.jaxpr, "debug_info", None) if call is not None else None
        name = getattr(info, "func_name", None) or eqn.primitive.name
    return str(name).replace("<", "").replace(">", "")


# NOTE: a JVP rule may call custom-derivative functions itself, to any order (``jnp.sinc``'s
# calls the rule of its next Taylor term), and a backward graph is built when the call is
# converted, not when it is differentiated (as JAX's are). So custom calls in backward
# passes keep their rules to this depth, enough for tg.grad(tg.grad(f)); deeper ones
# convert their primal, which tracegraph differentiates with its own rules.
_KEPT_DEPTH = 2
# how many backward passes of custom calls enclose the conversion (per thread/task)
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("tracegraph_custom_depth", default=0)


def _backward_jaxprs(eqn, depth) -> list:
    backward = backward_jaxpr(eqn) if depth < _KEPT_DEPTH else None
    return [] if backward is None else [backward]


@rule(prims.custom_jvp_call_p, prims.custom_vjp_call_p, jaxprs=_backward_jaxprs)
def _custom_call(ctx, eqn, *xs):
    return _with_jax_backward(ctx, eqn, xs, lambda *args: ctx.run_closed(eqn.params["call_jaxpr"], args))


def _with_jax_backward(ctx, eqn, xs, primal):
    """``primal(*xs)`` (the conversion of what the equation computes) as a `tg.custom_vjp`
    call whose backward is the conversion of JAX's backward pass of the equation; the
    primal alone, differentiated by tracegraph, past `_KEPT_DEPTH` or where JAX cannot
    differentiate it."""
    depth = _DEPTH.get()
    backward = backward_jaxpr(eqn) if depth < _KEPT_DEPTH else None
    if backward is None:
        return primal(*xs)
    diff = [_is_inexact(v.aval) for v in eqn.invars]
    float_outs = [_is_inexact(v.aval) for v in eqn.outvars]

    def fn(*args):
        return primal(*args)

    def fwd(*args):
        return fn(*args), args  # the residuals: the primal inputs

    def bwd(res, cts):
        token = _DEPTH.set(depth + 1)
        try:
            grads = iter(ctx.run_closed(backward, [*res, *[c for c, f in zip(cts, float_outs) if f]]))
        finally:
            _DEPTH.reset(token)
        return tuple(next(grads) if d else None for d in diff)

    fn.__name__ = _custom_name(eqn)
    f = custom_vjp(fn)
    f.defvjp(fwd, bwd)
    return f(*xs)


@rule(lax.linear_solve_p, jaxprs=_backward_jaxprs)
def _linear_solve(ctx, eqn, *xs):
    # operands: the constants of matvec, vecmat, solve, transpose_solve, then b. The
    # value is the solve computation's; the gradient is JAX's implicit one (through
    # matvec's constants and transpose_solve): the solve computation reads its matrix
    # under stop_gradient (jnp.linalg.solve's does), so differentiating it alone would
    # give the matrix a zero gradient
    lengths = eqn.params["const_lengths"]
    start = lengths.matvec + lengths.vecmat

    def solve(*args):
        return ctx.run_closed(eqn.params["jaxprs"].solve,
                              [*args[start : start + lengths.solve], *args[sum(lengths) :]])

    return _with_jax_backward(ctx, eqn, xs, solve)


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
    """A ``while``; a *batched* one (what ``vmap`` of a while loop whose predicate depends
    on the batch makes: ``cond_jaxpr`` gives a bool array) loops while any element's
    predicate holds, and its body keeps the carries of the elements whose predicate no
    longer does, as JAX's lowering does (a reduce-or, and a select per carry)."""
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = xs[:nc], xs[nc : nc + nb], list(xs[nc + nb :])
    batched = bool(p["cond_jaxpr"].out_avals[0].shape)

    def pred(carry):
        return ctx.run_closed(p["cond_jaxpr"], [*cond_consts, *carry])[0]

    def any_pred(carry):
        mask = pred(carry)
        return bind("max", mask, axes=tuple(range(mask.ndim)), keepdims=False) if batched else mask

    def body(carry):
        new = ctx.run_closed(p["body_jaxpr"], [*body_consts, *carry])
        if not batched:
            return new
        mask = pred(carry)
        return [bind("where", _lead(mask, c.ndim), n, c) for n, c in zip(new, carry)]

    return while_loop(any_pred, body, init)


def _lead(mask, ndim):
    """``mask`` with unit axes appended up to rank ``ndim`` (its dims lead the carry's)."""
    extra = ndim - mask.ndim
    return mask if extra == 0 else bind("reshape", mask, shape=tuple(mask.shape) + (1,) * extra)


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


def _all_manual(eqn):
    p = eqn.params
    manual = p.get("manual_axes", p.get("newly_manual_axes", ()))
    if set(manual) != set(p["mesh"].axis_names):
        return "a shard_map manual over some mesh axes only (axis_names=); tracegraph's is manual over all"
    return None


@rule(shard_map_p, check=_all_manual)
def _shard_map(ctx, eqn, *xs):
    # the body's collectives convert to tracegraph's collective ops (rules in _misc)
    p = eqn.params
    body = shard_map(
        lambda *a: tuple(ctx.run(p["jaxpr"], (), a)), mesh=p["mesh"],
        in_specs=tuple(p["in_specs"]), out_specs=tuple(p["out_specs"]), check_vma=bool(p["check_vma"]),
    )
    return list(body(*xs))


def _platform_check(eqn):
    if _branch_for(eqn.params["platforms"], _platform()) is None:
        return f"lax.platform_dependent has no branch for this backend ({_platform()}) and no default"
    return None


def _platform() -> str:
    """The platform the conversion's programs are compiled for, as JAX's lowering names
    it ('cpu', 'cuda', 'rocm', 'tpu')."""
    from jax._src import xla_bridge  # NOTE: canonicalize_platform has no public export

    return xla_bridge.canonicalize_platform(jax.default_backend())


def _branch_for(platforms, platform):
    default = None
    for i, names in enumerate(platforms):
        if names is None:
            default = i
        elif platform in names:
            return i
    return default


@rule(platform_index_p, check=_platform_check)
def _platform_index(ctx, eqn):
    # lax.platform_dependent (jnp.diagonal, jnp.corrcoef, slogdet's gradient): the index
    # of the branch JAX's lowering picks for this backend, as a constant, so the cond it
    # feeds keeps that branch alone (the branches compute the same values by contract)
    i = _branch_for(eqn.params["platforms"], _platform())
    return bind("full", shape=(), value=int(i), dtype=np.dtype(np.int32))


# -- not yet supported -------------------------------------------------------------------

NOT_YET_SUPPORTED = {
    prims.custom_lin_p: "an internal of JAX's own linearization (jax.linearize, jax.grad); "
    "pass the undifferentiated function and differentiate with tracegraph",
}
