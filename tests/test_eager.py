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


def test_library_block_runs_whole_from_the_third_call():
    # A tg.from_jax function (here optax's Adam, as tg.optim runs it) met at the same line
    # a third time runs as one compiled call; its nodes are recorded all the same, and
    # the results match the op-by-op calls and tg.jit.
    import optax

    tx = optax.adam(0.1)
    update = tg.from_jax(tx.update)

    def step(p, s, g):
        u, s = update(g, s, p)
        return jax_tree_add(p, u), s

    def jax_tree_add(p, u):
        return {k: p[k] + u[k] for k in p}

    p = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
    g = {"w": jnp.full((2, 3), 0.5), "b": -jnp.ones(3)}
    run, jitted = tg.eager(step), tg.jit(step)
    s_e = s_j = tx.init(p)
    p_e = p_j = p
    counts = []
    for _ in range(5):
        p_e, s_e = run(p_e, s_e, g)
        p_j, s_j = jitted(p_j, s_j, g)
        counts.append(len(run.last_graph.nodes))
        for k in p:
            np.testing.assert_allclose(p_e[k], p_j[k], rtol=1e-6, atol=1e-6)
    assert len(set(counts)) == 1  # the same nodes recorded, op by op or whole
    blocks = update._cache[next(iter(update._cache))].blocks
    (block,) = blocks.values()
    assert block.calls == 5 and block.compiled is not None


def test_library_block_under_grad_matches_jit():
    # A block inside a function being differentiated: its inner values are not kept, so
    # the backward rules read values recomputed op by op; gradients equal tg.jit's.
    softplus = tg.from_jax(lambda x: jnp.log1p(jnp.exp(x)) * 2.0)

    def loss(w, x):
        return tg.sum(softplus(x @ w) ** 2)

    w = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    x = jnp.linspace(0.0, 2.0, 8).reshape(2, 4)
    run, jitted = tg.eager(tg.value_and_grad(loss)), tg.jit(tg.value_and_grad(loss))
    want = jitted(w, x)
    for _ in range(4):
        got = run(w, x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)


def test_a_dropped_graph_is_freed_by_reference_counting_and_a_held_one_is_kept():
    import gc
    import weakref

    run = tg.eager(lambda x: tg.sin(x) * 2.0 + 1.0)
    run(jnp.ones(3))
    first = weakref.ref(run.last_graph.nodes[0].outputs[0])  # a value the first node made
    gc.disable()  # what frees the first graph must be reference counting, not the collector
    try:
        run(jnp.ones(3))
        assert first() is None
        held = run.last_graph
        node = held.nodes[1]
        run(jnp.ones(3))
        run(jnp.ones(3))
        # a graph (or a node) the user holds keeps its wiring
        assert all(v.producer is n for n in held.nodes for v in n.outputs)
        assert node.outputs[0].producer is node
        np.testing.assert_allclose(np.asarray(held(jnp.ones(3))), np.sin(1.0) * 2 + 1, rtol=1e-6)
    finally:
        gc.enable()
