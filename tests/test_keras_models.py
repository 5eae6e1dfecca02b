"""tg.keras models: Sequential, functional and subclassed models build, train with the one
fit engine in every mode (dropout and batch-norm state included), freeze, save and load,
summarize; a TensorFlow-style train step (Variables, GradientTape, optimizer) compiled
with tg.function is one IR graph and equals the eager step over 100 steps."""

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph import keras
from tracegraph.keras import layers


def data(n=96, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, classes))
    return x, np.argmax(x @ w, axis=1).astype(np.int32)


def mlp(dropout=0.2, bn=True):
    return keras.Sequential([
        keras.Input(shape=(8,)),
        layers.Dense(16, activation="relu"),
        *([layers.BatchNormalization()] if bn else []),
        layers.Dropout(dropout),
        layers.Dense(3, activation="softmax"),
    ])


def test_sequential_builds_from_input_shape_and_input():
    a = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    b = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(4), layers.Dense(2)])
    for m in (a, b):
        assert m.built and [tuple(v.shape) for v in m.weights] == [(3, 4), (4,), (4, 2), (2,)]
        assert m.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    c = keras.Sequential()
    c.add(layers.Dense(5))
    assert not c.built
    c(np.zeros((2, 7), np.float32))
    assert c.built and tuple(c.layers[0].kernel.shape) == (7, 5)


def test_summary_has_keras_columns():
    tg.keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(8, 3),
                              layers.BatchNormalization(), layers.Flatten(), layers.Dense(10)],
                             name="net")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "net"' in text and "Layer (type)" in text and "Output Shape" in text
    assert "(None, 26, 26, 8)" in text and "(None, 5408)" in text
    assert "Total params: 54,202" in text  # 80 + 32 + 54,090
    assert "Trainable params: 54,186" in text and "Non-trainable params: 16" in text


def test_functional_model_two_inputs_and_shared_layer():
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    shared = layers.Dense(3)
    merged = layers.Concatenate()([shared(a), shared(b)])
    model = keras.Model([a, b], layers.Dense(1)(merged))
    assert len(model.trainable_variables) == 4  # the shared layer's weights count once
    xa, xb = np.ones((2, 4), np.float32), np.zeros((2, 4), np.float32)
    out = model([xa, xb])
    expect = np.concatenate([np.asarray(shared(xa)), np.asarray(shared(xb))], 1) @ \
        np.asarray(model.layers[-1].kernel) + np.asarray(model.layers[-1].bias)
    np.testing.assert_allclose(np.asarray(out), expect, rtol=1e-5, atol=1e-6)
    y = np.ones((2, 1), np.float32)
    model.compile("sgd", "mse")
    assert model.fit([xa, xb], y, epochs=2, verbose=0).history["loss"][1] < \
        model.history.history["loss"][0]


def test_first_call_inside_tg_jit_is_an_error():
    model = keras.Sequential([layers.Dense(2)])
    with pytest.raises(tg.TracingError, match="build the model first"):
        tg.jit(lambda m, x: m(x))(model, np.ones((1, 3), np.float32))
    model.build((None, 3))
    tg.jit(lambda m, x: m(x))(model, np.ones((1, 3), np.float32))


@pytest.mark.parametrize("mode", ["jit", pytest.param("eager", marks=pytest.mark.slow),
                                  pytest.param("compile", marks=pytest.mark.slow)])
def test_fit_updates_state_in_every_mode(mode):
    """Dropout's seed generator moves and BatchNormalization's moving statistics move
    towards the data during fit; jit, eager and compile train to the same weights."""
    x, y = data()
    weights = {}
    for m in ("jit", mode):
        tg.manual_seed(0)
        model = mlp()
        seed0 = np.asarray(model.layers[2].seed_generator.state).copy()
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], mode=m)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        assert not np.array_equal(seed0, np.asarray(model.layers[2].seed_generator.state))
        assert np.abs(np.asarray(model.layers[1].moving_mean)).sum() > 0
        weights[m] = [np.asarray(v) for v in model.weights]
    for a, b in zip(weights["jit"], weights[mode]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_frozen_layer_is_left_alone_and_batch_norm_runs_in_inference():
    x, y = data()
    tg.manual_seed(1)
    model = mlp(dropout=0.0)
    model.layers[0].trainable = False
    model.layers[1].trainable = False
    frozen = [np.asarray(v).copy() for v in (*model.layers[0].weights, *model.layers[1].weights)]
    assert len(model.trainable_variables) == 2 and len(model.non_trainable_variables) == 6
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    for before, v in zip(frozen, (*model.layers[0].weights, *model.layers[1].weights)):
        np.testing.assert_array_equal(before, np.asarray(v))


def test_save_and_load_weights_round_trip(tmp_path):
    x, y = data()
    tg.manual_seed(2)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "m.weights")
    tg.manual_seed(3)
    other = mlp()
    other.load_weights(tmp_path / "m.weights")
    np.testing.assert_allclose(np.asarray(other.predict(x, verbose=0)),
                               np.asarray(model.predict(x, verbose=0)), rtol=1e-6)


def test_predict_equals_call_in_inference():
    x, _ = data()
    model = mlp()
    np.testing.assert_allclose(model.predict(x, batch_size=40, verbose=0),
                               np.asarray(model(x)), rtol=1e-5, atol=1e-6)


class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(16, activation="relu")
        self.drop = layers.Dropout(0.1)
        self.out = layers.Dense(3)

    def call(self, x, training=None):
        return self.out(self.drop(self.hidden(x), training=training))


def tf_step(model, optimizer):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(x, y):
        with tg.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def test_tf_function_step_is_one_graph_and_equals_eager_over_100_steps():
    x, y = data(n=64)
    runs = {}
    for compiled in (False, True):
        tg.manual_seed(4)
        model = Classifier()
        model(x[:2])  # built before the step, as Keras users do
        step = tf_step(model, keras.optimizers.Adam(1e-2))
        if compiled:
            step = tg.function(step)
        losses = [float(step(x, y)) for _ in range(100)]
        runs[compiled] = (losses, [np.asarray(v) for v in model.trainable_variables])
        if compiled:
            graphs = step.graphs()
            assert len(graphs) == 1
            text = str(graphs[0])
            assert "random_split" in text  # dropout's key is state of the graph
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=2e-4, atol=1e-5)
    for a, b in zip(runs[True][1], runs[False][1]):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)
    assert runs[True][0][-1] < 0.5 * runs[True][0][0]


def test_subclassed_model_fit_builds_on_first_batch():
    x, y = data()
    tg.manual_seed(5)
    model = Classifier()
    assert not model.built and model.weights == []
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.built and len(model.trainable_variables) == 4
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]


def test_train_on_batch_steps_like_fit():
    x, y = data(n=32)
    tg.manual_seed(6)
    a = mlp(dropout=0.0, bn=False)
    tg.manual_seed(6)
    b = mlp(dropout=0.0, bn=False)
    for m in (a, b):
        m.compile(tg.keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    losses = [a.train_on_batch(x, y)[0] for _ in range(3)]
    b.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(losses, b.history.history["loss"], rtol=1e-5)
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(va), np.asarray(vb), rtol=1e-5, atol=1e-6)
    logs = a.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    np.testing.assert_allclose(a.predict_on_batch(x), np.asarray(a(x)), rtol=1e-5, atol=1e-6)


def test_input_spec_errors_name_the_layer_and_the_line():
    """Keras' InputSpec: a built layer called on an input of another size, or a layer
    given the wrong rank, is a tg.ShapeError in Keras' words naming the layer and the
    caller's line (in fit too, where the call is traced), not an op's error."""
    here = __file__.rsplit("/", 1)[-1]
    dense = layers.Dense(4, name="head")
    dense(np.ones((2, 3), "float32"))
    with pytest.raises(tg.ShapeError, match=(r'Input 0 of layer "head" is incompatible with the layer: '
                                             r"expected axis -1 of input shape to have value 3, but "
                                             r"received input with shape \(2, 5\) \(at .*" + here)):
        dense(np.ones((2, 5), "float32"))
    with pytest.raises(tg.ShapeError, match=r'layer "conv" is incompatible with the layer: expected min_ndim=4, found ndim=3. '
                                            r"Full shape received: \(2, 8, 8\)"):
        layers.Conv2D(8, 3, name="conv")(np.ones((2, 8, 8), "float32"))
    with pytest.raises(tg.ShapeError, match=r'layer "pool" is incompatible with the layer: expected ndim=4, found ndim=5'):
        layers.MaxPooling2D(name="pool")(np.ones((1, 4, 4, 4, 2), "float32"))
    bn = layers.BatchNormalization(name="bn")
    bn(np.ones((2, 6), "float32"))
    with pytest.raises(tg.ShapeError, match=r'layer "bn" is incompatible with the layer: expected axis 1 of input shape to have value 6'):
        bn(np.ones((2, 7), "float32"))
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="out")])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(tg.ShapeError, match=r'layer "out".*have value 3.*\(at .*' + here):
        model.fit(np.ones((4, 5), "float32"), np.ones((4, 2), "float32"), verbose=0)
    # the spec build set, kept by copies of the layer (fit's step traces a copy)
    assert model.layers[0].input_spec == layers.InputSpec(min_ndim=2, axes={-1: 3})
    copy = jax.tree_util.tree_map(lambda a: a, model.layers[0])
    assert copy.input_spec == model.layers[0].input_spec


def test_a_layer_of_ones_own_sets_an_input_spec():
    class Pairs(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = layers.InputSpec(shape=(None, 2))

        def call(self, x):
            return x[:, 0] * x[:, 1]

    pairs = Pairs(name="pairs")
    np.testing.assert_allclose(pairs(np.array([[2.0, 3.0]], "float32")), [6.0])
    with pytest.raises(tg.ShapeError, match=r'layer "pairs" is incompatible with the layer: expected shape=\(None, 2\), found shape=\(1, 3\)'):
        pairs(np.ones((1, 3), "float32"))
    with pytest.raises(ValueError, match="axis 2 is out of range for ndim=2"):
        layers.InputSpec(ndim=2, axes={2: 1})


def test_a_sweep_over_models_compiles_each_without_retrace_warnings():
    """Models of one configuration share one `Steps`; Keras models differ by their layers'
    names, so each gets its own compiled steps (no RetraceWarning on the shared step), and
    only the last few models' steps stay alive."""
    import warnings

    x, y = data(n=32)
    steps = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", tg.RetraceWarning)
        for seed in range(7):
            keras.utils.set_random_seed(seed)
            model = mlp(bn=False)
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x, y, epochs=1, batch_size=16, verbose=0)
            model.evaluate(x, y, verbose=0)
            model.predict(x, verbose=0)
            trainer = model.__dict__["_tg_keras"]
            assert steps is None or trainer.steps is steps  # one configuration, one Steps
            steps = trainer.steps
    kept = len(steps._train), len(steps._eval), len(steps._predict)
    assert max(kept) <= 4 and min(kept) >= 1, kept
