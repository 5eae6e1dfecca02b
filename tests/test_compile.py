"""tg.compile: define-by-run recorded into guarded paths, run compiled while the guards
hold; results always equal define-by-run (tg.eager)."""

import inspect

import numpy as np
import pytest

import tracegraph as tg


def scale(x):
    if x.sum() > 0:  # a Python `if` on a tensor: a guard
        return x * 2
    return -x


def test_python_if_runs_compiled_on_both_paths():
    f = tg.compile(scale)
    pos, neg = np.ones(3, np.float32), -np.arange(3, dtype=np.float32)
    for v in (pos, neg, pos, neg, neg, pos):
        np.testing.assert_array_equal(f(v), tg.eager(scale)(v))
    assert len(f.graphs()) == 2
    assert f.compiled_calls == 4
    line = inspect.getsourcelines(scale)[1] + 1
    for g in f.graphs():
        guards = [n for n in g.nodes if n.op == "guard"]
        assert len(guards) == 1 and guards[0].location == f"test_compile.py:{line}"
        assert str(tg.parse(str(g))) == str(g)  # guards are ordinary, printable IR
    text = f.explain()
    assert f"test_compile.py:{line}" in text and "first call" in text


def test_loop_with_data_dependent_exit():
    def newton_sqrt(a):
        x = a
        for _ in range(50):
            nxt = 0.5 * (x + a / x)
            if tg.max(tg.abs(nxt - x)) < 1e-4:  # early exit: one guard per iteration
                return nxt
            x = nxt
        return x

    f = tg.compile(newton_sqrt)
    for v in ([4.0, 9.0], [4.5, 8.0], [4.0, 9.0], [4.1, 9.1]):
        a = np.array(v, np.float32)
        np.testing.assert_allclose(f(a), tg.eager(newton_sqrt)(a), rtol=0, atol=0)
        np.testing.assert_allclose(f(a), np.sqrt(a), rtol=1e-5)
    assert f.compiled_calls >= 1
    path = f.paths()[0]
    assert all(kind == "bool" for kind, _, _ in path.decisions)


def test_int_and_item_decisions_are_guarded_by_value():
    def f(x, n):
        k = int(n)  # the value decides the loop count
        for _ in range(k):
            x = x * 2
        return x + n.item()

    c = tg.compile(f)
    x = np.ones(2, np.float32)
    for n in (2, 3, 2):
        np.testing.assert_array_equal(c(x, np.int32(n)), tg.eager(f)(x, np.int32(n)))
    assert len(c.paths()) == 2 and c.compiled_calls == 1


def test_on_miss_policies_and_max_paths():
    pos, neg = np.ones(3, np.float32), -np.ones(3, np.float32)
    strict = tg.compile(scale, on_miss="error")
    strict(pos)
    with pytest.raises(tg.GuardMiss, match="test_compile.py"):
        strict(neg)
    eager = tg.compile(scale, on_miss="eager")
    eager(pos)
    np.testing.assert_array_equal(eager(neg), -neg)
    assert len(eager.paths()) == 1
    small = tg.compile(scale, max_paths=1)
    small(pos)
    np.testing.assert_array_equal(small(neg), -neg)
    assert len(small.paths()) == 1 and small.eager_calls == 1
    with pytest.raises(ValueError):
        tg.compile(scale, on_miss="sometimes")


def test_structured_control_flow_needs_no_guard():
    def f(x):
        return tg.cond(x.sum() > 0, lambda v: v * 2, lambda v: -v, x)

    c = tg.compile(f)
    for v in (np.ones(3, np.float32), -np.ones(3, np.float32)):
        np.testing.assert_array_equal(c(v), tg.eager(f)(v))
    assert len(c.paths()) == 1 and c.paths()[0].decisions == []
    assert any(n.op == "cond" for n in c.graphs()[0].nodes)


def test_unguardable_paths_run_define_by_run():
    def f(x):
        return x * float(np.asarray(x).sum())  # a numpy conversion cannot be guarded

    c = tg.compile(f)
    for v in (np.ones(2, np.float32), np.full(2, 2.0, np.float32)):
        np.testing.assert_array_equal(c(v), tg.eager(f)(v))
    assert c.paths() == [] and "numpy" in c.explain()


def test_compiled_training_step_with_a_branch():
    key = tg.random.key(0)
    params = {"w": tg.random.normal(key, (4, 2)) * 0.1}
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)

    def step(params, x, lr):
        loss, g = tg.value_and_grad(lambda p: tg.mean((x @ p["w"]) ** 2))(params)
        if loss > 1e-3:  # a Python decision on the loss
            params = {"w": params["w"] - lr * g["w"]}
        return params, loss

    c = tg.compile(step)
    p1, p2 = params, params
    for _ in range(5):
        p1, l1 = c(p1, x, 0.1)
        p2, l2 = tg.eager(step)(p2, x, 0.1)
        np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(l1, l2, rtol=1e-6)
    assert c.compiled_calls == 4
