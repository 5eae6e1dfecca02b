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
