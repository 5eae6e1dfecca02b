"""tg.debug.bisect: the first node where compiled and op-by-op runs, or float64 and the
program's own dtype, part ways, by local error (each node run on the reference values of
its inputs), with the node's op, scope and user line."""

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.ir import lookup

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 8)).astype(np.float32)
W = RNG.normal(size=(8, 5)).astype(np.float32)


def model(x, w):
    with tg.scope("enc"):
        h = tg.tanh(x @ w)
    y = tg.log(1.0 + h * h)  # the line of the injected divergence
    return (y * 1e6).sum()  # amplifies anything upstream: must not be blamed


LOG_LINE = model.__code__.co_firstlineno + 3


def run_plain_op_by_op(monkeypatch, name):
    """The interpreter runs op ``name`` through its plain implementation on concrete
    arrays rather than through the op compiled by itself, so an implementation skewed on
    concrete arrays only skews the op-by-op run."""
    from tracegraph.backends import interpreter

    compiled = interpreter.executable
    monkeypatch.setattr(interpreter, "executable",
                        lambda op, *a: None if op.name == name else compiled(op, *a))


@pytest.fixture
def eager_log_off_by_a_little(monkeypatch):
    """``log`` computed op by op (concrete arrays) is off by 1e-3; compiled (tracers)
    it is right: the divergence bisect must find."""
    op = lookup("log")
    impl = op.impl

    def skewed(x, **attrs):
        out = impl(x, **attrs)
        return out if isinstance(out, jax.core.Tracer) else out + np.float32(1e-3)

    monkeypatch.setattr(op, "impl", skewed)
    run_plain_op_by_op(monkeypatch, "log")


def test_agreeing_runs_report_no_divergence():
    report = tg.debug.bisect(model, X, W)
    assert not report.diverged and "every node agrees" in str(report)


def test_finds_an_injected_divergence_at_its_node_and_line(eager_log_off_by_a_little):
    report = tg.debug.bisect(model, X, W)
    assert report.diverged and report.node.op == "log"
    assert report.node.location == f"test_debug.py:{LOG_LINE}"
    # the amplifying multiply downstream has no local error: it is not blamed
    assert [w[1] for w in report.worst][:1] == ["log"]
    text = str(report)
    assert f"first diverging node: %4 = log at test_debug.py:{LOG_LINE}" in text
    assert report.error_ulps > 64 and report.got.shape == (4, 5)


def test_float64_reference_finds_lost_precision():
    def f(x):
        return tg.log(1.0 + x) - x  # log of a rounded 1 + x: the digits of x are gone

    report = tg.debug.bisect(f, np.full(4, 1e-4, np.float32), reference="float64")
    assert report.diverged and report.node.op == "log" and report.error_ulps > 100

    def g(x):
        return tg.log1p(x) * 2.0  # the stable form: within a few ULPs

    assert not tg.debug.bisect(g, np.full(4, 1e-4, np.float32), reference="float64").diverged

    def h(x):
        return tg.log1p(x) - x  # still cancels: the subtraction is where digits go

    report = tg.debug.bisect(h, np.full(4, 1e-4, np.float32), reference="float64")
    assert report.node.op == "sub"


def test_graphs_scopes_and_control_flow():
    g = tg.trace(model, X, W)
    report = tg.debug.bisect(g, X, W, reference="float64")
    assert not report.diverged

    def looped(x):
        return tg.scan(lambda c, r: (c + tg.sin(r), c), tg.zeros(8), x)[0]

    assert not tg.debug.bisect(looped, X).diverged
    assert not tg.debug.bisect(looped, X, reference="float64").diverged


def _skewed_log_loops():
    def scanned(x):
        return tg.scan(lambda c, r: (c + tg.log(1.0 + r * r), c), tg.zeros(8), x)[0]

    def looped(x):
        return tg.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, tg.log(1.0 + c[1] * c[1])),
                             (0, x))[1]

    def branched(x):
        return tg.cond(x.sum() < 1e9, lambda v: tg.sqrt(1.0 + tg.log(1.0 + v * v)), lambda v: v, x)

    return scanned, looped, branched


def test_control_flow_bodies_are_probed_to_the_diverging_node(eager_log_off_by_a_little):
    from tracegraph.core import execute

    execute._COMPILED.clear()  # no define-by-run compiled log from before the skew
    for fn, where, iteration in zip(_skewed_log_loops(), ("body", "body", "true_branch"), (0, 0, None)):
        report = tg.debug.bisect(fn, X)
        assert report.diverged and report.node.op in ("scan", "while_loop", "cond"), fn.__name__
        inner = report.innermost
        assert inner is not report and inner.node.op == "log" and inner.where == where
        assert inner.iteration == iteration and inner.error_ulps > 64
        text = str(report)
        assert f"inside its {where}" in text and "= log at test_debug.py:" in text


def test_a_loop_diverging_late_is_found_at_its_iteration(monkeypatch):
    op = lookup("sin")
    impl = op.impl

    def late(x, **attrs):  # op by op, off only on the carry of the third iteration
        out = impl(x, **attrs)
        if isinstance(out, jax.core.Tracer) or not 1.8 < float(np.min(x)) < 2.1:
            return out
        return out + np.float32(0.5)

    monkeypatch.setattr(op, "impl", late)
    run_plain_op_by_op(monkeypatch, "sin")
    from tracegraph.core import execute

    execute._COMPILED.clear()

    def f(x):  # carries 1.0, 1.42, 1.91, 2.38, 2.85
        return tg.fori_loop(0, 5, lambda i, c: tg.sin(c) * 0.5 + c, x)

    report = tg.debug.bisect(f, np.ones(3, np.float32))
    assert report.diverged and report.innermost.iteration == 2
    assert report.innermost.node.op == "sin"


def test_reloaded_reference_agrees_and_finds_what_a_round_trip_changed(monkeypatch):
    g = tg.trace(model, X, W)
    for via in ("file", "json", "text"):
        assert not tg.debug.bisect(g, X, W, reference="reloaded", via=via).diverged
    for fn in _skewed_log_loops():
        assert not tg.debug.bisect(fn, X, reference="reloaded").diverged
    # a round trip that loses a constant's digits (as a printer with too few would)
    text = str(g)
    assert "const 1.0" in text
    monkeypatch.setattr(tg.debug, "_reloaded", lambda graph, via: tg.parse(text.replace("const 1.0", "const 1.001")))
    report = tg.debug.bisect(g, X, W, reference="reloaded")
    assert report.diverged and report.node.op == "add" and report.error_ulps > 0
    # a round trip that changes an op is named before any value is compared
    monkeypatch.setattr(tg.debug, "_reloaded", lambda graph, via: tg.parse(text.replace("= tanh(", "= sin(")))
    report = tg.debug.bisect(g, X, W, reference="reloaded")
    assert report.node.op == "tanh" and report.changed == "op tanh became sin"
    assert "changed by the round trip: op tanh became sin" in str(report)


def test_bad_reference_is_an_error():
    with pytest.raises(tg.Error, match="reference must be"):
        tg.debug.bisect(model, X, W, reference="gpu")
    with pytest.raises(tg.Error, match="via must be"):
        tg.debug.bisect(model, X, W, reference="reloaded", via="pickle")


def test_the_command_bisects_a_saved_graph(tmp_path, eager_log_off_by_a_little, capsys):
    from tracegraph.cli import main

    tg.save(tg.trace(model, X, W), tmp_path / "model.tg")
    np.savez(tmp_path / "in.npz", x=X, w=W)
    status = main(["bisect", str(tmp_path / "model.tg"), "--inputs", str(tmp_path / "in.npz")])
    out = capsys.readouterr().out
    assert status == 3 and f"= log at test_debug.py:{LOG_LINE}" in out


def test_the_command_bisects_against_the_reloaded_graph(tmp_path, capsys):
    from tracegraph.cli import main

    tg.save(tg.trace(model, X, W), tmp_path / "model.tg")
    np.savez(tmp_path / "in.npz", x=X, w=W)
    for via in ("file", "text"):
        status = main(["bisect", str(tmp_path / "model.tg"), "--inputs", str(tmp_path / "in.npz"),
                       "--reference", "reloaded", "--via", via])
        out = capsys.readouterr().out
        assert status == 0 and "op by op vs the graph saved and reloaded" in out
