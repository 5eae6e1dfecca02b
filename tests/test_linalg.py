"""tg.linalg (cholesky, solve_triangular, cho_solve; solve, inv, det, slogdet) against
jax.numpy.linalg and jax.scipy.linalg: values in tg.jit, the interpreter and tg.eager,
gradients against jax.grad, and the errors of operands that do not fit. The ops
themselves (`cholesky`, `triangular_solve`, `lu`) are in the op matrix
(tests/test_op_matrix.py, test_vjp_matrix.py); `lu`'s VJP is checked here too, as the
VJP matrix skips ops with integer outputs (its pivots and permutation)."""

import functools
import warnings

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir import lookup

from op_matrix import MODES, run_mode

RNG = np.random.default_rng(0)
M = RNG.uniform(-1.0, 1.0, (2, 3, 3)).astype(np.float32)
SPD = M @ np.swapaxes(M, -1, -2) + 3.0 * np.eye(3, dtype=np.float32)
SPD[..., 0, 2] += 0.25  # not quite symmetric: both sides symmetrize it first
B = RNG.uniform(-1.0, 1.0, (3, 2)).astype(np.float32)
V = RNG.uniform(-1.0, 1.0, (3,)).astype(np.float32)


def _all(lib, solve, cho_solve):
    def f(a, b, v):
        low, up = lib(a), lib(a, upper=True)
        return (
            low, up,
            solve(low, b, lower=True),                          # batch dims broadcast
            solve(low, v, lower=True, trans=1),                 # a vector
            solve(up, b, trans="T", unit_diagonal=True),
            solve(a[0], v, trans="C"),                          # reads the upper triangle
            cho_solve((low, True), b), cho_solve((up, False), v),
            lib(np.arange(1, 5).reshape(2, 2) * np.eye(2, dtype=np.int32)),  # ints: floats
        )

    return f


TG = _all(tg.linalg.cholesky, tg.linalg.solve_triangular, tg.linalg.cho_solve)
JAX = _all(jnp.linalg.cholesky, jsl.solve_triangular, jsl.cho_solve)


@pytest.mark.parametrize("mode", MODES)
def test_values_match_jax(mode):
    want = jax.jit(JAX)(SPD, B, V)
    got = run_mode(mode, TG, (SPD, B, V))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)


def _loglik(cholesky, solve, cho_solve, log):
    # a Gaussian log-likelihood (batched covariances), plus cho_solve and an upper factor
    def f(mu, cov, x):
        low = cholesky(cov)
        z = solve(low, x - mu, lower=True)
        half_logdet = log((low * np.eye(3, dtype=np.float32)).sum(axis=-1)).sum()
        w = cho_solve((low, True), x)
        return -0.5 * (z * z).sum() - half_logdet + (w * x).sum() + solve(
            cholesky(cov, upper=True), x, trans=1).sum()

    return f


def test_gradients_match_jax_grad():
    args = (0.1 * V, SPD, V)
    want = jax.jit(jax.grad(_loglik(jnp.linalg.cholesky, jsl.solve_triangular, jsl.cho_solve, jnp.log),
                            argnums=(0, 1, 2)))(*args)
    f = tg.grad(_loglik(tg.linalg.cholesky, tg.linalg.solve_triangular, tg.linalg.cho_solve, tg.log),
                argnums=(0, 1, 2))
    for got in (tg.jit(f)(*args), tg.trace(f, *args).interpret(*args)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)


def test_unsymmetrized_cholesky_reads_the_lower_triangle_and_so_does_its_gradient():
    """symmetrize_input=False: the upper triangle is never read, so its gradient is zero
    (JAX's rule puts the transpose of part of it there; the symmetric parts agree)."""
    a = SPD[0]
    w = np.arange(9.0, dtype=np.float32).reshape(3, 3)

    def loss(cholesky):
        return lambda a: (cholesky(a, symmetrize_input=False) * w).sum()

    garbled = a + np.triu(np.full((3, 3), 5.0, np.float32), 1)
    np.testing.assert_allclose(tg.jit(lambda a: tg.linalg.cholesky(a, symmetrize_input=False))(garbled),
                               jnp.linalg.cholesky(a, symmetrize_input=False), rtol=1e-6)
    got, want = tg.grad(loss(tg.linalg.cholesky))(a), jax.jit(jax.grad(loss(jnp.linalg.cholesky)))(a)
    assert not np.triu(np.asarray(got), 1).any()
    np.testing.assert_allclose(got + got.T, want + want.T, rtol=1e-5, atol=1e-6)


def test_shapes_that_do_not_fit_are_shape_errors_naming_the_op():
    with pytest.raises(tg.ShapeError, match=r"cholesky.*square matrices.*f32\[2,3\]"):
        tg.linalg.cholesky(np.ones((2, 3), np.float32))
    with pytest.raises(tg.ShapeError, match=r"cholesky.*square matrices.*f32\[4\]"):
        tg.jit(tg.linalg.cholesky)(np.ones(4, np.float32))
    with pytest.raises(tg.ShapeError, match=r"triangular_solve.*3 rows"):
        tg.jit(tg.linalg.solve_triangular)(np.eye(3, dtype=np.float32), np.ones((2, 2), np.float32))
    with pytest.raises(tg.ShapeError, match=r"triangular_solve.*square matrices"):
        tg.linalg.solve_triangular(np.ones((2, 3), np.float32), np.ones(2, np.float32))
    with pytest.raises(tg.ShapeError, match=r"solve_triangular: invalid trans=3"):
        tg.linalg.solve_triangular(SPD[0], V, trans=3)
    with pytest.raises(tg.ShapeError, match=r"cholesky needs real floating-point operands"):
        tg.trace(lambda a: bind("cholesky", a), np.eye(2, dtype=np.int32))


def test_batched_vector_right_hand_sides_follow_jax_and_warn():
    # jax.scipy's deprecated reading of b [k, n] with a [k, n, n]: k vectors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        want = jsl.solve_triangular(SPD, B.T, lower=True)
    with pytest.warns(FutureWarning, match="batched 1D solves"):
        got = tg.linalg.solve_triangular(SPD, B.T, lower=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- LU: solve, inv, det, slogdet ---------------------------------------------------------

# well conditioned, with small diagonals (so row swaps); determinants of both signs
SQ = (RNG.uniform(-1.0, 1.0, (2, 4, 4)) + 2.0 * np.eye(4)[::-1]).astype(np.float32)
SQ[1] = SQ[1, [1, 0, 2, 3]]
B4 = RNG.uniform(-1.0, 1.0, (4, 3)).astype(np.float32)
V4 = RNG.uniform(-1.0, 1.0, (4,)).astype(np.float32)


def _lu_all(linalg):
    def f(a, b, v):
        sign, logabsdet = linalg.slogdet(a)
        return (
            linalg.solve(a, b),                                  # batch dims broadcast
            linalg.solve(a[0], v),                               # a vector
            linalg.inv(a), linalg.det(a), sign, logabsdet,
            linalg.inv((3 * a).astype(np.int32)),                # ints: floats
            linalg.slogdet(a[0] * 0),                            # singular: 0, -inf
        )

    return f


@functools.cache
def _lu_want():
    return jax.tree_util.tree_leaves(jax.jit(_lu_all(jnp.linalg))(SQ, B4, V4))


@pytest.mark.parametrize("mode", MODES)
def test_solve_inv_det_slogdet_match_jax(mode):
    want = _lu_want()
    got = jax.tree_util.tree_leaves(run_mode(mode, _lu_all(tg.linalg), (SQ, B4, V4)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)


def _lu_loss(linalg):
    def f(a, b, v):
        return ((linalg.solve(a, b) ** 2).sum() + (linalg.solve(a[0], v) * v).sum()
                + (linalg.inv(a) * b[:, :1]).sum() + linalg.det(a).sum() + linalg.slogdet(a)[1].sum())

    return f


def test_solve_inv_det_slogdet_gradients_match_jax_grad():
    want = jax.jit(jax.grad(_lu_loss(jnp.linalg), argnums=(0, 1, 2)))(SQ, B4, V4)
    got = tg.jit(tg.grad(_lu_loss(tg.linalg), argnums=(0, 1, 2)))(SQ, B4, V4)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)


def test_lu_vjp_matches_jax_vjp_and_finite_differences():
    """The VJP of the lu op (the cotangent of its packed factors) against jax.vjp of
    lax.linalg.lu and float64 finite differences, on the op record's batched square,
    tall and wide samples."""
    samples = {s.name: s.args[0] for s in lookup("lu").samples()}
    rng = np.random.default_rng(0)
    eps = 1e-6
    with jax.enable_x64(True):
        a = [jnp.asarray(samples[name], jnp.float64) for name in ("batch", "tall", "wide")]
        c, u = ([rng.normal(size=x.shape) for x in a] for _ in range(2))
        got = tg.jit(lambda a, c: [tg.vjp(lambda x: bind("lu", x)[0], x)[1](ct)[0] for x, ct in zip(a, c)])(a, c)

        @jax.jit
        def jax_vjp_and_jvp(a, c, u):
            lu = lambda x: jax.lax.linalg.lu(x)[0]  # noqa: E731
            return ([jax.vjp(lu, x)[1](ct)[0] for x, ct in zip(a, c)],
                    [(lu(x + eps * d) - lu(x - eps * d)) / (2 * eps) for x, d in zip(a, u)])

        want, jvps = jax_vjp_and_jvp(a, c, u)
        for g, w, jvp, ct, d in zip(got, want, jvps, c, u):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(float(jnp.vdot(d, g)), float(jnp.vdot(jvp, ct)), rtol=1e-6)


def test_non_square_solve_inv_det_are_shape_errors_naming_the_function():
    with pytest.raises(tg.ShapeError, match=r"solve needs a of square matrices.*\(2, 3\)"):
        tg.linalg.solve(np.ones((2, 3), np.float32), np.ones(2, np.float32))
    with pytest.raises(tg.ShapeError, match=r"inv needs a of square matrices.*\(2, 3\)"):
        tg.jit(tg.linalg.inv)(np.ones((2, 3), np.float32))
    with pytest.raises(tg.ShapeError, match=r"det needs a of square matrices.*\(4,\)"):
        tg.linalg.det(np.ones(4, np.float32))
    with pytest.raises(tg.ShapeError, match=r"slogdet needs a of square matrices"):
        tg.eager(tg.linalg.slogdet)(np.ones((3, 2), np.float32))
    with pytest.raises(tg.ShapeError, match=r"solve needs b of shape \[4\] or \[\.\.\., 4, k\].*b\[\.\.\., None\]"):
        tg.linalg.solve(SQ, B4.T[:2])  # jax.numpy's old batch of vectors
