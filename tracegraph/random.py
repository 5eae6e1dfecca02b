"""``tg.random``: explicit-key random numbers, equal to ``jax.random`` bit for bit.

See `tracegraph.frontend.fn_random` for the functions; this module only gives them their
public home (``tg.random.key``, ``tg.random.split``, ...). ``normal`` and ``uniform`` also
take TensorFlow's form (a shape first, no key: the global stream that ``set_seed``
seeds), outside traced code.

Example::

    w = tg.random.normal(tg.random.key(0), (3, 4))    # JAX: explicit (typed) key, any mode
    tg.random.set_seed(0)
    b = tg.random.uniform([4], minval=-1.0, maxval=1.0)   # TF: an imperative tensor
"""

from .frontend.fn_random import (
    PRNGKey, bernoulli, bits, categorical, fold_in, key, key_data, key_impl, normal, set_seed,
    split, uniform, wrap_key_data,
)

__all__ = [
    "PRNGKey", "bernoulli", "bits", "categorical", "fold_in", "key", "key_data", "key_impl",
    "normal", "set_seed", "split", "uniform", "wrap_key_data",
]
