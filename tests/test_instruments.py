"""Observability: interpreter profile and hooks, NaN location (interpreter and
tg.jit(debug_nans=True)), Graphviz rendering, and the retrace log."""

import inspect
import logging
import os
import shutil

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.ir import graphviz


def mlp(x, w1, w2):
    with tg.scope("fc1"):
        h = tg.relu(x @ w1)
    with tg.scope("fc2"):
        return tg.tanh(h @ w2)


def mlp_args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4, 8), dtype=np.float32),
            rng.standard_normal((8, 16), dtype=np.float32),
            rng.standard_normal((16, 2), dtype=np.float32))


# -- profile -------------------------------------------------------------------------------
def test_profile_times_every_node_with_totals_by_op_and_scope():
    args = mlp_args()
    g = tg.trace(mlp, *args)
    prof = tg.profile(g, *args, repeat=2)
    assert prof.runs == 2 and len(prof.entries) == len(g.nodes) == 4
    assert all(e.calls == 2 and e.self_time > 0 for e in prof.entries.values())
    ops = {op: nodes for op, nodes, calls, secs in prof.by_op()}
    assert ops == {"matmul": 2, "relu": 1, "tanh": 1}
    scopes = {s: n for s, n, secs in prof.by_scope()}
    assert scopes == {"fc1": 2, "fc2": 2}
    assert abs(sum(secs for *_, secs in prof.by_op()) - prof.total) < 1e-9
    table = str(prof)
    for word in ("profile: 2 run(s), 4 nodes", "slowest nodes", "by op:", "by scope", "matmul",
                 "fc1", "test_instruments.py"):
        assert word in table, table


def test_profile_reaches_into_loops_without_double_counting():
    def f(x):
        return tg.scan(lambda c, xi: (tg.sin(c) + xi, c * 2.0), x[0], x)

    x = np.ones((5, 3), np.float32)
    jf = tg.jit(f)
    prof = jf.profile(x)
    by_op = {op: (nodes, calls) for op, nodes, calls, _ in prof.by_op()}
    assert by_op["sin"] == (1, 5) and by_op["scan"] == (1, 1)
    scan_entry = next(e for e in prof.entries.values() if e.node.op == "scan")
    assert scan_entry.self_time < scan_entry.total  # its body's nodes are timed on their own
    assert "sin" in prof.table() and "@body" in prof.table()


def test_interpret_accumulates_into_a_profile():
    args = mlp_args()
    jf = tg.jit(mlp)
    prof = tg.Profile()
    jf.interpret(*args, profile=prof)
    jf.interpret(*args, profile=prof)
    assert prof.runs == 2 and {e.calls for e in prof.entries.values()} == {2}


# -- hooks -------------------------------------------------------------------------------------
def test_watch_by_op_scope_and_node():
    args = mlp_args()
    jf = tg.jit(mlp)
    g = jf.trace(*args)
    by_op, by_scope = tg.Watch(op="matmul"), tg.Watch(scope="fc2")
    by_node = tg.Watch(node=g.nodes[1].outputs[0])  # a Value selects its producer
    out = jf.interpret(*args, hooks=[by_op, by_scope, by_node])
    x, w1, w2 = args
    assert [n.op for n, _ in by_op.records] == ["matmul", "matmul"]
    np.testing.assert_allclose(by_op.values[0], x @ w1, rtol=1e-5)
    assert [n.op for n, _ in by_scope.records] == ["matmul", "tanh"]
    np.testing.assert_allclose(by_scope.values[-1], out)
    assert [n.op for n, _ in by_node.records] == ["relu"]
    nested = tg.Watch(scope="fc")  # a scope matches itself and nested scopes, not prefixes
    jf.interpret(*args, hooks=[nested])
    assert nested.records == []


def test_the_interpreter_resolves_each_nodes_compiled_op_once(monkeypatch):
    """Each node runs the op compiled by itself for the node's input types, resolved on
    the graph's first run: later runs call no op's Python implementation, and a hook's
    replacement (a numpy array) still runs."""
    from tracegraph.ir import lookup

    args = mlp_args()
    g = tg.trace(mlp, *args)
    want = np.asarray(g.interpret(*args))

    def not_called(*a, **k):
        raise AssertionError("an op's Python implementation ran again")

    for node in g.nodes:
        monkeypatch.setattr(lookup(node.op), "impl", not_called)
    np.testing.assert_array_equal(np.asarray(g.interpret(*args)), want)
    half = tg.Hook(lambda node, ins, outs: np.asarray(outs[0]) * np.float32(0.5), op="relu")
    h = np.maximum(args[0] @ args[1], 0) * 0.5
    np.testing.assert_allclose(np.asarray(g.interpret(*args, hooks=[half])), np.tanh(h @ args[2]),
                               rtol=1e-5, atol=1e-6)


def test_the_interpreter_gives_dying_buffers_to_outputs():
    """An operand at its last use, made by a node and held by nothing else, is donated
    to the node's executable (XLA writes the output into it); graph inputs, values a
    caller or a hook holds, and operands read twice never are, and results stay equal."""
    def f(x, w):
        h = tg.tanh(x @ w)
        h = h * 2.0 + 1.0
        e = tg.exp(h)
        return (e - h).sum(), h * h, x

    rng = np.random.default_rng(0)
    x, w = (jax.numpy.asarray(rng.standard_normal((16, 16), dtype=np.float32)) for _ in range(2))
    g = tg.trace(f, x, w)
    want = [np.asarray(v) for v in g(x, w)]
    for _ in range(3):  # the first run checks each node's outputs, later ones donate
        got = g.interpret(x, w)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6)
    assert not (x.is_deleted() or w.is_deleted()) and got[2] is x  # the inputs are the caller's
    plans = g._cache["interpreter_ops"]
    donated = {n.op: list(plans[id(n)][4] or ()) for n in g.nodes}
    # tanh, mul and add take their operand's buffer; exp does not (sub reads h after it),
    # nor mul(h, h) (one value twice), nor the matmul (a graph input)
    assert donated["tanh"] == [(0,)] and donated["add"] == [(0,)] and donated["sub"] == [(0,)]
    assert donated["exp"] == [] and donated["matmul"] == []
    # a hook may read a node's operands after it ran: no donation with hooks
    seen = []
    g2 = tg.trace(f, x, w)
    for _ in range(2):
        g2.interpret(x, w, hooks=[lambda node, ins, outs: seen.append(np.asarray(ins[0]).sum())])
    assert all(not plans2[4] for plans2 in g2._cache["interpreter_ops"].values())


def test_hook_replaces_a_value():
    args = mlp_args()
    jf = tg.jit(mlp)
    zero = tg.Hook(lambda node, ins, outs: np.zeros_like(outs[0]), op="relu", scope="fc1")
    out = jf.interpret(*args, hooks=[zero])
    np.testing.assert_allclose(out, np.zeros((4, 2)), atol=0)
    calls = []
    tg.Hook(lambda *a: calls.append(a), op="exp")  # selects nothing here
    picky = tg.Hook(lambda node, ins, outs: calls.append(node.op), where=lambda n: n.op.startswith("t"))
    jf.interpret(*args, hooks=[picky])
    assert calls == ["tanh"]


def test_hook_replacement_must_fit_the_node():
    args = mlp_args()
    bad = tg.Hook(lambda node, ins, outs: np.zeros(3, np.float32), op="relu")
    with pytest.raises(tg.Error, match=r"replaced an output of node relu .* f32\[4,16\]"):
        tg.jit(mlp).interpret(*args, hooks=[bad])


def test_plain_function_hooks_still_work():
    seen = []

    def hook(node, ins, outs):
        seen.append(node.op)

    tg.jit(mlp).interpret(*mlp_args(), hooks=[hook])
    assert seen == ["matmul", "relu", "matmul", "tanh"]


# -- NaN location ----------------------------------------------------------------------------
def nan_model(x):
    y = tg.exp(x)
    z = tg.log(y - 2.0)  # NaN where exp(x) < 2: the planted NaN
    return tg.sum(z * 1.0)


NAN_LINE = inspect.getsourcelines(nan_model)[1] + 2


def test_interpreter_check_nans_names_node_and_line():
    g = tg.trace(nan_model, tg.spec((2,)))
    with pytest.raises(tg.NaNError) as e:
        g.interpret(np.array([0.0, 1.0], np.float32), check_nans=True)
    msg = str(e.value)
    assert f"test_instruments.py:{NAN_LINE}" in msg and "(log)" in msg and "= log(" in msg


def test_jit_debug_nans_locates_the_first_bad_node():
    jf = tg.jit(nan_model, debug_nans=True)
    good = np.array([3.0, 4.0], np.float32)
    assert np.isfinite(jf(good))
    with pytest.raises(tg.NaNError) as e:
        jf(np.array([0.0, 4.0], np.float32))
    msg = str(e.value)
    assert f"test_instruments.py:{NAN_LINE}" in msg and "NaN produced by node" in msg and "log" in msg
    plain = tg.jit(nan_model)
    assert np.isnan(plain(np.array([0.0, 4.0], np.float32)))  # off by default


def test_debug_nans_inside_a_loop_body_and_a_scope():
    def f(x):
        def body(c, xi):
            with tg.scope("cell"):
                return c + tg.sqrt(xi), c

        return tg.scan(body, x[0] * 0, x)[0]

    line = inspect.getsourcelines(f)[1] + 3
    jf = tg.jit(f, debug_nans=True)
    with pytest.raises(tg.NaNError) as e:
        jf(np.array([[1.0], [-1.0], [4.0]], np.float32))
    msg = str(e.value)
    assert f"test_instruments.py:{line}" in msg and "sqrt" in msg and "scope cell" in msg


def test_debug_nans_reports_a_nan_input():
    jf = tg.jit(lambda x: x * 2.0, debug_nans=True)
    with pytest.raises(tg.NaNError, match="NaN in input %x"):
        jf(np.array([np.nan], np.float32))


def test_debug_nans_when_the_interpreter_does_not_reproduce(monkeypatch):
    jf = tg.jit(lambda x: x * 2.0, debug_nans=True)
    x = np.ones(2, np.float32)
    jf(x)
    monkeypatch.setattr(jf, "_jitted", lambda *a, **k: np.array([np.inf], np.float32))
    with pytest.raises(tg.NaNError, match="did not produce one"):
        jf(x)


# -- Graphviz ----------------------------------------------------------------------------------
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")


@needs_dot
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render(tmp_path, fmt):
    def f(x):
        with tg.scope("enc"):
            y = tg.cond(tg.sum(x) > 0, lambda u: u * 2.0, lambda u: -u, x)
        return tg.scan(lambda c, xi: (c + xi, c), y[0], y)

    g = tg.trace(f, tg.spec((3, 2)))
    path = g.render(tmp_path / f"g.{fmt}")
    data = open(path, "rb").read()
    if fmt == "svg":
        assert b"<svg" in data and b"enc" in data and b"cond" in data
    else:
        assert data.startswith(b"\x89PNG")


def test_render_without_dot_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere
    g = tg.trace(lambda x: x * 2.0, tg.spec((3,)))
    with pytest.raises(tg.Error, match=r"apt-get install graphviz.*package `graphviz`"):
        g.render(tmp_path / "g.svg")
    assert not os.path.exists(tmp_path / "g.svg")


def test_render_refuses_unknown_formats(tmp_path):
    g = tg.trace(lambda x: x * 2.0, tg.spec((3,)))
    with pytest.raises(tg.Error, match="format 'gif'"):
        graphviz.render(g, tmp_path / "g.gif")


# -- retrace log -----------------------------------------------------------------------------
def test_every_retrace_is_logged_with_what_changed(caplog):
    jf = tg.jit(lambda x, n: x * n, static_argnums=1)
    with caplog.at_level(logging.INFO, logger="tracegraph.jit"):
        jf(np.ones(2, np.float32), 2)
        jf(np.ones(3, np.float32), 2)
        jf(np.ones(3, np.float32), 3)
    messages = [r.getMessage() for r in caplog.records if r.name == "tracegraph.jit"]
    assert len(messages) == 2
    assert "x: f32[2] -> f32[3]" in messages[0] and "static argument 1: 2 -> 3" in messages[1]


def test_check_nans_on_the_optimized_graph_names_the_op_that_made_the_nan():
    # log(-1) has only constant inputs: constant folding would make it a NaN constant and
    # the NaN would be blamed on its consumer; non-finite results are not folded
    def f(x):
        bad = tg.log(tg.full((2,), -1.0))  # the NaN's line
        return x * bad

    jf = tg.jit(f)
    x = np.ones(2, np.float32)
    assert "log" in [n.op for n in jf.trace(x).nodes]
    with pytest.raises(tg.NaNError) as e:
        jf.interpret(x, check_nans=True)
    msg = str(e.value)
    assert "(log)" in msg and "test_instruments.py" in msg


def test_check_nans_names_a_nan_constant():
    c = np.array([1.0, np.nan], np.float32)
    jf = tg.jit(lambda x: x + c)
    with pytest.raises(tg.NaNError, match="NaN in constant 0"):
        jf.interpret(np.ones(2, np.float32), check_nans=True)
