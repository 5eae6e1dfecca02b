"""The caches tracegraph keeps between calls — compiled per-op implementations, resolved
shape rules and plans, backward graphs, compiled training steps — registered where they
are defined, so that `clear_caches` (``tg.clear_caches()``) empties them all, as
``jax.clear_caches()`` empties JAX's. Each is a dict a miss refills; clearing one costs
recompilation, never a wrong result. Not caches, so not here: state such as the seeds
of TensorFlow-style operation streams.
"""

from __future__ import annotations

_REGISTERED: list = []


def cache(d: dict) -> dict:
    """Register the dict ``d`` as a cache (returns it, for ``_X = cache({})``)."""
    _REGISTERED.append(d)
    return d


def clear_caches() -> None:
    """Empty every tracegraph cache and JAX's (``jax.clear_caches()``): compiled
    executables and traced graphs are freed; later calls trace and compile again.

    Example::

        tg.clear_caches()   # e.g. between the parts of a long-running process
    """
    import jax

    for d in _REGISTERED:
        d.clear()
    jax.clear_caches()
