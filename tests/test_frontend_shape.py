"""The tg.* shape, reduction and creation functions and their Tensor methods, against
jax.numpy, in jit, interpreter and define-by-run modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from op_matrix import MODES, run_mode

X = (np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) - 7.5) / 3
XI = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4) % 5


def _check(got, want, what=""):
    got_l = list(got) if isinstance(got, (list, tuple)) else [got]
    want_l = list(want) if isinstance(want, (list, tuple)) else [want]
    assert len(got_l) == len(want_l), what
    for g, w in zip(got_l, want_l):
        w = jnp.asarray(w)
        assert tuple(g.shape) == tuple(w.shape), f"{what}: shape {g.shape} vs {w.shape}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} vs {w.dtype}"
        np.testing.assert_allclose(
            np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=1e-6, atol=1e-6, err_msg=what
        )


def _all_modes(tg_fn, jnp_fn, *args):
    want = jnp_fn(*[jnp.asarray(a) for a in args])
    for mode in MODES:
        _check(run_mode(mode, tg_fn, args), want, f"{mode}")


def _np_split(x, cuts, axis):
    return [jnp.asarray(p) for p in np.split(np.asarray(x), cuts, axis=axis)]


# -- shape functions -------------------------------------------------------------------------

SHAPE_CASES = [
    ("reshape-minus1-last", lambda x: tg.reshape(x, (-1, 4)), lambda x: jnp.reshape(x, (-1, 4))),
    ("reshape-minus1-first", lambda x: tg.reshape(x, (3, -1)), lambda x: jnp.reshape(x, (3, -1))),
    ("reshape-flat", lambda x: tg.reshape(x, -1), lambda x: jnp.reshape(x, -1)),
    ("method-reshape-varargs", lambda x: x.reshape(4, 3, 2), lambda x: x.reshape(4, 3, 2)),
    ("method-reshape-tuple", lambda x: x.reshape((6, -1)), lambda x: x.reshape((6, -1))),
    ("transpose-default", lambda x: tg.transpose(x), jnp.transpose),
    (
        "transpose-neg",
        lambda x: tg.transpose(x, (-1, 0, 1)),
        lambda x: jnp.transpose(x, (-1, 0, 1)),
    ),
    ("method-transpose", lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(1, 2, 0)),
    ("T", lambda x: x.T, lambda x: x.T),
    ("mT", lambda x: x.mT, lambda x: x.mT),
    ("swapaxes", lambda x: tg.swapaxes(x, 0, -1), lambda x: jnp.swapaxes(x, 0, -1)),
    ("method-swapaxes", lambda x: x.swapaxes(1, 2), lambda x: x.swapaxes(1, 2)),
    ("moveaxis", lambda x: tg.moveaxis(x, 0, -1), lambda x: jnp.moveaxis(x, 0, -1)),
    (
        "moveaxis-multi",
        lambda x: tg.moveaxis(x, (0, 1), (2, 0)),
        lambda x: jnp.moveaxis(x, (0, 1), (2, 0)),
    ),
    ("flatten", tg.flatten, jnp.ravel),
    ("method-flatten", lambda x: x.flatten(), lambda x: x.flatten()),
    ("ravel", tg.ravel, jnp.ravel),
    ("expand_dims", lambda x: tg.expand_dims(x, (0, -1)), lambda x: jnp.expand_dims(x, (0, -1))),
    ("squeeze-all", lambda x: tg.squeeze(x[:, :1, None]), lambda x: jnp.squeeze(x[:, :1, None])),
    ("squeeze-axis", lambda x: x[:1].squeeze(0), lambda x: x[:1].squeeze(0)),
    (
        "squeeze-neg",
        lambda x: tg.squeeze(x[..., :1], axis=-1),
        lambda x: jnp.squeeze(x[..., :1], axis=-1),
    ),
    (
        "broadcast_to",
        lambda x: tg.broadcast_to(x[:, :1], (5, 2, 3, 4)),
        lambda x: jnp.broadcast_to(x[:, :1], (5, 2, 3, 4)),
    ),
    (
        "concatenate",
        lambda x: tg.concatenate([x, x[:, :1]], axis=1),
        lambda x: jnp.concatenate([x, x[:, :1]], axis=1),
    ),
    (
        "concatenate-neg",
        lambda x: tg.concatenate((x, x * 2), -1),
        lambda x: jnp.concatenate((x, x * 2), -1),
    ),
    (
        "concatenate-none",
        lambda x: tg.concatenate([x, x[0]], axis=None),
        lambda x: jnp.concatenate([x, x[0]], axis=None),
    ),
    ("stack", lambda x: tg.stack([x, x + 1]), lambda x: jnp.stack([x, x + 1])),
    ("stack-neg", lambda x: tg.stack([x, x, x], axis=-1), lambda x: jnp.stack([x, x, x], axis=-1)),
    ("split-sections", lambda x: tg.split(x, 2, axis=-1), lambda x: jnp.split(x, 2, axis=-1)),
    (
        "split-indices",
        lambda x: tg.split(x, [1, 3], axis=2),
        lambda x: jnp.split(x, [1, 3], axis=2),
    ),
    # numpy semantics where jnp.split refuses: cut points clamp, count from the end, may cross
    ("split-clamped", lambda x: tg.split(x, [2, 10], axis=1), lambda x: _np_split(x, [2, 10], 1)),
    ("split-negative", lambda x: tg.split(x, [-1], axis=1), lambda x: _np_split(x, [-1], 1)),
    ("split-unordered", lambda x: tg.split(x, [3, 1], axis=2), lambda x: _np_split(x, [3, 1], 2)),
    (
        "take-flat",
        lambda x: tg.take(x, np.array([0, 5, 23], np.int32)),
        lambda x: jnp.take(x, jnp.array([0, 5, 23])),
    ),
    ("take-axis", lambda x: tg.take(x, [2, 0, -1], axis=1), lambda x: x[:, jnp.array([2, 0, -1])]),
    (
        "method-take",
        lambda x: x.take(np.array([[1, 0]], np.int32), axis=-1),
        lambda x: jnp.take(x, jnp.array([[1, 0]]), axis=-1),
    ),
    (
        "take_along_axis",
        lambda x: tg.take_along_axis(x, tg.argmax(x, axis=-1)[..., None], axis=-1),
        lambda x: jnp.take_along_axis(x, jnp.argmax(x, axis=-1)[..., None], axis=-1),
    ),
    ("pad-int", lambda x: tg.pad(x, 1), lambda x: jnp.pad(x, 1)),
    (
        "pad-pair",
        lambda x: tg.pad(x, (1, 2), constant_values=-1.0),
        lambda x: jnp.pad(x, (1, 2), constant_values=-1.0),
    ),
    (
        "pad-per-axis",
        lambda x: tg.pad(x, ((0, 0), (1, 0), (2, 3))),
        lambda x: jnp.pad(x, ((0, 0), (1, 0), (2, 3))),
    ),
    (
        "pad-edge",
        lambda x: tg.pad(x, ((1, 1),), mode="edge"),
        lambda x: jnp.pad(x, ((1, 1),), mode="edge"),
    ),
    (
        "pad-reflect",
        lambda x: tg.pad(x, ((0, 1), (2, 2), (3, 0)), mode="reflect"),
        lambda x: jnp.pad(x, ((0, 1), (2, 2), (3, 0)), mode="reflect"),
    ),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_functions_match_jnp(name, tg_fn, jnp_fn):
    _all_modes(tg_fn, jnp_fn, X)


def test_shape_functions_on_plain_arrays_run_at_once():
    out = tg.reshape(X, (-1,))
    assert isinstance(out, jax.Array) and out.shape == (24,)
    parts = tg.split(X, 3, axis=1)
    assert [p.shape for p in parts] == [(2, 1, 4)] * 3


# -- reductions --------------------------------------------------------------------------------

REDUCE_CASES = [
    ("sum-all", lambda x: tg.sum(x), jnp.sum),
    (
        "sum-tuple-keepdims",
        lambda x: tg.sum(x, axis=(0, -1), keepdims=True),
        lambda x: jnp.sum(x, axis=(0, -1), keepdims=True),
    ),
    ("mean-axis", lambda x: tg.mean(x, 1), lambda x: jnp.mean(x, 1)),
    (
        "method-mean",
        lambda x: x.mean(axis=-1, keepdims=True),
        lambda x: x.mean(axis=-1, keepdims=True),
    ),
    ("max", lambda x: tg.max(x, axis=-2), lambda x: jnp.max(x, axis=-2)),
    ("method-max", lambda x: x.max(), lambda x: x.max()),
    ("min", lambda x: x.min(axis=(1, 2)), lambda x: x.min(axis=(1, 2))),
    ("prod", lambda x: tg.prod(x, axis=2), lambda x: jnp.prod(x, axis=2)),
    ("argmax", lambda x: tg.argmax(x, axis=-1), lambda x: jnp.argmax(x, axis=-1)),
    ("argmax-flat", lambda x: x.argmax(), lambda x: x.argmax()),
    (
        "argmin-keepdims",
        lambda x: x.argmin(axis=1, keepdims=True),
        lambda x: x.argmin(axis=1, keepdims=True),
    ),
    ("logsumexp", lambda x: tg.logsumexp(x, axis=-1), lambda x: jax.nn.logsumexp(x, axis=-1)),
    ("method-sum", lambda x: x.sum(0), lambda x: x.sum(0)),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", REDUCE_CASES, ids=[c[0] for c in REDUCE_CASES])
@pytest.mark.parametrize("x", [X, XI, XI > 2], ids=["f32", "i32", "bool"])
def test_reductions_match_jnp(name, tg_fn, jnp_fn, x):
    if name.startswith("logsumexp") and x.dtype == bool:
        pytest.skip("logsumexp of bool is not meaningful")
    _all_modes(tg_fn, jnp_fn, x)


def test_reductions_drop_weak_type_like_jnp():
    # sum(Python scalar) is a strong default-dtype value: it promotes bf16 to f32.
    y = np.ones(3, jnp.bfloat16)
    for mode in MODES:
        assert run_mode(mode, lambda s, y: tg.sum(s) + y, (2.0, y)).dtype == jnp.float32
        assert run_mode(mode, lambda s, y: tg.max(s) + y, (2.0, y)).dtype == jnp.float32


def test_reduction_dtypes_under_x64():
    with jax.enable_x64(True):
        x8 = np.arange(6, dtype=np.int8).reshape(2, 3)
        for tg_fn, jnp_fn in [
            (tg.sum, jnp.sum),
            (tg.mean, jnp.mean),
            (tg.prod, jnp.prod),
            (tg.argmax, jnp.argmax),
        ]:
            _all_modes(lambda x, f=tg_fn: f(x, axis=1), lambda x, f=jnp_fn: f(x, axis=1), x8)
        _all_modes(tg.mean, jnp.mean, np.arange(4, dtype=np.int64))


# -- creation ------------------------------------------------------------------------------------

CREATION_CASES = [
    ("zeros", lambda: tg.zeros((2, 3)), lambda: jnp.zeros((2, 3))),
    ("zeros-int-shape", lambda: tg.zeros(4, dtype=np.int32), lambda: jnp.zeros(4, dtype=np.int32)),
    ("ones-python-int", lambda: tg.ones((2,), int), lambda: jnp.ones((2,), int)),
    ("ones-bool", lambda: tg.ones((2, 2), bool), lambda: jnp.ones((2, 2), bool)),
    ("zeros-f64-canonical", lambda: tg.zeros(3, np.float64), lambda: jnp.zeros(3, np.float32)),
    ("zeros-name", lambda: tg.zeros((1, 2), "bf16"), lambda: jnp.zeros((1, 2), jnp.bfloat16)),
    ("full", lambda: tg.full((2, 3), 1.5), lambda: jnp.full((2, 3), 1.5)),
    ("full-int", lambda: tg.full((3,), 7), lambda: jnp.full((3,), 7)),
    ("full-bool", lambda: tg.full((3,), True), lambda: jnp.full((3,), True)),
    (
        "full-dtype",
        lambda: tg.full((2,), 2.7, dtype="i32"),
        lambda: jnp.full((2,), 2.7, dtype=jnp.int32),
    ),
    ("full-np-scalar", lambda: tg.full((2,), np.float16(3)), lambda: jnp.full((2,), np.float16(3))),
    (
        "full-array-fill",
        lambda: tg.full((2, 3), np.arange(3, dtype=np.float32)),
        lambda: jnp.full((2, 3), jnp.arange(3.0)),
    ),
    ("arange-stop", lambda: tg.arange(5), lambda: jnp.arange(5)),
    ("arange-start-stop", lambda: tg.arange(2, 7), lambda: jnp.arange(2, 7)),
    ("arange-step", lambda: tg.arange(1, 10, 3), lambda: jnp.arange(1, 10, 3)),
    ("arange-negative-step", lambda: tg.arange(5, -3, -2), lambda: jnp.arange(5, -3, -2)),
    ("arange-float", lambda: tg.arange(0.0, 1.0, 0.25), lambda: jnp.arange(0.0, 1.0, 0.25)),
    ("arange-float-stop", lambda: tg.arange(2.5), lambda: jnp.arange(2.5)),
    ("arange-mixed", lambda: tg.arange(1, 4.5), lambda: jnp.arange(1, 4.5)),
    ("arange-dtype", lambda: tg.arange(4, dtype="f32"), lambda: jnp.arange(4, dtype=jnp.float32)),
    ("arange-np-int8", lambda: tg.arange(np.int8(6)), lambda: jnp.arange(np.int8(6))),
    ("arange-empty", lambda: tg.arange(3, 1), lambda: jnp.arange(3, 1)),
    ("eye", lambda: tg.eye(3), lambda: jnp.eye(3)),
    ("eye-rect-k", lambda: tg.eye(2, 4, k=1, dtype=int), lambda: jnp.eye(2, 4, k=1, dtype=int)),
    ("eye-neg-k", lambda: tg.eye(4, 3, -1), lambda: jnp.eye(4, 3, -1)),
    ("identity", lambda: tg.identity(2, dtype="bool"), lambda: jnp.identity(2, dtype=bool)),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", CREATION_CASES, ids=[c[0] for c in CREATION_CASES])
def test_creation_matches_jnp(name, tg_fn, jnp_fn):
    want = jnp_fn()
    for mode in MODES:
        _check(run_mode(mode, lambda: tg_fn(), ()), want, f"{name} {mode}")
    _check(tg_fn(), want, f"{name} outside any trace")


def test_creation_dtypes_under_x64():
    with jax.enable_x64(True):
        for tg_fn, jnp_fn in [
            (lambda: tg.zeros(3), lambda: jnp.zeros(3)),
            (lambda: tg.arange(5), lambda: jnp.arange(5)),
            (lambda: tg.arange(0.5, 2), lambda: jnp.arange(0.5, 2)),
            (lambda: tg.eye(2), lambda: jnp.eye(2)),
            (lambda: tg.full((2,), 3), lambda: jnp.full((2,), 3)),
            (lambda: tg.ones(2, np.float64), lambda: jnp.ones(2, np.float64)),
        ]:
            for mode in MODES:
                _check(run_mode(mode, tg_fn, ()), jnp_fn(), mode)


LIKE_CASES = [
    ("zeros_like", lambda x: tg.zeros_like(x), jnp.zeros_like),
    (
        "ones_like-dtype",
        lambda x: tg.ones_like(x, dtype="i32"),
        lambda x: jnp.ones_like(x, dtype=jnp.int32),
    ),
    ("full_like", lambda x: tg.full_like(x, -2.5), lambda x: jnp.full_like(x, -2.5)),
    (
        "full_like-shape",
        lambda x: tg.full_like(x, 3, shape=(2,)),
        lambda x: jnp.full_like(x, 3, shape=(2,)),
    ),
]


@pytest.mark.parametrize("name,tg_fn,jnp_fn", LIKE_CASES, ids=[c[0] for c in LIKE_CASES])
@pytest.mark.parametrize("x", [X, XI, X.astype(jnp.bfloat16)], ids=["f32", "i32", "bf16"])
def test_like_functions_match_jnp(name, tg_fn, jnp_fn, x):
    _all_modes(tg_fn, jnp_fn, x)


def test_full_of_python_scalar_is_weak_like_jnp():
    y = np.ones(2, jnp.bfloat16)
    for mode in MODES:
        assert run_mode(mode, lambda y: tg.full((2,), 1.5) * y, (y,)).dtype == jnp.bfloat16
        assert run_mode(mode, lambda y: tg.zeros((2,)) * y, (y,)).dtype == jnp.float32
        assert run_mode(mode, lambda s, y: tg.zeros_like(s) + y, (1.0, y)).dtype == jnp.bfloat16


def test_creation_ir_reads_well():
    g = tg.trace(lambda: tg.arange(3) + tg.ones(3, "i32"))
    assert [n.op for n in g.nodes] == ["arange", "full", "add"]
    assert "arange(start=0, stop=3, step=1, dtype=i32)" in str(g).replace("%", "")


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,match",
    [
        (lambda x: tg.reshape(x, (-1, -1)), "one -1"),
        (lambda x: tg.reshape(x, (5, -1)), "cannot reshape"),
        (lambda x: tg.reshape(x, (5, 5)), "cannot reshape"),
        (lambda x: tg.split(x, 3, axis=-1), "equal parts"),
        (lambda x: tg.sum(x, axis=3), "out of range"),
        (lambda x: tg.transpose(x, (0, 0, 1)), "permutation"),
        (lambda x: tg.squeeze(x, 0), "cannot squeeze"),
        (lambda x: tg.concatenate([x, x[0]]), "concatenate"),
        (lambda x: tg.stack([x, x[0]]), "one shape"),
        (lambda x: tg.broadcast_to(x, (3, 4)), "cannot broadcast"),
        (lambda x: tg.max(x[:, :0], axis=1), "zero-size"),
        (lambda x: tg.pad(x, 1, mode="wrap"), "mode"),
        (lambda x: tg.moveaxis(x, 0, 5), "out of range"),
        (lambda x: tg.arange(0, 5, 0), "zero"),
        (lambda x: tg.take(x, np.array([0.5])), "integers"),
    ],
    ids=[
        "two-minus1",
        "indivisible",
        "size",
        "split",
        "axis",
        "perm",
        "squeeze",
        "concat",
        "stack",
        "broadcast",
        "max-empty",
        "pad-mode",
        "moveaxis",
        "arange-step",
        "take-float",
    ],
)
def test_bad_arguments_are_shape_errors_naming_the_user_line(fn, match):
    for mode in MODES:
        with pytest.raises(tg.ShapeError, match=match) as info:
            run_mode(mode, fn, (X,))
        assert "test_frontend_shape.py" in str(info.value), str(info.value)
