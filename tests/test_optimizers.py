"""tg.optimizers (Keras 3's optimizers, TF 2's ``apply_gradients``): each one over 20
steps against a numpy re-implementation of Keras 3's update (``keras/src/optimizers/``:
``update_step``, ``_clip_gradients``, ``_apply_weight_decay``, written out below in
Keras' order of operations), the functional form, the seed TF 2 program, and the errors."""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.optim import _keras

tf = tg
f32 = np.float32
SHAPES = [(3, 4), (5,)]
STEPS = 20


# -- Keras 3's arithmetic, in numpy float32 --------------------------------------------------


def clip_by_norm(g, clipnorm):  # Optimizer._clip_by_norm
    l2sum = np.sum(np.square(g), keepdims=True)
    pred = l2sum > 0
    l2sum_safe = np.where(pred, l2sum, np.ones_like(l2sum))
    l2norm = np.where(pred, np.sqrt(l2sum_safe), l2sum)
    return (g * f32(clipnorm)) / np.maximum(l2norm, f32(clipnorm))


def clip_by_global_norm(grads, clip_norm):  # base_optimizer.clip_by_global_norm
    norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads])))
    scale = f32(clip_norm) * np.minimum(f32(1.0) / norm, f32(1.0 / clip_norm))
    scale = scale + (norm - norm)
    return [g * scale for g in grads]


def sgd_step(p, g, s, lr, it, momentum=0.0, nesterov=False):
    if momentum == 0:
        return p - g * lr, s
    m = np.zeros_like(p) if s is None else s
    mom = f32(momentum)
    m = m * mom - g * lr
    if nesterov:
        return p + (m * mom - g * lr), m
    return p + m, m


def adam_step(p, g, s, lr, it, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    m, v, v_hat = s if s is not None else (np.zeros_like(p),) * 3
    t = f32(it + 1)
    b1_power, b2_power = np.power(f32(beta_1), t), np.power(f32(beta_2), t)
    alpha = lr * np.sqrt(f32(1) - b2_power) / (f32(1) - b1_power)
    m = m + (g - m) * f32(1 - beta_1)
    v = v + (np.square(g) - v) * f32(1 - beta_2)
    denominator_v = v
    if amsgrad:
        v_hat = np.maximum(v_hat, v)
        denominator_v = v_hat
    return p - (m * alpha) / (np.sqrt(denominator_v) + f32(epsilon)), (m, v, v_hat)


def rmsprop_step(p, g, s, lr, it, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    velocity, mom, average_grad = s if s is not None else (np.zeros_like(p),) * 3
    velocity = f32(rho) * velocity + f32(1 - rho) * np.square(g)
    if centered:
        average_grad = f32(rho) * average_grad + f32(1 - rho) * g
        denominator = velocity - np.square(average_grad) + f32(epsilon)
    else:
        denominator = velocity + f32(epsilon)
    increment = (lr * g) / np.sqrt(denominator)
    if momentum > 0:
        mom = f32(momentum) * mom + increment
        p = p - mom
    else:
        p = p - increment
    return p, (velocity, mom, average_grad)


def adagrad_step(p, g, s, lr, it, initial_accumulator_value=0.1, epsilon=1e-7):
    acc = np.full_like(p, f32(initial_accumulator_value)) if s is None else s
    acc = acc + np.square(g)
    return p - (lr * g) / np.sqrt(acc + f32(epsilon)), acc


STEP_FNS = {"SGD": sgd_step, "Adam": adam_step, "AdamW": adam_step, "RMSprop": rmsprop_step, "Adagrad": adagrad_step}
DEFAULT_LR = {"SGD": 0.01, "Adam": 0.001, "AdamW": 0.001, "RMSprop": 0.001, "Adagrad": 0.001}


def keras_reference(kind, params, grad_steps, learning_rate=None, weight_decay=None, clipnorm=None,
                    clipvalue=None, global_clipnorm=None, **hp):
    """Keras 3's Optimizer.apply for each step's gradients (None: skipped)."""
    if kind == "AdamW" and weight_decay is None:
        weight_decay = 0.004
    learning_rate = DEFAULT_LR[kind] if learning_rate is None else learning_rate
    params = [p.copy() for p in params]
    slots = {}
    for it, grads in enumerate(grad_steps):
        lr = f32(learning_rate(it) if callable(learning_rate) else learning_rate)
        idx = [i for i, g in enumerate(grads) if g is not None]
        gs = [grads[i] for i in idx]
        if clipnorm:
            gs = [clip_by_norm(g, clipnorm) for g in gs]
        elif global_clipnorm:
            gs = clip_by_global_norm(gs, global_clipnorm)
        elif clipvalue:
            gs = [np.clip(g, -f32(clipvalue), f32(clipvalue)) for g in gs]
        for i in idx:  # _apply_weight_decay: every variable first
            if weight_decay is not None:
                params[i] = params[i] - params[i] * f32(weight_decay) * lr
        for i, g in zip(idx, gs):
            params[i], slots[i] = STEP_FNS[kind](params[i], g, slots.get(i), lr, it, **hp)
    return params


def grad_steps(seed=0, scale=1.0, none_every=0):
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(STEPS):
        gs = [(rng.normal(size=s) * scale).astype(f32) for s in SHAPES]
        if none_every and t % none_every == 1:
            gs[1] = None
        steps.append(gs)
    return steps


def initial_params(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(f32) for s in SHAPES]


def run_tg(opt, params, steps, api="apply_gradients"):
    vs = [tg.tensor(p, requires_grad=True) for p in params]
    for gs in steps:
        if api == "apply_gradients":
            opt.apply_gradients(zip(gs, vs))
        else:
            opt.apply(gs, vs)
    return vs


CASES = {
    "sgd": ("SGD", {"learning_rate": 0.1}),
    "sgd-momentum": ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd-nesterov": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd-weight_decay": ("SGD", {"learning_rate": 0.1, "weight_decay": 0.05}),
    "sgd-global_clipnorm": ("SGD", {"learning_rate": 0.1, "global_clipnorm": 1.0}),
    "sgd-defaults": ("SGD", {}),
    "adam": ("Adam", {"learning_rate": 0.01}),
    "adam-defaults": ("Adam", {}),
    "adam-amsgrad": ("Adam", {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8}),
    "adam-clipnorm": ("Adam", {"learning_rate": 0.01, "clipnorm": 0.5}),
    "adam-clipvalue": ("Adam", {"learning_rate": 0.01, "clipvalue": 0.3}),
    "adam-schedule": ("Adam", {"learning_rate": lambda step: 0.01 * 0.9 ** step}),
    "adamw": ("AdamW", {"learning_rate": 0.01}),
    "adamw-weight_decay": ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "epsilon": 1e-5}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.01}),
    "rmsprop-momentum": ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "rho": 0.8}),
    "rmsprop-centered": ("RMSprop", {"learning_rate": 0.01, "centered": True}),
    "rmsprop-centered-momentum": ("RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.9}),
    "adagrad": ("Adagrad", {"learning_rate": 0.1}),
    "adagrad-initial": ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "clipnorm": 2.0}),
}


def close(got, want, rtol=2e-6, atol=1e-7):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_equals_keras_update_over_20_steps(case):
    kind, kwargs = CASES[case]
    params, steps = initial_params(), grad_steps(scale=3.0 if "clip" in case else 1.0)
    opt = getattr(tg.optimizers, kind)(**kwargs)
    vs = run_tg(opt, params, steps)
    want = keras_reference(kind, params, steps, **kwargs)
    for v, w in zip(vs, want):
        close(v, w)
        assert v.dtype == np.float32 and v.requires_grad and v.is_leaf
    assert opt.iterations == STEPS


def test_none_gradients_are_skipped_with_a_warning():
    params, steps = initial_params(), grad_steps(none_every=3)
    opt = tg.optimizers.Adam(0.01)
    with pytest.warns(UserWarning, match="Gradients do not exist for variables"):
        vs = run_tg(opt, params, steps)
    for v, w in zip(vs, keras_reference("Adam", params, steps, learning_rate=0.01)):
        close(v, w)
    assert opt.iterations == STEPS  # every call counts, as Keras' iterations


def test_apply_and_build_and_loss_scale_factor():
    params, steps = initial_params(), grad_steps()
    opt = tg.optimizers.SGD(0.1, momentum=0.5, loss_scale_factor=4.0)
    vs = [tg.tensor(p, requires_grad=True) for p in params]
    opt.build(vs)
    for gs in steps:
        opt.apply([g * 4 for g in gs])  # the built variables
    for v, w in zip(vs, keras_reference("SGD", params, steps, learning_rate=0.1, momentum=0.5)):
        close(v, w)


def test_learning_rate_is_settable_without_recompiling():
    params, steps = initial_params(), grad_steps()
    opt = tg.optimizers.Adam(0.01)
    vs = [tg.tensor(p, requires_grad=True) for p in params]
    opt.apply_gradients(zip(steps[0], vs))
    run = _keras._compiled_apply(tg.optimizers.Adam, opt._settings())
    cache_size = getattr(run, "_cache_size", lambda: 0)  # jax.jit's count of compilations
    compiled = cache_size()
    lrs = [0.01]
    for t, gs in enumerate(steps[1:], 1):
        opt.learning_rate = 0.01 / (t + 1)
        lrs.append(0.01 / (t + 1))
        opt.apply_gradients(zip(gs, vs))
    assert cache_size() == compiled
    assert opt.learning_rate == pytest.approx(0.01 / STEPS)
    want = keras_reference("Adam", params, steps, learning_rate=lambda it: lrs[it])
    for v, w in zip(vs, want):
        close(v, w)
    # a schedule reads the iterations; Keras' zero-argument callables work too
    opt.learning_rate = lambda step: 1.0 / (step + 1)
    assert opt.learning_rate == pytest.approx(1.0 / (STEPS + 1))
    opt.learning_rate = lambda: 0.5
    assert opt.learning_rate == 0.5


def test_state_config_and_variables():
    opt = tg.optimizers.Adam(learning_rate=0.002, amsgrad=True, name="my_adam")
    params, steps = initial_params(), grad_steps()
    vs = run_tg(opt, params, steps[:3], api="apply")
    config = opt.get_config()
    assert config["learning_rate"] == 0.002 and config["amsgrad"] is True and config["name"] == "my_adam"
    assert {"beta_1", "beta_2", "epsilon", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue"} <= set(config)
    clone = tg.optimizers.Adam.from_config(config)
    assert clone.get_config() == config and clone.iterations == 0
    state = opt.variables  # iterations, learning_rate, then 3 slots per variable
    assert len(state) == 2 + 3 * len(vs) and int(state[0]) == 3
    assert [tuple(s.shape) for s in state[2:5]] == [SHAPES[0]] * 3
    assert tg.optimizers.SGD().get_config()["learning_rate"] == 0.01
    assert tg.optimizers.AdamW().weight_decay == 0.004 and tg.optimizers.Adagrad().epsilon == 1e-7
    assert tg.optimizers.RMSprop().get_config()["rho"] == 0.9


def test_exclude_from_weight_decay_by_variable_and_name():
    params, steps = initial_params(), grad_steps()
    opt = tg.optimizers.AdamW(0.01, weight_decay=0.1)
    vs = [tg.tensor(p, requires_grad=True) for p in params]
    opt.exclude_from_weight_decay(var_list=[vs[1]])
    for gs in steps:
        opt.apply_gradients(zip(gs, vs))
    decayed = keras_reference("AdamW", params, steps, learning_rate=0.01, weight_decay=0.1)
    plain = keras_reference("Adam", params, steps, learning_rate=0.01)
    close(vs[0], decayed[0])
    close(vs[1], plain[1])


def test_functional_form_is_the_same_update_in_jit():
    params, steps = initial_params(), grad_steps()
    opt = tg.optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0, weight_decay=0.01)
    tx = opt.transformation()
    state = tx.init(params)

    @tg.jit
    def step(ps, state, gs):
        updates, state = tx.update(gs, state, ps)
        return tg.optim.apply_updates(ps, updates), state

    ps = params
    for gs in steps:
        ps, state = step(ps, state, gs)
    want = keras_reference("Adam", params, steps, learning_rate=0.01, amsgrad=True, clipnorm=1.0, weight_decay=0.01)
    for p, w in zip(ps, want):
        close(p, w, rtol=1e-5, atol=1e-6)  # updates are new - old, added back: an ulp or two
    assert int(state.count) == STEPS
    ops = {n.op for n in step.trace(ps, state, steps[0]).nodes}
    assert {"sqrt", "pow", "maximum"} <= ops  # explicit IR, not an opaque call
    # and the optax transformation itself, with a schedule of the count
    sched = tg.optimizers.SGD(lambda count: 0.1 / (count + 1.0), momentum=0.9).transformation().tx
    s = sched.init(params)
    ps = params
    for gs in steps:
        u, s = jax.jit(sched.update)(gs, s, ps)
        ps = [p + d for p, d in zip(ps, u)]
    want = keras_reference("SGD", params, steps, learning_rate=lambda it: 0.1 / (it + 1.0), momentum=0.9)
    for p, w in zip(ps, want):
        close(p, w, rtol=1e-5, atol=1e-6)


def test_variable_with_assign_is_updated_through_assign():
    class Var(tg.TapeTensor):
        __slots__ = ("assigned",)

        def assign(self, value):
            self.assigned = getattr(self, "assigned", 0) + 1
            self._data = jnp.asarray(value)

    p = initial_params()[0]
    v = Var(tg.tensor(p)._value, jnp.asarray(p), True)
    tg.optimizers.SGD(0.5).apply_gradients([(np.ones_like(p), v)])
    assert v.assigned == 1
    close(v, p - 0.5)


# -- the seed TF 2 program -----------------------------------------------------------------------


def _regression_data():
    x = np.linspace(-1, 1, 100).astype(f32)
    return x, (3.0 * x + 2.0).astype(f32)


def _numpy_sgd_regression(w, b, x, y, steps, lr):
    w, b = f32(w), f32(b)
    for _ in range(steps):
        r = w * x + b - y
        gw, gb = np.mean(2 * r * x, dtype=f32), np.mean(2 * r, dtype=f32)
        w, b = w - gw * f32(lr), b - gb * f32(lr)
    return w, b


def test_seed_program_with_leaf_tensors_and_backward():
    x, y = _regression_data()
    tf.random.set_seed(0)
    w = tg.tensor(tf.random.normal([1]), requires_grad=True)
    b = tg.tensor(tf.zeros([1]), requires_grad=True)
    w0, b0 = float(w.numpy()[0]), float(b.numpy()[0])

    def loss(y_pred, y_true):
        return tf.reduce_mean(tf.square(y_pred - y_true))

    optimizer = tf.optimizers.SGD(0.05)  # the seed program's loop, shorter (see below)
    for i in range(200):
        w.grad = b.grad = None
        loss_value = loss(w * x + b, y)
        loss_value.backward()
        gradients = [w.grad, b.grad]
        optimizer.apply_gradients(zip(gradients, [w, b]))
    want_w, want_b = _numpy_sgd_regression(w0, b0, x, y, 200, 0.05)
    close(w, [want_w], rtol=1e-4, atol=1e-5)
    close(b, [want_b], rtol=1e-4, atol=1e-5)
    assert abs(w.numpy()[0] - 3) < 0.2 and abs(b.numpy()[0] - 2) < 0.01


def test_seed_program_with_variables_and_gradient_tape():
    if not (hasattr(tg, "GradientTape") and hasattr(tg, "Variable")):
        pytest.skip("tg.Variable / tg.GradientTape are not there yet")
    x, y = _regression_data()
    tf.random.set_seed(0)
    w = tf.Variable(tf.random.normal([1]), name="weight")
    b = tf.Variable(tf.zeros([1]), name="bias")
    w0, b0 = float(w.numpy()[0]), float(b.numpy()[0])

    def loss(y_pred, y_true):
        return tf.reduce_mean(tf.square(y_pred - y_true))

    optimizer = tf.optimizers.SGD(0.01)
    for i in range(1000):
        with tf.GradientTape() as tape:
            loss_value = loss(w * x + b, y)
        gradients = tape.gradient(loss_value, [w, b])
        optimizer.apply_gradients(zip(gradients, [w, b]))
    want_w, want_b = _numpy_sgd_regression(w0, b0, x, y, 1000, 0.01)
    close(w.numpy(), [want_w], rtol=1e-4, atol=1e-5)
    close(b.numpy(), [want_b], rtol=1e-4, atol=1e-5)
    assert optimizer.iterations == 1000


def test_apply_gradients_inside_tg_function_is_part_of_the_step_graph():
    if not hasattr(tg, "function"):
        pytest.skip("tg.function is not there yet")
    x, y = _regression_data()

    def make():
        w = tf.Variable(np.full([1], 0.5, f32), name="weight")
        return w, tf.Variable(np.zeros([1], f32), name="bias")

    def step(w, b, opt):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(w * x + b - y))
        opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
        return loss

    w, b = make()
    opt = tf.optimizers.Adam(0.1, amsgrad=True)
    train_step = tf.function(lambda: step(w, b, opt))
    w2, b2 = make()
    opt2 = tf.optimizers.Adam(0.1, amsgrad=True)
    for t in range(10):
        if t == 5:  # a new learning rate reaches the compiled step: it is a state input
            opt.learning_rate = opt2.learning_rate = 0.05
        train_step()
        step(w2, b2, opt2)  # the same step, op by op
    close(w.numpy(), w2.numpy(), rtol=1e-6)
    close(b.numpy(), b2.numpy(), rtol=1e-6)
    assert opt.iterations == 10
    for s, s2 in zip(opt.variables, opt2.variables):
        close(s.numpy(), s2.numpy(), rtol=1e-6)
    (graph,) = [p if isinstance(p, tg.Graph) else p.graph for p in train_step.graphs()]
    names = [v.name for v in graph.inputs]
    assert {"weight", "bias", "iteration", "learning_rate", "momentum_weight", "velocity_hat_bias"} <= set(names)
    assert any(n.scope.startswith("from_jax/Adam.apply") for n in graph.nodes)
    # and define-by-run (tg.eager) applies at once
    w3, b3 = make()
    opt3 = tf.optimizers.SGD(0.1, momentum=0.9)
    run = tg.eager(lambda: step(w3, b3, opt3))
    w4, b4 = make()
    opt4 = tf.optimizers.SGD(0.1, momentum=0.9)
    for _ in range(3):
        run()
        step(w4, b4, opt4)
    close(w3.numpy(), w4.numpy(), rtol=1e-6)
    assert opt3.iterations == 3


def test_from_transform_drives_variables_with_any_optax_chain():
    """tg.optimizers.FromTransform: an optax chain (global-norm clipping couples the
    variables, a schedule reads the count) applied TF style equals the functional
    update, op by op and inside tg.function (one graph, the state as Variables)."""
    x, y = _regression_data()
    tx = tg.optim.chain(tg.optim.clip_by_global_norm(0.5),
                        tg.optim.adam(tg.optim.cosine_decay_schedule(0.1, 20)))

    def make():
        return [tf.Variable(np.full([1], 0.5, f32), name="w"), tf.Variable(np.zeros([1], f32), name="b")]

    def step(vs, opt):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(vs[0] * x + vs[1] - y))
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    def reference(steps):  # the functional form, on arrays
        params = [jnp.full([1], 0.5, f32), jnp.zeros([1], f32)]
        state = tx.init(params)
        loss = lambda p: jnp.mean(jnp.square(p[0] * x + p[1] - y))  # noqa: E731
        for _ in range(steps):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = [p + u for p, u in zip(params, updates)]
        return params

    eager_vs, compiled_vs = make(), make()
    eager_opt, compiled_opt = tg.optimizers.FromTransform(tx), tg.optimizers.FromTransform(tx)
    train_step = tg.function(lambda: step(compiled_vs, compiled_opt))
    for _ in range(12):
        step(eager_vs, eager_opt)
        train_step()
    want = reference(12)
    for a, b, c in zip(eager_vs, compiled_vs, want):
        close(a.numpy(), c, rtol=1e-5)
        close(b.numpy(), c, rtol=1e-5)
    assert eager_opt.iterations == compiled_opt.iterations == 12
    (path,) = train_step.graphs()
    graph = path if isinstance(path, tg.Graph) else path.graph
    names = {v.name for v in graph.inputs}
    assert {"w", "b", "iteration"} <= names and any(n.startswith("from_transform/state_") for n in names)
    assert train_step.compiled_calls == 11
    # the state belongs to one list of variables
    with pytest.raises(tg.Error, match=r"FromTransform.apply_gradients: 1 variables that are not"):
        eager_opt.apply_gradients([(np.ones([1], f32), eager_vs[0])])
    with pytest.raises(TypeError, match="expected a tg.optim / optax transformation"):
        tg.optimizers.FromTransform("adam")


def test_fit_tf_function_mode_equals_jit_and_leaves_the_model_alone():
    """tg.train.fit(mode="tf-function"): a copy of the model with Variables, one
    tg.function step (tape, apply_gradients), the same losses as jit."""
    rng = np.random.default_rng(0)
    data = [{"x": rng.normal(size=(16, 3)).astype(f32), "y": rng.normal(size=(16, 2)).astype(f32)}
            for _ in range(6)]
    model = tg.nn.Sequential([tg.nn.Linear(3, 8, key=tg.random.key(0)), tg.nn.Tanh(),
                              tg.nn.Linear(8, 2, key=tg.random.key(1))])
    before = [np.asarray(a) for a in jax.tree_util.tree_leaves(model)]

    def loss(m, b):
        return tg.mean((m(b["x"]) - b["y"]) ** 2)

    opt = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(1e-2))
    _, want = tg.train.fit(model, data, loss=loss, optimizer=opt, mode="jit", progress=False)
    state, got = tg.train.fit(model, data, loss=loss, optimizer=opt, mode="tf-function", progress=False)
    close(got.losses, want.losses, rtol=1e-5)
    assert all(isinstance(v, tg.Variable) for v in jax.tree_util.tree_leaves(state.model))
    for a, b in zip(before, jax.tree_util.tree_leaves(model)):  # the caller's model: untouched
        np.testing.assert_array_equal(a, np.asarray(b))


# -- errors ------------------------------------------------------------------------------------


def test_errors_name_the_optimizer_and_the_line():
    here = os.path.basename(__file__)
    w = tg.tensor(np.zeros((2, 3), f32), requires_grad=True)
    opt = tg.optimizers.Adam()
    with pytest.raises(tg.ShapeError, match=rf"Adam.apply_gradients: gradient 0 has shape \[3\].*{here}:\d+"):
        opt.apply_gradients([(np.ones(3, f32), w)])
    with pytest.raises(tg.TracingError, match=rf"SGD.apply_gradients: variable 0 is a ndarray.*{here}:\d+"):
        tg.optimizers.SGD().apply_gradients([(np.ones(3, f32), np.zeros(3, f32))])
    with pytest.raises(tg.TracingError, match=rf"RMSprop.apply_gradients: variable 0 \(f32\[2,3\]\) was computed.*{here}"):
        tg.optimizers.RMSprop().apply_gradients([(np.ones((2, 3), f32), w * 2)])
    with pytest.raises(tg.TracingError, match=rf"no gradients provided for any variable.*{here}"):
        opt.apply_gradients([(None, w)])
    pairs = zip([np.ones((2, 3), f32)], [w])
    opt.apply_gradients(pairs)
    with pytest.raises(tg.TracingError, match="no \\(gradient, variable\\) pairs.*consumed"):
        opt.apply_gradients(pairs)
    with pytest.raises(tg.ShapeError, match=rf"Adam.apply: 2 gradients for 1 variables.*{here}"):
        opt.apply([np.ones((2, 3), f32)] * 2, [w])
    with pytest.raises(tg.TracingError, match="appears twice"):
        opt.apply_gradients([(np.ones((2, 3), f32), w), (np.ones((2, 3), f32), w)])
    with pytest.raises(ValueError, match="only one of `clipnorm`"):
        tg.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="momentum"):
        tg.optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay"):
        tg.optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="not recognized"):
        tg.optimizers.Adam(lr=0.1)

    @tg.jit
    def inside(v, g):
        opt.apply_gradients([(g, v)])
        return v

    with pytest.raises(tg.TracingError, match="variable 0 is a traced tensor.*transformation"):
        inside(np.zeros(2, f32), np.ones(2, f32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.optimizers.SGD(0.1).apply_gradients([(np.ones((2, 3), f32), w)])
