"""A model zoo of real JAX model code, written as each library's own examples write it,
converted by tg.from_jax in train mode (dropout on, BatchNorm updating its statistics):
forward and gradients equal JAX's, and five AdamW+clip steps of the whole converted train
step equal jax.jit's, in tg.jit, the interpreter and tg.eager.

Flax linen (a ResNet with train-mode BatchNorm, a Transformer language model, an
encoder-decoder Transformer, an LSTM seq2seq, a bidirectional LSTM classifier, a VAE),
a GCN written with jax.ops.segment_sum as jraph's examples write it (in Haiku), Equinox
(a ViT, a UNet with GroupNorm) and Haiku (hk.nets.MLP with dropout after hk.BatchNorm).
The Flax NNX CNN and the smaller per-family models are in test_from_jax_random.py.

A maker returns ``(value_and_grad, params, batch, state)``. Without state (None),
``value_and_grad(params, batch, key) -> (loss, grads)``; with state (BatchNorm's
statistics), ``value_and_grad(params, state, batch, key) -> ((loss, new_state), grads)``
and the train step carries the new state, as Flax's and Haiku's examples do."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegraph as tg
from op_matrix import EXHAUSTIVE
from test_from_jax_random import (_cases, _optimizer, _xent, assert_trees_equal, check_train_steps,
                                  convert)

RNG = np.random.default_rng(1)
TOL = dict(rtol=2e-5, atol=2e-6)


def _images(n, shape, classes):
    x = RNG.normal(size=(n,) + shape).astype(np.float32)
    return x, RNG.integers(0, classes, n).astype(np.int32)


def _tokens(shape, vocab):
    return RNG.integers(1, vocab, shape).astype(np.int32)


# -- Flax linen --------------------------------------------------------------------------


def _linen_resnet():
    nn = pytest.importorskip("flax.linen")

    class ResNetBlock(nn.Module):  # flax/examples/imagenet/models.py
        filters: int
        strides: tuple = (1, 1)

        @nn.compact
        def __call__(self, x, train):
            norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                                     epsilon=1e-5)
            residual = x
            y = nn.Conv(self.filters, (3, 3), self.strides, use_bias=False)(x)
            y = nn.relu(norm()(y))
            y = nn.Conv(self.filters, (3, 3), use_bias=False)(y)
            y = norm(scale_init=nn.initializers.zeros_init())(y)
            if residual.shape != y.shape:
                residual = nn.Conv(self.filters, (1, 1), self.strides, use_bias=False,
                                   name="conv_proj")(residual)
                residual = norm(name="norm_proj")(residual)
            return nn.relu(residual + y)

    class ResNet(nn.Module):
        stages: tuple = (4, 8)
        num_classes: int = 3

        @nn.compact
        def __call__(self, x, train=True):
            x = nn.Conv(4, (3, 3), use_bias=False, name="conv_init")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn_init")(x)
            x = nn.relu(x)
            for i, filters in enumerate(self.stages):
                x = ResNetBlock(filters, strides=(2, 2) if i > 0 else (1, 1))(x, train)
                x = ResNetBlock(filters)(x, train)
            x = jnp.mean(x, axis=(1, 2))
            return nn.Dense(self.num_classes)(x)

    net, batch = ResNet(), _images(4, (8, 8, 3), 3)
    variables = net.init(jax.random.key(0), batch[0], train=False)

    def value_and_grad(params, batch_stats, batch, key):
        x, y = batch

        def loss(params):
            logits, updates = net.apply({"params": params, "batch_stats": batch_stats}, x,
                                        train=True, mutable=["batch_stats"])
            return _xent(logits, y), updates["batch_stats"]

        return jax.value_and_grad(loss, has_aux=True)(params)

    return value_and_grad, variables["params"], batch, variables["batch_stats"]


def _linen_transformer_parts(nn):
    # as flax/examples/wmt and lm1b: no projection biases (the key bias is in the loss's
    # null space: softmax does not see it, so its gradient is rounding noise, which Adam
    # scales up to full steps that no two compilations take alike)
    Attention = functools.partial(nn.MultiHeadDotProductAttention, use_bias=False,
                                  broadcast_dropout=False)

    class MlpBlock(nn.Module):
        rate: float

        @nn.compact
        def __call__(self, x, train):
            h = nn.gelu(nn.Dense(4 * x.shape[-1])(x))
            return nn.Dropout(self.rate, deterministic=not train)(nn.Dense(x.shape[-1])(h))

    class EncoderBlock(nn.Module):  # pre-LayerNorm, as flax/examples/lm1b and wmt
        heads: int = 2
        rate: float = 0.1

        @nn.compact
        def __call__(self, x, mask, train):
            h = nn.LayerNorm()(x)
            h = Attention(self.heads, dropout_rate=self.rate, deterministic=not train)(h, mask=mask)
            x = x + nn.Dropout(self.rate, deterministic=not train)(h)
            return x + MlpBlock(self.rate)(nn.LayerNorm()(x), train)

    class DecoderBlock(nn.Module):
        heads: int = 2
        rate: float = 0.1

        @nn.compact
        def __call__(self, y, encoded, self_mask, cross_mask, train):
            h = nn.LayerNorm()(y)
            h = Attention(self.heads, dropout_rate=self.rate, deterministic=not train)(
                h, mask=self_mask)
            y = y + nn.Dropout(self.rate, deterministic=not train)(h)
            h = Attention(self.heads, dropout_rate=self.rate, deterministic=not train)(
                nn.LayerNorm()(y), encoded, mask=cross_mask)
            y = y + nn.Dropout(self.rate, deterministic=not train)(h)
            return y + MlpBlock(self.rate)(nn.LayerNorm()(y), train)

    class AddPositionEmbs(nn.Module):
        @nn.compact
        def __call__(self, x):
            pe = self.param("pos_embedding", nn.initializers.normal(0.02), (1,) + x.shape[1:])
            return x + pe

    return EncoderBlock, DecoderBlock, AddPositionEmbs


VOCAB, WIDTH = 16, 16


def _linen_transformer_lm():
    nn = pytest.importorskip("flax.linen")
    EncoderBlock, _, AddPositionEmbs = _linen_transformer_parts(nn)

    class TransformerLM(nn.Module):
        layers: int = 2
        rate: float = 0.1

        @nn.compact
        def __call__(self, tokens, train):
            embed = nn.Embed(VOCAB, WIDTH, embedding_init=nn.initializers.normal(1.0))
            x = AddPositionEmbs()(embed(tokens))
            x = nn.Dropout(self.rate, deterministic=not train)(x)
            mask = nn.combine_masks(nn.make_attention_mask(tokens > 0, tokens > 0),
                                    nn.make_causal_mask(tokens))
            for _ in range(self.layers):
                x = EncoderBlock(rate=self.rate)(x, mask, train)
            return embed.attend(nn.LayerNorm()(x))  # tied input and output embeddings

    net = TransformerLM()
    tokens = _tokens((4, 9), VOCAB)
    tokens[0, -2:] = 0  # padding
    params = net.init(jax.random.key(0), tokens[:, :-1], False)

    def loss(params, batch, key):
        logits = net.apply(params, batch[:, :-1], True, rngs={"dropout": key})
        weights = batch[:, 1:] > 0
        xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:])
        return jnp.sum(xent * weights) / jnp.sum(weights)

    return jax.value_and_grad(loss), params, tokens, None


def _linen_encoder_decoder():
    nn = pytest.importorskip("flax.linen")
    EncoderBlock, DecoderBlock, AddPositionEmbs = _linen_transformer_parts(nn)

    class Seq2SeqTransformer(nn.Module):
        rate: float = 0.1

        @nn.compact
        def __call__(self, src, tgt, train):
            embed = nn.Embed(VOCAB, WIDTH)
            drop = nn.Dropout(self.rate, deterministic=not train)
            x = drop(AddPositionEmbs(name="src_pos")(embed(src)))
            x = EncoderBlock(rate=self.rate)(x, nn.make_attention_mask(src > 0, src > 0), train)
            encoded = nn.LayerNorm()(x)
            y = drop(AddPositionEmbs(name="tgt_pos")(embed(tgt)))
            self_mask = nn.combine_masks(nn.make_attention_mask(tgt > 0, tgt > 0),
                                         nn.make_causal_mask(tgt))
            y = DecoderBlock(rate=self.rate)(y, encoded, self_mask,
                                             nn.make_attention_mask(tgt > 0, src > 0), train)
            return nn.Dense(VOCAB)(nn.LayerNorm()(y))

    net = Seq2SeqTransformer()
    src, tgt = _tokens((4, 6), VOCAB), _tokens((4, 8), VOCAB)
    src[1, -2:] = 0
    params = net.init(jax.random.key(0), src, tgt[:, :-1], False)

    return jax.value_and_grad(_teacher_forced_loss(net)), params, (src, tgt), None


def _teacher_forced_loss(net):
    """The next-token loss of a linen encoder-decoder fed the target shifted right."""

    def loss(params, batch, key):
        src, tgt = batch
        logits = net.apply(params, src, tgt[:, :-1], True, rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, tgt[:, 1:]).mean()

    return loss


def _linen_lstm_seq2seq():
    nn = pytest.importorskip("flax.linen")

    class Seq2Seq(nn.Module):  # flax/examples/seq2seq, with teacher forcing
        hidden: int = 16
        rate: float = 0.2

        @nn.compact
        def __call__(self, src, tgt, train):
            embed = nn.Embed(VOCAB, 8)
            drop = nn.Dropout(self.rate, deterministic=not train)
            carry, _ = nn.RNN(nn.LSTMCell(self.hidden), return_carry=True, name="encoder")(
                drop(embed(src)))
            ys = nn.RNN(nn.LSTMCell(self.hidden), name="decoder")(
                drop(embed(tgt)), initial_carry=carry)
            return nn.Dense(VOCAB)(ys)

    net = Seq2Seq()
    src, tgt = _tokens((4, 5), VOCAB), _tokens((4, 6), VOCAB)
    params = net.init(jax.random.key(0), src, tgt[:, :-1], False)

    return jax.value_and_grad(_teacher_forced_loss(net)), params, (src, tgt), None


def _linen_bilstm_classifier():
    nn = pytest.importorskip("flax.linen")

    class TextClassifier(nn.Module):  # flax/examples/sst2: padded sentences, their lengths
        hidden: int = 8
        rate: float = 0.2

        @nn.compact
        def __call__(self, tokens, lengths, train):
            x = nn.Dropout(self.rate, deterministic=not train)(nn.Embed(VOCAB, 8)(tokens))
            lstm = lambda: nn.RNN(nn.LSTMCell(self.hidden))
            x = nn.Bidirectional(lstm(), lstm())(x, seq_lengths=lengths)
            mask = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
            pooled = jnp.sum(x * mask[..., None], axis=1) / lengths[:, None]
            return nn.Dense(2)(nn.Dropout(self.rate, deterministic=not train)(pooled))

    net = TextClassifier()
    lengths = np.array([7, 5, 3, 6], np.int32)
    tokens = _tokens((4, 7), VOCAB) * (np.arange(7)[None] < lengths[:, None])
    labels = RNG.integers(0, 2, 4).astype(np.int32)
    params = net.init(jax.random.key(0), tokens, lengths, False)

    def loss(params, batch, key):
        tokens, lengths, labels = batch
        return _xent(net.apply(params, tokens, lengths, True, rngs={"dropout": key}), labels)

    return jax.value_and_grad(loss), params, (tokens, lengths, labels), None


def _linen_vae():
    nn = pytest.importorskip("flax.linen")

    class VAE(nn.Module):  # flax/examples/vae
        latents: int = 4

        @nn.compact
        def __call__(self, x):
            h = nn.relu(nn.Dense(16, name="enc_fc")(x))
            mean = nn.Dense(self.latents, name="mean")(h)
            logvar = nn.Dense(self.latents, name="logvar")(h)
            std = jnp.exp(0.5 * logvar)
            z = mean + std * jax.random.normal(self.make_rng("noise"), logvar.shape)
            h = nn.relu(nn.Dense(16, name="dec_fc")(z))
            return nn.Dense(x.shape[-1], name="dec_out")(h), mean, logvar

    net = VAE()
    x = (RNG.uniform(size=(8, 12)) > 0.5).astype(np.float32)
    params = net.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x)

    def loss(params, batch, key):
        logits, mean, logvar = net.apply(params, batch, rngs={"noise": key})
        bce = optax.sigmoid_binary_cross_entropy(logits, batch).sum(-1)
        kld = -0.5 * jnp.sum(1 + logvar - mean**2 - jnp.exp(logvar), axis=-1)
        return jnp.mean(bce + kld)

    return jax.value_and_grad(loss), params, x, None


# -- a GCN with segment_sum message passing, as jraph's examples write it (Haiku) --------


def _haiku_gcn():
    hk = pytest.importorskip("haiku")

    def graph_convolution(features, nodes, senders, receivers):
        """jraph.GraphConvolution with symmetric normalization and self edges."""
        n = nodes.shape[0]
        nodes = hk.Linear(features)(nodes)
        senders = jnp.concatenate([senders, jnp.arange(n)])
        receivers = jnp.concatenate([receivers, jnp.arange(n)])
        count = lambda idx: jax.ops.segment_sum(jnp.ones_like(idx), idx, n)
        norm = lambda d: jax.lax.rsqrt(jnp.maximum(d.astype(jnp.float32), 1.0))[:, None]
        nodes = nodes * norm(count(senders))
        nodes = jax.ops.segment_sum(nodes[senders], receivers, n)
        return nodes * norm(count(receivers))

    def forward(nodes, senders, receivers, train):
        h = jax.nn.relu(graph_convolution(16, nodes, senders, receivers))
        if train:
            h = hk.dropout(hk.next_rng_key(), 0.3, h)
        return graph_convolution(3, h, senders, receivers)

    net = hk.transform(forward)
    n, e = 10, 24
    nodes = RNG.normal(size=(n, 5)).astype(np.float32)
    senders, receivers = (RNG.integers(0, n, e).astype(np.int32) for _ in range(2))
    labels = RNG.integers(0, 3, n).astype(np.int32)
    params = net.init(jax.random.PRNGKey(0), nodes, senders, receivers, False)

    def loss(params, batch, key):
        nodes, senders, receivers, labels = batch
        logits = net.apply(params, key, nodes, senders, receivers, True)
        return _xent(logits, labels)

    return jax.value_and_grad(loss), params, (nodes, senders, receivers, labels), None


# -- Equinox -----------------------------------------------------------------------------


def _equinox_vit():
    eqx = pytest.importorskip("equinox")

    class AttentionBlock(eqx.Module):  # equinox's examples/vision_transformer
        layer_norm1: eqx.nn.LayerNorm
        layer_norm2: eqx.nn.LayerNorm
        attention: eqx.nn.MultiheadAttention
        linear1: eqx.nn.Linear
        linear2: eqx.nn.Linear
        dropout1: eqx.nn.Dropout
        dropout2: eqx.nn.Dropout

        def __init__(self, dim, hidden, heads, rate, key):
            k1, k2, k3 = jax.random.split(key, 3)
            self.layer_norm1, self.layer_norm2 = eqx.nn.LayerNorm(dim), eqx.nn.LayerNorm(dim)
            self.attention = eqx.nn.MultiheadAttention(heads, dim, dropout_p=rate, key=k1)
            self.linear1 = eqx.nn.Linear(dim, hidden, key=k2)
            self.linear2 = eqx.nn.Linear(hidden, dim, key=k3)
            self.dropout1, self.dropout2 = eqx.nn.Dropout(rate), eqx.nn.Dropout(rate)

        def __call__(self, x, enable_dropout, key):
            k1, k2, k3 = jax.random.split(key, 3)
            h = jax.vmap(self.layer_norm1)(x)
            x = x + self.attention(h, h, h, inference=not enable_dropout, key=k1)
            h = jax.vmap(self.layer_norm2)(x)
            h = jax.nn.gelu(jax.vmap(self.linear1)(h))
            h = self.dropout1(h, inference=not enable_dropout, key=k2)
            h = jax.vmap(self.linear2)(h)
            return x + self.dropout2(h, inference=not enable_dropout, key=k3)

    class VisionTransformer(eqx.Module):
        patch_embedding: eqx.nn.Conv2d
        cls_token: jax.Array
        positional_embedding: jax.Array
        blocks: list
        norm: eqx.nn.LayerNorm
        head: eqx.nn.Linear
        dropout: eqx.nn.Dropout

        def __init__(self, key, dim=16, patch=4, size=8, channels=3, layers=2, classes=3, rate=0.1):
            keys = jax.random.split(key, layers + 4)
            self.patch_embedding = eqx.nn.Conv2d(channels, dim, patch, stride=patch, key=keys[0])
            self.cls_token = jax.random.normal(keys[1], (1, dim))
            self.positional_embedding = jax.random.normal(keys[2], ((size // patch) ** 2 + 1, dim))
            self.blocks = [AttentionBlock(dim, 2 * dim, 2, rate, k) for k in keys[4:]]
            self.norm = eqx.nn.LayerNorm(dim)
            self.head = eqx.nn.Linear(dim, classes, key=keys[3])
            self.dropout = eqx.nn.Dropout(rate)

        def __call__(self, x, enable_dropout, key):
            keys = jax.random.split(key, len(self.blocks) + 1)
            x = self.patch_embedding(x)  # (dim, h/patch, w/patch)
            x = x.reshape(x.shape[0], -1).T
            x = jnp.concatenate([self.cls_token, x]) + self.positional_embedding
            x = self.dropout(x, inference=not enable_dropout, key=keys[0])
            for block, k in zip(self.blocks, keys[1:]):
                x = block(x, enable_dropout, k)
            return self.head(self.norm(x[0]))

    model = VisionTransformer(jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    batch = _images(4, (3, 8, 8), 3)

    def loss(params, batch, key):
        x, y = batch
        m = eqx.combine(params, static)
        keys = jax.random.split(key, x.shape[0])
        return _xent(jax.vmap(m, in_axes=(0, None, 0))(x, True, keys), y)

    return jax.value_and_grad(loss), params, batch, None


def _equinox_unet():
    eqx = pytest.importorskip("equinox")

    class ConvBlock(eqx.Module):
        conv: eqx.nn.Conv2d
        norm: eqx.nn.GroupNorm

        def __init__(self, cin, cout, key, stride=1):
            self.conv = eqx.nn.Conv2d(cin, cout, 3, stride=stride, padding=1, key=key)
            self.norm = eqx.nn.GroupNorm(2, cout)

        def __call__(self, x):
            return jax.nn.silu(self.norm(self.conv(x)))

    class UNet(eqx.Module):  # the shape of equinox's examples/score_based_diffusion UNet
        inp: ConvBlock
        down: ConvBlock
        mid: ConvBlock
        up: eqx.nn.ConvTranspose2d
        up_norm: eqx.nn.GroupNorm
        merge: ConvBlock
        out: eqx.nn.Conv2d

        def __init__(self, key, channels=1, width=4):
            k = jax.random.split(key, 6)
            self.inp = ConvBlock(channels, width, k[0])
            self.down = ConvBlock(width, 2 * width, k[1], stride=2)
            self.mid = ConvBlock(2 * width, 2 * width, k[2])
            self.up = eqx.nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, key=k[3])
            self.up_norm = eqx.nn.GroupNorm(2, width)
            self.merge = ConvBlock(2 * width, width, k[4])
            self.out = eqx.nn.Conv2d(width, channels, 1, key=k[5])

        def __call__(self, x):
            skip = self.inp(x)
            h = self.mid(self.down(skip))
            h = jax.nn.silu(self.up_norm(self.up(h)))
            return self.out(self.merge(jnp.concatenate([h, skip])))

    model = UNet(jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    x = RNG.normal(size=(4, 1, 8, 8)).astype(np.float32)

    def loss(params, x, key):
        """Denoising: predict the noise added to each image."""
        m = eqx.combine(params, static)
        noise = jax.random.normal(key, x.shape)
        return jnp.mean((jax.vmap(m)(x + 0.5 * noise) - noise) ** 2)

    return jax.value_and_grad(loss), params, x, None


# -- Haiku -------------------------------------------------------------------------------


def _haiku_mlp_batchnorm():
    hk = pytest.importorskip("haiku")

    def forward(x, is_training):
        x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, is_training)
        return hk.nets.MLP([16, 16, 3])(x, dropout_rate=0.2 if is_training else None,
                                         rng=hk.next_rng_key() if is_training else None)

    net = hk.transform_with_state(forward)
    batch = _images(8, (12,), 3)
    params, state = net.init(jax.random.PRNGKey(0), batch[0], True)

    def value_and_grad(params, state, batch, key):
        x, y = batch

        def loss(params):
            logits, state_ = net.apply(params, state, key, x, True)
            return _xent(logits, y), state_

        return jax.value_and_grad(loss, has_aux=True)(params)

    return value_and_grad, params, batch, state


ZOO = {
    "linen-resnet": _linen_resnet,
    "linen-transformer-lm": _linen_transformer_lm,
    "linen-encoder-decoder": _linen_encoder_decoder,
    "linen-lstm-seq2seq": _linen_lstm_seq2seq,
    "linen-bilstm": _linen_bilstm_classifier,
    "linen-vae": _linen_vae,
    "haiku-gcn": _haiku_gcn,
    "equinox-vit": _equinox_vit,
    "equinox-unet": _equinox_unet,
    "haiku-mlp-batchnorm": _haiku_mlp_batchnorm,
}


def _stateful_train_step(value_and_grad, tx):
    """Flax's and Haiku's train step with state: the new statistics are carried on."""

    def step(params, state, opt_state, batch, key):
        (loss, state), grads = value_and_grad(params, state, batch, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    return step


def check_stateful_train_steps(mode, value_and_grad, params, state, batch, steps=5, rtol=2e-5,
                               atol=2e-6):
    """`check_train_steps` for a step that carries state: losses, parameters, state and
    optimizer state equal jax.jit's after ``steps`` steps."""
    tx = _optimizer()
    step = _stateful_train_step(value_and_grad, tx)
    ours = tg.from_jax(step)
    ours = {"jit": tg.jit(ours), "eager": tg.eager(ours)}.get(mode, ours)
    theirs = jax.jit(step)
    carry = (params, state, tx.init(params))
    jcarry = carry
    for i in range(steps):
        key = jax.random.fold_in(jax.random.key(42), i)
        args = carry + (batch, key)
        if mode == "interpret":
            *carry, loss = tg.trace(tg.from_jax(step), *args).interpret(*args)
        else:
            *carry, loss = ours(*args)
        carry = tuple(carry)
        *jcarry, jloss = theirs(*jcarry, batch, key)
        jcarry = tuple(jcarry)
        np.testing.assert_allclose(float(loss), float(jloss), rtol=rtol, atol=atol)
    assert_trees_equal(carry, jcarry, rtol=10 * rtol, atol=10 * atol)


# By default one cheap model; with -m slow only under TRACEGRAPH_EXHAUSTIVE=1: the whole
# train step below (every model, one mode each, in the slow set) computes the same forward
# pass and gradient, and compares the loss and the updated parameters with jax.jit's.
_FORWARD_CASES = [p for p in _cases(sorted(ZOO), {"linen-vae": "eager"}) if not p.marks or EXHAUSTIVE]


@pytest.mark.parametrize("name,mode", _FORWARD_CASES)
def test_zoo_model_forward_and_gradient_equal_jax(name, mode):
    fn, params, batch, state = ZOO[name]()
    args = (params, batch) if state is None else (params, state, batch)
    args += (jax.random.key(3),)
    assert_trees_equal(convert(mode, fn, args), fn(*args), **TOL)


@pytest.mark.parametrize("name,mode", _cases(sorted(ZOO), {"haiku-gcn": "jit",
                                                           "haiku-mlp-batchnorm": "jit"}))
def test_zoo_whole_train_step_matches_jax_jit(name, mode):
    value_and_grad, params, batch, state = ZOO[name]()
    if state is None:
        check_train_steps(mode, value_and_grad, params, batch)
    else:
        check_stateful_train_steps(mode, value_and_grad, params, state, batch)
