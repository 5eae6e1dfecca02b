"""Define-by-run (tg.eager): ops run at once on concrete values, Python control flow
works, and the recorded graph is the same IR tg.jit compiles."""

import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg


def collatz_like(x, n):
    # Python control flow on tensor values: impossible under tracing, natural here.
    steps = 0
    while float(tg.max(x) if hasattr(tg, "max") else x) > 1.0 and steps < n:
        x = tg.where(x > 1.0, x / 2, x)
        steps += 1
    return x * 1.0


def test_python_control_flow_on_values():
    def f(x):
        if float(x) > 0:
            return tg.exp(x)
        return -x

    run = tg.eager(f)
    assert float(run(np.float32(1.0))) == pytest.approx(np.e)
    assert [n.op for n in run.last_graph.nodes] == ["exp"]
    assert float(run(np.float32(-2.0))) == 2.0
    assert [n.op for n in run.last_graph.nodes] == ["neg"]


def test_loop_records_what_ran():
    def halve_until_small(x):
        n = 0
        while bool(x > 1.0):
            x = x / 2
            n += 1
        return x

    run = tg.eager(halve_until_small)
    out = run(np.float32(10.0))
    assert float(out) == pytest.approx(0.625)
    assert [n.op for n in run.last_graph.nodes].count("div") == 4


def test_same_ir_as_jit_for_straight_line_code():
    def f(x, y):
        return tg.tanh(x * y) + tg.sigmoid(y)

    x = np.linspace(-1, 1, 6).astype(np.float32).reshape(2, 3)
    y = np.ones((2, 3), np.float32)
    run = tg.eager(f)
    out = run(x, y)
    jf = tg.jit(f)
    np.testing.assert_allclose(out, jf(x, y), rtol=1e-6)
    assert str(run.last_graph) == str(jf.trace(x, y))


def test_tensors_are_concrete_and_printable():
    seen = {}

    def f(x):
        y = x * 2
        seen["repr"] = repr(y)
        seen["np"] = np.asarray(y)
        seen["item"] = (y + 0)[()] if False else None
        return y

    tg.eager(f)(np.arange(3, dtype=np.float32))
    assert "f32[3]" in seen["repr"] and "2." in seen["repr"]
    np.testing.assert_allclose(seen["np"], [0, 2, 4])


def test_last_graph_replays_in_both_backends():
    run = tg.eager(lambda x: tg.exp(x) - 1.0)
    x = np.array([0.5, 1.0], np.float32)
    out = run(x)
    g = run.last_graph
    np.testing.assert_allclose(g(x), out, rtol=1e-6)
    np.testing.assert_allclose(g.interpret(x), out, rtol=1e-6)


def test_plain_arrays_outside_any_trace():
    out = tg.exp(np.float32(0.0)) + 0
    assert float(out) == 1.0
    assert isinstance(tg.add(jnp.ones(2), 1.0), type(jnp.ones(2)))


def test_a_saved_graph_called_inside_a_trace_is_inlined():
    g = tg.trace(lambda x: tg.sin(x) * 2.0, tg.spec((3,)))
    x = np.linspace(0, 1, 3).astype(np.float32)
    want = np.sin(x) * 2 + 1
    f = tg.jit(lambda x: g(x) + 1.0)
    np.testing.assert_allclose(f(x), want, rtol=1e-6)
    assert [n.op for n in f.trace(x, optimized=False).nodes] == ["sin", "mul", "add"]
    run = tg.eager(lambda x: g(x) + 1.0)
    np.testing.assert_allclose(run(x), want, rtol=1e-6)
    assert [n.op for n in run.last_graph.nodes] == ["sin", "mul", "add"]
    np.testing.assert_allclose(tg.grad(lambda x: tg.sum(g(x)))(x), 2 * np.cos(x), rtol=1e-6)
