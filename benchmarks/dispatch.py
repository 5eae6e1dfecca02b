"""Per-call dispatch cost: `tg.jit` vs `jax.jit` on the same functions and inputs.

    python benchmarks/dispatch.py [--repeat 15] [--number 2000]

A `tg.jit` call on a cached signature should cost about what a `jax.jit` call costs
(DESIGN.md: tracegraph reuses jax.jit's own dispatch). Both sides are warmed up, get the
same device arrays, and block on their outputs; each repeat times ``--number`` calls of
tracegraph then of JAX, alternating, and the table reports the median over ``--repeat``
repeats in microseconds per call. The first-call time (trace + lower + XLA compile) is
printed too, for information.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

import tracegraph as tg


# -- the functions, written once for each framework ----------------------------------
def tiny_tg(x):
    return x * 2 + 1


def tiny_jax(x):
    return x * 2 + 1


def mlp_tg(x, w1, b1, w2, b2):
    return tg.relu(x @ w1 + b1) @ w2 + b2


def mlp_jax(x, w1, b1, w2, b2):
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2


def tiny_inputs(rng):
    return (jnp.asarray(rng.standard_normal((8,), dtype=np.float32)),)


def mlp_inputs(rng, batch=128, n_in=784, n_hidden=128, n_out=10):
    shapes = [(batch, n_in), (n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,)]
    return tuple(jnp.asarray(rng.standard_normal(s, dtype=np.float32) * 0.05) for s in shapes)


CASES = [
    ("tiny: x*2+1, f32[8]", tiny_tg, tiny_jax, tiny_inputs),
    ("mlp fwd 784-128-10, batch 128", mlp_tg, mlp_jax, mlp_inputs),
]


# -- measurement -----------------------------------------------------------------------
def first_call_ms(jit, fn, args) -> float:
    """Trace + compile + run once, on a fresh jitted function (nothing cached)."""
    f = jit(fn)
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    return (time.perf_counter() - t0) * 1e3


def per_call_us(f_tg, f_jax, args, repeat: int, number: int):
    """Median microseconds per call of each, timed in alternation to share any drift."""
    call_tg = lambda: f_tg(*args).block_until_ready()
    call_jax = lambda: f_jax(*args).block_until_ready()
    for _ in range(max(10, number // 10)):  # warm-up: dispatch caches, allocator, CPU clocks
        call_tg(), call_jax()
    t_tg, t_jax = [], []
    for _ in range(repeat):
        t_tg.append(timeit.timeit(call_tg, number=number) / number * 1e6)
        t_jax.append(timeit.timeit(call_jax, number=number) / number * 1e6)
    return statistics.median(t_tg), statistics.median(t_jax), t_tg, t_jax


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=15, help="timed repeats; the median is reported (default 15)"
    )
    parser.add_argument("--number", type=int, default=2000, help="calls per repeat (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(
        f"tracegraph {tg.__version__} | jax {jax.__version__} | "
        f"python {platform.python_version()} | device {jax.devices()[0].platform}: "
        f"{jax.devices()[0].device_kind}"
    )
    print(f"median of {args.repeat} repeats x {args.number} calls, outputs blocked on\n")

    rng = np.random.default_rng(args.seed)
    # One-time process costs (backend start-up, first compile) go to neither side.
    jax.block_until_ready(jax.jit(lambda v: v - 1)(jnp.ones(3)))
    jax.block_until_ready(tg.jit(lambda v: v - 1)(jnp.ones(3)))
    rows = []
    for name, fn_tg, fn_jax, make_inputs in CASES:
        inputs = make_inputs(rng)
        first_tg = first_call_ms(tg.jit, fn_tg, inputs)
        first_jax = first_call_ms(jax.jit, fn_jax, inputs)
        f_tg, f_jax = tg.jit(fn_tg), jax.jit(fn_jax)
        np.testing.assert_allclose(
            np.asarray(f_tg(*inputs)), np.asarray(f_jax(*inputs)), rtol=1e-5, atol=1e-5
        )
        us_tg, us_jax, _, _ = per_call_us(f_tg, f_jax, inputs, args.repeat, args.number)
        rows.append((name, us_tg, us_jax, first_tg, first_jax))

    header = f"{'case':32s} {'tg.jit us/call':>15s} {'jax.jit us/call':>16s} {'tg/jax':>7s}"
    print(header)
    print("-" * len(header))
    for name, us_tg, us_jax, _, _ in rows:
        print(f"{name:32s} {us_tg:15.2f} {us_jax:16.2f} {us_tg / us_jax:7.2f}")

    first = "first call (trace+compile)"
    print(f"\n{first:32s} {'tg.jit ms':>15s} {'jax.jit ms':>16s} {'tg/jax':>7s}")
    for name, _, _, first_tg, first_jax in rows:
        print(f"{name:32s} {first_tg:15.1f} {first_jax:16.1f} {first_tg / first_jax:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
