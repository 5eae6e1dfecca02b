"""tg.with_sharding_constraint: an IR op whose output type carries the placement (printed,
parsed, in JSON and files), lowered to jax.lax.with_sharding_constraint, placing values
with jax.device_put op by op; from_jax maps JAX's sharding constraints. Eight devices need
XLA_FLAGS before JAX is imported: that check runs in a subprocess (-m slow)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import tracegraph as tg
from op_matrix import MODES, run_mode

MESH = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Auto,))
X = np.arange(12, dtype=np.float32).reshape(4, 3)


def placed(x):
    h = tg.with_sharding_constraint(x * 2.0, NamedSharding(MESH, P("data")))
    return tg.relu(h) + 1.0


def test_the_printed_graph_shows_the_placement_and_survives_round_trips(tmp_path):
    g = tg.trace(placed, X)
    text = str(g)
    assert 'sharding_constraint(%0, spec=("data", none), mesh_axes=("data",), mesh_shape=(1,))' in text
    assert '-> (f32[4,3]{"data", none})' in text  # propagated to the output's type
    tg.save(g, tmp_path / "g.tg")
    for back in (tg.parse(text), tg.Graph.from_json(g.to_json()), tg.load(tmp_path / "g.tg")):
        assert str(back) == text
        np.testing.assert_array_equal(np.asarray(back.interpret(X)), np.asarray(g.interpret(X)))


@pytest.mark.parametrize("mode", MODES)
def test_values_and_gradients_are_unchanged(mode):
    np.testing.assert_array_equal(np.asarray(run_mode(mode, placed, (X,))), np.maximum(2 * X, 0) + 1)
    grad = run_mode(mode, tg.grad(lambda x: placed(x).sum()), (X,))
    np.testing.assert_array_equal(np.asarray(grad), np.where(X > 0, 2.0, 0.0))


def test_from_jax_keeps_the_constraint():
    def f(x):
        return jax.lax.with_sharding_constraint(x * 2.0, NamedSharding(MESH, P("data", None)))

    g = tg.trace(tg.from_jax(f), X)
    assert [n.op for n in g.nodes][-1] == "sharding_constraint"
    np.testing.assert_array_equal(np.asarray(tg.jit(tg.from_jax(f))(X)), np.asarray(f(X)))


def test_bad_specs_are_shape_errors():
    with pytest.raises(tg.ShapeError, match="entries for a value of rank 2"):
        tg.trace(lambda x: tg.with_sharding_constraint(x, NamedSharding(MESH, P("data", None, None))), X)
    with pytest.raises(tg.ShapeError, match="NamedSharding or a PartitionSpec"):
        tg.trace(lambda x: tg.with_sharding_constraint(x, "data"), X)


_EIGHT = textwrap.dedent("""
    import jax, numpy as np, tracegraph as tg
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    assert len(jax.devices()) == 8
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    want = NamedSharding(mesh, P("data", "model"))

    def f(x):
        return tg.with_sharding_constraint(x * 2.0, want) + 1.0

    x = np.arange(64, dtype=np.float32).reshape(8, 8)
    for name, out in (("jit", tg.jit(f)(x)), ("eager", tg.eager(f)(x)),
                      ("interpret", tg.trace(f, x).interpret(x))):
        np.testing.assert_array_equal(np.asarray(out), x * 2 + 1)
        # compiled, XLA's partitioner places the result as constrained; op by op the
        # constraint's device_put did, and the elementwise op after it kept the placement
        assert out.sharding.is_equivalent_to(want, 2), (name, out.sharding)
    hlo = tg.jit(f).lower(x).compile().as_text()
    assert "sharding={devices=[4,2]" in hlo, hlo[:2000]
    print("ok")
""")


@pytest.mark.slow
def test_eight_devices_in_a_subprocess():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _EIGHT], env=env, capture_output=True, text=True,
                          timeout=600, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
