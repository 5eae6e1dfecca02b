"""Rules for JAX's elementwise primitives: arithmetic, math functions, comparisons, logic,
selection and dtype conversion; and the elementwise primitives with no mapping yet."""

from __future__ import annotations

import math

import jax.extend.core.primitives as prims
import numpy as np
from jax import lax

from ...core import bind
from ._rule import RuleTable, bool_only, cast, is_bool, is_float, scalar_like

RULES = RuleTable()
rule = RULES.register


def _same(op):
    return lambda ctx, eqn, *xs: bind(op, *xs)


# one tracegraph op with the same operands and no attributes
for _prim, _op in {
    lax.neg_p: "neg", lax.sqrt_p: "sqrt", lax.rsqrt_p: "rsqrt", lax.exp_p: "exp",
    lax.log_p: "log", lax.log1p_p: "log1p", lax.expm1_p: "expm1", lax.tanh_p: "tanh",
    lax.logistic_p: "sigmoid", lax.sin_p: "sin", lax.cos_p: "cos", lax.abs_p: "abs",
    lax.sign_p: "sign", lax.floor_p: "floor", lax.ceil_p: "ceil", lax.erf_p: "erf",
    lax.erfc_p: "erfc", lax.erf_inv_p: "erf_inv", lax.stop_gradient_p: "stop_gradient",
    lax.add_p: "add", lax.sub_p: "sub", lax.mul_p: "mul", lax.max_p: "maximum",
    lax.min_p: "minimum", lax.eq_p: "eq", lax.ne_p: "ne", lax.lt_p: "lt", lax.le_p: "le",
    lax.gt_p: "gt", lax.ge_p: "ge", lax.asin_p: "asin", lax.acos_p: "acos", lax.atan_p: "atan",
    lax.asinh_p: "asinh", lax.acosh_p: "acosh", lax.atanh_p: "atanh", lax.cbrt_p: "cbrt",
    lax.atan2_p: "atan2", lax.shift_left_p: "shift_left",
    lax.shift_right_arithmetic_p: "shift_right_arithmetic",
    lax.shift_right_logical_p: "shift_right_logical", lax.population_count_p: "population_count",
    lax.lgamma_p: "lgamma", lax.digamma_p: "digamma", lax.polygamma_p: "polygamma",
    lax.igamma_p: "igamma", lax.igammac_p: "igammac", lax.igamma_grad_a_p: "igamma_grad_a",
    lax.nextafter_p: "nextafter", lax.clz_p: "clz", lax.mulhi_p: "mulhi",
    # the sum of two cotangents, in jaxprs of jax.grad
    prims.add_jaxvals_p: "add",
}.items():
    rule(_prim)(_same(_op))


@rule(lax.bitcast_convert_type_p)
def _bitcast_convert_type(ctx, eqn, x):
    return bind("bitcast_convert_type", x, dtype=eqn.params["new_dtype"])


@rule(lax.square_p)
def _square(ctx, eqn, x):
    return bind("mul", x, x)


@rule(lax.integer_pow_p)
def _integer_pow(ctx, eqn, x):
    # lax's own lowering: square-and-multiply, then a reciprocal for negative powers.
    y = eqn.params["y"]
    if y == 0:
        return bind("full", shape=x.shape, value=1, dtype=x.dtype)
    neg, y = y < 0, abs(y)
    acc = None
    while y > 0:
        if y & 1:
            acc = x if acc is None else bind("mul", acc, x)
        y >>= 1
        if y > 0:
            x = bind("mul", x, x)
    if neg:
        one = bind("full", shape=acc.shape, value=1, dtype=acc.dtype)
        acc = bind("div", one, acc)
    return acc


@rule(lax.pow_p)
def _pow(ctx, eqn, x, y):
    # lax.pow(float, int) converts the exponent to the base's dtype when lowering
    return bind("pow", x, cast(y, x.dtype))


@rule(lax.exp2_p)
def _exp2(ctx, eqn, x):
    return bind("exp", bind("mul", x, scalar_like(x, math.log(2.0))))


@rule(lax.tan_p)
def _tan(ctx, eqn, x):
    return bind("div", bind("sin", x), bind("cos", x))


@rule(lax.sinh_p)
def _sinh(ctx, eqn, x):
    # (expm1(x) - expm1(-x)) / 2 keeps its digits near 0, unlike (exp(x) - exp(-x)) / 2
    d = bind("sub", bind("expm1", x), bind("expm1", bind("neg", x)))
    return bind("mul", d, scalar_like(x, 0.5))


@rule(lax.cosh_p)
def _cosh(ctx, eqn, x):
    s = bind("add", bind("exp", x), bind("exp", bind("neg", x)))
    return bind("mul", s, scalar_like(x, 0.5))


@rule(lax.is_finite_p)
def _is_finite(ctx, eqn, x):
    # x - x is 0 for finite x and NaN for inf and NaN
    return bind("eq", bind("sub", x, x), scalar_like(x, 0.0))


@rule(lax.div_p)
def _div(ctx, eqn, x, y):
    if not np.issubdtype(x.dtype, np.integer):
        return bind("div", x, y)
    # lax.div of integers rounds toward zero; floor_divide rounds down
    q = bind("floor_divide", x, y)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return q
    r = bind("remainder", x, y)
    inexact = bind("ne", r, scalar_like(r, 0))
    signs_differ = bind("ne", bind("lt", x, scalar_like(x, 0)), bind("lt", y, scalar_like(y, 0)))
    fix = bind("logical_and", inexact, signs_differ)
    return bind("where", fix, bind("add", q, scalar_like(q, 1)), q)


@rule(lax.rem_p)
def _rem(ctx, eqn, x, y):
    # lax.rem is C's fmod (the sign of the dividend); remainder is Python's (the divisor's)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return bind("remainder", x, y)
    r = bind("remainder", bind("abs", x), bind("abs", y))
    return bind("mul", bind("sign", x), r)


@rule(lax.round_p)
def _round(ctx, eqn, x):
    if int(eqn.params.get("rounding_method", 0)) == int(lax.RoundingMethod.TO_NEAREST_EVEN):
        return bind("round", x)
    # away from zero: trunc(x) + sign(x) where the fraction is exactly one half
    t = bind("mul", bind("sign", x), bind("floor", bind("abs", x)))
    half = bind("eq", bind("abs", bind("sub", x, t)), scalar_like(x, 0.5))
    return bind("where", half, bind("add", t, bind("sign", x)), bind("round", x))


for _prim, _op in {
    lax.and_p: "bitwise_and", lax.or_p: "bitwise_or", lax.xor_p: "bitwise_xor", lax.not_p: "bitwise_not"
}.items():
    rule(_prim)(_same(_op))


def _total_order_key(x):
    """``x`` as numbers whose plain order is XLA's total order of floats (-NaN < -inf <
    ... < -0.0 < +0.0 < ... < inf < NaN, NaNs by their bits): the float's bits as a signed
    integer, the magnitude bits flipped where the sign is set. Integers and bools are
    their own keys."""
    if not is_float(x.dtype):
        return x
    bits = bind("bitcast_convert_type", x, dtype=np.dtype(f"int{8 * np.dtype(x.dtype).itemsize}"))
    flipped = bind("bitwise_xor", bits, scalar_like(bits, np.iinfo(bits.dtype).max))
    return bind("where", bind("lt", bits, scalar_like(bits, 0)), flipped, bits)


def _total_order(op):
    return lambda ctx, eqn, x, y: bind(op, _total_order_key(x), _total_order_key(y))


def _real_only(eqn):
    if any(np.issubdtype(v.aval.dtype, np.complexfloating) for v in eqn.invars):
        return f"{eqn.primitive.name} of complex values: " + _COMPLEX
    return None


# the comparisons of sort's and searchsorted's comparators (jnp.searchsorted, digitize,
# interp, histogram, jax.random.choice with p=)
for _prim, _op in {lax.eq_to_p: "eq", lax.le_to_p: "le", lax.lt_to_p: "lt"}.items():
    rule(_prim, check=_real_only)(_total_order(_op))


@rule(lax.select_n_p)
def _select_n(ctx, eqn, pred, *cases):
    if len(cases) == 1:
        return cases[0]
    if is_bool(pred.dtype):
        false_case, true_case = cases
        return bind("select", pred, true_case, false_case)
    out = cases[0]
    for k, c in enumerate(cases[1:], start=1):
        out = bind("select", bind("eq", pred, scalar_like(pred, k)), c, out)
    return out


@rule(lax.clamp_p)
def _clamp(ctx, eqn, lo, x, hi):
    return bind("minimum", bind("maximum", x, lo), hi)


@rule(lax.convert_element_type_p)
def _convert(ctx, eqn, x):
    return cast(x, eqn.params["new_dtype"])


# -- not yet supported -------------------------------------------------------------------

_NO_OP = "no tracegraph op computes it yet"
_SPECIAL = "a special function with no tracegraph op yet"
_COMPLEX = "no tracegraph op builds, splits or conjugates complex values yet"

NOT_YET_SUPPORTED = {
    lax.bessel_i0e_p: _SPECIAL,
    lax.bessel_i1e_p: _SPECIAL,
    lax.zeta_p: _SPECIAL,
    lax.regularized_incomplete_beta_p: _SPECIAL,
    lax.reduce_precision_p: "rounding to a narrower float format has no tracegraph op",
    lax.complex_p: _COMPLEX,
    lax.conj_p: _COMPLEX,
    lax.real_p: _COMPLEX,
    lax.imag_p: _COMPLEX,
}
