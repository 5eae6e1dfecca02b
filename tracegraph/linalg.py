"""``tg.linalg``: linear algebra with jax.numpy.linalg / jax.scipy.linalg names and
semantics: ``cholesky``, ``solve_triangular`` and ``cho_solve`` (ops ``cholesky`` and
``triangular_solve``), and ``solve``, ``inv``, ``det`` and ``slogdet`` (on the LU
factorization, op ``lu``); all differentiable.

See `tracegraph.frontend.fn_linalg` for the functions; this module only gives them their
public home.

Example::

    low = tg.linalg.cholesky(cov)                       # cov = low @ low.T
    z = tg.linalg.solve_triangular(low, x - mu, lower=True)
    x = tg.linalg.cho_solve((low, True), y)             # cov @ x == y
    x = tg.linalg.solve(a, y)                           # a @ x == y
    sign, logabsdet = tg.linalg.slogdet(a)
"""

from .frontend.fn_linalg import (
    SlogdetResult, cho_solve, cholesky, det, inv, slogdet, solve, solve_triangular,
)

__all__ = ["SlogdetResult", "cho_solve", "cholesky", "det", "inv", "slogdet", "solve", "solve_triangular"]
