"""Structured control flow (tg.cond / while_loop / fori_loop / scan) against jax.lax in
jit, interpreter and define-by-run; gradients; closures; errors."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

from op_matrix import MODES, run_mode

RNG = np.random.default_rng(1)


def rand(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flag", [True, False])
def test_cond_with_pytrees_and_closure(mode, flag):
    w = rand(3)

    def f(p, x, y):
        scale = x * 2.0  # an outer traced value used inside a branch
        return tg.cond(
            p,
            lambda d: {"a": tg.sin(d["x"]) * scale, "b": d["y"] + w},
            lambda d: {"a": d["x"] - d["y"], "b": d["y"] * 0.5},
            {"x": x, "y": y},
        )

    def fj(p, x, y):
        scale = x * 2.0
        return jax.lax.cond(
            p,
            lambda d: {"a": jnp.sin(d["x"]) * scale, "b": d["y"] + w},
            lambda d: {"a": d["x"] - d["y"], "b": d["y"] * 0.5},
            {"x": x, "y": y},
        )

    x, y = rand(3), rand(3)
    close(run_mode(mode, f, [np.bool_(flag), x, y]), fj(flag, x, y))


def test_cond_branch_type_mismatch_names_line():
    def f(x):
        return tg.cond(x.sum() > 0 if hasattr(x, "sum") else True, lambda: x, lambda: tg.astype(x, "i32"))

    with pytest.raises(tg.ShapeError, match=r"different types.*test_control_flow.py:\d+"):
        tg.trace(f, tg.spec((3,)))


def test_cond_joins_weak_python_scalars():
    g = tg.trace(lambda p, x: tg.cond(p, lambda: x * 2, lambda: 0.0), tg.spec((), "bool"), tg.spec((), "bf16"))
    assert str(g.out_types[0]) == "bf16[]"


@pytest.mark.parametrize("mode", MODES)
def test_while_loop(mode):
    def f(x, limit):
        return tg.while_loop(lambda c: c[1] < limit, lambda c: (c[0] * 1.5 + 1.0, c[1] + 1), (x, 0))

    def fj(x, limit):
        return jax.lax.while_loop(lambda c: c[1] < limit, lambda c: (c[0] * 1.5 + 1.0, c[1] + 1), (x, 0))

    x = rand(4)
    close(run_mode(mode, f, [x, np.int32(5)]), fj(x, np.int32(5)))


def test_while_loop_carry_type_error_names_line():
    def f(x):
        return tg.while_loop(lambda c: c.sum() < 10 if hasattr(c, "sum") else True, lambda c: tg.astype(c, "i32"), x)

    with pytest.raises(tg.ShapeError, match="carry"):
        tg.trace(f, tg.spec((3,)))


def test_while_loop_grad_is_a_clear_error():
    f = lambda x: tg.while_loop(lambda c: c[1] < 3, lambda c: (c[0] * 2.0, c[1] + 1), (x, 0))[0]  # noqa: E731
    with pytest.raises(tg.Error, match="while_loop is not supported"):
        tg.jit(tg.grad(f))(np.float32(1.0))


@pytest.mark.parametrize("mode", MODES)
def test_fori_loop_static_and_dynamic(mode):
    def f(x, n):
        a = tg.fori_loop(0, 5, lambda i, acc: acc * x + i, x * 0.0)
        b = tg.fori_loop(0, n, lambda i, acc: acc + x * i, x * 0.0)
        return a, b

    def fj(x, n):
        a = jax.lax.fori_loop(0, 5, lambda i, acc: acc * x + i, x * 0.0)
        b = jax.lax.fori_loop(0, n, lambda i, acc: acc + x * i, x * 0.0)
        return a, b

    x = rand(3) * 0.5
    close(run_mode(mode, f, [x, np.int32(4)]), fj(x, np.int32(4)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_pytrees(mode, reverse):
    def f(h0, xs, w):
        def step(carry, x):
            h, n = carry
            h = tg.tanh(h * w + x["a"]) + x["b"]
            return (h, n + 1), {"h": h, "sq": h * h}

        return tg.scan(step, (h0, 0), {"a": xs, "b": xs * 0.1}, reverse=reverse)

    def fj(h0, xs, w):
        def step(carry, x):
            h, n = carry
            h = jnp.tanh(h * w + x["a"]) + x["b"]
            return (h, n + 1), {"h": h, "sq": h * h}

        return jax.lax.scan(step, (h0, 0), {"a": xs, "b": xs * 0.1}, reverse=reverse)

    h0, xs, w = rand(3), rand(6, 3), rand(3)
    close(run_mode(mode, f, [h0, xs, w]), fj(h0, xs, w))


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_scan_rnn_matches_jax(mode):
    def loss(params, xs):
        def step(h, x):
            h = tg.tanh(h * params["wh"] + x * params["wx"])
            return h, tg.sum(h * h)

        _, ys = tg.scan(step, tg.zeros((4,)) if hasattr(tg, "zeros") else xs[0] * 0.0, xs)
        return tg.sum(ys)

    def loss_jax(params, xs):
        def step(h, x):
            h = jnp.tanh(h * params["wh"] + x * params["wx"])
            return h, jnp.sum(h * h)

        _, ys = jax.lax.scan(step, jnp.zeros((4,)), xs)
        return jnp.sum(ys)

    params = {"wh": rand(4), "wx": rand(4)}
    xs = rand(7, 4)
    got = run_mode(mode, tg.grad(loss), [params, xs])
    close(got, jax.grad(loss_jax)(params, xs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_cond_matches_jax(mode):
    def loss(x, y, p):
        return tg.sum(tg.cond(p, lambda: tg.sin(x) * y, lambda: x * x - y))

    def loss_jax(x, y, p):
        return jnp.sum(jax.lax.cond(p, lambda: jnp.sin(x) * y, lambda: x * x - y))

    x, y = rand(3), rand(3)
    for p in (True, False):
        got = run_mode(mode, tg.grad(loss, argnums=(0, 1)), [x, y, np.bool_(p)])
        close(got, jax.grad(loss_jax, argnums=(0, 1))(x, y, p))


def test_grad_of_static_fori_loop():
    f = lambda x: tg.fori_loop(0, 3, lambda i, a: tg.sin(a) * x, x)  # noqa: E731
    fj = lambda x: jax.lax.fori_loop(0, 3, lambda i, a: jnp.sin(a) * x, x)  # noqa: E731
    x = np.float32(0.8)
    close(tg.jit(tg.grad(f))(x), jax.grad(fj)(x))
    close(tg.eager(tg.grad(f))(x), jax.grad(fj)(x))


def test_eager_records_what_ran():
    def f(x):
        return tg.fori_loop(0, 3, lambda i, a: a * 2.0, x)

    run = tg.eager(f)
    run(np.float32(1.0))
    assert [n.op for n in run.last_graph.nodes] == ["mul", "mul", "mul"]
    jf = tg.jit(f)
    assert [n.op for n in jf.trace(np.float32(1.0)).nodes] == ["scan"]


def test_python_if_error_suggests_cond():
    def f(x):
        if x > 0:
            return x
        return -x

    line = inspect.getsourcelines(f)[1] + 1
    with pytest.raises(tg.TracingError, match=rf"test_control_flow.py:{line}.*tg.cond"):
        tg.jit(f)(np.float32(1.0))


def test_nested_control_flow_prints_and_runs():
    def f(x):
        def body(i, acc):
            return tg.cond(acc.sum() > 0 if hasattr(acc, "sum") else acc[0] > 0, lambda: acc - 1.0, lambda: acc + 2.0)

        return tg.fori_loop(0, 4, body, x)

    x = np.array([0.5, -1.0], np.float32)
    jf = tg.jit(f)
    text = str(jf.trace(x))
    assert "scan(" in text and "cond(" in text and "true_branch = graph" in text
    np.testing.assert_allclose(jf(x), jf.interpret(x))
    np.testing.assert_allclose(jf(x), tg.eager(f)(x))


@pytest.mark.slow  # about 12 s (the default run's 10-minute margin); scan round trips stay in the default run
def test_lstm_with_scan_graph_round_trips_and_runs_identically():
    """Issue 4's bar: an LSTM written with tg.scan prints, reloads from JSON and text,
    and its gradient graph runs identically in every mode."""
    import tracegraph.nn.functional as F

    model = tg.nn.LSTM(3, 5, key=tg.random.key(0))
    head = tg.nn.Linear(5, 4, key=tg.random.key(1))
    xs = rand(6, 2, 3)
    labels = np.array([1, 3], np.int32)

    def loss(model, head, xs, labels):
        ys, _ = model(xs)
        return F.cross_entropy(head(ys[-1]), labels)

    step = tg.jit(tg.value_and_grad(loss, argnums=(0, 1)))
    g = step.trace(model, head, xs, labels)
    text = str(g)
    assert "scan(" in text and "body = graph" in text
    via_json = tg.Graph.from_json(g.to_json())
    via_text = tg.parse(text)
    assert str(via_json) == text and str(via_text) == text
    want = step(model, head, xs, labels)
    for graph in (g, via_json, via_text):  # loaded graphs are called like the function
        close(graph(model, head, xs, labels), want)
        close(graph.interpret(model, head, xs, labels), want)
    close(tg.eager(tg.value_and_grad(loss, argnums=(0, 1)))(model, head, xs, labels), want)
