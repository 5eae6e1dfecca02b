"""tg.optim: optax-backed optimizers. Over many steps, the update captured as IR (tg.jit,
tg.eager) equals optax's own; the printed step shows the optimizer's arithmetic; outside
any trace it is optax; params may be dicts, lists or tg.nn.Module pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegraph as tg

RNG = np.random.default_rng(0)
PARAMS = {"w": RNG.normal(size=(3, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}
TARGET = {
    "w": RNG.normal(size=(3, 2)).astype(np.float32),
    "b": RNG.normal(size=2).astype(np.float32),
}


def grads_of(params, sin):
    """A gradient field both sides compute with the same arithmetic (tg or jnp)."""
    return jax.tree_util.tree_map(lambda p, t: (p - t) * 3.0 + sin(p) * 0.5, params, TARGET)


OPTIMIZERS = {
    "sgd": lambda: tg.optim.sgd(0.05),
    "sgd-momentum": lambda: tg.optim.sgd(0.05, momentum=0.9),
    "sgd-nesterov": lambda: tg.optim.sgd(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: tg.optim.adam(1e-2),
    "adamw": lambda: tg.optim.adamw(1e-2, weight_decay=0.1),
    "rmsprop": lambda: tg.optim.rmsprop(1e-2, decay=0.95, momentum=0.5, centered=True),
    "cosine-schedule": lambda: tg.optim.adam(tg.optim.cosine_decay_schedule(2e-2, 60, alpha=0.1)),
    "warmup-cosine": lambda: tg.optim.adamw(
        tg.optim.warmup_cosine_decay_schedule(0.0, 3e-2, 10, 100, end_value=1e-3), weight_decay=1e-2
    ),
    "exponential-decay": lambda: tg.optim.sgd(
        tg.optim.exponential_decay(0.1, 10, 0.8), momentum=0.5
    ),
    "constant-schedule": lambda: tg.optim.rmsprop(tg.optim.constant_schedule(5e-3)),
    "optax-schedule": lambda: tg.optim.adam(optax.linear_schedule(1e-2, 1e-3, 50)),
    "clip-chain": lambda: tg.optim.chain(tg.optim.clip_by_global_norm(0.5), tg.optim.adam(1e-2)),
}


def _tg_step(opt):
    def step(params, state):
        updates, state = opt.update(grads_of(params, tg.sin), state, params)
        return tg.optim.apply_updates(params, updates), state

    return step


def _optax_trajectory(opt, steps):
    @jax.jit
    def step(params, state):
        updates, state = opt.tx.update(grads_of(params, jnp.sin), state, params)
        return optax.apply_updates(params, updates), state

    params, state = PARAMS, opt.tx.init(PARAMS)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def _assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    gl, wl = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(gl, wl):
        assert jnp.asarray(g).dtype == jnp.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_jit_matches_optax_over_100_steps(name):
    opt = OPTIMIZERS[name]()
    step = tg.jit(_tg_step(opt))
    params, state = PARAMS, opt.init(PARAMS)
    for _ in range(100):
        params, state = step(params, state)
    want_params, want_state = _optax_trajectory(opt, 100)
    _assert_trees_close(params, want_params)
    _assert_trees_close(state, want_state)  # moments and the step count


@pytest.mark.parametrize(
    "name", ["sgd-nesterov", "adamw", "rmsprop", "warmup-cosine", "clip-chain"]
)
def test_eager_matches_optax_over_100_steps(name):
    opt = OPTIMIZERS[name]()
    step = tg.eager(_tg_step(opt))
    params, state = PARAMS, opt.init(PARAMS)
    for _ in range(100):
        params, state = step(params, state)
    want_params, want_state = _optax_trajectory(opt, 100)
    _assert_trees_close(params, want_params)
    _assert_trees_close(state, want_state)
    assert any(n.op in ("sqrt", "rsqrt") for n in step.last_graph.nodes) or name.startswith("sgd")


def test_interpreter_runs_the_same_update():
    opt = OPTIMIZERS["adam"]()
    g = tg.trace(_tg_step(opt), PARAMS, opt.init(PARAMS))
    got = g.interpret(PARAMS, opt.init(PARAMS))
    _assert_trees_close(got, _optax_trajectory(opt, 1))


def test_printed_train_step_shows_adam_as_ir():
    opt = tg.optim.adam(1e-3)

    def loss(params, x):
        return tg.sum(tg.tanh(x @ params["w"] + params["b"]) ** 2)

    @tg.jit
    def train_step(params, state, x):
        grads = tg.grad(loss)(params, x)
        updates, state = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates), state

    x = RNG.normal(size=(4, 3)).astype(np.float32)
    g = train_step.trace(PARAMS, opt.init(PARAMS), x)
    text = str(g)
    adam = [n for n in g.nodes if n.scope == "from_jax/adam.update"]
    ops = {n.op for n in adam}
    assert {"sqrt", "mul", "add", "div", "pow"} <= ops, ops
    # first and second moments: mu' = b1 * mu + (1 - b1) * g, nu' = b2 * nu + (1 - b2) * g^2
    assert "%state.0.mu.w" in text and "%state.0.nu.w" in text
    assert sum(n.op == "sqrt" for n in adam) == 2  # one per parameter leaf
    assert any(n.scope == "from_jax/apply_updates" and n.op == "add" for n in g.nodes)
    assert any(n.scope.startswith("grad/") for n in g.nodes)


def test_outside_any_trace_it_is_optax():
    opt = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adamw(1e-2))
    state = opt.init(PARAMS)
    grads = grads_of(PARAMS, np.sin)
    updates, state2 = opt.update(grads, state, PARAMS)
    want_updates, want_state = opt.tx.update(grads, opt.tx.init(PARAMS), PARAMS)
    _assert_trees_close(updates, want_updates, 0, 0)
    _assert_trees_close(state2, want_state, 0, 0)
    new = tg.optim.apply_updates(PARAMS, updates)
    _assert_trees_close(new, optax.apply_updates(PARAMS, want_updates), 0, 0)


def test_init_inside_a_trace_is_ir_too():
    opt = tg.optim.rmsprop(1e-3, momentum=0.9, centered=True)
    g = tg.trace(opt.init, PARAMS)
    assert all(n.scope == "from_jax/rmsprop.init" for n in g.nodes)
    _assert_trees_close(g(PARAMS), opt.tx.init(PARAMS), 0, 0)
    _assert_trees_close(tg.eager(opt.init)(PARAMS), opt.tx.init(PARAMS), 0, 0)


def test_schedule_works_on_counts_and_tensors():
    sched = tg.optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    want = optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    for count in (0, 5, 10, 50, 100, 150):
        np.testing.assert_allclose(sched(count), want(count), rtol=1e-6)
        got = tg.jit(lambda c: sched(c) * 2.0)(np.int32(count))
        np.testing.assert_allclose(got, 2 * want(count), rtol=1e-6)


def test_schedule_step_count_lives_in_the_state():
    opt = tg.optim.sgd(tg.optim.exponential_decay(1.0, 1, 0.5))
    step = tg.jit(_tg_step(opt))
    params, state = PARAMS, opt.init(PARAMS)
    for _ in range(3):
        params, state = step(params, state)
    counts = [
        leaf for leaf in jax.tree_util.tree_leaves(state) if jnp.asarray(leaf).dtype == jnp.int32
    ]
    assert [int(c) for c in counts] == [3]


def test_list_params_and_mixed_dtypes():
    params = [PARAMS["w"], PARAMS["b"].astype(jnp.bfloat16)]
    opt = tg.optim.adam(1e-2)

    def step(params, state):
        grads = [params[0] * 0.5, params[1] + 1.0]
        updates, state = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates), state

    got = tg.jit(step)(params, opt.init(params))
    updates, _ = opt.tx.update([params[0] * 0.5, params[1] + 1.0], opt.tx.init(params), params)
    want = optax.apply_updates(params, updates)
    assert got[0][1].dtype == jnp.bfloat16
    _assert_trees_close(got[0], want)


def test_module_params_train():
    k1, k2 = tg.random.split(tg.random.key(0))
    model = tg.nn.Sequential([tg.nn.Linear(4, 8, key=k1), tg.relu, tg.nn.Linear(8, 2, key=k2)])
    x = RNG.normal(size=(16, 4)).astype(np.float32)
    y = RNG.normal(size=(16, 2)).astype(np.float32)
    opt = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(1e-2))

    def loss(m):
        return tg.mean((m(x) - y) ** 2)

    @tg.jit
    def step(m, s):
        value, g = tg.value_and_grad(loss)(m)
        updates, s = opt.update(g, s, m)
        return tg.optim.apply_updates(m, updates), s, value

    m, s = model, opt.init(model)
    jm, js = model, opt.tx.init(model)
    grad = tg.jit(tg.grad(loss))
    optax_update = jax.jit(opt.tx.update)
    losses = []
    for _ in range(30):
        m, s, value = step(m, s)
        losses.append(float(value))
        updates, js = optax_update(grad(jm), js, jm)  # optax itself on the same grads
        jm = optax.apply_updates(jm, updates)
    assert type(m) is type(model) and losses[-1] < 0.7 * losses[0]
    _assert_trees_close(m, jm, 1e-4, 1e-5)


def test_wrap_any_optax_transformation():
    opt = tg.optim.wrap(optax.lion(1e-3), name="lion")
    step = tg.jit(_tg_step(opt))
    params, state = PARAMS, opt.init(PARAMS)
    for _ in range(10):
        params, state = step(params, state)
    _assert_trees_close(params, _optax_trajectory(opt, 10)[0])
    assert "from_jax/lion.update" in str(step.trace(PARAMS, opt.init(PARAMS)))
