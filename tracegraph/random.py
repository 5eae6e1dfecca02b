"""``tg.random``: explicit-key random numbers, equal to ``jax.random`` bit for bit.

See `tracegraph.frontend.fn_random` for the functions; this module only gives them their
public home (``tg.random.key``, ``tg.random.split``, ...).
"""

from .frontend.fn_random import PRNGKey, bernoulli, fold_in, key, normal, split, uniform

__all__ = ["PRNGKey", "bernoulli", "fold_in", "key", "normal", "split", "uniform"]
