"""Tracing and the default pass pipeline in time per node, at growing graph sizes, beside
`jax.make_jaxpr` of the same function: both should be linear in the number of ops.

    python benchmarks/tracing.py [--sizes 1000 10000 100000] [--repeat 3]

The function is a chain of ``matmul -> tanh -> add`` blocks over small matrices (so the
time is the framework's, not the arithmetic's), plus a sum. For each size it reports the
median over ``--repeat`` runs of: `tg.trace` (Python function -> IR), the default pass
pipeline on that graph (`PassManager`, verifying after each pass, as `tg.jit` runs it),
their total per node, and `jax.make_jaxpr` per equation.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import tracegraph as tg
from tracegraph.transforms.pass_manager import PassManager


def chain(np_, blocks):
    def f(x, w):
        h = x
        for _ in range(blocks):
            h = np_.tanh(h @ w) + 1.0
        return h.sum()

    return f


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        del out
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    x = np.ones((4, 4), np.float32)
    print(f"tracegraph {tg.__version__}, jax {jax.__version__}, Python {platform.python_version()}")
    print(f"{'ops':>8} {'nodes':>8} {'trace s':>9} {'passes s':>9} {'us/node':>8} "
          f"{'make_jaxpr s':>13} {'us/eqn':>7} {'tg/jax':>7}")
    for size in args.sizes:
        blocks = max(1, size // 3)
        f_tg = chain(tg, blocks)
        graph = tg.trace(f_tg, x, x)
        t_trace = median_time(lambda: tg.trace(f_tg, x, x), args.repeat)
        t_pass = median_time(lambda: PassManager(verify=True).run(graph), args.repeat)
        eqns = len(jax.make_jaxpr(chain(jnp, blocks))(x, x).eqns)
        # a new function each time: make_jaxpr caches on the function
        t_jax = median_time(lambda: jax.make_jaxpr(chain(jnp, blocks))(x, x), args.repeat)
        n = len(graph.nodes)
        per_node = (t_trace + t_pass) / n * 1e6
        per_eqn = t_jax / eqns * 1e6
        print(f"{size:>8} {n:>8} {t_trace:>9.3f} {t_pass:>9.3f} {per_node:>8.1f} "
              f"{t_jax:>13.3f} {per_eqn:>7.1f} {per_node / per_eqn:>7.2f}")


if __name__ == "__main__":
    main()
