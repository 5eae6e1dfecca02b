"""The scatter family: ``index_set``, ``index_add``, ``index_mul``, ``index_min`` and
``index_max`` write ``updates`` into ``base`` at integer ``indices`` along one ``axis``
(shape: base's with that axis replaced by the indices' shape, as ``take`` reads). They are
the transposes of ``take`` and what ``x.at[idx].set/add/multiply/min/max`` and
``tg.from_jax``'s scatters compose to: the front end merges every indexed dim into one
axis, so one op per update.

Indexing is ``take``'s: a negative index wraps once; then the ``mode`` attribute says what
an index still outside [0, n) does: ``"clip"`` clamps it to the edge (the default, and
``take``'s reading), ``"drop"`` drops its update (jax.numpy's ``.at[]`` default). An
empty axis takes no update in either mode. Updates are converted to base's dtype (the
front end promotes both first, as jax.numpy does).

Repeated indices: add, mul, min and max combine every update at a position (float sums
and products in an order XLA picks, so the last bits may differ between backends).
``index_set`` writes the LAST update at a position (row-major order of the indices) on
every backend, where JAX leaves the winner unspecified (XLA:GPU races): all updates at a
position carry the winner's value before the scatter. Its VJP gives that update the
gradient, and base none where it was overwritten.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .defop import (
    Attr,
    Sample,
    ShapeError,
    TensorType,
    bind,
    defop,
    first_dtype,
    first_sharding,
    first_weak,
    normalize_axis,
)
from .samples import arr

MODES = ("clip", "drop")


# -- shared by the five blocks ----------------------------------------------------------------


def _scatter_shape(op, *, bools):
    def rule(base: TensorType, indices: TensorType, updates: TensorType, *, axis, mode):
        if indices.dtype.kind not in "iu":
            raise ShapeError(f"{op} indices must be integers, got {indices}")
        if mode not in MODES:
            raise ShapeError(f"{op} mode {mode!r} is not one of {', '.join(MODES)}")
        if base.ndim == 0:
            raise ShapeError(f"{op} needs a base of rank >= 1, got a scalar")
        if base.dtype == np.bool_ and not bools:  # as jax: .at[].add/multiply have no bool form
            raise ShapeError(f"{op} needs a numeric base, got {base}")
        a = normalize_axis(axis, base.ndim)
        want = base.shape[:a] + indices.shape + base.shape[a + 1 :]
        if updates.shape != want:
            raise ShapeError(f"{op} updates must have shape {list(want)}, got {updates}")
        return base.shape

    return rule


def _positions(indices, n, mode):
    """The positions an implementation writes: wrapped once, clamped ("clip") or left out
    of range ("drop": the scatter drops them)."""
    idx = jnp.asarray(indices)
    if idx.dtype.itemsize < 4:  # room for idx + n
        idx = idx.astype(jnp.int32)
    if jnp.issubdtype(idx.dtype, jnp.signedinteger):
        idx = jnp.where(idx < 0, idx + n, idx)
    return jnp.clip(idx, 0, max(n - 1, 0)) if mode == "clip" else idx


def _scatter_impl(method):
    def impl(base, indices, updates, *, axis, mode):
        base = jnp.asarray(base)
        a = axis % base.ndim
        idx = _positions(indices, base.shape[a], mode)
        ref = base.at[(slice(None),) * a + (idx,)]
        # idx is in bounds or to be dropped: no second wrap (-1 must not come back)
        return getattr(ref, method)(
            jnp.asarray(updates, dtype=base.dtype), mode="drop", wrap_negative_indices=False
        )

    return impl


def _scatter_reference(combine):
    """An independent numpy reference: a loop over the updates in row-major order."""

    def ref(base, indices, updates, axis=0, mode="clip"):
        a = normalize_axis(axis, base.ndim)
        n = base.shape[a]
        inexact = base.dtype.kind == "f" or base.dtype == jnp.bfloat16
        out = np.array(base, dtype=np.float64 if inexact else base.dtype)
        rows = np.moveaxis(out, a, 0)  # a view: writes land in out
        idx = np.asarray(indices).astype(np.int64).reshape(-1)
        k = np.ndim(indices)
        upd = np.moveaxis(np.asarray(updates).astype(out.dtype), list(range(a, a + k)), list(range(k)))
        upd = upd.reshape((idx.size,) + rows.shape[1:])
        for i, j in enumerate(idx):
            j = j + n if j < 0 else j
            if mode == "clip":
                j = min(max(j, 0), n - 1)
            if 0 <= j < n:
                rows[j] = combine(rows[j], upd[i])
        return jnp.asarray(out).astype(base.dtype)

    return ref


_ATTRS = {"axis": Attr("int", 0), "mode": Attr("str", "clip")}


def _index_array(shape, n, tag=""):
    return arr(shape, "i32", -n, n - 1, tag)


def _int32(idx):
    return idx if idx.dtype.itemsize >= 4 else bind("astype", idx, dtype=np.int32)


def _in_bounds(idx, n):
    """Which indices land in [0, n) after wrapping once (the updates "drop" keeps)."""
    idx = _int32(idx)
    if idx.dtype.kind == "i":
        idx = bind("where", idx < 0, idx + n, idx)
    return bind("logical_and", idx >= 0, idx < n)


def _along(mask, ndim, a):
    """A mask over the indices' shape, shaped to broadcast against updates."""
    k = len(mask.shape)
    return bind("reshape", mask, shape=(1,) * a + tuple(mask.shape) + (1,) * (ndim - a - k))


def _no_updates(base, idx, upd, axis):
    """Nothing is written (no indices, or an empty axis): take cannot read ct there."""
    return idx.size == 0 or base.shape[normalize_axis(axis, len(base.shape))] == 0


def _zeros(t, dtype=None):
    return bind("full", shape=tuple(t.shape), value=0, dtype=dtype or t.dtype)


def _updates_ct(ct, idx, upd, *, axis, mode, keep=None):
    """take(ct, idx) along axis, zero where ``keep`` (over the indices) is False and, in
    "drop" mode, where the update was dropped."""
    a = normalize_axis(axis, len(ct.shape))
    g = bind("take", ct, idx, axis=a)
    if mode == "drop":
        ok = _in_bounds(idx, ct.shape[a])
        keep = ok if keep is None else bind("logical_and", keep, ok)
    if keep is not None:
        g = bind("where", _along(keep, len(upd.shape), a), g, 0)
    return g


# -- index_set --------------------------------------------------------------------------------


def _index_set_impl(base, indices, updates, *, axis, mode):
    base = jnp.asarray(base)
    a = axis % base.ndim
    n, m = base.shape[a], int(np.size(indices))
    if n == 0 or m == 0:
        return base
    idx = _positions(indices, n, mode)
    order = jnp.arange(m, dtype=jnp.int32).reshape(np.shape(indices))
    last = jnp.full((n,), -1, jnp.int32).at[idx].max(order, mode="drop", wrap_negative_indices=False)
    # every update at a position carries the last one's value: the scatter's order is moot
    flat = jnp.reshape(updates, base.shape[:a] + (m,) + base.shape[a + 1 :])
    winner = jnp.take(last, jnp.clip(idx, 0, n - 1), axis=0)
    upd = jnp.take(flat, jnp.clip(winner, 0, m - 1), axis=a)
    ref = base.at[(slice(None),) * a + (idx,)]
    return ref.set(jnp.asarray(upd, dtype=base.dtype), mode="drop", wrap_negative_indices=False)


def _last_writer(idx, n, mode):
    """Per position along the axis: the row-major number of the update written last, -1 for
    none; and each update's own number."""
    order = bind("arange", start=0, stop=int(idx.size), step=1, dtype=np.int32)
    order = bind("reshape", order, shape=tuple(idx.shape))
    none = bind("full", shape=(n,), value=-1, dtype=np.int32)
    return bind("index_max", none, idx, order, axis=0, mode=mode), order


def _index_set_vjp(ct, base, idx, upd, *, out, axis, mode):
    if _no_updates(base, idx, upd, axis):
        return [ct, None, _zeros(upd, ct.dtype)]
    a = normalize_axis(axis, len(base.shape))
    n = base.shape[a]
    last, order = _last_writer(idx, n, mode)
    written = bind("reshape", last >= 0, shape=(1,) * a + (n,) + (1,) * (len(base.shape) - a - 1))
    won = bind("eq", bind("take", last, idx, axis=0), order)
    return [
        bind("where", written, 0, ct),
        None,
        _updates_ct(ct, idx, upd, axis=a, mode=mode, keep=won),
    ]


def _index_set_reference(base, indices, updates, axis=0, mode="clip"):
    return _scatter_reference(lambda old, new: new)(base, indices, updates, axis, mode)


index_set = defop(
    "index_set",
    shape=_scatter_shape("index_set", bools=True),
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_index_set_impl,
    attrs=dict(_ATTRS),
    arity=3,
    vjp=_index_set_vjp,
    samples=lambda: [
        Sample((arr((5, 3)), _index_array((4,), 5), arr((4, 3), tag="u")), {"axis": 0}, "rows"),
        Sample((arr((4,)), np.array([1, 1, -1, 9, 1], np.int32), arr((5,), tag="u")), {}, "repeat-wrap-clamp"),
        Sample(
            (arr((2, 6), "f64"), np.array([[0, 7], [-7, 2], [5, -1]], np.int32), arr((2, 3, 2), "f64", tag="u")),
            {"axis": 1, "mode": "drop"},
            "drop",
        ),
        Sample((arr((3, 2), "bf16"), _index_array((2,), 3), arr((2, 2), "bf16", tag="u")), {}, "bf16"),
        Sample((arr((6,), "i32"), np.array([0, 5, 0], np.int64), arr((3,), "i32", tag="u")), {}, "i32"),
        Sample((arr((3, 2), "bool"), np.array([2, 253], np.uint8), arr((2, 2), "bool", tag="u")), {}, "bool"),
        Sample((arr((4,)), np.array(-2, np.int32), arr((), tag="u")), {}, "scalar-index"),
        Sample((arr((4, 2)), np.zeros((0,), np.int32), arr((0, 2))), {}, "no-indices"),
        Sample((arr((0, 3)), np.array([0, 1], np.int32), arr((2, 3))), {"mode": "drop"}, "empty-axis"),
    ],
    reference=_index_set_reference,
    doc="Scatter: base with updates written at ``indices`` along ``axis`` (``take``'s "
    "indexing; ``mode`` clip or drop). Of repeated indices the last update wins.",
)


# -- index_add --------------------------------------------------------------------------------


def _index_add_vjp(ct, base, idx, upd, *, out, axis, mode):
    if _no_updates(base, idx, upd, axis):
        return [ct, None, _zeros(upd, ct.dtype)]
    return [ct, None, _updates_ct(ct, idx, upd, axis=axis, mode=mode)]


index_add = defop(
    "index_add",
    shape=_scatter_shape("index_add", bools=False),
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_scatter_impl("add"),
    attrs=dict(_ATTRS),
    arity=3,
    vjp=_index_add_vjp,
    samples=lambda: [
        Sample((arr((5, 3)), _index_array((4,), 5), arr((4, 3), tag="u")), {"axis": 0}, "rows"),
        Sample((arr((2, 6), "f64"), _index_array((2, 3), 6), arr((2, 2, 3), "f64", tag="u")), {"axis": 1}, "2d-idx"),
        Sample((arr((4,)), np.array([1, 1, -1, 9], np.int32), arr((4,), tag="u")), {"axis": 0}, "repeat-wrap-clamp"),
        Sample((arr((3, 2), "bf16"), _index_array((2,), 3), arr((2, 2), "bf16", tag="u")), {"axis": 0}, "bf16"),
        Sample(
            (arr((5, 2)), np.array([4, 5, -1, -6, 4], np.int32), arr((5, 2), tag="u")),
            {"mode": "drop"},
            "drop-repeat",
        ),
        Sample((arr((6,), "i32"), np.array([[0, 5], [0, 0]], np.int8), arr((2, 2), "i32", tag="u")), {}, "i32"),
        Sample((arr((3,), "u8"), np.array([1, 300], np.int32), arr((2,), "u8", tag="u")), {"mode": "drop"}, "u8-drop"),
        Sample((arr((4,)), np.array(-2, np.int32), arr((), tag="u")), {}, "scalar-index"),
        # jax_vjp=False: JAX's own transpose gathers from the empty axis and fails
        Sample((arr((0,)), np.array([0, 1], np.int32), arr((2,))), {}, "empty-axis", jax_vjp=False),
    ],
    reference=_scatter_reference(np.add),
    doc="Scatter-add: base with updates added at ``indices`` along ``axis`` (the transpose "
    "of take: same wrap-then-clamp indexing, or drop with ``mode='drop'``; repeated indices "
    "accumulate).",
)


# -- index_mul --------------------------------------------------------------------------------


def _index_mul_vjp(ct, base, idx, upd, *, out, axis, mode):
    # d out[j] / d upd[i] = base[j] * (the product of the other updates at j). With the
    # zeros among those counted apart, that is exact without dividing by a zero:
    # P = product of the nonzero updates at j, Z = how many are zero;
    # others(i) = P / upd[i] if Z == 0, P if upd[i] == 0 and Z == 1, else 0.
    ct_base = bind("index_mul", ct, idx, upd, axis=axis, mode=mode)
    if _no_updates(base, idx, upd, axis):
        return [ct_base, None, _zeros(upd, ct.dtype)]
    a = normalize_axis(axis, len(base.shape))
    ones = bind("full", shape=tuple(base.shape), value=1, dtype=ct.dtype)
    zero = upd == 0
    prod = bind("index_mul", ones, idx, bind("where", zero, 1, upd), axis=a, mode=mode)
    zeros = bind("index_add", _zeros(base, ct.dtype), idx, bind("astype", zero, dtype=ct.dtype), axis=a, mode=mode)
    p = bind("take", prod, idx, axis=a)
    z = bind("take", zeros, idx, axis=a)
    others = bind(
        "where",
        zero,
        bind("where", z == 1, p, 0),
        bind("where", z == 0, p / bind("where", zero, 1, upd), 0),
    )
    return [ct_base, None, _updates_ct(ct * base, idx, upd, axis=a, mode=mode) * others]


index_mul = defop(
    "index_mul",
    shape=_scatter_shape("index_mul", bools=False),
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_scatter_impl("multiply"),
    attrs=dict(_ATTRS),
    arity=3,
    vjp=_index_mul_vjp,
    # jax_vjp=False: JAX's scatter_mul has no updates gradient unless the indices are
    # promised unique (jax.vjp raises); finite differences check these
    samples=lambda: [
        Sample((arr((5, 3)), _index_array((4,), 5), arr((4, 3), tag="u")), {}, "rows", jax_vjp=False),
        Sample(
            (arr((4,), "f64"), np.array([1, 1, -1, 9, 1], np.int32), np.array([2.0, 0.0, -1.5, 0.5, 3.0])),
            {},
            "repeat-zero-clamp",
            jax_vjp=False,
        ),
        Sample(
            (arr((2, 6)), np.array([[0, 7], [-7, 2], [2, -1]], np.int32), arr((2, 3, 2), tag="u")),
            {"axis": 1, "mode": "drop"},
            "drop",
            jax_vjp=False,
        ),
        Sample(
            (arr((3,), "f64"), np.array([0, 0, 0, 2], np.int32), np.array([0.0, 0.0, 2.0, 0.0])),
            {},
            "two-zeros",
            jax_vjp=False,
        ),
        Sample((arr((3, 2), "bf16"), _index_array((2,), 3), arr((2, 2), "bf16", tag="u")), {}, "bf16", jax_vjp=False),
        Sample((arr((6,), "i32"), np.array([0, 5, 0], np.int64), arr((3,), "i32", tag="u")), {}, "i32"),
        Sample((arr((4,)), np.array(-2, np.int32), arr((), tag="u")), {}, "scalar-index", jax_vjp=False),
        Sample((arr((0,)), np.array([0, 1], np.int32), arr((2,))), {"mode": "drop"}, "empty-axis", jax_vjp=False),
    ],
    reference=_scatter_reference(np.multiply),
    doc="Scatter-multiply: base multiplied by updates at ``indices`` along ``axis`` "
    "(``take``'s indexing; ``mode`` clip or drop; repeated indices multiply in turn).",
)


# -- index_min, index_max ---------------------------------------------------------------------


def _extremal_vjp(ct, base, idx, upd, *, out, axis, mode):
    """JAX's rule for scatter_min/max: the updates that equal the result share a
    position's gradient equally with base when base equals it too."""
    if _no_updates(base, idx, upd, axis):
        return [ct, None, _zeros(upd, ct.dtype)]
    a = normalize_axis(axis, len(base.shape))
    won = bind("eq", upd, bind("take", out, idx, axis=a))
    if mode == "drop":
        won = bind("logical_and", won, _along(_in_bounds(idx, base.shape[a]), len(upd.shape), a))
    one = bind("full", shape=tuple(upd.shape), value=1, dtype=ct.dtype)
    wins = bind("index_add", _zeros(base, ct.dtype), idx, bind("astype", won, dtype=ct.dtype), axis=a, mode=mode)
    hits = bind("index_add", _zeros(base, ct.dtype), idx, one, axis=a, mode=mode)
    kept = bind("astype", bind("eq", base, out), dtype=ct.dtype)  # base shares the position
    share = 1 / (wins + kept)
    ct_base = bind("where", hits > 0, bind("where", kept > 0, ct * share, 0), ct)
    g = bind("take", ct * share, idx, axis=a)
    return [ct_base, None, bind("where", won, g, 0)]


def _extremal_samples():
    return [
        Sample((arr((5, 3)), _index_array((4,), 5), arr((4, 3), tag="u")), {}, "rows"),
        Sample((arr((4,), "f64"), np.array([1, 1, -1, 9], np.int32), arr((4,), "f64", tag="u")), {}, "repeat-wrap-clamp"),
        Sample(
            (arr((2, 6)), np.array([[0, 7], [-7, 2], [2, -1]], np.int32), arr((2, 3, 2), tag="u")),
            {"axis": 1, "mode": "drop"},
            "drop",
        ),
        Sample(  # ties with base and among updates: a kink, checked in tests/test_at.py
            (np.array([1.0, 2.0, 3.0], np.float32), np.array([0, 0, 1, 1, 2], np.int32),
             np.array([1.0, 1.0, 5.0, 5.0, -5.0], np.float32)),
            {},
            "ties",
            grad=False,
        ),
        Sample((arr((3, 2), "bf16"), _index_array((2,), 3), arr((2, 2), "bf16", tag="u")), {}, "bf16"),
        Sample((arr((6,), "i32"), np.array([0, 5, 0], np.int64), arr((3,), "i32", tag="u")), {}, "i32"),
        Sample((arr((3, 2), "bool"), np.array([2, 253], np.uint8), arr((2, 2), "bool", tag="u")), {}, "bool"),
        Sample((arr((4,)), np.array(-2, np.int32), arr((), tag="u")), {}, "scalar-index"),
        # jax_vjp=False: JAX's own rule gathers from the empty axis and fails
        Sample((arr((0, 2)), np.array([0, 1], np.int32), arr((2, 2))), {}, "empty-axis", jax_vjp=False),
    ]


index_min = defop(
    "index_min",
    shape=_scatter_shape("index_min", bools=True),
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_scatter_impl("min"),
    attrs=dict(_ATTRS),
    arity=3,
    vjp=_extremal_vjp,
    samples=_extremal_samples,
    reference=_scatter_reference(np.minimum),
    doc="Scatter-min: base[j] = min(base[j], updates at j) along ``axis`` (``take``'s "
    "indexing; ``mode`` clip or drop). Ties share the gradient equally, as in JAX.",
)


index_max = defop(
    "index_max",
    shape=_scatter_shape("index_max", bools=True),
    dtype=first_dtype,
    weak=first_weak,
    sharding=first_sharding,
    impl=_scatter_impl("max"),
    attrs=dict(_ATTRS),
    arity=3,
    vjp=_extremal_vjp,
    samples=_extremal_samples,
    reference=_scatter_reference(np.maximum),
    doc="Scatter-max: base[j] = max(base[j], updates at j) along ``axis`` (``take``'s "
    "indexing; ``mode`` clip or drop). Ties share the gradient equally, as in JAX.",
)
