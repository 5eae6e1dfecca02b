"""The benchmarks' one timing loop: the rows take turns within each round."""

from __future__ import annotations

import statistics
import time

import jax


def timed_rows(fns, repeat: int, number: int, warmup: int = 3) -> list[float]:
    """Seconds per call of each function: the median of ``repeat`` rounds, each round
    calling every function ``number`` times in turn (so a slow spell of a shared machine
    falls on every row alike, not on whichever row ran then), after ``warmup`` calls each
    (compilation, caches)."""
    for fn in fns:
        out = None
        for _ in range(warmup):
            out = fn()
        jax.block_until_ready(out)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            for _ in range(number):
                out = fn()
            jax.block_until_ready(out)
            ts.append((time.perf_counter() - start) / number)
    return [statistics.median(ts) for ts in times]
