"""tg.keras layers against Keras 3 (JAX backend): the same weights give the same outputs
and the same gradients (w.r.t. the input and every trainable weight); each layer also
runs under tg.jit with the same result as eagerly. Skipped where keras is not installed
(it is a test extra)."""

import inspect
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.keras import layers

from conftest import LazyModule, has_module

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = LazyModule("keras")  # imported by the first test, not at collection
pytestmark = pytest.mark.skipif(not has_module("keras"), reason="keras is a test extra")


@pytest.fixture(autouse=True, scope="module")
def _keras_on_jax():
    if keras.backend.backend() != "jax":  # pragma: no cover - another backend was chosen first
        pytest.skip("these comparisons need Keras on its JAX backend")


def _keras_run(klayer, inputs, training, kwargs):
    tv = [v.value for v in klayer.trainable_variables]
    ntv = [v.value for v in klayer.non_trainable_variables]

    if "training" in inspect.signature(klayer.call).parameters:
        kwargs = {**kwargs, "training": training}

    def f(tv, x):
        y, new_ntv = klayer.stateless_call(tv, ntv, x, **kwargs)
        return jnp.sum(jnp.sin(y)), (y, new_ntv)

    (_, (y, new_ntv)), (g_w, g_x) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(tv, inputs)
    return np.asarray(y), [np.asarray(g) for g in g_w], g_x, [np.asarray(v) for v in new_ntv]


def _ours_run(layer, inputs, training, kwargs):
    xs = jax.tree_util.tree_map(tg.constant, inputs)
    with tg.GradientTape(persistent=True) as tape:
        for x in jax.tree_util.tree_leaves(xs, is_leaf=lambda v: isinstance(v, tg.Tensor)):
            tape.watch(x)
        y = layer(xs, training=training, **kwargs)
        loss = tg.reduce_sum(tg.sin(y))
    g_w = tape.gradient(loss, layer.trainable_variables)
    g_x = tape.gradient(loss, xs)
    return np.asarray(y), [np.asarray(g) for g in g_w], g_x


def check_layer(ours, theirs, inputs, *, training=False, atol=1e-5, jit=True, **kwargs):
    """Build both on ``inputs``, copy Keras' weights into ours, compare outputs and
    gradients (and the updated non-trainable weights), then ours under tg.jit."""
    theirs(inputs, **kwargs)
    ours(inputs, **kwargs)
    assert len(ours.weights) == len(theirs.weights), (ours.weights, theirs.weights)
    for mine, k in zip(ours.weights, theirs.weights):
        assert tuple(mine.shape) == tuple(k.shape), (mine.name, k.path)
        mine.assign(np.asarray(k.value))
    y_k, gw_k, gx_k, ntv_k = _keras_run(theirs, inputs, training, kwargs)
    y_o, gw_o, gx_o = _ours_run(ours, inputs, training, kwargs)
    np.testing.assert_allclose(y_o, y_k, atol=atol, rtol=1e-5)
    assert len(gw_o) == len(gw_k)
    for a, b in zip(gw_o, gw_k):
        np.testing.assert_allclose(a, b, atol=atol * 10, rtol=1e-4)
    for a, b in zip(jax.tree_util.tree_leaves(gx_o), jax.tree_util.tree_leaves(gx_k)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol * 10, rtol=1e-4)
    if training:  # the state update: Keras' new non-trainable values, ours in place
        for mine, new in zip(ours.non_trainable_weights, ntv_k):
            np.testing.assert_allclose(np.asarray(mine), new, atol=atol, rtol=1e-5)
    if jit and not training:
        y_j = tg.jit(lambda m, x: m(x, **kwargs))(ours, inputs)
        np.testing.assert_allclose(np.asarray(y_j), y_o, atol=atol, rtol=1e-5)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def f32(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


SLOW = pytest.mark.slow  # the default run keeps one case of each layer


@pytest.mark.parametrize("kw", [{"activation": "relu"}, pytest.param({}, marks=SLOW),
                                pytest.param({"use_bias": False, "activation": "tanh"}, marks=SLOW)])
def test_dense(rng, kw):
    check_layer(layers.Dense(5, **kw), keras.layers.Dense(5, **kw), f32(rng, 3, 4))


@SLOW
def test_dense_on_3d_input(rng):
    check_layer(layers.Dense(3, activation="gelu"), keras.layers.Dense(3, activation="gelu"),
                f32(rng, 2, 4, 6))


@pytest.mark.parametrize("kw", [
    {"padding": "same", "strides": 2},
    pytest.param({"padding": "valid"}, marks=SLOW),
    pytest.param({"padding": "same", "dilation_rate": 2, "activation": "relu"}, marks=SLOW),
])
def test_conv2d(rng, kw):
    check_layer(layers.Conv2D(4, 3, **kw), keras.layers.Conv2D(4, 3, **kw), f32(rng, 2, 7, 6, 3))


@SLOW
def test_conv2d_groups_and_rectangular_kernel(rng):
    kw = {"kernel_size": (3, 2), "groups": 2, "padding": "same"}
    check_layer(layers.Conv2D(4, **kw), keras.layers.Conv2D(4, **kw), f32(rng, 2, 6, 5, 4))


@pytest.mark.parametrize("padding", ["causal", pytest.param("valid", marks=SLOW),
                                     pytest.param("same", marks=SLOW)])
def test_conv1d(rng, padding):
    check_layer(layers.Conv1D(3, 3, padding=padding), keras.layers.Conv1D(3, 3, padding=padding),
                f32(rng, 2, 9, 2))


@pytest.mark.parametrize("cls,kw", [
    ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("GlobalMaxPooling2D", {"keepdims": True}),
    pytest.param("MaxPooling2D", {}, marks=SLOW),
    pytest.param("AveragePooling2D", {"pool_size": 2}, marks=SLOW),
    pytest.param("AveragePooling2D", {"pool_size": (2, 3), "padding": "same"}, marks=SLOW),
    pytest.param("MaxPooling1D", {"pool_size": 2}, marks=SLOW),
    pytest.param("GlobalAveragePooling2D", {}, marks=SLOW),
    pytest.param("GlobalAveragePooling1D", {}, marks=SLOW),
])
def test_pooling(rng, cls, kw):
    x = f32(rng, 2, 7, 5, 3) if cls.endswith("2D") else f32(rng, 2, 9, 3)
    check_layer(getattr(layers, cls)(**kw), getattr(keras.layers, cls)(**kw), x)


@pytest.mark.parametrize("training", [True, pytest.param(False, marks=SLOW)])
def test_batch_normalization(rng, training):
    x = f32(rng, 6, 4, 3) * 2 + 1
    check_layer(layers.BatchNormalization(), keras.layers.BatchNormalization(), x,
                training=training, atol=1e-4)


@SLOW
def test_batch_normalization_axis_1(rng):
    kw = {"axis": 1, "momentum": 0.9, "epsilon": 1e-5}
    check_layer(layers.BatchNormalization(**kw), keras.layers.BatchNormalization(**kw),
                f32(rng, 5, 3, 4), training=True, atol=1e-4)


@pytest.mark.parametrize("kw", [{"axis": (1, 2), "epsilon": 1e-6}, pytest.param({}, marks=SLOW),
                                pytest.param({"center": False}, marks=SLOW)])
def test_layer_normalization(rng, kw):
    check_layer(layers.LayerNormalization(**kw), keras.layers.LayerNormalization(**kw),
                f32(rng, 2, 3, 4), atol=1e-4)


def test_embedding(rng):
    ids = rng.integers(0, 10, (2, 5)).astype(np.int32)
    ours, theirs = layers.Embedding(10, 4), keras.layers.Embedding(10, 4)
    theirs(ids)
    ours(ids)
    ours.embeddings.assign(np.asarray(theirs.embeddings.value))
    np.testing.assert_allclose(np.asarray(ours(ids)), np.asarray(theirs(ids)), atol=1e-6)


@pytest.mark.parametrize("cls", ["Flatten", pytest.param("Activation", marks=SLOW),
                                 pytest.param("Reshape", marks=SLOW),
                                 pytest.param("Permute", marks=SLOW)])
def test_shape_layers(rng, cls):
    args = {"Activation": ("elu",), "Reshape": ((4, 6),), "Permute": ((2, 1, 3),)}.get(cls, ())
    check_layer(getattr(layers, cls)(*args), getattr(keras.layers, cls)(*args), f32(rng, 2, 3, 8, 1)
                if cls != "Reshape" else f32(rng, 2, 3, 8))


@pytest.mark.parametrize("cls", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
                                 "Concatenate"])
def test_merging(rng, cls):
    a, b = f32(rng, 2, 3), f32(rng, 2, 3)
    ours, theirs = getattr(layers, cls)(), getattr(keras.layers, cls)()
    np.testing.assert_allclose(np.asarray(ours([a, b])), np.asarray(theirs([a, b])), atol=1e-6)


@pytest.mark.parametrize("name", [
    "relu", "softmax", "gelu", "selu", "hard_sigmoid",
    *(pytest.param(n, marks=SLOW) for n in (
        "sigmoid", "tanh", "elu", "softplus", "softsign", "swish", "leaky_relu", "relu6", "mish",
        "exponential", "linear", "log_softmax")),
])
def test_activations(rng, name):
    x = f32(rng, 3, 5) * 3
    ours = tg.keras.activations.get(name)(x)
    theirs = keras.activations.get(name)(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5, rtol=1e-5)


def test_dropout_masks_and_scales():
    x = np.ones((2000,), np.float32)
    drop = layers.Dropout(0.25, seed=3)
    np.testing.assert_array_equal(np.asarray(drop(x)), x)  # not training: the identity
    a, b = np.asarray(drop(x, training=True)), np.asarray(drop(x, training=True))
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.2 < (a == 0).mean() < 0.3
    assert not np.array_equal(a, b)  # the seed generator moved on


def test_initializers_follow_keras_fans():
    for name in ("glorot_uniform", "he_uniform", "lecun_uniform"):
        w = np.asarray(tg.keras.initializers.get(name)((300, 200)))
        fan_in, fan_out = 300, 200
        scale = {"glorot_uniform": 2 / (fan_in + fan_out), "he_uniform": 2 / fan_in,
                 "lecun_uniform": 1 / fan_in}[name]
        assert np.abs(w).max() <= np.sqrt(3 * scale) + 1e-6
        np.testing.assert_allclose(w.var(), scale, rtol=0.05)
    w = np.asarray(tg.keras.initializers.HeNormal(seed=1)((3, 3, 64, 64)))
    np.testing.assert_allclose(w.std(), np.sqrt(2 / (9 * 64)), rtol=0.05)
    np.testing.assert_array_equal(w, np.asarray(tg.keras.initializers.HeNormal(seed=1)((3, 3, 64, 64))))
