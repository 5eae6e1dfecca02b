"""tg.from_jax on Flax models: linen and nnx models against JAX in every mode, their
scopes in the printed graph, gradients through them, and a Flax CNN trained under tg.jit
step for step like jax.jit. Flax is an optional extra (in `.[test]`): without it these
tests skip."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

nn = pytest.importorskip("flax.linen")
nnx = pytest.importorskip("flax.nnx")

import tracegraph as tg  # noqa: E402

from op_matrix import MODES, run_mode  # noqa: E402

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(dtype)


def assert_tree_close(got, want, rtol=2e-5, atol=2e-6):
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        g, w = jnp.asarray(g), jnp.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


# -- Flax linen --------------------------------------------------------------------------------


class MLP(nn.Module):
    hidden: int = 16

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.gelu(nn.Dense(self.hidden)(x))
        return nn.Dense(3)(x)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.Conv(6, (3, 3), padding="VALID")(x)
        x = nn.avg_pool(x, (2, 2), strides=(1, 1), padding="SAME")
        x = nn.LayerNorm()(x.reshape((x.shape[0], -1)))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(3)(x)


def _linen(model, x):
    return model, model.init(jax.random.key(0), x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "make", [pytest.param(lambda: MLP(), id="mlp"), pytest.param(lambda: CNN(), id="cnn", marks=pytest.mark.slow)]
)  # the CNN (about 10 s in all modes) runs with -m slow: the default run's 10-minute margin
def test_linen_models_match_jax(make, mode):
    model = make()
    x = rand(4, 8, 8, 1) if isinstance(model, CNN) else rand(4, 5)
    model, params = _linen(model, x)
    apply = tg.from_jax(model.apply)
    got = run_mode(mode, lambda p, v: apply(p, v), (params, x))
    assert_tree_close(got, model.apply(params, x), 1e-5, 1e-5)


def test_linen_graph_prints_with_from_jax_scopes():
    model, params = _linen(CNN(), rand(2, 8, 8, 1))
    apply = tg.from_jax(model.apply)
    g = tg.trace(lambda p, x: apply(p, x, train=False), params, rand(2, 8, 8, 1))
    text = str(g)
    assert "conv_general(" in text and "max_pool2d(" in text and "avg_pool2d(" in text
    scopes = {n.scope for n in g.nodes}
    assert "from_jax/apply.CNN.Conv_0" in scopes and "from_jax/apply.CNN.Dense_0" in scopes
    assert re.search(r"test_from_flax\.py:\d+\s+from_jax/apply\.CNN\.LayerNorm_0", text)
    g.verify()


def test_linen_static_flag_and_jaxpr_cache():
    model, params = _linen(CNN(), rand(2, 8, 8, 1))
    apply = tg.from_jax(model.apply)
    f = lambda p, x: apply(p, x, train=False)  # noqa: E731  (a bool stays static)
    tg.trace(f, params, rand(2, 8, 8, 1))
    tg.trace(f, params, rand(2, 8, 8, 1))
    assert len(apply._cache) == 1
    tg.trace(f, params, rand(3, 8, 8, 1))
    assert len(apply._cache) == 2


# -- Flax nnx -----------------------------------------------------------------------------------


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.norm = nnx.LayerNorm(4 * 6 * 6, rngs=rngs)
        self.out = nnx.Linear(4 * 6 * 6, 2, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.conv(x))
        h = nn.max_pool(h, (2, 2), (1, 1))  # linen's pooling functions are plain JAX
        h = h[:, :6, :6].reshape(x.shape[0], -1)
        return self.out(jax.nn.silu(self.norm(h)))


@pytest.mark.parametrize("mode", MODES)
def test_nnx_module_through_split_merge(mode):
    net = NnxNet(nnx.Rngs(0))
    graphdef, state = nnx.split(net)

    def pure(state, x):
        return nnx.merge(graphdef, state)(x)

    x = rand(3, 8, 8, 1)
    got = run_mode(mode, tg.from_jax(pure), (state, x))
    assert_tree_close(got, net(x), 1e-5, 1e-5)


def test_nnx_gradient_matches_jax():
    net = NnxNet(nnx.Rngs(1))
    graphdef, state = nnx.split(net)
    pure = tg.from_jax(lambda s, x: nnx.merge(graphdef, s)(x), name="net")
    x, y = rand(3, 8, 8, 1), rand(3, 2)
    got = tg.jit(tg.grad(lambda s: tg.mean((pure(s, x) - y) ** 2)))(state)
    want = jax.grad(lambda s: jnp.mean((nnx.merge(graphdef, s)(x) - y) ** 2))(state)
    assert_tree_close(got, want, 2e-4, 1e-5)


# -- gradients ---------------------------------------------------------------------------------


def _mse(apply):
    def loss(params, x, y):
        return tg.mean((apply(params, x) - y) ** 2)

    return loss


# by default the MLP in jit (the forward test runs it in every mode); the rest with -m slow
@pytest.mark.parametrize("mode", [m if m == "jit" else pytest.param(m, marks=pytest.mark.slow) for m in MODES])
@pytest.mark.parametrize("which", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_grad_through_linen_matches_jax_grad(which, mode):
    model = MLP() if which == "mlp" else CNN()
    x = rand(4, 5) if which == "mlp" else rand(4, 8, 8, 1)
    model, params = _linen(model, x)
    y = rand(4, 3)
    got = run_mode(mode, tg.grad(_mse(tg.from_jax(model.apply))), (params, x, y))
    want = jax.grad(lambda p: jnp.mean((model.apply(p, x) - y) ** 2))(params)
    assert_tree_close(got, want, 2e-4, 2e-6)


# -- training -----------------------------------------------------------------------------------


def _task(n=64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 6, 6, 1)).astype(np.float32)
    labels = (x[:, :3].sum((1, 2, 3)) > x[:, 3:].sum((1, 2, 3))).astype(np.int32)
    return x, np.eye(3, dtype=np.float32)[labels]


class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), (2, 2)).reshape((x.shape[0], -1))
        return nn.Dense(3)(nn.tanh(nn.Dense(16)(x)))


def test_flax_model_trains_under_tg_jit_like_jax_jit():
    x, y = _task()
    model = SmallCNN()
    params = model.init(jax.random.key(0), x)
    apply = tg.from_jax(model.apply)
    opt = tg.optim.adam(1e-2)

    def loss(p):
        return -tg.mean(tg.sum(y * tg.log_softmax(apply(p, x)), axis=-1))

    @tg.jit
    def step(p, s):
        value, g = tg.value_and_grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return tg.optim.apply_updates(p, updates), s, value

    def jloss(p):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(model.apply(p, x)), axis=-1))

    @jax.jit
    def jstep(p, s):
        value, g = jax.value_and_grad(jloss)(p)
        updates, s = opt.tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, value

    p, s = params, opt.init(params)
    jp, js = params, opt.tx.init(params)
    losses, jlosses = [], []
    for _ in range(50):
        p, s, value = step(p, s)
        jp, js, jvalue = jstep(jp, js)
        losses.append(float(value))
        jlosses.append(float(jvalue))
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_allclose(losses, jlosses, rtol=2e-3, atol=1e-4)
    assert_tree_close(p, jp, 2e-3, 2e-4)
    # the printed train step has the forward model, its backward and Adam's update
    text = str(step.trace(params, opt.init(params)))
    assert "from_jax/apply.SmallCNN.Conv_0" in text and "grad/" in text
    assert "from_jax/adam.update" in text and "sqrt(" in text
