"""tg.shard_map and the collective ops (psum, pmean, pmax, pmin, all_gather,
psum_scatter, ppermute, all_to_all, axis_index): values and gradients against JAX's jax.shard_map in
tg.jit, the interpreter and define-by-run; the printed IR and its round trips; tg.from_jax
of JAX shard_map code (Flax BatchNorm with axis_name included); the errors.

The default tests run on a mesh of one device (no flag needed). The multi-device checks
need XLA_FLAGS=--xla_force_host_platform_device_count=8 before JAX is imported, so they
run in one subprocess (-m slow)."""

import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import tracegraph as tg

MODES = ("jit", "interpret", "eager")


def _run(mode, fn, *args):
    if mode == "jit":
        return tg.jit(fn)(*args)
    if mode == "interpret":
        return tg.jit(fn).interpret(*args)
    return tg.eager(fn)(*args)


def _mesh(shape=(1,), names=("data",)):
    return jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(names))


def _close(got, want, rtol=1e-5, atol=1e-5):
    jax.tree_util.tree_map(
        lambda g, w: np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol),
        got, want,
    )


# the same body twice: tracegraph's functions and jax.lax's (the names are JAX's)
def _body(lib, w, x):
    total, sin = (tg.sum, tg.sin) if lib is tg else (jnp.sum, jnp.sin)
    y = x @ w
    s = lib.psum(total(sin(y)), "data")
    m = lib.pmean(y, "data")
    g = lib.all_gather(x * 2.0, "data", axis=0, tiled=True)
    i = lib.axis_index("data")
    p = lib.ppermute(x, "data", [(0, 0)])
    r = lib.psum_scatter(x * x, "data", scatter_dimension=0, tiled=True)
    return s, m, g + i, p, r


_SPECS = dict(in_specs=(P(), P("data")), out_specs=(P(), P("data"), P("data"), P("data"), P("data")))
W = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)


def _tg_fn():
    return tg.shard_map(functools.partial(_body, tg), mesh=_mesh(), **_SPECS)


def _jax_fn():
    return jax.shard_map(functools.partial(_body, jax.lax), mesh=_mesh(), **_SPECS)


@pytest.mark.parametrize("mode", MODES)
def test_collectives_match_jax_shard_map(mode):
    _close(_run(mode, _tg_fn(), W, X), _jax_fn()(W, X))


def _loss(lib, fn):
    """A scalar of every output of ``fn`` (lib: tg or jax.lax, for the matching sum)."""
    total, cos = (tg.sum, tg.cos) if lib is tg else (jnp.sum, jnp.cos)

    def loss(w, x):
        s, m, g, p, r = fn(w, x)
        return s + total(cos(m)) + total(g * g) + total(p * 3.0) + total(r)

    return loss


# one mode by default (the op matrices run shard_map's samples in every mode), all with -m slow
@pytest.mark.parametrize("mode", [m if m == "interpret" else pytest.param(m, marks=pytest.mark.slow)
                                  for m in MODES])
def test_gradients_match_jax(mode):
    want = jax.grad(_loss(jax.lax, _jax_fn()), argnums=(0, 1))(W, X)
    got = _run(mode, tg.grad(_loss(tg, _tg_fn()), argnums=(0, 1)), W, X)
    _close(got, want)


def test_replicated_parameter_gradient_is_summed_once():
    # check_vma semantics: w is replicated, its use on the sharded batch is pvary'd, and
    # pvary's transpose (psum) sums its gradient over the shards
    def loss(w, x):
        return tg.psum(tg.sum(tg.tanh(x @ w)), "data")

    f = tg.shard_map(loss, mesh=_mesh(), in_specs=(P(), P("data")), out_specs=P())
    g = tg.trace(tg.grad(f), W, X)
    text = str(g)
    assert "pvary(" in text and "grad/pvary" in text
    jf = jax.shard_map(
        lambda w, x: jax.lax.psum(jnp.sum(jnp.tanh(x @ w)), "data"),
        mesh=_mesh(), in_specs=(P(), P("data")), out_specs=P(),
    )
    _close(tg.jit(tg.grad(f))(W, X), jax.grad(jf)(W, X))


def test_printed_ir_names_mesh_specs_and_collectives(tmp_path):
    g = tg.trace(_tg_fn(), W, X)
    text = str(g)
    for part in (
        'shard_map(%w, %x, mesh_axes=("data",), mesh_shape=(1,)',
        'in_specs=((none, none), ("data", none))',
        'psum(', 'pmean(', 'all_gather(', 'axis_index(axes=("data",))', "ppermute(", "psum_scatter(",
        "check_vma=true",
    ):
        assert part in text, part
    want = g(W, X)
    for h in (tg.parse(text), tg.Graph.from_json(g.to_json())):
        assert str(h) == text
        _close(h(W, X), want)
    tg.save(g, tmp_path / "g.json")
    h = tg.load(tmp_path / "g.json")
    assert str(h) == text
    _close(h.interpret(W, X), want)


def test_bad_specs_are_refused_on_parse():
    text = str(tg.trace(_tg_fn(), W, X)).replace('("data", none)), out', '("model", none)), out', 1)
    with pytest.raises(tg.IRError, match="model"):
        tg.parse(text)


def test_collective_outside_shard_map_names_op_axis_and_line():
    def f(x):
        return tg.psum(x, "data")  # the line the error names

    line = f.__code__.co_firstlineno + 1
    for run in (tg.jit(f), tg.eager(f), f):
        with pytest.raises(tg.ShapeError, match=rf"psum over mesh axis 'data' outside tg.shard_map.*test_shard_map.py:{line}"):
            run(X)
    inner = tg.shard_map(lambda x: tg.all_gather(x, "model"), mesh=_mesh(), in_specs=P("data"), out_specs=P("data"))
    with pytest.raises(tg.ShapeError, match=r"all_gather over mesh axis 'model' inside a shard_map over \['data'\]"):
        tg.jit(inner)(X)


def test_mesh_larger_than_the_devices_is_one_clear_error():
    f = tg.shard_map(lambda x: tg.psum(x, "data"), mesh={"data": 4096}, in_specs=P("data"), out_specs=P())
    x = np.zeros((4096,), np.float32)
    for run in (tg.jit(f), tg.eager(f)):
        with pytest.raises(tg.Error, match=r"needs 4096 devices, 1 cpu device\(s\) are available.*device_count=4096"):
            run(x)


def test_check_vma_false_runs_but_has_no_vjp():
    f = tg.shard_map(lambda x: tg.psum(x, "data"), mesh=_mesh(), in_specs=P("data"), out_specs=P(), check_vma=False)
    _close(tg.jit(f)(X), X)
    with pytest.raises(tg.Error, match="check_vma=False"):
        tg.jit(tg.grad(lambda x: tg.sum(f(x))))(X)


def test_decorator_closure_and_pytrees():
    y = tg.ones((3,))

    mesh = jax.make_mesh((1,), ("data",))  # JAX's default (Explicit) axes: only names and sizes count

    @functools.partial(tg.shard_map, mesh=mesh, in_specs=({"a": P("data")},), out_specs=P())
    def f(d):
        return tg.pmax(tg.sum(d["a"] * y, axis=0), "data")  # y: closed over, replicated

    _close(tg.jit(f)({"a": X}), X.sum(0))
    _close(tg.eager(f)({"a": X}), X.sum(0))


# -- tg.from_jax ------------------------------------------------------------------------------


@pytest.mark.slow
def test_from_jax_converts_shard_map_and_collectives():
    jf = _jax_fn()
    g = tg.trace(tg.from_jax(jf), W, X)
    text = str(g)
    assert "shard_map(" in text and "psum(" in text and "psum_scatter(" in text and "pvary(" in text
    for mode in MODES:
        _close(_run(mode, tg.from_jax(jf), W, X), jf(W, X))
    loss = jax.shard_map(
        lambda w, x: jax.lax.psum(jnp.sum(jnp.sin(x @ w)), "data"), mesh=_mesh(), in_specs=(P(), P("data")),
        out_specs=P(),
    )
    _close(tg.jit(tg.grad(tg.from_jax(loss), argnums=(0, 1)))(W, X), jax.grad(loss, argnums=(0, 1))(W, X))


def test_from_jax_flax_batchnorm_with_axis_name():
    nn = pytest.importorskip("flax.linen")
    bn = nn.BatchNorm(use_running_average=False, axis_name="data")
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    variables = bn.init(jax.random.key(0), x)

    def apply(v, x):
        return bn.apply(v, x, mutable=["batch_stats"])

    sm = jax.shard_map(apply, mesh=_mesh(), in_specs=(P(), P("data")), out_specs=(P("data"), P()))
    _close(tg.jit(tg.from_jax(sm))(variables, x), sm(variables, x))
    # under jax.vmap(axis_name=...) JAX batches the collectives into reductions over the
    # mapped array axis (positional psum axes): they convert to tracegraph reductions
    vm = jax.vmap(lambda r: bn.apply(variables, r[None], mutable=["batch_stats"])[0][0], axis_name="data")
    _close(tg.jit(tg.from_jax(vm))(x), vm(x))


# -- eight devices, in a subprocess ----------------------------------------------------------

_EIGHT = textwrap.dedent(
    r'''
    import functools, jax, jax.numpy as jnp, numpy as np
    import tracegraph as tg
    from jax.sharding import PartitionSpec as P
    assert len(jax.devices()) == 8, jax.devices()
    AUTO = jax.sharding.AxisType.Auto
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AUTO,))
    mesh2 = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AUTO, AUTO))
    rng = np.random.default_rng(0)
    checks = 0

    def close(got, want, tol=1e-4):
        global checks
        jax.tree_util.tree_map(lambda g, w: np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=tol, atol=tol), got, want)
        checks += 1

    def runs(fn):
        return (tg.jit(fn), tg.jit(fn).interpret, tg.eager(fn))

    # 1. a data-parallel step: batch sharded, params replicated, psum of the gradients
    w = rng.normal(size=(5, 3)).astype(np.float32); x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)

    def loss(w, x, y):
        return tg.sum((x @ w - y) ** 2)

    def step_body(w, x, y):
        g = tg.psum(tg.grad(loss)(w, x, y), "data") / 64.0
        return w - 0.1 * g

    step = tg.jit(tg.shard_map(step_body, mesh=mesh, in_specs=(P(), P("data"), P("data")), out_specs=P()))
    want = w - 0.1 * tg.jit(tg.grad(loss))(w, x, y) / 64.0
    close(step(w, x, y), want)
    hlo = step.lower(w, x, y).compile().as_text()
    assert "all-reduce" in hlo, hlo[:2000]
    checks += 1

    # 2. the same step with the gradient of the sharded loss (shard_map's VJP)
    def sharded_loss(w, x, y):
        return tg.psum(loss(w, x, y), "data")

    sl = tg.shard_map(sharded_loss, mesh=mesh, in_specs=(P(), P("data"), P("data")), out_specs=P())
    for run in runs(tg.grad(sl)):
        close(run(w, x, y), tg.jit(tg.grad(loss))(w, x, y))

    # 3. every collective, values and gradients, against jax.shard_map
    def body(lib, w, x):
        h = x @ w
        s = lib.psum(h, "data"); m = lib.pmean(jnp.sin(h) if lib is jax.lax else tg.sin(h), "data")
        sg = jax.lax.stop_gradient if lib is jax.lax else tg.stop_gradient  # no JAX VJP
        mx = lib.pmax(sg(h), "data"); mn = lib.pmin(sg(h), "data")
        g = lib.all_gather(h, "data", axis=1, tiled=False)
        gt = lib.all_gather(h, "data", axis=0, tiled=True)
        i = lib.axis_index("data")
        p = lib.ppermute(h * (i + 1.0), "data", [(j, (j + 1) % 8) for j in range(8)])
        p2 = lib.ppermute(h, "data", [(0, 3), (5, 1)])
        r = lib.psum_scatter(gt, "data", scatter_dimension=0, tiled=True)
        r2 = lib.psum_scatter(g * 1.5, "data", scatter_dimension=1, tiled=False)
        a = lib.all_to_all(h, "data", 0, 1, tiled=True)
        a2 = lib.all_to_all(h * 2.0, "data", 0, 1)
        return s, m, mx, mn, g, gt, p, p2, r, r2, i, a, a2

    specs = dict(in_specs=(P(), P("data")), out_specs=(P(), P(), P(), P(), P("data"), P("data"), P("data"), P("data"), P("data"), P("data"), P("data"), P("data"), P("data")))
    jf = jax.shard_map(lambda w, x: tuple(o if k != 10 else o[None] for k, o in enumerate(body(jax.lax, w, x))), mesh=mesh, **specs)
    tf = tg.shard_map(lambda w, x: tuple(o if k != 10 else tg.reshape(o, (1,)) for k, o in enumerate(body(tg, w, x))), mesh=mesh, **specs)
    for run in runs(tf):
        close(run(w, x), jf(w, x))

    def scalar(lib, f):
        def l(w, x):
            outs = f(w, x)
            tot = 0.0
            for k in (0, 1, 4, 5, 6, 7, 8, 9, 11):  # (jax.grad fails on a2, untiled all_to_all)
                tot = tot + (jnp.sum(jnp.cos(outs[k])) if lib is jax.lax else tg.sum(tg.cos(outs[k])))
            return tot
        return l

    # pmax/pmin have no JAX gradient: their values are checked above, their VJP below
    want = jax.grad(scalar(jax.lax, jf), argnums=(0, 1))(w, x)
    for run in runs(tg.grad(scalar(tg, tf), argnums=(0, 1))):
        close(run(w, x), want)

    # pmax's VJP against finite differences (distinct values: no ties)
    pm = tg.shard_map(lambda x: tg.pmax(x, "data"), mesh=mesh, in_specs=P("data"), out_specs=P())
    xs = rng.normal(size=(8, 3)).astype(np.float64)
    with jax.enable_x64(True):
        g = tg.jit(tg.grad(lambda x: tg.sum(pm(x) * np.arange(3.0))))(xs)
        want = np.zeros_like(xs); want[np.argmax(xs, 0), np.arange(3)] = np.arange(3.0)
        close(g, want)

    # 4. two mesh axes
    def body2(lib, x):
        a = lib.psum(x, ("data", "model")); b = lib.pmean(x, "model")
        c = lib.all_gather(x, "model", axis=0, tiled=True); i = lib.axis_index(("data", "model"))
        return a, b, c, (x * 0 + i)

    specs2 = dict(in_specs=P("data", "model"), out_specs=(P(), P("data"), P("data", "model"), P("data", "model")))
    x2 = rng.normal(size=(4, 8)).astype(np.float32)
    jf2 = jax.shard_map(functools.partial(body2, jax.lax), mesh=mesh2, **specs2)
    tf2 = tg.shard_map(functools.partial(body2, tg), mesh=mesh2, **specs2)
    for run in runs(tf2):
        close(run(x2), jf2(x2))
    tsum = lambda o: sum(tg.sum(tg.sin(v)) for v in o[:3])
    jsum = lambda o: sum(jnp.sum(jnp.sin(v)) for v in o[:3])
    close(tg.jit(tg.grad(lambda x: tsum(tf2(x))))(x2), jax.grad(lambda x: jsum(jf2(x)))(x2))
    text = str(tg.trace(tf2, x2))
    assert 'mesh_axes=("data", "model"), mesh_shape=(2, 4)' in text and 'axes=("data", "model")' in text, text
    close(tg.parse(text)(x2), jf2(x2))

    # 5. tg.from_jax of JAX shard_map code on eight devices, Flax BatchNorm included
    conv = tg.from_jax(jf)
    close(tg.jit(conv)(w, x), jf(w, x))
    close(tg.jit(tg.grad(tg.from_jax(scalar(jax.lax, jf)), argnums=(0, 1)))(w, x),
          jax.grad(scalar(jax.lax, jf), argnums=(0, 1))(w, x))
    import flax.linen as nn
    bn = nn.BatchNorm(use_running_average=False, axis_name="data")
    v = bn.init(jax.random.key(0), x)
    sm = jax.shard_map(lambda v, x: bn.apply(v, x, mutable=["batch_stats"]), mesh=mesh,
                       in_specs=(P(), P("data")), out_specs=(P("data"), P()))
    close(tg.jit(tg.from_jax(sm))(v, x), sm(v, x))
    whole = nn.BatchNorm(use_running_average=False).apply(v, x, mutable=["batch_stats"])
    close(tg.jit(tg.from_jax(sm))(v, x), whole)  # = BatchNorm of the whole batch
    print("CHECKS", checks)
    '''
)


@pytest.mark.slow
def test_eight_devices_in_a_subprocess():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _EIGHT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "CHECKS" in proc.stdout
