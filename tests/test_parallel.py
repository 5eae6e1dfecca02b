"""Scale-out on XLA's SPMD partitioner: shardings in a tg.jit signature's graph (input
types, result constraints; printed, parsed, serialized, saved), tg.nn.parallel (mesh specs,
the Megatron partition rules, the plan's placement and step), and the examples' --mesh.

The default tests run on one device (a mesh of size 1). Eight devices need
XLA_FLAGS=--xla_force_host_platform_device_count=8 before JAX is imported, so the
multi-device checks run in subprocesses (-m slow): data-parallel and tensor-parallel
steps equal the one-device step, the compiled HLO has the collectives, and the examples
train with --mesh to the one-device losses."""

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import tracegraph as tg
from conftest import has_module

ROOT = Path(__file__).resolve().parents[1]
MESH = jax.make_mesh((1, 1), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
W = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)


def S(*spec):
    return NamedSharding(MESH, P(*spec))


def _placed():
    def f(w, x):
        return tg.tanh(x @ w), x * 2.0

    return tg.jit(f, in_shardings=(S(), S("data")), out_shardings=(S("data", None), S()))


# -- A. shardings in a tg.jit signature's graph ----------------------------------------------


def test_signature_shardings_print_on_inputs_and_results():
    f = _placed()
    text = str(f.trace(W, X))
    head = text.splitlines()[0]
    assert head == ('graph f(%w: f32[3,2]{none, none}, %x: f32[4,3]{"data", none}) -> '
                    '(f32[4,2]{"data", none}, f32[4,3]{none, none}) {'), head
    assert '= mul(%x, %c0)' in text and 'f32[4,3]{"data", none} = mul(' in text  # propagated
    # the results' placements: sharding_constraint nodes at tg.jit's line, scope out_shardings
    outs = [line for line in text.splitlines() if "sharding_constraint(" in line]
    assert len(outs) == 2 and all("test_parallel.py:" in line and "out_shardings" in line
                                  for line in outs), outs
    assert 'mesh_axes=("data", "model"), mesh_shape=(1, 1)' in outs[0]
    # jax.jit got the same shardings
    lowered = f.lower(W, X).as_text()
    assert re.search(r'sharding<@mesh, \[\{"data"\}, \{\}\]>', lowered), lowered[:1500]


def test_signature_shardings_round_trip_text_json_and_files(tmp_path):
    f = _placed()
    g = f.trace(W, X)
    text = str(g)
    tg.save(g, tmp_path / "placed.tg")
    want = [np.asarray(v) for v in f(W, X)]
    for back in (tg.parse(text), tg.Graph.from_json(g.to_json()), tg.load(tmp_path / "placed.tg")):
        assert str(back) == text
        back.verify()
        for got, ref in zip(back.interpret(W, X), want):
            np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6)
    assert back.inputs[1].type.sharding == ("data", None)


def test_signature_shardings_cost_nothing_per_call():
    f = _placed()
    for _ in range(3):
        f(W, X)
    assert f.trace_count == 1
    assert f.interpret(W, X)[0].shape == (4, 2)


def test_partition_spec_shardings_over_the_mesh_set_around_the_call():
    with jax.set_mesh(MESH):
        f = tg.jit(lambda x: x + 1.0, in_shardings=P("data"), out_shardings=P(None, "model"))
        g = f.trace(X)
        np.testing.assert_array_equal(np.asarray(f(X)), X + 1.0)
    assert str(g).splitlines()[0] == ('graph lambda(%x: f32[4,3]{"data", none}) -> '
                                      '(f32[4,3]{none, "model"}) {')
    assert "mesh_axes=(), mesh_shape=()" in str(g)  # the mesh around the call


def test_unspecified_leaves_and_pytrees():
    f = tg.jit(lambda p, x: p["w"] * x.sum(), in_shardings=({"w": None}, S("data")))
    head = str(f.trace({"w": W}, X)).splitlines()[0]
    assert head.startswith('graph lambda(%p.w: f32[3,2], %x: f32[4,3]{"data", none})'), head


def test_a_wrong_spec_names_jit_the_argument_and_the_line():
    f = tg.jit(lambda x: x * 2.0, in_shardings=S("data", None, None))
    with pytest.raises(tg.ShapeError, match=r"in_shardings of x .* 3 entries for a value of rank 2 "
                                            r"\(at .*test_parallel.py:\d+"):
        f(X)


def test_loops_and_gradients_over_sharded_inputs():
    # a loop carry that starts placed and loses the placement in the body is still the
    # same type for control flow (a sharding is a placement, as JAX's Auto axes)
    def f(x, w):
        return tg.fori_loop(0, 3, lambda i, c: tg.tanh(c @ w), x)

    w = np.full((3, 3), 0.1, np.float32)
    want = X
    for _ in range(3):
        want = np.tanh(want @ w)
    jf = tg.jit(f, in_shardings=(S("data"), S()))
    np.testing.assert_allclose(np.asarray(jf(X, w)), want, rtol=1e-6)
    g = jf.trace(X, w)
    assert str(tg.parse(str(g))) == str(g)
    grad = tg.jit(tg.grad(lambda x, w: f(x, w).sum(), argnums=1), in_shardings=(S("data"), S()))
    np.testing.assert_allclose(np.asarray(grad(X, w)),
                               np.asarray(jax.grad(lambda w: jax.numpy.sum(
                                   jax.lax.fori_loop(0, 3, lambda i, c: jax.numpy.tanh(c @ w), X)))(w)),
                               rtol=1e-5, atol=1e-6)
    cond = tg.jit(lambda x, w: tg.cond(x.sum() > 0, lambda a: a @ w, lambda a: a * 1.0, x),
                  in_shardings=(S("data"), S()))
    np.testing.assert_allclose(np.asarray(cond(X, w)), X * 1.0)


# -- B. tg.nn.parallel ---------------------------------------------------------------------


def test_mesh_specs_parse():
    assert tg.nn.parallel.mesh_shape("data=4,model=2") == {"data": 4, "model": 2}
    assert tg.nn.parallel.mesh_shape(" data = 8 ") == {"data": 8}
    mesh = tg.nn.parallel.parse_mesh("data=1,model=1")
    assert dict(mesh.shape) == {"data": 1, "model": 1}
    assert mesh.axis_types == (AxisType.Auto, AxisType.Auto)
    for bad, msg in (("data=4,,model=2", "is not NAME=SIZE"), ("data", "is not NAME=SIZE"),
                     ("data=2,data=2", "twice"), ("data=0", "sizes are >= 1"), ("", "a string like")):
        with pytest.raises(tg.Error, match=msg):
            tg.nn.parallel.mesh_shape(bad)
    n = len(jax.devices()) + 1
    with pytest.raises(tg.Error, match=rf"needs {n} devices.*xla_force_host_platform_device_count={n}"):
        tg.nn.parallel.parse_mesh(f"data={n}")


class Block(tg.nn.Module):
    """The examples' pre-norm Transformer block, written here: the eight-device test
    checks that the constraints carry this file's lines."""

    def __init__(self, dim, heads, *, key):
        k1, k2, k3 = tg.random.split(key, 3)
        self.norm1 = tg.nn.LayerNorm(dim)
        self.attn = tg.nn.MultiHeadAttention(dim, heads, causal=True, key=k1)
        self.norm2 = tg.nn.LayerNorm(dim)
        self.mlp = tg.nn.Sequential([tg.nn.Linear(dim, 4 * dim, key=k2), tg.nn.GELU(),
                                     tg.nn.Linear(4 * dim, dim, key=k3)])

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class LM(tg.nn.Module):
    def __init__(self, vocab=11, dim=8, heads=2, *, key):
        k1, k2, k3 = tg.random.split(key, 3)
        self.embed = tg.nn.Embedding(vocab, dim, key=k1)
        self.block = Block(dim, heads, key=k2)
        self.head = tg.nn.Linear(dim, vocab, key=k3)

    def forward(self, ids):
        return self.head(self.block(self.embed(ids)))


def _named_specs(model, mesh, **kw):
    specs = tg.nn.parallel.partition_specs(model, mesh, **kw)
    leaves = jax.tree_util.tree_leaves(specs, is_leaf=lambda s: isinstance(s, P))
    return dict(zip([n for n, _ in model.named_parameters()], leaves))


def test_megatron_rules_on_a_transformer_block():
    specs = _named_specs(Block(8, 2, key=tg.random.key(0)), {"data": 4, "model": 2})
    col_w, col_b, row_w = P("model", None), P("model"), P(None, "model")
    assert specs == {
        "norm1.weight": P(), "norm1.bias": P(),
        "attn.q_proj.weight": col_w, "attn.q_proj.bias": col_b,
        "attn.k_proj.weight": col_w, "attn.k_proj.bias": col_b,
        "attn.v_proj.weight": col_w, "attn.v_proj.bias": col_b,
        "attn.out_proj.weight": row_w, "attn.out_proj.bias": P(),
        "norm2.weight": P(), "norm2.bias": P(),
        "mlp.0.weight": col_w, "mlp.0.bias": col_b,      # Linear(8, 32): (out, in) layout
        "mlp.2.weight": row_w, "mlp.2.bias": P(),
    }
    layer = tg.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, key=tg.random.key(1))
    specs = _named_specs(layer, {"model": 2})
    assert specs["linear1.weight"] == col_w and specs["linear2.weight"] == row_w
    assert specs["self_attn.q_proj.weight"] == col_w and specs["norm1.weight"] == P()
    # no model axis: all replicated (data parallelism)
    assert set(_named_specs(layer, {"data": 8}).values()) == {P()}


def test_partition_rules_refuse_widths_that_do_not_split_and_take_overrides():
    block = Block(8, 2, key=tg.random.key(0))
    with pytest.raises(tg.ShapeError, match=r"number of heads of attn is 2, which does not split "
                                            r"over the mesh axis 'model' of size 4"):
        tg.nn.parallel.partition_specs(block, {"model": 4})
    specs = _named_specs(block, {"model": 4}, rules={"attn.*": "replicated"})
    assert specs["attn.q_proj.weight"] == P() and specs["mlp.0.weight"] == P("model", None)
    specs = _named_specs(block, {"model": 2}, rules={"mlp.*": "replicated", "attn.out_proj": "column"})
    assert specs["mlp.0.weight"] == P() and specs["mlp.2.weight"] == P()
    assert specs["attn.out_proj.weight"] == P("model", None)
    with pytest.raises(tg.Error, match="a role is one of"):
        tg.nn.parallel.partition_specs(block, {"model": 2}, rules={"mlp.0": "columns"})
    with pytest.raises(tg.Error, match=r"'mlp\.9' matches no Linear layer"):
        tg.nn.parallel.partition_specs(block, {"model": 2}, rules={"mlp.9": "row"})


def _lm_and_batch():
    model = LM(key=tg.random.key(0))
    ids = np.random.RandomState(0).randint(0, 11, (4, 6)).astype(np.int32)
    return model, {"x": ids, "y": np.roll(ids, -1, 1)}


def _lm_loss(model, batch):
    return tg.nn.functional.cross_entropy(model(batch["x"]), batch["y"])


def test_the_plan_step_equals_the_plain_step_and_shows_its_shardings():
    model, batch = _lm_and_batch()
    opt = tg.optim.sgd(0.1)
    step_fn = tg.train.make_step(_lm_loss, opt)
    state0 = tg.train.TrainState(model, opt.init(model), 0)
    want_state, want = tg.jit(step_fn)(state0, batch)
    plan = tg.nn.parallel.plan(model, tg.nn.parallel.parse_mesh("data=1,model=1"))
    assert "10 of 19 parameters split" in repr(plan)
    state = plan.place(state0)
    assert state.model.block.mlp.layers[0].weight.sharding.spec == P("model", None)
    step = plan.jit(step_fn, state)
    got_state, got = step(state, plan.place_batch(batch))
    np.testing.assert_allclose(float(got["loss"]), float(want["loss"]), rtol=1e-6)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                                   rtol=1e-5, atol=1e-6),
                           got_state, want_state)
    text = str(step.trace(state, batch))
    assert '%state.model.block.attn.q_proj.weight: f32[8,8]{"model", none}' in text
    assert '%batch.x: i32[4,6]{"data", none}' in text
    # each split Linear constrains its output, in its module's scope; the backward too
    for scope, spec in (("block.attn.q_proj", '("data", none, "model")'),
                        ("block.attn.out_proj", '("data", none, none)'),
                        ("block.mlp.0", '("data", none, "model")'), ("block.mlp.2", '("data", none, none)')):
        assert re.search(rf"sharding_constraint\(%\w+, spec={re.escape(spec)}, .*  {re.escape(scope)}$",
                         text, re.M), scope
    assert "grad/block/mlp/0/sharding_constraint" in text
    assert str(tg.parse(text)) == text


def test_fit_takes_the_plan_step_as_it_is():
    model, batch = _lm_and_batch()
    opt = tg.optim.sgd(0.1)
    plan = tg.nn.parallel.plan(model, tg.nn.parallel.parse_mesh("data=1"))
    state = plan.place(tg.train.TrainState(model, opt.init(model), 0))
    step = plan.jit(tg.train.make_step(_lm_loss, opt), state)
    assert tg.train.compile_step(step, "jit") is step
    state, hist = tg.train.fit(step, plan.batches([batch, batch]), state=state, progress=False)
    assert len(hist.losses) == 2 and hist.losses[1] < hist.losses[0]


# -- eight devices, in subprocesses (-m slow) ------------------------------------------------


def _run8(code: str, timeout=300):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


_STEPS_ON_EIGHT = r"""
    import re
    import jax, numpy as np, pytest, tracegraph as tg
    from jax.sharding import PartitionSpec as P
    from test_parallel import LM, _lm_loss
    assert len(jax.devices()) == 8
    model = LM(vocab=11, dim=8, heads=2, key=tg.random.key(0))
    ids = np.random.RandomState(0).randint(0, 11, (8, 6)).astype(np.int32)
    batch = {"x": ids, "y": np.roll(ids, -1, 1)}
    opt = tg.optim.sgd(0.1)
    step_fn = tg.train.make_step(_lm_loss, opt)
    state0 = tg.train.TrainState(model, opt.init(model), 0)
    plain = tg.jit(step_fn)
    want, want_losses = state0, []
    for _ in range(2):
        want, m = plain(want, batch)
        want_losses.append(float(m["loss"]))

    def collectives(hlo):  # {(collective, replica groups)} of a compiled module's text
        return set(re.findall(r"(?<![%\w.-])(all-reduce|all-gather|reduce-scatter)(?:-start)?\("
                              r".*?replica_groups=(.+?), (?=[a-z_]+=)", hlo))

    model_pairs = ("[4,2]<=[8]", "{{0,1},{2,3},{4,5},{6,7}}")  # XLA's two spellings

    for spec in ("data=8", "data=4,model=2"):
        plan = tg.nn.parallel.plan(model, tg.nn.parallel.parse_mesh(spec))
        state = plan.place(state0)
        step = plan.jit(step_fn, state)
        placed = plan.place_batch(batch)
        got, losses = state, []
        for _ in range(2):
            got, m = step(got, placed)
            losses.append(float(m["loss"]))
        np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5), got, want)
        w = got.model.block.mlp.layers[0].weight
        hlo = step.lower(state, placed).compile().as_text()
        found = collectives(hlo)
        text = str(step.trace(state, placed))
        if spec == "data=8":
            # replicated parameters, batch split 8 ways: gradients summed over all devices
            assert w.sharding.spec == P() and {op for op, _ in found} == {"all-reduce"}, found
            assert not any(groups in model_pairs for _, groups in found), found
            assert '%batch.x: i32[8,6]{"data", none}' in text
        else:
            # tensor parallel: each device holds half of each split weight (its columns or
            # rows), XLA sums the row-parallel products over each model pair {0,1} {2,3} ...,
            # and the replicated parameters' gradients over the data groups {0,2,4,6} ...
            assert w.sharding.spec == P("model", None)
            assert {s.data.shape for s in w.addressable_shards} == {(16, 8)}
            assert any(op == "all-reduce" and groups in model_pairs for op, groups in found), found
            assert '%state.model.block.mlp.0.weight: f32[32,8]{"model", none}' in text
            assert 'mesh_axes=("data", "model"), mesh_shape=(4, 2))  # test_parallel.py' in text
        print(spec, sorted(found), flush=True)

    # a batch that does not split over the data axis: a clear error, before anything runs
    with pytest.raises(tg.ShapeError, match=r"\['x'\] has 6 rows .* mesh axis 'data' of size 4"):
        plan.place_batch({"x": ids[:6], "y": ids[:6]})
    with pytest.raises(tg.ShapeError, match=r"in_shardings of batch.x: dimension 0 of i32\[6,6\] has "
                                            r"size 6, which does not split into 4 shards .*\(at <string>"):
        step(state, {"x": ids[:6], "y": ids[:6]})
    print("ok")
"""


@pytest.mark.slow
def test_data_and_tensor_parallel_steps_on_eight_devices():
    out = _run8(_STEPS_ON_EIGHT)
    assert "data=4,model=2" in out


_EXAMPLE_ON_EIGHT = """
    import sys
    sys.path.insert(0, {examples!r})
    import numpy as np
    import {name}
    one = {name}.main({argv!r})
    mesh = {name}.main({argv!r} + ["--mesh", {mesh!r}])
    print(one["losses"], mesh["losses"])
    np.testing.assert_allclose(mesh["losses"], one["losses"], rtol=1e-4)
    print("ok")
"""

_EXAMPLE_ARGS = ["--steps", "3", "--no-progress", "--batch-size", "8"]


@pytest.mark.slow
@pytest.mark.skipif(not has_module("sklearn"), reason="the examples need scikit-learn")
def test_transformer_example_on_a_data_and_model_mesh():
    argv = _EXAMPLE_ARGS + ["--max-chars", "20000", "--seq-len", "12", "--dim", "16", "--heads", "2",
                            "--layers", "1", "--sample-length", "4"]
    out = _run8(_EXAMPLE_ON_EIGHT.format(examples=str(ROOT / "examples"), name="transformer",
                                         argv=argv, mesh="data=4,model=2"))
    assert "mesh: <tg.nn.parallel.Plan mesh={'data': 4, 'model': 2}" in out
    assert "[jit, mesh {'data': 4, 'model': 2}]" in out


@pytest.mark.slow
@pytest.mark.skipif(not has_module("sklearn"), reason="the examples need scikit-learn")
def test_cnn_example_on_eight_devices_runs_itself_again_with_the_flag():
    # as a script with one CPU device: it runs itself again with XLA_FLAGS for 8 devices
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "cnn.py"), *_EXAMPLE_ARGS,
                           "--mesh", "data=8"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "running again with XLA_FLAGS=--xla_force_host_platform_device_count=8" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("trained 3 steps"))
    assert "[jit, mesh {'data': 8}]" in line
    first, last = map(float, re.search(r"loss (\S+) -> (\S+)$", line).groups())
    # the same three steps on one device, here
    sys.path.insert(0, str(ROOT / "examples"))
    import cnn

    one = cnn.main(_EXAMPLE_ARGS)
    assert math.isclose(first, one["losses"][0], rel_tol=1e-3) and math.isclose(last, one["losses"][-1], rel_tol=1e-3)
    # a batch size that does not split over the data axis: one clear line
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "cnn.py"), "--steps", "1",
                           "--no-progress", "--batch-size", "12", "--mesh", "data=8"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert ("cnn.py: error: --mesh data=8: --batch-size 12 does not split over the mesh axis 'data' "
            "of size 8") in proc.stderr, proc.stderr[-2000:]
