"""tg.nn modules: every layer against a Flax linen or jax.numpy reference with the same
parameters (forward in jit, interpreter and define-by-run; gradients against jax.grad),
and Module as a pytree: leaves, names, scopes (per thread), explicit static fields,
checkpoints, immutability, init."""

import math
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax
from op_matrix import MODES, run_mode, modes_taking_turns, rotating_modes

import tracegraph as tg
from tracegraph.nn._module import _scope

try:  # Flax is an optional extra (in .[test]): the comparisons with it skip without it
    import flax.linen as fnn
except ImportError:
    fnn = None
needs_flax = pytest.mark.skipif(fnn is None, reason="needs flax (pip install -e '.[test]')")

nn = tg.nn
F = tg.nn.functional
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(dtype)


def keys(n, seed=0):
    return list(jax.random.split(jax.random.PRNGKey(seed), n))


def assert_close(got, want, rtol=2e-5, atol=2e-5):
    got_l, treedef = jax.tree_util.tree_flatten(got)
    want_l, want_def = jax.tree_util.tree_flatten(want)
    assert len(got_l) == len(want_l), (treedef, want_def)
    for g, w in zip(got_l, want_l):
        w = jnp.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=atol)


def call(model, *args, **kwargs):
    return model(*args, **kwargs)


def check(mode, model, args, want, rtol=2e-5, atol=2e-5):
    assert_close(run_mode(mode, call, (model, *args)), want, rtol, atol)


def check_grad(mode, loss, model, args, want, rtol=2e-5, atol=2e-5):
    """tg.grad(loss) w.r.t. the model is a model of the same class whose leaves are the
    gradients; ``want`` maps field paths to jax.grad's results."""
    g = run_mode(mode, tg.grad(loss), (model, *args))
    assert type(g) is type(model)
    got = dict(g.named_parameters())
    assert sorted(got) == sorted(want)
    for name in want:
        assert_close(got[name], want[name], rtol, atol)


def nchw_to_nhwc(x):
    return jnp.transpose(x, (0, 2, 3, 1))


def nhwc_to_nchw(x):
    return jnp.transpose(x, (0, 3, 1, 2))


# -- Linear ----------------------------------------------------------------------------------


@needs_flax
@pytest.mark.parametrize("xshape,mode", modes_taking_turns([((5, 7),), ((2, 3, 7),), ((7,),)], ["5x7", "2x3x7", "7"]))
def test_linear_vs_flax_dense(mode, xshape):
    lin = nn.Linear(7, 4, key=tg.random.key(1))
    x = rand(*xshape)
    params = {"params": {"kernel": lin.weight.T, "bias": lin.bias}}
    want = fnn.Dense(4).apply(params, x)
    check(mode, lin, (x,), want)


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_linear_without_bias(mode):
    lin = nn.Linear(6, 3, bias=False, key=tg.random.key(2))
    assert lin.bias is None and len(lin.parameters()) == 1
    x = rand(4, 6)
    want = fnn.Dense(3, use_bias=False).apply({"params": {"kernel": lin.weight.T}}, x)
    check(mode, lin, (x,), want)


def _sq_loss(model, *args):
    out = model(*args)
    out = out[0] if isinstance(out, tuple) else out
    return tg.sum(out * out)


@pytest.mark.parametrize("mode", rotating_modes())
def test_linear_grad_vs_jax(mode):
    lin = nn.Linear(5, 3, key=tg.random.key(3))
    x = rand(4, 5)
    gw, gb = jax.grad(lambda w, b: jnp.sum((x @ w.T + b) ** 2), argnums=(0, 1))(lin.weight, lin.bias)
    check_grad(mode, _sq_loss, lin, (x,), {"weight": gw, "bias": gb})


# -- Conv2d and pooling ----------------------------------------------------------------------

CONVS = {
    # ctor kwargs (ours), flax Conv kwargs
    "plain": ({"kernel_size": 3}, {"kernel_size": (3, 3), "padding": "VALID"}),
    "stride2-same": ({"kernel_size": 3, "stride": 2, "padding": "SAME"},
                     {"kernel_size": (3, 3), "strides": (2, 2), "padding": "SAME"}),
    "pad1-dil2": ({"kernel_size": (3, 2), "padding": 1, "dilation": 2},
                  {"kernel_size": (3, 2), "padding": ((1, 1), (1, 1)), "kernel_dilation": (2, 2)}),
    "groups2-nobias": ({"kernel_size": 1, "groups": 2, "bias": False},
                       {"kernel_size": (1, 1), "padding": "VALID", "feature_group_count": 2, "use_bias": False}),
    "asym-pad": ({"kernel_size": 2, "padding": ((1, 0), (0, 2))},
                 {"kernel_size": (2, 2), "padding": ((1, 0), (0, 2))}),
}


@needs_flax
@pytest.mark.parametrize("case,mode", modes_taking_turns(sorted(CONVS), sorted(CONVS)))
def test_conv2d_vs_flax_conv(mode, case):
    ours, theirs = CONVS[case]
    conv = nn.Conv2d(4, 6, key=tg.random.key(4), **ours)
    x = rand(2, 4, 9, 8)
    params = {"kernel": jnp.transpose(conv.weight, (2, 3, 1, 0))}  # OIHW -> HWIO
    if conv.bias is not None:
        params["bias"] = conv.bias
    want = nhwc_to_nchw(fnn.Conv(6, **theirs).apply({"params": params}, nchw_to_nhwc(x)))
    check(mode, conv, (x,), want, rtol=1e-4, atol=1e-5)


def _conv_ref(x, w, b, stride=(1, 1), padding=((0, 0), (0, 0))):
    y = lax.conv_general_dilated(x, w, stride, padding, dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


@pytest.mark.parametrize("mode", rotating_modes())
def test_conv2d_vs_lax(mode):
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1, key=tg.random.key(5))
    x = rand(2, 3, 7, 7)
    want = _conv_ref(x, conv.weight, conv.bias, (2, 2), ((1, 1), (1, 1)))
    check(mode, conv, (x,), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_conv2d_grad_vs_jax(mode):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, key=tg.random.key(6))
    x = rand(2, 3, 6, 6)

    def ref(w, b):
        y = _conv_ref(x, w, b, (2, 2), ((1, 1), (1, 1)))
        return jnp.sum(y * y)

    gw, gb = jax.grad(ref, argnums=(0, 1))(conv.weight, conv.bias)
    check_grad(mode, _sq_loss, conv, (x,), {"weight": gw, "bias": gb}, rtol=1e-4, atol=1e-4)


@needs_flax
@pytest.mark.parametrize("kind,mode", modes_taking_turns(["max", "avg"], ["max", "avg"]))
def test_pooling_vs_flax(mode, kind):
    x = rand(2, 3, 8, 7)
    if kind == "max":
        layer = nn.MaxPool2d(3, stride=2, padding=1)
        want = fnn.max_pool(nchw_to_nhwc(x), (3, 3), (2, 2), ((1, 1), (1, 1)))
    else:
        layer = nn.AvgPool2d(2)
        want = fnn.avg_pool(nchw_to_nhwc(x), (2, 2), (2, 2), "VALID")
    check(mode, layer, (x,), nhwc_to_nchw(want))
    assert layer.parameters() == []


@pytest.mark.parametrize("dims,mode", modes_taking_turns([((1, -1),), ((0, -1),), ((1, 2),), ((2, 3),)], ["1,-1", "0,-1", "1,2", "2,3"]))
def test_flatten(mode, dims):
    x = rand(2, 3, 4, 5)
    s, e = dims
    e = e % 4
    want = x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
    check(mode, nn.Flatten(*dims), (x,), want)


def test_flatten_bad_dims():
    with pytest.raises(tg.ShapeError, match="Flatten"):
        nn.Flatten(2, 1)(rand(2, 3, 4))


# -- Embedding, LayerNorm, activations, Dropout ---------------------------------------------


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_embedding_vs_take(mode):
    emb = nn.Embedding(11, 6, key=tg.random.key(7))
    ids = RNG.integers(0, 11, size=(3, 5)).astype(np.int32)
    check(mode, emb, (ids,), jnp.take(emb.weight, ids, axis=0))
    want = fnn.Embed(11, 6).apply({"params": {"embedding": emb.weight}}, ids)
    check(mode, emb, (ids,), want)


@needs_flax
@pytest.mark.parametrize("shape,mode", modes_taking_turns([((6,),), ((4, 6),)], ["6", "4x6"]))
def test_layer_norm_vs_flax(mode, shape):
    ln = nn.LayerNorm(shape, eps=1e-5)
    ln = ln.replace(weight=jnp.asarray(rand(*shape)), bias=jnp.asarray(rand(*shape)))  # not 1/0
    x = rand(3, 4, 6, scale=3.0) + 2.0
    axes = tuple(range(-len(shape), 0))
    ref = fnn.LayerNorm(epsilon=1e-5, reduction_axes=axes, feature_axes=axes)
    want = ref.apply({"params": {"scale": ln.weight, "bias": ln.bias}}, x)
    check(mode, ln, (x,), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", rotating_modes())
def test_layer_norm_without_affine(mode):
    ln = nn.LayerNorm(6, elementwise_affine=False)
    assert ln.parameters() == []
    x = rand(5, 6)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    check(mode, ln, (x,), want, rtol=1e-4, atol=1e-5)


def test_layer_norm_bad_shape():
    with pytest.raises(tg.ShapeError, match="LayerNorm"):
        nn.LayerNorm(5)(rand(2, 6))


ACTS = {
    "relu": (nn.ReLU(), jax.nn.relu),
    "gelu": (nn.GELU(), jax.nn.gelu),
    "gelu-erf": (nn.GELU(approximate=False), lambda x: jax.nn.gelu(x, approximate=False)),
    "tanh": (nn.Tanh(), jnp.tanh),
    "sigmoid": (nn.Sigmoid(), jax.nn.sigmoid),
    "silu": (nn.SiLU(), jax.nn.silu),
    "softmax": (nn.Softmax(), jax.nn.softmax),
    "log_softmax": (nn.LogSoftmax(axis=0), lambda x: jax.nn.log_softmax(x, axis=0)),
    "identity": (nn.Identity(), lambda x: x),
}


@pytest.mark.parametrize("name,mode", modes_taking_turns(sorted(ACTS), sorted(ACTS)))
def test_activation_modules(mode, name):
    layer, ref = ACTS[name]
    x = rand(3, 5)
    check(mode, layer, (x,), ref(x))


@pytest.mark.parametrize("mode", rotating_modes())
def test_dropout_train_and_eval(mode):
    drop = nn.Dropout(0.3)
    x = rand(4, 50)
    k = tg.random.key(8)
    got = run_mode(mode, lambda m, x, k: m(x, key=k), (drop, x, k))
    want = F.dropout(x, k, rate=0.3)
    assert_close(got, want, 0, 0)
    kept = np.asarray(got) != 0
    assert 0.5 < kept.mean() < 0.9
    np.testing.assert_allclose(np.asarray(got)[kept], (x / 0.7)[kept], rtol=1e-6)
    # eval: identity, no key needed (a flag per call, or every flag off, in place)
    assert_close(run_mode(mode, lambda m, x: m(x, train=False), (drop, x)), x, 0, 0)
    assert_close(run_mode(mode, call, (drop.eval(), x)), x, 0, 0)
    assert drop.training is False
    assert drop.train() is drop and drop.training is True


def test_dropout_needs_key_in_training():
    with pytest.raises(tg.TracingError, match="key"):
        tg.jit(call)(nn.Dropout(0.5), rand(3))
    with pytest.raises(ValueError):
        nn.Dropout(1.0)


# -- LSTM and GRU ----------------------------------------------------------------------------


def lstm_ref(w_ih, w_hh, b, xs, h0, c0):
    """A hand-written LSTM with PyTorch's gate layout (i, f, g, o)."""

    def step(carry, x):
        h, c = carry
        gates = x @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (h, c), ys = lax.scan(step, (h0, c0), xs)
    return ys, (h, c)


def gru_ref(w_ih, w_hh, b_ih, b_hh, xs, h0):
    """A hand-written GRU with PyTorch's gate layout (r, z, n)."""

    def step(h, x):
        xr, xz, xn = jnp.split(x @ w_ih.T + b_ih, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ w_hh.T + b_hh, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return h, h

    h, ys = lax.scan(step, h0, xs)
    return ys, h


def lstm_params(lstm):
    """A one-layer `LSTM`'s (w_ih, w_hh, b) for `lstm_ref` (its two biases summed)."""
    return lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0


def layer_states(ys, states):
    """`lstm_ref`/`gru_ref` final states with PyTorch's leading (layers * directions) axis."""
    return ys, jax.tree_util.tree_map(lambda s: s[None], states)


@pytest.mark.parametrize("mode", rotating_modes())
def test_lstm_vs_scan_reference(mode):
    lstm = nn.LSTM(3, 5, key=tg.random.key(9))
    xs = rand(6, 2, 3)
    z = jnp.zeros((2, 5))
    check(mode, lstm, (xs,), layer_states(*lstm_ref(*lstm_params(lstm), xs, z, z)))


@pytest.mark.parametrize("mode", rotating_modes())
def test_lstm_batch_first_with_state(mode):
    lstm = nn.LSTM(3, 4, batch_first=True, key=tg.random.key(10))
    x = rand(2, 5, 3)
    h0, c0 = rand(2, 4), rand(2, 4)
    ys, (h, c) = lstm_ref(*lstm_params(lstm), x.transpose(1, 0, 2), h0, c0)
    want = (jnp.transpose(ys, (1, 0, 2)), (h[None], c[None]))
    check(mode, lstm, (x, (h0[None], c0[None])), want)


@pytest.mark.parametrize("mode", rotating_modes())
def test_lstm_unbatched_and_without_bias(mode):
    lstm = nn.LSTM(3, 4, bias=False, key=tg.random.key(11))
    assert lstm.bias is False and lstm.bias_ih_l0 is None and len(lstm.parameters()) == 2
    x = rand(5, 3)
    ys, (h, c) = lstm_ref(lstm.weight_ih_l0, lstm.weight_hh_l0, 0.0, x[:, None],
                          jnp.zeros((1, 4)), jnp.zeros((1, 4)))
    check(mode, lstm, (x,), (ys[:, 0], (h, c)))  # unbatched: states (layers, H)


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_lstm_vs_flax_optimized_lstm_cell(mode):
    """Flax's LSTM cell has the same equations; its params are per gate, (in, out)."""
    lstm = nn.LSTM(3, 4, key=tg.random.key(12))
    x = rand(5, 2, 3)
    w_ih, w_hh, b = lstm_params(lstm)
    wi, wh, bs = jnp.split(w_ih, 4), jnp.split(w_hh, 4), jnp.split(b, 4)
    params = {}
    for gate, i in zip("ifgo", range(4)):
        params[f"i{gate}"] = {"kernel": wi[i].T}
        params[f"h{gate}"] = {"kernel": wh[i].T, "bias": bs[i]}
    cell = fnn.LSTMCell(4)
    carry = (jnp.zeros((2, 4)), jnp.zeros((2, 4)))  # flax carry is (c, h)
    ys = []
    for t in range(5):
        carry, y = cell.apply({"params": params}, carry, x[t])
        ys.append(y)
    c, h = carry
    check(mode, lstm, (x,), (jnp.stack(ys), (h[None], c[None])))


def test_lstm_bad_input():
    with pytest.raises(tg.ShapeError, match="LSTM"):
        nn.LSTM(3, 4, key=tg.random.key(0))(rand(2, 3, 4, 3))


@pytest.mark.parametrize("mode", rotating_modes())
def test_lstm_grad_vs_jax(mode):
    lstm = nn.LSTM(3, 4, key=tg.random.key(13))
    xs = rand(5, 2, 3)
    z = jnp.zeros((2, 4))

    def ref(w_ih, w_hh, b):
        ys, _ = lstm_ref(w_ih, w_hh, b, xs, z, z)
        return jnp.sum(ys * ys)

    g = jax.grad(ref, argnums=(0, 1, 2))(*lstm_params(lstm))
    want = dict(zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0"], g), bias_hh_l0=g[2])
    check_grad(mode, _sq_loss, lstm, (xs,), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_first,mode", modes_taking_turns([False, True], ["False", "True"]))
def test_gru_vs_scan_reference(mode, batch_first):
    gru = nn.GRU(3, 5, batch_first=batch_first, key=tg.random.key(14))
    x = rand(2, 6, 3) if batch_first else rand(6, 2, 3)
    h0 = rand(2, 5)
    xs = x.transpose(1, 0, 2) if batch_first else x
    ys, h = gru_ref(gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0, xs, h0)
    if batch_first:
        ys = jnp.transpose(ys, (1, 0, 2))
    check(mode, gru, (x, h0[None]), (ys, h[None]))


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_gru_vs_flax_gru_cell(mode):
    """Flax's GRUCell: same equations (its ``n`` gate bias sits on the input side, and
    its hidden r/z projections have no bias), so those biases are zero here."""
    gru = nn.GRU(3, 4, key=tg.random.key(15))
    b_ih = gru.bias_ih_l0.at[:8].set(gru.bias_ih_l0[:8] + gru.bias_hh_l0[:8])
    gru = gru.replace(bias_ih_l0=b_ih, bias_hh_l0=gru.bias_hh_l0.at[:8].set(0.0))
    x = rand(5, 2, 3)
    wi, wh = jnp.split(gru.weight_ih_l0, 3), jnp.split(gru.weight_hh_l0, 3)
    bi, bh = jnp.split(gru.bias_ih_l0, 3), jnp.split(gru.bias_hh_l0, 3)
    params = {
        "ir": {"kernel": wi[0].T, "bias": bi[0]}, "iz": {"kernel": wi[1].T, "bias": bi[1]},
        "in": {"kernel": wi[2].T, "bias": bi[2]},
        "hr": {"kernel": wh[0].T}, "hz": {"kernel": wh[1].T},
        "hn": {"kernel": wh[2].T, "bias": bh[2]},
    }
    cell = fnn.GRUCell(4)
    h = jnp.zeros((2, 4))
    ys = []
    for t in range(5):
        h, y = cell.apply({"params": params}, h, x[t])
        ys.append(y)
    check(mode, gru, (x,), (jnp.stack(ys), h[None]))


# interpreter and define-by-run (about 13 s) with -m slow; test_gru_vs_flax_gru_cell runs all modes
@pytest.mark.parametrize("mode", [m if m == "jit" else pytest.param(m, marks=pytest.mark.slow) for m in MODES])
def test_gru_grad_vs_jax(mode):
    gru = nn.GRU(3, 4, key=tg.random.key(16))
    xs = rand(4, 2, 3)
    h0 = jnp.zeros((2, 4))

    def ref(*p):
        ys, _ = gru_ref(*p, xs, h0)
        return jnp.sum(ys * ys)

    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    g = jax.grad(ref, argnums=(0, 1, 2, 3))(*(getattr(gru, n) for n in names))
    check_grad(mode, _sq_loss, gru, (xs,), dict(zip(names, g)), rtol=1e-4, atol=1e-5)


# -- MultiHeadAttention ----------------------------------------------------------------------


def mha_ref(m, q_in, k_in, v_in, causal=False, mask=None):
    """A hand-written multi-head attention with ``m``'s parameters."""
    h, e = m.num_heads, m.embed_dim
    d = e // h

    def proj(lin, x):
        y = x @ lin.weight.T + lin.bias
        return jnp.swapaxes(y.reshape(y.shape[:-1] + (h, d)), -2, -3)

    q, k, v = proj(m.q_proj, q_in), proj(m.k_proj, k_in), proj(m.v_proj, v_in)
    s = q @ jnp.swapaxes(k, -1, -2) / math.sqrt(d)
    t, n = s.shape[-2:]
    allowed = jnp.ones(s.shape, bool)
    if causal:
        allowed = allowed & jnp.tril(jnp.ones((t, n), bool))
    if mask is not None:
        allowed = allowed & mask
    s = jnp.where(allowed, s, jnp.finfo(s.dtype).min)
    o = jnp.swapaxes(jax.nn.softmax(s, axis=-1) @ v, -2, -3)
    o = o.reshape(o.shape[:-2] + (e,))
    return o @ m.out_proj.weight.T + m.out_proj.bias


def _random_biases(m):
    # zero-initialized biases would hide bias mistakes: give them values
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        m = nn.tree_at(lambda mm, n=name: getattr(mm, n).bias, m, jnp.asarray(rand(m.embed_dim)))
    return m


@pytest.mark.parametrize("causal,mode", modes_taking_turns([False, True], ["False", "True"]))
def test_mha_self_attention_vs_jnp(mode, causal):
    m = _random_biases(nn.MultiHeadAttention(8, 2, causal=causal, key=tg.random.key(17)))
    x = rand(3, 5, 8)
    check(mode, m, (x,), mha_ref(m, x, x, x, causal=causal), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_mha_cross_attention_with_mask_vs_jnp(mode):
    m = _random_biases(nn.MultiHeadAttention(12, 3, key=tg.random.key(18)))
    q, kv, v = rand(2, 4, 12), rand(2, 6, 12), rand(2, 6, 12)
    mask = RNG.random((2, 1, 4, 6)) < 0.7
    mask[0, 0, 1] = False  # a fully masked row: uniform weights, no NaN
    want = mha_ref(m, q, kv, v, mask=mask)
    assert np.isfinite(np.asarray(want)).all()
    got = run_mode(mode, lambda m, q, kv, v, mask: m(q, kv, v, mask=mask), (m, q, kv, v, mask))
    assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_mha_unbatched(mode):
    m = _random_biases(nn.MultiHeadAttention(8, 4, causal=True, key=tg.random.key(19)))
    x = rand(5, 8)
    check(mode, m, (x,), mha_ref(m, x, x, x, causal=True), rtol=1e-4, atol=1e-5)


@needs_flax
@pytest.mark.parametrize("causal", [False, True])
def test_mha_vs_flax(causal):
    m = _random_biases(nn.MultiHeadAttention(8, 2, causal=causal, key=tg.random.key(20)))
    h, d, e = 2, 4, 8

    def qkv(lin):
        return {"kernel": lin.weight.T.reshape(e, h, d), "bias": lin.bias.reshape(h, d)}

    params = {"query": qkv(m.q_proj), "key": qkv(m.k_proj), "value": qkv(m.v_proj),
              "out": {"kernel": m.out_proj.weight.T.reshape(h, d, e), "bias": m.out_proj.bias}}
    x = rand(2, 5, 8)
    mask = fnn.make_causal_mask(jnp.ones((2, 5))) if causal else None
    want = fnn.MultiHeadDotProductAttention(num_heads=h).apply({"params": params}, x, x, mask=mask)
    assert_close(tg.jit(call)(m, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_mha_dropout(mode):
    m = nn.MultiHeadAttention(8, 2, dropout=0.5, key=tg.random.key(21))
    x = rand(2, 4, 8)
    k = tg.random.key(22)
    eval_out = mha_ref(m, x, x, x)
    assert_close(run_mode(mode, call, (m.eval(), x)), eval_out, rtol=1e-4, atol=1e-5)
    m.train()
    a = run_mode(mode, lambda m, x, k: m(x, key=k), (m, x, k))
    b = run_mode(mode, lambda m, x, k: m(x, key=k), (m, x, k))
    assert_close(a, b, 0, 0)  # deterministic given the key
    assert not np.allclose(np.asarray(a), np.asarray(eval_out), atol=1e-3)


@pytest.mark.parametrize("causal,mode", modes_taking_turns([False, True], ["False", "True"]))
def test_mha_grad_vs_jax(mode, causal):
    m = _random_biases(nn.MultiHeadAttention(8, 2, causal=causal, key=tg.random.key(23)))
    x = rand(2, 4, 8)

    def ref(model):
        y = mha_ref(model, x, x, x, causal=causal)
        return jnp.sum(y * y)

    want = dict(jax.grad(ref)(m).named_parameters())
    assert len(want) == 8
    check_grad(mode, _sq_loss, m, (x,), want, rtol=1e-4, atol=1e-4)


def test_mha_errors():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiHeadAttention(10, 3, key=tg.random.key(0))
    m = nn.MultiHeadAttention(8, 2, key=tg.random.key(0))
    with pytest.raises(tg.ShapeError, match="query"):
        m(rand(2, 3, 6))


# -- Sequential -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", rotating_modes())
def test_sequential_with_functions(mode):
    k1, k2 = keys(2)
    seq = nn.Sequential([nn.Linear(4, 8, key=k1), tg.relu, lambda x: x * 2.0, nn.Linear(8, 3, key=k2)])
    x = rand(5, 4)
    l1, l2 = seq[0], seq[3]
    want = (jax.nn.relu(x @ l1.weight.T + l1.bias) * 2.0) @ l2.weight.T + l2.bias
    check(mode, seq, (x,), want)
    assert len(seq) == 4 and [n for n, _ in seq.named_parameters()] == [
        "0.weight", "0.bias", "3.weight", "3.bias"]


@pytest.mark.parametrize("mode", rotating_modes())
def test_sequential_passes_keys_and_train(mode):
    (k1,) = keys(1)
    seq = nn.Sequential([nn.Linear(4, 30, key=k1), nn.Dropout(0.5), tg.relu, nn.Dropout(0.5)])
    x = rand(3, 4)
    k = tg.random.key(5)
    a = run_mode(mode, lambda m, x, k: m(x, key=k), (seq, x, k))
    ks = tg.random.split(k, 4)
    h = F.dropout(seq[0](x), ks[1], rate=0.5)
    want = F.dropout(jax.nn.relu(h), ks[3], rate=0.5)
    assert_close(a, want, 1e-6, 1e-6)
    plain = jax.nn.relu(seq[0](x))
    assert_close(run_mode(mode, lambda m, x: m(x, train=False), (seq, x)), plain, 1e-6, 1e-6)
    assert_close(run_mode(mode, call, (seq.eval(), x)), plain, 1e-6, 1e-6)
    seq.train()


def test_sequential_slice_renames():
    k1, k2 = keys(2)
    seq = nn.Sequential([tg.relu, nn.Linear(2, 2, key=k1), nn.Linear(2, 2, key=k2)])
    assert seq[1].scope_name == "1" and seq[2].scope_name == "2"
    tail = seq[1:]
    assert [m.scope_name for m in tail] == ["0", "1"]


# -- Module as a pytree ---------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, dim, *, key):
        k1, k2 = tg.random.split(key)
        self.attn = nn.MultiHeadAttention(dim, 2, causal=True, key=k1)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential([nn.Linear(dim, 2 * dim, key=k2), tg.gelu])
        self.dim = dim

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return self.mlp(x)[..., : self.dim]


class Encoder(nn.Module):
    def __init__(self, vocab, dim, depth, *, key):
        ks = tg.random.split(key, depth + 2)
        self.embed = nn.Embedding(vocab, dim, key=ks[0])
        self.encoder = [Block(dim, key=k) for k in ks[2:]]
        self.lstm = nn.LSTM(dim, dim, batch_first=True, key=ks[1])
        self.act = tg.tanh  # a function: static

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.encoder:
            x = block(x)
        y, _ = self.lstm(x)
        return self.act(y)


def encoder_ref(m, ids):
    """`Encoder`'s forward in jax.numpy, reading the parameters of ``m``."""
    x = jnp.take(m.embed.weight, ids, axis=0)
    for b in m.encoder:
        mu = x.mean(-1, keepdims=True)
        xn = (x - mu) / jnp.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + b.norm.eps)
        xn = xn * b.norm.weight + b.norm.bias
        x = x + mha_ref(b.attn, xn, xn, xn, causal=True)
        lin = b.mlp[0]
        x = jax.nn.gelu(x @ lin.weight.T + lin.bias)[..., : b.dim]
    z = jnp.zeros((x.shape[0], m.lstm.hidden_size))
    ys, _ = lstm_ref(*lstm_params(m.lstm), jnp.swapaxes(x, 0, 1), z, z)
    return jnp.tanh(jnp.swapaxes(ys, 0, 1))


@pytest.fixture(scope="module")
def encoder():
    return Encoder(13, 8, 2, key=tg.random.key(0))


IDS = np.arange(10, dtype=np.int32).reshape(2, 5) % 13


def test_leaves_are_the_parameters(encoder):
    leaves = jax.tree_util.tree_leaves(encoder)
    assert all(isinstance(x, jax.Array) for x in leaves)
    assert [id(x) for x in leaves] == [id(x) for x in encoder.parameters()]
    names = [n for n, _ in encoder.named_parameters()]
    assert names[0] == "embed.weight"
    assert "encoder.0.attn.q_proj.weight" in names and "encoder.1.mlp.0.bias" in names
    assert names[-4:] == ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                          "lstm.bias_hh_l0"]
    assert encoder.num_parameters() == sum(x.size for x in leaves)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(encoder)[0]]
    assert paths[0] == ".embed.weight" and ".encoder[0].attn.q_proj.weight" in paths


def test_static_fields_are_aux_data(encoder):
    treedef = jax.tree_util.tree_structure(encoder)
    assert treedef == jax.tree_util.tree_structure(encoder)  # hashable, compares by value
    hash(treedef)
    other = Encoder(13, 8, 2, key=tg.random.key(1))
    assert jax.tree_util.tree_structure(other) == treedef  # same hyper-parameters
    changed = encoder.replace(act=tg.relu)
    assert jax.tree_util.tree_structure(changed) != treedef


def test_tree_map_and_unflatten(encoder):
    doubled = jax.tree_util.tree_map(lambda x: x * 2, encoder)
    assert type(doubled) is Encoder and doubled.act is tg.tanh
    assert doubled.encoder[1].scope_name == "encoder.1" and doubled.encoder[1].attn.scope_name == "attn"
    np.testing.assert_allclose(doubled.embed.weight, encoder.embed.weight * 2)
    leaves, treedef = jax.tree_util.tree_flatten(encoder)
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert jax.tree_util.tree_structure(again) == treedef
    with pytest.raises(AttributeError):
        again.embed = None
    # non-array leaves stay leaves (the classification is fixed at __init__)
    ones = jax.tree_util.tree_map(lambda x: 1.0, encoder)
    assert jax.tree_util.tree_structure(ones) == treedef


def test_jit_names_inputs_and_scopes(encoder):
    f = tg.jit(lambda model, ids: model(ids))
    g = f.trace(encoder, IDS, optimized=False)
    names = [v.name for v in g.inputs]
    assert names[0] == "model.embed.weight"
    assert "model.encoder.0.attn.q_proj.weight" in names and names[-1] == "ids"
    scopes = {n.scope for n in g.nodes}
    assert {"embed", "encoder.0.attn", "encoder.0.attn.q_proj", "encoder.1.norm",
            "encoder.1.mlp.0", "encoder.1.mlp.1", "encoder.0", "lstm"} <= scopes
    text = str(g)
    softmax = next(line for line in text.splitlines() if "softmax(" in line)
    assert softmax.rstrip().endswith("encoder.0.attn")
    # nodes inside the LSTM's scan body keep the layer's scope
    scan = next(n for n in g.nodes if n.op == "scan")
    assert scan.scope == "lstm" and {n.scope for n in scan.attrs["body"].nodes} == {"lstm"}


def test_scopes_in_eager_and_tg_trace(encoder):
    run = tg.eager(lambda model, ids: model(ids))
    out = run(encoder, IDS)
    assert_close(out, tg.jit(lambda model, ids: model(ids))(encoder, IDS), 1e-5, 1e-5)
    scopes = {n.scope for n in run.last_graph.nodes}
    assert "encoder.1.attn" in scopes and "lstm" in scopes
    g = tg.trace(lambda m, ids: m(ids), encoder, IDS)
    assert any(n.scope == "encoder.0.attn" and n.op == "softmax" for n in g.nodes)


def test_root_module_has_no_scope():
    lin = nn.Linear(3, 2, key=tg.random.key(0))
    assert lin.scope_name is None
    g = tg.trace(call, lin, rand(2, 3))
    assert {n.scope for n in g.nodes} == {""}
    with tg.scope("outer"):
        pass  # no builder: a no-op
    g = tg.trace(lambda m, x: _in_scope("head", m, x), lin, rand(2, 3))
    assert {n.scope for n in g.nodes} == {"head"}


def _in_scope(name, m, x):
    with tg.scope(name):
        return m(x)


def test_jit_retrace_policy(encoder):
    f = tg.jit(lambda model, ids: model(ids), on_retrace="error")
    f(encoder, IDS)
    f(jax.tree_util.tree_map(lambda x: x + 1, encoder), IDS)  # new values: no retrace
    assert f.trace_count == 1
    with pytest.raises(tg.TracingError, match="argument structure"):
        f(encoder.replace(act=tg.relu), IDS)


def test_checkpoint_round_trip(tmp_path, encoder):
    path = tmp_path / "model.ckpt"
    tg.checkpoint.save(path, encoder, step=3)
    fresh = Encoder(13, 8, 2, key=tg.random.key(42))
    loaded = tg.checkpoint.load(path, like=fresh)
    assert type(loaded) is Encoder
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(encoder)
    for (n1, a), (n2, b) in zip(loaded.named_parameters(), encoder.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_close(tg.jit(call)(loaded, IDS), tg.jit(call)(encoder, IDS), 0, 0)
    info = tg.checkpoint.info(path)
    assert any("encoder" in str(leaf[0]) and "q_proj" in str(leaf[0]) for leaf in info.leaves)


def test_optax_update_on_a_module():
    lin = nn.Linear(3, 2, key=tg.random.key(0))
    x, y = rand(8, 3), rand(8, 2)
    opt = optax.adam(1e-2)
    state = opt.init(lin)

    def loss(m):
        return jnp.mean((x @ m.weight.T + m.bias - y) ** 2)

    grads = jax.grad(loss)(lin)
    assert type(grads) is nn.Linear
    updates, state = opt.update(grads, state, lin)
    new = optax.apply_updates(lin, updates)
    assert type(new) is nn.Linear and loss(new) < loss(lin)


# -- init, determinism, immutability --------------------------------------------------------


def test_init_is_deterministic_given_the_key():
    a = Encoder(13, 8, 2, key=tg.random.key(7))
    b = Encoder(13, 8, 2, key=jax.random.PRNGKey(7))
    c = Encoder(13, 8, 2, key=tg.random.key(8))
    for x, y in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.embed.weight, c.embed.weight)
    # sub-layers get different keys
    assert not np.array_equal(a.encoder[0].attn.q_proj.weight, a.encoder[1].attn.q_proj.weight)
    assert not np.array_equal(a.encoder[0].attn.q_proj.weight, a.encoder[0].attn.k_proj.weight)
    typed = nn.Linear(3, 2, key=jax.random.key(7))
    np.testing.assert_array_equal(typed.weight, nn.Linear(3, 2, key=tg.random.key(7)).weight)


def test_default_inits_follow_pytorch():
    lin = nn.Linear(400, 300, key=tg.random.key(0))
    bound = 1 / math.sqrt(400)
    assert np.abs(lin.weight).max() <= bound and np.abs(lin.weight).max() > 0.95 * bound
    assert np.abs(lin.bias).max() <= bound and lin.weight.dtype == jnp.float32
    conv = nn.Conv2d(8, 16, 3, key=tg.random.key(0), dtype="bf16")
    assert conv.weight.dtype == jnp.bfloat16 and conv.weight.shape == (16, 8, 3, 3)
    assert float(jnp.abs(conv.weight.astype(jnp.float32)).max()) <= 1 / math.sqrt(72) * 1.01
    emb = nn.Embedding(1000, 64, key=tg.random.key(0))
    assert abs(float(emb.weight.std()) - 1.0) < 0.05
    lstm = nn.LSTM(10, 25, key=tg.random.key(0))
    assert float(jnp.abs(lstm.weight_hh_l0).max()) <= 0.2
    mha = nn.MultiHeadAttention(16, 4, key=tg.random.key(0))
    assert float(jnp.abs(mha.q_proj.bias).max()) == 0.0
    assert float(jnp.abs(mha.q_proj.weight).max()) <= math.sqrt(6 / 32)


def test_init_functions_match_jax():
    k = jax.random.PRNGKey(3)
    shape = (20, 30, 3, 3)  # OIHW: fan_in 30*9, fan_out 20*9
    for ours, theirs in [
        (nn.init.glorot_uniform(), jax.nn.initializers.glorot_uniform(in_axis=1, out_axis=0)),
        (nn.init.he_normal(), jax.nn.initializers.he_normal(in_axis=1, out_axis=0)),
        (nn.init.lecun_normal(), jax.nn.initializers.lecun_normal(in_axis=1, out_axis=0)),
    ]:
        np.testing.assert_array_equal(ours(k, shape), theirs(k, shape))
    assert nn.init.fan_in_out(shape) == (270, 180)
    w = nn.init.torch_default()(k, (50, 400))
    assert float(jnp.abs(w).max()) <= 1 / 20
    w = nn.init.kaiming_normal()(k, (200, 400))
    assert abs(float(w.std()) - math.sqrt(2 / 400)) < 0.005
    u = nn.init.uniform(-2.0, -1.0)(k, (1000,))
    assert -2.0 <= float(u.min()) and float(u.max()) < -1.0
    lin = nn.Linear(4, 3, key=k, weight_init=nn.init.zeros, bias_init=nn.init.constant(0.5))
    assert float(jnp.abs(lin.weight).sum()) == 0 and np.all(np.asarray(lin.bias) == 0.5)


def test_key_errors():
    # no key: PyTorch style, from the global stream; the parameters are leaf tensors
    tg.manual_seed(3)
    a = nn.Linear(3, 2)
    tg.manual_seed(3)
    b = nn.Linear(3, 2, key=None)
    assert isinstance(a.weight, tg.TapeTensor) and a.weight.requires_grad
    np.testing.assert_array_equal(a.weight, b.weight)
    with pytest.raises(TypeError, match="uint32"):
        nn.Linear(3, 2, key=np.zeros(3, np.uint32))
    with pytest.raises(tg.TracingError, match="outside"):
        tg.jit(lambda k: nn.Linear(3, 2, key=k).weight)(tg.random.key(0))
    # define-by-run keys are concrete: building a module there works
    w = tg.eager(lambda k: nn.Linear(3, 2, key=k).weight)(tg.random.key(0))
    np.testing.assert_array_equal(w, nn.Linear(3, 2, key=tg.random.key(0)).weight)
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2, key=tg.random.key(0))


def test_immutable_replace_and_tree_at():
    lin = nn.Linear(3, 2, key=tg.random.key(0))
    with pytest.raises(AttributeError, match="immutable"):
        lin.weight = jnp.zeros((2, 3))
    with pytest.raises(AttributeError, match="immutable"):
        del lin.bias
    nobias = lin.replace(bias=None)
    assert nobias.bias is None and lin.bias is not None and len(nobias.parameters()) == 1
    with pytest.raises(TypeError, match="no field"):
        lin.replace(colour=1)
    seq = nn.Sequential([lin, tg.relu, nn.Linear(2, 2, key=tg.random.key(1))])
    new = nn.tree_at(lambda s: s[2].bias, seq, jnp.full((2,), 7.0))
    np.testing.assert_array_equal(new[2].bias, [7.0, 7.0])
    assert new[0] is seq[0] and seq[2].bias is not new[2].bias
    swapped = nn.tree_at(lambda s: s[0], seq, nn.Linear(3, 2, bias=False, key=tg.random.key(2)))
    assert swapped[0].bias is None and swapped[0].scope_name == "0"
    with pytest.raises(ValueError, match="tree_at"):
        nn.tree_at(lambda s: jnp.zeros(1), seq, 1)


class Affine(nn.Module):
    """Dataclass style: annotated fields, generated __init__, user-written __call__."""

    weight: jax.Array
    bias: jax.Array
    activation: object = tg.tanh

    def __call__(self, x):
        return self.activation(x @ self.weight + self.bias)


class Pair(nn.Module):
    def __init__(self):
        self.left = Affine(jnp.ones((3, 2)), jnp.zeros(2))
        self.heads = {"a": Affine(jnp.ones((2, 2)), jnp.ones(2), tg.relu)}

    def forward(self, x):
        return self.heads["a"](self.left(x))


def test_dataclass_style_modules():
    m = Affine(jnp.ones((3, 2)), jnp.zeros(2))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.activation is tg.tanh
    with pytest.raises(TypeError):
        Affine(jnp.ones((3, 2)))
    p = Pair()
    assert [n for n, _ in p.named_parameters()] == ["left.weight", "left.bias", "heads.a.weight", "heads.a.bias"]
    x = rand(4, 3)
    want = jax.nn.relu(np.tanh(x @ np.ones((3, 2))) @ np.ones((2, 2)) + 1)
    for mode in MODES:
        assert_close(run_mode(mode, call, (p, x)), want, 1e-5, 1e-5)
    g = tg.trace(call, p, x)
    assert {n.scope for n in g.nodes} == {"left", "heads.a"}


class Forgetful(nn.Module):
    weight: jax.Array

    def __init__(self):
        pass


def test_missing_field_is_an_error():
    with pytest.raises(TypeError, match="weight"):
        Forgetful()


# -- tg.nn.field: explicit static / child fields ----------------------------------------------


class Scaled(nn.Module):
    """A static array (a constant of the graph) and a float forced to be a parameter."""

    weight: jax.Array
    table: jax.Array = nn.field(static=True)
    scale: float = nn.field(static=False, default=2.0)

    def forward(self, x):
        return (x @ self.weight) * self.table * self.scale


def scaled():
    return Scaled(jnp.ones((3, 2)), np.arange(1, 3, dtype=np.float32))


def test_field_static_overrides_flatten_and_unflatten():
    m = scaled()
    leaves, treedef = jax.tree_util.tree_flatten(m)
    assert [n for n, _ in m.named_parameters()] == ["weight", "scale"]
    assert leaves[1] == 2.0 and len(leaves) == 2  # the float is a leaf, the array is not
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(again) is Scaled and again.table is m.table and again.scale == 2.0
    assert jax.tree_util.tree_structure(again) == treedef
    # the classification survives tree_map and replace of other fields
    halves = jax.tree_util.tree_map(lambda x: x / 2, m)
    assert halves.table is m.table and halves.scale == 1.0
    assert jax.tree_util.tree_structure(m.replace(scale=5.0)) == treedef
    # a static array compares by identity: another array is another tree definition
    other = m.replace(table=np.arange(1, 3, dtype=np.float32))
    assert jax.tree_util.tree_structure(other) != treedef
    assert "table=f32[2]" in repr(m) and "scale=2.0" in repr(m)


def test_field_static_array_is_a_graph_constant_and_retraces():
    m = scaled()
    x = rand(4, 3)
    f = tg.jit(call)
    want = (x @ np.ones((3, 2))) * np.array([1.0, 2.0]) * 2.0
    assert_close(f(m, x), want.astype(np.float32))
    g = f.trace(m, x, optimized=False)
    assert [v.name for v in g.inputs] == ["model.weight", "model.scale", "args1"]
    assert any(np.array_equal(np.asarray(c.data), [1.0, 2.0]) for c in g.constants)
    assert g.inputs[1].type.weak  # a Python float: a weakly typed scalar input
    f(m.replace(scale=3.0), x)  # a parameter changed: no retrace
    assert f.trace_count == 1
    new = m.replace(table=np.full(2, 10.0, np.float32))  # a static field changed: retrace
    assert_close(f(new, x), (x @ np.ones((3, 2))) * 20.0)
    assert f.trace_count == 2
    f(new, x)
    assert f.trace_count == 2
    grad = tg.grad(lambda m, x: (m(x) ** 2).sum())(m, x)
    assert type(grad) is Scaled and grad.table is m.table
    np.testing.assert_allclose(grad.scale, 2 * (np.asarray(want) ** 2).sum() / 2.0, rtol=1e-5)


class Buffers(nn.Module):
    """`tg.nn.field` in a class that writes its own __init__."""

    weight: jax.Array
    mask: jax.Array = nn.field(static=True)
    history: list = nn.field(default_factory=list)
    eps: float = nn.field(static=False, default=1e-3)

    def __init__(self, n):
        self.weight = jnp.ones(n)
        self.mask = np.tril(np.ones((n, n), np.float32))

    def forward(self, x):
        return x @ (self.mask * self.weight) + self.eps


def test_field_with_a_custom_init():
    m = Buffers(3)
    assert m.history == [] and Buffers(3).history is not m.history  # a fresh default
    assert m.eps == 1e-3 and "mask" not in Buffers.__dict__
    assert [n for n, _ in m.named_parameters()] == ["weight", "eps"]
    g = tg.trace(lambda m, x: m(x), m, rand(2, 3))
    assert [v.name for v in g.inputs] == ["m.weight", "m.eps", "x"]


def test_field_errors():
    with pytest.raises(TypeError, match="annotation"):
        class Unannotated(nn.Module):
            w = nn.field(static=True)

            def __init__(self):
                self.w = 1
    with pytest.raises(TypeError, match="True, False or None"):
        nn.field(static="yes")


# -- module scopes are per thread -----------------------------------------------------------


def test_module_scopes_are_per_thread():
    """Thread B traces a call of a module object while thread A is inside that same
    object's call: both graphs carry the module's scope (with one process-wide stack of
    open module scopes, B took A's open scope for its own and skipped it). The model is
    closed over, not an argument: arguments are unflattened into a new object per trace."""
    a_inside, b_done = threading.Event(), threading.Event()

    class Probe(nn.Module):
        def __init__(self):
            self.w = np.ones(2, np.float32)

        def forward(self, x):
            if threading.current_thread().name == "A":
                a_inside.set()
                assert b_done.wait(10)
            return x * self.w

    class Root(nn.Module):
        def __init__(self):
            self.probe = Probe()

        def forward(self, x):
            return self.probe(x) + 1.0

    model, x = Root(), rand(2)
    graphs = {}

    def run(name):
        if name == "B":
            assert a_inside.wait(10)
        try:
            graphs[name] = tg.trace(lambda x: model(x), x)
        finally:
            if name == "B":
                b_done.set()

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for name in "AB":
        assert [(n.op, n.scope) for n in graphs[name].nodes] == [("mul", "probe"), ("add", "")]
    assert _scope.open_modules() == ()


def test_repr_shows_the_tree(encoder):
    text = repr(encoder)
    assert text.startswith("Encoder(\n")
    assert "Embedding(num_embeddings=13, embedding_dim=8, weight=f32[13,8])" in text
    assert "q_proj=Linear(in_features=8, out_features=8, weight=f32[8,8], bias=f32[8])" in text
    assert "act=tanh" in text
    assert repr(nn.Dropout(0.1)) == "Dropout(rate=0.1, training=True)"


def test_summary(encoder, capsys):
    text = nn.summary(encoder, IDS)
    assert capsys.readouterr().out == ""  # returned, not printed: shown once in a session
    assert repr(text) == str(text) and isinstance(text, str)
    nn.summary(encoder, IDS, print_fn=print)
    assert capsys.readouterr().out == text + "\n"
    lines = text.splitlines()
    assert lines[0].split() == ["module", "type", "nodes", "params"]
    row = {ln.split()[0]: ln.split() for ln in lines[2:-2]}
    assert row["(root)"][-1] == f"{encoder.num_parameters():,}"
    assert row["encoder.0.attn"][1] == "MultiHeadAttention"
    assert int(row["encoder.0.attn.q_proj"][2]) == 3  # transpose, matmul, add
    assert row["lstm"][-1] == f"{sum(x.size for x in encoder.lstm.parameters()):,}"
    line = next(ln for ln in lines if ln.split()[0] == "encoder.0")
    assert line.startswith("  encoder.0 ")  # indented by depth in the module tree
    assert nn.summary(nn.Linear(2, 2, key=tg.random.key(0)), rand(1, 2)).startswith("module")


def test_named_modules_and_children(encoder):
    paths = [p for p, _ in encoder.named_modules()]
    assert paths[:4] == ["", "embed", "encoder.0", "encoder.0.attn"]
    assert "encoder.1.mlp.0" in paths and paths[-1] == "lstm"
    assert [type(m).__name__ for m in encoder.children()] == ["Embedding", "Block", "Block", "LSTM"]
    modules = dict(encoder.named_modules())
    assert modules["encoder.0"].scope_name == "encoder.0"  # a list element: attr.index
    assert modules["encoder.0.attn"].scope_name == "attn"  # relative to its parent
    assert modules["encoder.0.mlp.0"].scope_name == "0"  # Sequential elements: the index


class Named(nn.Module):
    def __init__(self):
        self.name = "fields may use any name"
        self.w = jnp.ones(2)

    def forward(self, x):
        return x * self.w


def test_user_field_called_name():
    m = Named()
    assert m.name == "fields may use any name" and m.parameters()[0].shape == (2,)


def test_train_eval_in_place():
    seq = nn.Sequential([nn.Dropout(0.2), nn.MultiHeadAttention(4, 2, dropout=0.1, key=tg.random.key(0))])
    before = jax.tree_util.tree_structure(seq)
    ev = seq.eval()
    assert ev is seq and not seq.training
    assert seq[0].training is False and seq[1].training is False
    assert jax.tree_util.tree_structure(seq) != before  # the flag is static: jit retraces
    assert seq.train()[1].training is True and seq.training
    assert jax.tree_util.tree_structure(seq) == before


@pytest.mark.slow  # about 30 s; the per-layer gradient tests run by default
def test_model_grad_end_to_end(encoder):
    """tg.grad of a loss through a model of every kind of layer (embedding, attention,
    layer norm, Sequential MLP, LSTM): a model-shaped gradient, the same in jit,
    interpreter and define-by-run, equal to jax.grad of the jax.numpy formulation."""
    labels = (IDS + 1) % 8

    def loss(model, ids):
        return F.cross_entropy(model(ids), labels)

    def ref_loss(model):
        logits = encoder_ref(model, IDS)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = {mode: run_mode(mode, tg.grad(loss), (encoder, IDS)) for mode in MODES}
    g = grads["jit"]
    assert type(g) is Encoder
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(encoder)
    for mode in ("interpret", "eager"):
        assert_close(grads[mode], g, rtol=1e-4, atol=1e-6)
    want = jax.grad(ref_loss)(encoder)  # jax differentiates the Module pytree directly
    assert_close(g, want, rtol=2e-4, atol=2e-6)
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves)
    assert all(float(jnp.abs(x).sum()) > 0 for x in leaves)
    # value_and_grad agrees with the forward pass and the reference
    value, _ = tg.jit(tg.value_and_grad(loss))(encoder, IDS)
    np.testing.assert_allclose(value, ref_loss(encoder), rtol=1e-5)
    assert_close(tg.jit(call)(encoder, IDS), encoder_ref(encoder, IDS), 1e-4, 1e-5)
