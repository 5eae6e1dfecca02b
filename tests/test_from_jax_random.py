"""tg.from_jax on JAX's PRNG and on real model code in train mode: every jax.random sampler
that converts gives JAX's bits for the same key (typed or raw) in every mode; Flax linen
and NNX, Haiku and Equinox models with dropout (and BatchNorm) in train mode, and whole
JAX train steps (value_and_grad + an optax chain with clipping, AdamW and a schedule),
equal jax.jit step for step. Haiku and Equinox are test extras: without them their
tests skip."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegraph as tg
from op_matrix import EXHAUSTIVE, MODES, run_mode

RNG = np.random.default_rng(0)


def data(x):
    """A leaf as float64 numpy: a typed key as its data."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x, np.float64)


def assert_trees_equal(got, want, rtol=0.0, atol=0.0):
    got, want = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        np.testing.assert_allclose(data(g), data(w), rtol=rtol, atol=atol)


def convert(mode, fn, args):
    """``tg.from_jax(fn)`` run in ``mode`` (plain: called at once, op by op)."""
    g = tg.from_jax(fn)
    return g(*args) if mode == "plain" else run_mode(mode, g, args)


# -- jax.random's samplers ---------------------------------------------------------------

S = (3, 4)
SAMPLERS = {
    "normal": lambda k: jax.random.normal(k, S),
    "normal-f16": lambda k: jax.random.normal(k, S, jnp.float16),
    "uniform": lambda k: jax.random.uniform(k, S, minval=-2.0, maxval=3.0),
    "uniform-bf16": lambda k: jax.random.uniform(k, S, jnp.bfloat16),
    "bernoulli": lambda k: jax.random.bernoulli(k, 0.3, S),
    "randint": lambda k: jax.random.randint(k, S, -5, 10),
    "randint-u8": lambda k: jax.random.randint(k, S, 0, 200, jnp.uint8),
    "bits": lambda k: jax.random.bits(k, S),
    "bits-u16": lambda k: jax.random.bits(k, S, jnp.uint16),
    "categorical": lambda k: jax.random.categorical(k, jnp.log(jnp.array([0.2, 0.3, 0.5])), shape=S),
    "gumbel": lambda k: jax.random.gumbel(k, S),
    "laplace": lambda k: jax.random.laplace(k, S),
    "logistic": lambda k: jax.random.logistic(k, S),
    "exponential": lambda k: jax.random.exponential(k, S),
    "cauchy": lambda k: jax.random.cauchy(k, S),
    "rademacher": lambda k: jax.random.rademacher(k, S),
    "maxwell": lambda k: jax.random.maxwell(k, S),
    "double_sided_maxwell": lambda k: jax.random.double_sided_maxwell(k, 0.0, 1.0, S),
    "weibull_min": lambda k: jax.random.weibull_min(k, 1.0, 2.0, S),
    "pareto": lambda k: jax.random.pareto(k, 2.0, S),
    "lognormal": lambda k: jax.random.lognormal(k, 1.0, S),
    "rayleigh": lambda k: jax.random.rayleigh(k, 1.0, S),
    "wald": lambda k: jax.random.wald(k, 1.0, S),
    "triangular": lambda k: jax.random.triangular(k, 0.0, 1.0, 2.0, S),
    "binomial": lambda k: jax.random.binomial(k, 10.0, 0.3, S),
    "geometric": lambda k: jax.random.geometric(k, 0.3, S),
    "permutation": lambda k: jax.random.permutation(k, 7),
    "permutation-independent": lambda k: jax.random.permutation(
        k, jnp.arange(12.0).reshape(3, 4), axis=1, independent=True),
    "choice": lambda k: jax.random.choice(k, 9, (4,)),
    "choice-no-replace": lambda k: jax.random.choice(k, 9, (4,), replace=False),
    # weighted: a cumulative sum and a searchsorted (total-order comparisons)
    "choice-p": lambda k: jax.random.choice(k, 5, S, p=jnp.array([0.1, 0.2, 0.3, 0.2, 0.2])),
    "multinomial": lambda k: jax.random.multinomial(k, 10.0, jnp.array([0.2, 0.3, 0.5]),
                                                    shape=(4, 3)),
    "split-fold-in": lambda k: jax.random.key_data(
        jax.random.fold_in(jax.random.split(k, (2, 3))[1, 2], 11)),
    "clone": lambda k: jax.random.normal(jax.random.clone(k), S),
    # through nextafter, lgamma and random_gamma (slow only: not in DEFAULT_SAMPLERS)
    "truncated_normal": lambda k: jax.random.truncated_normal(k, -1.0, 2.0, S),
    "poisson": lambda k: jax.random.poisson(k, jnp.array([0.5, 3.0, 30.0, 200.0]), S),
    "gamma": lambda k: jax.random.gamma(k, jnp.array([0.3, 1.0, 2.5, 40.0]), S),
    "loggamma": lambda k: jax.random.loggamma(k, 0.05, (5,)),
    "beta": lambda k: jax.random.beta(k, 2.0, jnp.array([0.5, 1.0, 3.0, 7.0]), S),
    "dirichlet": lambda k: jax.random.dirichlet(k, jnp.array([0.5, 1.0, 2.0]), (4,)),
    "chisquare": lambda k: jax.random.chisquare(k, 3.0, S),
    "t": lambda k: jax.random.t(k, 4.0, S),
    "f": lambda k: jax.random.f(k, 3.0, 5.0, S),
    "ball": lambda k: jax.random.ball(k, 3, shape=(4,)),
    "generalized_normal": lambda k: jax.random.generalized_normal(k, 1.5, S),
}
KEYS = {"typed": jax.random.key(7), "raw": jax.random.PRNGKey(7),
        "rbg": jax.random.key(7, impl="rbg")}
THREEFRY_ONLY = {"poisson"}  # jax.random.poisson itself refuses rbg keys


def _cases(names, default):
    """``(name, mode)`` params: each name of ``default`` in its one mode by default; every
    other name in one mode with -m slow, the modes taking turns (the default run's ten
    minutes and CI's slow set are spent elsewhere); every name in every mode under
    TRACEGRAPH_EXHAUSTIVE=1."""
    out = []
    for i, name in enumerate(names):
        primary = default.get(name, MODES[i % len(MODES)])
        for mode in MODES:
            if mode != primary and not EXHAUSTIVE:
                continue
            marks = () if default.get(name) == mode else (pytest.mark.slow,)
            out.append(pytest.param(name, mode, marks=marks, id=f"{name}-{mode}"))
    return out


# the default run: a float, a low-precision float, a bool, an integer and an index draw,
# the key ops themselves, one mode each
DEFAULT_SAMPLERS = {"normal": "jit", "uniform-bf16": "interpret", "bernoulli": "eager",
                    "randint": "jit", "permutation": "interpret", "split-fold-in": "eager"}


@pytest.mark.parametrize("name,mode", _cases(sorted(SAMPLERS), DEFAULT_SAMPLERS))
def test_jax_random_sampler_converts_bit_for_bit(name, mode):
    """The random bits are JAX's exactly, so integer and bool draws are equal; a float
    draw is the same computation on them, rounded as op-by-op or as XLA fuses it (one
    float32 ulp apart, as jax.jit and JAX's op-by-op dispatch are)."""
    fn = SAMPLERS[name]
    for kind, key in KEYS.items():
        if kind == "rbg" and name in THREEFRY_ONLY:
            continue
        want = fn(key)
        exact = not jnp.issubdtype(want.dtype, jnp.floating)
        assert_trees_equal(convert(mode, fn, (key,)), want,
                           rtol=0 if exact else 1e-6, atol=0 if exact else 1e-7)


def test_jax_random_inside_vmap_and_scan():
    """Batched keys (vmap of a draw) and keys in a scan carry convert too."""
    def fn(key, x):
        keys = jax.random.split(key, x.shape[0])
        noisy = jax.vmap(lambda k, r: r + jax.random.normal(k, r.shape))(keys, x)

        def step(k, _):
            k, sub = jax.random.split(k)
            return k, jax.random.uniform(sub, (2,))

        return noisy, jax.lax.scan(step, key, None, length=4)

    x = RNG.normal(size=(5, 3)).astype(np.float32)
    for mode in MODES:
        assert_trees_equal(convert(mode, fn, (KEYS["typed"], x)), fn(KEYS["typed"], x), atol=1e-6)


def test_unsupported_samplers_name_their_primitive():
    with pytest.raises(tg.Error, match=r"qr \("):
        tg.jit(tg.from_jax(lambda k: jax.random.orthogonal(k, 3)))(KEYS["typed"])
    with pytest.raises(tg.Error, match=r"eigh \("):  # the Cholesky method converts
        tg.jit(tg.from_jax(lambda k: jax.random.multivariate_normal(k, jnp.zeros(2), jnp.eye(2), method="eigh")))(
            KEYS["typed"])


@pytest.mark.parametrize("mode", [m if m == "jit" else pytest.param(m, marks=pytest.mark.slow)
                                  for m in (*MODES, "tg.grad")])
def test_gamma_gradients_equal_jax_grad(mode):
    """random_gamma's gradient in ``a`` is JAX's implicit reparameterization (the op
    matrix cannot check it by finite differences: it is not the sampler's own derivative).
    Each mode compiles the samplers' rejection loops and their gradients (about 0.2 GB of
    XLA executables each): one mode in the default run, the rest with -m slow."""
    def loss(a, key):
        return (jax.random.gamma(key, a, (2, 3)) * jnp.arange(3.0)).sum() + jax.random.loggamma(
            key, a[0] + 1.0, (4,)).sum() + jax.random.beta(key, a, 2.0, (2, 3)).sum()

    a = np.array([0.4, 1.5, 6.0], np.float32)
    want = jax.grad(loss)(a, KEYS["typed"])
    if mode == "tg.grad":  # tracegraph's own gradient of the converted function
        got = tg.jit(tg.grad(lambda v: tg.sum(tg.from_jax(lambda b: loss(b, KEYS["typed"]))(v))))(a)
    else:
        got = convert(mode, jax.grad(loss), (a, KEYS["typed"]))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=1e-6)


# -- real model code in train mode -------------------------------------------------------


def _train_step(value_and_grad, tx):
    """A JAX train step as JAX users write it: value_and_grad, then the optax chain."""

    def step(params, opt_state, batch, key):
        loss, grads = value_and_grad(params, batch, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def _optimizer():
    schedule = optax.warmup_cosine_decay_schedule(0.0, 3e-3, 2, 10)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-2))


def check_train_steps(mode, value_and_grad, params, batch, steps=5, rtol=2e-5, atol=2e-6):
    """``steps`` AdamW+clip steps of ``tg.from_jax(train_step)`` in ``mode`` equal
    ``jax.jit(train_step)``'s: losses, parameters and optimizer state."""
    tx = _optimizer()
    step = _train_step(value_and_grad, tx)
    ours = tg.from_jax(step)
    ours = {"jit": tg.jit(ours), "eager": tg.eager(ours), "plain": ours}.get(mode, ours)
    theirs = jax.jit(step)
    p, s = params, tx.init(params)
    jp, js = params, tx.init(params)
    for i in range(steps):
        key = jax.random.fold_in(jax.random.key(42), i)
        if mode == "interpret":
            p, s, loss = tg.trace(tg.from_jax(step), p, s, batch, key).interpret(p, s, batch, key)
        else:
            p, s, loss = ours(p, s, batch, key)
        jp, js, jloss = theirs(jp, js, batch, key)
        np.testing.assert_allclose(float(loss), float(jloss), rtol=rtol, atol=atol)
    assert_trees_equal((p, s), (jp, js), rtol=10 * rtol, atol=10 * atol)


def _xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _batch(n=8, shape=(12,), classes=3):
    return RNG.normal(size=(n,) + shape).astype(np.float32), RNG.integers(0, classes, n).astype(np.int32)


FAMILIES = ["linen", "nnx", "haiku", "equinox"]


def _linen():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            x = nn.relu(nn.Dense(16)(x))
            x = nn.Dropout(0.3, deterministic=not train)(x)
            x = nn.LayerNorm()(x)
            return nn.Dense(3)(x)

    net, batch = Net(), _batch()
    params = net.init(jax.random.key(0), batch[0], False)

    def loss(params, batch, key):
        x, y = batch
        return _xent(net.apply(params, x, True, rngs={"dropout": key}), y)

    return jax.value_and_grad(loss), params, batch


def _nnx():
    nnx = pytest.importorskip("flax.nnx")

    class CNN(nnx.Module):
        def __init__(self, rngs):
            # no bias before BatchNorm (its gradient is rounding noise, which Adam scales up)
            self.conv = nnx.Conv(1, 4, (3, 3), use_bias=False, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.drop = nnx.Dropout(0.25, rngs=rngs)
            self.out = nnx.Linear(4 * 6 * 6, 3, rngs=rngs)

        def __call__(self, x):
            x = self.drop(nnx.relu(self.bn(self.conv(x))))
            return self.out(x.reshape(x.shape[0], -1))

    # as NNX trains: nnx.value_and_grad differentiates the parameters of the merged model
    # while train-mode BatchNorm updates its statistics; the rest of the state (batch
    # statistics, the Rngs' keys and counts) is an argument with the batch
    graphdef, params, rest = nnx.split(CNN(nnx.Rngs(0, dropout=1)), nnx.Param, ...)
    batch = _batch(shape=(6, 6, 1)) + (rest,)

    def value_and_grad(params, batch, key):
        x, y, rest = batch
        model = nnx.merge(graphdef, params, rest)
        model.drop.rngs = nnx.Rngs(dropout=key)  # a fresh dropout stream per step
        return nnx.value_and_grad(lambda m: _xent(m(x), y))(model)

    return value_and_grad, params, batch


def _haiku():
    hk = pytest.importorskip("haiku")

    def forward(x):
        x = jax.nn.relu(hk.Linear(16)(x))
        x = hk.dropout(hk.next_rng_key(), 0.3, x)
        return hk.Linear(3)(x)

    net, batch = hk.transform(forward), _batch()
    params = net.init(jax.random.PRNGKey(0), batch[0])

    def loss(params, batch, key):
        x, y = batch
        return _xent(net.apply(params, jax.random.key_data(key), x), y)

    return jax.value_and_grad(loss), params, batch


def _equinox():
    eqx = pytest.importorskip("equinox")
    keys = jax.random.split(jax.random.key(0), 2)
    model = eqx.nn.Sequential([
        eqx.nn.Linear(12, 16, key=keys[0]), eqx.nn.Lambda(jax.nn.relu),
        eqx.nn.Dropout(0.3), eqx.nn.Linear(16, 3, key=keys[1]),
    ])
    params, static = eqx.partition(model, eqx.is_array)
    batch = _batch()

    def loss(params, batch, key):
        x, y = batch
        m = eqx.combine(params, static)
        per_example = jax.random.split(key, x.shape[0])  # keys batched under vmap
        return _xent(jax.vmap(lambda xi, ki: m(xi, key=ki))(x, per_example), y)

    return jax.value_and_grad(loss), params, batch


MAKERS = {"linen": _linen, "nnx": _nnx, "haiku": _haiku, "equinox": _equinox}


# by default each family in one mode, for both the gradient and the train steps
@pytest.mark.parametrize("family,mode", _cases(FAMILIES, {"nnx": "jit", "haiku": "eager"}))
def test_model_in_train_mode_forward_and_gradient_equal_jax(family, mode):
    fn, params, batch = MAKERS[family]()
    key = jax.random.key(3)
    assert_trees_equal(convert(mode, fn, (params, batch, key)), fn(params, batch, key),
                       rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("family,mode", _cases(FAMILIES, {"linen": "jit", "equinox": "interpret"}))
def test_whole_jax_train_step_converts_and_matches_jax_jit(family, mode):
    value_and_grad, params, batch = MAKERS[family]()
    check_train_steps(mode, value_and_grad, params, batch)


def test_converted_dropout_shows_key_ops_in_the_printed_graph():
    value_and_grad, params, batch = _linen()
    text = str(tg.trace(tg.from_jax(value_and_grad), params, batch, jax.random.key(3)))
    assert "%key: key<threefry2x32>[]" in text
    assert "random_fold_in(" in text and "random_bits(" in text and "bitcast_convert_type(" in text
