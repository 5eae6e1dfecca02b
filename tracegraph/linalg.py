"""``tg.linalg``: linear algebra with jax.numpy.linalg / jax.scipy.linalg names and
semantics: ``cholesky``, ``solve_triangular`` and ``cho_solve`` (ops ``cholesky`` and
``triangular_solve``, differentiable).

See `tracegraph.frontend.fn_linalg` for the functions; this module only gives them their
public home.

Example::

    low = tg.linalg.cholesky(cov)                       # cov = low @ low.T
    z = tg.linalg.solve_triangular(low, x - mu, lower=True)
    x = tg.linalg.cho_solve((low, True), y)             # cov @ x == y
"""

from .frontend.fn_linalg import cho_solve, cholesky, solve_triangular

__all__ = ["cho_solve", "cholesky", "solve_triangular"]
