"""The primitive tables of tg.from_jax (`tracegraph.interop.rules`): every public JAX
primitive has a rule or a declared reason, the tables are keyed on primitive objects and
do not overlap, converting a declared primitive reports its name and reason instead of
dropping it, and the rules for the less common primitives against JAX itself."""

import jax
import jax.extend.core as jcore
import jax.extend.core.primitives as prims
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax._src.lax.control_flow.conditionals import platform_index_p  # no public export
from jax.ad_checkpoint import checkpoint_name
from jax.extend.core import Primitive

import tracegraph as tg
from tracegraph.interop import missing_primitives
from tracegraph.interop.rules import NOT_YET_SUPPORTED, RULES, Rule
from tracegraph.interop.rules._rule import RuleTable

from op_matrix import MODES, run_mode, modes_taking_turns

RNG = np.random.default_rng(0)
X = RNG.uniform(-2.0, 2.0, size=(3, 4)).astype(np.float32)


def public_primitives() -> set:
    """Every Primitive that jax.extend.core.primitives exposes, and every ``*_p``
    attribute of jax.lax that is a Primitive."""
    found = {v for n in dir(prims) if isinstance(v := getattr(prims, n), Primitive)}
    found |= {
        v for n in dir(lax) if n.endswith("_p") and isinstance(v := getattr(lax, n), Primitive)
    }
    return found


def primitives_in(fn, *args) -> set:
    """The primitives of fn's jaxpr, nested jaxprs included."""

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn.primitive
            for sub in jcore.jaxprs_in_params(eqn.params):
                yield from walk(sub)

    return set(walk(jax.make_jaxpr(fn)(*args).jaxpr))


# -- the tables ----------------------------------------------------------------------------


def test_every_public_primitive_has_a_rule_or_a_reason():
    public = public_primitives()
    assert len(public) > 100  # the collection itself works
    neither = sorted(p.name for p in public if p not in RULES and p not in NOT_YET_SUPPORTED)
    assert not neither, "JAX primitives in neither RULES nor NOT_YET_SUPPORTED: " + ", ".join(
        neither
    )


def test_the_tables_do_not_overlap():
    both = sorted(p.name for p in RULES.keys() & NOT_YET_SUPPORTED.keys())
    assert not both, both


def test_the_tables_are_keyed_on_primitive_objects():
    for table in (RULES, NOT_YET_SUPPORTED):
        assert all(isinstance(p, Primitive) for p in table), [
            p for p in table if not isinstance(p, Primitive)
        ]
    assert all(isinstance(r, Rule) and callable(r.convert) for r in RULES.values())
    assert RULES[lax.exp_p] is not None and "exp" not in RULES


def test_every_reason_is_one_nonempty_line():
    for p, why in NOT_YET_SUPPORTED.items():
        assert isinstance(why, str) and why.strip() and "\n" not in why, p.name


def test_a_rule_table_refuses_names_and_duplicates():
    table = RuleTable()
    with pytest.raises(TypeError, match="Primitive"):
        table.register("exp")(lambda ctx, eqn, x: x)
    table.register(lax.exp_p)(lambda ctx, eqn, x: x)
    with pytest.raises(ValueError, match="two rules"):
        table.register(lax.exp_p)(lambda ctx, eqn, x: x)


# -- what is not supported is reported, not dropped --------------------------------------------


def _one_device():
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])


def _zeta_in_jit(x):
    return jax.jit(lambda v: jax.scipy.special.zeta(v * v + 2.0, 1.5))(x) + 1.0


UNSUPPORTED = [
    ("optimization_barrier", lambda x: lax.optimization_barrier(x * 2.0) + 1.0,
     lax.optimization_barrier_p),
    ("checkpoint_name", lambda x: checkpoint_name(x * 2.0, "h") + 1.0, prims.name_p),
    ("zeta-in-jit", _zeta_in_jit, lax.zeta_p),
    ("bessel_i0e", lambda x: jax.scipy.special.i0e(x * x + 1.0), lax.bessel_i0e_p),
]


@pytest.mark.parametrize("name,fn,prim", UNSUPPORTED, ids=[c[0] for c in UNSUPPORTED])
def test_an_unsupported_primitive_is_reported_with_its_reason(name, fn, prim):
    assert prim in primitives_in(fn, X)
    f = tg.from_jax(fn, name=name)
    with pytest.raises(tg.TracingError) as e:
        tg.trace(f, X)
    assert f"{prim.name} (1 use): {NOT_YET_SUPPORTED[prim]}" in str(e.value), str(e.value)


def test_missing_primitives_gives_the_declared_reason():
    fn = UNSUPPORTED[0][1]
    closed = jax.make_jaxpr(fn)(X)
    why = NOT_YET_SUPPORTED[lax.optimization_barrier_p]
    assert missing_primitives(closed) == [("optimization_barrier", why, 1)]


def test_a_sharding_constraint_the_ir_cannot_name_is_reported():
    """A NamedSharding constraint becomes a sharding_constraint node (tests/test_sharding.py);
    one to a single device's sharding is refused with its reason, never dropped."""
    f = tg.from_jax(lambda x: lax.with_sharding_constraint(x * 2.0, _one_device()) + 1.0)
    with pytest.raises(tg.TracingError, match=r"sharding_constraint \(1 use\): a sharding "
                       r"constraint to a SingleDeviceSharding"):
        tg.trace(f, X)


def test_device_put_to_a_device_is_reported():
    f = tg.from_jax(lambda x: jax.device_put(x * 2.0, jax.devices()[0]))
    with pytest.raises(tg.TracingError, match=r"device_put \(1 use\): device_put to a device"):
        tg.trace(f, X)


def test_debug_print_is_reported():
    def fn(x):
        jax.debug.print("x = {}", x)
        return x * 2.0

    with pytest.raises(tg.TracingError, match=r"debug_print \(1 use\): .*jax\.debug\.print"):
        tg.trace(tg.from_jax(fn), X)


# -- the less common rules against JAX -----------------------------------------------------------


def _hand_made_call(prim):
    """A function whose jaxpr calls ``jnp.sin(v) * 2`` through ``prim`` (closed_call or
    the untyped call): no public JAX API stages these, so the jaxpr is rewritten."""
    outer = jax.make_jaxpr(lambda v: jax.jit(lambda u: jnp.sin(u) * 2.0)(v) + 1.0)(X)
    eqn = outer.eqns[0]
    inner = eqn.params["jaxpr"]
    callee = inner if prim is prims.closed_call_p else inner.jaxpr
    assert prim is prims.closed_call_p or not inner.consts
    call = eqn.replace(primitive=prim, params=dict(call_jaxpr=callee))
    closed = outer.replace(jaxpr=outer.jaxpr.replace(eqns=[call, *outer.eqns[1:]]))
    run = jcore.jaxpr_as_fun(closed)
    return lambda x: run(x)[0]


def _cg(a, b):
    spd = a @ a.T + 4.0 * jnp.eye(3)
    x, _ = jax.scipy.sparse.linalg.cg(spd, b, maxiter=10)
    return x


def _diagonal_solve(d, b):
    # matvec closes over d, solve over 1 / d: the solve's constants follow matvec's
    inv = 1.0 / d
    return lax.custom_linear_solve(lambda v: d * v, b, lambda mv, r: r * inv, symmetric=True)


def _cumulative(x):
    def total(v):
        return (jnp.cumprod(v, axis=1) + lax.cummax(v, axis=0, reverse=True) * lax.cummin(v, axis=1)
                + lax.cumlogsumexp(v, axis=1, reverse=True)).sum()

    return (jnp.cumprod(x, axis=0), lax.cumprod(x.at[1, 1].set(0.0), axis=1, reverse=True),
            lax.cummax(x, axis=1), lax.cummin(x, axis=0, reverse=True), lax.cumlogsumexp(x, axis=1),
            jax.grad(total)(x))


def _special(x):
    a, v = x * x + 0.5, jnp.abs(x) + 0.25
    sp = jax.scipy.special
    return (sp.gammaln(x), sp.digamma(a), sp.polygamma(2, a), sp.gammainc(a, v), sp.gammaincc(a, v),
            lax.igamma_grad_a(a, v), jnp.nextafter(x, 0.0), jnp.spacing(x),
            jax.grad(lambda b: (sp.gammaln(b) + sp.digamma(b) + sp.gammainc(b, v)).sum())(a))


def _pool_gradients(x):
    img = jnp.tile(x, (2, 2))[None, :, :, None] * jnp.ones((2, 1, 1, 3))  # (2, 6, 8, 3)
    ties = jnp.round(img)  # integer values: windows with several maxima (JAX: the first)

    def rw(v, op, init, dims, strides, padding):
        return lax.reduce_window(v, init, op, dims, strides, padding)

    def max_pool(v, window, strides, padding="VALID"):  # flax.linen.max_pool, NHWC
        return rw(v, lax.max, -jnp.inf, (1, *window, 1), (1, *strides, 1), padding)

    grad = jax.grad
    return (
        grad(lambda v: (max_pool(v, (2, 2), (2, 2)) ** 2).sum())(img),
        grad(lambda v: (max_pool(v, (3, 3), (2, 1), "SAME") * v[:, :3, :, :]).sum())(ties),
        grad(lambda v: rw(v, lax.max, -jnp.inf, (1, 1, 2, 3), (1, 1, 2, 2), "VALID").sum())(
            jnp.transpose(ties, (0, 3, 1, 2))),  # NCHW
        grad(lambda v: rw(v, lax.min, jnp.inf, (2, 2), (1, 2), ((1, 0), (0, 1))).sum())(x),
        grad(lambda v: rw(v, lax.max, -jnp.inf, (1, 3), (1, 1), "SAME").sum())(ties[0, :, :, 0]),
    )


def _batched_while(x):
    """vmap of a while loop whose trip count depends on the element: JAX's while with a
    batched (bool array) predicate (jax.scipy.special.expi is one: the census covers it)."""
    def one(v):
        return lax.while_loop(lambda c: c[1] < v * 10, lambda c: (c[0] * 1.5, c[1] + 1.0), (v, 0.0))

    return jax.vmap(jax.vmap(one))(x)


CASES = [
    ("batched-while", _batched_while, (X,), lax.while_p),
    ("tile", lambda x: (jnp.tile(x, (2, 1)), lax.tile(x, (1, 3)), jnp.tile(x[0], 2)), (X,),
     lax.tile_p),
    ("unstack", lambda x: (*jnp.unstack(x), *jnp.unstack(x, axis=1)), (X,), lax.unstack_p),
    ("add_any", lambda x: jax.grad(lambda v: jnp.sum(v * v * jnp.sin(v)))(x), (X,),
     prims.add_jaxvals_p),
    ("copy", lambda x: jnp.copy(x) * 2.0, (X,), lax.copy_p),
    ("device_put", lambda x: jax.device_put(x * 2.0) + 1.0, (X,), lax.device_put_p),
    ("closed_call", _hand_made_call(prims.closed_call_p), (X,), prims.closed_call_p),
    ("call", _hand_made_call(prims.call_p), (X,), prims.call_p),
    ("linear_solve", _diagonal_solve, (X[0] ** 2 + 1.0, X[1]), lax.linear_solve_p),
    ("cg", _cg, (X[:, :3], X[0, :3]), lax.linear_solve_p),
    ("inverse-trig", lambda x: (jnp.arcsin(x / 3), jnp.arccos(x / 3), jnp.arctan(x),
                                jnp.arcsinh(x), jnp.arccosh(x * x + 1.5), jnp.arctanh(x / 3)),
     (X,), lax.asin_p),
    ("atan2-cbrt", lambda x: (jnp.arctan2(x, x[::-1] + 0.5), jnp.cbrt(x), jax.grad(
        lambda v: jnp.sum(jnp.arctan2(v, 2.0) + jnp.cbrt(v * v + 1.0)))(x)), (X,), lax.atan2_p),
    ("sort", lambda x: (jnp.sort(x, axis=0), jnp.argsort(x), jnp.argsort(x, descending=True),
                        jnp.sort(x, descending=True), lax.top_k(x, 2), lax.top_k(x.T, 1)),
     (X,), lax.sort_p),
    ("cumulative", _cumulative, (X,), lax.cummax_p),
    ("special", _special, (X,), lax.igamma_p),
    ("pool-gradients", _pool_gradients, (X,), lax.select_and_scatter_add_p),
    ("bits", lambda i: (i & 6, i | 9, i ^ 5, ~i, i << 2, i >> 1, lax.shift_right_logical(i, 1),
                        lax.population_count(i), jnp.uint8(200) >> jnp.uint8(3), lax.clz(i),
                        lax.mulhi(i * 300_000_000, i + 7)),
     (np.arange(-6, 6, dtype=np.int32).reshape(3, 4),), lax.shift_right_logical_p),
]


_OOB = np.array([0, 2, 2, -1, 7, -9], np.int32)  # repeats, negative, out of bounds
_IDS = np.array([[1, 3, 3], [9, 0, 1]], np.int32)
_SEGMENTS = np.array([0, 2, 0], np.int32)


def _every_scatter(x):
    return (
        x.at[0, _OOB].set(5.0),
        x.at[_OOB].add(1.0),
        x.at[:, 1].subtract(x[0, :3]),
        x.at[1, _OOB].multiply(2.0, mode="clip"),
        x.at[_OOB, 1:].min(0.0),
        x.at[_OOB].max(0.5, mode="clip"),
        x.at[np.array([True, False, True])].set(0.0),
        x.at[_OOB % 3, _OOB % 4].add(x[0, 0], mode="promise_in_bounds"),
        lax.scatter(x, jnp.array([[-1], [1], [4]]), jnp.ones((3, 4)),
                    lax.ScatterDimensionNumbers((1,), (0,), (0,))),  # lax: -1 is out of bounds
    )


def _gather_gradients(x):
    emb = jnp.tile(x, (4, 1))[:10]  # (10, 4)
    return (
        jax.grad(lambda b: jnp.take_along_axis(b, jnp.array([[0, 3], [1, 1], [2, 2]]), 1).sum())(x),
        jax.grad(lambda e: (e[_IDS] ** 2).sum())(emb),  # an embedding lookup's gradient
        jax.grad(lambda b: (b[_OOB % 3, 1:] * 2.0).sum())(x),
    )


def _segments(x):
    return (
        jax.ops.segment_sum(x, _SEGMENTS, num_segments=4),
        jax.ops.segment_max(x, _SEGMENTS, num_segments=4),
        jax.ops.segment_min(x[:, 0], jnp.array([1, 1, 7]), num_segments=3),  # 7: dropped
        jax.ops.segment_prod(x.T, jnp.array([0, 1, 0, 1]), num_segments=2),
    )


def _vmapped_slices(x):
    starts = jnp.array([0, 1, 3])
    return (
        jax.vmap(lambda r, i: lax.dynamic_slice(r, (i,), (2,)))(x, starts),  # wide windows
        jax.vmap(lambda i: lax.dynamic_slice(x, (i, 1), (2, 2)))(starts),
        jax.vmap(lambda r, i: lax.dynamic_update_slice(r, jnp.ones(2), (i,)))(x, starts),
        jax.vmap(lambda r, i: r.at[i].set(-1.0))(x, jnp.array([0, 1, 5])),
    )


# every float class of XLA's total order: NaNs of both signs, infinities, signed zeros,
# normals and subnormals, each against each
_ORDERED = np.array([np.nan, -np.nan, -np.inf, np.inf, 0.0, -0.0, 1.5, -1.5, 1e-40, -1e-40],
                    np.float32)
_XS, _YS = np.repeat(_ORDERED, 10), np.tile(_ORDERED, 10)


def _total_order(x, y):
    """lax's total-order comparisons (sort's and searchsorted's comparators) and the jnp
    functions they serve; of floats of every width and of integers."""
    def compare(a, b):
        return lax.lt_to_p.bind(a, b), lax.le_to_p.bind(a, b), lax.eq_to_p.bind(a, b)

    xp, fp = jnp.array([-1.0, 0.0, 0.5, 2.0]), jnp.array([3.0, -1.0, 2.0, 0.5])
    v = jnp.nan_to_num(x[:20], posinf=3.0, neginf=-3.0)
    return (*compare(x, y), *compare(x.astype(jnp.bfloat16), y.astype(jnp.bfloat16)),
            *compare(x.astype(jnp.float16), y.astype(jnp.float16)),
            *compare(jnp.nan_to_num(x).astype(jnp.int8), jnp.nan_to_num(y).astype(jnp.int8)),
            jnp.searchsorted(xp, x), jnp.searchsorted(xp, x, side="right"), jnp.digitize(x, xp),
            jnp.interp(v, xp, fp), jnp.histogram(v, bins=3, range=(-2.0, 2.0))[0],
            jax.grad(lambda a, b: jnp.interp(a, xp, b).sum(), argnums=(0, 1))(v, fp))


def _parity(b):
    return (jnp.logical_xor.reduce(b, axis=1), jnp.logical_xor.reduce(b, axis=0),
            lax.reduce_xor_p.bind(b, axes=(0, 1)))


def _bitwise_reductions(i):
    """reduce_and / reduce_or / reduce_xor of integers, bit by bit, signed and unsigned
    of every width (the sign bit included)."""
    reds = (jnp.bitwise_and.reduce, jnp.bitwise_or.reduce, jnp.bitwise_xor.reduce)
    return [red(i.astype(dt), axis=k % 2) for k, (dt, red) in enumerate(
        (dt, red) for dt in (jnp.int8, jnp.uint8, jnp.int32, jnp.uint32) for red in reds)]


def _lexsorts(k, x):
    """Sorts over several keys (lax.sort's num_keys > 1): jnp.lexsort on every axis with
    ties, NaNs and signed zeros, and the gradient of a payload sorted by two keys (the
    set functions built on it are in the jax.numpy census)."""
    a, b = jnp.floor(x * 2.0), jnp.where(x > 0.5, jnp.nan, jnp.where(x < -0.5, -0.0, 0.0))
    return (jnp.lexsort((k, a, b)), jnp.lexsort((a, k), axis=0), jnp.lexsort((b, a), axis=1),
            jax.grad(lambda v: lax.sort((a.ravel(), k.ravel(), v * v), num_keys=2)[2][:5].sum())(x.ravel()))


def _platform_dependent(x):
    """lax.platform_dependent (jnp.diagonal and diag of a square matrix, corrcoef;
    slogdet's gradient; a user's own): the branch JAX picks for this backend."""
    m = x[:3, :3] @ x[:3, :3].T + 3.0 * jnp.eye(3)
    own = lax.platform_dependent(x, cpu=lambda v: v * 2.0, cuda=lambda v: v * 2.0, default=lambda v: v + v)
    return (jnp.diagonal(x), jnp.diag(x[0]), jnp.trace(x), jnp.corrcoef(x), own,
            jax.grad(lambda a: jnp.linalg.slogdet(a)[1] + jnp.diagonal(a).sum())(m))


CASES += [
    ("total-order", _total_order, (_XS, _YS), lax.lt_to_p),
    ("platform-dependent", _platform_dependent, (X,), platform_index_p),
    ("parity", _parity, (RNG.uniform(size=(3, 5)) > 0.5,), lax.reduce_xor_p),
    ("bitwise-reductions", _bitwise_reductions,
     (RNG.integers(-(2**31), 2**31, (4, 5)).astype(np.int64).astype(np.int32),), lax.reduce_and_p),
    ("lexsort", _lexsorts, (RNG.integers(0, 3, (3, 4)).astype(np.int32), X), lax.sort_p),
    ("scatter", _every_scatter, (X,), lax.scatter_p),
    ("scatter-add", lambda x: x.at[_OOB].add(x[:2, 1:].sum()), (X,), lax.scatter_add_p),
    ("scatter-sub", lambda x: x.at[_OOB, 2].subtract(1.5), (X,), lax.scatter_sub_p),
    ("scatter-mul", lambda x: x.at[1:, _OOB].multiply(-2.0), (X,), lax.scatter_mul_p),
    ("scatter-min", lambda x: x.at[_OOB].min(x[0]), (X,), lax.scatter_min_p),
    ("scatter-max", lambda x: x.at[_OOB].max(x[1]), (X,), lax.scatter_max_p),
    ("int-scatter", lambda i: (i.at[_OOB].add(3), i.at[1, _OOB].max(0), i.at[0].multiply(2)),
     (np.arange(-6, 6, dtype=np.int32).reshape(3, 4),), lax.scatter_add_p),
    ("gather-gradients", _gather_gradients, (X,), lax.scatter_add_p),
    ("segments", _segments, (X,), lax.scatter_max_p),
    ("vmapped-slices", _vmapped_slices, (X,), lax.scatter_p),
]


def _cholesky_solves(a, b, x):
    """Cholesky factors (lower, upper, batched) and triangular solves with every flag:
    jax.scipy.linalg.solve_triangular's (vectors and matrices, batch dims broadcast),
    lax's right-side solves, cho_solve, and jax.grad of a Gaussian log-likelihood."""
    spd = a @ jnp.swapaxes(a, -1, -2) + 4.0 * jnp.eye(4)
    low, up = jnp.linalg.cholesky(spd), jnp.linalg.cholesky(spd, upper=True)
    solve = jax.scipy.linalg.solve_triangular
    left = [solve(t, rhs, trans=trans, lower=lower, unit_diagonal=unit)
            for t, lower in ((low, True), (up, False)) for trans in (0, "T")
            for unit in (False, True) for rhs in (b, x)]
    b_rows = jnp.broadcast_to(b.T, (2, 3, 4))
    right = [lax.linalg.triangular_solve(t, b_rows, left_side=False, lower=lower, transpose_a=trans)
             for t, lower in ((low, True), (up, False)) for trans in (False, True)]
    cho = (jax.scipy.linalg.cho_solve((low, True), b), jax.scipy.linalg.cho_solve((up, False), x))
    diag = jnp.arange(4)

    def loglik(mu, cov):
        chol = jnp.linalg.cholesky(cov)
        z = solve(chol, x - mu, lower=True)
        return -0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(chol[..., diag, diag]))

    return low, up, left, right, cho, jax.grad(loglik, argnums=(0, 1))(0.1 * x, spd)


def _lu_solves(a, b, x):
    """jnp.linalg.solve (a vector, a matrix, batch dims broadcast), inv, det and slogdet
    (4 x 4: by LU; smaller ones have closed forms), and jax.grad through solve and
    slogdet (LU, solve's custom_linear_solve, and slogdet's custom_jvp)."""
    a = a + 2.0 * jnp.eye(4)  # well conditioned, with row swaps all the same
    solve = jnp.linalg.solve

    def loss(a, b):
        return jnp.sum(solve(a, b) ** 2) + jnp.sum(jnp.linalg.slogdet(a)[1])

    return (solve(a[0], x), solve(a, b), jnp.linalg.inv(a), jnp.linalg.det(a), jnp.linalg.slogdet(a),
            jax.grad(loss, argnums=(0, 1))(a, b))


_LINALG_RNG = np.random.default_rng(1)
CASES += [
    ("cholesky-solves", _cholesky_solves,
     tuple(_LINALG_RNG.uniform(-1.0, 1.0, s).astype(np.float32) for s in ((2, 4, 4), (4, 3), (4,))),
     prims.cholesky_p),
    ("multivariate_normal", lambda k, mu, cov: jax.random.multivariate_normal(k, mu, cov, (5,)),
     (np.asarray(jax.random.PRNGKey(3)), np.float32([1.0, -2.0, 0.5]),
      np.float32([[2.0, 0.3, -0.4], [0.3, 1.0, 0.2], [-0.4, 0.2, 1.5]])), prims.cholesky_p),
    ("lu-solves", _lu_solves,  # b square: inv and solve share their shapes (and compilations)
     tuple(_LINALG_RNG.uniform(-1.0, 1.0, s).astype(np.float32) for s in ((2, 4, 4), (4, 4), (4,))),
     prims.lu_p),
]


@pytest.mark.parametrize("name,fn,args,prim,mode", modes_taking_turns(CASES, [c[0] for c in CASES]))
def test_rule_matches_jax(name, fn, args, prim, mode):
    assert prim in primitives_in(fn, *args) and prim in RULES
    want = jax.jit(fn)(*args)
    got = run_mode(mode, tg.from_jax(fn, name=name), args)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == w.shape and np.asarray(g).dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


def _orthogonal_rows(k, shape):
    n = shape[-1] if shape else 1
    return jax.random.orthogonal(k, n, shape[:-1])[..., 0].reshape(shape)


def test_dead_code_never_blocks_conversion():
    """An unused draw (a Haiku model at dropout 0 draws and discards) or a dead equation
    in a scan body is pruned by JAX's own DCE before the check; a live one is still
    reported. (orthogonal: its qr has no tracegraph op.)"""
    key = jax.random.PRNGKey(0)

    def dead_split(k, x):
        _orthogonal_rows(k, x.shape)
        return x * 2.0

    def dead_in_scan(k, xs):
        def body(c, x):
            _orthogonal_rows(jax.random.fold_in(k, 3), ())
            return c + jnp.sum(x), x * 2.0

        return lax.scan(body, 0.0, xs)

    for fn in (dead_split, dead_in_scan):
        want = jax.jit(fn)(key, X)
        got = tg.jit(tg.from_jax(fn))(key, X)
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
        assert "random" not in str(tg.trace(tg.from_jax(fn), key, X))
    live = tg.from_jax(lambda k, x: x * _orthogonal_rows(k, x.shape))
    with pytest.raises(tg.TracingError, match=r"qr \("):
        tg.trace(live, key, X)


def test_sort_and_top_k_gradients_at_ties_follow_jax():
    x = np.array([[2.0, 1.0, 2.0, 0.5, 1.0], [3.0, 3.0, -1.0, 3.0, 0.0]], np.float32)
    w = np.arange(5.0, dtype=np.float32)
    for descending in (False, True):
        want = jax.grad(lambda v: jnp.sum(jnp.sort(v, descending=descending) * w))(x)
        got = tg.grad(lambda v: tg.sum(tg.sort(v, descending=descending) * w))(x)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    want = jax.grad(lambda v: jnp.sum(lax.top_k(v, 3)[0] * w[:3]))(x)
    got = tg.grad(lambda v: tg.sum(tg.top_k(v, 3)[0] * w[:3]))(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
