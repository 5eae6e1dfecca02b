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


def test_bad_reference_is_an_error():
    with pytest.raises(tg.Error, match="reference must be"):
        tg.debug.bisect(model, X, W, reference="gpu")


def test_the_command_bisects_a_saved_graph(tmp_path, eager_log_off_by_a_little, capsys):
    from tracegraph.cli import main

    tg.save(tg.trace(model, X, W), tmp_path / "model.tg")
    np.savez(tmp_path / "in.npz", x=X, w=W)
    status = main(["bisect", str(tmp_path / "model.tg"), "--inputs", str(tmp_path / "in.npz")])
    out = capsys.readouterr().out
    assert status == 3 and f"= log at test_debug.py:{LOG_LINE}" in out
