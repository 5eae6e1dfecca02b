"""Many threads trace, compile, interpret and run define-by-run at once: the trace stack
is per thread (a contextvar), so each thread sees only its own tensors and graphs."""

import sys
import threading

import numpy as np

import tracegraph as tg

THREADS = 32


def _make(k):
    # a function of its own per thread: k extra ops, so graphs differ by thread
    def fn(x):
        y = x * (k + 1.0)
        for _ in range(k % 5):
            y = tg.sin(y)
        for _ in range(20):
            y = y * 1.0
        return tg.sum(y * 2.0)

    return fn


def _reference(k, x):
    y = x * (k + 1.0)
    for _ in range(k % 5):
        y = np.sin(y)
    return np.sum(y * 2.0)


def test_threads_trace_run_interpret_and_eager_at_once():
    barrier = threading.Barrier(THREADS)
    errors, results = [], {}

    def work(k):
        try:
            fn = _make(k)
            x = np.linspace(-1, 1, 3 + k % 4).astype(np.float32)
            barrier.wait()
            f = tg.jit(fn)
            got = [f(x), f.interpret(x)]
            run = tg.eager(fn)
            got.append(run(x))
            got.append(tg.grad(fn)(x))
            g = tg.trace(fn, x)
            results[k] = (got, g, run.last_graph, x)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((k, e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: interleave the traces
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    for k, (got, g, tape, x) in results.items():
        want = _reference(k, x)
        for value in got[:3]:
            np.testing.assert_allclose(np.asarray(value), want, rtol=1e-5, atol=1e-5)
        assert np.asarray(got[3]).shape == x.shape
        # each graph holds exactly this thread's program: 1 mul, k % 5 sins, 1 mul, 1 sum
        for graph in (g, tape):
            ops = [n.op for n in graph.nodes]
            assert ops.count("sin") == k % 5, (k, ops)
            assert len(ops) == k % 5 + 23, (k, ops)
