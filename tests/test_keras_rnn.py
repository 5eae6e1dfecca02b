"""tf.keras' recurrent layers (SimpleRNN, LSTM, GRU, RNN over a cell, Bidirectional) and
MultiHeadAttention against Keras 3 itself (JAX backend; skipped without keras): both built
for the same input, Keras' layer given random weights (biases too), ours
``set_weights(keras_layer.get_weights())``, then the outputs and the gradients of a scalar
loss w.r.t. the inputs and every weight compared (atol 1e-5), Keras' side by
``jax.value_and_grad`` over its ``stateless_call``, ours by tg.value_and_grad under
tg.jit. Then the layers in every mode, in ``fit``, in the functional API, and the IR: the
time loop is one ``scan`` node. The default run keeps one case of each layer; the option
matrix is in the slow set. Layers build with zeros initializers where the weights are
replaced anyway (Keras' random initializers cost a compilation per shape)."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.keras import layers

ATOL = 1e-5
RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 3)).astype(np.float32)  # batch 2, steps 5, features 3


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the Keras comparison needs Keras' JAX backend")
    return keras


def as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def cotangents(outs, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=np.shape(o)).astype(np.float32) for o in outs]


ZEROS = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # cheap to build


def random_weights(layer, seed=2):
    """Random normal weights (biases too), as numpy arrays in ``get_weights`` order."""
    rng = np.random.default_rng(seed)
    return [(0.5 * rng.normal(size=np.shape(w))).astype(np.float32) for w in layer.get_weights()]


def keras_run(layer, args, kwargs, cts):
    """Keras' outputs, and the gradients of ``sum(out_i * ct_i)`` w.r.t. the array
    arguments and the trainable weights (Keras' order), in one jax.jit."""
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(weights, *arrays):
        out, _ = layer.stateless_call(weights, non_trainable, *arrays, **kwargs)
        out = as_tuple(out)
        return sum(jnp.sum(o * c) for o, c in zip(out, cts)), out

    argnums = tuple(range(len(args) + 1))
    f = jax.jit(jax.value_and_grad(loss, argnums=argnums, has_aux=True))
    (_, outs), grads = f([v.value for v in layer.trainable_variables], *args)
    return list(outs), list(grads[1:]), list(grads[0])


def ours_run(layer, args, kwargs, cts):
    """Our outputs and the same gradients, in one tg.jit."""
    def loss(m, *arrays):
        out = as_tuple(m(*arrays, **kwargs))
        return sum(tg.sum(o * c) for o, c in zip(out, cts)), out

    argnums = tuple(range(len(args) + 1))
    (_, outs), grads = tg.jit(tg.value_and_grad(loss, argnums=argnums, has_aux=True))(
        layer, *args)
    return list(outs), list(grads[1:]), jax.tree_util.tree_leaves(grads[0])


def compare(keras_layer, ours, args, kwargs=None, atol=ATOL):
    """Build both for ``args``, give both the same random weights, compare the outputs
    and the gradients."""
    kwargs = kwargs or {}
    keras_layer.build(*(np.shape(a) for a in args))
    build(ours, *args)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    keras_layer.set_weights(random_weights(keras_layer))
    ours.set_weights(keras_layer.get_weights())
    out = jax.eval_shape(lambda *a: as_tuple(keras_layer(*a, **kwargs)), *args)
    cts = cotangents(out)
    want, got = keras_run(keras_layer, args, kwargs, cts), ours_run(ours, args, kwargs, cts)
    for what, g_list, w_list in zip(("output", "input grad", "weight grad"), got, want):
        assert len(g_list) == len(w_list), what
        for i, (g, w) in enumerate(zip(g_list, w_list)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=atol, rtol=1e-5,
                                       err_msg=f"{what} {i}")


def build(layer, *args):
    """Build one of our layers for ``args`` without running it (a layer whose build
    takes one shape per argument, as MultiHeadAttention, by name)."""
    if len(args) == 1:
        layer.build_from(args[0])
    else:
        layer._build_by_name(args, {})
    return layer


# -- against Keras ----------------------------------------------------------------------------

SLOW = pytest.mark.slow
ALL = {"return_sequences": True, "return_state": True, "go_backwards": True}
RECURRENT = [  # (layer, options); the default run checks every layer with every option at once
    ("SimpleRNN", ALL), ("LSTM", ALL), ("GRU", ALL),
    *(pytest.param(kind, kw, marks=SLOW) for kind in ("SimpleRNN", "LSTM", "GRU") for kw in (
        {}, {"return_sequences": True}, {"return_state": True}, {"go_backwards": True})),
    pytest.param("GRU", {"reset_after": False, "return_sequences": True}, marks=SLOW),
    pytest.param("GRU", {"use_bias": False, "activation": "relu"}, marks=SLOW),
    pytest.param("LSTM", {"use_bias": False, "recurrent_activation": "hard_sigmoid"}, marks=SLOW),
    pytest.param("LSTM", {"unit_forget_bias": False, "activation": "relu", "return_state": True},
                 marks=SLOW),
    pytest.param("SimpleRNN", {"use_bias": False, "activation": "relu",
                               "return_sequences": True}, marks=SLOW),
]


def options_id(v):
    return v if isinstance(v, str) else "-".join(f"{k}={v[k]}" for k in v) or "defaults"


@pytest.mark.parametrize(("kind", "kw"), RECURRENT, ids=options_id)
def test_recurrent_layer_matches_keras(keras, kind, kw):
    compare(getattr(keras.layers, kind)(4, **kw, **ZEROS), getattr(layers, kind)(4, **kw, **ZEROS),
            (X,))


@SLOW
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_initial_state_matches_keras(keras, kind):
    n = 2 if kind == "LSTM" else 1
    states = [RNG.normal(size=(2, 4)).astype(np.float32) for _ in range(n)]
    kw = {"return_sequences": True, "return_state": True, **ZEROS}
    compare(getattr(keras.layers, kind)(4, **kw), getattr(layers, kind)(4, **kw), (X,),
            {"initial_state": states})


@SLOW
@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
def test_bidirectional_matches_keras(keras, merge_mode):
    kw = {"return_sequences": True, "return_state": merge_mode == "concat", **ZEROS}
    compare(keras.layers.Bidirectional(keras.layers.LSTM(4, **kw), merge_mode=merge_mode),
            layers.Bidirectional(layers.LSTM(4, **kw), merge_mode=merge_mode), (X,))


@SLOW
def test_bidirectional_gru_last_output_matches_keras(keras):
    compare(keras.layers.Bidirectional(keras.layers.GRU(4, **ZEROS), merge_mode="ave"),
            layers.Bidirectional(layers.GRU(4, **ZEROS), merge_mode="ave"), (X,))


@SLOW
def test_rnn_over_a_keras_cell_equals_the_layer(keras):
    compare(keras.layers.RNN(keras.layers.LSTMCell(4, **ZEROS), return_sequences=True),
            layers.RNN(layers.LSTMCell(4, **ZEROS), return_sequences=True), (X,))


Q = RNG.normal(size=(2, 4, 5)).astype(np.float32)
V = RNG.normal(size=(2, 6, 7)).astype(np.float32)
K = RNG.normal(size=(2, 6, 3)).astype(np.float32)
MASK = RNG.random((2, 4, 6)) > 0.3
IMAGE = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)

ATTENTION = [  # (layer options, arguments, call options)
    pytest.param({"num_heads": 2, "key_dim": 3, "value_dim": 4}, (Q, V, K),
                 {"attention_mask": MASK, "return_attention_scores": True}, id="key-mask-scores"),
    pytest.param({"num_heads": 2, "key_dim": 3}, (Q, V), {}, id="cross", marks=SLOW),
    pytest.param({"num_heads": 2, "key_dim": 3, "output_shape": 8}, (Q, V), {},
                 id="output_shape", marks=SLOW),
    pytest.param({"num_heads": 3, "key_dim": 2, "use_bias": False}, (Q, Q),
                 {"use_causal_mask": True, "return_attention_scores": True},
                 id="causal-no_bias", marks=SLOW),
    pytest.param({"num_heads": 2, "key_dim": 3, "use_gate": True}, (Q, Q),
                 {"use_causal_mask": True, "attention_mask": MASK[:, :, :4]},
                 id="gate-causal-mask", marks=SLOW),
    pytest.param({"num_heads": 2, "key_dim": 3, "attention_axes": (1, 2)}, (IMAGE, IMAGE),
                 {"return_attention_scores": True}, id="2d_attention_axes", marks=SLOW),
]


@pytest.mark.parametrize(("kw", "args", "call_kw"), ATTENTION)
def test_multi_head_attention_matches_keras(keras, kw, args, call_kw):
    kw = {**kw, "kernel_initializer": "zeros"}
    compare(keras.layers.MultiHeadAttention(**kw), layers.MultiHeadAttention(**kw), args,
            call_kw)


@SLOW
def test_weights_have_keras_shapes_and_order():
    lstm, gru, rnn = (build(getattr(layers, k)(4, **ZEROS), X)
                      for k in ("LSTM", "GRU", "SimpleRNN"))
    assert [tuple(w.shape) for w in lstm.weights] == [(3, 16), (4, 16), (16,)]
    assert [tuple(w.shape) for w in gru.weights] == [(3, 12), (4, 12), (2, 12)]
    assert [tuple(w.shape) for w in rnn.weights] == [(3, 4), (4, 4), (4,)]
    assert [name for name, _ in lstm.named_parameters()] == [
        "cell.kernel", "cell.recurrent_kernel", "cell.bias"]
    assert lstm.cell.kernel is lstm.weights[0]
    np.testing.assert_array_equal(np.asarray(lstm.cell.bias), [0] * 4 + [1] * 4 + [0] * 8)
    assert lstm.units == 4 and lstm.unit_forget_bias and gru.reset_after
    assert tuple(build(layers.GRU(4, reset_after=False), X).cell.bias.shape) == (12,)
    mha = build(layers.MultiHeadAttention(2, 3, value_dim=4, kernel_initializer="zeros"), Q, V)
    assert [tuple(w.shape) for w in mha.weights] == [
        (5, 2, 3), (2, 3), (7, 2, 3), (2, 3), (7, 2, 4), (2, 4), (2, 4, 5), (5,)]
    assert mha.query_dense.kernel is mha.weights[0]


@SLOW
def test_default_initializers_are_keras():
    lstm = build(layers.LSTM(4), X)
    r = np.asarray(lstm.cell.recurrent_kernel)  # (4, 16): orthogonal rows
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-5)
    limit = np.sqrt(6 / (3 + 16))  # glorot_uniform
    assert np.abs(np.asarray(lstm.cell.kernel)).max() <= limit


# -- every mode, training, the functional API, the IR ------------------------------------------


EXAMPLES = {
    "SimpleRNN": (lambda: layers.SimpleRNN(4, return_sequences=True, **ZEROS), (X,)),
    "LSTM": (lambda: layers.LSTM(4, return_state=True, **ZEROS), (X,)),
    "GRU": (lambda: layers.GRU(4, go_backwards=True, **ZEROS), (X,)),
    "Bidirectional": (lambda: layers.Bidirectional(layers.GRU(4, **ZEROS)), (X,)),
    "MultiHeadAttention": (lambda: layers.MultiHeadAttention(2, 3, kernel_initializer="zeros"),
                           (Q, V)),
}


@functools.cache
def example(name):
    """A built layer with random weights, and its arguments."""
    make, args = EXAMPLES[name]
    layer = build(make(), *args)
    layer.set_weights(random_weights(layer))
    return layer, args


MODES = [  # (layer, mode): the default run takes the LSTM in tg.jit and under a GradientTape
    (name, mode) for name in EXAMPLES for mode in ("jit", "interpret", "eager", "function", "tape")
    if not (name == "LSTM" and mode in ("jit", "tape"))
]


@pytest.mark.parametrize(("name", "mode"), [
    ("LSTM", "jit"), ("LSTM", "tape"),
    *(pytest.param(name, mode, marks=SLOW) for name, mode in MODES)])
def test_layer_runs_in_every_mode(name, mode):
    layer, args = example(name)
    want = [np.asarray(o) for o in as_tuple(tg.jit(lambda m, *a: m(*a))(layer, *args))]

    def f(*a):
        return layer(*a)

    if mode == "jit":
        got = want
    elif mode == "interpret":
        got = tg.trace(f, *args).interpret(*args)
    elif mode == "eager":
        got = tg.eager(f)(*args)
    elif mode == "function":
        got = tg.function(f)(*args)
    else:
        xs = [tg.Variable(a) for a in args]
        with tg.GradientTape() as tape:
            got = layer(*xs)
            loss = sum(tg.sum(o) for o in as_tuple(got))
        grads = tape.gradient(loss, [*layer.trainable_variables, *xs])
        assert all(g is not None and np.all(np.isfinite(np.asarray(g))) for g in grads)
    for g, w in zip(as_tuple(got), want, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, atol=1e-5)


def test_lstm_loop_is_one_scan_node():
    lstm, args = example("LSTM")
    graph = tg.jit(lambda m, x: m(x)).trace(lstm, *args)
    ops = [n.op for n in graph.nodes]
    assert ops.count("scan") == 1
    assert ops.count("matmul") == 1  # the input projection, once, before the loop
    body = str(graph).split("graph body", 1)[1]
    assert body.count("matmul(") == 1  # the loop: one h @ recurrent_kernel for all gates


@pytest.mark.parametrize("kind", ["LSTM", pytest.param("SimpleRNN", marks=SLOW),
                                  pytest.param("GRU", marks=SLOW)])
def test_sequential_fit_lowers_the_loss(kind):
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 3)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32) / 5
    model = tg.keras.Sequential([tg.keras.Input(shape=(5, 3)),
                                 getattr(layers, kind)(8, recurrent_initializer="zeros"),
                                 layers.Dense(1)])
    model.compile(optimizer=tg.keras.optimizers.Adam(0.02), loss="mse")
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert losses[1] < losses[0]


@SLOW
def test_functional_model_with_attention_and_a_bidirectional_lstm():
    tg.manual_seed(0)
    inputs = tg.keras.Input(shape=(5, 3))
    seq = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(inputs)
    att = layers.MultiHeadAttention(num_heads=2, key_dim=4)(seq, seq)
    out, h, c = layers.LSTM(6, return_state=True)(att)
    assert (out.shape, h.shape, c.shape) == ((None, 6), (None, 6), (None, 6))
    model = tg.keras.Model(inputs, layers.Dense(1)(out))
    assert model(X).shape == (2, 1)
    model.compile("adam", "mse")
    history = model.fit(X, np.ones((2, 1), np.float32), epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


@SLOW
def test_recurrent_dropout_draws_new_masks_in_training_only():
    lstm = build(layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5, seed=3, **ZEROS), X)
    weights = random_weights(lstm)[:3]
    lstm.set_weights([*weights, *lstm.get_weights()[3:]])  # then the seed generator's key
    plain = build(layers.LSTM(4, **ZEROS), X)
    plain.set_weights(weights)
    np.testing.assert_allclose(np.asarray(lstm(X)), np.asarray(plain(X)), atol=1e-6)
    a, b = np.asarray(lstm(X, training=True)), np.asarray(lstm(X, training=True))
    assert not np.allclose(a, b) and not np.allclose(a, np.asarray(plain(X)))
    gru = build(layers.GRU(4, dropout=0.5, reset_after=False, recurrent_dropout=0.2), X)
    step = tg.function(lambda x: gru(x, training=True))
    assert not np.allclose(np.asarray(step(X)), np.asarray(step(X)))


@SLOW
def test_attention_dropout_applies_in_training_only():
    mha = build(layers.MultiHeadAttention(2, 3, dropout=0.5, seed=1), Q, V)
    _, scores = mha(Q, V, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(mha(Q, V)), np.asarray(mha(Q, V)))
    out = [np.asarray(mha(Q, V, training=True)) for _ in range(2)]
    assert not np.allclose(out[0], out[1])


@SLOW
def test_a_custom_cell_runs_in_rnn():
    class MinimalRNNCell(layers.Layer):  # Keras' docstring example
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units))
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units))

        def call(self, inputs, states):
            h = tg.matmul(inputs, self.kernel) + tg.matmul(states[0], self.recurrent_kernel)
            return h, [h]

    rnn = layers.RNN(MinimalRNNCell(4), return_sequences=True, go_backwards=True)
    ys = np.asarray(rnn(X))
    k, r = np.asarray(rnn.cell.kernel), np.asarray(rnn.cell.recurrent_kernel)
    h, want = np.zeros((2, 4), np.float32), []
    for t in reversed(range(5)):
        h = X[:, t] @ k + h @ r
        want.append(h)
    np.testing.assert_allclose(ys, np.stack(want, 1), atol=1e-5)
    h = np.zeros((2, 4), np.float32)
    for t in range(5):
        h = X[:, t] @ k + h @ r
    last = tg.jit(lambda m, x: m(x))(build(layers.RNN(rnn.cell), X), X)  # the last output
    np.testing.assert_allclose(np.asarray(last), h, atol=1e-5)


def test_unsupported_options_say_so():
    with pytest.raises(NotImplementedError, match="stateful"):
        layers.LSTM(4, stateful=True)
    with pytest.raises(NotImplementedError, match="kernel_regularizer"):
        layers.SimpleRNN(4, kernel_regularizer="l2")
    with pytest.raises(NotImplementedError, match="mask"):
        build(layers.GRU(4, **ZEROS), X)(X, mask=np.ones((2, 5), bool))
