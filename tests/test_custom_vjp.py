"""Custom derivatives: `tg.custom_vjp` (JAX's API) in every mode against `jax.custom_vjp`
of the same function, the ``custom_vjp`` node through print/parse/JSON/file round trips,
and `tg.from_jax` keeping JAX's ``custom_jvp``/``custom_vjp`` rules (relu at 0, sinc at 0,
softplus and log_sigmoid at the infinities, a clipped gradient, optax and Flax code)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import vjp_graph
from tracegraph.ir.parser import text_constants

from op_matrix import MODES, run_mode, rotating_modes

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def close(got, want, rtol=1e-5, atol=1e-6):
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol, equal_nan=True)


# every mode of tracegraph: tg.jit, the interpreter, define-by-run, and plain arrays
ALL_MODES = (*MODES, "plain")


def run(mode, fn, args):
    if mode == "plain":
        return fn(*args)
    return run_mode(mode, fn, args)


# -- one function, written twice: tracegraph and JAX ----------------------------------------------


def clipped_sin(np_, custom_vjp, clip):
    """sin(x) * y whose gradient in x is clipped to [-0.5, 0.5] (deliberately not the true
    derivative), with pytree residuals."""

    @custom_vjp
    def f(x, y):
        return np_.sin(x) * y

    def fwd(x, y):
        return f(x, y), {"cos": np_.cos(x), "y": y, "parts": (np_.sin(x),)}

    def bwd(res, g):
        dx = clip(g * res["cos"] * res["y"], -0.5, 0.5)
        return dx, g * res["parts"][0]

    f.defvjp(fwd, bwd)
    return f


TG_SIN = clipped_sin(tg, tg.custom_vjp, tg.clip)
JAX_SIN = clipped_sin(jnp, jax.custom_vjp, jnp.clip)
X, Y = rand(4, 3) * 2, rand(4, 3) * 2


def _loss(f):
    return lambda x, y: (f(x, y) * 3.0).sum()


@pytest.mark.parametrize("mode", ALL_MODES)
def test_values_and_custom_gradient(mode):
    close(run(mode, TG_SIN, (X, Y)), JAX_SIN(X, Y))
    got = run(mode, tg.grad(_loss(TG_SIN), argnums=(0, 1)), (X, Y))
    want = jax.grad(_loss(JAX_SIN), argnums=(0, 1))(X, Y)
    close(got, want)
    assert np.abs(np.asarray(got[0])).max() <= 0.5 + 1e-6  # the clipped rule, not 3 y cos x


def test_backward_on_tape_tensors():
    x, y = tg.tensor(X, requires_grad=True), tg.tensor(Y, requires_grad=True)
    _loss(TG_SIN)(x, y).backward()
    want = jax.grad(_loss(JAX_SIN), argnums=(0, 1))(X, Y)
    close((x.grad, y.grad), want)


def test_gradient_tape():
    x = tg.Variable(X)
    with tg.GradientTape() as tape:
        loss = _loss(TG_SIN)(x, Y)
    close(tape.gradient(loss, x), jax.grad(_loss(JAX_SIN))(X, Y))


def test_backward_graph_shows_the_rule():
    g = tg.trace(tg.grad(_loss(TG_SIN)), X, Y)
    ops = [n.op for n in g.nodes]
    assert ops.count("custom_vjp") == 1 and "clip" in ops
    clip = next(n for n in g.nodes if n.op == "clip")
    assert clip.location.startswith("test_custom_vjp.py:")  # the line in bwd
    text = str(tg.trace(TG_SIN, X, Y))
    for part in ("custom_vjp(", "fn = graph", "fwd = graph", "bwd = graph"):
        assert part in text, text


# -- pytrees, nondiff_argnums, None and integer cotangents --------------------------------------------


def pytree_fn(np_, custom_vjp):
    @functools.partial(custom_vjp, nondiff_argnums=(0, 3))
    def f(act, params, x, scale):
        h = act(x @ params["w"] + params["b"])
        return {"h": h * scale, "aux": (np_.sum(h), x * 2.0)}

    def fwd(act, params, x, scale):
        out = f(act, params, x, scale)
        return out, (x, params["w"], out["h"])

    def bwd(act, scale, res, ct):
        x, w, h = res
        d = ct["h"] * scale * (1.0 - (h / scale) ** 2) + ct["aux"][0]
        return {"w": x.T @ d, "b": None}, d @ w.T + 2.0 * ct["aux"][1]

    f.defvjp(fwd, bwd)
    return f


TG_TREE, JAX_TREE = pytree_fn(tg, tg.custom_vjp), pytree_fn(jnp, jax.custom_vjp)
PARAMS = {"w": rand(3, 2), "b": rand(2)}
XT = rand(5, 3)


def _tree_loss(f, act):
    def loss(params, x):
        out = f(act, params, x, 1.5)
        return (out["h"] ** 2).sum() + out["aux"][0] + (out["aux"][1] * x).sum()

    return loss


@pytest.mark.parametrize("mode", ALL_MODES)
def test_pytrees_and_nondiff_argnums(mode):
    close(run(mode, lambda p, x: TG_TREE(tg.tanh, p, x, 1.5), (PARAMS, XT)),
          JAX_TREE(jnp.tanh, PARAMS, XT, 1.5))
    got = run(mode, tg.grad(_tree_loss(TG_TREE, tg.tanh), argnums=(0, 1)), (PARAMS, XT))
    want = jax.grad(_tree_loss(JAX_TREE, jnp.tanh), argnums=(0, 1))(PARAMS, XT)
    close(got, want, 1e-4, 1e-5)
    np.testing.assert_array_equal(np.asarray(got[0]["b"]), 0.0)  # bwd said None


@pytest.mark.parametrize("mode", rotating_modes())
def test_integer_argument_and_keyword_call(mode):
    @tg.custom_vjp
    def f(x, n, k=2.0):
        return x * tg.astype(n, "float32") * k

    f.defvjp(lambda x, n, k: (f(x, n, k), n), lambda n, g: (g * 10.0, None, None))
    loss = lambda x, n: f(x, n=n).sum()  # noqa: E731
    n = np.arange(3, dtype=np.int32)
    close(run(mode, loss, (X[0], n)), (X[0] * n * 2.0).sum())
    close(run(mode, tg.grad(loss), (X[0], n)), np.full(3, 10.0, np.float32))


@pytest.mark.parametrize("mode", rotating_modes())
def test_used_twice_and_inside_control_flow(mode):
    def body(c, x):
        return c + TG_SIN(x, x * c).sum(), TG_SIN(x, 2.0 * c + x)

    def loss(x, y):
        c, ys = tg.scan(body, 0.5, x)
        z = tg.cond(c > 0, lambda v: TG_SIN(v, y), lambda v: -TG_SIN(v, y), x)
        return c + ys.sum() + z.sum() + TG_SIN(x, y).sum() + TG_SIN(y, x).sum()

    def jloss(x, y):
        def jbody(c, x):
            return c + JAX_SIN(x, x * c).sum(), JAX_SIN(x, 2.0 * c + x)

        c, ys = jax.lax.scan(jbody, 0.5, x)
        z = jax.lax.cond(c > 0, lambda v: JAX_SIN(v, y), lambda v: -JAX_SIN(v, y), x)
        return c + ys.sum() + z.sum() + JAX_SIN(x, y).sum() + JAX_SIN(y, x).sum()

    x, y = X * 0.3, Y * 0.3
    close(run(mode, loss, (x, y)), jloss(x, y), 1e-4, 1e-5)
    close(run(mode, tg.grad(loss, argnums=(0, 1)), (x, y)), jax.grad(jloss, argnums=(0, 1))(x, y), 1e-4, 1e-5)


def test_used_twice_is_two_nodes_sharing_graphs():
    g = tg.trace(lambda x, y: TG_SIN(x, y) + TG_SIN(y, x), X, Y)
    nodes = [n for n in g.nodes if n.op == "custom_vjp"]
    assert len(nodes) == 2
    assert all(nodes[0].attrs[k] is nodes[1].attrs[k] for k in ("fn", "fwd", "bwd"))


@pytest.mark.parametrize("mode", rotating_modes())
def test_closure_is_an_operand_without_cotangent(mode):
    # as in JAX, the rule differentiates the explicit arguments only
    def loss(x, w):
        @tg.custom_vjp
        def f(x):
            return x * w

        f.defvjp(lambda x: (f(x), None), lambda _, g: (g * 7.0,))
        return f(x).sum()

    close(run(mode, loss, (X, Y)), (X * Y).sum(), 1e-5, 1e-5)
    gx, gw = run(mode, tg.grad(loss, argnums=(0, 1)), (X, Y))
    close((gx, gw), (np.full_like(X, 7.0), np.zeros_like(Y)))


@pytest.mark.parametrize("mode", rotating_modes())
def test_second_order_differentiates_the_rule(mode):
    def make(np_, custom_vjp):
        @custom_vjp
        def f(x):
            return np_.sin(x)

        f.defvjp(lambda x: (f(x), x), lambda x, g: (2.0 * g * np_.cos(x) * x,))
        return f

    f, fj = make(tg, tg.custom_vjp), make(jnp, jax.custom_vjp)
    x = X[0]
    d2 = tg.grad(lambda v: tg.grad(lambda u: f(u).sum())(v).sum())
    d2j = jax.grad(lambda v: jax.grad(lambda u: fj(u).sum())(v).sum())
    close(run(mode, d2, (x,)), d2j(x))


def test_eager_reuses_the_node_graphs():
    run_ = tg.eager(tg.grad(_loss(TG_SIN)))
    run_(X, Y)
    first = [n.attrs["fn"] for n in run_.last_graph.nodes if n.op == "custom_vjp"]
    run_(X + 1, Y)
    second = [n.attrs["fn"] for n in run_.last_graph.nodes if n.op == "custom_vjp"]
    assert first and first[0] is second[0]


# -- round trips ---------------------------------------------------------------------------------------


def _custom_grad_of(graph, x, y):
    """The gradient of ``sum(3 * graph(x, y))`` in x, by differentiating the graph itself."""
    ct = np.full(graph.outputs[0].type.shape, 3.0, np.float32)
    return vjp_graph(graph).interpret(x, y, ct)[0]


def test_round_trips_keep_the_rule(tmp_path):
    g = tg.trace(TG_SIN, X, Y)
    text = str(g)
    tg.save(g, tmp_path / "f.tg")
    trips = {
        "text": tg.parse(text, text_constants(g)),
        "json": tg.Graph.from_json(g.to_json()),
        "file": tg.load(tmp_path / "f.tg"),
    }
    want = jax.grad(_loss(JAX_SIN))(X, Y)
    for name, h in trips.items():
        assert str(h) == text, name
        close(h(X, Y), JAX_SIN(X, Y))
        close(_custom_grad_of(h, X, Y), want)
        close(h.interpret(X, Y), JAX_SIN(X, Y))


def test_shape_rule_rejects_a_bwd_of_the_wrong_type():
    node = next(n for n in tg.trace(TG_SIN, X, Y).nodes if n.op == "custom_vjp")
    other = tg.trace(TG_SIN, X[:2], Y[:2])
    wrong = next(n for n in other.nodes if n.op == "custom_vjp").attrs["bwd"]
    with pytest.raises(tg.ShapeError, match="custom_vjp bwd"):
        tg.core.bind("custom_vjp", X, Y, fn=node.attrs["fn"], fwd=node.attrs["fwd"], bwd=wrong)


# -- tg.from_jax keeps JAX's custom rules ----------------------------------------------------------------

EDGES = np.array([-np.inf, -3.0, -1.0, 0.0, 0.0, 1e-30, 2.0, np.inf], np.float32)


@jax.custom_vjp
def _clip_gradient(x):
    return x * 2.0


_clip_gradient.defvjp(lambda x: (x * 2.0, None), lambda _, g: (jnp.clip(g, -0.25, 0.25),))


def _softmax_custom_jvp(x):
    return jax.nn.softmax(x.reshape(2, 4), axis=-1)[:, 1].sum()


def _f32(*xs):
    return np.array(xs, np.float32)


def _softplus_log_sigmoid(x):  # finite gradients at the infinities, as JAX's rules give
    return jnp.sum(jnp.where(jnp.isfinite(x), jax.nn.softplus(x) + jax.nn.log_sigmoid(x), 0.0))


JAX_CASES = [
    ("relu", lambda x: jnp.sum(jax.nn.relu(x) * jnp.arange(8.0)), _f32(-1, 0, 0, 2, 0, 3, -2, 0)),
    ("relu6", lambda x: jnp.sum(jax.nn.relu6(x)), _f32(-1, 0, 6, 7, 3, 0, 6, 2)),
    ("sinc-at-0", lambda x: jnp.sum(jnp.sinc(x)), _f32(0, 0.5, -1, 0, 2, 0, 0.25, 3)),
    ("softplus-log-sigmoid", _softplus_log_sigmoid, EDGES),
    ("logsumexp-neg-inf", lambda x: jax.nn.logsumexp(x.reshape(2, 4), axis=1).sum(),
     _f32(-np.inf, -np.inf, 1, 2, -np.inf, 0, -np.inf, -np.inf)),
    ("clipped-custom-vjp", lambda x: jnp.sum(_clip_gradient(x) ** 2), EDGES[1:-1]),
    ("optax-sigmoid-bce", None, _f32(-3, 0, 40, -40, 1, 0.5, -0.5, 2)),
]


def _optax_bce(x):
    import optax

    labels = jnp.array([0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0])
    return optax.sigmoid_binary_cross_entropy(x, labels).sum()


# each case in one mode by default (the modes taking turns), in every mode with -m slow
@pytest.mark.parametrize("name,fn,x,mode", [
    pytest.param(*case, mode, id=f"{case[0]}-{mode}",
                 marks=() if j == i % len(ALL_MODES) else (pytest.mark.slow,))
    for i, case in enumerate(JAX_CASES) for j, mode in enumerate(ALL_MODES)
])
def test_from_jax_gradients_match_jax(name, fn, x, mode):
    fn = fn or _optax_bce
    got = run(mode, tg.grad(tg.from_jax(fn, name=name)), (x,))
    close(got, jax.grad(fn)(x))


def test_from_jax_softmax_with_its_custom_jvp():
    with jax.softmax_custom_jvp(True):
        x = _f32(0, -np.inf, 1, 2, -np.inf, -np.inf, 0.5, 1)
        want = jax.grad(_softmax_custom_jvp)(x)
        for mode in ALL_MODES:
            close(run(mode, tg.grad(tg.from_jax(_softmax_custom_jvp)), (x,)), want)


def test_from_jax_relu_gradient_at_zero_and_its_printed_rule():
    relu = tg.from_jax(jax.nn.relu)
    x = np.zeros(3, np.float32)
    np.testing.assert_array_equal(tg.grad(lambda v: tg.sum(relu(v)))(x), 0.0)
    g = tg.trace(tg.grad(lambda v: tg.sum(relu(v))), x)
    ops = [n.op for n in g.nodes]
    assert "select" in ops and "gt" in ops, g  # the rule: select(x > 0, ct, 0)
    assert "custom_vjp" in str(tg.trace(lambda v: relu(v), x))


def test_from_jax_second_order_uses_nested_rules():
    sinc = tg.from_jax(jnp.sinc)
    x = np.array([0.0, 0.5, 1.0], np.float32)
    d2 = tg.grad(lambda v: tg.grad(lambda u: tg.sum(sinc(u)))(v).sum())
    d2j = jax.grad(lambda v: jax.grad(lambda u: jnp.sum(jnp.sinc(u)))(v).sum())
    close(tg.jit(d2)(x), d2j(x), 1e-4, 1e-5)


def test_from_jax_linear_solves_keep_the_matrix_gradient():
    """custom_linear_solve (jnp.linalg.solve, inv, jax.scipy.sparse.linalg.cg) computes
    its value through a solve that reads the matrix under stop_gradient: the matrix's
    gradient is JAX's implicit one, kept as the node's rule (it was zero when only the
    solve computation was converted); second order too."""
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(4, 4)) + 4 * np.eye(4)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    solvers = {
        "solve": lambda a, b: jnp.linalg.solve(a, b),
        "inv": lambda a, b: jnp.linalg.inv(a) @ b,
        "cg": lambda a, b: jax.scipy.sparse.linalg.cg(lambda v: a @ (a.T @ v) + v, b)[0],
    }
    for i, (name, solve) in enumerate(solvers.items()):
        def loss(a, b, solve=solve):
            return (solve(a, b) ** 2).sum()

        want = jax.grad(loss, argnums=(0, 1))(a, b)
        got = run(ALL_MODES[i % len(ALL_MODES)], tg.grad(tg.from_jax(loss, name=name), argnums=(0, 1)), (a, b))
        for g, w in zip(got, want):
            close(g, w, 2e-4, 2e-5)
        assert float(np.abs(np.asarray(got[0])).max()) > 1e-3  # the matrix's gradient is there
    second = jax.grad(lambda a: jax.grad(lambda m: (jnp.linalg.solve(m, b) ** 2).sum())(a).sum())(a)
    solve = tg.from_jax(lambda m: (jnp.linalg.solve(m, b) ** 2).sum())
    close(tg.jit(tg.grad(lambda a: tg.sum(tg.grad(solve)(a))))(a), second, 1e-3, 1e-4)


def test_from_jax_flax_relu_at_zero_preactivation():
    nn = pytest.importorskip("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.relu(nn.Dense(4)(x)))

    model = MLP()
    x = np.zeros((2, 3), np.float32)  # zero inputs and zero biases: relu at exactly 0
    params = model.init(jax.random.key(0), x)
    apply = tg.from_jax(model.apply)
    loss = lambda p, x: tg.sum(apply(p, x) ** 2 + apply(p, x))  # noqa: E731
    jloss = lambda p, x: jnp.sum(model.apply(p, x) ** 2 + model.apply(p, x))  # noqa: E731
    want = jax.grad(jloss)(params, x)
    for mode in MODES:
        close(run(mode, tg.grad(loss), (params, x)), want)
