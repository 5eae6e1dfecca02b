"""tg.compile: define-by-run recorded into guarded paths, run compiled while the guards
hold; results always equal define-by-run (tg.eager)."""

import inspect

import jax.numpy as jnp
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


# -- loops recorded unrolled run rolled into a scan (transforms/roll.py) -----------------


def _top(graph, op):
    return [n for n in graph.nodes if n.op == op]


def fixed_point(a, w):
    """A `while` on a value (its test at the top): a carry of two values, an invariant,
    and after the loop the carry the last iteration started from (`prev`) and a value of
    the last iteration that is not carried (`err`)."""
    x, steps = a, tg.zeros(())
    err = tg.max(tg.abs(a))
    prev = x
    while err > 1e-3:
        prev = x
        x = 0.5 * x + w * tg.tanh(x)
        steps = steps + 1.0
        err = tg.max(tg.abs(x - prev))
    return x, steps, err, prev


def test_a_while_loop_on_a_value_runs_as_one_scan():
    c, e = tg.compile(fixed_point), tg.eager(fixed_point)
    w = np.float32(0.3)
    base = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    inputs = [base * s for s in (1.0, 1.0, 30.0, 1.0, 30.0)]
    trips = []
    for a in inputs:
        got, want = c(a, w), e(a, w)
        for g, v in zip(got, want):  # XLA fuses x * 0.5 + w * tanh(x): within an ulp
            np.testing.assert_allclose(g, v, rtol=1e-6, atol=1e-9)
        trips.append(int(want[1]))
    assert len(set(trips)) == 2 and c.compiled_calls == 3  # two trip counts: two paths
    for path in c.paths():
        g = path.graph
        (scan,) = _top(g, "scan")
        # the first test stays before the loop; every other decision is the scan's
        assert len(_top(g, "guard")) == 1 and scan.attrs["length"] == len(path.decisions) - 1
        assert [n.op for n in scan.attrs["body"].nodes].count("guard") == 1
        assert str(tg.parse(str(g))) == str(g)
        a = inputs[0] if len(path.decisions) - 1 == trips[0] else inputs[2]
        for got, want in zip(g.interpret(a, w), g(a, w)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    # a longer loop fails the guard the shorter one exited at, by its index
    assert f"guard {min(trips)}" in c.explain()


def test_a_loop_with_break_rolls_and_keeps_each_decision():
    def newton(a):
        x = a
        for _ in range(50):
            nxt = 0.5 * (x + a / x)
            if tg.max(tg.abs(nxt - x)) < 1e-5:  # the exit: the last decision differs
                break
            x = nxt
        return x

    c = tg.compile(newton, on_miss="error")
    a = np.array([4.0, 9.0, 30.0], np.float32)
    np.testing.assert_array_equal(c(a), tg.eager(newton)(a))
    (path,) = c.paths()
    (scan,) = _top(path.graph, "scan")
    assert _top(path.graph, "guard") == [] and scan.attrs["length"] == len(path.decisions)
    assert [d[1] for d in path.decisions][-2:] == [False, True]
    np.testing.assert_array_equal(c(a * 1.01), tg.eager(newton)(a * 1.01))  # same trip count
    assert c.compiled_calls == 1
    with pytest.raises(tg.GuardMiss, match=r"guard \d+ \(bool\(\) at test_compile.py:\d+\) was (True|False)"):
        c(a * 1e4)  # more iterations: a guard of the rolled loop fails


def test_iterations_that_differ_are_not_rolled():
    def f(x):
        for i in range(10):
            x = x * (i + 1.5)  # a constant of its own in each iteration
            if tg.max(x) > 50.0:
                break
        return x

    def g(x):  # an outer loop around an inner loop: the inner one rolls
        total = tg.zeros(())
        for j in range(3):
            y = x
            while tg.max(y) > 1.0:
                y = y * 0.5
            total = total + tg.sum(y) * float(j)
        return total

    scans = {}
    for fn, a in ((f, np.ones(3, np.float32)), (g, np.array([8.0, 3.0], np.float32))):
        c = tg.compile(fn)
        for _ in range(2):
            np.testing.assert_array_equal(c(a), tg.eager(fn)(a))
        assert c.compiled_calls == 1
        scans[fn] = [n.attrs["length"] for n in _top(c.graphs()[0], "scan")]
    assert scans[f] == [] and scans[g] == [3, 3, 3]  # 8 -> 4 -> 2 -> 1, after each first test


def _random_loop(seed):
    """A contraction iterated until its step is small, as a Python `for` with `break`
    or a `while` on the step: random coefficients, nonlinearity and invariant term."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.1, 0.5, 2).astype(np.float32)
    f = [tg.tanh, tg.sin, lambda v: v / (1.0 + tg.abs(v))][rng.integers(3)]
    g = [lambda x: x * 0.2, lambda x: tg.cos(x) * 0.1, lambda x: tg.exp(-x * x)][rng.integers(3)]
    tol = float(rng.choice([1e-2, 1e-3, 1e-4]))
    count = bool(rng.integers(2))

    def step(y, x):
        return a * y + b * f(y) + g(x)

    def with_break(x):
        y, n = x, tg.zeros((), np.int32)
        for _ in range(200):
            new = step(y, x)
            if count:
                n = n + 1
            if tg.max(tg.abs(new - y)) < tol:
                break
            y = new
        return y, n

    def with_while(x):
        y, n = x, tg.zeros((), np.int32)
        delta = tg.full((), np.inf, np.float32)
        while delta >= tol:
            new = step(y, x)
            delta = tg.max(tg.abs(new - y))
            y = new
            if count:
                n = n + 1
        return y, n, delta

    shape = tuple(int(d) for d in rng.integers(1, 5, int(rng.integers(1, 3))))
    return (with_break if rng.integers(2) else with_while), shape, rng


@pytest.mark.parametrize("seed", range(8))
def test_random_loops_rolled_equal_define_by_run(seed):
    fn, shape, rng = _random_loop(seed)
    c = tg.compile(fn)
    xs = [rng.normal(size=shape).astype(np.float32) for _ in range(2)]
    for x in (xs[0], xs[0], xs[1], xs[0], xs[1]):
        for got, want in zip(c(x), tg.eager(fn)(x)):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    for path in c.paths():
        loops = _top(path.graph, "scan")
        assert len(loops) == 1 and loops[0].attrs["length"] >= len(path.decisions) - 1
        for got, want in zip(path.graph.interpret(xs[0]), path.graph(xs[0])):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


# -- the cached call: the last path called on the arguments as they are ------------------


def _fast(f):
    return f._fast


def test_a_repeated_path_is_called_through_jax_dispatch():
    f = tg.compile(scale)
    x = np.ones(3, np.float32)
    for _ in range(4):
        np.testing.assert_array_equal(f(x), 2 * x)
    (path,) = f.paths()
    assert _fast(f) is path and path.hits == 3 and path.mismatches == 0


@pytest.mark.parametrize("extra", [2, 2.5, True, np.float32(2.5), np.arange(3, dtype=np.int32)],
                         ids=["int", "float", "bool", "np-scalar", "np-int-array"])
def test_python_and_numpy_leaves_type_as_jax_types_them(extra):
    # the cache's own signature of a leaf must equal the one JAX's dispatch checks, or
    # the direct call would be refused on every call
    def f(x, k):
        return x * k if x.sum() > 0 else x - k

    cf = tg.compile(f)
    x = np.ones(3, np.float32)
    for _ in range(4):
        out = cf(x, extra)
        want = tg.eager(f)(x, extra)
        np.testing.assert_array_equal(out, want)
        assert out.dtype == want.dtype
    assert _fast(cf) is not None and cf.paths()[0].mismatches == 0


def test_a_new_signature_after_the_direct_path_gets_its_own_path():
    f = tg.compile(scale)
    a, b = np.ones(3, np.float32), np.ones((2, 2), np.float32)
    for v in (a, a, a, b, b, a, b, b, b, a):
        np.testing.assert_array_equal(f(v), 2 * v)
    assert len(f.paths()) == 2 and f.eager_calls == 0


def test_weak_and_strong_scalars_keep_their_own_paths():
    # a path recorded with a Python float (weak) must not run for a float32 scalar
    # (strong): the promotion differs (float16 * weak float stays float16)
    def f(x, s):
        return x * s

    cf = tg.compile(f)
    x = np.ones(3, np.float16)
    for _ in range(3):
        assert cf(x, 2.0).dtype == np.float16
    assert cf(x, np.float32(2.0)).dtype == np.float32
    assert cf(x, jnp.float32(2.0)).dtype == np.float32  # a strong JAX scalar
    weak = jnp.asarray(2.0)
    assert weak.weak_type and cf(x, weak).dtype == tg.eager(f)(x, weak).dtype == np.float16
    assert cf(x, 2.0).dtype == np.float16 and len(cf.paths()) == 2  # weak, strong


def test_a_guard_miss_on_the_direct_path_tries_the_other_paths():
    f = tg.compile(scale)
    pos, neg = np.ones(3, np.float32), -np.ones(3, np.float32)
    for v in (pos, pos, pos, neg, neg, neg, pos, neg, pos, pos):
        np.testing.assert_array_equal(f(v), tg.eager(scale)(v))
    assert len(f.paths()) == 2 and f.compiled_calls == 8 and f.eager_calls == 0


def test_tensor_arguments_after_the_direct_path():
    f = tg.compile(scale)
    x = np.ones(3, np.float32)
    for _ in range(3):
        f(x)
    t = tg.tensor(x)
    np.testing.assert_array_equal(np.asarray(f(t)), 2 * x)
    np.testing.assert_array_equal(f(x), 2 * x)


def test_state_that_changes_type_is_not_run_on_the_direct_path():
    w = tg.tensor(np.ones(3, np.float32))

    @tg.compile
    def f(s):
        return (w * s).sum()  # w: state the path reads

    for _ in range(3):
        assert float(f(2.0)) == 6.0
    assert _fast(f) is not None
    w.data = np.ones(4, np.float32)  # another type: the path is of no use now
    assert float(f(2.0)) == 8.0 and len(f.paths()) == 1


def test_threads_calling_with_many_signatures():
    import threading

    f = tg.compile(scale)
    arrays = [s * np.ones(n, np.float32) for n in (2, 3, 4) for s in (1, -1)]
    errors = []

    def work(k):
        try:
            for i in range(30):
                v = arrays[(k + i) % len(arrays)]
                np.testing.assert_array_equal(f(v), 2 * v if v.sum() > 0 else -v)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(f.paths()) == 6
