"""Rules for JAX's contractions: ``dot_general`` (a ``matmul`` where it is one) and
``conv_general_dilated``; the Cholesky and LU factorizations and triangular solves (the
ops of the same name); and the other decompositions, solves and FFTs, with no mapping yet."""

from __future__ import annotations

import jax.extend.core.primitives as prims
from jax import lax

try:  # no public export; a JAX without it has no such primitive to declare
    from jax._src.cudnn.scaled_matmul_stablehlo import (
        _scaled_matmul_p as scaled_matmul_p,
        _scaled_matmul_p_wrapper as scaled_matmul_wrapper_p,
    )
except ImportError:
    scaled_matmul_p = scaled_matmul_wrapper_p = None

from ...core import bind
from ._rule import RuleTable, cast, is_float, out_aval

RULES = RuleTable()
rule = RULES.register


def _is_matmul(x, y, contracting, batch):
    (lc, rc), (lb, rb) = contracting, batch
    k = len(lb)
    if k:
        return (tuple(lb) == tuple(rb) == tuple(range(k)) and x.ndim == y.ndim == k + 2
                and tuple(lc) == (k + 1,) and tuple(rc) == (k,))
    return (x.ndim >= 1 and 1 <= y.ndim <= 2 and tuple(lc) == (x.ndim - 1,) and tuple(rc) == (0,)
            and (y.ndim == 2 or x.ndim <= 2))


@rule(lax.dot_general_p)
def _dot_general(ctx, eqn, x, y):
    contracting, batch = eqn.params["dimension_numbers"]
    want = eqn.params.get("preferred_element_type")
    if want is not None:  # accumulate in the preferred type, as XLA does
        x, y = cast(x, want), cast(y, want)
    contracting = tuple(tuple(int(d) for d in c) for c in contracting)
    batch = tuple(tuple(int(d) for d in b) for b in batch)
    if _is_matmul(x, y, contracting, batch):
        out = bind("matmul", x, y)
    else:
        out = bind("dot_general", x, y, contracting=contracting, batch=batch)
    return cast(out, out_aval(eqn).dtype)


_SPATIAL_LETTERS = "HWDXYZUVABEFGJ"


def _conv_check(eqn):
    if not all(is_float(v.aval.dtype) for v in eqn.invars):
        return "convolution of non-float operands is not supported"
    return None


@rule(lax.conv_general_dilated_p, check=_conv_check)
def _conv(ctx, eqn, x, w):
    p = eqn.params
    dn = p["dimension_numbers"]
    n = x.ndim - 2
    letters = _SPATIAL_LETTERS[:n]

    def spec(dims, a, b):
        s = [""] * (n + 2)
        s[dims[0]], s[dims[1]] = a, b
        for i in range(n):
            s[dims[2 + i]] = letters[i]
        return "".join(s)

    lhs, rhs = spec(dn.lhs_spec, "N", "C"), spec(dn.rhs_spec, "O", "I")
    out = spec(dn.out_spec, "N", "C")
    # with string specs the spatial attributes follow the letters' order in rhs_spec
    order = sorted(range(n), key=lambda i: dn.rhs_spec[2 + i])
    want = p.get("preferred_element_type")
    if want is not None:
        x, w = cast(x, want), cast(w, want)
    y = bind(
        "conv_general",
        x,
        w,
        window_strides=tuple(p["window_strides"][i] for i in order),
        padding=tuple(tuple(p["padding"][i]) for i in order),
        lhs_dilation=tuple(p["lhs_dilation"][i] for i in order),
        rhs_dilation=tuple(p["rhs_dilation"][i] for i in order),
        lhs_spec=lhs,
        rhs_spec=rhs,
        out_spec=out,
        feature_group_count=p["feature_group_count"],
        batch_group_count=p["batch_group_count"],
    )
    return cast(y, out_aval(eqn).dtype)


# -- cholesky, triangular_solve, lu ------------------------------------------------------


def _real_floats(what):
    def check(eqn):
        if not all(is_float(v.aval.dtype) for v in eqn.invars):
            return f"{what} of complex (or non-float) matrices is not supported, only of real floats"
        return None

    return check


@rule(prims.cholesky_p, check=_real_floats("cholesky"))
def _cholesky(ctx, eqn, a):
    # the primitive reads the lower triangle (lax.linalg.cholesky symmetrizes before it
    # and takes the lower triangle after it, as equations of their own)
    return bind("cholesky", a)


@rule(prims.triangular_solve_p, check=_real_floats("triangular_solve"))
def _triangular_solve(ctx, eqn, a, b):
    p = eqn.params  # conjugate_a: a no-op on real matrices
    return bind("triangular_solve", a, b, left_side=bool(p["left_side"]), lower=bool(p["lower"]),
                transpose_a=bool(p["transpose_a"]), unit_diagonal=bool(p["unit_diagonal"]))


@rule(prims.lu_p, check=_real_floats("lu"))
def _lu(ctx, eqn, a):
    return bind("lu", a)


# -- not yet supported -------------------------------------------------------------------

_DECOMPOSITION = "a matrix decomposition with no tracegraph op yet"
_SOLVE = "a matrix solve with no tracegraph op yet"
_SCALED_MATMUL = "a block-scaled matmul (jax.nn.scaled_matmul, lowered only to GPU " \
    "libraries) with no tracegraph op yet"

NOT_YET_SUPPORTED = {
    prims.eig_p: _DECOMPOSITION,
    prims.eigh_p: _DECOMPOSITION,
    prims.hessenberg_p: _DECOMPOSITION,
    prims.qr_p: _DECOMPOSITION,
    prims.schur_p: _DECOMPOSITION,
    prims.svd_p: _DECOMPOSITION,
    prims.tridiagonal_p: _DECOMPOSITION,
    prims.householder_product_p: "building Q from Householder reflectors has no tracegraph op",
    prims.tridiagonal_solve_p: _SOLVE,
    lax.fft_p: "no FFT op yet",
}
# jax.nn.scaled_matmul: JAX lowers it for GPUs only (cuDNN's block-scaled dot)
for _prim in (scaled_matmul_p, scaled_matmul_wrapper_p):
    if _prim is not None:
        NOT_YET_SUPPORTED[_prim] = _SCALED_MATMUL
