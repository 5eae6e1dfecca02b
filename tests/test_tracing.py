"""Tracing: graph structure, value names, user locations, scopes, closures, constants."""

import inspect

import numpy as np

import tracegraph as tg


def test_nodes_record_user_lines_and_scopes():
    def f(x):
        with tg.scope("block"):
            with tg.scope("inner"):
                y = tg.exp(x)
            z = y * 2.0
        return z - 1.0

    first = inspect.getsourcelines(f)[1]
    g = tg.trace(f, tg.spec((3,)))
    locs = [(n.op, n.location, n.scope) for n in g.nodes]
    assert locs == [
        ("exp", f"test_tracing.py:{first + 3}", "block.inner"),
        ("mul", f"test_tracing.py:{first + 4}", "block"),
        ("sub", f"test_tracing.py:{first + 5}", ""),
    ]
    text = str(g)
    assert f"# test_tracing.py:{first + 3}  block.inner" in text


def test_graph_api_contract():
    g = tg.trace(lambda x, y: tg.tanh(x) * y, tg.spec((2, 3)), np.ones((2, 3), np.float32))
    assert isinstance(g, tg.Graph)
    assert [n.op for n in g.nodes] == ["tanh", "mul"]
    node = g.nodes[1]
    assert node.inputs[0] is g.nodes[0].outputs[0]
    assert node.inputs[1] is g.inputs[1]
    assert str(node.outputs[0].type) == "f32[2,3]"
    assert node.attrs == {}
    g.verify()


def test_closure_arrays_become_constants():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = tg.trace(lambda x: x * w, tg.spec((2, 3)))
    assert len(g.constants) == 1
    np.testing.assert_array_equal(g.constants[0].data, w)
    np.testing.assert_allclose(g(np.ones((2, 3), np.float32)), w)


def test_weak_python_scalars_keep_tensor_dtype():
    g = tg.trace(lambda x: x * 2 + 0.5, tg.spec((4,), "bf16"))
    assert str(g.out_types[0]) == "bf16[4]"
    assert "const 2" in str(g) and "i32[]~" in str(g)


def test_names_by_first_appearance_and_deterministic():
    def f(a, b):
        return tg.exp(a) + tg.log(b)

    g1 = str(tg.trace(f, tg.spec((2,)), tg.spec((2,))))
    g2 = str(tg.trace(f, tg.spec((2,)), tg.spec((2,))))
    assert g1 == g2
    assert "%0: f32[2] = exp(%a)" in g1 and "%1: f32[2] = log(%b)" in g1
    assert "%2: f32[2] = add(%0, %1)" in g1


def test_outputs_may_be_inputs_and_repeat():
    g = tg.trace(lambda x: (x, x * 2, x), tg.spec((2,)))
    out = g(np.ones(2, np.float32))
    assert isinstance(out, tuple) and len(out) == 3
    assert "return (%x, %0, %x)" in str(g)


def test_jax_arrays_inside_eager_become_constants():
    import jax.numpy as jnp

    bias = jnp.ones(3)
    run = tg.eager(lambda x: x + bias)
    np.testing.assert_allclose(run(np.zeros(3, np.float32)), np.ones(3))
    assert len(run.last_graph.constants) == 1
