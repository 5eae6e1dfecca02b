"""Gradients through the neural-network and contraction ops — conv2d, conv_general (NCHW,
NHWC, groups, dilation), pooling, einsum (ellipsis, diagonals), softmax cross-entropy,
dropout, stop_gradient — of small models against jax.grad in jit, interpreter and
define-by-run; second order (grad of grad, Hessian-vector products); the backward
graphs as readable, serializable IR."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tracegraph as tg
import tracegraph.nn.functional as F
from tracegraph.core import bind
from tracegraph.ops.conv import conv_general_attrs

from op_matrix import MODES, modes_taking_turns, run_mode, rotating_modes

try:  # Flax is an optional extra (in .[test]): the comparisons with it skip without it
    import flax.linen as nn
except ImportError:
    nn = None
needs_flax = pytest.mark.skipif(nn is None, reason="needs flax (pip install -e '.[test]')")

RNG = np.random.default_rng(1)


def rand(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def check_grad(tg_fn, jax_fn, args, mode, argnums=0, rtol=1e-4, atol=1e-5):
    want = jax.grad(jax_fn, argnums=argnums)(*args)
    got = run_mode(mode, tg.grad(tg_fn, argnums=argnums), args)
    want_leaves, got_leaves = jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


# -- convolution ----------------------------------------------------------------------

CONV2D_CASES = {
    "plain": {},
    "stride-pad": {"stride": (2, 1), "padding": ((1, 2), (0, 1))},
    "dilation": {"dilation": (2, 1), "padding": 1},
    "groups": {"groups": 2, "stride": 2, "padding": 1},
    "depthwise-dilated": {"groups": 4, "dilation": 2, "padding": "SAME"},
}


def _pair(v):
    return (v, v) if isinstance(v, int) else v


# each case in one mode by default, in all three with -m slow (the default run's budget)
@pytest.mark.parametrize("case,mode", modes_taking_turns(list(CONV2D_CASES), list(CONV2D_CASES)))
def test_conv2d_grad(case, mode):
    kw = CONV2D_CASES[case]
    groups, stride, dilation = (
        kw.get("groups", 1),
        _pair(kw.get("stride", 1)),
        _pair(kw.get("dilation", 1)),
    )
    padding = kw.get("padding", 0)
    padding = padding if isinstance(padding, (str, tuple)) else (_pair(padding),) * 2
    o = 8 if groups == 4 else 6
    x, w, b = rand(2, 4, 9, 8), rand(o, 4 // groups, 3, 2, scale=0.3), rand(o)

    def loss(x, w, b):
        return tg.sum(tg.tanh(F.conv2d(x, w, b, **kw)) ** 2)

    def loss_jax(x, w, b):
        y = lax.conv_general_dilated(
            x,
            w,
            stride,
            padding,
            rhs_dilation=dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=groups,
        )
        return jnp.sum(jnp.tanh(y + b[:, None, None]) ** 2)

    check_grad(loss, loss_jax, (x, w, b), mode, argnums=(0, 1, 2))


def _conv_general(x, w, **attrs):
    return bind("conv_general", x, w, **attrs)


NHWC = {"lhs_spec": "NHWC", "rhs_spec": "HWIO", "out_spec": "NHWC"}


@pytest.mark.parametrize("mode", rotating_modes())
def test_conv_general_nhwc_grad(mode):
    attrs = dict(
        window_strides=(2, 1),
        padding=((1, 1), (2, 0)),
        lhs_dilation=(1, 2),
        rhs_dilation=(2, 1),
        feature_group_count=2,
        **NHWC,
    )
    x, w = rand(2, 7, 6, 4), rand(3, 2, 2, 6, scale=0.3)

    def loss(x, w):
        return tg.sum(tg.sin(_conv_general(x, w, **attrs)))

    def loss_jax(x, w):
        y = lax.conv_general_dilated(
            x,
            w,
            (2, 1),
            ((1, 1), (2, 0)),
            (1, 2),
            (2, 1),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=2,
        )
        return jnp.sum(jnp.sin(y))

    check_grad(loss, loss_jax, (x, w), mode, argnums=(0, 1))


@pytest.mark.parametrize("mode", rotating_modes())
def test_conv_general_1d_batch_groups_grad(mode):
    attrs = {
        "window_strides": (1,),
        "padding": ((1, 0),),
        "lhs_dilation": (1,),
        "rhs_dilation": (2,),
        "lhs_spec": "NWC",
        "rhs_spec": "WIO",
        "out_spec": "NWC",
        "batch_group_count": 2,
    }
    x, w = rand(4, 8, 3), rand(2, 3, 4, scale=0.3)

    def loss(x, w):
        return tg.sum(_conv_general(x, w, **attrs) ** 2)

    def loss_jax(x, w):
        y = lax.conv_general_dilated(
            x,
            w,
            (1,),
            ((1, 0),),
            rhs_dilation=(2,),
            dimension_numbers=("NWC", "WIO", "NWC"),
            batch_group_count=2,
        )
        return jnp.sum(y**2)

    check_grad(loss, loss_jax, (x, w), mode, argnums=(0, 1))


def _flax_conv_eqn(module, params, x):
    jaxpr = jax.make_jaxpr(lambda p, x: module.apply(p, x))(params, x)
    (eqn,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    return eqn


@needs_flax
@pytest.mark.parametrize("mode", rotating_modes())
def test_flax_conv_via_conv_general_attrs(mode):
    # What the jaxpr importer does: a Flax NHWC/HWIO convolution's equation parameters
    # become conv_general attributes; values and gradients must match Flax exactly.
    module = nn.Conv(
        features=6,
        kernel_size=(3, 2),
        strides=(2, 1),
        padding=((1, 1), (0, 2)),
        kernel_dilation=(1, 2),
        feature_group_count=2,
        use_bias=False,
    )
    x = rand(2, 7, 6, 4)
    params = module.init(jax.random.PRNGKey(0), x)
    attrs = conv_general_attrs(**_flax_conv_eqn(module, params, x).params)
    assert (attrs["lhs_spec"], attrs["rhs_spec"], attrs["out_spec"]) == ("NHWC", "HWIO", "NHWC")
    kernel = params["params"]["kernel"]

    got = run_mode(mode, lambda x, k: _conv_general(x, k, **attrs), (x, kernel))
    np.testing.assert_allclose(got, module.apply(params, x), rtol=1e-5, atol=1e-6)

    def loss_jax(x, k):
        return jnp.sum(jnp.tanh(module.apply({"params": {"kernel": k}}, x)))

    check_grad(
        lambda x, k: tg.sum(tg.tanh(_conv_general(x, k, **attrs))),
        loss_jax,
        (x, kernel),
        mode,
        argnums=(0, 1),
    )


def test_conv_general_attrs_reorders_spatial_dims():
    # Integer dimension numbers whose rhs lists its spatial dims in descending order: the
    # string form orders the spatial attributes by rhs layout instead.
    dn = lax.ConvDimensionNumbers(
        lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 1, 0), out_spec=(0, 3, 1, 2)
    )
    params = {
        "window_strides": (1, 2),
        "padding": ((1, 0), (0, 2)),
        "lhs_dilation": (1, 1),
        "rhs_dilation": (2, 1),
        "dimension_numbers": dn,
    }
    x, w = rand(2, 7, 8, 3), rand(2, 3, 3, 4)  # w: (spatial1, spatial0, I, O)
    want = lax.conv_general_dilated(x, w, **params)
    attrs = conv_general_attrs(**params, feature_group_count=1, batch_group_count=1)
    assert attrs["rhs_spec"] == "WHIO" and attrs["window_strides"] == (2, 1)
    got = tg.jit(lambda x, w: _conv_general(x, w, **attrs))(x, w)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"lhs_spec": "NCHW", "rhs_spec": "OIHW", "out_spec": "NCWX"}, "same spatial dims"),
        ({"lhs_spec": "NCHH", "rhs_spec": "OIHW", "out_spec": "NCHW"}, "repeats"),
        (
            {"lhs_spec": "NCHW", "rhs_spec": "OIHW", "out_spec": "NCHW", "feature_group_count": 3},
            "feature",
        ),
        (
            {"lhs_spec": "NCHW", "rhs_spec": "OIHW", "out_spec": "NCHW", "window_strides": (1,)},
            "2 entries",
        ),
        (
            {
                "lhs_spec": "NCHW",
                "rhs_spec": "OIHW",
                "out_spec": "NCHW",
                "padding": ((-9, 0), (0, 0)),
            },
            "padding",
        ),
    ],
)
def test_conv_general_shape_errors(attrs, message):
    base = {
        "window_strides": (1, 1),
        "padding": ((0, 0), (0, 0)),
        "lhs_dilation": (1, 1),
        "rhs_dilation": (1, 1),
    }
    base.update(attrs)
    with pytest.raises(tg.ShapeError, match=message):
        tg.trace(
            lambda x, w: _conv_general(x, w, **base), tg.spec((1, 4, 5, 5)), tg.spec((2, 4, 2, 2))
        )


# -- pooling --------------------------------------------------------------------------


def _pool_loss_jax(x, w):
    y = lax.reduce_window(
        x, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 1), (1, 1))
    )
    s = lax.reduce_window(
        y * w, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 1, 1), ((0, 0), (0, 0), (1, 0), (0, 1))
    )
    ones = jnp.ones(y.shape[2:])
    count = lax.reduce_window(ones, 0.0, lax.add, (2, 2), (1, 1), ((1, 0), (0, 1)))
    return jnp.sum(jnp.tanh(s / count))


def _pool_loss(x, w):
    y = F.max_pool2d(x, 3, stride=2, padding=1)
    z = F.avg_pool2d(y * w, 2, stride=1, padding=((1, 0), (0, 1)), count_include_pad=False)
    return tg.sum(tg.tanh(z))


@pytest.mark.parametrize("mode", rotating_modes())
def test_max_and_avg_pool_grad(mode):
    x = rand(2, 3, 8, 7)  # continuous values: no ties inside a window
    w = rand(2, 3, 4, 4)
    check_grad(_pool_loss, _pool_loss_jax, (x, w), mode, argnums=(0, 1))


@pytest.mark.parametrize("mode", rotating_modes())
def test_pool_second_order(mode):
    # Hessian-vector product through max_pool2d_grad / max_pool2d_jvp / avg_pool2d_grad.
    x, w, v = rand(2, 3, 8, 7), rand(2, 3, 4, 4), rand(2, 3, 8, 7)

    def hvp(x, w, v):
        return tg.sum(tg.grad(_pool_loss)(x, w) * v)

    def hvp_jax(x, w, v):
        return jnp.sum(jax.grad(_pool_loss_jax)(x, w) * v)

    check_grad(hvp, hvp_jax, (x, w, v), mode, argnums=(0, 1))


# -- contractions ---------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...k,...k->...", [(1, 3, 4), (2, 1, 4)]),
    ("i...,i->...", [(3, 2, 4), (3,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("...ii->...", [(2, 3, 3)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    ("bij->j", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,j", [(3,), (4,)]),
]


@pytest.mark.parametrize("spec,shapes,mode", modes_taking_turns(EINSUM_CASES, [c[0] for c in EINSUM_CASES]))
def test_einsum_grad(spec, shapes, mode):
    args = tuple(rand(*s) for s in shapes)
    nums = tuple(range(len(args)))
    check_grad(
        lambda *xs: tg.sum(tg.sin(tg.einsum(spec, *xs))),
        lambda *xs: jnp.sum(jnp.sin(jnp.einsum(spec, *xs))),
        args,
        mode,
        argnums=nums,
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_matmul_and_dot_general_grad(mode):
    a, b, c, d, v = rand(4), rand(2, 1, 4, 3), rand(5, 3, 2), rand(2, 3, 4), rand(2)
    dn = (((2,), (1,)), ((0,), (0,)))  # contract d's dim 2 with z0's dim 1; batch dim 0

    def loss(a, b, c, d, v, mm, dot):
        y = mm(a, b)  # 1-D @ batched: (2, 1, 3)
        z = mm(b, c)  # broadcast batch dims: (2, 5, 4, 2)
        e = dot(d, z[:, 0], dn)  # (2, 3, 2)
        return (y**2).sum() + (e * e[:, :1]).sum() + mm(z, v).sum() ** 2

    check_grad(
        lambda *xs: loss(*xs, tg.matmul, tg.dot_general),
        lambda *xs: loss(*xs, jnp.matmul, lax.dot_general),
        (a, b, c, d, v),
        mode,
        argnums=(0, 1, 2, 3, 4),
    )


# -- softmax, dropout, stop_gradient --------------------------------------------------


@pytest.mark.parametrize("mode", rotating_modes())
def test_softmax_cross_entropy_grad(mode):
    logits, labels = rand(5, 7), np.array([0, 6, 3, 3, 1], np.int32)
    onehot = np.eye(7, dtype=np.float32)[labels]

    def loss(z):
        a = -tg.mean(tg.sum(F.log_softmax(z) * onehot, axis=-1))
        b = -tg.mean(tg.log(tg.sum(F.softmax(z * 0.5, axis=-1) * onehot, axis=-1)))
        return a + b + F.cross_entropy(z, labels)

    def loss_jax(z):
        a = -jnp.mean(jnp.sum(jax.nn.log_softmax(z) * onehot, axis=-1))
        b = -jnp.mean(jnp.log(jnp.sum(jax.nn.softmax(z * 0.5, axis=-1) * onehot, axis=-1)))
        return a + b + a

    check_grad(loss, loss_jax, (logits,), mode)


@pytest.mark.parametrize("mode", rotating_modes())
def test_softmax_middle_axis_grad(mode):
    check_grad(
        lambda x: tg.sum(F.softmax(x, axis=1) ** 3) + tg.sum(tg.sin(F.log_softmax(x, axis=0))),
        lambda x: (
            jnp.sum(jax.nn.softmax(x, axis=1) ** 3)
            + jnp.sum(jnp.sin(jax.nn.log_softmax(x, axis=0)))
        ),
        (rand(3, 4, 2),),
        mode,
    )


@pytest.mark.parametrize("mode", rotating_modes())
def test_dropout_grad_uses_the_same_mask(mode):
    x, y = rand(6, 5), rand(6, 5)
    key = np.asarray(jax.random.PRNGKey(7))

    def loss(x, y, key):
        return tg.sum(tg.sin(F.dropout(x, key, rate=0.3)) * y)

    def loss_jax(x, y, key):
        keep = jax.random.bernoulli(key, 0.7, x.shape)
        return jnp.sum(jnp.sin(jnp.where(keep, x / 0.7, 0.0)) * y)

    check_grad(loss, loss_jax, (x, y, key), mode, argnums=(0, 1))
    g = run_mode(mode, tg.grad(loss), (x, y, key))
    keep = np.asarray(jax.random.bernoulli(key, 0.7, x.shape))
    assert np.all(np.asarray(g)[~keep] == 0) and np.all(np.asarray(g)[keep] != 0)


@pytest.mark.parametrize("mode", rotating_modes())
def test_stop_gradient_gives_zero(mode):
    x = rand(3, 4)
    g = run_mode(mode, tg.grad(lambda x: tg.sum(tg.stop_gradient(x) ** 2)), (x,))
    np.testing.assert_array_equal(g, np.zeros_like(x))
    # Only the other path contributes: d/dx sum(sg(x) * x) = x, not 2x.
    g = run_mode(mode, tg.grad(lambda x: tg.sum(tg.stop_gradient(x) * x)), (x,))
    np.testing.assert_allclose(g, x, rtol=1e-6)
    check_grad(
        lambda x: tg.sum(F.softmax(tg.stop_gradient(x) * x)),
        lambda x: jnp.sum(jax.nn.softmax(lax.stop_gradient(x) * x)),
        (x,),
        mode,
    )


# -- second order ---------------------------------------------------------------------


def _scalar_model(s, a, b):
    return tg.sum(F.softmax(tg.tanh(s * a) @ b, axis=-1) * b[0])


def _scalar_model_jax(s, a, b):
    return jnp.sum(jax.nn.softmax(jnp.tanh(s * a) @ b, axis=-1) * b[0])


@pytest.mark.parametrize("mode", rotating_modes())
def test_second_derivative_through_matmul_softmax(mode):
    s, a, b = np.float32(0.7), rand(3, 4), rand(4, 4)
    want = jax.grad(jax.grad(_scalar_model_jax))(s, a, b)
    got = run_mode(mode, tg.grad(tg.grad(_scalar_model)), (s, a, b))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", rotating_modes())
def test_hessian_vector_products(mode):
    # grad of <grad f, v> for f through einsum, dot_general, conv2d and log_softmax. Its
    # own data (not the module's RNG, whose state depends on which tests ran before in
    # this worker): second-order float32 results of magnitude ~300 differ from JAX's in
    # the fourth digit for some draws, so the data is fixed and the tolerance relative.
    rng = np.random.default_rng(442)
    x, v = (rng.normal(size=(2, 3, 6, 6)).astype(np.float32) for _ in range(2))
    w = (rng.normal(size=(4, 3, 3, 3)) * 0.3).astype(np.float32)
    m = rng.normal(size=(4, 5)).astype(np.float32)

    def f(x, w, m):
        y = F.conv2d(x, w, padding=1)
        z = tg.einsum("nchw,cd->nhwd", y, m)
        return tg.sum(F.log_softmax(z) * z)

    def f_jax(x, w, m):
        y = lax.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        z = jnp.einsum("nchw,cd->nhwd", y, m)
        return jnp.sum(jax.nn.log_softmax(z) * z)

    def hvp(x, w, m, v):
        return tg.sum(tg.grad(f)(x, w, m) * v)

    def hvp_jax(x, w, m, v):
        return jnp.sum(jax.grad(f_jax)(x, w, m) * v)

    check_grad(hvp, hvp_jax, (x, w, m, v), mode, argnums=(0, 1, 2), rtol=1e-3, atol=1e-3)


# -- the backward graph as IR ---------------------------------------------------------


def _convnet(w, x):
    y = F.conv2d(x, w, stride=2, padding=1, groups=1)
    return tg.sum(F.avg_pool2d(F.max_pool2d(y, 2), 1) ** 2)


def test_backward_graph_is_readable_ir():
    g = tg.trace(tg.grad(_convnet), tg.spec((4, 3, 3, 3)), tg.spec((2, 3, 8, 8)))
    ops = [n.op for n in g.nodes]
    assert "conv_general" in ops and "max_pool2d_grad" in ops and "avg_pool2d_grad" in ops
    text = str(g)
    assert "grad/conv2d" in text  # backward nodes carry the scope of their forward op
    w, x = rand(4, 3, 3, 3), rand(2, 3, 8, 8)
    want = jax.grad(_convnet_jax)(w, x)
    for graph in (g, tg.Graph.from_json(g.to_json()), tg.parse(text)):
        np.testing.assert_allclose(np.asarray(graph(w, x)), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(graph.interpret(w, x)), want, rtol=1e-4, atol=1e-5)


def _convnet_jax(w, x):
    y = lax.conv_general_dilated(
        x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    y = lax.reduce_window(y, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return jnp.sum(y**2)
