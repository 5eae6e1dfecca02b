"""Per-node cost of running a graph op by op: the interpreter (`f.interpret`) and
define-by-run (`tg.eager`), against plain jax.numpy op-by-op dispatch (and PyTorch eager
when torch is installed), on a chain of small elementwise ops where dispatch dominates.

    python benchmarks/interpreter.py [--nodes 200] [--size 64] [--repeat 7] [--number 20]

Prints microseconds per node (median of --repeat rounds of --number calls, the modes
taking turns within each round) and each
mode's ratio to jax.numpy's own per-op dispatch.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
from _timing import (
    timed_rows,  # benchmarks/_timing.py (the script's folder is on the path)
)

import tracegraph as tg


def chain_tg(x, n):
    for i in range(n // 2):
        x = tg.sin(x) * 1.0001
    return x


def chain_jnp(x, n):
    for i in range(n // 2):
        x = jnp.sin(x) * 1.0001
    return x


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=20)
    a = p.parse_args(argv)
    x = jnp.asarray(np.linspace(-1, 1, a.size, dtype=np.float32))
    n = a.nodes
    f = tg.jit(lambda x: chain_tg(x, n), passes=())
    run = tg.eager(lambda x: chain_tg(x, n))
    rows = [
        ("jax.numpy op by op", lambda: chain_jnp(x, n)),
        ("tg interpreter", lambda: f.interpret(x)),
        ("tg.eager (define-by-run)", lambda: run(x)),
    ]
    try:
        import torch

        xt = torch.from_numpy(np.asarray(x))

        def chain_torch():
            y = xt
            for _ in range(n // 2):
                y = torch.sin(y) * 1.0001
            return y

        rows.append(("PyTorch eager", chain_torch))
    except ImportError:
        pass
    base = None
    print(f"{'mode':<28} {'us/node':>9} {'ratio':>7}   ({n} nodes, f32[{a.size}])")
    for (name, _), t in zip(rows, timed_rows([fn for _, fn in rows], a.repeat, a.number)):
        per_node = t / n * 1e6
        base = base or per_node
        print(f"{name:<28} {per_node:9.2f} {per_node / base:7.2f}")


if __name__ == "__main__":
    main()
