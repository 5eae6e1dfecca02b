"""The tg.* contraction functions (matmul, dot, tensordot, einsum, dot_general) and
stop_gradient, with numpy/JAX names and semantics; and ``tg.linalg``'s Cholesky
factorization, triangular solves, and solve / inv / det / slogdet on the LU factorization
(jax.numpy.linalg / jax.scipy.linalg semantics).

Example::

    y = tg.matmul(x, w)                       # also x @ w
    s = tg.einsum("bij,bjk->bik", a, b)
    z = tg.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))   # lax's dimension numbers
    low = tg.linalg.cholesky(cov)             # ops cholesky, triangular_solve
    x = tg.linalg.cho_solve((low, True), y)
    x = tg.linalg.solve(a, y)                 # ops lu, triangular_solve
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..errors import ShapeError, user_location_long
from ..core import bind
from ..core import Tensor
from ..ops.defop import broadcast_shapes
from .fn_math import _as_inexact_of
from .fn_creation import _dtype_of
from .fn_shape import shape_of, swapaxes


def _ndim(x) -> int:
    return x.ndim if isinstance(x, Tensor) else np.ndim(x)


def matmul(x, y, *, transpose_a: bool = False, transpose_b: bool = False):
    """numpy ``matmul`` (op ``matmul``): 1-D operands act as vectors, leading dimensions
    broadcast as a batch, dtypes promote as in jax.numpy. ``transpose_a``/``transpose_b``
    (TF's keywords) swap the last two axes of an operand first."""
    if transpose_a:
        x = _swap_last(x)
    if transpose_b:
        y = _swap_last(y)
    return bind("matmul", x, y)


def _swap_last(x):
    n = _ndim(x)
    if n < 2:
        raise ShapeError(f"matmul: transpose_a/transpose_b need operands of rank >= 2 (at {user_location_long(2)})")
    return bind("transpose", x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def dot(a, b):
    """numpy ``dot``: a product with scalars, ``matmul`` up to 2-D, else the sum over the
    last axis of ``a`` and the second-to-last of ``b``."""
    na, nb = _ndim(a), _ndim(b)
    if na == 0 or nb == 0:
        return bind("mul", a, b)
    if na <= 2 and nb <= 2:
        return bind("matmul", a, b)
    return bind("dot_general", a, b, contracting=((na - 1,), (max(nb - 2, 0),)), batch=((), ()))


def tensordot(a, b, axes=2):
    """numpy ``tensordot``: ``axes`` is N (last N axes of a with first N of b) or a pair
    of axis sequences."""
    na, nb = _ndim(a), _ndim(b)
    if isinstance(axes, int):
        if not 0 <= axes <= min(na, nb):
            raise ShapeError(
                f"tensordot: axes={axes} is out of range for ranks {na} and {nb} "
                f"(at {user_location_long(2)})"
            )
        la, lb = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        try:
            la, lb = axes
        except (TypeError, ValueError):
            raise ShapeError(
                f"tensordot: axes must be an int or a pair of axis lists, got {axes!r} "
                f"(at {user_location_long(2)})"
            ) from None
        la = (la,) if isinstance(la, int) else tuple(la)
        lb = (lb,) if isinstance(lb, int) else tuple(lb)
        la = tuple(i % na if -na <= i < na else i for i in la)
        lb = tuple(i % nb if -nb <= i < nb else i for i in lb)
    return bind("dot_general", a, b, contracting=(la, lb), batch=((), ()))


def einsum(spec: str, *operands):
    """``jnp.einsum`` with a static spec (op ``einsum``); ``...`` broadcasts."""
    if not isinstance(spec, str):
        raise ShapeError(
            f"einsum: the first argument must be the spec string, got {type(spec).__name__} "
            f"(at {user_location_long(2)})"
        )
    return bind("einsum", *operands, spec=spec)


def dot_general(lhs, rhs, dimension_numbers):
    """``lax.dot_general``: ``dimension_numbers = ((lhs_contract, rhs_contract),
    (lhs_batch, rhs_batch))``; the result is batch dims, then lhs free, then rhs free."""
    try:
        contracting, batch = dimension_numbers
    except (TypeError, ValueError):
        raise ShapeError(
            "dot_general: dimension_numbers must be ((lhs_contract, rhs_contract), "
            f"(lhs_batch, rhs_batch)), got {dimension_numbers!r} (at {user_location_long(2)})"
        ) from None
    return bind("dot_general", lhs, rhs, contracting=contracting, batch=batch)


def stop_gradient(x):
    """Identity forward; no gradient flows back through it (``lax.stop_gradient``)."""
    return bind("stop_gradient", x)


# -- tg.linalg: Cholesky and triangular solves ------------------------------------------


def _is_square(shape) -> bool:
    return len(shape) >= 2 and shape[-1] == shape[-2]


def cholesky(a, *, upper=False, symmetrize_input=True):
    """``jnp.linalg.cholesky``: the lower Cholesky factor L (``a = L L^T``) of each
    symmetric positive-definite matrix in ``a: [..., n, n]`` (op ``cholesky``); the
    transposed factor with ``upper``. As jax.numpy does, ``a`` is symmetrized first,
    ``(a + a^T) / 2`` (``symmetrize_input=False`` reads its lower triangle only);
    integers become floats; a matrix that is not positive definite gives NaNs.

    Example::

        low = tg.linalg.cholesky(x @ x.T + 3 * tg.eye(3))
    """
    a = _as_inexact_of(a)
    if symmetrize_input and _is_square(shape_of(a)):  # else the op reports the shape
        a = bind("div", bind("add", a, swapaxes(a, -1, -2)), 2.0)
    low = bind("cholesky", a)
    return swapaxes(low, -1, -2) if upper else low


_TRANS = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}  # C: real, so T


def _vector_rhs(a, b, name) -> bool:
    """Whether jax.scipy.linalg solves ``b`` as (a batch of) vectors: a 1-D ``b``, or
    (deprecated in JAX, with its FutureWarning) one of a's rank minus one whose last dim
    is a's."""
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:
        return True
    if len(sa) == len(sb) + 1 and sa[-1] == sb[-1]:
        warnings.warn(
            f"jax.scipy.linalg.{name}: batched 1D solves with b.ndim > 1 are deprecated, and "
            f"in the future will be treated as a batched 2D solve. Use {name}(a, b[..., None])"
            ".squeeze(-1) to avoid this warning.", FutureWarning, stacklevel=4)
        return True
    return False


def _operands(a, b, vector):
    """a and b for the ``triangular_solve`` op as jax.scipy.linalg's jnp.vectorize gives
    them: promoted to one float dtype, a vector b as a column, batch dims broadcast."""
    a, b = _as_inexact_of(a, b), _as_inexact_of(b, a)
    if vector:
        b = bind("expand_dims", b, axes=(len(shape_of(b)),))
    sa, sb = shape_of(a), shape_of(b)
    if _is_square(sa) and len(sb) >= 2:  # else the op reports the shapes
        batch = broadcast_shapes(sa[:-2], sb[:-2])
        if sa[:-2] != batch:
            a = bind("broadcast_to", a, shape=batch + sa[-2:])
        if sb[:-2] != batch:
            b = bind("broadcast_to", b, shape=batch + sb[-2:])
    return a, b


def _left_solve(a, b, *, lower, transpose_a, unit_diagonal=False):
    return bind("triangular_solve", a, b, left_side=True, lower=bool(lower),
                transpose_a=transpose_a, unit_diagonal=bool(unit_diagonal))


def _result(x, vector):
    return bind("squeeze", x, axes=(len(shape_of(x)) - 1,)) if vector else x


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     debug=None, check_finite=True):
    """``jax.scipy.linalg.solve_triangular``: x with ``op(a) x = b`` for triangular
    ``a: [..., n, n]`` (op ``triangular_solve``), reading its lower (``lower``) or upper
    triangle only, its diagonal taken as ones with ``unit_diagonal``; ``op(a)`` is ``a``
    (``trans`` 0 or "N") or ``a^T`` (1, "T", or 2, "C": the matrices are real). ``b``:
    ``[..., n, k]`` or a vector ``[n]``; batch dims broadcast; dtypes promote to a float.
    ``overwrite_b``, ``debug`` and ``check_finite`` are accepted and ignored, as in JAX.

    Example::

        x = tg.linalg.solve_triangular(low, y, lower=True)    # low @ x == y
    """
    del overwrite_b, debug, check_finite  # unused, as in jax.scipy
    if isinstance(trans, (np.ndarray, Tensor)) or trans not in _TRANS:
        raise ShapeError(f"solve_triangular: invalid trans={trans!r} (0, 1, 2, 'N', 'T' or 'C') "
                         f"(at {user_location_long(2)})")
    vector = _vector_rhs(a, b, "solve_triangular")
    a, b = _operands(a, b, vector)
    x = _left_solve(a, b, lower=lower, transpose_a=_TRANS[trans], unit_diagonal=unit_diagonal)
    return _result(x, vector)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """``jax.scipy.linalg.cho_solve``: x with ``a x = b``, given ``(c, lower)``: the
    Cholesky factor ``c`` of ``a`` (lower with ``lower``, else upper: ``a = c^T c``), as
    ``jax.scipy.linalg.cho_factor`` or `cholesky` give it. Two triangular solves (op
    ``triangular_solve``); ``b`` as in `solve_triangular`.

    Example::

        x = tg.linalg.cho_solve((tg.linalg.cholesky(a), True), y)   # a @ x == y
    """
    del overwrite_b, check_finite  # unused, as in jax.scipy
    c, lower = c_and_lower
    vector = _vector_rhs(c, b, "cho_solve")
    c, b = _operands(c, b, vector)
    y = _left_solve(c, b, lower=lower, transpose_a=not lower)
    return _result(_left_solve(c, y, lower=lower, transpose_a=bool(lower)), vector)


# -- tg.linalg: solve, inv, det and slogdet on the LU factorization ---------------------


def _require_square(a, name):
    s = shape_of(a)
    if not _is_square(s):
        raise ShapeError(f"{name} needs a of square matrices [..., n, n], got one of shape {tuple(s)} "
                         f"(at {user_location_long(3)})")


def _lu_solve(lu, perm, b):
    """x with ``a x = b`` from a's LU factorization (a[perm] = L U), ``b: [..., n, k]``
    with a's batch dims: the rows of b permuted, then the two triangular solves."""
    rows = bind("take_along_axis", b, bind("expand_dims", perm, axes=(len(shape_of(perm)),)), axis=-2)
    y = _left_solve(lu, rows, lower=True, transpose_a=False, unit_diagonal=True)
    return _left_solve(lu, y, lower=False, transpose_a=False)


def solve(a, b):
    """``jnp.linalg.solve``: x with ``a x = b`` for ``a: [..., n, n]`` (ops ``lu`` and
    ``triangular_solve``, differentiable); ``b`` a vector ``[n]`` or matrices
    ``[..., n, k]`` whose batch dims broadcast with a's; dtypes promote to a float.
    A singular ``a`` gives infs or NaNs.

    Example::

        x = tg.linalg.solve(a, y)          # a @ x == y
    """
    _require_square(a, "solve")
    sa, sb = shape_of(a), shape_of(b)
    vector = len(sb) == 1
    if len(sb) == 0 or sb[-1 if vector else -2] != sa[-1]:
        hint = ("; batches of vectors b [..., n] are solve(a, b[..., None])[..., 0]"
                if len(sb) == len(sa) - 1 and sb and sb[-1] == sa[-1] else "")
        raise ShapeError(f"solve needs b of shape [{sa[-1]}] or [..., {sa[-1]}, k] for a of shape "
                         f"{tuple(sa)}, got one of shape {tuple(sb)}{hint} (at {user_location_long(2)})")
    a, b = _operands(a, b, vector)
    lu, _, perm = bind("lu", a)
    return _result(_lu_solve(lu, perm, b), vector)


def inv(a):
    """``jnp.linalg.inv``: the inverse of each matrix in ``a: [..., n, n]``, solved from
    its LU factorization (ops ``lu`` and ``triangular_solve``); integers become floats.

    Example::

        a_inv = tg.linalg.inv(a)           # a @ a_inv == eye
    """
    _require_square(a, "inv")
    a = _as_inexact_of(a)
    sa = shape_of(a)
    eye = bind("broadcast_to", bind("eye", n=sa[-1], dtype=_dtype_of(a)), shape=tuple(sa))
    lu, _, perm = bind("lu", a)
    return _lu_solve(lu, perm, eye)


def _lu_parts(a, name):
    """The diagonal of U in a's LU factorization, and how many row swaps it made."""
    _require_square(a, name)
    a = _as_inexact_of(a)
    n = shape_of(a)[-1]
    lu, pivots, _ = bind("lu", a)
    diag = bind("sum", bind("mul", lu, bind("eye", n=n, dtype=_dtype_of(a))), axes=(len(shape_of(lu)) - 1,))
    iota = bind("arange", stop=n, dtype=np.dtype(np.int32))
    return diag, _count(bind("ne", pivots, iota), len(shape_of(pivots)) - 1)


def _count(mask, axis):
    return bind("sum", bind("astype", mask, dtype=np.dtype(np.int32)), axes=(axis,))


def _sign_of_parity(parity, dtype):
    """``(-1) ** parity`` in ``dtype``."""
    return bind("sub", 1.0, bind("mul", bind("astype", bind("remainder", parity, 2), dtype=dtype), 2.0))


def det(a):
    """``jnp.linalg.det``: the determinant of each matrix in ``a: [..., n, n]``, the
    product of U's diagonal in its LU factorization, its sign flipped by each row swap
    (op ``lu``; differentiable); integers become floats.

    Example::

        d = tg.linalg.det(a)               # a: [..., n, n] -> d: [...]
    """
    diag, swaps = _lu_parts(a, "det")
    last = len(shape_of(diag)) - 1
    return bind("mul", _sign_of_parity(swaps, _dtype_of(diag)), bind("prod", diag, axes=(last,)))


class SlogdetResult(NamedTuple):
    """`slogdet`'s result, as jax.numpy's: ``sign`` and ``logabsdet``."""

    sign: object
    logabsdet: object


def slogdet(a):
    """``jnp.linalg.slogdet``: ``(sign, logabsdet)`` of the determinant of each matrix in
    ``a: [..., n, n]`` from its LU factorization (op ``lu``; differentiable): the sign
    (0 for a singular matrix) and ``log|det a|`` (-inf there), a sum of logs, so that
    large or small determinants do not overflow; integers become floats.

    Example::

        sign, logabsdet = tg.linalg.slogdet(a)     # det(a) == sign * exp(logabsdet)
    """
    diag, swaps = _lu_parts(a, "slogdet")
    last = len(shape_of(diag)) - 1
    zero = bind("gt", _count(bind("eq", diag, 0), last), 0)
    sign = _sign_of_parity(bind("add", swaps, _count(bind("lt", diag, 0), last)), _dtype_of(diag))
    logs = bind("sum", bind("log", bind("abs", diag)), axes=(last,))
    return SlogdetResult(bind("where", zero, 0.0, sign), bind("where", zero, -np.inf, logs))


from ..errors import public_functions as _public_functions

_public_functions(globals())
