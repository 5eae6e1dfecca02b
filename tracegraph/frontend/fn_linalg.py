"""The tg.* contraction functions (matmul, dot, tensordot, einsum, dot_general) and
stop_gradient, with numpy/JAX names and semantics.

Example::

    y = tg.matmul(x, w)                       # also x @ w
    s = tg.einsum("bij,bjk->bik", a, b)
    z = tg.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))   # lax's dimension numbers
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, user_location_long
from ..core import bind
from ..core import Tensor


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


from ..errors import public_functions as _public_functions

_public_functions(globals())
