"""One numpy `Generator` from a seed or a `tg.random` key, so that data shuffling is
deterministic without running any JAX computation."""

from __future__ import annotations

import numbers

import jax
import numpy as np

from ._errors import DataError


def numpy_generator(seed=None, *, key=None, what: str = "shuffling") -> np.random.Generator:
    """A `numpy.random.Generator` seeded from an int ``seed`` or a ``u32[2]`` ``key``
    (``tg.random.key(n)``, ``jax.random.PRNGKey(n)`` or a typed ``jax.random.key(n)``).

    The same seed or key always gives the same stream; a key and the int it was made
    from give different streams (a key is seeded from its two words).
    """
    if seed is not None and key is not None:
        raise DataError(f"{what}: give a seed or a key, not both")
    if key is not None:
        dt = getattr(key, "dtype", None)
        if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        try:
            words = np.asarray(key)
        except Exception as e:  # noqa: BLE001 - a traced value or another odd object
            raise DataError(f"{what}: cannot read the key {key!r} ({e})") from None
        if words.dtype.kind not in "ui" or words.size == 0 or words.ndim > 1:
            raise DataError(
                f"{what}: a key must be a u32[2] array such as tg.random.key(0), "
                f"got {words.dtype}{list(words.shape)}"
            )
        return np.random.default_rng([int(w) % 2**32 for w in words.ravel()])
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise DataError(f"{what}: a seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(int(seed))
