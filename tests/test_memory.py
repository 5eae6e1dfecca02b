"""Values are freed after their last use: a chain of ops on a large array holds a couple
of arrays at a time in the interpreter and in define-by-run, not all of them.

Both modes run in one fresh process, which reads its peak resident memory
(``ru_maxrss``) after warming up op compilation on a small array; each mode's rise is
measured over the peak before it, so a mode holding every activation shows as gigabytes.
"""

import subprocess
import sys


SCRIPT = r"""
import resource, sys
import numpy as np, jax, jax.numpy as jnp
import tracegraph as tg

x = jnp.asarray(np.random.default_rng(0).standard_normal(10_000_000).astype(np.float32))  # 40 MB

def chain(x):
    for i in range(120):
        x = tg.sin(x) if i % 2 else x * 1.0001
    return x

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

f = tg.jit(chain)
small = jnp.ones(8, jnp.float32)
f.interpret(small, optimized=False), tg.eager(chain)(small)   # compile each op once
f.trace(x, optimized=False)
expected = np.asarray(x)
for i in range(120):
    expected = np.sin(expected) if i % 2 else expected * np.float32(1.0001)
for mode in ("interpret", "eager"):
    base = peak_mb()
    y = f.interpret(x, optimized=False) if mode == "interpret" else tg.eager(chain)(x)
    jax.block_until_ready(y)
    assert np.allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5), mode
    del y
    print(mode, round(peak_mb() - base))
"""


def test_chain_on_a_large_array_frees_each_value():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rises = dict(line.split() for line in out.stdout.strip().splitlines()[-2:])
    assert set(rises) == {"interpret", "eager"}
    for mode, rise_mb in rises.items():
        # 120 live 40 MB arrays would be 4.8 GB; freeing after last use keeps a few
        assert int(rise_mb) < 600, f"{mode}: peak memory rose by {rise_mb} MB"
