"""``x.at[idx].set/add/subtract/multiply/divide/power/min/max/get`` against JAX's own
``.at`` on the same code, bit for bit: every index form of tests/test_indexing.py (its
index functions give the keys), constant and traced index arrays, the out-of-bounds
modes, dtype promotion, gradients against jax.grad, and imperative tensors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from op_matrix import EXHAUSTIVE, MODES, modes_taking_turns, run_mode
from test_indexing import CASES as INDEX_CASES
from test_indexing import MASK_CASES, X

METHODS = ("set", "add", "subtract", "multiply", "divide", "power", "min", "max")


class _Key:
    """``index(_Key(), arrays)`` gives the key the index function applies."""

    def __getitem__(self, key):
        return key


def _values(shape, seed=0):
    # small integers as floats: sums and products are exact, so any order gives one result
    return np.random.default_rng(seed).integers(-3, 4, size=shape).astype(np.float32)


def _all_methods(x, key, v):
    ref = x.at[key]
    outs = [getattr(ref, m)(v) for m in METHODS]
    return (*outs, ref.get(), ref.set(2.0), ref.add(1, mode="clip"), ref.mul(v, mode="drop"))


def _check(got, want, what):
    got, want = list(got), list(want)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert tuple(g.shape) == tuple(w.shape), f"{what}[{i}]: shape {g.shape} vs {w.shape}"
        assert g.dtype == w.dtype, f"{what}[{i}]: dtype {g.dtype} vs {w.dtype}"
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=f"{what}[{i}]")


def _every_eighth(cases):
    """Every eighth case in one mode by default, the modes taking turns; every case in
    one more mode with -m slow (each case compiles a dozen scatters: the default run's
    budget, and CI's for the slow set); every case in every mode under
    TRACEGRAPH_EXHAUSTIVE=1."""
    out = []
    for i, case in enumerate(cases):
        for j, mode in enumerate(MODES):
            default = i % 8 == 0 and j == i % len(MODES)
            slow = j == (i + 1) % len(MODES) if i % 8 == 0 else j == i % len(MODES)
            if default or slow or EXHAUSTIVE:
                marks = () if default else (pytest.mark.slow,)
                out.append(pytest.param(*case, mode, marks=marks, id=f"{case[0]}-{mode}"))
    return out


@pytest.mark.parametrize("name,index,arrays,mode", _every_eighth(INDEX_CASES))
def test_every_index_form_and_method_matches_jax(name, index, arrays, mode):
    key = index(_Key(), arrays)
    v = _values(jnp.asarray(X)[key].shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jax: power of negatives, 0/0 ...
        want = _all_methods(jnp.asarray(X), index(_Key(), [jnp.asarray(a) for a in arrays]), v)
        got = run_mode(mode, lambda x, u: _all_methods(x, key, u), (X, v))
    _check(got, want, f"{name} ({mode})")


ARRAY_CASES = [c for c in INDEX_CASES if c[2]]


@pytest.mark.parametrize("name,index,arrays,mode", _every_eighth(ARRAY_CASES))
def test_traced_index_tensors_match_jax(name, index, arrays, mode):
    v = _values(jnp.asarray(X)[index(_Key(), arrays)].shape)
    want = _all_methods(jnp.asarray(X), index(_Key(), [jnp.asarray(a) for a in arrays]), v)
    got = run_mode(mode, lambda x, u, *a: _all_methods(x, index(_Key(), list(a)), u), (X, v, *arrays))
    _check(got, want, f"{name} ({mode})")


@pytest.mark.parametrize("name,index,mask", MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_boolean_masks_match_jax(name, index, mask):
    key = index(_Key(), mask)
    v = _values(jnp.asarray(X)[key].shape)
    want = _all_methods(jnp.asarray(X), key, v)
    _check(tg.jit(lambda x, u: _all_methods(x, key, u))(X, v), want, name)
    # define-by-run: a mask tensor's values are known
    got = tg.eager(lambda x, u, m: _all_methods(x, index(_Key(), m), u))(X, v, mask)
    _check(got, want, name + " (eager mask tensor)")


OOB = np.array([0, 7, -1, -7, 2, 2, -5, 4], np.int32)  # axis of size 5


def _modes(x, i, v):
    out = []
    for kw in ({}, {"mode": "clip"}, {"mode": "drop"}, {"mode": "promise_in_bounds"},
               {"mode": "fill"}, {"wrap_negative_indices": False},
               {"mode": "clip", "wrap_negative_indices": False}):
        ref = x.at[:, i]
        out += [ref.set(v, **kw), ref.add(v, **kw), ref.min(v, **kw), ref.max(v, **kw),
                ref.multiply(v, **kw)]
    ref = x.at[i, 1]
    out += [ref.get(), ref.get(mode="clip"), ref.get(mode="fill"),
            ref.get(mode="fill", fill_value=-1), ref.get(mode="drop", wrap_negative_indices=False)]
    out += [x.at[9].set(1.0), x.at[-9, 1].add(1.0), x.at[9].get(), x.at[0, 7].get(mode="fill")]
    return out


@pytest.mark.parametrize("traced,mode", modes_taking_turns([False, True], ["constant", "traced"]))
def test_out_of_bounds_modes_match_jax(traced, mode):
    x = X[0]  # (5, 6)
    v = _values((5, 8), 1)
    want = _modes(jnp.asarray(x), jnp.asarray(OOB), v)
    if traced:
        got = run_mode(mode, _modes, (x, OOB, v))
    else:
        got = run_mode(mode, lambda a, u: _modes(a, OOB, u), (x, v))
    _check(got, want, mode)


def _promotions(i, f, b, h):
    k = np.array([0, 0, 2], np.int32)
    return (
        i.at[0].multiply(0.5),  # computed in floats, converted back: 3 * 0.5 -> 1
        i.at[k].add(0.6),  # 0.6 + 0.6 in floats before the int conversion
        i.at[1].divide(2),  # x / ones.at[1].multiply(2): floats
        i.at[1].power(2),
        i.at[k].add(-1),
        i.astype(jnp.uint8).at[0].add(-1),
        f.at[k].set(i[:3]),  # int values into floats
        b.at[k].set(True),
        b.at[1].min(False),
        b.at[k].max(True),
        h.at[k].add(1.5),  # bf16 stays bf16
        h.at[k].add(f[:3]),  # promoted to f32, then back to bf16
        f.at[1].get(),
    )


@pytest.mark.parametrize("mode", [m if i == 0 else pytest.param(m, marks=pytest.mark.slow)
                                  for i, m in enumerate(MODES)])
def test_dtype_promotion_matches_jax(mode):
    args = (np.array([3, 4, 5, 6], np.int32), np.array([1.5, -2.0, 0.25, 8.0], np.float32),
            np.array([True, False, True, False]), np.array([1.0, 2.5, -3.0, 0.5], jnp.bfloat16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jax's FutureWarning on unsafe casts
        want = _promotions(*[jnp.asarray(a) for a in args])
        got = run_mode(mode, _promotions, args)
    _check(got, want, mode)


# -- gradients ------------------------------------------------------------------------------------

IDX = np.array([0, 3, 3, -1, 7, -9, 1], np.int32)  # repeats, wrap, out of bounds (size 5)

GRADS = [
    ("set", lambda x, v: x.at[1, IDX].set(v), True),
    ("set-clip", lambda x, v: x.at[IDX, 2].set(v, mode="clip"), True),
    ("set-slices", lambda x, v: x.at[::-2, 1:].set(v[:3, None]), True),
    ("add", lambda x, v: x.at[:, IDX].add(v), True),
    ("add-clip", lambda x, v: x.at[IDX].add(v[:, None], mode="clip"), True),
    ("subtract", lambda x, v: x.at[IDX, 1:3].subtract(v[:, None]), True),
    ("min", lambda x, v: x.at[2, IDX].min(v), True),
    # (not mode="clip": JAX's own rule counts the clamped updates as dropped, giving inf)
    ("max", lambda x, v: x.at[IDX, 0].max(v), True),
    # JAX has no values gradient of scatter-mul without unique indices: x only
    ("multiply", lambda x, v: x.at[IDX, 1].multiply(v), False),
    ("divide", lambda x, v: x.at[0, IDX].divide(v + 5.0), False),
    ("power", lambda x, v: x.at[1:, 2].power(2.0) + v.sum(), False),
    ("get", lambda x, v: x.at[IDX, 1].get(mode="fill", fill_value=0.0) * v, True),
    ("two-arrays", lambda x, v: x.at[IDX % 5, IDX[::-1] % 6].add(v), True),
]


@pytest.mark.parametrize("name,fn,values_too,mode", modes_taking_turns(GRADS, [g[0] for g in GRADS]))
def test_gradients_match_jax(name, fn, values_too, mode):
    x = X[1] / 10.0  # (5, 6)
    v = np.linspace(-1.5, 1.5, 7).astype(np.float32)

    def loss(a, u):
        y = fn(a, u)
        return (y * tg.sin(y)).sum() if isinstance(y, tg.Tensor) else (y * jnp.sin(y)).sum()

    argnums = (0, 1) if values_too else (0,)
    want = jax.grad(loss, argnums)(jnp.asarray(x), jnp.asarray(v))
    got = run_mode(mode, tg.grad(loss, argnums), (x, v))
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6, err_msg=name)


def test_multiply_values_gradient_with_repeats_and_zeros():
    # JAX refuses this one (non-unique indices): the product rule, by hand
    x = np.array([2.0, -1.0, 3.0], np.float32)
    v = np.array([1.5, 0.0, 2.0, 0.0, 4.0], np.float32)
    i = np.array([0, 0, 1, 1, -1], np.int32)
    got = tg.grad(lambda a, u: a.at[i].multiply(u).sum(), (0, 1))(x, v)[1]
    # d/du_k of x[j] * prod(u at j) = x[j] * (the product of the other updates at j)
    want = [2.0 * 0.0, 2.0 * 1.5, -1.0 * 0.0, -1.0 * 2.0, 3.0]
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("method", ["min", "max"])
def test_ties_share_the_gradient_as_in_jax(method):
    x = np.array([1.0, 2.0, 3.0, 0.0], np.float32)
    i = np.array([0, 0, 1, 1, 2, 3], np.int32)
    v = np.array([1.0, 1.0, 5.0, 5.0, -5.0, 0.0], np.float32)

    def loss(a, u):
        y = getattr(a.at[i], method)(u)
        return (y * jnp.arange(1.0, 5.0)).sum() if isinstance(y, jax.Array) else (y * np.arange(1.0, 5.0, dtype=np.float32)).sum()

    want = jax.grad(loss, (0, 1))(jnp.asarray(x), jnp.asarray(v))
    got = tg.grad(loss, (0, 1))(x, v)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_repeated_set_keeps_the_last_update_and_its_gradient():
    x = np.zeros(3, np.float32)
    i = np.array([1, 2, 1, 1, -2], np.int32)
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    np.testing.assert_array_equal(tg.jit(lambda a, u: a.at[i].set(u))(x, v), [0.0, 5.0, 2.0])
    g = tg.grad(lambda a, u: (a.at[i].set(u) * np.array([1.0, 2.0, 3.0], np.float32)).sum(), (0, 1))(x, v)[1]
    np.testing.assert_array_equal(g, [0.0, 3.0, 0.0, 0.0, 2.0])


# -- imperative tensors, errors -----------------------------------------------------------------


def test_imperative_tensors_update_and_backward():
    u = np.linspace(-1, 1, 7).astype(np.float32)
    x = tg.tensor(X[2] / 10.0, requires_grad=True)
    v = tg.tensor(u, requires_grad=True)
    y = x.at[1, IDX].set(v).at[IDX % 5, 0].add(v * 2.0)
    (y * y).sum().backward()
    want_y, pull = jax.vjp(
        lambda a, u: a.at[1, IDX].set(u).at[IDX % 5, 0].add(u * 2.0),
        jnp.asarray(X[2] / 10.0), jnp.asarray(u),
    )
    gx, gv = pull(2 * want_y)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-6)
    np.testing.assert_allclose(v.grad.numpy(), gv, rtol=1e-6)


def test_the_graph_is_one_scatter_on_the_flat_array():
    g = tg.trace(lambda x, i: x.at[:, i].add(1.0), X, np.array([0, 2], np.int32))
    ops = [n.op for n in g.nodes]
    assert ops.count("index_add") == 1 and "index_set" not in ops, ops


@pytest.mark.parametrize("mode", ["jit", "eager"])
def test_values_of_the_wrong_shape_are_a_shape_error(mode):
    run = tg.jit if mode == "jit" else tg.eager
    with pytest.raises(tg.ShapeError, match=r"at\[\.\.\.\]\.set: values of shape \[3\] do not broadcast "
                       r"to the indexed shape \[2, 6\] .*test_at\.py"):
        run(lambda x: x.at[np.array([0, 1])].set(np.ones(3, np.float32)))(X[0])


def test_apply_and_unknown_modes_are_errors():
    with pytest.raises(tg.Error, match="apply"):
        tg.jit(lambda x: x.at[0].apply(tg.sin))(X)
    with pytest.raises(tg.ShapeError, match="unknown mode 'wrap'"):
        tg.jit(lambda x: x.at[0].set(1.0, mode="wrap"))(X)
    with pytest.raises(tg.ShapeError, match="too many indices"):
        tg.jit(lambda x: x.at[0, 0, 0, 0].set(1.0))(X)
