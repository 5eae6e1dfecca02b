"""TensorFlow's spellings (``import tracegraph as tf``): every TF-named function
(``tg.reduce_mean``, ``tg.gather``, ``tg.math.*``, ``tg.nn.*``, TF-style
``tg.random.normal``) against numpy / jax.numpy / optax references in tg.jit, tg.eager,
on imperative tensors and on plain arrays; gradients against jax.grad; the errors."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegraph as tg

tf = tg
RNG = np.random.default_rng(0)
MODES = ("eager", "imperative")  # and tg.jit: every case in one compiled function, below


def rand(*shape, dtype=np.float32):
    return RNG.normal(size=shape).astype(dtype)


def run(mode, fn, args):
    if mode == "jit":
        return tg.jit(fn)(*args)
    if mode == "eager":
        return tg.eager(fn)(*args)
    if mode == "imperative":
        ts = [tg.tensor(a) for a in args]
        out = fn(*ts)
        if ts:  # an op on imperative tensors gives an imperative tensor
            assert isinstance(out, tg.TapeTensor), type(out)
        return out.numpy() if isinstance(out, tg.Tensor) else out
    return fn(*args)


def check(got, want, rtol=2e-6, atol=1e-6):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


def np_gather(params, indices, axis, batch_dims):
    """TF's gather, by its definition: batch_dims peel matching leading axes."""
    if batch_dims == 0:
        return np.take(params, indices, axis=axis)
    return np.stack([np_gather(p, i, axis - 1, batch_dims - 1) for p, i in zip(params, indices)])


def np_one_hot(ids, depth, on=1.0, off=0.0, axis=-1, dtype=np.float32):
    out = np.where(np.asarray(ids)[..., None] == np.arange(depth), on, off).astype(dtype)
    return np.moveaxis(out, -1, axis)


X = rand(3, 4)
Y = rand(3, 4)
PROBS = np.asarray(jax.nn.softmax(Y))
XI = np.array([[-3, -4, 5, 7], [1, 0, 1, 0], [9, -9, 2, 2]], np.int32)
B = RNG.random((3, 4)) > 0.5
IDS = np.array([[0, 2], [1, 1], [2, 0]], np.int32)
P3 = rand(3, 4, 5)

# name -> (function of arrays, arguments, reference)
CASES = {
    "reduce_sum": (lambda x: tf.reduce_sum(x, axis=1), (X,), X.sum(1)),
    "reduce_sum-keepdims": (lambda x: tf.reduce_sum(x, [0, 1], keepdims=True), (X,), X.sum((0, 1), keepdims=True)),
    "reduce_mean": (lambda x: tf.reduce_mean(x), (X,), X.mean(dtype=np.float32)),
    "reduce_mean-axis": (lambda x: tf.reduce_mean(x, axis=-1), (X,), X.mean(-1)),
    "reduce_mean-int": (  # TF: an integer mean, truncated toward zero
        lambda x: tf.reduce_mean(x, axis=1), (XI,),
        (np.sign(XI.sum(1)) * (np.abs(XI.sum(1)) // 4)).astype(np.int32),
    ),
    "reduce_max": (lambda x: tf.reduce_max(x, axis=0), (X,), X.max(0)),
    "reduce_min": (lambda x: tf.reduce_min(x, 1, True), (X,), X.min(1, keepdims=True)),
    "reduce_prod": (lambda x: tf.reduce_prod(x, axis=1), (X,), X.prod(1)),
    "reduce_logsumexp": (
        lambda x: tf.reduce_logsumexp(x, axis=1), (X,), np.asarray(jax.scipy.special.logsumexp(X, axis=1)),
    ),
    "reduce_any": (lambda b: tf.reduce_any(b, axis=1), (B,), B.any(1)),
    "reduce_all": (lambda b: tf.reduce_all(b), (B,), np.asarray(B.all())),
    "reduce_any-empty": (lambda b: tf.reduce_any(b[:, :0], axis=1), (B,), np.zeros(3, bool)),
    "reduce_all-empty": (lambda b: tf.reduce_all(b[:, :0], axis=1, keepdims=True), (B,), np.ones((3, 1), bool)),
    "cast": (lambda x: tf.cast(x * 3, tf.int32), (X,), np.trunc(X * 3).astype(np.int32)),
    "cast-bool": (lambda x: tf.cast(x, tf.float32), (B,), B.astype(np.float32)),
    "concat": (lambda a, b: tf.concat([a, b], axis=-1), (X, X * 2), np.concatenate([X, X * 2], 1)),
    "gather": (lambda p, i: tf.gather(p, i), (X, IDS[:, 0]), X[IDS[:, 0]]),
    "gather-axis": (lambda p, i: tf.gather(p, i, axis=1), (P3, IDS), np_gather(P3, IDS, 1, 0)),
    "gather-batch": (
        lambda p, i: tf.gather(p, i, axis=1, batch_dims=1), (P3, IDS), np_gather(P3, IDS, 1, 1),
    ),
    "gather-batch-axis2": (
        lambda p, i: tf.gather(p, i, axis=2, batch_dims=1), (P3, IDS), np_gather(P3, IDS, 2, 1),
    ),
    "gather-batch-neg": (
        lambda p, i: tf.gather(p, i, axis=-1, batch_dims=-1), (P3[:, :2], IDS[:, :, None][:, :, [0, 0]]),
        np_gather(P3[:, :2], IDS[:, :, None][:, :, [0, 0]], 2, 2),
    ),
    "tile": (lambda x: tf.tile(x, [2, 3]), (X,), np.tile(X, (2, 3))),
    "range": (lambda: tf.range(3, 18, 3), (), np.arange(3, 18, 3, dtype=np.int32)),
    "range-limit": (lambda: tf.range(5), (), np.arange(5, dtype=np.int32)),
    "range-float": (lambda: tf.range(3, 1, -0.5), (), np.arange(3, 1, -0.5, dtype=np.float32)),
    "range-dtype": (lambda: tf.range(4, dtype=tf.float32), (), np.arange(4, dtype=np.float32)),
    "fill": (lambda: tf.fill([2, 3], 9), (), np.full((2, 3), 9, np.int32)),
    "fill-float": (lambda x: tf.fill([2], 1.5) + x[0, :2], (X,), np.full(2, 1.5, np.float32) + X[0, :2]),
    "one_hot": (lambda i: tf.one_hot(i, 3), (IDS,), np_one_hot(IDS, 3)),
    "one_hot-on-off-axis": (
        lambda i: tf.one_hot(i - 1, depth=3, on_value=5.0, off_value=-1.0, axis=0), (IDS,),
        np_one_hot(IDS - 1, 3, 5.0, -1.0, axis=0),
    ),
    "one_hot-int": (
        lambda i: tf.one_hot(i, 4, on_value=7, off_value=0, axis=1), (IDS,),
        np_one_hot(IDS, 4, 7, 0, axis=1, dtype=np.int32),
    ),
    "one_hot-jax-keywords": (
        lambda i: tf.one_hot(i, num_classes=3, dtype=jnp.bfloat16).astype(jnp.float32), (IDS,), np_one_hot(IDS, 3),
    ),
    "clip_by_value": (lambda x: tf.clip_by_value(x, -0.5, 0.5), (X,), np.clip(X, -0.5, 0.5)),
    "clip_by_value-arrays": (
        lambda x, lo: tf.clip_by_value(x, lo, 0.7), (X, X[0] * 0.5), np.minimum(np.maximum(X, X[0] * 0.5), 0.7),
    ),
    "truediv": (lambda a, b: tf.truediv(a, b), (X, X + 3), X / (X + 3)),
    "truediv-int": (lambda a: tf.truediv(a, 2), (XI,), (XI / 2).astype(np.float32)),
    "pow": (lambda a: tf.pow(tf.abs(a), 1.5), (X,), np.abs(X) ** 1.5),
    "floordiv": (lambda a: tf.floordiv(a, 4), (XI,), XI // 4),
    "add-subtract-multiply-divide": (
        lambda a, b: tf.divide(tf.multiply(tf.add(a, b), tf.subtract(a, b)), 2.0), (X, Y),
        (X + Y) * (X - Y) / 2,
    ),
    "constant": (lambda x: x + tf.constant([1.0, 2.0, 3.0, 4.0]), (X,), X + np.arange(1, 5, dtype=np.float32)),
    "constant-shape": (lambda x: x * tf.constant(2.0, shape=[3, 4]), (X,), X * 2),
    "transpose-perm": (lambda x: tf.transpose(x, perm=[2, 0, 1]), (P3,), P3.transpose(2, 0, 1)),
    "matmul-transpose_a": (lambda a, b: tf.matmul(a, b, transpose_a=True), (X, Y), X.T @ Y),
    "matmul-transpose_b": (lambda a, b: tf.matmul(a, b, transpose_b=True), (X, Y), X @ Y.T),
    "square-reshape-expand_dims-squeeze": (
        lambda x: tf.squeeze(tf.expand_dims(tf.reshape(tf.square(x), [12]), 0), axis=0), (X,), (X ** 2).reshape(12),
    ),
    "zeros-dtype": (lambda: tf.zeros([2, 3], tf.int32), (), np.zeros((2, 3), np.int32)),
    # tf.math: TF's argmax (axis None is 0) and the gathered names
    "math.argmax": (lambda x: tf.math.argmax(x), (X,), X.argmax(0).astype(np.int32)),
    "math.argmin": (lambda x: tf.math.argmin(x, axis=1, output_type=tf.int32), (X,), X.argmin(1).astype(np.int32)),
    "math.reduce_mean-exp": (lambda x: tf.math.reduce_mean(tf.math.exp(x), 0), (X,), np.exp(X).mean(0)),
    # tf.nn
    "nn.relu": (lambda x: tf.nn.relu(features=x), (X,), np.maximum(X, 0)),
    "nn.sigmoid": (lambda x: tf.nn.sigmoid(x), (X,), np.asarray(jax.nn.sigmoid(X))),
    "nn.tanh": (lambda x: tf.nn.tanh(x), (X,), np.tanh(X)),
    "nn.softmax": (lambda x: tf.nn.softmax(logits=x), (X,), np.asarray(jax.nn.softmax(X, -1))),
    "nn.softmax-axis": (lambda x: tf.nn.softmax(x, axis=0), (X,), np.asarray(jax.nn.softmax(X, 0))),
    "nn.log_softmax": (lambda x: tf.nn.log_softmax(x), (X,), np.asarray(jax.nn.log_softmax(X, -1))),
    "nn.gelu": (lambda x: tf.nn.gelu(x), (X,), np.asarray(jax.nn.gelu(X, approximate=False))),
    "nn.leaky_relu": (lambda x: tf.nn.leaky_relu(x), (X,), np.where(X > 0, X, 0.2 * X)),
    "nn.leaky_relu-alpha": (lambda x: tf.nn.leaky_relu(x, alpha=0.01), (X,), np.where(X > 0, X, 0.01 * X)),
    "nn.softplus": (lambda x: tf.nn.softplus(x), (X,), np.asarray(jax.nn.softplus(X))),
    "nn.silu": (lambda x: tf.nn.silu(x), (X,), np.asarray(jax.nn.silu(X))),
    "nn.sparse_softmax_cross_entropy_with_logits": (
        lambda x, y: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x), (X, IDS[:, 0]),
        np.asarray(optax.softmax_cross_entropy_with_integer_labels(X, IDS[:, 0])),
    ),
    "nn.softmax_cross_entropy_with_logits": (
        lambda x, p: tf.nn.softmax_cross_entropy_with_logits(labels=p, logits=x), (X, PROBS),
        np.asarray(optax.softmax_cross_entropy(X, PROBS)),
    ),
    "nn.sigmoid_cross_entropy_with_logits": (
        lambda x, z: tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), (X, B.astype(np.float32)),
        np.asarray(optax.sigmoid_binary_cross_entropy(X, B.astype(np.float32))),
    ),
    "nn.l2_loss": (lambda x: tf.nn.l2_loss(x), (X,), np.asarray((X ** 2).sum() / 2, np.float32)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_tf_function_matches_reference(name, mode):
    fn, args, want = CASES[name]
    check(run(mode, fn, args), want)


def test_tf_functions_under_jit():
    # one tg.jit function computing every case (one XLA compilation instead of 70)
    names = sorted(CASES)
    got = tg.jit(lambda args: {n: CASES[n][0](*a) for n, a in zip(names, args)})([CASES[n][1] for n in names])
    for n in names:
        try:
            check(got[n], CASES[n][2])
        except AssertionError as e:
            raise AssertionError(f"{n}: {e}") from None


@pytest.mark.parametrize("name", ["reduce_mean-int", "gather-batch", "tile", "one_hot-on-off-axis", "range", "nn.l2_loss"])
def test_tf_function_on_plain_arrays(name):
    fn, args, want = CASES[name]
    check(run("plain", fn, args), want)


def test_tf_names_at_top_level_and_in_math_and_nn():
    for name in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_any",
                 "reduce_all", "reduce_logsumexp", "cast", "concat", "gather", "tile", "range", "fill",
                 "one_hot", "clip_by_value", "truediv", "add", "subtract", "multiply", "divide"):
        assert callable(getattr(tg, name)), name
        if name.startswith("reduce_") or name in ("truediv", "add", "divide"):
            assert callable(getattr(tg.math, name)), name
    assert tg.range(3).tolist() == [0, 1, 2] and list(range(3)) == [0, 1, 2]  # the builtin is untouched
    # numpy's meanings stay at top level where TF's differ
    assert np.asarray(tg.argmax(np.array([[0, 5], [7, 1]]))) == 2
    check(tg.transpose(X, (1, 0)), X.T)


def jnp_gather_batch1(p, i, axis):
    return jax.vmap(lambda q, j: jnp.take(q, j, axis=axis - 1))(p, i)


# (tracegraph function, jax.numpy reference, argument shape)
GRADS = {
    "reduce_mean-square": (lambda x: tf.reduce_mean(tf.square(x)), lambda x: jnp.mean(x ** 2), (3, 4)),
    "tile-range": (
        lambda x: tf.reduce_sum(tf.tile(x, [2, 3]) ** 3 * tf.range(12, dtype=tf.float32)),
        lambda x: jnp.sum(jnp.tile(x, (2, 3)) ** 3 * jnp.arange(12.0)), (3, 4),
    ),
    "gather-batch_dims": (
        lambda p: tf.reduce_sum(tf.gather(p, IDS, axis=2, batch_dims=1) ** 2),
        lambda p: jnp.sum(jnp_gather_batch1(p, IDS, 2) ** 2), (3, 4, 5),
    ),
    "clip_by_value": (
        lambda x: tf.reduce_sum(tf.clip_by_value(x, -0.5, 0.5) * x), lambda x: jnp.sum(jnp.clip(x, -0.5, 0.5) * x), (3, 4),
    ),
    "concat-logsumexp": (
        lambda x: tf.reduce_logsumexp(tf.concat([x, 2 * x], axis=0)),
        lambda x: jax.scipy.special.logsumexp(jnp.concatenate([x, 2 * x], 0)), (3, 4),
    ),
    "sparse_softmax_ce": (
        lambda x: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=IDS[:, 0], logits=x)),
        lambda x: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(x, IDS[:, 0])), (3, 4),
    ),
    "l2_loss-leaky_relu": (
        lambda x: tf.nn.l2_loss(tf.nn.leaky_relu(x)), lambda x: jnp.sum(jax.nn.leaky_relu(x, 0.2) ** 2) / 2, (3, 4),
    ),
}


def test_gradients_equal_jax_grad():
    names = sorted(GRADS)
    xs = [rand(*GRADS[n][2]) for n in names]
    # every gradient in one compiled function each side (two XLA compilations, not 14)
    got = tg.jit(lambda xs: [tg.grad(GRADS[n][0])(x) for n, x in zip(names, xs)])(xs)
    want = jax.jit(lambda xs: [jax.grad(GRADS[n][1])(x) for n, x in zip(names, xs)])(xs)
    for n, g, w in zip(names, got, want):
        try:
            check(g, w, rtol=1e-5)
        except AssertionError as e:
            raise AssertionError(f"{n}: {e}") from None
    for n in ("gather-batch_dims", "l2_loss-leaky_relu"):  # and imperatively (op by op)
        x = xs[names.index(n)]
        t = tg.tensor(x, requires_grad=True)
        GRADS[n][0](t).backward()
        check(t.grad, want[names.index(n)], rtol=1e-5)


# -- TF-style random -------------------------------------------------------------------------


def test_tf_style_normal_and_uniform_draw_from_the_seeded_global_stream():
    tf.random.set_seed(3)
    a = tf.random.normal([2, 3])
    assert isinstance(a, tg.TapeTensor) and a.shape == (2, 3) and a.dtype == np.float32
    tf.random.set_seed(3)
    b = tf.random.normal([2, 3], mean=1.0, stddev=2.0)
    check(b, np.asarray(a) * np.float32(2) + np.float32(1))
    # the key is the stream's next key: equal to the explicit-key (JAX-style) call
    tg.manual_seed(3)
    k = tg.frontend.fn_random.next_key()
    check(a, tg.random.normal(k, (2, 3)), rtol=0, atol=0)
    tf.random.set_seed(3)
    u = tf.random.uniform(shape=[1000], minval=-1.0, maxval=2.0)
    assert -1 <= float(tg.reduce_min(u)) and float(tg.reduce_max(u)) < 2 and u.dtype == np.float32
    i = tf.random.uniform([1000], minval=5, maxval=10, dtype=tf.int32)
    assert i.dtype == np.int32 and set(np.unique(i.numpy())) == {5, 6, 7, 8, 9}
    assert tf.random.normal((2, 3)).shape == (2, 3) and tf.random.normal(2).shape == (2,)


def test_tf_style_op_seed_gives_a_sequence_restarted_by_set_seed():
    tf.random.set_seed(5)
    s1 = [tf.random.uniform([3], seed=10).numpy() for _ in range(2)]
    tf.random.set_seed(5)
    s2 = [tf.random.uniform([3], seed=10).numpy() for _ in range(2)]
    tf.random.set_seed(6)
    s3 = tf.random.uniform([3], seed=10).numpy()
    np.testing.assert_array_equal(s1[0], s2[0])
    np.testing.assert_array_equal(s1[1], s2[1])
    assert not np.array_equal(s1[0], s1[1]) and not np.array_equal(s1[0], s3)


def test_jax_style_calls_still_work_in_every_mode():
    key = jax.random.PRNGKey(7)
    want = jax.random.normal(key, (2, 3))
    for mode in ("jit", "eager", "plain"):
        check(run(mode, lambda k: tg.random.normal(k, (2, 3)), (key,)), want, rtol=0, atol=0)
        check(run(mode, lambda k: tg.random.uniform(k, shape=(4,), minval=1.0, maxval=2.0), (key,)),
              jax.random.uniform(key, (4,), minval=1.0, maxval=2.0), rtol=0, atol=0)
    check(tg.random.normal(jax.random.key(7), (2, 3)), want, rtol=0, atol=0)  # a typed key
    check(tg.random.normal(key=key, shape=(2, 3)), want, rtol=0, atol=0)
    check(tg.random.normal(tg.tensor(np.asarray(key)), (2, 3)), want, rtol=0, atol=0)


def test_tf_style_random_inside_a_trace_is_an_error_naming_the_line():
    f = tg.jit(lambda x: x + tf.random.normal([2]))
    with pytest.raises(tg.TracingError, match=r"normal\(shape.*test_tf_ops.py:\d+.*pass a key"):
        f(np.ones(2, np.float32))
    with pytest.raises(tg.TracingError, match="uniform"):
        tg.eager(lambda: tf.random.uniform([2]))()
    with pytest.raises(ValueError, match="maxval"):
        tf.random.uniform([2], dtype=tf.int32)


# -- errors ---------------------------------------------------------------------------------------


def test_errors_name_the_function_and_the_line():
    here = os.path.basename(__file__)
    with pytest.raises(tg.ShapeError, match=rf"tile: 1 multiples for a rank-2 input.*{here}:\d+"):
        tf.tile(X, [2])
    with pytest.raises(tg.ShapeError, match=rf"gather: batch_dims=1.*{here}:\d+"):
        tf.gather(P3, IDS[:2], axis=1, batch_dims=1)
    with pytest.raises(tg.ShapeError, match=rf"transpose: give axes or perm.*{here}"):
        tf.transpose(X, (1, 0), perm=(1, 0))
    with pytest.raises(tg.Error, match=rf"reduce_mean.*{here}"):
        tf.reduce_mean(X, axis=5)
