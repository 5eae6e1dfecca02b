"""Tensor indexing (``x[...]``) against jax.numpy indexing, in jit, interpreter and
define-by-run modes, with index arrays both as constants and as traced tensors; plus
the errors bad indices raise."""

import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from op_matrix import MODES, modes_taking_turns, run_mode

X = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) - 50.0

A = np.array([0, 3, -1, 2], np.int32)
B = np.array([4, 0, 1, -2], np.int32)
C = np.array([5, 0, 3, 1], np.int32)
IDX2 = np.array([[0, 1, 2], [3, -4, 1]], np.int32)

# (name, array shape, index function of (x, index arrays), index arrays)
CASES = [
    # basic: ints, slices, steps, None, Ellipsis
    ("int", lambda x, a: x[0], []),
    ("neg-int", lambda x, a: x[-1], []),
    ("two-ints", lambda x, a: x[1, 2], []),
    ("all-ints", lambda x, a: x[1, 2, 3], []),
    ("inner-int", lambda x, a: x[:, 1], []),
    ("ellipsis-int", lambda x, a: x[..., 2], []),
    ("slice", lambda x, a: x[1:3], []),
    ("step", lambda x, a: x[:, ::2], []),
    ("reverse", lambda x, a: x[::-1], []),
    ("neg-steps", lambda x, a: x[:, ::-2, 1:5:3], []),
    ("neg-step-bounds", lambda x, a: x[3:0:-2], []),
    ("neg-step-from-end", lambda x, a: x[:, :, -1::-4], []),
    ("empty-slice", lambda x, a: x[2:2], []),
    ("past-end", lambda x, a: x[10:], []),
    ("wide-bounds", lambda x, a: x[-100:100, 1:-1], []),
    ("newaxis", lambda x, a: x[None], []),
    ("newaxes", lambda x, a: x[:, None, :, None], []),
    ("ellipsis-newaxis", lambda x, a: x[..., None], []),
    ("newaxis-ellipsis-int", lambda x, a: x[None, ..., 0], []),
    ("mid-ellipsis", lambda x, a: x[1, ..., None, ::-1], []),
    ("empty-tuple", lambda x, a: x[()], []),
    ("ellipsis", lambda x, a: x[...], []),
    ("ellipsis-middle", lambda x, a: x[0, ..., 1], []),
    # advanced: integer arrays
    ("array", lambda x, a: x[a[0]], [A]),
    ("array-inner", lambda x, a: x[:, a[0]], [A]),
    ("array-last", lambda x, a: x[..., a[0]], [C]),
    ("array-2d", lambda x, a: x[a[0]], [IDX2]),
    ("adjacent-front", lambda x, a: x[a[0], a[1]], [A, B]),
    ("adjacent-middle", lambda x, a: x[:, a[0], a[1]], [B, C]),
    ("separated", lambda x, a: x[a[0], :, a[1]], [A, C]),
    ("separated-by-ellipsis", lambda x, a: x[a[0], ..., a[1]], [A, C]),
    ("three-arrays", lambda x, a: x[a[0], a[1], a[2]], [A, B, C]),
    ("array-int-adjacent", lambda x, a: x[a[0], 1], [A]),
    ("int-array-separated", lambda x, a: x[1, :, a[0]], [C]),
    ("int-array-middle", lambda x, a: x[:, 1, a[0]], [C]),
    ("broadcast-arrays", lambda x, a: x[a[0][:, None], a[1][None, :]], [A, B]),
    ("newaxis-then-arrays", lambda x, a: x[None, a[0], a[1]], [A, B]),
    ("newaxis-separates", lambda x, a: x[a[0], None, a[1]], [A, B]),
    ("array-and-slices", lambda x, a: x[a[0], 1:4, ::-1], [A]),
    ("clamp-and-wrap", lambda x, a: x[a[0]], [np.array([7, -9, -4, 3], np.int32)]),
    (
        "clamp-two-axes",
        lambda x, a: x[a[0], a[1]],
        [np.array([9, -1], np.int32), np.array([-7, 8], np.int32)],
    ),
    ("u8-index", lambda x, a: x[:, a[0]], [np.array([4, 0, 2], np.uint8)]),
    (
        "i8-two-axes",
        lambda x, a: x[a[0], a[1]],
        [np.array([1, -1], np.int8), np.array([2, 4], np.int8)],
    ),
    ("0d-array", lambda x, a: x[a[0]], [np.array(2, np.int32)]),
    ("int-and-0d", lambda x, a: x[1, a[0]], [np.array(-2, np.int32)]),
    ("scalar-and-1d", lambda x, a: x[a[0], a[1]], [np.array(1, np.int32), A]),
    ("empty-index", lambda x, a: x[a[0]], [np.zeros((0,), np.int32)]),
    ("scalar-bool-true", lambda x, a: x[True], []),
    ("scalar-bool-false", lambda x, a: x[False], []),
    ("scalar-bool-int", lambda x, a: x[True, 1], []),
    ("scalar-bool-array", lambda x, a: x[True, a[0]], [A]),
]

MASK_CASES = [
    ("mask-1d", lambda x, m: x[m], np.array([True, False, True, True])),
    ("mask-2d", lambda x, m: x[m], (X[:, :, 0] > -30)),
    ("mask-inner", lambda x, m: x[:, m], np.array([False, True, True, False, True])),
    ("mask-after-ellipsis", lambda x, m: x[..., m], X[0, 0] > -48),
    ("mask-and-int", lambda x, m: x[m, 2], np.array([True, False, True, True])),
    ("mask-all-false", lambda x, m: x[m], np.zeros(4, bool)),
]


def _check(got, want, what):
    want = jnp.asarray(want)
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {got.shape} vs {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} vs {want.dtype}"
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=what)


# each case in one mode by default, in all three with -m slow (the default run's budget)
@pytest.mark.parametrize("name,index,arrays,mode", modes_taking_turns(CASES, [c[0] for c in CASES]))
def test_constant_indices_match_jnp(name, index, arrays, mode):
    want = index(jnp.asarray(X), [jnp.asarray(a) for a in arrays])
    got = run_mode(mode, lambda x: index(x, arrays), (X,))
    _check(got, want, f"{name} ({mode})")


ARRAY_CASES = [c for c in CASES if c[2]]


@pytest.mark.parametrize(
    "name,index,arrays,mode", modes_taking_turns(ARRAY_CASES, [c[0] for c in ARRAY_CASES])
)
def test_traced_index_tensors_match_jnp(name, index, arrays, mode):
    want = index(jnp.asarray(X), [jnp.asarray(a) for a in arrays])
    got = run_mode(mode, lambda x, *a: index(x, list(a)), (X, *arrays))
    _check(got, want, f"{name} ({mode})")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,index,mask", MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_constant_boolean_masks_match_jnp(name, index, mask, mode):
    want = index(jnp.asarray(X), mask)
    got = run_mode(mode, lambda x: index(x, mask), (X,))
    _check(got, want, f"{name} ({mode})")


@pytest.mark.parametrize("name,index,mask", MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_eager_boolean_mask_tensors_match_jnp(name, index, mask):
    want = index(jnp.asarray(X), mask)
    got = tg.eager(lambda x, m: index(x, m))(X, mask)
    _check(got, want, name)


def test_gather_rows_by_label():
    # The cross-entropy idiom: pick one class per row.
    logits = np.arange(12, dtype=np.float32).reshape(4, 3)
    labels = np.array([2, 0, 1, 1], np.int32)
    want = jnp.asarray(logits)[jnp.arange(4), labels]
    for mode in MODES:
        got = run_mode(mode, lambda x, y: x[tg.arange(x.shape[0]), y], (logits, labels))
        _check(got, want, mode)


@pytest.mark.parametrize("dtype", ["int32", "bfloat16", "bool", "float16"])
def test_other_dtypes(dtype):
    x = (X > 0) if dtype == "bool" else X.astype(jnp.dtype(dtype))
    want = jnp.asarray(x)[A, ::-2, 1]
    for mode in MODES:
        _check(run_mode(mode, lambda t: t[A, ::-2, 1], (x,)), want, f"{dtype} {mode}")


def test_zero_size_axes():
    x = np.zeros((0, 3), np.float32)
    for mode in MODES:
        _check(run_mode(mode, lambda t: t[:, 1], (x,)), jnp.asarray(x)[:, 1], mode)
        _check(run_mode(mode, lambda t: t[:, ::-1], (x,)), jnp.asarray(x)[:, ::-1], mode)
        _check(run_mode(mode, lambda t: t[1:1, None], (x,)), jnp.asarray(x)[1:1, None], mode)


def test_weak_scalar_keeps_weak_type_through_indexing():
    # x[None] of a Python scalar stays weakly typed: it does not promote a bf16 operand.
    y = np.ones(3, jnp.bfloat16)
    f = lambda s, y: s * tg.ones((1,))[0] + y  # noqa: E731
    for mode in MODES:
        assert run_mode(mode, f, (2.0, y)).dtype == jnp.float32
    g = lambda s, y: tg.expand_dims(s, 0)[0] + y  # noqa: E731
    for mode in MODES:
        assert run_mode(mode, g, (2.0, y)).dtype == jnp.bfloat16


def test_iteration_over_leading_axis():
    for mode in MODES:
        got = run_mode(mode, lambda x: [row.sum() for row in x], (X,))
        for g, w in zip(got, jnp.asarray(X).sum(axis=(1, 2))):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w))
    with pytest.raises(TypeError):
        tg.eager(lambda x: list(x))(np.float32(1.0))


def test_basic_index_is_slice_and_reshape():
    g = tg.trace(lambda x: x[1, ::-1], X)
    assert [n.op for n in g.nodes] == ["slice", "rev", "reshape"]
    g = tg.trace(lambda x: x[:, :], X)
    assert g.nodes == [] or [n.op for n in g.nodes] == []


def test_two_array_gather_is_one_take():
    g = tg.trace(lambda x, a, b: x[a, b], X, A, B)
    assert [n.op for n in g.nodes].count("take") == 1


# -- errors ----------------------------------------------------------------------------------


def _raises(exc, fn, *args, match=None):
    with pytest.raises(exc, match=match) as info:
        fn(*args)
    assert "test_indexing.py" in str(info.value), str(info.value)
    return str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_int_out_of_range_is_shape_error(mode):
    msg = _raises(tg.ShapeError, run_mode, mode, lambda x: x[4], (X,))
    assert "out of bounds" in msg and "size 4" in msg
    _raises(tg.ShapeError, run_mode, mode, lambda x: x[:, -6], (X,))


@pytest.mark.parametrize(
    "index,match",
    [
        (lambda x: x[0, 0, 0, 0], "too many indices"),
        (lambda x: x[..., 0, ...], "single ellipsis"),
        (lambda x: x[1.5], "valid indices"),
        (lambda x: x[np.array([0.5])], "integers or booleans"),
        (lambda x: x[np.array([True, False])], "does not match"),
        (lambda x: x[A, np.array([0, 1, 2], np.int32)], "broadcast"),
    ],
    ids=["too-many", "two-ellipses", "float", "float-array", "mask-shape", "no-broadcast"],
)
def test_bad_indices_are_shape_errors(index, match):
    for mode in MODES:
        _raises(tg.ShapeError, run_mode, mode, index, (X,), match=match)


def test_gather_from_empty_axis_is_shape_error():
    _raises(
        tg.ShapeError,
        run_mode,
        "jit",
        lambda x: x[np.array([0], np.int32)],
        (np.zeros((0, 2), np.float32),),
    )


def test_float_index_tensor_is_shape_error():
    _raises(tg.ShapeError, run_mode, "jit", lambda x, i: x[i], (X, np.array([1.0], np.float32)))


def test_traced_boolean_mask_is_tracing_error():
    msg = _raises(tg.TracingError, tg.jit(lambda x: x[x > 0]), X)
    assert "tg.where" in msg and "tg.eager" in msg
    _raises(tg.TracingError, tg.jit(lambda x, m: x[m]), X, np.array([True, False, True, True]))


def test_traced_slice_bound_is_tracing_error():
    _raises(tg.TracingError, tg.jit(lambda x, i: x[i:]), X, np.int32(1))
    # ...but define-by-run knows the value.
    _check(tg.eager(lambda x, i: x[i:])(X, np.int32(1)), jnp.asarray(X)[1:], "eager")


def test_mixed_constant_and_traced_index_arrays():
    want = jnp.asarray(X)[A, :, C]
    for mode in MODES:
        _check(run_mode(mode, lambda x, a: x[a, :, C], (X, A)), want, mode)
        _check(run_mode(mode, lambda x, c: x[A, 2, c], (X, C)), jnp.asarray(X)[A, 2, C], mode)
