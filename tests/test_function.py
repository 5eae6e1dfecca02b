"""tg.function / tg.compile with state: the Variables and imperative tensors a recorded
function reads are inputs of its compiled path and those it assigns are outputs written
back after each call (never constants baked in), and a GradientTape works inside every
kind of recorded code (tg.function, tg.jit, tg.eager)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    return x, y


def test_closures_over_imperative_tensors_are_not_baked_in():
    # Before state capture, a tg.compile path kept the parameters it saw first.
    tg.manual_seed(0)
    model = tg.nn.Linear(2, 1)
    f = tg.compile(lambda x: model(x))
    x = np.ones((1, 2), np.float32)
    f(x), f(x)
    with tg.no_grad():
        model.weight.add_(1.0)
    np.testing.assert_allclose(f(x), model(x).numpy(), rtol=1e-6)
    v = tg.Variable([1.0, 2.0])
    g = tg.compile(lambda x: v * x)
    g(1.0), g(1.0)
    v.assign([5.0, 6.0])
    np.testing.assert_array_equal(g(2.0), [10.0, 12.0])
    assert g.compiled_calls >= 2


def test_train_step_matches_eager_over_100_steps():
    x, y = data()

    def make():
        return tg.Variable(np.zeros((3, 1), np.float32), name="w"), tg.Variable(np.zeros(1, np.float32), name="b")

    def step(w, b, x, y):
        with tg.GradientTape() as tape:
            loss = tg.mean(tg.square(x @ w + b - y))
        dw, db = tape.gradient(loss, [w, b])
        w.assign_sub(0.1 * dw)
        b.assign_sub(0.1 * db)
        return loss

    w, b = make()

    @tg.function
    def train_step(x, y):
        return step(w, b, x, y)

    we, be = make()
    for _ in range(100):
        loss = train_step(x, y)
        loss_e = step(we, be, x, y)
    np.testing.assert_allclose(w.numpy(), we.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(loss), float(loss_e.numpy()), rtol=1e-4, atol=1e-9)
    (path,) = train_step.paths()
    assert [t.name for t in path.state_in] == ["w", "b"]
    assert [t.name for t in path.state_out] == ["w", "b"]
    assert train_step.compiled_calls == 99
    text = str(path)
    assert "state read: w, b; written: w, b" in text and "grad/matmul" in text


def test_inplace_updates_are_state_outputs():
    acc = tg.tensor(np.zeros(3, np.float32))
    counter = tg.Variable(0, dtype="int32")

    @tg.compile
    def accumulate(x):
        acc.add_(x)
        counter.assign_add(1)
        return acc * 2

    for i in range(4):
        out = accumulate(np.full(3, 1.0, np.float32))
    np.testing.assert_array_equal(acc.numpy(), [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(out, [8.0, 8.0, 8.0])
    assert int(counter.numpy()) == 4


def test_guarded_state_writes_only_on_the_path_taken():
    v = tg.Variable(0.0)

    @tg.function
    def step(x):
        if tg.sum(x) > 0:
            v.assign_add(1.0)
        else:
            v.assign_sub(10.0)
        return v * 1.0

    for sign in [1, 1, -1, 1, -1, -1]:
        step(np.full(2, sign, np.float32))
    assert float(v.numpy()) == 3.0 - 30.0
    assert len(step.paths()) == 2


def test_state_type_change_records_again():
    w = tg.tensor([1.0, 2.0])
    f = tg.compile(lambda x: tg.sum(w) * x)
    assert float(f(1.0)) == 3.0 and float(f(1.0)) == 3.0
    w.data = tg.tensor([1.0, 2.0, 3.0])
    assert float(f(1.0)) == 6.0


def test_assign_inside_jit_is_refused():
    v = tg.Variable(1.0)

    def f(x):
        v.assign(x)
        return x

    with pytest.raises(tg.TracingError, match="tg.function"):
        tg.jit(f)(2.0)


def test_decorator_with_tensorflow_arguments():
    v = tg.Variable(2.0)

    @tg.function(jit_compile=True, reduce_retracing=True)
    def f(x):
        return v * x

    assert float(f(3.0)) == 6.0


@pytest.mark.parametrize("mode", ["jit", "eager", "compile", "function"])
def test_gradient_tape_inside_recorded_code(mode):
    def f(x):
        with tg.GradientTape() as t:
            t.watch(x)
            y = tg.sum(tg.sin(x) * x)
        return t.gradient(y, x)

    def second(x):
        with tg.GradientTape() as outer:
            outer.watch(x)
            with tg.GradientTape() as inner:
                inner.watch(x)
                y = tg.sum(x ** 3)
            s = tg.sum(inner.gradient(y, x))
        return outer.gradient(s, x)

    wrap = {"jit": tg.jit, "eager": tg.eager, "compile": tg.compile, "function": tg.function}[mode]
    x = np.linspace(0, 1, 4).astype(np.float32)
    want = jax.grad(lambda a: jnp.sum(jnp.sin(a) * a))(x)
    run = wrap(f)
    for _ in range(2):
        np.testing.assert_allclose(run(x), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(wrap(second)(x), 6 * x, rtol=1e-6)
