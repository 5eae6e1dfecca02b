"""tg.random against jax.random: equal bits for equal keys in every mode, determinism,
split/fold_in, dropout, and the errors for bad keys and parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from op_matrix import MODES, modes_taking_turns, run_mode, rotating_modes

import tracegraph as tg

F = tg.nn.functional


def is_typed(x):
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def same_bits(got, want):
    if is_typed(got) or is_typed(want):  # typed keys: the same type, the same data
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        got, want = jax.random.key_data(got), jax.random.key_data(want)
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint8), want.reshape(-1).view(np.uint8))


# -- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 42, -1, 2**31 - 1, 2**32 + 7])
def test_key_from_python_int_equals_jax(seed):
    for ours, theirs in ((tg.random.key, jax.random.key), (tg.random.PRNGKey, jax.random.PRNGKey)):
        want = theirs(seed)
        same_bits(ours(seed), want)
        for mode in MODES:
            same_bits(run_mode(mode, lambda: ours(seed), ()), want)


@pytest.mark.parametrize("mode", rotating_modes())
def test_key_from_traced_seed(mode):
    for seed in (0, 7, -3, 123456789):
        s = np.int32(seed)
        same_bits(run_mode(mode, tg.random.key, (s,)), jax.random.key(s))
        same_bits(run_mode(mode, tg.random.PRNGKey, (s,)), jax.random.PRNGKey(s))
    seeds = np.array([[1, 2], [3, 4]], np.int32)  # an array of seeds: one key each
    same_bits(run_mode(mode, tg.random.key, (seeds,)), jax.vmap(jax.vmap(jax.random.key))(seeds))


def test_python_int_key_is_a_constant_and_traced_seed_an_op():
    g = tg.trace(lambda: tg.random.normal(tg.random.PRNGKey(3), (2,)))
    assert [n.op for n in g.nodes] == ["random_normal"]
    # a typed key constant is the wrap of its data: the printed graph shows both
    g = tg.trace(lambda: tg.random.normal(tg.random.key(3), (2,)))
    assert [n.op for n in g.nodes] == ["random_wrap", "random_normal"]
    assert 'u32[2] = const [0, 3]' in str(g) and 'impl="threefry2x32"' in str(g)
    g = tg.trace(lambda s: tg.random.key(s), np.int32(3))
    assert [(n.op, n.attrs["impl"]) for n in g.nodes] == [("random_seed", "threefry2x32")]
    g = tg.trace(lambda s: tg.random.PRNGKey(s), np.int32(3))
    assert [(n.op, n.attrs["impl"]) for n in g.nodes] == [("random_seed", "")]


def test_typed_jax_key_is_accepted():
    same_bits(
        tg.random.normal(jax.random.key(5), (4,)), jax.random.normal(jax.random.PRNGKey(5), (4,))
    )


# -- draws equal jax.random's bit for bit -----------------------------------------------

KEY = np.asarray(jax.random.PRNGKey(1234))

DRAWS = {
    "normal": (lambda k: tg.random.normal(k, (3, 5)), lambda k: jax.random.normal(k, (3, 5))),
    "normal-bf16": (
        lambda k: tg.random.normal(k, (7,), jnp.bfloat16),
        lambda k: jax.random.normal(k, (7,), jnp.bfloat16),
    ),
    "normal-f16": (
        lambda k: tg.random.normal(k, (7,), "f16"),
        lambda k: jax.random.normal(k, (7,), jnp.float16),
    ),
    "normal-scalar": (lambda k: tg.random.normal(k), lambda k: jax.random.normal(k)),
    "uniform": (lambda k: tg.random.uniform(k, (4, 4)), lambda k: jax.random.uniform(k, (4, 4))),
    "uniform-range": (
        lambda k: tg.random.uniform(k, (9,), minval=-2, maxval=5.5),
        lambda k: jax.random.uniform(k, (9,), minval=-2, maxval=5.5),
    ),
    "uniform-int-shape": (lambda k: tg.random.uniform(k, 6), lambda k: jax.random.uniform(k, (6,))),
    "bernoulli": (
        lambda k: tg.random.bernoulli(k, 0.3, (20,)),
        lambda k: jax.random.bernoulli(k, 0.3, (20,)),
    ),
    "bernoulli-default": (lambda k: tg.random.bernoulli(k), lambda k: jax.random.bernoulli(k)),
    "bernoulli-array-p": (
        lambda k: tg.random.bernoulli(k, np.array([0.1, 0.5, 0.9], np.float32)),
        lambda k: jax.random.bernoulli(k, np.array([0.1, 0.5, 0.9], np.float32)),
    ),
    "split": (lambda k: tg.random.split(k), lambda k: jax.random.split(k)),
    "split-5": (lambda k: tg.random.split(k, 5), lambda k: jax.random.split(k, 5)),
    "fold_in": (lambda k: tg.random.fold_in(k, 17), lambda k: jax.random.fold_in(k, 17)),
    "fold_in-big": (
        lambda k: tg.random.fold_in(k, 2**32 - 2),
        lambda k: jax.random.fold_in(k, 2**32 - 2),
    ),
    "fold_in-then-normal": (
        lambda k: tg.random.normal(tg.random.fold_in(k, 2), (3,)),
        lambda k: jax.random.normal(jax.random.fold_in(k, 2), (3,)),
    ),
}


@pytest.mark.parametrize("mode", MODES + ("plain",))
@pytest.mark.parametrize("name", sorted(DRAWS))
def test_draw_equals_jax_random(name, mode):
    ours, theirs = DRAWS[name]
    want = theirs(jnp.asarray(KEY))
    got = ours(KEY) if mode == "plain" else run_mode(mode, ours, (KEY,))
    same_bits(got, want)


@pytest.mark.parametrize("mode", rotating_modes())
def test_draws_under_x64_equal_jax(mode):
    with jax.enable_x64(True):
        fn = lambda k: (tg.random.normal(k, (4,), "f64"), tg.random.bernoulli(k, 0.25, (8,)))
        got = run_mode(mode, fn, (KEY,))
        same_bits(got[0], jax.random.normal(KEY, (4,), jnp.float64))
        same_bits(got[1], jax.random.bernoulli(KEY, 0.25, (8,)))


@pytest.mark.parametrize("mode", rotating_modes())
def test_split_rows_drive_draws_like_jax(mode):
    def ours(k):
        keys = tg.random.split(k, 3)
        return keys, tg.random.normal(tg.random.fold_in(k, 0), (2,))

    keys, _ = run_mode(mode, ours, (KEY,))
    want = jax.random.split(KEY, 3)
    same_bits(keys, want)
    # each row is an ordinary key: feeding it back gives jax's draws for that subkey
    for row, wk in zip(np.asarray(keys), want):
        same_bits(
            run_mode(mode, lambda k: tg.random.normal(k, (3,)), (row,)), jax.random.normal(wk, (3,))
        )


@pytest.mark.parametrize("mode", MODES + ("plain",))
def test_unpacked_split_like_jax(mode):
    def ours(k):
        k1, k2 = tg.random.split(k)
        return tg.random.normal(k1, (3,)), tg.random.uniform(k2, (2,)), tg.random.split(k, 4)[3]

    j1, j2 = jax.random.split(KEY)
    want = (jax.random.normal(j1, (3,)), jax.random.uniform(j2, (2,)), jax.random.split(KEY, 4)[3])
    got = ours(KEY) if mode == "plain" else run_mode(mode, ours, (KEY,))
    for g, w in zip(got, want):
        same_bits(g, w)


# -- determinism --------------------------------------------------------------------------


def test_same_key_same_bits_and_different_keys_differ():
    f = tg.jit(lambda k: tg.random.normal(k, (100,)))
    a, b = f(KEY), f(KEY)
    same_bits(a, b)
    c = f(np.asarray(jax.random.PRNGKey(1235)))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    k1, k2 = np.asarray(tg.random.split(KEY))
    assert not np.array_equal(np.asarray(f(k1)), np.asarray(f(k2)))
    assert not np.array_equal(
        np.asarray(tg.random.fold_in(KEY, 1)), np.asarray(tg.random.fold_in(KEY, 2))
    )


def test_eager_runs_are_repeatable():
    run = tg.eager(lambda k: tg.random.uniform(tg.random.fold_in(k, 3), (5,)))
    same_bits(run(KEY), run(KEY))
    assert [n.op for n in run.last_graph.nodes] == ["random_fold_in", "random_uniform"]


def test_distribution_moments():
    z = np.asarray(tg.random.normal(KEY, (20000,)))
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    u = np.asarray(tg.random.uniform(KEY, (20000,), minval=2.0, maxval=4.0))
    assert u.min() >= 2.0 and u.max() < 4.0 and abs(u.mean() - 3.0) < 0.05
    m = np.asarray(tg.random.bernoulli(KEY, 0.2, (20000,)))
    assert m.dtype == np.bool_ and abs(m.mean() - 0.2) < 0.02


# -- dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", rotating_modes())
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_matches_jax_mask(mode, rate):
    x = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    got = run_mode(mode, lambda x, k: F.dropout(x, k, rate), (x, KEY))
    keep = jax.random.bernoulli(KEY, 1 - rate, x.shape)
    np.testing.assert_allclose(np.asarray(got), np.where(keep, x / (1 - rate), 0), rtol=1e-6)


@pytest.mark.parametrize("mode", rotating_modes())
def test_dropout_identity_cases(mode):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    same_bits(run_mode(mode, lambda x, k: F.dropout(x, k, 0.0), (x, KEY)), x)
    same_bits(run_mode(mode, lambda x, k: F.dropout(x, k, 0.7, train=False), (x, KEY)), x)
    g = tg.trace(lambda x, k: F.dropout(x, k, 0.7, train=False), x, KEY)
    assert len(g.nodes) == 0
    np.testing.assert_array_equal(
        np.asarray(run_mode(mode, lambda x, k: F.dropout(x, k, 1.0), (x, KEY))), 0 * x
    )


def test_dropout_keeps_expected_fraction_and_scale():
    x = np.ones((200, 100), np.float32)
    y = np.asarray(F.dropout(x, KEY, 0.25))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y != 0).mean() - 0.75) < 0.02


# -- errors -----------------------------------------------------------------------------------


def test_bad_key_raises_shape_error_naming_this_file():
    with pytest.raises(tg.ShapeError, match=r"u32\[2\].*test_random.py"):
        tg.trace(lambda k: tg.random.normal(k, (3,)), np.zeros(2, np.int32))
    with pytest.raises(tg.ShapeError, match="u32"):
        tg.trace(lambda k: tg.random.split(k), np.zeros((2, 2), np.uint32))


def test_bad_parameters_raise():
    with pytest.raises(tg.ShapeError, match="floating-point dtype"):
        tg.random.normal(KEY, (3,), np.int32)
    with pytest.raises(tg.ShapeError, match="rate"):
        tg.trace(lambda x, k: F.dropout(x, k, 1.5), np.ones(3, np.float32), KEY)
    with pytest.raises(tg.ShapeError, match="integer scalar"):
        tg.trace(lambda k: tg.random.fold_in(k, np.ones(2, np.int32)), KEY)
    with pytest.raises(tg.ShapeError, match="integer scalar"):
        tg.trace(tg.random.key, np.float32(1.0))
    with pytest.raises(tg.TracingError, match="random key"):
        F.dropout(np.ones(3, np.float32), None, 0.5)


# -- typed keys: a type of the IR ------------------------------------------------------------

TKEY = jax.random.key(1234)


# each draw in one mode by default (the modes taking turns; the raw-key test above runs
# every draw in every mode), all three with -m slow
@pytest.mark.parametrize("name,mode", modes_taking_turns(sorted(DRAWS), sorted(DRAWS)))
def test_draw_from_typed_key_equals_jax_random(name, mode):
    ours, theirs = DRAWS[name]
    same_bits(run_mode(mode, ours, (TKEY,)), theirs(TKEY))


def test_draws_from_typed_key_op_by_op_equal_jax_random():
    for ours, theirs in DRAWS.values():
        same_bits(ours(TKEY), theirs(TKEY))


@pytest.mark.parametrize("impl,mode", modes_taking_turns(
    ["threefry2x32", "rbg", "unsafe_rbg"], ["threefry2x32", "rbg", "unsafe_rbg"]))
def test_key_ops_of_every_implementation(mode, impl):
    def ours(k):
        k1, k2 = tg.random.split(k)
        data = tg.random.key_data(k2)
        again = tg.random.wrap_key_data(data, impl=impl)
        return (tg.random.normal(k1, (3,)), tg.random.bits(tg.random.fold_in(again, 7), (4,)),
                data, tg.random.split(k, (2, 3)))

    def theirs(k):
        k1, k2 = jax.random.split(k)
        data = jax.random.key_data(k2)
        again = jax.random.wrap_key_data(data, impl=impl)
        return (jax.random.normal(k1, (3,)), jax.random.bits(jax.random.fold_in(again, 7), (4,)),
                data, jax.random.split(k, (2, 3)))

    key = jax.random.key(9, impl=impl)
    for g, w in zip(run_mode(mode, ours, (key,)), theirs(key)):
        same_bits(g, w)


@pytest.mark.parametrize("mode", rotating_modes())
def test_batched_key_ops_equal_jax_vmap(mode):
    """A key op on a key array acts on each key, as JAX's key primitives do under vmap."""
    keys = jax.random.split(TKEY, 4)
    steps = np.arange(4, dtype=np.uint32)
    from tracegraph.core import bind

    def ours(ks, i):
        return (bind("random_split", ks, num=3), bind("random_fold_in", ks, i),
                bind("random_bits", ks, bit_width=32, shape=(2,)))

    assert str(tg.trace(ours, keys, steps).outputs[0].type) == "key<threefry2x32>[4,3]"
    want = (jax.vmap(lambda k: jax.random.split(k, 3))(keys),
            jax.vmap(jax.random.fold_in)(keys, steps),
            jax.vmap(lambda k: jax.random.bits(k, (2,)))(keys))
    for got, w in zip(run_mode(mode, ours, (keys, steps)), want):
        same_bits(got, w)


@pytest.mark.parametrize("mode", rotating_modes())
def test_typed_keys_move_through_shape_ops_and_control_flow(mode):
    def ours(k, x):
        keys = tg.random.split(k, 4).reshape(2, 2).T          # reshape, transpose
        row = tg.concatenate([keys[0], keys[1][::-1]])         # slices, rev, concatenate
        pick = tg.where(x.sum() > 0, row, tg.stack([k] * 4))   # selection of keys

        def step(carry, _):                                    # a key in a scan carry
            nk, sub = tg.random.split(carry)
            return nk, tg.random.uniform(sub, (2,))

        last, draws = tg.scan(step, pick[2], None, length=3)
        return tg.random.key_data(last), draws

    def theirs(k, x):
        keys = jax.random.split(k, 4).reshape(2, 2).T
        row = jnp.concatenate([keys[0], keys[1][::-1]])
        pick = jnp.where(x.sum() > 0, row, jnp.stack([k] * 4))

        def step(carry, _):
            nk, sub = jax.random.split(carry)
            return nk, jax.random.uniform(sub, (2,))

        last, draws = jax.lax.scan(step, pick[2], None, length=3)
        return jax.random.key_data(last), draws

    x = np.ones(3, np.float32)
    for g, w in zip(run_mode(mode, ours, (TKEY, x)), theirs(TKEY, x)):
        same_bits(g, w)


@pytest.mark.parametrize("mode", rotating_modes())
def test_gradients_flow_past_keys(mode):
    def loss(w, k):
        return (F.dropout(w, k, 0.5) ** 2).sum()

    w = np.linspace(-1, 1, 8).astype(np.float32)
    got = run_mode(mode, tg.grad(loss), (w, TKEY))
    want = jax.grad(lambda w, k: (jnp.where(jax.random.bernoulli(k, 0.5, w.shape), w / 0.5, 0) ** 2).sum())(w, TKEY)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


def test_key_types_print_parse_and_save(tmp_path):
    def f(k, raw):
        ks = tg.random.split(k, 3)
        return ks, tg.random.normal(ks[1], (2,)) + tg.random.uniform(raw, (2,))

    raw = np.asarray(jax.random.PRNGKey(5))
    g = tg.trace(f, TKEY, raw)
    text = str(g)
    assert "%k: key<threefry2x32>[]" in text and "-> (key<threefry2x32>[3], f32[2])" in text
    want = g.interpret(TKEY, raw)
    path = tmp_path / "keys.tg"
    tg.save(g, path)
    for back in (tg.parse(text), tg.Graph.from_json(g.to_json()), tg.load(path)):
        assert str(back) == text
        for got, w in zip(back.interpret(TKEY, raw), want):
            same_bits(got, w)


def test_key_type_errors_are_clear():
    # an op that reads elements does not take keys
    with pytest.raises(tg.ShapeError, match=r"add does not take PRNG keys.*test_random.py"):
        tg.trace(lambda k: k + 1, TKEY)
    with pytest.raises(tg.ShapeError, match=r"does not take PRNG keys"):
        tg.trace(lambda k: tg.sum(k), TKEY)
    # keys of two implementations do not mix
    with pytest.raises(tg.ShapeError, match="keys combine only with keys of the same type"):
        tg.trace(lambda a, b: tg.concatenate([a[None], b[None]]), TKEY, jax.random.key(0, impl="rbg"))
    # a typed key given where the graph wants a raw one (and back)
    g = tg.trace(lambda k: tg.random.normal(k, (2,)), TKEY)
    with pytest.raises(tg.ShapeError, match=r"expects key<threefry2x32>\[\], got uint32\[2\]"):
        g.interpret(np.asarray(jax.random.PRNGKey(0)))
    # split takes one key, as jax.random.split
    with pytest.raises(tg.TracingError, match="split takes one key"):
        tg.random.split(jax.random.split(TKEY, 2))
    # a key constant in a text: keys are wrapped data
    with pytest.raises(tg.IRError, match="cannot have a key type"):
        tg.parse("graph g() -> (key<threefry2x32>[]) {\n  %c: key<threefry2x32>[] = const [0, 1]\n  return %c\n}")
    with pytest.raises(tg.IRError, match="unknown PRNG implementation"):
        tg.parse("graph g(%k: key<philox>[]) -> (key<philox>[]) {\n  return %k\n}")
    with pytest.raises(tg.ShapeError, match=r"random_wrap of threefry2x32 keys needs u32\[\.\.\., 2\]"):
        tg.trace(lambda d: tg.random.wrap_key_data(d), np.zeros(4, np.uint32))


def test_threads_draw_from_typed_keys():
    from concurrent.futures import ThreadPoolExecutor

    f = tg.jit(lambda k: tg.random.normal(k, (16,)))
    keys = [jax.random.key(i) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(f, keys))
    for k, g in zip(keys, got):
        same_bits(g, jax.random.normal(k, (16,)))
