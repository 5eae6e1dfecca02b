"""tg.jit: caching by abstract signature, retracing, static and donated arguments,
pytrees, .trace/.lower/.interpret/.stage, frozen options, nesting, threads."""

import concurrent.futures
import dataclasses
import functools
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg


def counting(fn):
    calls = []

    @functools.wraps(fn)
    def wrapped(*a, **k):
        calls.append(1)
        return fn(*a, **k)

    wrapped.calls = calls
    return wrapped


def test_same_signature_traces_once():
    f = counting(lambda x, y: tg.tanh(x) * y + 1.0)
    jf = tg.jit(f)
    x = np.ones((3, 4), np.float32)
    for _ in range(5):
        out = jf(x, x)
    assert len(f.calls) == 1 and jf.trace_count == 1
    np.testing.assert_allclose(out, np.tanh(x) * x + 1, rtol=1e-6)
    jf(x + 1, x * 2)  # new values, same signature
    assert len(f.calls) == 1


def test_new_shape_or_dtype_retraces():
    f = counting(lambda x: x * 2)
    jf = tg.jit(f)
    jf(np.ones(3, np.float32))
    jf(np.ones(4, np.float32))
    jf(np.ones(4, np.int32))
    assert len(f.calls) == 3 and len(jf.graphs) == 3
    jf(np.ones(3, np.float32))
    assert len(f.calls) == 3


def test_weak_type_is_part_of_the_signature():
    jf = tg.jit(lambda x, s: x * s)
    x = np.ones(3, np.float16)
    out = jf(x, 2.0)  # a Python float is weak: the result stays f16, as in JAX
    assert out.dtype == jnp.float16
    assert out.dtype == jax.jit(lambda x, s: x * s)(x, 2.0).dtype
    out = jf(x, np.float32(2.0))  # a strong f32 scalar promotes
    assert out.dtype == jnp.float32 and jf.trace_count == 2
    g = jf.trace(x, 2.0)
    assert "%s: f32[]~" in str(g)


def test_retrace_warning_names_what_changed():
    jf = tg.jit(lambda x: x + 1, retrace_warn_after=1)
    jf(np.ones(2, np.float32))
    with pytest.warns(tg.RetraceWarning) as rec:
        jf(np.ones(5, np.float32))
    msg = str(rec[0].message)
    assert "x: f32[2] -> f32[5]" in msg and "lambda" in msg


def test_retrace_error_option():
    jf = tg.jit(lambda x: x + 1, on_retrace="error")
    jf(np.ones(2, np.float32))
    with pytest.raises(tg.TracingError, match=r"x: f32\[2\] -> i32\[2\]"):
        jf(np.ones(2, np.int32))


def test_no_warning_for_a_few_signatures():
    jf = tg.jit(lambda x: x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jf(np.ones(2, np.float32))
        jf(np.ones(3, np.float32))


def test_static_argnums_and_argnames():
    f = counting(lambda x, n, *, mode="add": x + n if mode == "add" else x * n)
    jf = tg.jit(f, static_argnums=1, static_argnames="mode")
    x = np.ones(3, np.float32)
    np.testing.assert_allclose(jf(x, 2), x + 2)
    np.testing.assert_allclose(jf(x, 2, mode="mul"), x * 2)
    np.testing.assert_allclose(jf(x, 3, mode="mul"), x * 3)
    jf(x, 3, mode="mul")
    assert len(f.calls) == 3
    g = jf.trace(x, 3, mode="mul")
    assert [v.name for v in g.inputs] == ["x"]


def test_static_change_is_explained():
    jf = tg.jit(lambda x, n: x * n, static_argnums=1, on_retrace="error")
    jf(np.ones(2, np.float32), 2)
    with pytest.raises(tg.TracingError, match="static argument 1: 2 -> 3"):
        jf(np.ones(2, np.float32), 3)


def test_structure_change_is_explained_where_it_happened():
    """A changed argument structure is named by its path and by the part of its static
    data that changed, not by printing both whole tree definitions."""

    class Scaled(tg.nn.Module):
        def __init__(self, n, names):
            self.w, self.n, self.names = np.ones(3, np.float32), n, names

        def __call__(self, x):
            return x * self.w * self.n

    jf = tg.jit(lambda params, m, x, *, y=None: m(x) + params["a"], on_retrace="error")
    x, long = np.ones(3, np.float32), tuple(f"name{i}" for i in range(40))
    jf({"a": x, "b": [x]}, Scaled(2, long), x)
    cases = [
        (({"a": x, "b": [x], "c": x}, Scaled(2, long), x), {},
         "argument structure at params: dict ['a', 'b'] -> dict ['a', 'b', 'c']"),
        (({"a": x, "b": (x,)}, Scaled(2, long), x), {},
         "argument structure at params.b: list -> tuple"),
        (({"a": x, "b": [x, x]}, Scaled(2, long), x), {},
         "argument structure at params.b: list of 1 item -> list of 2 items"),
        (({"a": x, "b": [x]}, Scaled(3, long), x), {},
         "argument structure at m: Scaled ..., n=static(2), ... -> Scaled ..., n=static(3), ..."),
        (({"a": x, "b": [x]}, Scaled(2, long), x), {"y": x},
         "argument structure at the keyword arguments: dict [] -> dict ['y']"),
        (({"a": x, "b": [x]}, Scaled(2, long), (x,)), {},
         "argument structure at x: an array -> tuple"),
    ]
    for args, kwargs, want in cases:
        with pytest.raises(tg.TracingError) as info:
            jf(*args, **kwargs)
        text = str(info.value)
        assert want in text, text
        assert "PyTreeDef" not in text and len(text) < 1000, text


def test_pytrees_in_and_out():
    @tg.jit
    def f(params, x, *, scale):
        h = tg.tanh(x * params["w"] + params["b"][0])
        return {"h": h, "pair": (h * scale, [h + 1, None])}

    params = {"w": np.full(3, 2.0, np.float32), "b": [np.ones(3, np.float32)]}
    x = np.arange(3, dtype=np.float32)
    out = f(params, x, scale=np.float32(3))
    want = np.tanh(x * 2 + 1)
    np.testing.assert_allclose(out["h"], want, rtol=1e-6)
    np.testing.assert_allclose(out["pair"][0], want * 3, rtol=1e-6)
    assert out["pair"][1][1] is None
    g = f.trace(params, x, scale=np.float32(3))
    assert [v.name for v in g.inputs] == ["params.b.0", "params.w", "x", "scale"]
    inter = f.interpret(params, x, scale=np.float32(3))
    np.testing.assert_allclose(inter["pair"][1][0], want + 1, rtol=1e-6)
    again = g(params, x, scale=np.float32(3))  # the graph is called like the function
    np.testing.assert_allclose(again["h"], want, rtol=1e-6)


def test_array_arguments_go_to_jax_jit_without_a_python_flatten(monkeypatch):
    """Looking for PyTorch-style tensors flattens the pytrees in Python (a third of a small
    Equinox train step's time): only a function once called with such tensors does it."""
    import sys

    jit_module = sys.modules["tracegraph.jit"]  # the module (tg.jit is the function)
    calls = []
    real = jit_module.arrays_of_free
    monkeypatch.setattr(jit_module, "arrays_of_free", lambda tree: calls.append(1) or real(tree))
    f = tg.jit(lambda p, x: p["w"] * x + 1)
    params, x = {"w": np.full(3, 2.0, np.float32)}, np.ones(3, np.float32)
    for _ in range(3):
        np.testing.assert_allclose(f(params, x), np.full(3, 3.0))
    assert calls == []
    free = {"w": tg.tensor(np.full(3, 2.0, np.float32), requires_grad=True)}
    for _ in range(3):  # the first call finds the tensor; later calls unwrap it first
        np.testing.assert_allclose(f(free, x), np.full(3, 3.0))
    assert len(calls) == 3  # one to find them, then one per call
    np.testing.assert_allclose(f(params, x), np.full(3, 3.0))


def test_trace_with_specs_does_not_run():
    jf = tg.jit(lambda x, y: x * y)
    g = jf.trace(tg.spec((2, 3), "bf16"), jax.ShapeDtypeStruct((3,), jnp.bfloat16))
    assert [str(t) for t in g.out_types] == ["bf16[2,3]"]
    assert jf.trace_count == 1
    x = jnp.ones((2, 3), jnp.bfloat16)
    jf(x, jnp.ones(3, jnp.bfloat16))  # the signature traced above is reused
    assert jf.trace_count == 1


def test_lower_gives_stablehlo():
    jf = tg.jit(lambda x: tg.exp(x) + 1.0)
    text = jf.lower(np.ones(4, np.float32)).as_text()
    assert "stablehlo.exponential" in text
    assert "func.func public @main" in text


def test_interpret_matches_jit():
    jf = tg.jit(lambda x, y: tg.where(x > y, tg.sin(x), tg.cos(y)) / 2)
    x = np.linspace(-1, 1, 7).astype(np.float32)
    y = np.zeros(7, np.float32)
    np.testing.assert_allclose(jf(x, y), jf.interpret(x, y), rtol=1e-6)


def test_donate_argnums_passes_through():
    jf = tg.jit(lambda x: x * 2, donate_argnums=0)
    x = jnp.ones(8)
    out = jf(x)
    np.testing.assert_allclose(out, 2 * np.ones(8))


def test_nested_jit_inlines():
    inner = tg.jit(lambda x: tg.exp(x) * 2)
    outer = tg.jit(lambda x: inner(x) + 1)
    x = np.ones(3, np.float32)
    np.testing.assert_allclose(outer(x), np.exp(x) * 2 + 1, rtol=1e-6)
    assert [n.op for n in outer.trace(x).nodes] == ["exp", "mul", "add"]


def test_decorator_with_options():
    @tg.jit(static_argnums=(1,))
    def f(x, k):
        return x * k

    np.testing.assert_allclose(f(np.ones(2, np.float32), 4), [4, 4])


def test_python_scalar_arguments():
    jf = tg.jit(lambda x, a: x * a)
    np.testing.assert_allclose(jf(np.ones(2, np.float32), 3), [3, 3])
    assert jf(np.ones(2, np.float32), 3).dtype == jnp.float32


def test_jit_inside_jax_transformations():
    jf = tg.jit(lambda x: tg.sin(x) * 2)
    x = jnp.linspace(0, 1, 5)
    np.testing.assert_allclose(jax.jit(jf)(x), 2 * np.sin(x), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jf)(x), 2 * np.sin(x), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: jf(x).sum())(x), 2 * np.cos(x), rtol=1e-6)


def test_stage_agrees_with_the_inspection_methods():
    jf = tg.jit(lambda x: tg.exp(x) * 1.0 + tg.exp(x))
    x = np.linspace(-1, 1, 4).astype(np.float32)
    s = jf.stage(x)
    assert s.graph is jf.trace(x) and s.traced_graph is jf.trace(x, optimized=False)
    assert s.graph is not s.traced_graph and s.graph in jf.graphs
    assert s.signature.describe() == "x: f32[4]"
    assert [r.name for r in s.pass_records] == [r.name for r in jf.pass_records(x)]
    assert s.lower().as_text() == jf.lower(x).as_text()
    assert "stablehlo.exponential" in s.lower().as_text()
    np.testing.assert_allclose(s.interpret(), jf.interpret(x), rtol=1e-6)
    np.testing.assert_allclose(s.interpret(optimized=False), 2 * np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(s.interpret(check_nans=True), jf(x), rtol=1e-6)
    assert s.profile(repeat=2).runs == jf.profile(x, repeat=2).runs
    assert jf.trace_count == 1  # every method above reused the one entry
    spec = jf.stage(tg.spec((4,)))  # abstract arguments: the same entry
    assert spec.graph is s.graph and jf.trace_count == 1


def test_options_are_frozen_and_normalized():
    jf = tg.jit(lambda x, n, *, mode: x * n, static_argnums=1, static_argnames="mode",
                passes="cse,dce", on_retrace="ignore")
    opts = jf.options
    assert opts.static_argnums == (1,) and opts.static_argnames == ("mode",)
    assert opts.passes == ("cse", "dce") and opts.on_retrace == "ignore"
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.static_argnums = (0,)
    with pytest.raises(AttributeError):
        jf.options = opts
    with pytest.raises(ValueError, match="on_retrace"):
        tg.jit(lambda x: x, on_retrace="sometimes")
    with pytest.raises(TypeError, match="static_argnums"):
        tg.jit(lambda x: x, static_argnums="x")


def test_threads_trace_each_signature_once():
    lock = threading.Lock()
    runs = []

    def body(x):
        with lock:
            runs.append(x.shape)
        return tg.tanh(x) * 2.0 + 1.0

    jf = tg.jit(body, retrace_warn_after=3)
    inputs = [np.linspace(-1, 1, n).astype(np.float32) for n in (2, 3, 4, 5)]
    n_threads, n_calls = 32, 20
    barrier = threading.Barrier(n_threads)

    def worker(t):
        barrier.wait(timeout=60)  # start every thread on a cold function at once
        for i in range(n_calls):
            x = inputs[(t + i) % len(inputs)]
            np.testing.assert_allclose(jf(x), np.tanh(x) * 2 + 1, rtol=1e-6)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(worker, range(n_threads)))  # re-raises a thread's failure
    assert sorted(runs) == [(2,), (3,), (4,), (5,)]  # the body ran once per signature
    assert jf.trace_count == 4 and len(jf.graphs) == 4
    retraces = [w for w in caught if issubclass(w.category, tg.RetraceWarning)]
    assert len(retraces) == 1 and "trace #4" in str(retraces[0].message)


def test_threads_share_one_entry_between_stage_and_call():
    # f.stage / f.trace trace outside jax.jit, so only tracegraph's lock keeps two threads
    # from tracing one signature twice; a body of many ops keeps each trace long enough
    # for the threads to overlap.
    lock = threading.Lock()
    runs = []

    def body(x):
        with lock:
            runs.append(x.shape)
        for _ in range(30):
            x = tg.tanh(x) * 0.5
        return x

    jf = tg.jit(body, on_retrace="ignore")
    inputs = [np.linspace(-1, 1, n).astype(np.float32) for n in (2, 3, 4, 5)]
    n_threads = 32
    barrier = threading.Barrier(n_threads)

    def worker(t):
        barrier.wait(timeout=60)
        graphs = []
        for i in range(8):
            x = inputs[(t + i) % len(inputs)]
            if i % 2 == 0:
                graphs.append(jf.stage(x).graph)
            else:
                jf(x)
        return graphs

    with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
        seen = {id(g) for graphs in pool.map(worker, range(n_threads)) for g in graphs}
    assert sorted(runs) == [(2,), (3,), (4,), (5,)] and jf.trace_count == 4
    assert seen == {id(g) for g in jf.graphs}  # every thread got the one graph per signature


def test_clear_caches_empties_tracegraphs_caches_and_calls_still_work():
    from tracegraph import _caches

    x = np.arange(4, dtype=np.float32)
    f = tg.jit(lambda v: tg.sin(v) * 2.0)
    want = np.asarray(f(x))
    eager_want = np.asarray(tg.eager(lambda v: tg.exp(v) + 1.0)(x))
    np.testing.assert_allclose(np.asarray(tg.grad(lambda v: tg.sum(tg.sin(v)))(x)), np.cos(x), rtol=1e-6)
    assert any(_caches._REGISTERED)  # the define-by-run plans, compiled ops, shape rules ...
    tg.clear_caches()
    assert not any(_caches._REGISTERED)
    np.testing.assert_array_equal(np.asarray(f(x)), want)
    np.testing.assert_array_equal(np.asarray(tg.eager(lambda v: tg.exp(v) + 1.0)(x)), eager_want)
