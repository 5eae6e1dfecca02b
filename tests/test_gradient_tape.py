"""TensorFlow's imperative style: tg.Variable, tg.constant and tg.GradientTape, on the
same tape as PyTorch-style .backward() — gradients against jax.grad, TensorFlow's
recording rules (what the tape saw, what it watches), nested tapes for second order,
and create_graph=True for .backward()."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg


def mlp_loss(params, x, y):
    h = jnp.tanh(x @ params[0] + params[1])
    return jnp.mean((h @ params[2] - y) ** 2)


def test_gradients_match_jax_grad():
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(4, 8)).astype(np.float32), np.zeros(8, np.float32),
            rng.normal(size=(8, 1)).astype(np.float32)]
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    vs = [tg.Variable(a) for a in init]
    with tg.GradientTape() as tape:
        h = tg.tanh(tg.matmul(x, vs[0]) + vs[1])
        loss = tg.mean(tg.square(tg.matmul(h, vs[2]) - y))
    grads = tape.gradient(loss, vs)
    want = jax.grad(mlp_loss)([jnp.asarray(a) for a in init], x, y)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=2e-5, atol=1e-6)
    # the same structure again: the cached backward gives the same result
    with tg.GradientTape() as tape:
        h = tg.tanh(tg.matmul(x, vs[0]) + vs[1])
        loss = tg.mean(tg.square(tg.matmul(h, vs[2]) - y))
    again = tape.gradient(loss, {"w0": vs[0], "b": vs[1], "w1": vs[2]})
    assert set(again) == {"w0", "b", "w1"}
    np.testing.assert_allclose(again["w1"].numpy(), want[2], rtol=2e-5, atol=1e-6)


def test_seed_linear_regression_trains():
    # The TensorFlow program of the first seed article, tf -> tg.
    tf = tg
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 64).astype(np.float32)
    y = (2.0 * x + 0.7).astype(np.float32)
    tf.manual_seed(0)
    w = tf.Variable(tf.randn(1), name="weight")
    b = tf.Variable(tf.zeros([1]), name="bias")

    def linear_model(x):
        return w * x + b

    def loss(y_pred, y_true):
        return tf.mean(tf.square(y_pred - y_true))

    for _ in range(300):
        with tf.GradientTape() as tape:
            loss_value = loss(linear_model(x), y)
        gradients = tape.gradient(loss_value, [w, b])
        for g, v in zip(gradients, [w, b]):
            v.assign_sub(0.1 * g)
    assert abs(float(w.numpy()[0]) - 2.0) < 1e-2 and abs(float(b.numpy()[0]) - 0.7) < 1e-2
    assert w.name == "weight" and w.trainable


def test_only_what_the_tape_recorded():
    v = tg.Variable(2.0)
    before = v * 3.0  # computed before the tape opened: a constant to it
    assert not before.requires_grad
    with tg.GradientTape() as tape:
        z = before * v
    assert float(tape.gradient(z, v).numpy()) == 6.0  # d(6 v)/dv, not d(3 v^2)/dv
    with tg.GradientTape() as tape:
        with tape.stop_recording():
            w = v * v
        z = w + v
    assert float(tape.gradient(z, v).numpy()) == 1.0


def test_watch_rules():
    x = tg.constant(3.0)
    with tg.GradientTape() as tape:
        y = x * x
    assert tape.gradient(y, x) is None  # a constant is not watched
    with tg.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    assert float(tape.gradient(y, x).numpy()) == 6.0
    assert not x.requires_grad  # watching lasts while the tape is open

    v = tg.Variable(1.5)
    frozen = tg.Variable(4.0, trainable=False)
    with tg.GradientTape(watch_accessed_variables=False) as tape:
        y = v * frozen
    assert tape.gradient(y, [v, frozen]) == [None, None]
    with tg.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(frozen)
        y = v * frozen
    dv, dfrozen = tape.gradient(y, [v, frozen])
    assert dv is None and float(dfrozen.numpy()) == 1.5
    assert tape.watched_variables() == (frozen,)
    with tg.GradientTape() as tape:
        y = v * frozen
    assert tape.gradient(y, frozen) is None  # not trainable: not watched


def test_persistent_output_gradients_and_unconnected():
    v = tg.Variable([1.0, 2.0])
    u = tg.Variable([5.0])
    with tg.GradientTape(persistent=True) as tape:
        y = v * v
        s = tg.sum(tg.sin(v))
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(tape.gradient(s, v).numpy(), np.cos([1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient([y, s], v).numpy(), [2.0, 4.0] + np.cos([1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, v, output_gradients=[10.0, -1.0]).numpy(), [20.0, -4.0])
    assert tape.gradient(y, u) is None
    np.testing.assert_array_equal(tape.gradient(y, u, unconnected_gradients="zero").numpy(), [0.0])
    with tg.GradientTape() as once:
        y = v * v
    once.gradient(y, v)
    with pytest.raises(tg.TracingError, match="non-persistent"):
        once.gradient(y, v)


def test_jacobian_matches_jax():
    v = tg.Variable([0.5, -1.0, 2.0])
    with tg.GradientTape() as tape:
        y = tg.stack([v[0] * v[1], tg.sin(v[2]), tg.sum(v * v)])
    jac = tape.jacobian(y, v)

    def f(a):
        return jnp.stack([a[0] * a[1], jnp.sin(a[2]), jnp.sum(a * a)])

    np.testing.assert_allclose(jac.numpy(), jax.jacobian(f)(jnp.asarray([0.5, -1.0, 2.0])), rtol=1e-6)


def test_nested_tapes_second_order():
    x = tg.constant(3.0)
    with tg.GradientTape() as outer:
        outer.watch(x)
        with tg.GradientTape() as inner:
            inner.watch(x)
            y = x * x * x
        dy = inner.gradient(y, x)
    assert float(dy.numpy()) == 27.0
    assert float(outer.gradient(dy, x).numpy()) == 18.0

    w = tg.Variable([0.3, -0.7])
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = tg.sum(tg.tanh(w) ** 2)
        g = inner.gradient(y, w)
        gnorm = tg.sum(g * g)
    h = outer.gradient(gnorm, w)

    def f(a):
        g = jax.grad(lambda b: jnp.sum(jnp.tanh(b) ** 2))(a)
        return jnp.sum(g * g)

    np.testing.assert_allclose(h.numpy(), jax.grad(f)(jnp.asarray([0.3, -0.7])), rtol=1e-5)


def test_backward_create_graph_second_order():
    x = tg.tensor([1.5, -2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    first = x.grad
    assert first.grad_fn is not None
    np.testing.assert_allclose(first.numpy(), 3 * np.array([1.5, -2.0]) ** 2)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.5, -2.0]))


def test_variable_assign_and_errors():
    v = tg.Variable(np.zeros((2, 3), np.float32), name="v")
    v.assign(np.ones((2, 3)))
    v.assign_add(2.0)
    v.assign_sub(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(v.numpy(), np.full((2, 3), 2.5, np.float32))
    assert v.dtype == np.float32 and v.shape == (2, 3)
    with pytest.raises(tg.ShapeError, match="assign"):
        v.assign(np.ones(3))
    n = tg.Variable(3)
    with pytest.raises(tg.ShapeError, match="assign"):
        n.assign(1.5)
    assert tg.Variable(lambda: np.arange(3.0), dtype="float32").numpy().tolist() == [0.0, 1.0, 2.0]
    assert "tg.Variable 'v'" in repr(v)
    with pytest.raises(tg.TracingError, match="watch"):
        tg.GradientTape().watch(np.ones(3))


def test_variables_and_compiled_code():
    v = tg.Variable([1.0, 2.0])
    f = tg.jit(lambda a, x: a * x)
    np.testing.assert_array_equal(f(v, 3.0), [3.0, 6.0])  # an argument: its current value
    v.assign([5.0, 5.0])
    np.testing.assert_array_equal(f(v, 3.0), [15.0, 15.0])
    g = tg.jit(lambda x: v * x)  # a closure would bake the value in: refused
    with pytest.raises(tg.TracingError, match="tg.Variable"):
        g(2.0)


def test_constant():
    assert tg.constant(1.0).dtype == np.float32
    np.testing.assert_array_equal(tg.constant(7, shape=(2, 2)).numpy(), np.full((2, 2), 7))
    np.testing.assert_array_equal(tg.constant([1, 2, 3, 4], dtype="float32", shape=[2, 2]).numpy(),
                                  [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(tg.ShapeError):
        tg.constant([1, 2, 3], shape=(2, 2))
