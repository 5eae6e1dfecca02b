"""Imperative autograd (PyTorch style): requires_grad, .backward(), .grad, no_grad,
in-place updates, stateful optimizers, modules without keys, and the same model in
both styles. Gradients are checked against jax.grad; optimizers against PyTorch."""

import inspect
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

RNG = np.random.default_rng(0)


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# -- the seed articles' programs, with torch -> tg ----------------------------------------


def test_linear_regression_with_leaf_tensors_and_manual_updates():
    tg.manual_seed(0)
    x = tg.tensor(np.linspace(-1, 1, 32, dtype=np.float32))
    y = 2.0 * x + 0.5
    w = tg.randn(1, requires_grad=True)
    b = tg.zeros(1, requires_grad=True)

    def linear_model(x):
        return w * x + b

    def loss(y_pred, y_true):
        return ((y_pred - y_true) ** 2).mean()

    for i in range(300):
        y_pred = linear_model(x)
        loss_value = loss(y_pred, y)
        loss_value.backward()
        with tg.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad.zero_()
        b.grad.zero_()
    assert w.is_leaf and w.requires_grad and isinstance(w, tg.TapeTensor)
    close(w.item(), 2.0, 1e-3)
    close(b.item(), 0.5, 1e-3)
    assert loss_value.item() < 1e-5


def test_nn_module_with_mse_loss_and_sgd():
    X = tg.tensor([[1, 2]], dtype=tg.float)
    Y = tg.tensor([5], dtype=tg.float)

    class Net(tg.nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.fc1 = tg.nn.Linear(2, 1)

        def forward(self, x):
            return self.fc1(x)

    tg.manual_seed(1)
    net = Net()
    criterion = tg.nn.MSELoss()
    optimizer = tg.optim.SGD(net.parameters(), lr=0.01)
    for epoch in range(100):
        optimizer.zero_grad()
        outputs = net(X)
        loss = criterion(outputs, Y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-3


def test_module_adam_then_eval_under_no_grad():
    rng = np.random.default_rng(3)
    x_train = tg.tensor(rng.normal(size=(64, 4)).astype(np.float32))
    y_train = tg.tensor((rng.normal(size=(64, 1)) > 0).astype(np.float32))

    class Net(tg.nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.fc1 = tg.nn.Linear(4, 10)
            self.fc2 = tg.nn.Linear(10, 1)

        def forward(self, x):
            x = tg.relu(self.fc1(x))
            x = self.fc2(x)
            return x

    tg.manual_seed(2)
    model = Net()
    optimizer = tg.optim.Adam(model.parameters())
    loss_fn = tg.nn.MSELoss()
    first = None
    for epoch in range(30):
        y_pred = model(x_train)
        loss = loss_fn(y_pred, y_train)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first
    model.eval()
    with tg.no_grad():
        y_pred = model(x_train)
        loss = loss_fn(y_pred, y_train)
        accuracy = (y_pred.argmax(dim=1) == y_train[:, 0].long()).float().mean()
    assert not loss.requires_grad and loss.is_leaf
    assert 0.0 <= accuracy.item() <= 1.0


def test_cnn_and_cross_entropy_train():
    rng = np.random.default_rng(4)
    x = tg.tensor(rng.normal(size=(16, 1, 8, 8)).astype(np.float32))
    y = tg.tensor(rng.integers(0, 3, 16).astype(np.int32))

    class CNN(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tg.nn.Conv2d(1, 4, 3)
            self.fc = tg.nn.Linear(4 * 6 * 6, 3)

        def forward(self, x):
            h = tg.relu(self.conv(x))
            return self.fc(h.view(h.size(0), -1))

    tg.manual_seed(5)
    model = CNN()
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    crit = tg.nn.CrossEntropyLoss()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.slow  # about 10 s: the first steps compile every op of the unrolled LSTM
def test_lstm_language_model_trains():
    text = "hello world, hello tracegraph. " * 4
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], np.int32)

    class CharLM(tg.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.embed = tg.nn.Embedding(n, 8)
            self.lstm = tg.nn.LSTM(8, 16, batch_first=True)
            self.head = tg.nn.Linear(16, n)

        def forward(self, x):
            h, _ = self.lstm(self.embed(x))
            return self.head(h)

    tg.manual_seed(6)
    model = CharLM(len(vocab))
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    crit = tg.nn.CrossEntropyLoss()
    x = tg.tensor(ids[:40].reshape(4, 10))
    y = tg.tensor(ids[1:41].reshape(4, 10))
    losses = []
    for _ in range(3):
        opt.zero_grad()
        logits = model(x)
        loss = crit(logits.view(-1, len(vocab)), y.view(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# -- gradients equal jax.grad ----------------------------------------------------------------

FUNCTIONS = {
    "broadcast": (lambda a, b: ((a * b + a) ** 2).sum(), [(3, 4), (4,)]),
    "reuse": (lambda a, b: (tg.tanh(a) * a).mean() + (a @ b).sum(), [(3, 4), (4, 2)]),
    "softmax_ce": (lambda a, b: tg.nn.functional.cross_entropy(a @ b, np.array([0, 1, 1])), [(3, 4), (4, 2)]),
    "reductions": (lambda a, b: tg.logsumexp(a, axis=1).sum() * tg.max(b), [(3, 4), (4, 2)]),
    "shape_ops": (lambda a, b: (a.T.reshape(2, 6)[:, 1:4] ** 2).sum() + b[1].sum(), [(3, 4), (4, 2)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_backward_equals_jax_grad(name):
    fn, shapes = FUNCTIONS[name]
    arrays = [RNG.normal(size=s).astype(np.float32) for s in shapes]
    ts = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward()
    ref = tg.grad(fn, argnums=tuple(range(len(arrays))))(*[jnp.asarray(a) for a in arrays])
    for t, r in zip(ts, ref):
        close(t.grad, r)
    # the same function in tg.jit and under tg.grad: the same gradients
    ref_jit = tg.jit(tg.grad(fn, argnums=tuple(range(len(arrays)))))(*arrays)
    for t, r in zip(ts, ref_jit):
        close(t.grad, r)


def test_backward_matches_jax_vjp_with_gradient_argument():
    a = RNG.normal(size=(3, 4)).astype(np.float32)
    ct = RNG.normal(size=(3, 4)).astype(np.float32)
    t = tg.tensor(a, requires_grad=True)
    y = tg.sin(t) * t
    y.backward(tg.tensor(ct))
    _, pull = jax.vjp(lambda x: jnp.sin(x) * x, jnp.asarray(a))
    close(t.grad, pull(jnp.asarray(ct))[0])


def test_gradients_accumulate_and_retain_graph():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    close(w.grad, 2 * 2 * np.array([1.0, 2.0]))
    with pytest.raises(tg.TracingError, match="retain_graph"):
        loss.backward()
    w.grad = None
    (w * 3).sum().backward()
    close(w.grad, [3.0, 3.0])


def test_backward_caches_its_graph_and_compiles_repeats():
    w = tg.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    grads = []
    for step in range(4):
        w.grad = None
        loss = tg.tanh(tg.tensor(x + step) @ w).sum()
        loss.backward()
        grads.append(np.asarray(w.grad))
        ref = jax.grad(lambda w: jnp.tanh((x + step) @ w).sum())(jnp.ones((4, 3)))
        close(w.grad, ref)


def test_errors_as_pytorch_gives_them():
    w = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(tg.TracingError, match="no_grad"):
        w -= 1.0  # in place on a leaf that requires grad, outside no_grad
    with pytest.raises(tg.TracingError, match="does not require grad"):
        tg.tensor([1.0]).sum().backward()
    with pytest.raises(tg.TracingError, match="non-scalar"):
        (w * np.ones(3, np.float32)).backward()
    y = w * 2
    with pytest.raises(tg.TracingError, match="leaf"):
        y.requires_grad_(False)
    with pytest.raises(tg.TracingError, match="has history"):
        y += 1.0
    with pytest.raises(tg.TracingError, match="floating point"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(tg.TracingError, match=r"tg.grad"):
        tg.jit(lambda x: x.sum().backward())(np.ones(2, np.float32))


def test_no_grad_detach_and_in_place_updates():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = w * 2
    assert not y.requires_grad and y.grad_fn is None
    d = (w * 2).detach()
    assert not d.requires_grad and d.is_leaf
    z = w * 2
    assert z.requires_grad and not z.is_leaf and z.grad_fn.op == "mul"

    @tg.no_grad()
    def update():
        w.add_(1.0)
        return w * 3

    assert not update().requires_grad
    close(w, [2.0, 3.0])
    assert w.is_leaf and w.requires_grad
    # acc += w * x: acc (no history) takes the history of the result
    acc = tg.zeros(2)
    acc = tg.tensor(acc)
    acc += w * np.float32(2.0)
    assert acc.requires_grad
    acc.sum().backward()
    close(w.grad, [2.0, 2.0])
    # .data: updating it changes the tensor, nothing is recorded
    w.data -= 1.0
    close(w, [1.0, 2.0])
    assert tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_update_after_forward_does_not_change_the_gradient():
    w = tg.tensor([3.0], requires_grad=True)
    loss = (w * w).sum()
    with tg.no_grad():
        w -= 1.0  # before backward: the gradient is that of the forward's w (3.0)
    loss.backward()
    close(w.grad, [6.0])


def test_tape_and_backward_graph_print_with_user_lines():
    def f(w, x):
        h = tg.tanh(x @ w)  # line of tanh
        return (h * h).mean()

    line = inspect.getsourcelines(f)[1] + 1
    w = tg.tensor(np.ones((3, 2), np.float32) * 0.1, requires_grad=True)
    loss = f(w, tg.tensor(np.ones((4, 3), np.float32)))
    tape, bwd = loss.tape(), loss.backward_graph()
    for g in (tape, bwd):
        text = str(g)
        assert f"test_imperative.py:{line}" in text
        consts = {v.name: v.data for v in g.constants if v.name}
        assert str(tg.parse(text, consts)) == text
    assert [n.op for n in tape.nodes] == ["matmul", "tanh", "mul", "mean"]
    assert "grad/tanh" in str(bwd)
    assert len(bwd.outputs) == 1 and bwd.outputs[0].type == w.type
    loss.backward()
    ref = jax.grad(lambda w: (jnp.tanh(jnp.ones((4, 3)) @ w) ** 2).mean())(jnp.full((3, 2), 0.1))
    close(w.grad, ref)


# -- optimizers equal PyTorch's ---------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda m, p: m.SGD(p, lr=0.1),
    "sgd-momentum-nesterov-wd": lambda m, p: m.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda m, p: m.Adam(p, lr=1e-2),
    "adam-wd-betas": lambda m, p: m.Adam(p, lr=1e-2, weight_decay=1e-2, betas=(0.8, 0.99)),
    "adamw": lambda m, p: m.AdamW(p, lr=1e-2),
    "rmsprop": lambda m, p: m.RMSprop(p, lr=1e-3),
    "rmsprop-centered-momentum": lambda m, p: m.RMSprop(p, lr=1e-3, centered=True, momentum=0.9, weight_decay=1e-3),
}


def _mlp_run(lib, make, steps=100):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype("f4")
    Y = rng.integers(0, 3, 64)
    init = [rng.normal(size=(8, 5)).astype("f4") * 0.3, np.zeros(8, "f4"),
            rng.normal(size=(3, 8)).astype("f4") * 0.3, np.zeros(3, "f4")]
    if lib == "tg":
        ps = [tg.tensor(a, requires_grad=True) for a in init]
        x, y, mod = tg.tensor(X), tg.tensor(Y.astype("i4")), tg
    else:
        import torch as mod

        ps = [mod.tensor(a, requires_grad=True) for a in init]
        x, y = mod.tensor(X), mod.tensor(Y)
    opt = make(mod.optim, ps)
    for _ in range(steps):
        opt.zero_grad()
        out = mod.relu(x @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
        loss = mod.nn.CrossEntropyLoss()(out, y)
        loss.backward()
        opt.step()
    return [np.array(p.detach().numpy() if lib == "torch" else p) for p in ps]


# one in the default run; all with -m slow
_DEFAULT = {"sgd-momentum-nesterov-wd"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in _DEFAULT else [pytest.mark.slow]) for n in sorted(OPTIMIZERS)]
)
def test_optimizers_equal_pytorch_over_100_steps(name):
    pytest.importorskip("torch")
    ours = _mlp_run("tg", OPTIMIZERS[name])
    theirs = _mlp_run("torch", OPTIMIZERS[name])
    for a, b in zip(ours, theirs):
        close(a, b, 1e-4)


def test_param_groups_lr_changes_and_state():
    a = tg.tensor([1.0, 1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    opt = tg.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    close(a, [0.9, 0.9])
    close(b, [0.5])
    opt.param_groups[0]["lr"] = 0.2  # a schedule changes the rate; no recompilation needed
    opt.step()
    close(a, [0.7, 0.7])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()  # nothing has a grad: nothing changes
    close(a, [0.7, 0.7])
    with pytest.raises(tg.TracingError, match="requires_grad_"):
        tg.optim.Adam([jnp.ones(3)])


# -- one model, both styles ----------------------------------------------------------------


def _mlp():
    tg.manual_seed(7)
    return tg.nn.Sequential([tg.nn.Linear(5, 8), tg.relu, tg.nn.Linear(8, 3)])


def test_pytorch_style_model_in_jit_grad_and_functional_optimizers():
    model = _mlp()
    x = RNG.normal(size=(6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2], np.int32)

    def loss_fn(m, x, y):
        return tg.nn.functional.cross_entropy(m(x), y)

    loss = loss_fn(model, tg.tensor(x), tg.tensor(y))
    loss.backward()
    imperative = [np.asarray(p.grad) for p in model.parameters()]
    value, grads = tg.jit(tg.value_and_grad(loss_fn))(model, x, y)
    close(value, loss.item())
    for g, r in zip(jax.tree_util.tree_leaves(grads), imperative):
        close(g, r)
    _, grads_eager = tg.value_and_grad(loss_fn)(model, x, y)
    for g, r in zip(jax.tree_util.tree_leaves(grads_eager), imperative):
        close(g, r)
    # a functional optimizer step on the same model gives arrays; nothing is recorded
    opt = tg.optim.sgd(0.1)
    state = opt.init(model)
    updates, state = opt.update(grads, state, model)
    new = tg.optim.apply_updates(model, updates)
    for p, q, g in zip(model.parameters(), jax.tree_util.tree_leaves(new), imperative):
        close(q, np.asarray(p) - 0.1 * g)
    # a jitted closure over a trainable parameter would go stale: refused
    with pytest.raises(tg.TracingError, match="argument"):
        tg.jit(lambda x: model(x))(x)


def test_functional_model_trained_imperatively_after_requires_grad():
    model = tg.nn.Linear(3, 2, key=tg.random.key(0))
    assert not isinstance(model.weight, tg.Tensor)
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    x = tg.tensor(np.ones((4, 3), np.float32))
    before = np.asarray(model.weight).copy()
    (model(x) ** 2).mean().backward()
    opt.step()
    assert not np.allclose(before, np.asarray(model.weight))


def test_train_eval_in_place_and_state_dict():
    tg.manual_seed(8)
    model = tg.nn.Sequential([tg.nn.Linear(4, 4), tg.nn.Dropout(0.5), tg.nn.Linear(4, 2)])
    assert model.training
    assert model.eval() is model and not model.training and not model[1].training
    x = tg.tensor(np.ones((3, 4), np.float32))
    close(model(x), model(x))  # dropout is off: deterministic
    model.train()
    assert model[1].training
    state = model.state_dict()
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    w = model[0].weight
    opt = tg.optim.SGD(model.parameters(), lr=1.0)
    model.eval()
    model(x).sum().backward()
    opt.step()
    assert not np.allclose(np.asarray(w), state["0.weight"])
    model.load_state_dict(state)
    assert model[0].weight is w  # the same tensor, the old values
    close(w, state["0.weight"])
    with pytest.raises(KeyError):
        model.load_state_dict({"0.weight": state["0.weight"]})


def test_loss_modules_match_functional_and_pytorch_conventions():
    logits = RNG.normal(size=(4, 3, 5)).astype(np.float32)  # (N, C, d): classes on axis 1
    labels = np.array([[0, 1, 2, 1, -100]] * 4, np.int32)
    loss = tg.nn.CrossEntropyLoss()(tg.tensor(logits), tg.tensor(labels))
    logp = jax.nn.log_softmax(jnp.moveaxis(logits, 1, -1), -1)
    keep = labels != -100
    picked = jnp.take_along_axis(logp, jnp.maximum(labels, 0)[..., None], -1)[..., 0]
    close(loss, -(picked * keep).sum() / keep.sum())
    p = RNG.normal(size=(5,)).astype(np.float32)
    t = (RNG.random(5) > 0.5).astype(np.float32)
    close(tg.nn.BCEWithLogitsLoss()(tg.tensor(p), tg.tensor(t)),
          jnp.mean(jnp.logaddexp(0, p) - p * t))
    close(tg.nn.MSELoss(reduction="sum")(tg.tensor(p), tg.tensor(t)), ((p - t) ** 2).sum())


def test_threads_train_their_own_tensors():
    errors = []

    def work(seed):
        try:
            w = tg.tensor(np.full(3, float(seed), np.float32), requires_grad=True)
            for _ in range(20):
                w.grad = None
                with tg.no_grad() if seed % 2 else tg.enable_grad():
                    pass
                (w * w).sum().backward()
                close(w.grad, 2 * np.asarray(w))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_module_parameter_updated_in_place_by_operator():
    # PyTorch: `with torch.no_grad(): model.weight += 1` updates the parameter in place
    # (Python then sets the same object back on the module, which immutability allows).
    tg.manual_seed(0)
    m = tg.nn.Linear(2, 1)
    before = m.weight.numpy().copy()
    with tg.no_grad():
        m.weight += 1.0
        m.weight *= 2.0
    np.testing.assert_allclose(m.weight.numpy(), (before + 1.0) * 2.0)
    assert m.weight.requires_grad and m.weight.is_leaf
    with pytest.raises(AttributeError, match="immutable"):
        m.weight = tg.tensor([[1.0, 2.0]])
