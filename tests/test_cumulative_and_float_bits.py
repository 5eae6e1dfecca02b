"""The tg.* cumulative functions (``tg.cumsum``, ``tg.cumprod``, ``tg.cumulative_sum``,
``tg.cumulative_prod``, the methods, TF's ``tg.math.cumsum`` ...), the special functions
in ``tg.math`` and numpy's float-bit functions (``tg.copysign``, ``tg.signbit``,
``tg.spacing``, ``tg.nextafter``) against jax.numpy / jax.scipy / lax, in jit,
interpreter and define-by-run modes (the ops themselves are in the op matrix)."""

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
from jax import lax

import tracegraph as tg
from op_matrix import MODES, run_mode

X = (np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) - 7.5) / 6
XI = np.arange(2 * 3 * 4, dtype=np.int8).reshape(2, 3, 4) % 5 - 2


def _check(got, want, what):
    want = jnp.asarray(want)
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {got.shape} vs {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} vs {want.dtype}"
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=2e-6, atol=2e-6, err_msg=what)


def _all_modes(tg_fn, jnp_fn, *args):
    want = jnp_fn(*[jnp.asarray(a) for a in args])
    for mode in MODES:
        _check(run_mode(mode, tg_fn, args), want, mode)


CUMULATIVE = [
    ("cumsum-flat", tg.cumsum, jnp.cumsum),
    ("cumsum-axis", lambda x: tg.cumsum(x, axis=-1), lambda x: jnp.cumsum(x, axis=-1)),
    ("cumprod-axis", lambda x: tg.cumprod(x, 1), lambda x: jnp.cumprod(x, 1)),
    ("cumprod-dtype", lambda x: tg.cumprod(x, 0, dtype=np.float32), lambda x: jnp.cumprod(x, 0, dtype=np.float32)),
    ("cumulative_sum", lambda x: tg.cumulative_sum(x, axis=2), lambda x: jnp.cumulative_sum(x, axis=2)),
    ("cumulative_sum-initial", lambda x: tg.cumulative_sum(x, axis=0, include_initial=True),
     lambda x: jnp.cumulative_sum(x, axis=0, include_initial=True)),
    ("cumulative_prod-initial", lambda x: tg.cumulative_prod(x, axis=1, include_initial=True),
     lambda x: jnp.cumulative_prod(x, axis=1, include_initial=True)),
    ("method-cumsum", lambda x: x.cumsum(1), lambda x: x.cumsum(1)),
    ("method-cumprod", lambda x: x.cumprod(), lambda x: x.cumprod()),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", CUMULATIVE, ids=[c[0] for c in CUMULATIVE])
@pytest.mark.parametrize("x", [X, XI, XI > 0], ids=["f32", "i8", "bool"])
def test_cumulative_functions_match_jnp(name, tg_fn, jnp_fn, x):
    _all_modes(tg_fn, jnp_fn, x)


def _tf_exclusive(fn, identity):
    """TF's exclusive cumulative op, by hand: the inclusive one shifted along the axis."""

    def ref(x, axis, reverse):
        y = fn(x, axis=axis, reverse=reverse)
        pad = jnp.full_like(lax.slice_in_dim(y, 0, 1, axis=axis), identity)
        if reverse:
            return jnp.concatenate([lax.slice_in_dim(y, 1, None, axis=axis), pad], axis)
        return jnp.concatenate([pad, lax.slice_in_dim(y, 0, -1, axis=axis)], axis)

    return ref


TF_CUMULATIVE = [
    ("cumsum", tg.math.cumsum, lax.cumsum, 0.0),
    ("cumprod", tg.math.cumprod, lax.cumprod, 1.0),
    ("cumulative_logsumexp", tg.math.cumulative_logsumexp, lax.cumlogsumexp, -np.inf),
]


@pytest.mark.parametrize("name,tg_fn,lax_fn,identity", TF_CUMULATIVE, ids=[c[0] for c in TF_CUMULATIVE])
@pytest.mark.parametrize("exclusive,reverse", [(False, False), (False, True), (True, False), (True, True)])
def test_tf_cumulative_functions(name, tg_fn, lax_fn, identity, exclusive, reverse):
    ref = _tf_exclusive(lax_fn, identity) if exclusive else (lambda x, axis, reverse: lax_fn(x, axis, reverse))
    _all_modes(lambda x: tg_fn(x, axis=1, exclusive=exclusive, reverse=reverse),
               lambda x: ref(x, 1, reverse), X)


A = np.abs(X) + 0.3
SPECIAL = [
    ("lgamma", lambda a: tg.math.lgamma(a), jsp.gammaln),
    ("digamma", lambda a: tg.math.digamma(a), jsp.digamma),
    ("polygamma", lambda a: tg.math.polygamma(1, a), lambda a: jsp.polygamma(1, a)),
    ("igamma", lambda a: tg.math.igamma(a, a[::-1] + 0.5), lambda a: jsp.gammainc(a, a[::-1] + 0.5)),
    ("igammac", lambda a: tg.math.igammac(a, 2.0), lambda a: jsp.gammaincc(a, 2.0)),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", SPECIAL, ids=[c[0] for c in SPECIAL])
def test_special_functions_match_jax_scipy(name, tg_fn, jnp_fn):
    _all_modes(tg_fn, jnp_fn, A)


EDGES = np.array([1.5, -0.0, 0.0, -2.0, np.inf, -np.inf, np.nan, 1e-45, -3e38, 6.0], np.float32)
SIGNS = np.array([-1.0, 1.0, -0.0, 2.0, -1.0, 1.0, -1.0, -1.0, 0.0, np.inf], np.float32)
FLOAT_BITS = [
    ("signbit", tg.signbit, jnp.signbit, (EDGES,)),
    ("signbit-int", tg.signbit, jnp.signbit, (XI,)),
    ("copysign", tg.copysign, jnp.copysign, (EDGES, SIGNS)),
    ("copysign-scalar", lambda x: tg.copysign(x, -1.0), lambda x: jnp.copysign(x, -1.0), (EDGES,)),
    ("copysign-f16-f32", lambda x, y: tg.copysign(x.astype(np.float16), y),
     lambda x, y: jnp.copysign(x.astype(np.float16), y), (EDGES, SIGNS)),
    ("copysign-int", tg.copysign, jnp.copysign, (XI, EDGES[:4].reshape(4))),
    ("spacing", tg.spacing, jnp.spacing, (EDGES,)),
    ("spacing-f16", lambda x: tg.spacing(x.astype(np.float16)), lambda x: jnp.spacing(x.astype(np.float16)), (EDGES,)),
    ("nextafter", tg.nextafter, jnp.nextafter, (EDGES, SIGNS)),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn,args", FLOAT_BITS, ids=[c[0] for c in FLOAT_BITS])
def test_float_bit_functions_match_jnp_bit_for_bit(name, tg_fn, jnp_fn, args):
    want = jnp_fn(*[jnp.asarray(a) for a in args])
    for mode in MODES:
        got = run_mode(mode, tg_fn, args)
        assert got.dtype == want.dtype and got.shape == want.shape, (mode, got.dtype, want.dtype)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=mode)


def test_gradients_of_cumulative_functions_equal_jax_grad():
    def loss(m, cummax, x):
        return (m.cumprod(x, axis=1) * cummax(x, axis=2) + m.cumsum(x ** 2)[:24].reshape(x.shape)).sum()

    x = X + 0.01 * np.arange(4, dtype=np.float32)  # no ties (JAX splits the gradient at ties)
    want = jax.grad(lambda v: loss(jnp, lax.cummax, v))(x)
    got = tg.jit(tg.grad(lambda v: loss(tg, tg.frontend.fn_reduce.cummax, v)))(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_cumulative_errors_are_shape_errors():
    with pytest.raises(tg.ShapeError, match="cumlogsumexp needs a real floating operand"):
        tg.jit(lambda x: tg.math.cumulative_logsumexp(x))(XI)
    with pytest.raises(tg.ShapeError, match="rank >= 1"):
        tg.jit(lambda x: tg.math.cumprod(x))(np.float32(2.0))
    with pytest.raises(ValueError, match="needs an axis"):
        tg.cumulative_sum(X)
