"""f.profile_compiled: jax.profiler's XLA op times folded onto the IR nodes (and module
scopes) the optimized HLO names in its op_name metadata; fused ops count for every node
they hold."""

import numpy as np

import tracegraph as tg
from tracegraph.profiling import hlo_node_map


def model(x, w):
    with tg.scope("enc"), tg.scope("0"):
        h = tg.tanh(x @ w)
    with tg.scope("head"):
        y = tg.exp(h) @ w.T
    return tg.sort(y, axis=-1).sum()


LINE = model.__code__.co_firstlineno + 2


def test_profile_names_nodes_scopes_and_lines():
    x = np.ones((64, 128), np.float32)
    w = np.full((128, 128), 0.01, np.float32)
    prof = tg.jit(model).profile_compiled(x, w, repeat=3)
    rows = {(n.scope, n.op): n for n in prof.by_node()}
    mm = rows[("enc.0", "matmul")]
    assert mm.name == "%0" and mm.location == f"test_profiling.py:{LINE}" and mm.seconds > 0
    assert ("", "sort") in rows and prof.seconds > 0 and prof.calls == 3
    scopes = [s for s, _, _ in prof.by_scope()]
    assert {"enc", "enc.0", "head"} <= set(scopes)
    text = str(prof)
    assert "matmul" in text and f"test_profiling.py:{LINE}  enc.0" in text


def test_a_fusion_holds_every_node_it_fused():
    hlo = """HloModule jit_f, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%fused_computation (param_0: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  %tanh.1 = f32[4]{0} tanh(%param_0), metadata={op_name="jit(f)/enc/%1 = tanh at m.py:3/tanh"}
  ROOT %exp.1 = f32[4]{0} exponential(%tanh.1), metadata={op_name="jit(f)/%2 = exp at m.py:4/exp"}
}

ENTRY %main.5 (x.1: f32[4]) -> f32[4] {
  %x.1 = f32[4]{0} parameter(0), metadata={op_name="x"}
  ROOT %exp_fusion = f32[4]{0} fusion(%x.1), kind=kLoop, calls=%fused_computation, metadata={op_name="jit(f)/%2 = exp at m.py:4/exp"}
}
"""
    nodes = hlo_node_map(hlo)
    assert nodes["exp_fusion"] == {("enc", "%1", "tanh", "m.py:3"), ("", "%2", "exp", "m.py:4")}
    assert nodes["x.1"] == set()


def test_nodes_inside_control_flow_bodies_are_named_under_their_node():
    def f(x):
        return tg.fori_loop(0, 3, lambda i, c: c * 1.5 + tg.sin(c), x).sum()

    x = np.ones(4, np.float32)
    hlo = tg.jit(f).lower(x).compile().as_text()
    line = f.__code__.co_firstlineno + 1
    names = [m for m in hlo.split('op_name="')[1:]]
    inner = [n.split('"')[0] for n in names if "= sin at" in n]
    assert inner, "the body's sin is not named"
    assert all(f"%0 = scan at test_profiling.py:{line}/" in n for n in inner)
    assert all(f"= sin at test_profiling.py:{line}" in n for n in inner)


def test_the_compiled_transformer_step_is_profiled_by_node_and_module_scope():
    """The examples' Transformer language model, one whole train step (forward, IR
    backward, Adam) compiled: the profile names its IR nodes, and sums by module scope
    the blocks, their attention and MLP, forward and backward."""
    from conftest import example_module

    transformer = example_module("transformer")
    model = transformer.CharTransformer(32, 32, 4, 2, 16, key=tg.random.key(0))
    opt = tg.optim.adam(1e-3)
    state = opt.init(model)
    ids = np.random.default_rng(0).integers(0, 32, size=(4, 17)).astype(np.int32)

    def step(model, state, ids):
        def loss(m):
            logits = m(ids[:, :-1])
            return tg.nn.functional.cross_entropy(logits, ids[:, 1:])

        value, grads = tg.value_and_grad(loss)(model)
        updates, state = opt.update(grads, state, model)
        return tg.optim.apply_updates(model, updates), state, value

    prof = tg.jit(step).profile_compiled(model, state, ids, repeat=2)
    nodes = prof.by_node()
    assert nodes[0].seconds > 0 and all(n.name.startswith("%") for n in nodes)
    assert {n.location.split(":")[0] for n in nodes} >= {"transformer.py"}
    scopes = {s: t for s, _, t in prof.by_scope()}
    want = {"blocks", "blocks.0", "blocks.1", "blocks.0.attn", "blocks.0.mlp", "grad.blocks.0.attn"}
    assert want <= set(scopes), scopes
    # an XLA op's time counts once per scope: a scope never costs more than the program,
    # and a scope at least as much as any scope nested in it
    assert all(0 <= t <= prof.seconds * 1.0001 for t in scopes.values())
    assert scopes["blocks"] >= scopes["blocks.0"] > 0 and scopes["blocks.0"] >= scopes["blocks.0.attn"]


def test_computation_headers_with_index_comments_end_the_previous_body():
    """XLA prints long parameter lists with ``/*index=5*/`` comments: such a header still
    starts a new computation (else every later instruction would join a fusion's body)."""
    hlo = """
%fused_a (param_0: f32[4], param_1: f32[4], param_2: f32[4], param_3: f32[4], param_4: f32[4], /*index=5*/param_5: f32[4]) -> f32[4] {
  ROOT %t = f32[4]{0} tanh(%param_0), metadata={op_name="jit(f)/%1 = tanh at m.py:3/tanh"}
}

ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %f = f32[4]{0} fusion(%x, %x, %x, %x, %x, /*index=5*/%x), kind=kLoop, calls=%fused_a, metadata={op_name="jit(f)/%1 = tanh at m.py:3/tanh"}
  ROOT %e = f32[4]{0} exponential(%f), metadata={op_name="jit(f)/%2 = exp at m.py:4/exp"}
}
"""
    m = hlo_node_map(hlo)
    assert {n[1] for n in m["f"]} == {"%1"} and {n[1] for n in m["e"]} == {"%2"}
