"""numpy and JAX arrays on either side of a Tensor become graph constants in every mode
(never a computation outside the graph, never a wrong gradient); JAX functions called on
Tensors raise `tg.TracingError` naming the user's line; the interpreter takes what jit
takes (weak arrays of any shape) and always returns arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

X = np.array([0.5, -1.0, 2.0], np.float32)
W = np.arange(9, dtype=np.float32).reshape(3, 3) / 10

MIXED = {
    "np + t": (lambda t: np.ones(3, np.float32) + t, lambda x: np.ones(3) + x),
    "t + np": (lambda t: t + np.ones(3, np.float32), lambda x: x + np.ones(3)),
    "jnp + t": (lambda t: jnp.ones(3) + t, lambda x: jnp.ones(3) + x),
    "t - jnp": (lambda t: t - jnp.ones(3), lambda x: x - jnp.ones(3)),
    "jnp * t": (lambda t: jnp.full(3, 2.0) * t, lambda x: jnp.full(3, 2.0) * x),
    "jnp / t": (lambda t: jnp.full(3, 2.0) / t, lambda x: jnp.full(3, 2.0) / x),
    "np @ t": (lambda t: W @ t, lambda x: W @ x),
    "jnp @ t": (lambda t: jnp.asarray(W) @ t, lambda x: jnp.asarray(W) @ x),
    "jnp ** t": (lambda t: jnp.full(3, 2.0) ** t, lambda x: jnp.full(3, 2.0) ** x),
    "jnp < t (where)": (lambda t: tg.where(jnp.zeros(3) < t, t, 0.0),
                        lambda x: jnp.where(jnp.zeros(3) < x, x, 0.0)),
}
MODES = ["jit", "interpret", "eager"]


def _run(mode, fn, x):
    if mode == "jit":
        return tg.jit(fn)(x)
    if mode == "interpret":
        return tg.jit(fn).interpret(x)
    return tg.eager(fn)(x)


@pytest.mark.parametrize("name", sorted(MIXED))
@pytest.mark.parametrize("mode", MODES)
def test_mixed_operands_stay_in_the_graph(name, mode):
    fn, ref = MIXED[name]
    np.testing.assert_allclose(_run(mode, fn, X), ref(jnp.asarray(X)), rtol=1e-6)
    want = jax.grad(lambda x: jnp.sum(ref(x) * jnp.arange(1.0, 4.0)))(jnp.asarray(X))
    got = _run(mode, tg.grad(lambda t: tg.sum(fn(t) * np.arange(1.0, 4.0, dtype=np.float32))), X)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_closed_over_jax_array_gets_the_right_gradient():
    bias = jnp.ones(3)
    g = tg.grad(lambda x: tg.sum(bias + x * 2.0))(X)
    np.testing.assert_allclose(g, [2.0, 2.0, 2.0])
    run = tg.eager(lambda x: bias + x * 2.0)
    run(X)
    assert [n.op for n in run.last_graph.nodes] == ["mul", "add"]  # bias is a constant input


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", [lambda t: jnp.sin(t), lambda t: jnp.sum(t), lambda t: jnp.add(jnp.ones(3), t)])
def test_jax_functions_on_tensors_name_the_user_line(mode, call):
    def f(t):
        return call(t)

    with pytest.raises(tg.TracingError, match=r"test_mixed_operands.py:\d+.*tg\.from_jax"):
        _run(mode, f, X)


def test_interpreter_takes_weak_arrays_and_returns_arrays():
    x = jnp.arange(3) * 1.5  # a weakly typed f32[3]
    assert x.weak_type
    f = tg.jit(lambda x: x * 2)
    np.testing.assert_allclose(f.interpret(x), f(x))
    loop = tg.jit(lambda x: tg.fori_loop(0, 3, lambda i, a: a * 2, x))
    np.testing.assert_allclose(loop.interpret(x), loop(x))
    const = tg.jit(lambda x: 3)
    out = const.interpret(np.ones(2, np.float32))
    assert isinstance(out, jax.Array) and out.dtype == jnp.int32 and out == 3
