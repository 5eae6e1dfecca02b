"""End-to-end reverse mode: tg.grad / value_and_grad / vjp against jax.grad in jit,
interpreter and define-by-run; composition; pytrees; backward graph provenance."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
import tracegraph.nn.functional as F

from op_matrix import MODES, run_mode

RNG = np.random.default_rng(0)


def rand(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def check_grad(tg_loss, jax_loss, args, mode, argnums=0, rtol=2e-5, atol=2e-6):
    want = jax.grad(jax_loss, argnums=argnums)(*args)
    got = run_mode(mode, tg.grad(tg_loss, argnums=argnums), args)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


# -- models --------------------------------------------------------------------------


def mlp_loss(params, x, labels):
    h = tg.relu(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return F.cross_entropy(logits, labels)


def mlp_loss_jax(params, x, labels):
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


@pytest.mark.parametrize("mode", MODES)
def test_mlp_softmax_cross_entropy(mode):
    params = {"w1": rand(8, 16, scale=0.3), "b1": rand(16), "w2": rand(16, 5, scale=0.3), "b2": rand(5)}
    x, labels = rand(4, 8), np.array([0, 3, 1, 4], np.int32)
    check_grad(mlp_loss, mlp_loss_jax, (params, x, labels), mode)


def convnet_loss(w, b, x):
    y = F.conv2d(x, w, b, stride=1, padding=1)
    y = F.max_pool2d(tg.tanh(y), 2)
    return tg.mean(y * y)


def convnet_loss_jax(w, b, x):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    y = jnp.tanh(y + b[None, :, None, None])
    y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return jnp.mean(y * y)


@pytest.mark.parametrize("mode", MODES)
def test_conv_pool_net(mode):
    w, b, x = rand(4, 3, 3, 3, scale=0.4), rand(4), rand(2, 3, 8, 8)
    check_grad(convnet_loss, convnet_loss_jax, (w, b, x), mode, argnums=(0, 1))


def rnn_loss(params, xs):
    h = tg.zeros((2, 6))
    total = 0.0
    for t in range(xs.shape[0]):  # Python loop: unrolled when traced
        h = tg.tanh(xs[t] @ params["wx"] + h @ params["wh"])
        total = total + tg.sum(h * h)
    return total


def rnn_loss_jax(params, xs):
    h = jnp.zeros((2, 6))
    total = 0.0
    for t in range(xs.shape[0]):
        h = jnp.tanh(xs[t] @ params["wx"] + h @ params["wh"])
        total = total + jnp.sum(h * h)
    return total


@pytest.mark.parametrize("mode", MODES)
def test_tanh_rnn_unrolled(mode):
    params = {"wx": rand(3, 6, scale=0.5), "wh": rand(6, 6, scale=0.5)}
    xs = rand(5, 2, 3)
    check_grad(rnn_loss, rnn_loss_jax, (params, xs), mode)


# -- API semantics ---------------------------------------------------------------------


def test_value_and_grad_has_aux_and_argnums():
    def f(x, y):
        loss = tg.sum(tg.sin(x) * y)
        return loss, {"double": loss * 2}

    x, y = rand(3), rand(3)
    (value, aux), (gx, gy) = tg.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    np.testing.assert_allclose(value, np.sum(np.sin(x) * y), rtol=1e-6)
    np.testing.assert_allclose(aux["double"], 2 * value, rtol=1e-6)
    np.testing.assert_allclose(gx, np.cos(x) * y, rtol=1e-6)
    np.testing.assert_allclose(gy, np.sin(x), rtol=1e-6)


def test_vjp_on_plain_arrays():
    x = rand(2, 3)
    out, pull = tg.vjp(lambda a: tg.exp(a) * 2, x)
    (dx,) = pull(np.ones((2, 3), np.float32))
    np.testing.assert_allclose(out, 2 * np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(dx, 2 * np.exp(x), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_second_order(mode):
    f = lambda x: tg.sin(x) * x * x  # noqa: E731
    fj = lambda x: jnp.sin(x) * x * x  # noqa: E731
    x = np.float32(0.7)
    got = run_mode(mode, tg.grad(tg.grad(f)), [x])
    np.testing.assert_allclose(got, jax.grad(jax.grad(fj))(x), rtol=1e-5)
    got3 = run_mode(mode, tg.grad(tg.grad(tg.grad(f))), [x])
    np.testing.assert_allclose(got3, jax.grad(jax.grad(jax.grad(fj)))(x), rtol=1e-4)


def test_closure_values_are_constants():
    y = rand(3)

    def outer(x):
        # differentiate w.r.t. x only; the closed-over `x2` is a constant, as in JAX
        x2 = x * 1.0
        return tg.grad(lambda a: tg.sum(a * x2))(x)

    x = rand(3)
    np.testing.assert_allclose(tg.jit(outer)(x), x, rtol=1e-6)
    np.testing.assert_allclose(tg.eager(outer)(x), x, rtol=1e-6)
    del y


def test_value_used_twice_accumulates():
    g = tg.grad(lambda x: tg.sum(x * x + x))(np.arange(3, dtype=np.float32))
    np.testing.assert_allclose(g, 2 * np.arange(3) + 1)


def test_unused_input_gets_zero_and_no_work():
    def f(x, y):
        return tg.sum(tg.exp(x))

    jf = tg.jit(tg.grad(f, argnums=1))
    g = jf(rand(3), rand(4))
    np.testing.assert_array_equal(g, np.zeros(4))
    ops = [n.op for n in jf.trace(rand(3), rand(4)).nodes]
    assert ops.count("exp") <= 1 and "mul" not in ops


def test_grad_needs_scalar_float_output():
    with pytest.raises(tg.Error, match="scalar float output"):
        tg.grad(lambda x: x * 2)(rand(3))
    with pytest.raises(tg.Error, match="float inputs"):
        tg.grad(lambda x: tg.sum(x * 1.0))(np.arange(3))


def test_backward_nodes_carry_forward_lines_and_scopes():
    def loss(w, x):
        with tg.scope("fc1"):
            h = x @ w
        return tg.sum(tg.tanh(h))

    first = inspect.getsourcelines(loss)[1]
    g = tg.trace(tg.grad(loss), tg.spec((3, 2)), tg.spec((4, 3)))
    back = [n for n in g.nodes if n.scope.startswith("grad/")]
    assert back, str(g)
    mm = [n for n in back if n.scope == "grad/fc1/matmul"]
    assert mm and all(n.location == f"test_autodiff.py:{first + 2}" for n in mm)
    tanh_back = [n for n in back if n.scope == "grad/tanh"]
    assert tanh_back and tanh_back[0].location == f"test_autodiff.py:{first + 3}"
    assert "grad/fc1/matmul" in str(g)


def test_grad_of_jit_and_jit_of_grad_agree():
    f = lambda x: tg.sum(tg.tanh(x) ** 3)  # noqa: E731
    x = rand(5)
    a = tg.jit(tg.grad(f))(x)
    b = tg.grad(tg.jit(f))(x)
    c = tg.eager(tg.grad(f))(x)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-6)
