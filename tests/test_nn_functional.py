"""tg.nn.functional (and the tg.* contraction functions) against jax.nn, flax and optax,
in jit, interpreter and define-by-run."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax
from op_matrix import MODES, run_mode, rotating_modes

import tracegraph as tg

try:  # Flax is an optional extra (in .[test]): the comparisons with it skip without it
    import flax.linen as fnn
except ImportError:
    fnn = None
needs_flax = pytest.mark.skipif(fnn is None, reason="needs flax (pip install -e '.[test]')")

F = tg.nn.functional
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(dtype)


def check(mode, fn, args, want, rtol=2e-5, atol=2e-6):
    got = run_mode(mode, fn, args)
    got_l = got if isinstance(got, (tuple, list)) else [got]
    want_l = want if isinstance(want, (tuple, list)) else [want]
    for g, w in zip(got_l, want_l):
        w = jnp.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(
            np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=rtol, atol=atol
        )


def nchw_to_nhwc(x):
    return jnp.transpose(x, (0, 2, 3, 1))


def nhwc_to_nchw(x):
    return jnp.transpose(x, (0, 3, 1, 2))


# -- activations ----------------------------------------------------------------------

ACTIVATIONS = {
    "relu": (F.relu, jax.nn.relu),
    "sigmoid": (F.sigmoid, jax.nn.sigmoid),
    "gelu": (F.gelu, jax.nn.gelu),
    "gelu-exact": (
        lambda x: F.gelu(x, approximate=False),
        lambda x: jax.nn.gelu(x, approximate=False),
    ),
    "tanh": (F.tanh, jnp.tanh),
    "softplus": (F.softplus, jax.nn.softplus),
    "log_sigmoid": (F.log_sigmoid, jax.nn.log_sigmoid),
    "silu": (F.silu, jax.nn.silu),
    "softmax": (F.softmax, jax.nn.softmax),
    "softmax-axis0": (lambda x: F.softmax(x, axis=0), lambda x: jax.nn.softmax(x, axis=0)),
    "log_softmax": (F.log_softmax, jax.nn.log_softmax),
    "tg.softmax": (tg.softmax, jax.nn.softmax),
    "tg.log_softmax": (
        lambda x: tg.log_softmax(x, axis=0),
        lambda x: jax.nn.log_softmax(x, axis=0),
    ),
}


@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name, mode):
    ours, theirs = ACTIVATIONS[name]
    x = rand(4, 7, scale=3.0)
    x[0, :3] = [-60.0, 0.0, 60.0]  # far tails stay finite
    check(mode, ours, (x,), theirs(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", rotating_modes())
def test_softmax_is_stable_for_huge_logits(mode):
    x = np.array([[1000.0, 1001.0, 999.0], [-1e4, 0.0, 1e4]], np.float32)
    check(mode, F.softmax, (x,), jax.nn.softmax(x))
    check(mode, F.log_softmax, (x,), jax.nn.log_softmax(x), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_one_hot(mode):
    ids = np.array([[0, 2], [4, -1]], np.int32)
    check(mode, lambda i: F.one_hot(i, 4), (ids,), jax.nn.one_hot(ids, 4))
    check(
        mode,
        lambda i: tg.one_hot(i, 3, dtype=jnp.bfloat16),
        (ids,),
        jax.nn.one_hot(ids, 3, dtype=jnp.bfloat16),
    )


# -- convolution and pooling ------------------------------------------------------------


def conv_reference(x, w, b, stride, padding, dilation, groups):
    y = lax.conv_general_dilated(
        nchw_to_nhwc(x),
        jnp.transpose(w, (2, 3, 1, 0)),
        stride,
        padding,
        rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    y = nhwc_to_nchw(y)
    return y if b is None else y + b[None, :, None, None]


CONVS = [
    # (x shape, w shape, stride, padding (ours), padding (lax), dilation, groups, bias)
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 0, "VALID", 1, 1, True),
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1, ((1, 1), (1, 1)), 1, 1, True),
    ((1, 2, 9, 7), (5, 2, 3, 2), (2, 1), "SAME", "SAME", 1, 1, False),
    ((1, 2, 10, 10), (3, 2, 4, 4), 3, "same", "SAME", 1, 1, True),
    ((1, 2, 9, 9), (2, 2, 3, 3), 1, (2, 1), ((2, 2), (1, 1)), (2, 1), 1, False),
    ((1, 4, 6, 6), (6, 2, 3, 3), 2, ((0, 1), (2, 0)), ((0, 1), (2, 0)), 1, 2, True),
    ((2, 3, 5, 5), (3, 1, 3, 3), 1, "SAME", "SAME", 2, 3, True),  # depthwise, dilated
]


@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv2d(case, mode):
    xs, ws, stride, pad, lax_pad, dilation, groups, bias = CONVS[case]
    x, w = rand(*xs), rand(*ws, scale=0.5)
    b = rand(ws[0]) if bias else None
    pair = lambda v: (v, v) if isinstance(v, int) else v
    want = conv_reference(x, w, b, pair(stride), lax_pad, pair(dilation), groups)
    if bias:
        fn = lambda x, w, b: F.conv2d(
            x, w, b, stride=stride, padding=pad, dilation=dilation, groups=groups
        )
        check(mode, fn, (x, w, b), want, rtol=1e-5, atol=1e-5)
    else:
        fn = lambda x, w: F.conv2d(
            x, w, stride=stride, padding=pad, dilation=dilation, groups=groups
        )
        check(mode, fn, (x, w), want, rtol=1e-5, atol=1e-5)


POOLS = [
    # (x shape, kernel, stride, padding (ours), padding (flax))
    ((2, 3, 8, 8), 2, None, 0, "VALID"),
    ((1, 2, 7, 7), 3, 2, 0, "VALID"),
    ((1, 2, 7, 6), (3, 2), (2, 1), 1, ((1, 1), (1, 1))),
    ((1, 2, 5, 5), 2, 2, "SAME", "SAME"),
    ((1, 1, 6, 5), (2, 3), 1, ((1, 0), (0, 2)), ((1, 0), (0, 2))),
]


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_max_pool2d(case, mode):
    xs, k, s, pad, flax_pad = POOLS[case]
    x = rand(*xs)
    pair = lambda v: (v, v) if isinstance(v, int) else v
    want = nhwc_to_nchw(
        fnn.max_pool(nchw_to_nhwc(x), pair(k), pair(s if s is not None else k), flax_pad)
    )
    check(mode, lambda x: F.max_pool2d(x, k, s, pad), (x,), want)


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_avg_pool2d(case, include, mode):
    xs, k, s, pad, flax_pad = POOLS[case]
    x = rand(*xs)
    pair = lambda v: (v, v) if isinstance(v, int) else v
    want = nhwc_to_nchw(
        fnn.avg_pool(
            nchw_to_nhwc(x),
            pair(k),
            pair(s if s is not None else k),
            flax_pad,
            count_include_pad=include,
        )
    )
    check(mode, lambda x: F.avg_pool2d(x, k, s, pad, count_include_pad=include), (x,), want)


# -- embedding, dropout, layer norm --------------------------------------------------------


@pytest.mark.parametrize("mode", rotating_modes())
def test_embedding(mode):
    table = rand(10, 4)
    ids = np.array([[1, 9, 0], [3, 3, 7]], np.int32)
    check(mode, F.embedding, (ids, table), table[ids])


@pytest.mark.parametrize("mode", rotating_modes())
def test_dropout(mode):
    key = jax.random.PRNGKey(3)
    x = rand(6, 10)
    keep = jax.random.bernoulli(key, 0.7, x.shape)
    check(mode, lambda x, k: F.dropout(x, k, 0.3), (x, key), jnp.where(keep, x / 0.7, 0), rtol=1e-6)


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_layer_norm_matches_flax(mode):
    x = rand(3, 5, 8, scale=2.0) + 1.0
    w, b = rand(8), rand(8)
    ln = fnn.LayerNorm(epsilon=1e-5)
    want = ln.apply({"params": {"scale": w, "bias": b}}, x)
    check(mode, lambda x, w, b: F.layer_norm(x, w, b), (x, w, b), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_layer_norm_over_several_axes(mode):
    x = rand(2, 3, 4)
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(1, 2), keepdims=True)
    check(
        mode,
        lambda x: F.layer_norm(x, eps=1e-3, axis=(1, -1)),
        (x,),
        (x - mu) / np.sqrt(var + 1e-3),
        rtol=1e-5,
        atol=1e-5,
    )


# -- losses -------------------------------------------------------------------------------

LOGITS = rand(6, 5, scale=3.0)
LABELS = np.array([0, 4, 2, 2, 1, 3], np.int32)
PROBS = np.asarray(jax.nn.softmax(rand(6, 5)))


@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_integer_labels(mode, reduction):
    per = optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS)
    want = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    check(
        mode,
        lambda l, y: F.cross_entropy(l, y, reduction=reduction),
        (LOGITS, LABELS),
        want,
        rtol=1e-5,
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_cross_entropy_label_smoothing(mode):
    targets = optax.smooth_labels(jax.nn.one_hot(LABELS, 5), 0.1)
    want = optax.softmax_cross_entropy(LOGITS, targets).mean()
    check(
        mode,
        lambda l, y: F.cross_entropy(l, y, label_smoothing=0.1),
        (LOGITS, LABELS),
        want,
        rtol=1e-5,
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_cross_entropy_probability_targets(mode):
    want = optax.softmax_cross_entropy(LOGITS, PROBS)
    check(
        mode, lambda l, p: F.cross_entropy(l, p, reduction="none"), (LOGITS, PROBS), want, rtol=1e-5
    )
    smoothed = optax.softmax_cross_entropy(LOGITS, optax.smooth_labels(PROBS, 0.2)).sum()
    check(
        mode, lambda l, p: F.cross_entropy(l, p, 0.2, "sum"), (LOGITS, PROBS), smoothed, rtol=1e-5
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_cross_entropy_batched_sequences(mode):
    logits, labels = rand(2, 3, 7), np.array([[1, 6, 0], [2, 2, 5]], np.int32)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    check(mode, F.cross_entropy, (logits, labels), want, rtol=1e-5)


def test_cross_entropy_is_a_composition_of_existing_ops():
    g = tg.trace(F.cross_entropy, LOGITS, LABELS)
    assert "log_softmax" in {n.op for n in g.nodes}
    assert not any("cross" in n.op for n in g.nodes)


@pytest.mark.parametrize("mode", rotating_modes())
def test_mse_loss(mode):
    p, t = rand(4, 3), rand(4, 3)
    check(mode, F.mse_loss, (p, t), optax.squared_error(p, t).mean())
    check(
        mode,
        lambda p, t: F.mse_loss(p, t, reduction="sum"),
        (p, t),
        optax.squared_error(p, t).sum(),
        rtol=1e-5,
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_binary_cross_entropy(mode):
    p = np.array([0.1, 0.5, 0.9, 0.999, 0.0, 1.0], np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0], np.float32)
    with np.errstate(divide="ignore"):
        want = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))
    check(
        mode, lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), (p, t), want, rtol=1e-5
    )
    # on probabilities away from 0 and 1 it agrees with the logits form (optax)
    logits = rand(5, 4)
    t2 = (rand(5, 4) > 0).astype(np.float32)
    want = optax.sigmoid_binary_cross_entropy(logits, t2).mean()
    check(mode, F.binary_cross_entropy, (np.asarray(jax.nn.sigmoid(logits)), t2), want, rtol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_binary_cross_entropy_with_logits_is_stable(mode):
    logits = np.array([[-200.0, -20.0, 0.0, 3.0, 20.0, 200.0]], np.float32)
    t = np.array([[1.0, 0.0, 0.5, 1.0, 0.0, 0.0]], np.float32)
    want = optax.sigmoid_binary_cross_entropy(logits, t)
    check(
        mode,
        lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction="none"),
        (logits, t),
        want,
        rtol=1e-5,
    )
    assert np.isfinite(np.asarray(want)).all()


# -- tg.* contractions and Tensor methods --------------------------------------------------


CONST = rand(3, 4)  # a numpy array on the left of @: Tensor.__rmatmul__

CONTRACTIONS = {
    "matmul": (lambda a, b: tg.matmul(a, b), jnp.matmul, ((2, 3, 4), (4, 5))),
    "@": (lambda a, b: a @ b, jnp.matmul, ((3, 4), (2, 4, 5))),
    "@-1d": (lambda a, b: a @ b, jnp.matmul, ((4,), (4, 5))),
    "rmatmul": (lambda a, b: CONST @ b + a, lambda a, b: CONST @ b + a, ((3, 2), (4, 2))),
    "dot-2d": (tg.dot, jnp.dot, ((3, 4), (4, 2))),
    "dot-nd": (tg.dot, jnp.dot, ((2, 3, 4), (5, 4, 6))),
    "dot-scalar": (tg.dot, jnp.dot, ((), (3,))),
    "dot-method": (lambda a, b: a.dot(b), jnp.dot, ((3,), (3, 2))),
    "tensordot": (tg.tensordot, jnp.tensordot, ((2, 3, 4), (3, 4, 5))),
    "tensordot-axes": (
        lambda a, b: tg.tensordot(a, b, axes=([0], [-1])),
        lambda a, b: jnp.tensordot(a, b, axes=([0], [-1])),
        ((3, 4), (5, 3)),
    ),
    "einsum": (
        lambda a, b: tg.einsum("bij,bkj->bik", a, b),
        lambda a, b: jnp.einsum("bij,bkj->bik", a, b),
        ((2, 3, 4), (2, 5, 4)),
    ),
    "dot_general": (
        lambda a, b: tg.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))),
        lambda a, b: lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))),
        ((2, 3, 4), (2, 4, 5)),
    ),
    "stop_gradient": (lambda a, b: tg.stop_gradient(a) + b, lambda a, b: a + b, ((3,), (3,))),
}


@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("name", sorted(CONTRACTIONS))
def test_contraction_functions(name, mode):
    ours, theirs, shapes = CONTRACTIONS[name]
    args = tuple(rand(*s) for s in shapes)
    check(mode, ours, args, theirs(*args), rtol=1e-5, atol=1e-5)


def test_matmul_operator_records_a_matmul_node():
    g = tg.trace(lambda x, w: x @ w, tg.spec((2, 3), "f32"), tg.spec((3, 4), "f32"))
    assert [n.op for n in g.nodes] == ["matmul"]
    assert str(g.outputs[0].type) == "f32[2,4]"


# -- errors name the user's line ---------------------------------------------------------------


def test_errors_name_this_file():
    with pytest.raises(tg.ShapeError, match=r"matmul.*test_nn_functional.py"):
        tg.trace(lambda a, b: a @ b, np.ones((2, 3), np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(tg.ShapeError, match=r"channels.*test_nn_functional.py"):
        tg.trace(F.conv2d, np.ones((1, 3, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(tg.ShapeError, match=r"padding.*test_nn_functional.py"):
        tg.trace(
            lambda x, w: F.conv2d(x, w, padding="FULL"),
            np.ones((1, 1, 5, 5), np.float32),
            np.ones((1, 1, 3, 3), np.float32),
        )
    with pytest.raises(tg.ShapeError, match=r"einsum label 'j'.*test_nn_functional.py"):
        tg.trace(lambda a, b: tg.einsum("ij,jk->ik", a, b), np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(tg.ShapeError, match="larger than the padded input"):
        F.max_pool2d(np.ones((1, 1, 2, 2), np.float32), 3)
    with pytest.raises(tg.ShapeError, match="do not fit logits"):
        F.cross_entropy(LOGITS, LABELS[:3])
    with pytest.raises(tg.TracingError, match="reduction"):
        F.mse_loss(np.ones(3), np.ones(3), reduction="avg")
