"""Contractions: matmul (numpy semantics), dot_general (lax semantics) and einsum; and
the Cholesky and LU factorizations and triangular solves (lax.linalg semantics).

References are computed in float64 numpy (int64 for integers, bool arithmetic for bool)
and cast to the result dtype, so they share no code path with the implementations.
Their results carry no sharding (which dims a contraction partitions is no plain rule).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax import lax

from ..core import weak_of
from ..errors import Error
from ..ir.types import DTYPE_NAMES, is_float
from .defop import (
    Attr,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    defop,
    bind,
    lax_weak,
    no_sharding,
    promoted_dtype,
    promoted_weak,
    unbroadcast,
)
from .samples import FLOATS, arr

# -- reference helpers ------------------------------------------------------------


def _wide(*arrays):
    """numpy copies in a wide dtype where products and sums are exact enough."""
    dt = jnp.result_type(*arrays)
    kind = np.dtype(dt).kind
    wide = np.bool_ if kind == "b" else np.int64 if kind in "iu" else np.float64
    return [np.asarray(a).astype(wide) for a in arrays], dt


def _narrow(result, dt):
    if np.dtype(dt).kind == "b":
        result = result != 0
    return jnp.asarray(np.asarray(result)).astype(dt)


# -- matmul -------------------------------------------------------------------------


def _narrow_weak_ints(*xs):
    """Operands for jnp.matmul / jnp.einsum: a weak int wider than the integer result
    (i8 array @ weak i32 array) converted to it first. jax.numpy asks lax for a result
    narrower than that operand there, which lax refuses; converted, the result is what
    `promoted_dtype` says, as for the other promotions."""
    dt = np.dtype(jax.dtypes.result_type(*xs))
    if dt.kind not in "iu":
        return xs
    return tuple(
        lax.convert_element_type(x, dt)
        if weak_of(x) and np.dtype(jnp.result_type(x)).kind in "iu" and jnp.asarray(x).dtype.itemsize > dt.itemsize
        else x
        for x in xs
    )


def _matmul_shape(x: TensorType, y: TensorType) -> tuple[int, ...]:
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError("matmul needs operands of rank >= 1 (use mul for scalars)")
    xs = (1,) + x.shape if x.ndim == 1 else x.shape
    ys = y.shape + (1,) if y.ndim == 1 else y.shape
    if xs[-1] != ys[-2]:
        raise ShapeError(
            f"matmul contracts dimension {xs[-1]} of the left operand with dimension "
            f"{ys[-2]} of the right one; they must be equal"
        )
    batch = broadcast_shapes(xs[:-2], ys[:-2])
    return batch + (xs[-2],) * (x.ndim > 1) + (ys[-1],) * (y.ndim > 1)


def _matmul_reference(x, y):
    (a, b), dt = _wide(x, y)
    if a.dtype == np.bool_:
        a, b = a.astype(np.int64), b.astype(np.int64)
    return _narrow(np.matmul(a, b), dt)


def _matmul_samples():
    out = []
    for dt in FLOATS:
        out += [
            Sample((arr((3, 4), dt), arr((4, 5), dt, tag="b")), name=f"{dt}-2d"),
            Sample((arr((2, 1, 3, 4), dt), arr((5, 4, 2), dt, tag="b")), name=f"{dt}-bcast"),
        ]
    out += [
        Sample((arr((4,)), arr((4,), tag="b")), name="1d-1d"),
        Sample((arr((4,)), arr((2, 4, 3), tag="b")), name="1d-3d"),
        Sample((arr((2, 3, 4)), arr((4,), tag="b")), name="3d-1d"),
        Sample((arr((0, 3)), arr((3, 2), tag="b")), name="empty-rows"),
        Sample((arr((2, 0)), arr((0, 3), tag="b")), name="empty-contraction"),
        Sample((arr((2, 3), "i32", -3, 3), arr((3, 2), "i32", -3, 3, "b")), name="i32"),
        Sample((arr((2, 3), "bool"), arr((3, 2), "bool", tag="b")), name="bool"),
        Sample((arr((2, 3), "i8", -3, 3), arr((3,), "f16", tag="b")), name="mixed-i8-f16"),
        Sample((arr((2, 3), "f32"), arr((3, 2), "bf16", tag="b")), name="mixed-f32-bf16"),
    ]
    return out


def _swap_last(t):
    perm = tuple(range(t.ndim - 2)) + (t.ndim - 1, t.ndim - 2)
    return bind("transpose", t, perm=perm)


def _matmul_vjp(ct, x, y, *, out):
    # Work on the rank >= 2 forms (a 1-D x is a row, a 1-D y a column), then sum the
    # batch axes that broadcasting added and drop the unit dims again.
    xs = (1,) + x.shape if x.ndim == 1 else x.shape
    ys = y.shape + (1,) if y.ndim == 1 else y.shape
    batch = out.shape[: len(out.shape) - (x.ndim > 1) - (y.ndim > 1)]
    ct2 = bind("reshape", ct, shape=batch + (xs[-2], ys[-1])) if x.ndim == 1 or y.ndim == 1 else ct
    x2 = x if x.ndim > 1 else bind("reshape", x, shape=xs)
    y2 = y if y.ndim > 1 else bind("reshape", y, shape=ys)
    dx = unbroadcast(bind("matmul", ct2, _swap_last(y2)), xs)
    dy = unbroadcast(bind("matmul", _swap_last(x2), ct2), ys)
    if x.ndim == 1:
        dx = bind("reshape", dx, shape=x.shape)
    if y.ndim == 1:
        dy = bind("reshape", dy, shape=y.shape)
    return [dx, dy]


matmul = defop(
    "matmul",
    shape=_matmul_shape,
    dtype=promoted_dtype,  # jnp.matmul: jax.dtypes.result_type, weak results the default
    weak=promoted_weak,
    sharding=no_sharding,
    impl=lambda x, y: jnp.matmul(*_narrow_weak_ints(x, y)),
    arity=2,
    vjp=_matmul_vjp,
    samples=_matmul_samples,
    reference=_matmul_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="numpy matmul: 1-D operands are vectors, leading dimensions broadcast as a batch.",
)


# -- dot_general --------------------------------------------------------------------


def _dims(pairs, what):
    if len(pairs) != 2:
        raise ShapeError(f"{what} must be a pair (lhs dims, rhs dims), got {pairs}")
    lhs, rhs = pairs
    if len(lhs) != len(rhs):
        raise ShapeError(f"{what} pairs {len(lhs)} lhs dims with {len(rhs)} rhs dims")
    return tuple(lhs), tuple(rhs)


def _check_dims(dims, ndim, side):
    for d in dims:
        if not 0 <= d < ndim:
            raise ShapeError(f"{side} dimension {d} is out of range for rank {ndim}")
    if len(set(dims)) != len(dims):
        raise ShapeError(f"{side} dimensions {dims} repeat")


def _dot_general_shape(x: TensorType, y: TensorType, *, contracting, batch) -> tuple[int, ...]:
    lc, rc = _dims(contracting, "contracting")
    lb, rb = _dims(batch, "batch")
    _check_dims(lc + lb, x.ndim, "lhs")
    _check_dims(rc + rb, y.ndim, "rhs")
    for what, ld, rd in (("contracting", lc, rc), ("batch", lb, rb)):
        for a, b in zip(ld, rd):
            if x.shape[a] != y.shape[b]:
                raise ShapeError(
                    f"{what} dimension {a} of lhs (size {x.shape[a]}) and {b} of rhs "
                    f"(size {y.shape[b]}) differ"
                )
    lfree = [x.shape[i] for i in range(x.ndim) if i not in lc + lb]
    rfree = [y.shape[i] for i in range(y.ndim) if i not in rc + rb]
    return tuple(x.shape[i] for i in lb) + tuple(lfree) + tuple(rfree)


def _dot_general_impl(x, y, *, contracting, batch):
    dt = jnp.result_type(x, y)
    x = x if x.dtype == dt else lax.convert_element_type(x, dt)
    y = y if y.dtype == dt else lax.convert_element_type(y, dt)
    return lax.dot_general(x, y, (contracting, batch))


def _dot_general_reference(x, y, *, contracting, batch):
    # np.einsum with subscripts built from the dimension numbers.
    (a, b), dt = _wide(x, y)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    ls = [next(letters) for _ in range(a.ndim)]
    rs = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(*contracting):
        rs[j] = ls[i]
    for i, j in zip(*batch):
        rs[j] = ls[i]
    lb, rb = batch
    out = [ls[i] for i in lb]
    out += [ls[i] for i in range(a.ndim) if i not in contracting[0] + lb]
    out += [rs[i] for i in range(b.ndim) if i not in contracting[1] + rb]
    if a.dtype == np.bool_:
        a, b = a.astype(np.int64), b.astype(np.int64)
    return _narrow(np.einsum(f"{''.join(ls)},{''.join(rs)}->{''.join(out)}", a, b), dt)


def _dg(contracting, batch=((), ())):
    return {"contracting": contracting, "batch": batch}


def _dot_general_samples():
    out = []
    for dt in FLOATS:
        out.append(
            Sample((arr((3, 4), dt), arr((4, 5), dt, tag="b")), _dg(((1,), (0,))), f"{dt}-mm")
        )
    out += [
        Sample((arr((2, 3, 4)), arr((2, 4, 5), tag="b")), _dg(((2,), (1,)), ((0,), (0,))), "bmm"),
        Sample(
            (arr((4, 3, 2)), arr((5, 2, 4), tag="b")), _dg(((0,), (2,)), ((2,), (1,))), "batch-last"
        ),
        Sample((arr((3, 4)), arr((5, 4), tag="b")), _dg(((1,), (1,))), "x-wT"),
        Sample((arr((2, 3, 4)), arr((4, 3), tag="b")), _dg(((1, 2), (1, 0))), "two-contracting"),
        Sample((arr((3,)), arr((4,), tag="b")), _dg(((), ())), "outer"),
        Sample((arr((0, 4)), arr((4, 2), tag="b")), _dg(((1,), (0,))), "empty"),
        Sample(
            (arr((3, 4), "i32", -3, 3), arr((4, 2), "i32", -3, 3, "b")), _dg(((1,), (0,))), "i32"
        ),
        Sample((arr((3, 4), "f32"), arr((4, 2), "bf16", tag="b")), _dg(((1,), (0,))), "mixed"),
    ]
    return out


def _ranges_like(*lists):
    start = 0
    for xs in lists:
        yield tuple(range(start, start + len(xs)))
        start += len(xs)


def _dot_general_transpose_lhs(ct, x, y, contracting, batch, swap_ans=False):
    # A port of jax.lax's _dot_general_transpose_lhs: contract the cotangent with y over
    # y's free dims (and batch), then transpose the result back to x's layout.
    (xc, yc), (xb, yb) = contracting, batch
    x_kept = [i for i in range(x.ndim) if i not in xc + xb]
    y_kept = [i for i in range(y.ndim) if i not in yc + yb]
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(xb, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(xb, x_kept, y_kept)
    d = bind(
        "dot_general", ct, y, contracting=(ans_y, tuple(y_kept)), batch=(ans_batch, tuple(yb))
    )
    xc_sorted_by_y = [xc[i] for i in np.argsort(yc)]
    out_axes = tuple(int(i) for i in np.argsort(list(xb) + x_kept + xc_sorted_by_y))
    return d if out_axes == tuple(range(x.ndim)) else bind("transpose", d, perm=out_axes)


def _dot_general_vjp(ct, x, y, *, out, contracting, batch):
    (xc, yc), (xb, yb) = contracting, batch
    return [
        _dot_general_transpose_lhs(ct, x, y, contracting, batch),
        _dot_general_transpose_lhs(ct, y, x, (yc, xc), (yb, xb), swap_ans=True),
    ]


dot_general = defop(
    "dot_general",
    shape=_dot_general_shape,
    dtype=promoted_dtype,
    weak=lax_weak,
    sharding=no_sharding,
    impl=_dot_general_impl,
    vjp=_dot_general_vjp,
    attrs={"contracting": Attr("int_pairs"), "batch": Attr("int_pairs", ((), ()))},
    arity=2,
    samples=_dot_general_samples,
    reference=_dot_general_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="lax.dot_general: output is batch dims, then lhs free dims, then rhs free dims. "
    "Operands are promoted to a common dtype first (as jax.numpy does).",
)


# -- einsum -------------------------------------------------------------------------


def _parse_einsum(spec: str, ndims):
    """Split an einsum spec into per-operand label lists and the output labels.
    ``...`` is kept as the single label ``.``; the result always has an output."""
    spec = spec.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->", 1)
        if "->" in out:
            raise ShapeError(f"einsum spec {spec!r} has more than one '->'")
    else:
        lhs, out = spec, None
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum spec {spec!r} names {len(terms)} operands, got {len(ndims)}")

    def labels(term, where):
        if term.count("...") > 1 or term.replace("...", "").count(".") > 0:
            raise ShapeError(f"einsum {where} {term!r}: '...' may appear once")
        term = term.replace("...", ".")
        for c in term:
            if c != "." and not c.isalpha():
                raise ShapeError(f"einsum {where} {term!r}: bad label {c!r}")
        return list(term)

    ins = [labels(t, "operand") for t in terms]
    if out is None:
        counts: dict[str, int] = {}
        for t in ins:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        has_ellipsis = any("." in t for t in ins)
        outs = (["."] if has_ellipsis else []) + sorted(
            c for c, n in counts.items() if n == 1 and c != "."
        )
    else:
        outs = labels(out, "output")
        seen = {c for t in ins for c in t}
        for c in outs:
            if c not in seen:
                raise ShapeError(f"einsum output label {c!r} is not in any operand")
        if len(set(outs)) != len(outs):
            raise ShapeError(f"einsum output {out!r} repeats a label")
    return ins, outs


def _einsum_shape(*types: TensorType, spec: str) -> tuple[int, ...]:
    ins, outs = _parse_einsum(spec, [t.ndim for t in types])
    sizes: dict[str, int] = {}
    ellipses = []
    for k, (t, labels) in enumerate(zip(types, ins)):
        n_named = len(labels) - ("." in labels)
        if ("." in labels and t.ndim < n_named) or ("." not in labels and t.ndim != n_named):
            raise ShapeError(
                f"einsum operand {k} has rank {t.ndim} but its labels "
                f"{''.join(labels).replace('.', '...')!r} need {n_named}"
            )
        dims = list(t.shape)
        if "." in labels:
            at = labels.index(".")
            n_ell = t.ndim - n_named
            ellipses.append(tuple(dims[at : at + n_ell]))
            dims = dims[:at] + [None] + dims[at + n_ell :]
        for c, d in zip(labels, dims):
            if c == ".":
                continue
            if sizes.setdefault(c, d) != d:
                raise ShapeError(f"einsum label {c!r} has sizes {sizes[c]} and {d}")
    ell = broadcast_shapes(*ellipses) if ellipses else ()
    if ell and "." not in outs:
        raise ShapeError(f"einsum spec {spec!r}: the output must keep '...' (dims {list(ell)})")
    shape: tuple[int, ...] = ()
    for c in outs:
        shape += ell if c == "." else (sizes[c],)
    return shape


def _einsum_impl(*xs, spec):
    return jnp.einsum(spec, *_narrow_weak_ints(*xs))


def _einsum_reference(*xs, spec):
    arrays, dt = _wide(*xs)
    if arrays[0].dtype == np.bool_:
        arrays = [a.astype(np.int64) for a in arrays]
    return _narrow(np.einsum(spec, *arrays), dt)


def _einsum_samples():
    out = [
        Sample((arr((3, 4), dt), arr((4, 5), dt, tag="b")), {"spec": "ij,jk->ik"}, f"{dt}-mm")
        for dt in FLOATS
    ]
    out += [
        Sample((arr((2, 3, 4)), arr((2, 4, 5), tag="b")), {"spec": "bij,bjk->bik"}, "bmm"),
        Sample((arr((3, 4)), arr((4, 5), tag="b")), {"spec": "ij,jk"}, "implicit"),
        Sample((arr((3, 3)),), {"spec": "ii->i"}, "diagonal"),
        Sample((arr((3, 3)),), {"spec": "ii"}, "trace"),
        Sample((arr((2, 3)),), {"spec": "ij->ji"}, "transpose"),
        Sample((arr((2, 3)),), {"spec": "ij->"}, "sum-all"),
        Sample((arr((4,)), arr((5,), tag="b")), {"spec": "i,j->ij"}, "outer"),
        Sample(
            (arr((2, 1, 3, 4)), arr((5, 4, 2), tag="b")),
            {"spec": "...ij,...jk->...ik"},
            "ellipsis-bcast",
        ),
        Sample((arr((2, 3, 4)),), {"spec": "...j->j..."}, "ellipsis-move"),
        Sample(
            (arr((2, 3)), arr((3, 4), tag="b"), arr((4,), tag="c")), {"spec": "ij,jk,k->i"}, "three"
        ),
        Sample((arr((0, 3)), arr((3, 2), tag="b")), {"spec": "ij,jk->ik"}, "empty"),
        Sample(
            (arr((2, 3), "i32", -3, 3), arr((3,), "i32", -3, 3, "b")), {"spec": "ij,j->i"}, "i32"
        ),
        Sample((arr((2, 3), "i8", -3, 3), arr((3,), "f16", tag="b")), {"spec": "ij,j->i"}, "mixed"),
        # Gradient edge cases: summed-only labels, diagonals next to other operands,
        # batched diagonals, size-1 ellipsis dims broadcasting against each other.
        Sample((arr((2, 3, 4)),), {"spec": "bij->bi"}, "summed-only"),
        Sample((arr((3, 3)), arr((3,), tag="b")), {"spec": "ii,i->i"}, "diag-times-vector"),
        Sample((arr((3, 3, 2)),), {"spec": "iij->j"}, "partial-trace"),
        Sample((arr((2, 3, 3)),), {"spec": "...ii->...i"}, "batched-diagonal"),
        Sample((arr((2, 2, 2)),), {"spec": "iii->i"}, "triple-diagonal"),
        Sample((arr((2, 3)), arr((2, 3), tag="b")), {"spec": "ij,ij->"}, "frobenius"),
        Sample(
            (arr((1, 3, 4)), arr((2, 1, 4), tag="b")), {"spec": "...k,...k->..."}, "ellipsis-both-1"
        ),
        Sample((arr((2, 5, 3)), arr((3,), tag="b")), {"spec": "...i,i->..."}, "ellipsis-one-side"),
        Sample((arr((4, 2)), arr((2, 3), tag="b")), {"spec": "iJ,JK->Ki"}, "upper-case"),
    ]
    return out


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Labels:
    """Hands out einsum letters that the spec does not use."""

    def __init__(self, used):
        self.free = iter(c for c in _LETTERS if c not in used)

    def fresh(self):
        c = next(self.free, None)
        if c is None:
            raise Error("einsum gradient: the spec uses too many labels (at most 52 letters)")
        return c


def _explicit_einsum(spec, shapes):
    """Per-operand label lists and output labels with '...' spelled out as letters.

    Ellipsis dims broadcast from the right; a size-1 ellipsis dim that meets a larger one
    gets a label of its own, so that gradients sum over the broadcast."""
    ins, outs = _parse_einsum(spec, [len(s) for s in shapes])
    labels = _Labels({c for t in ins + [outs] for c in t})
    ells = []
    for shape, t in zip(shapes, ins):
        if "." in t:
            at = t.index(".")
            ells.append(tuple(shape[at : at + len(shape) - len(t) + 1]))
        else:
            ells.append(None)
    present = [e for e in ells if e is not None]
    full = broadcast_shapes(*present) if present else ()
    shared = [labels.fresh() for _ in full]
    new_ins = []
    for t, e in zip(ins, ells):
        if e is None:
            new_ins.append(t)
            continue
        mine = []
        for i, d in enumerate(e):
            k = len(full) - len(e) + i
            mine.append(labels.fresh() if d == 1 and full[k] != 1 else shared[k])
        at = t.index(".")
        new_ins.append(t[:at] + mine + t[at + 1 :])
    new_out = []
    for c in outs:
        new_out += shared if c == "." else [c]
    return new_ins, new_out, labels


def _einsum_operand_ct(k, ct, xs, ins, outs, labels):
    """The cotangent of operand k: an einsum of the output cotangent and the other operands
    that produces operand k's labels. Repeated labels of operand k (a diagonal) multiply
    by an identity; labels only operand k has (summed in the forward) are broadcast back."""
    x, mine = xs[k], ins[k]
    terms = [outs] + [ins[j] for j in range(len(xs)) if j != k]
    args = [ct] + [xs[j] for j in range(len(xs)) if j != k]
    available = {c for t in terms for c in t}
    target, seen = [], {}
    for c, d in zip(mine, x.shape):
        if c in seen:
            extra = labels.fresh()
            terms.append([seen[c], extra])
            args.append(bind("eye", n=d, dtype=ct.dtype))
            available |= {seen[c], extra}
            target.append(extra)
        else:
            seen[c] = c
            target.append(c)
    kept = [c for c in target if c in available]
    if len(terms) == 1 and terms[0] == kept:
        g = ct
    else:
        spec = ",".join("".join(t) for t in terms) + "->" + "".join(kept)
        g = bind("einsum", *args, spec=spec)
    missing = tuple(i for i, c in enumerate(target) if c not in available)
    if missing:
        g = bind("expand_dims", g, axes=missing)
        g = bind("broadcast_to", g, shape=x.shape)
    return g


def _einsum_vjp(ct, *xs, out, spec):
    ins, outs, labels = _explicit_einsum(spec, [x.shape for x in xs])
    return [_einsum_operand_ct(k, ct, xs, ins, outs, labels) for k in range(len(xs))]


einsum = defop(
    "einsum",
    shape=_einsum_shape,
    dtype=promoted_dtype,  # also of one operand: a weak one takes its kind's default
    weak=promoted_weak,
    sharding=no_sharding,
    impl=_einsum_impl,
    vjp=_einsum_vjp,
    attrs={"spec": Attr("str")},
    arity=None,
    min_arity=1,
    samples=_einsum_samples,
    reference=_einsum_reference,
    tolerances={"f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="jnp.einsum with a static spec; '...' broadcasts, named dimensions must agree.",
)


# -- cholesky, triangular_solve -------------------------------------------------------
# NOTE: the gradients. Both forwards read one triangle of ``a`` only (lax documents it:
# cholesky "only the lower triangle of x is used", triangular_solve the triangle that
# ``lower`` names, without the diagonal under ``unit_diagonal``), so the cotangent of
# ``a`` is zero in the part never read. For triangular_solve that is JAX's rule too. For
# cholesky JAX returns ``S = L^-T Phi(L^T Lbar) L^-1`` over the whole matrix, the
# transpose of its JVP ``L Phi(L^-1 dA L^-T)``, a derivative only along symmetric
# directions; here the upper half of S is folded onto the lower (``tril(S + S^T) -
# diag(S)``), the derivative of what the forward computes. Both have the same
# symmetric part, so gradients through a symmetrized input (jnp.linalg.cholesky,
# tg.linalg.cholesky, lax.linalg.cholesky's default, jax.random.multivariate_normal)
# equal JAX's exactly; the samples skip the comparison with jax.vjp for that reason.


def _require_real_floats(op, *types):
    for t in types:
        if not is_float(t.dtype):
            raise ShapeError(f"{op} needs real floating-point operands, got {t}")


def _require_square(op, t, what="an operand"):
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ShapeError(f"{op} needs {what} of square matrices [..., n, n], got {t}")


def _offsets(n, m=None):
    """int32 ``[n, m]`` (m defaults to n): ``j - i`` at row i, column j (which diagonal
    each entry is on)."""
    m = n if m is None else m
    rows = bind("arange", stop=n, dtype=np.dtype(np.int32))
    cols = bind("arange", stop=m, dtype=np.dtype(np.int32))
    return bind("reshape", cols, shape=(1, m)) - bind("reshape", rows, shape=(n, 1))


def _triangle(x, *, lower, k=0):
    """``x`` (batches of matrices, square or not) with the entries outside its lower
    (upper) triangle zeroed, the triangle taken from the k-th diagonal down (up)."""
    d = _offsets(x.shape[-2], x.shape[-1])
    keep = bind("le", d, k) if lower else bind("ge", d, k)
    return bind("where", keep, x, 0)


def _eye_like(x):
    return bind("eye", n=x.shape[-1], dtype=x.dtype)


_HALF_FLOATS = (np.dtype(np.float16), np.dtype(jnp.bfloat16))


def _cholesky_shape(a: TensorType) -> tuple[int, ...]:
    _require_real_floats("cholesky", a)
    _require_square("cholesky", a)
    return a.shape


def _cholesky_impl(a):
    if a.dtype in _HALF_FLOATS:  # XLA's Cholesky runs on f32/f64 only: factor in f32
        low = lax.linalg.cholesky(lax.convert_element_type(a, np.float32), symmetrize_input=False)
        return lax.convert_element_type(low, a.dtype)
    return lax.linalg.cholesky(a, symmetrize_input=False)


def _cholesky_reference(a):
    # numpy's Cholesky of the symmetric matrix that a's lower triangle describes
    dt = np.asarray(a).dtype
    w = np.asarray(a).astype(np.float64)
    sym = np.tril(w) + np.swapaxes(np.tril(w, -1), -1, -2)
    return jnp.asarray(np.linalg.cholesky(sym)).astype(dt)


def _spd(shape, dtype="f32", tag=""):
    """A well-conditioned symmetric positive-definite batch: ``M M^T + n I``."""
    m = arr(shape, "f64", -1.0, 1.0, tag)
    n = shape[-1]
    a = m @ np.swapaxes(m, -1, -2) + n * np.eye(n)
    return a.astype(DTYPE_NAMES[dtype])


def _cholesky_samples():
    garbage_upper = np.tril(_spd((4, 4), "f64", "u")) + np.triu(arr((4, 4), "f64", tag="u"), 1)
    out = [
        Sample((_spd((3, 3), "f32"),), name="f32", jax_vjp=False),
        Sample((_spd((4, 4), "f64"),), name="f64", jax_vjp=False),
        Sample((_spd((2, 3, 3), "f32"),), name="batch", jax_vjp=False),
        Sample((_spd((2, 1, 2, 2), "f64"),), name="f64-batch2", jax_vjp=False),
        Sample((_spd((1, 1), "f32"),), name="1x1", jax_vjp=False),
        Sample((garbage_upper,), name="upper-ignored", jax_vjp=False),
        Sample((_spd((0, 3, 3), "f32"),), name="empty-batch", jax_vjp=False),
        Sample((_spd((0, 0), "f32"),), name="0x0", jax_vjp=False),
    ]
    out += [Sample((_spd((3, 3), dt),), name=dt, jax_vjp=False) for dt in ("f16", "bf16")]
    return out


def _cholesky_vjp(ct, a, *, out):
    # P = Phi(L^T Lbar) (lower triangle, diagonal halved); S = L^-T P L^-1
    low = out
    x = bind("matmul", _swap_last(low), ct)
    p = _triangle(x, lower=True) - 0.5 * (x * _eye_like(x))
    s = bind("triangular_solve", low, p, left_side=True, lower=True, transpose_a=True)
    s = bind("triangular_solve", low, s, left_side=False, lower=True, transpose_a=False)
    # the forward reads a's lower triangle only: fold S's upper half onto it
    return [_triangle(s + _swap_last(s), lower=True) - s * _eye_like(s)]


cholesky = defop(
    "cholesky",
    shape=_cholesky_shape,
    # f16/bf16 are factored in f32 and rounded back, a strongly typed result
    weak=lambda a: a.weak and a.dtype not in _HALF_FLOATS,
    sharding=no_sharding,
    impl=_cholesky_impl,
    vjp=_cholesky_vjp,
    samples=_cholesky_samples,
    reference=_cholesky_reference,
    tolerances={"f32": (1e-4, 1e-5), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="lax.linalg.cholesky(a, symmetrize_input=False): the lower Cholesky factor L "
    "(a = L L^T) of each symmetric positive-definite matrix in ``a: [..., n, n]``, read "
    "from its lower triangle only (the upper one is ignored); NaNs where a matrix is not "
    "positive definite. f16 and bf16 are factored in f32.",
)


_SOLVE_ATTRS = {
    "left_side": Attr("bool", False),
    "lower": Attr("bool", False),
    "transpose_a": Attr("bool", False),
    "unit_diagonal": Attr("bool", False),
}


def _triangular_solve_shape(a: TensorType, b: TensorType, *, left_side, lower, transpose_a, unit_diagonal):
    _require_real_floats("triangular_solve", a, b)
    if a.dtype != b.dtype:
        raise ShapeError(f"triangular_solve needs a and b of one dtype (lax does not promote), got {a} and {b}")
    _require_square("triangular_solve", a)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2]:
        raise ShapeError(
            f"triangular_solve needs b with a's batch dimensions {list(a.shape[:-2])} "
            f"(no broadcasting), got {a} and {b}"
        )
    m = b.shape[-2] if left_side else b.shape[-1]
    if m != a.shape[-1]:
        side = "rows" if left_side else "columns"
        raise ShapeError(
            f"triangular_solve with left_side={left_side} needs b with {a.shape[-1]} {side} "
            f"(a is {a.shape[-1]} x {a.shape[-1]}), got {a} and {b}"
        )
    return b.shape


def _triangular_solve_impl(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    return lax.linalg.triangular_solve(
        a, b, left_side=left_side, lower=lower, transpose_a=transpose_a,
        conjugate_a=False, unit_diagonal=unit_diagonal,
    )


def _triangular_solve_reference(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    dt = np.asarray(b).dtype
    a64, b64 = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    out = np.zeros(b64.shape)
    for i in np.ndindex(*b64.shape[:-2]):
        if left_side:  # op(a) x = b
            out[i] = scipy.linalg.solve_triangular(
                a64[i], b64[i], trans=int(transpose_a), lower=lower, unit_diagonal=unit_diagonal)
        else:  # x op(a) = b, that is op(a)^T x^T = b^T
            out[i] = scipy.linalg.solve_triangular(
                a64[i], b64[i].T, trans=int(not transpose_a), lower=lower, unit_diagonal=unit_diagonal).T
    return jnp.asarray(out).astype(dt)


def _triangular(shape, dtype="f32", tag=""):
    """Well-conditioned triangular solves: a diagonal in [2.5, 4.5] and entries in [-1, 1]
    elsewhere (the triangle not read holds them too)."""
    a = arr(shape, "f64", -1.0, 1.0, tag) + 3.5 * np.eye(shape[-1])
    return a.astype(DTYPE_NAMES[dtype])


def _solve_sample(a_shape, b_shape, dtype="f32", grad=True, **flags):
    attrs = {k: flags.get(k, False) for k in _SOLVE_ATTRS}
    name = "-".join([dtype, "x".join(map(str, a_shape))] + [k for k, v in attrs.items() if v])
    return Sample((_triangular(a_shape, dtype), arr(b_shape, dtype, tag="b")), attrs, name, grad=grad)


def _triangular_solve_samples():
    out = [
        _solve_sample((3, 3), (3, 2), left_side=True, lower=True),
        _solve_sample((3, 3), (2, 3), "f64", transpose_a=True),
        _solve_sample((2, 4, 4), (2, 4, 3), left_side=True, transpose_a=True, unit_diagonal=True),
    ]
    for left_side, lower, transpose_a, unit_diagonal in np.ndindex(2, 2, 2, 2):
        flags = dict(left_side=bool(left_side), lower=bool(lower), transpose_a=bool(transpose_a),
                     unit_diagonal=bool(unit_diagonal))
        out.append(_solve_sample((4, 4), (4, 2) if left_side else (3, 4), **flags))
    out += [
        _solve_sample((2, 1, 3, 3), (2, 1, 2, 3), "f64", lower=True, unit_diagonal=True),
        _solve_sample((3, 3), (3, 2), "f16", left_side=True, lower=True),
        _solve_sample((3, 3), (2, 3), "bf16", transpose_a=True),
        _solve_sample((3, 3), (3, 1), "f32", left_side=True),  # a vector as a column
        _solve_sample((0, 3, 3), (0, 3, 2), "f32", left_side=True, lower=True),
        _solve_sample((2, 2), (2, 0), "f32", left_side=True),
    ]
    return out


def _triangular_solve_vjp(ct, a, b, *, out, left_side, lower, transpose_a, unit_diagonal):
    # b's cotangent solves the transposed system; a's is minus its product with the
    # solution x (op(a)^-T ct x^T on the left, x^T ct op(a)^-T on the right, transposed
    # back where a enters transposed), masked to the triangle that the forward reads
    flags = {"left_side": left_side, "lower": lower, "unit_diagonal": unit_diagonal}
    ct_b = bind("triangular_solve", a, ct, transpose_a=not transpose_a, **flags)
    x = out
    if left_side:
        g = bind("matmul", x, _swap_last(ct_b)) if transpose_a else bind("matmul", ct_b, _swap_last(x))
    else:
        g = bind("matmul", _swap_last(ct_b), x) if transpose_a else bind("matmul", _swap_last(x), ct_b)
    k = int(unit_diagonal)
    ct_a = -_triangle(g, lower=lower, k=-k if lower else k)
    return [ct_a, ct_b]


triangular_solve = defop(
    "triangular_solve",
    shape=_triangular_solve_shape,
    dtype=lambda a, b, **_: b.dtype,
    weak=lambda a, b, **_: a.weak and b.weak,
    sharding=no_sharding,
    impl=_triangular_solve_impl,
    vjp=_triangular_solve_vjp,
    attrs=_SOLVE_ATTRS,
    arity=2,
    samples=_triangular_solve_samples,
    reference=_triangular_solve_reference,
    tolerances={"f32": (1e-4, 1e-5), "f16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)},
    doc="lax.linalg.triangular_solve (real): x with op(a) x = b (``left_side``) or "
    "x op(a) = b, op(a) = a^T under ``transpose_a``; a: [..., m, m] is read in its lower "
    "(``lower``) or upper triangle only, its diagonal taken as ones under "
    "``unit_diagonal``; b: [..., m, n] (left) or [..., n, m], the same batch dims as a.",
)


# -- lu ---------------------------------------------------------------------------------
# NOTE: the gradient. lax.linalg.lu factors P A = L U (P the row permutation, L unit
# lower m x k, U upper k x n, k = min(m, n)) and packs L and U into one m x n matrix.
# JAX's JVP (De Hoog, Anderssen and Lukas) pads L to m x m and U to n x n with identity
# blocks and gives, with X = L^-1 (P dA) U^-1,
#     d(lu) = L tril(X, -1) + triu(X) U;
# its transpose for a cotangent C of lu (the integer outputs have none) is
#     Xbar = tril(L^T C, -1) + triu(C U^T),   Abar = P^T (L^-T Xbar U^-T),
# two triangular solves, and P^T a gather of rows by the inverse permutation.


def _lu_shape(a: TensorType):
    _require_real_floats("lu", a)
    if a.ndim < 2:
        raise ShapeError(f"lu needs an operand of matrices [..., m, n], got {a}")
    m, n = a.shape[-2:]
    return a.shape, a.shape[:-2] + (min(m, n),), a.shape[:-2] + (m,)


def _lu_impl(a):
    if a.dtype in _HALF_FLOATS:  # XLA's LU runs on f32/f64 only: factor in f32
        lu, pivots, perm = lax.linalg.lu(lax.convert_element_type(a, np.float32))
        return lax.convert_element_type(lu, a.dtype), pivots, perm
    return tuple(lax.linalg.lu(a))


def _lu_reference(a):
    # LAPACK's getrf through scipy, one matrix at a time; the permutation replays its
    # row swaps (pivots[i]: the row swapped with row i at step i)
    dt = np.asarray(a).dtype
    w = np.asarray(a).astype(np.float64)
    m, n = w.shape[-2:]
    lu = w.copy()
    pivots = np.zeros(w.shape[:-2] + (min(m, n),), np.int32)
    perm = np.broadcast_to(np.arange(m, dtype=np.int32), w.shape[:-2] + (m,)).copy()
    for i in np.ndindex(*w.shape[:-2]):
        if min(m, n) == 0:
            continue
        lu[i], pivots[i] = scipy.linalg.lu_factor(w[i], check_finite=False)
        for r, s in enumerate(pivots[i]):
            perm[i][[r, s]] = perm[i][[s, r]]
    return jnp.asarray(lu).astype(dt), jnp.asarray(pivots), jnp.asarray(perm)


def _lu_matrix(shape, dtype="f32", tag=""):
    """A matrix whose partial-pivoting LU is clear-cut: rows permuted at random from
    L U, with |L| <= 0.5 below its unit diagonal (each pivot beats the other candidates
    of its column by 2x, so finite differences cannot flip one) and U's diagonal in
    +-[1, 2]. Small entries land on A's diagonal wherever the permutation moves a row."""
    m, n = shape[-2:]
    k = min(m, n)
    low = np.tril(arr(shape[:-2] + (m, k), "f64", -0.5, 0.5, tag + "l"), -1) + np.eye(m, k)
    up = np.triu(arr(shape[:-2] + (k, n), "f64", -1.0, 1.0, tag + "u"), 1)
    d = arr(shape[:-2] + (k,), "f64", 1.0, 2.0, tag + "d") * np.where(arr((k,), "f64", tag=tag + "s") < 0, -1, 1)
    up = up + d[..., :, None] * np.eye(k, n)
    a = np.empty(shape)
    rng = np.random.default_rng(len(tag) + m * 7 + n)
    for i in np.ndindex(*shape[:-2]):
        a[i][rng.permutation(m)] = (low @ up)[i]
    return a.astype(DTYPE_NAMES[dtype])


def _lu_samples():
    return [
        Sample((_lu_matrix((3, 3), "f32"),), name="f32"),
        Sample((_lu_matrix((4, 4), "f64"),), name="f64"),
        Sample((_lu_matrix((2, 3, 3), "f32"),), name="batch"),
        Sample((_lu_matrix((2, 1, 4, 4), "f64"),), name="f64-batch2"),
        # diagonally dominant by 2x in each column: no row swaps
        Sample(((arr((3, 3), "f64", -1.0, 1.0, "dd") + 4 * np.eye(3)).astype(np.float32),), name="no-swaps"),
        Sample((_lu_matrix((5, 3), "f64"),), name="tall"),
        Sample((_lu_matrix((2, 3, 5), "f32"),), name="wide"),
        Sample((_lu_matrix((1, 1), "f32"),), name="1x1"),
        Sample((_lu_matrix((0, 3, 3), "f32"),), name="empty-batch"),
        Sample((_lu_matrix((0, 0), "f32"),), name="0x0"),
        Sample((_lu_matrix((3, 3), "f16"),), name="f16"),
        Sample((_lu_matrix((3, 3), "bf16"),), name="bf16"),
    ]


def _block(x, rows, cols):
    """The leading ``rows x cols`` block of each matrix in ``x``, cut or zero-padded."""
    m, n = x.shape[-2:]
    lead = len(x.shape) - 2
    if rows < m or cols < n:
        x = bind("slice", x, start=(0,) * len(x.shape),
                 limit=tuple(x.shape[:-2]) + (min(rows, m), min(cols, n)))
    if rows > m or cols > n:
        x = bind("pad", x, pads=((0, 0),) * lead + ((0, max(rows - m, 0)), (0, max(cols - n, 0))))
    return x


def _lu_factors(lu):
    """L (m x m, unit lower) and U (n x n, upper) of a packed m x n lu, padded with
    identity blocks past min(m, n) as JAX's JVP pads them."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = _triangle(_block(lu, m, m), lower=True, k=-1) + bind("eye", n=m, dtype=lu.dtype)
    up = _triangle(_block(lu, n, n), lower=False)
    if n > k:
        up = up + bind("pad", bind("eye", n=n - k, dtype=lu.dtype), pads=((k, 0), (k, 0)))
    return low, up


def _lu_vjp(ct, a, *, out):
    c = ct[0]  # pivots and permutation are integers: no cotangents
    if c is None:
        return [None]
    low, up = _lu_factors(out[0])
    x = _triangle(bind("matmul", _swap_last(low), c), lower=True, k=-1) + _triangle(
        bind("matmul", c, _swap_last(up)), lower=False)
    g = bind("triangular_solve", low, x, left_side=True, lower=True, transpose_a=True, unit_diagonal=True)
    g = bind("triangular_solve", up, g, left_side=False, lower=False, transpose_a=True)
    # g is the cotangent of P A (row i of it is row perm[i] of A): put the rows back
    inverse = bind("argsort", out[2], axis=-1, descending=False)
    return [bind("take_along_axis", g, bind("expand_dims", inverse, axes=(len(inverse.shape),)), axis=-2)]


lu = defop(
    "lu",
    shape=_lu_shape,
    dtype=lambda a: (a.dtype, np.dtype(np.int32), np.dtype(np.int32)),
    # lax.linalg.lu's outputs are all weak when a is; f16/bf16 are factored in f32
    weak=lambda a: (a.weak and a.dtype not in _HALF_FLOATS,) * 3,
    sharding=lambda a: (None, None, None),
    impl=_lu_impl,
    multi_output=True,
    vjp=_lu_vjp,
    samples=_lu_samples,
    reference=_lu_reference,
    tolerances={"f32": (1e-4, 1e-5), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="lax.linalg.lu (real): the LU factorization with partial pivoting of each "
    "matrix in ``a: [..., m, n]``, as ``(lu, pivots, permutation)``: ``lu`` packs L "
    "(unit lower, below the diagonal) and U (on and above it), ``pivots`` int32 "
    "[..., min(m, n)] the row swapped with row i at step i, ``permutation`` int32 "
    "[..., m] the rows of a in the order L U has them (a[permutation] = L U). f16 "
    "and bf16 are factored in f32.",
)
