"""Layers with PyTorch's semantics and layouts, against PyTorch itself.

Each comparison copies a torch module's weights into the tg module (``load_state_dict`` of
torch's own state dict: the names and layouts are PyTorch's) and compares the forward
pass and the gradients of a scalar loss with respect to the inputs and every weight.
Batch norm is also trained for a few steps in each style (imperative with a stateful
optimizer, tg.jit with `tg.nn.call_with_state`, tg.function / tg.compile, Keras-style
``fit``) with its running statistics compared after each. The comparisons skip without
torch; the error checks run everywhere. Shapes are tiny: the default run's budget."""

import jax
import numpy as np
import pytest

import tracegraph as tg

from conftest import LazyModule, has_module

torch = LazyModule("torch")  # imported by the first test that uses it, not at collection
needs_torch = pytest.mark.skipif(not has_module("torch"), reason="needs torch")

nn = tg.nn
F = tg.nn.functional
TOL = 2e-5


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def numpy_of(t):
    return t.detach().numpy().copy()  # a copy: torch updates its buffers in place


def load_from(module, torch_module, rename=None):
    """Copy ``torch_module``'s state dict (parameters and buffers) into ``module``."""
    state = {k: numpy_of(v) for k, v in torch_module.state_dict().items()}
    module.load_state_dict(rename(state) if rename else state)
    return module


def close(got, want, tol=TOL, what=""):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol, err_msg=what)


def outputs(out):
    return jax.tree_util.tree_leaves(out, is_leaf=lambda v: isinstance(v, (tg.Tensor, torch.Tensor)))


def compare(module, torch_module, inputs, call=None, tol=TOL, rename=None):
    """Forward and gradients of ``sum(out * R)`` (fixed random ``R`` per output) with
    respect to the inputs and every weight, tg against torch. ``call(module, *inputs)``
    calls either module (default: with the inputs; tg's through `tg.nn.call_with_state`,
    as a batch norm in training under tg.grad needs)."""
    load_from(module, torch_module, rename)
    torch_module.zero_grad()
    th_in = [torch.tensor(x, requires_grad=True) for x in inputs]
    th_out = outputs(call(torch_module, *th_in) if call else torch_module(*th_in))
    call = call or (lambda m, *xs: nn.call_with_state(m, *xs)[0])
    weights = [np.random.default_rng(7 + i).normal(size=tuple(o.shape)).astype(np.float32)
               for i, o in enumerate(th_out)]
    sum(torch.sum(o * torch.tensor(w)) for o, w in zip(th_out, weights)).backward()

    def loss(m, *xs):
        outs = outputs(call(m, *xs))
        assert [tuple(o.shape) for o in outs] == [w.shape for w in weights]
        return sum(tg.sum(o * w) for o, w in zip(outs, weights)), outs

    argnums = tuple(range(1 + len(inputs)))  # one compiled graph: the cheapest way here
    (_, outs), (g_module, *g_inputs) = tg.jit(tg.value_and_grad(loss, argnums, has_aux=True))(
        module, *inputs)
    for i, (o, t) in enumerate(zip(outs, th_out)):
        close(o, numpy_of(t), tol, f"output {i}")
    for i, (g, x) in enumerate(zip(g_inputs, th_in)):
        close(g, numpy_of(x.grad), tol, f"gradient of input {i}")
    grads = dict(g_module.named_parameters())
    want = {name: numpy_of(p.grad) for name, p in torch_module.named_parameters()}
    for name, g in (rename(want) if rename else want).items():
        close(grads[name], g, tol, f"gradient of {name}")


# -- convolution and pooling -----------------------------------------------------------------


@needs_torch
@pytest.mark.slow  # a thin wrapper over conv_general, whose 1-d samples run by default
def test_conv1d():
    kw = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    compare(nn.Conv1d(4, 6, 3, key=tg.random.key(0), **kw), torch.nn.Conv1d(4, 6, 3, **kw),
            [rand(2, 4, 9)])


@needs_torch
@pytest.mark.slow  # XLA compiles 3-d convolutions slowly; conv_general's 3-d sample runs by default
def test_conv3d():
    kw = {"stride": (1, 2, 1), "padding": 1}
    compare(nn.Conv3d(2, 3, (2, 3, 2), key=tg.random.key(0), **kw),
            torch.nn.Conv3d(2, 3, (2, 3, 2), **kw), [rand(2, 2, 3, 5, 4)])


@needs_torch
@pytest.mark.parametrize("kw", [
    {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
    pytest.param({"stride": (2, 3), "padding": (0, 2), "output_padding": (1, 0), "dilation": 2},
                 marks=pytest.mark.slow),
])
def test_conv_transpose2d(kw):
    module = nn.ConvTranspose2d(4, 6, 3, key=tg.random.key(0), **kw)
    compare(module, torch.nn.ConvTranspose2d(4, 6, 3, **kw), [rand(2, 4, 4, 3)])
    with pytest.raises(tg.ShapeError, match=r"ConvTranspose2d\(4, 6.*\(N, 4, H, W\)"):
        module(rand(2, 3, 4, 3))


@needs_torch
@pytest.mark.slow
def test_unbatched_convolution():
    compare(nn.ConvTranspose2d(2, 3, 2, stride=2, key=tg.random.key(0)),
            torch.nn.ConvTranspose2d(2, 3, 2, stride=2), [rand(2, 3, 3)])


@needs_torch
@pytest.mark.slow  # a thin wrapper over max_pool2d (op matrix)
def test_max_pool1d():
    compare(nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1), [rand(2, 3, 8)])


@needs_torch
@pytest.mark.parametrize("size", [
    (3, 2),  # overlapping windows of two sizes: averaging matrices
    pytest.param((2, None), marks=pytest.mark.slow),  # one dim kept: avg_pool2d
    pytest.param(1, marks=pytest.mark.slow),  # global
])
def test_adaptive_avg_pool2d(size):
    compare(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), [rand(2, 3, 7, 4)])


# -- normalization ---------------------------------------------------------------------------


@needs_torch
def test_group_norm_and_rms_norm():
    compare(nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), [rand(2, 4, 3, 2)])
    compare(nn.RMSNorm((3, 2)), torch.nn.RMSNorm((3, 2)), [rand(2, 4, 3, 2)])


@needs_torch
@pytest.mark.slow
def test_rms_norm_eps_and_group_norm_without_affine():
    compare(nn.RMSNorm(4, eps=1e-3), torch.nn.RMSNorm(4, eps=1e-3), [rand(3, 4)])
    compare(nn.GroupNorm(3, 3, affine=False), torch.nn.GroupNorm(3, 3, affine=False),
            [rand(2, 3, 4)])


def _state_close(module, torch_module, tol=TOL):
    got = module.state_dict()
    want = torch_module.state_dict()
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        close(got[k], numpy_of(v), tol, k)


@needs_torch
@pytest.mark.parametrize("cls,shape,momentum", [
    ("BatchNorm2d", (2, 3, 2, 3), None),  # momentum None: the cumulative average
    pytest.param("BatchNorm1d", (5, 3), 0.1, marks=pytest.mark.slow),
    pytest.param("BatchNorm1d", (4, 3, 2), 0.3, marks=pytest.mark.slow),
])
def test_batch_norm_train_and_eval(cls, shape, momentum):
    bn, th = getattr(nn, cls)(3, momentum=momentum), getattr(torch.nn, cls)(3, momentum=momentum)
    x = rand(*shape)
    with torch.no_grad():
        th.weight.uniform_(0.5, 1.5), th.bias.uniform_(-0.5, 0.5)
    # training: the batch's statistics (compare's call moves torch's running ones, and
    # tg's in call_with_state's copy); a plain call moves them in place, PyTorch style
    compare(bn, th, [x])
    bn(x)
    _state_close(bn, th)
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    # inference: the running statistics, no gradient into them
    bn.eval(), th.eval()
    compare(bn, th, [x])
    assert not bn.training and bn.train() is bn and bn.training


def _bn_models(seed=0):
    """The same small model in torch and (built PyTorch style: no keys) in tg."""
    torch.manual_seed(seed)
    th = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(),
                             torch.nn.Linear(3, 2))
    tg.manual_seed(seed)
    model = nn.Sequential([nn.Linear(4, 3), nn.BatchNorm1d(3), tg.relu, nn.Linear(3, 2)])
    return load_from(model, th), th


def _torch_steps(th, x, y, steps):
    opt = torch.optim.SGD(th.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(th(torch.tensor(x)), torch.tensor(y).long()).backward()
        opt.step()


W = rand(4, 2, seed=2)  # the imperative test's loss: sum(out * W), cheap to run op by op


X, Y = rand(4, 4, seed=1), np.array([0, 1, 1, 0], np.int32)


@needs_torch
def test_batch_norm_buffers_in_a_pytorch_style_model():
    model, th = _bn_models()
    # the keyless BatchNorm of a model built PyTorch style holds parameter tensors too;
    # its running statistics are buffers, outside the optimizer's parameters
    assert all(isinstance(p, tg.Tensor) and p.requires_grad for p in model.parameters())
    assert len(model.parameters()) == 6 and len(model.buffers()) == 3
    assert sorted(model.state_dict()) == sorted(th.state_dict())
    tg.optim.SGD(model.parameters(), lr=0.1)


@needs_torch
@pytest.mark.slow  # op by op, every op compiled on first use: a few seconds
def test_batch_norm_trains_imperatively_as_pytorch():
    model, th = _bn_models()
    opt, th_opt = tg.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(th.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad(), th_opt.zero_grad()
        (model(tg.tensor(X)) * W).sum().backward()
        (th(torch.tensor(X)) * torch.tensor(W)).sum().backward()
        opt.step(), th_opt.step()
    _state_close(model, th)


@needs_torch
def test_batch_norm_trains_in_tg_jit_with_call_with_state():
    model, th = _bn_models()
    opt = tg.optim.sgd(0.1)

    def loss_fn(m, x, y):
        logits, m = nn.call_with_state(m, x)
        return F.cross_entropy(logits, y), m

    @tg.jit
    def step(m, opt_state, x, y):
        (loss, stepped), grads = tg.value_and_grad(loss_fn, has_aux=True)(m, x, y)
        updates, opt_state = opt.update(grads, opt_state, m)
        return tg.optim.apply_updates(stepped, updates), opt_state, loss

    trained, state = model, opt.init(model)
    for _ in range(2):
        trained, state, _ = step(trained, state, X, Y)
    _torch_steps(th, X, Y, 2)
    _state_close(trained, th)
    assert float(model[1].num_batches_tracked.numpy()) == 0  # the argument is left alone
    # a plain training call on traced values cannot update the statistics: an error
    with pytest.raises(tg.TracingError, match=r"BatchNorm1d\(3\).*call_with_state"):
        tg.jit(lambda m, x: m(x))(model, X)


@needs_torch
@pytest.mark.parametrize("how", ["function", pytest.param("compile", marks=pytest.mark.slow)])
def test_batch_norm_state_in_recorded_functions(how):
    model, th = _bn_models()
    run = getattr(tg, how)(lambda x: model(x))
    for _ in range(2):
        run(X)
        th(torch.tensor(X))
    _state_close(model, th)


@needs_torch
@pytest.mark.slow  # compiles a Keras-style training step (a few seconds)
def test_batch_norm_state_in_keras_fit():
    model, th = _bn_models()
    model.compile(optimizer=tg.optim.sgd(0.1),
                  loss=tg.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    _torch_steps(th, X, Y, 2)
    _state_close(model, th)


# -- recurrent layers ------------------------------------------------------------------------


def _lstm_call(m, x, h, c):
    return m(x, (h, c))


@needs_torch
@pytest.mark.parametrize("cls,kw,batched", [
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}, True),
    pytest.param("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}, True,
                 marks=pytest.mark.slow),  # GRU's step: test_nn_modules, against a reference
    pytest.param("GRU", {}, False, marks=pytest.mark.slow),
    pytest.param("LSTM", {"num_layers": 2}, True, marks=pytest.mark.slow),
    pytest.param("LSTM", {"bidirectional": True, "bias": False}, False, marks=pytest.mark.slow),
    pytest.param("GRU", {"bidirectional": True, "bias": False}, False, marks=pytest.mark.slow),
])
def test_recurrent_layers(cls, kw, batched):
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    x = rand(3, 3) if not batched else rand(2, 3, 3) if kw.get("batch_first") else rand(3, 2, 3)
    h = rand(layers, 2, 4, seed=1) if batched else rand(layers, 4, seed=1)
    c = rand(*h.shape, seed=2)
    module = getattr(nn, cls)(3, 4, key=tg.random.key(0), **kw)
    th = getattr(torch.nn, cls)(3, 4, **kw)
    assert [n for n, _ in module.named_parameters()] == [n for n, _ in th.named_parameters()]
    if cls == "LSTM":
        compare(module, th, [x, h, c], call=_lstm_call)
    else:
        compare(module, th, [x, h])


@needs_torch
@pytest.mark.slow  # LSTM's step, checked against PyTorch in test_recurrent_layers
def test_lstm_cell():
    x, h, c = rand(2, 3), rand(2, 4, seed=1), rand(2, 4, seed=2)
    compare(nn.LSTMCell(3, 4, key=tg.random.key(0)), torch.nn.LSTMCell(3, 4), [x, h, c],
            call=_lstm_call)


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("batched", [True, False])
def test_gru_cell(batched):
    x, h = (rand(2, 3), rand(2, 4, seed=1)) if batched else (rand(3), rand(4, seed=1))
    compare(nn.GRUCell(3, 4, key=tg.random.key(0)), torch.nn.GRUCell(3, 4), [x, h])


def test_recurrent_state_shapes_are_checked_never_broadcast():
    lstm = nn.LSTM(3, 4, num_layers=2, key=tg.random.key(0))
    x = rand(5, 2, 3)
    with pytest.raises(tg.ShapeError, match=r"LSTM.*h0 must be .*\[2, 2, 4\].*got \[2, 4\]"):
        lstm(x, (np.zeros((2, 4), np.float32),) * 2)
    with pytest.raises(tg.ShapeError, match=r"LSTM.*c0 must be .*\[2, 4\].*got \[1, 4\]"):
        lstm(rand(5, 3), (rand(2, 4), rand(1, 4)))  # unbatched: (layers * directions, H)
    with pytest.raises(tg.ShapeError, match=r"LSTM.*\(T, B, 3\)"):
        lstm(rand(5, 2, 4))
    def shapes(fn, *args):  # traced, not run: only the shapes matter here
        return [v.type.shape for v in tg.trace(fn, *args).outputs]

    assert shapes(lambda x: lstm(x), x) == [(5, 2, 4), (2, 2, 4), (2, 2, 4)]
    dropped = lstm.replace(dropout=0.5)
    with pytest.raises(tg.TracingError, match="LSTM.*dropout.*key"):
        shapes(lambda x: dropped(x), x)
    assert shapes(lambda x, k: dropped(x, key=k)[0], x, tg.random.key(1)) == [(5, 2, 4)]
    assert shapes(lambda x: dropped.eval()(x)[0], x) == [(5, 2, 4)]


# -- TransformerEncoderLayer -----------------------------------------------------------------


def _split_in_proj(state):
    """PyTorch's packed ``in_proj`` as the three projections of `MultiHeadAttention`."""
    w, b = state.pop("self_attn.in_proj_weight"), state.pop("self_attn.in_proj_bias")
    for i, name in enumerate("qkv"):
        rows = slice(i * w.shape[1], (i + 1) * w.shape[1])
        state[f"self_attn.{name}_proj.weight"], state[f"self_attn.{name}_proj.bias"] = w[rows], b[rows]
    return state


@needs_torch
@pytest.mark.parametrize("kw", [
    {"norm_first": False, "batch_first": False, "activation": "relu"},
    pytest.param({"norm_first": True, "batch_first": True, "activation": "gelu"},
                 marks=pytest.mark.slow),
])
def test_transformer_encoder_layer(kw):
    module = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, key=tg.random.key(0), **kw)
    th = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, **kw)
    x = rand(2, 4, 8) if kw["batch_first"] else rand(4, 2, 8)
    padding = np.array([[False] * 4, [False, False, True, True]])
    causal = np.triu(np.ones((4, 4), bool), 1)  # True: not allowed, as PyTorch

    def call(m, x):
        mask = torch.tensor(causal) if isinstance(m, torch.nn.Module) else causal
        pad = torch.tensor(padding) if isinstance(m, torch.nn.Module) else padding
        return m(x, src_mask=mask, src_key_padding_mask=pad)

    compare(module, th, [x], call=call, rename=_split_in_proj)
    with pytest.raises(tg.ShapeError, match=r"TransformerEncoderLayer\(8, 2\).*src_key_padding"):
        module(x, src_key_padding_mask=padding[:, :3])
    if kw["norm_first"]:  # the slow variant: PyTorch's float mask (-inf above the diagonal)
        float_mask = torch.nn.Transformer.generate_square_subsequent_mask(4)
        close(module(x, src_mask=float_mask.numpy(), is_causal=True),
              numpy_of(th(torch.tensor(x), src_mask=float_mask, is_causal=True)))


# -- functions -------------------------------------------------------------------------------


@needs_torch
def test_std_and_var_match_numpy_and_torch():
    x = rand(3, 4)

    @tg.jit  # one compiled graph for all of them
    def stats(x):
        t = x  # a Tensor here: its .var/.std are PyTorch's (unbiased by default)
        return (tg.var(x), tg.std(x, axis=0, ddof=1), tg.var(x, axis=(0, 1), keepdims=True),
                t.var(), t.std(1, keepdim=True), t.var(unbiased=False),
                tg.grad(lambda a: tg.sum(tg.std(a, axis=1, ddof=1)))(x))

    got = stats(x)
    tx = torch.tensor(x, requires_grad=True)
    torch.std(tx, dim=1).sum().backward()
    want = (x.var(), x.std(0, ddof=1), x.var((0, 1), keepdims=True), numpy_of(tx.var()),
            numpy_of(tx.std(1, keepdim=True)), x.var(), numpy_of(tx.grad))
    for i, (g, w) in enumerate(zip(got, want)):
        close(g, w, 1e-5, f"value {i}")


def test_random_categorical_shapes():
    # (the op test matrix runs op random_categorical in every mode against jax.random)
    logits = rand(4, 5)

    def shape(**kw):
        g = tg.trace(lambda k, lg: tg.random.categorical(k, lg, **kw), tg.random.key(3), logits)
        return g.outputs[0].type.shape

    assert shape() == (4,) and shape(axis=0, shape=(2, 5)) == (2, 5)
    with pytest.raises(tg.ShapeError, match="random_categorical"):
        shape(shape=(3,))


@needs_torch
def test_losses_from_logits():
    logits, labels = rand(4, 3), np.array([0, 2, 1, 1], np.int32)
    t = (rand(4, 3, seed=1) > 0).astype(np.float32)

    @tg.jit
    def losses(logits, labels, t):
        probs, sigmoids = F.softmax(logits), tg.sigmoid(logits)
        return (F.cross_entropy(logits, labels), F.cross_entropy(probs, labels, from_logits=False),
                F.binary_cross_entropy(logits, t, from_logits=True),
                F.binary_cross_entropy(sigmoids, t))

    ce = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels).long())
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(t))
    for got, want in zip(losses(logits, labels, t), [ce, ce, bce, bce]):
        close(got, want.item(), 1e-5)


def test_layer_errors_name_the_layer():
    cases = [
        (lambda: nn.BatchNorm2d(3)(rand(2, 3, 4)), r"BatchNorm2d\(3\).*\(N, 3, H, W\)"),
        (lambda: nn.BatchNorm1d(3)(rand(1, 3)), r"BatchNorm1d\(3\).*more than one value"),
        (lambda: nn.GroupNorm(2, 4)(rand(2, 3, 5)), r"GroupNorm\(2, 4\)"),
        (lambda: nn.RMSNorm(4)(rand(2, 3)), r"RMSNorm\(\[4\]\)"),
        (lambda: nn.MaxPool1d(2)(rand(2, 3, 4, 5)), r"MaxPool1d"),
        (lambda: nn.AdaptiveAvgPool2d(2)(rand(3, 4)), r"AdaptiveAvgPool2d"),
    ]
    for fn, pattern in cases:
        with pytest.raises(tg.ShapeError, match=pattern):
            fn()
