"""PyTorch's API around the tensors: devices (``tg.device``, ``tg.cuda``, ``device=``,
``.to``), the creation functions PyTorch programs use (``linspace``, ``logspace``,
``empty``, ``randint`` ...), the ``nn.Module`` methods (``to``, ``apply``,
``register_buffer`` ...), ``tg.autograd`` (``Function``, ``grad``, ``backward``) and
``tg.save`` / ``tg.load`` of a ``state_dict``; each checked against jax.numpy, JAX's
gradients or PyTorch."""

from __future__ import annotations

import collections
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

HAS_GPU = bool([d for d in jax.devices() if d.platform == "gpu"])


# -- devices ---------------------------------------------------------------------------------


def test_device_names_as_in_pytorch():
    assert str(tg.device("cuda:1")) == "cuda:1" and tg.device("cuda", 1) == "cuda:1"
    assert repr(tg.device("cpu")) == "device(type='cpu')" and tg.device(0) == tg.device("cuda:0")
    assert tg.device(tg.device("gpu")).type == "cuda" and {tg.device("cpu"), tg.device("cpu")} == {tg.device("cpu")}
    with pytest.raises(ValueError, match="device type"):
        tg.device("cdua")
    with pytest.raises(ValueError):
        tg.device("cuda:x")


def test_machine_questions_agree_with_jax():
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    assert tg.cuda.is_available() == bool(gpus) and tg.cuda.device_count() == len(gpus)
    assert tg.accelerator.is_available() == bool(gpus or [d for d in jax.devices() if d.platform == "tpu"])
    assert tg.backends.mps.is_available() is False
    tg.backends.cudnn.benchmark = True  # a switch PyTorch programs set: kept
    assert tg.backends.cudnn.benchmark is True
    device = "cuda" if tg.cuda.is_available() else "cpu"  # the usual preamble
    assert tg.zeros(2, device=device).devices() == {tg.device(device).jax_device}


@pytest.mark.skipif(HAS_GPU, reason="checks the error where there is no GPU")
def test_a_device_jax_does_not_have_is_a_clear_error():
    with pytest.raises(tg.DeviceError, match=r"no cuda device here.*backends: cpu"):
        tg.zeros(3, device="cuda")
    with pytest.raises(tg.DeviceError, match="cuda"):
        tg.nn.Linear(2, 2).to("cuda")
    assert tg.accelerator.current_accelerator() is None


def test_tensor_device_and_to():
    t = tg.tensor([1.0, 2.0], requires_grad=True, device="cpu")
    assert t.device == tg.get_default_device() and t.is_cuda is False
    assert t.to("cpu") is t and t.cpu() is t
    d = t.to(tg.float16)
    assert d.dtype == np.float16 and d.requires_grad  # a recorded conversion
    other = tg.tensor(np.zeros(2, np.int32))
    assert t.detach().to(other).dtype == np.int32
    tg.set_default_device("cpu")  # the default already: nothing changes
    assert jax.config.jax_default_device is None


def test_device_inside_traced_code():
    f = tg.jit(lambda x: x + tg.ones(3, device=tg.get_default_device()))
    np.testing.assert_array_equal(f(np.zeros(3, np.float32)), np.ones(3))
    if not HAS_GPU:
        with pytest.raises(tg.DeviceError):
            tg.jit(lambda x: x + tg.ones(3, device="cuda"))(np.zeros(3, np.float32))


# -- creation ---------------------------------------------------------------------------------

LINSPACE = [((-math.pi, math.pi, 2000), {}), ((0, 10, 7), {"dtype": np.int32}), ((1.0, 2.0, 4), {"endpoint": False}),
            ((0.0, 1.0, 1), {}), ((0.0, 1.0, 0), {}), ((np.zeros(3), np.ones(3), 4), {"axis": 1}),
            ((2, 5, 3), {}), ((np.float32(-1), 3.0, 9), {"axis": -1})]


@pytest.mark.parametrize("case,mode", [(c, "bottom") for c in range(len(LINSPACE))]
                         + [(c, m) for c in (0, 5) for m in ("jit", "eager")])
def test_linspace_matches_jnp(case, mode):
    args, kw = LINSPACE[case]
    run = {"bottom": lambda f: f(), "jit": lambda f: tg.jit(f)(), "eager": lambda f: tg.eager(f)()}[mode]
    got = np.asarray(run(lambda: tg.linspace(*args, **kw)))
    want = np.asarray(jnp.linspace(*args, **kw))
    assert got.dtype == want.dtype and got.shape == want.shape
    # to the last place of the largest value: jnp's jitted formula may fuse a multiply
    # and an add (one rounding) where ops run one by one round twice
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * np.finfo(np.float32).eps * scale)


def test_linspace_and_logspace_spellings():
    np.testing.assert_array_equal(tg.linspace(0, 1, steps=5), tg.linspace(start=0, end=1, steps=5))
    y, step = tg.linspace(0.0, 1.0, 5, retstep=True)
    assert float(step) == 0.25
    np.testing.assert_allclose(tg.logspace(0, 2, 5), jnp.logspace(0, 2, 5), rtol=1e-6)
    np.testing.assert_allclose(tg.logspace(0, 3, 4, base=2.0), jnp.logspace(0, 3, 4, base=2.0), rtol=1e-6)
    t = tg.linspace(-1, 1, 3, requires_grad=True)
    assert isinstance(t, tg.TapeTensor) and t.requires_grad and t.is_leaf
    with pytest.raises(ValueError, match="non-negative"):
        tg.linspace(0, 1, -1)


def test_creation_keywords_of_pytorch():
    assert tg.empty(2, 3).shape == (2, 3) and tg.empty_like(np.ones((4,), np.int32)).dtype == np.int32
    np.testing.assert_array_equal(tg.arange(0, end=5, step=2), [0, 2, 4])
    for t in (tg.full((2,), 3.0, requires_grad=True), tg.arange(3.0, requires_grad=True),
              tg.eye(2, requires_grad=True), tg.zeros_like(np.ones(2), requires_grad=True)):
        assert isinstance(t, tg.TapeTensor) and t.requires_grad


# -- PyTorch's names ------------------------------------------------------------------------------


def test_torch_named_functions_match_jnp():
    a, b = np.arange(6.0).reshape(2, 3), -np.ones((1, 3))
    np.testing.assert_array_equal(tg.cat([a, b], dim=0), jnp.concatenate([a, b]))
    np.testing.assert_array_equal(tg.concat((a, a), 1), jnp.concatenate([a, a], 1))
    np.testing.assert_array_equal(tg.clamp(a, min=1, max=4), jnp.clip(a, 1, 4))
    m = np.arange(24.0).reshape(2, 3, 4)
    for k in (-1, 0, 2):
        np.testing.assert_array_equal(tg.tril(m, k), jnp.tril(m, k))
        np.testing.assert_array_equal(tg.triu(m, diagonal=k), jnp.triu(m, k))
    g = tg.grad(lambda x: tg.sum(tg.tril(x) * x))(np.ones((3, 3), np.float32))
    np.testing.assert_array_equal(g, 2 * np.tril(np.ones((3, 3))))
    assert tg.numel(m) == 24 and tg.is_tensor(tg.tensor(1.0)) and tg.is_tensor(jnp.ones(1)) and not tg.is_tensor([1])


def test_random_functions_of_pytorch():
    tg.manual_seed(0)
    r = tg.randint(10, (1000,))
    assert r.shape == (1000,) and 0 <= int(r.min()) and int(r.max()) < 10 and len(np.unique(np.asarray(r))) == 10
    assert tg.randint(5, 7, (3,)).numpy().tolist() != [] and set(np.asarray(tg.randint(5, 7, (50,)))) <= {5, 6}
    assert sorted(np.asarray(tg.randperm(20)).tolist()) == list(range(20))
    x = tg.tensor(np.ones((2, 3), np.float16))
    assert tg.randn_like(x).shape == (2, 3) and tg.randn_like(x).dtype == np.float16
    assert tg.rand_like(x, dtype=tg.float32).dtype == np.float32
    tg.manual_seed(3)
    first = np.asarray(tg.randperm(8))
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.randperm(8), first)


def test_from_numpy_as_tensor_and_inference_mode():
    a = np.arange(3.0, dtype=np.float32)
    t = tg.from_numpy(a)
    a[0] = 7  # a copy: JAX arrays do not share numpy's memory
    assert float(t[0]) == 0.0
    assert tg.as_tensor(t) is t and tg.as_tensor([1, 2]).dtype == np.int32
    w = tg.tensor([1.0], requires_grad=True)
    with tg.inference_mode():
        assert not (w * 2).requires_grad
    with tg.inference_mode(False):
        assert (w * 2).requires_grad

    @tg.inference_mode()
    def f(v):
        return v * 3

    assert not f(w).requires_grad


# -- nn.Module ------------------------------------------------------------------------------


class Net(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = tg.nn.Linear(3, 2)
        self.register_buffer("mask", tg.tensor([1.0, 0.0]))
        self.register_parameter("scale", tg.nn.Parameter(tg.ones(2)))
        self.add_module("head", tg.nn.Linear(2, 1))

    def forward(self, x):
        return self.head(self.fc(x) * self.mask * self.scale)


def test_module_registration_and_traversal():
    tg.manual_seed(0)
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert "scale" in names and "mask" not in names and "mask" in net.state_dict()
    assert [n for n, _ in net.named_buffers()] == ["mask"]
    assert [n for n, _ in net.named_children()] == ["fc", "head"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Linear", "Linear"]
    assert net.get_submodule("head") is net.head and net.get_parameter("fc.weight") is net.fc.weight
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Linear", "Net"]  # children before their parent
    x = tg.tensor(np.ones((4, 3), np.float32))
    net(x).sum().backward()
    assert net.scale.grad is not None and net.fc.weight.grad is not None
    with pytest.raises(AttributeError, match="immutable"):
        net.register_buffer("late", tg.tensor([1.0]))


def test_module_to_dtype_in_place_keeps_the_optimizer():
    tg.manual_seed(0)
    net = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 1))
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    w = net[0].weight
    assert net.half() is net and net[0].weight is w and w.dtype == np.float16
    x = tg.tensor(np.ones((2, 3)), dtype=tg.half)
    net(x).sum().backward()
    opt.step()
    assert w.dtype == np.float16 and w.grad.dtype == np.float16
    assert net.to(tg.float32).to("cpu") is net and w.dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        net.to(tg.int32)


def test_sequential_spellings():
    a, b = tg.nn.Linear(2, 3), tg.nn.Linear(3, 1)
    for s in (tg.nn.Sequential(a, b), tg.nn.Sequential([a, b]),
              tg.nn.Sequential(collections.OrderedDict([("fc1", a), ("fc2", b)]))):
        assert len(s.layers) == 2 and s.layers[0].weight is a.weight and s.layers[1].weight is b.weight


# -- tg.autograd ------------------------------------------------------------------------------


class Cube(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k  # a Python number: carried as it is
        ctx.twice = x * 2  # a tensor attribute: carried as a residual
        return x ** 3 * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad[1] is False
        return g * 1.5 * x * ctx.twice * ctx.k, None  # 3 x^2 k


class Exp(tg.autograd.Function):  # PyTorch 2's form: forward without ctx, setup_context
    @staticmethod
    def forward(x):
        return tg.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


def test_function_gradient_in_every_mode():
    x = np.array([1.0, -2.0, 0.5], np.float32)
    want = jax.grad(lambda v: jnp.sum(jnp.sin(v ** 3 * 2.0)))(x)
    loss = lambda v: tg.sum(tg.sin(Cube.apply(v, 2.0)))  # noqa: E731
    np.testing.assert_allclose(tg.grad(loss)(x), want, rtol=1e-6)
    np.testing.assert_allclose(tg.jit(tg.grad(loss))(x), want, rtol=1e-6)
    np.testing.assert_allclose(tg.eager(tg.grad(loss))(x), want, rtol=1e-6)
    t = tg.tensor(x, requires_grad=True)
    loss(t).backward()
    np.testing.assert_allclose(t.grad, want, rtol=1e-6)
    np.testing.assert_allclose(Cube.apply(x, 2.0), x ** 3 * 2)  # plain arrays: the forward
    np.testing.assert_allclose(tg.grad(lambda v: tg.sum(Exp.apply(v)))(x), np.exp(x), rtol=1e-6)
    graph = tg.jit(lambda v: Cube.apply(v, 2.0)).trace(x)
    assert [n.op for n in graph.nodes] == ["custom_vjp"]
    line = inspect.getsourcelines(Cube.backward)[1] + 4  # the return of backward (its user line)
    assert f"test_torch_api.py:{line}" in str(graph)


def test_function_rule_uses_the_user_backward():
    class ClipGrad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return tg.clamp(g, -1, 1)

    t = tg.tensor([1.0, 2.0], requires_grad=True)
    (ClipGrad.apply(t) * 10).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 1.0])  # the rule's, not the derivative's 10


def test_function_mistakes_are_named():
    class Wrong(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return (g,)  # one gradient for two inputs

    with pytest.raises(tg.ShapeError, match="Wrong.backward returned 1 gradient"):
        tg.grad(lambda a: tg.sum(Wrong.apply(a, a)))(np.ones(2, np.float32))
    with pytest.raises(TypeError, match="subclass"):
        tg.autograd.Function()


def test_autograd_grad_and_backward():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    ga, gb = tg.autograd.grad((a * b).sum(), [a, b])
    np.testing.assert_array_equal(ga, [3.0, 4.0])
    np.testing.assert_array_equal(gb, [1.0, 2.0])
    assert a.grad is None  # .grad untouched
    (g,) = tg.autograd.grad(a * b, a, grad_outputs=tg.tensor([1.0, 10.0]))
    np.testing.assert_array_equal(g, [3.0, 40.0])
    (g1,) = tg.autograd.grad((a ** 3).sum(), a, create_graph=True)  # 3 a^2, with history
    (g2,) = tg.autograd.grad(g1.sum(), a)  # 6 a
    np.testing.assert_array_equal(g2, [6.0, 12.0])
    with pytest.raises(tg.TracingError, match="allow_unused"):
        tg.autograd.grad((a * 2).sum(), [a, b])
    assert tg.autograd.grad((a * 2).sum(), [a, b], allow_unused=True)[1] is None
    np.testing.assert_array_equal(tg.autograd.grad((a * 2).sum(), [a, b], materialize_grads=True)[1], [0.0, 0.0])
    tg.autograd.backward([(a * b).sum(), (a * a).sum()])
    np.testing.assert_array_equal(a.grad, [3.0 + 2.0, 4.0 + 4.0])


# -- tg.save / tg.load ------------------------------------------------------------------------------


def test_save_and_load_a_state_dict(tmp_path):
    tg.manual_seed(0)
    net = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 2))
    path = tmp_path / "model.pth"
    tg.save(net.state_dict(), path)
    tg.manual_seed(1)
    other = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 2))
    other.load_state_dict(tg.load(path, weights_only=True, map_location="cpu"))
    x = tg.tensor(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(other(x).detach().numpy(), net(x).detach().numpy())
    tg.save({"step": 3, "w": tg.tensor([1.0], requires_grad=True)}, tmp_path / "ckpt.pth")
    back = tg.load(tmp_path / "ckpt.pth")
    assert back["step"] == 3 and float(back["w"][0]) == 1.0


def test_save_and_load_keep_graph_files(tmp_path):
    g = tg.trace(lambda x: x * 2, np.ones(2, np.float32))
    tg.save(g, tmp_path / "g.tg")
    assert str(tg.load(tmp_path / "g.tg")) == str(g)
    (tmp_path / "junk").write_bytes(b"not a zip at all")
    with pytest.raises(tg.Error):
        tg.load(tmp_path / "junk")
