"""tg.from_jax: JAX primitives mapped to tracegraph IR (each mapping against JAX itself in
jit, interpreter and define-by-run), gradients through converted code, the
missing-primitive report, and tg.to_jax. Flax models through tg.from_jax:
test_from_flax.py (it skips without Flax, an optional extra)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tracegraph as tg
from tracegraph.interop import missing_primitives
from tracegraph.ir.parser import text_constants

from op_matrix import MODES, modes_taking_turns, run_mode

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(dtype)


def ints(*shape, low=-5, high=5, dtype=np.int32):
    return RNG.integers(low, high, size=shape).astype(dtype)


def assert_tree_close(got, want, rtol=2e-5, atol=2e-6):
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        g, w = jnp.asarray(g), jnp.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (
            f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        )
        gn = np.asarray(g.astype(jnp.float32) if g.dtype == jnp.bfloat16 else g)
        wn = np.asarray(w.astype(jnp.float32) if w.dtype == jnp.bfloat16 else w)
        np.testing.assert_allclose(gn, wn, rtol=rtol, atol=atol, equal_nan=True)


# -- one case per primitive family: (name, JAX function, arguments) -------------------------

X = rand(3, 4)
XS = rand(2, 3, 4)
POS = rand(3, 4, low=0.2, high=2.0)
I = ints(3, 4)
IDX = np.array([2, -1, 0, 5], np.int32)
WHICH = ints(3, 4, low=0, high=3)
NONZERO = np.where(I == 0, 3, I[::-1]).astype(np.int32)
NONZERO[NONZERO == 0] = -2


def _switch(i, x):
    return lax.switch(i, [lambda v: v + 1.0, lambda v: v * 2.0, lambda v: -v], x)


def _max_pool(x, window, strides=None, padding="VALID"):
    """``flax.linen.max_pool`` (batch first, features last) in lax, without Flax."""
    strides = strides or (1,) * len(window)
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), padding)


def _avg_pool(x, window, strides=None, padding="VALID"):
    """``flax.linen.avg_pool`` (padding counted, as its default) in lax, without Flax."""
    strides = strides or (1,) * len(window)
    summed = lax.reduce_window(x, 0.0, lax.add, (1, *window, 1), (1, *strides, 1), padding)
    return summed / np.prod(window)


@jax.custom_vjp
def _clipped_sin(x):
    return jnp.sin(x)


_clipped_sin.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.clip(g * jnp.cos(x), -0.5, 0.5),))


CASES = [
    (
        "unary-math",
        lambda x: (
            jnp.exp(x)
            + jnp.log1p(x * x)
            + jnp.tanh(x)
            + jnp.sin(x) * jnp.cos(x)
            + jax.nn.sigmoid(x)
            + jnp.abs(x)
            + jnp.sign(x)
            + jnp.expm1(x)
            + jnp.exp2(x)
        ),
        (X,),
    ),
    (
        "positive-math",
        lambda x: (
            jnp.sqrt(x) + lax.rsqrt(x) + jnp.log(x) + x**2.5 + x**-3 + jnp.square(x) + x**0 + x**7
        ),
        (POS,),
    ),
    (
        "erf-family",
        lambda x: (
            lax.erf(x)
            + lax.erfc(x)
            + lax.erf_inv(jnp.tanh(x) * 0.9)
            + jax.nn.gelu(x, approximate=False)
        ),
        (X,),
    ),
    ("hyperbolic-tan", lambda x: jnp.sinh(x) + jnp.cosh(x) + jnp.tan(x * 0.3), (X,)),
    (
        "rounding",
        lambda x: (
            jnp.floor(x)
            + jnp.ceil(x)
            + jnp.round(x * 2)
            + lax.round(x * 2, lax.RoundingMethod.AWAY_FROM_ZERO)
        ),
        (X,),
    ),
    (
        "float-arith",
        lambda x, y: (
            (x + y) * (x - y) / (y + 3.0)
            + jnp.maximum(x, y)
            - jnp.minimum(x, y)
            + lax.rem(x, y + 3.0)
            + lax.pow(jnp.abs(x) + 1, y)
        ),
        (X, rand(3, 4)),
    ),
    (
        "int-arith",
        lambda a, b: (
            lax.div(a, b),
            lax.rem(a, b),
            a // b,
            a % b,
            a * b - a,
            ~a,
            -a,
            lax.pow(jnp.abs(a).astype(jnp.float32), b),
            jnp.abs(a),
        ),
        (I, NONZERO),
    ),  # integer division by zero is implementation-defined in XLA
    (
        "compare-logic",
        lambda x, y: ((x < y) & (x >= 0)) | ~(x == y) ^ (x != 0) | (x > y) & (y <= 1),
        (X, rand(3, 4)),
    ),
    (
        "where-clip-select",
        lambda x, y: (
            jnp.where(x > 0, x, y),
            jnp.clip(x, -0.5, 0.7),
            jnp.clip(x, y, y + 1),
            lax.select_n(WHICH, x, y, x * y),
            jnp.isfinite(x / (y - y.min())),
        ),
        (X, rand(3, 4)),
    ),
    (
        "convert",
        lambda x: (
            x.astype(jnp.int32),
            x.astype(jnp.bfloat16),
            (x > 0).astype(jnp.float32),
            x.astype(jnp.float16).astype(jnp.float32),
            x.astype(bool),
        ),
        (X,),
    ),
    (
        "shapes",
        lambda x: (
            x.reshape(4, 3),
            x.T,
            x[None, :, None],
            jnp.squeeze(x[:1]),
            jnp.broadcast_to(x[:, :1], (2, 3, 4)),
            jnp.flip(x, 1),
            jnp.concatenate([x, x * 2], 0),
            jnp.stack([x, x], 1),
            lax.reshape(x, (2, 6), dimensions=(1, 0)),
            jnp.split(x, [1, 3], axis=1),
        ),
        (X,),
    ),
    (
        "slices",
        lambda x: (x[1:, ::2], x[::-1], x[:, 1:3].sum(), lax.slice(x, (0, 1), (3, 4), (2, 2))),
        (X,),
    ),
    (
        "pad",
        lambda x, v: (
            jnp.pad(x, ((1, 2), (0, 1))),
            jnp.pad(x, 1, mode="edge"),
            lax.pad(x, 0.5, ((1, -1, 2), (-1, 2, 1))),
            lax.pad(x, v, ((0, 1, 1), (2, 0, 0))),
        ),
        (X, np.float32(-7.0)),
    ),
    (
        "iota-full",
        lambda x: (
            jnp.arange(12).reshape(3, 4) * x,
            lax.broadcasted_iota(jnp.int32, (2, 3), 1),
            jnp.zeros((2, 2)),
            jnp.full((3,), 7, jnp.int32),
            jnp.eye(3),
        ),
        (X,),
    ),
    (
        "reductions",
        lambda x, b: (
            x.sum(0),
            x.max(1),
            x.min(),
            x.prod(1),
            jnp.argmax(x, 1),
            jnp.argmin(x, 0),
            jnp.all(b, 1),
            jnp.any(b),
            (x > 0).sum(),
            x.mean(),
            jnp.var(x),
            jax.nn.logsumexp(x, 1),
            jnp.cumsum(x, 1),
            jnp.cumsum(x[:, ::-1], 0)[::-1],
        ),
        (X, rand(3, 4) > 0),
    ),
    (
        "dot",
        lambda a, b, c: (
            a @ b,
            jnp.einsum("bij,bjk->bik", XS, c),
            jnp.dot(a[0], b),
            a @ b[:, 0],
            jnp.einsum("ij,kj->ik", a, a),
            jnp.tensordot(XS, a, [[1, 2], [0, 1]]),
            lax.dot_general(
                a.astype(jnp.bfloat16),
                b.astype(jnp.bfloat16),
                (((1,), (0,)), ((), ())),
                preferred_element_type=jnp.float32,
            ),
        ),
        (X, rand(4, 5), rand(2, 4, 3)),
    ),
    (
        "gather",
        lambda x, i: (
            x[:, i],
            x[i % 3],
            jnp.take(x, i, axis=1, mode="clip"),
            jnp.take(x, i, axis=1),
            jnp.take_along_axis(x, jnp.abs(I) % 4, axis=1),
            x[i % 3, i % 4],
            x[jnp.array([[0, 1], [2, 0]])],
        ),
        (X, IDX),
    ),
    (
        "dynamic-slices",
        lambda x, s, u: (
            lax.dynamic_slice(x, (s, s + 1), (2, 2)),
            lax.dynamic_slice(x, (1, 9), (2, 2)),
            lax.dynamic_update_slice(x, u, (s, s * 3)),
            lax.dynamic_update_slice(x, u, (0, 1)),
            x[s],
            lax.dynamic_index_in_dim(x, s, 1),
        ),
        (X, np.int32(1), rand(2, 2)),
    ),
    (
        "conv",
        lambda x, w, w1: (
            lax.conv_general_dilated(
                x,
                w,
                (1, 2),
                "SAME",
                rhs_dilation=(2, 1),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            ),
            lax.conv_general_dilated(
                x[..., 0], w1, (2,), [(1, 0)], dimension_numbers=("NWC", "WIO", "NWC")
            ),
            lax.conv_general_dilated(
                jnp.transpose(x, (0, 3, 1, 2)),
                jnp.transpose(w, (3, 2, 0, 1)),
                (1, 1),
                [(0, 0), (1, 1)],
                lhs_dilation=(2, 1),
            ),
        ),
        (rand(2, 6, 5, 3), rand(3, 2, 3, 4), rand(3, 5, 2)),
    ),
    (
        "pooling",
        lambda x: (
            _max_pool(x, (2, 2), (2, 2)),
            _avg_pool(x, (3, 3), (1, 2), "SAME"),
            lax.reduce_window(x, jnp.inf, lax.min, (1, 2, 1, 1), (1, 1, 1, 1), "VALID"),
            _max_pool(x[:, :, 0], (3,), (2,)),
            lax.reduce_window(
                x, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), "VALID", window_dilation=(1, 2, 1, 1)
            ),
            lax.reduce_window(
                x,
                -jnp.inf,
                lax.max,
                (1, 2, 1, 1),
                (1, 1, 1, 1),
                [(0, 0), (1, 1), (0, 0), (0, 0)],
                base_dilation=(1, 2, 1, 1),
            ),
        ),
        (rand(2, 6, 7, 3),),
    ),
    (
        "int-pooling",
        lambda x: (
            lax.reduce_window(x, 0, lax.add, (2, 2), (1, 1), "VALID"),
            lax.reduce_window(x, jnp.iinfo(jnp.int32).min, lax.max, (2, 3), (1, 2), "SAME"),
        ),
        (I,),
    ),
    (
        "control-flow",
        lambda x, i: (
            lax.cond(x.sum() > 0, lambda v: v * 2.0, lambda v: v - 1.0, x),
            _switch(i, x),
            _switch(i + 5, x),
            lax.fori_loop(0, 3, lambda k, v: v * 0.5 + k, x),
            lax.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, c[1] * 1.5), (0, x))[1],
            lax.scan(lambda c, r: (c + r, c * r), jnp.zeros(4), x),
            lax.scan(lambda c, _: (c * 2, c), 1.0, None, 3),
            lax.map(jnp.sum, x),
        ),
        (X, np.int32(1)),
    ),
    (
        "calls",
        lambda x: (
            jax.jit(lambda v: v * 3.0)(x),
            jax.nn.relu(x),
            jax.nn.softplus(x),
            jax.checkpoint(lambda v: jnp.sin(v) * v)(x),
            _clipped_sin(x),
            jax.nn.softmax(x),
            jax.nn.log_softmax(x),
            lax.stop_gradient(x),
            jax.nn.one_hot(jnp.arange(3), 4),
        ),
        (X,),
    ),
    (
        "f64",
        lambda x: (jnp.exp(x) @ x.T, jnp.cumsum(x, 0), x.astype(jnp.float32)),
        (rand(3, 3).astype(np.float64),),
    ),
    (
        "bf16",
        lambda x: (
            jnp.tanh(x) * 2 + x.sum(),
            (x @ x.T).astype(jnp.float32),
            _max_pool(x[None, :, :, None], (2, 2)),
        ),
        (rand(4, 4).astype(jnp.bfloat16),),
    ),
]

_TOL = {
    "bf16": (2e-2, 2e-2),
    "erf-family": (1e-4, 1e-5),
    "conv": (1e-4, 1e-4),
    "pooling": (1e-5, 1e-5),
}


# each case in one mode by default, in all three with -m slow (the default run's budget)
@pytest.mark.parametrize("name,fn,args,mode", modes_taking_turns(CASES, [c[0] for c in CASES]))
def test_primitive_mappings_match_jax(name, fn, args, mode):
    x64 = any(np.asarray(a).dtype == np.float64 for a in args)
    with jax.enable_x64(x64):
        want = jax.jit(fn)(*args)
        got = run_mode(mode, tg.from_jax(fn, name=name), args)
        rtol, atol = _TOL.get(name, (2e-5, 2e-6))
        assert_tree_close(got, want, rtol, atol)


def test_every_case_uses_only_mapped_primitives():
    for name, fn, args in CASES:
        with jax.enable_x64(any(np.asarray(a).dtype == np.float64 for a in args)):
            assert missing_primitives(jax.make_jaxpr(fn)(*args)) == [], name


def test_converted_graphs_verify_and_parse_back():
    for name, fn, args in CASES:
        with jax.enable_x64(any(np.asarray(a).dtype == np.float64 for a in args)):
            g = tg.trace(tg.from_jax(fn, name=name), *args)
            g.verify()
            again = tg.parse(str(g), constants=text_constants(g))
            assert str(again) == str(g), name


def test_outer_scope_prefixes_from_jax_scope():
    apply = tg.from_jax(jnp.tanh)
    with_scope = tg.trace(lambda x: _scoped(apply, x), X)
    assert [n.scope for n in with_scope.nodes] == ["encoder.from_jax/tanh"]


def _scoped(fn, x):
    with tg.scope("encoder"):
        return fn(x)


# -- gradients ----------------------------------------------------------------------------------


GRAD_CASES = [
    (
        "elementwise",
        lambda x: jnp.sum(jnp.tanh(x) * jnp.exp(-x * x) + x**3 + jnp.sqrt(x * x + 1.0)),
    ),
    ("softplus-custom-jvp", lambda x: jnp.sum(jax.nn.softplus(x) + jax.nn.log_sigmoid(x))),
    # in-bounds indices: for clamped ones JAX's own gradient drops what its forward read
    (
        "indexing",
        lambda x: (
            jnp.sum(x[:, IDX % 4] ** 2)
            + jnp.sum(x[1] * x[2])
            + jnp.sum(jnp.take_along_axis(x, jnp.abs(I) % 4, 1))
        ),
    ),
    (
        "control-flow",
        lambda x: (
            jnp.sum(lax.scan(lambda c, r: (c * r + 1.0, jnp.sin(c)), jnp.ones(4), x)[1])
            + lax.cond(x[0, 0] > 0, lambda v: jnp.sum(v**2), lambda v: jnp.sum(v), x)
        ),
    ),
    (
        "shapes",
        lambda x: (
            jnp.sum(jnp.pad(x, 1) * 0.5)
            + jnp.sum(jnp.concatenate([x, x.T.reshape(3, 4)]) ** 2)
            + jnp.sum(jnp.cumsum(x, 1) ** 2)
            + jnp.max(x)
            + jnp.sum(lax.dynamic_slice(x, (1, 1), (2, 2)) ** 2)
        ),
    ),
    ("remat", lambda x: jnp.sum(jax.checkpoint(lambda v: jnp.sin(v) @ v.T)(x))),
    (
        "scatter",
        lambda x: (
            jnp.sum(jnp.sin(x.at[1, IDX].set(x[0, 0] * 2.0)))
            + jnp.sum(x.at[IDX].add(x[2]) ** 2)
            + jnp.sum(x.at[:, IDX].max(0.5) * x)
            + jnp.sum(jax.ops.segment_sum(x * x, jnp.array([0, 2, 0]), num_segments=3))
            + jnp.sum(jax.vmap(lambda r, i: lax.dynamic_slice(r, (i,), (2,)))(x, jnp.array([0, 1, 2])) ** 2)
        ),
    ),
]


@pytest.mark.parametrize("name,fn,mode", modes_taking_turns(GRAD_CASES, [c[0] for c in GRAD_CASES]))
def test_grad_of_converted_function_matches_jax(name, fn, mode):
    got = run_mode(mode, tg.grad(tg.from_jax(fn, name=name)), (X,))
    assert_tree_close(got, jax.grad(fn)(X), 1e-5, 1e-5)


def test_custom_vjp_rule_is_kept():
    # the custom rule (a clipped gradient), not the derivative of the primal
    f = lambda x: jnp.sum(_clipped_sin(x) * 3.0)  # noqa: E731
    got = tg.grad(tg.from_jax(f))(X)
    np.testing.assert_allclose(got, np.clip(3.0 * np.cos(X), -0.5, 0.5), rtol=1e-6)
    np.testing.assert_allclose(got, jax.grad(f)(X), rtol=1e-6)


# -- errors and edges ---------------------------------------------------------------------------


def _uses_unsupported(x):
    y = lax.bessel_i0e(x) + lax.zeta(x * x + 2.0, x * x + 1.0)
    z = lax.cond(x[0, 0] > 0, lambda v: lax.bessel_i0e(v), lambda v: v, x)  # nested
    w = lax.bessel_i1e(x * x + 1.0)
    return y + z + w + lax.zeta(x * x + 3.0, x * x + 1.0)


def test_missing_primitives_are_all_listed_with_user_line():
    f = tg.from_jax(_uses_unsupported)
    with pytest.raises(tg.TracingError) as e:
        tg.trace(lambda x: f(x) * 2.0, X)
    msg = str(e.value)
    for prim in ("bessel_i0e (2 uses)", "zeta (2 uses)", "bessel_i1e (1 use)"):
        assert prim in msg, msg
    assert "special function" in msg
    assert re.search(r"test_from_jax\.py:\d+", msg), msg


def test_nothing_is_emitted_when_a_primitive_is_missing():
    f = tg.from_jax(_uses_unsupported)

    def g(x):
        y = x + 1.0
        try:
            f(y)
        except tg.TracingError:
            pass
        return y

    assert [n.op for n in tg.trace(g, X).nodes] == ["add"]


def test_jax_errors_become_tracing_errors():
    f = tg.from_jax(lambda a, b: a @ b)
    with pytest.raises(tg.TracingError, match="JAX could not trace"):
        tg.trace(f, X, X)


def test_outside_any_trace_it_just_runs_jax():
    calls = []

    def f(x):
        calls.append(type(x))
        return jnp.sin(x)

    out = tg.from_jax(f)(X)
    assert isinstance(out, jax.Array) and calls == [np.ndarray]
    np.testing.assert_allclose(out, np.sin(X), rtol=1e-6)


def test_inside_jax_transformations_it_just_runs_jax():
    f = tg.from_jax(jnp.sin)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda x: f(x).sum()))(X), np.cos(X), rtol=1e-6)


def test_pytrees_in_and_out_and_constants():
    table = jnp.arange(12.0).reshape(3, 4)  # closed over: a constant of the jaxpr

    def f(d, scale):
        return {"sum": d["a"] + table, "pair": (d["b"] * scale, d["a"].shape[0])}

    F = tg.from_jax(f)
    got = tg.jit(lambda d: F(d, 2.0))({"a": X, "b": POS})
    assert got["pair"][1] == 3
    assert_tree_close(got["sum"], X + table)
    assert_tree_close(got["pair"][0], POS * 2.0)


def test_to_jax_round_trip():
    fn = lambda x, w: jnp.tanh(x @ w).sum()  # noqa: E731
    w = rand(4, 2)
    g = tg.trace(tg.from_jax(fn), X, w)
    back = tg.to_jax(g)
    np.testing.assert_allclose(jax.jit(back)(X, w), fn(X, w), rtol=1e-6)
    assert_tree_close(jax.grad(back, argnums=1)(X, w), jax.grad(fn, argnums=1)(X, w), 1e-5, 1e-6)
    assert_tree_close(
        jax.vmap(back, in_axes=(0, None))(np.stack([X, X]), w), jnp.stack([fn(X, w)] * 2)
    )
