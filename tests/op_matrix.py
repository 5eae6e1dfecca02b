"""Shared helpers of the op test matrix: tolerances and how each mode runs a sample."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir import all_ops, lookup
from tracegraph.ir.types import dtype_name

MODES = ("jit", "interpret", "eager")

# The slow set runs each matrix sample beyond the default ones in one mode, the modes
# taking turns (every mode still runs every op: the default samples run in all three).
# TRACEGRAPH_EXHAUSTIVE=1 runs every sample in every mode (and 5,040 random programs):
# about 90 minutes on two cores, too long for CI's budget.
EXHAUSTIVE = os.environ.get("TRACEGRAPH_EXHAUSTIVE", "") not in ("", "0")


def slow_in_one_mode(cases, default_modes=MODES, first_in_all=True):
    """pytest params ``(*case, mode)`` from `sample_cases` params. A default case runs in
    each of ``default_modes`` if it is its op's first (``first_in_all``), else in one mode,
    the modes taking turns (every op in every mode on its first sample, its next default
    samples in one mode each: the default run's ten minutes hold ~160 ops); a slow case
    runs in one mode, the modes taking turns (in every mode under TRACEGRAPH_EXHAUSTIVE).
    Ids are ``{id}-{mode}``."""
    turn = 0
    seen = set()
    for p in cases:
        slow = any(m.name == "slow" for m in p.marks)
        first = p.values[0] not in seen
        seen.add(p.values[0])
        if slow and not EXHAUSTIVE:
            modes = (MODES[turn % len(MODES)],)
            turn += 1
        elif slow or EXHAUSTIVE or (first and first_in_all):
            modes = MODES if slow else default_modes
        else:
            modes = (default_modes[turn % len(default_modes)],)
            turn += 1
        for mode in modes:
            yield pytest.param(*p.values, mode, marks=p.marks, id=f"{p.id}-{mode}")


_TURN = [0]


def rotating_modes():
    """``MODES`` as the params of one test: one mode by default, the next test's default
    the next mode (so the default run covers every mode across a file's tests), one more
    with -m slow (every mode under TRACEGRAPH_EXHAUSTIVE=1)."""
    k = _TURN[0] % len(MODES)
    _TURN[0] += 1
    return [m if i == k or EXHAUSTIVE else pytest.param(m, marks=pytest.mark.slow)
            for i, m in enumerate(MODES) if i in (k, (k + 1) % len(MODES)) or EXHAUSTIVE]


def one_mode_per_op(cases):
    """pytest params ``(*case, mode)``: each op's default case in one mode, the modes
    taking turns from op to op (the VJP matrix: `slow_in_one_mode`'s forward matrix runs
    every op in every mode); its other modes, and the slow cases, with -m slow."""
    for i, p in enumerate(cases):
        slow = any(m.name == "slow" for m in p.marks)
        for j, mode in enumerate(MODES):
            if slow and not EXHAUSTIVE and j != i % len(MODES):
                continue
            marks = p.marks if (slow or j == i % len(MODES) or EXHAUSTIVE) else (pytest.mark.slow,)
            yield pytest.param(*p.values, mode, marks=marks, id=f"{p.id}-{mode}")


def modes_taking_turns(cases, ids):
    """pytest params ``(*case, mode)``. By default each case runs in one mode, the modes
    taking turns (so every case and every mode run); with -m slow in the next mode too
    (so each case runs in two, and CI's slow set keeps its time); in the third only under
    TRACEGRAPH_EXHAUSTIVE=1. Ids are ``{id}-{mode}``, as two stacked parametrize
    decorators give them."""
    params = []
    for i, (case, name) in enumerate(zip(cases, ids)):
        case = case if isinstance(case, tuple) else (case,)
        for j, mode in enumerate(MODES):
            if j not in (i % len(MODES), (i + 1) % len(MODES)) and not EXHAUSTIVE:
                continue
            marks = () if j == i % len(MODES) else (pytest.mark.slow,)
            params.append(pytest.param(*case, mode, marks=marks, id=f"{name}-{mode}"))
    return params

DEFAULT_TOL = {
    "f16": (2e-3, 2e-3),
    "bf16": (2e-2, 2e-2),
    "f32": (2e-5, 2e-6),
    "f64": (1e-12, 1e-13),
    "c64": (2e-5, 2e-6),
    "c128": (1e-12, 1e-13),
}


def tolerance(op, dtype):
    name = dtype_name(dtype)
    return op.tolerances.get(name, DEFAULT_TOL.get(name, (0, 0)))


def sample_cases(default_per_op=None, keep=None):
    """pytest params ``(op name, sample index)`` for every op record's samples.

    The first ``default_per_op`` samples of each op (that ``keep(op, sample)`` accepts)
    run by default; the rest are marked ``slow`` (the exhaustive matrix: ``-m slow``)."""
    for name in sorted(all_ops()):
        op = lookup(name)
        if op.samples is None:
            continue
        kept = 0
        for i, s in enumerate(op.samples()):
            if keep is not None and not keep(op, s):
                continue
            slow = default_per_op is not None and kept >= default_per_op
            kept += 1
            marks = (pytest.mark.slow,) if slow else ()
            yield pytest.param(name, i, id=f"{name}-{s.name or i}", marks=marks)


def op_function(name, attrs):
    def f(*xs):
        return bind(name, *xs, **attrs)

    f.__name__ = name
    return f


def run_mode(mode, fn, args):
    if mode == "jit":
        return tg.jit(fn)(*args)
    if mode == "interpret":
        return tg.trace(fn, *args).interpret(*args)
    if mode == "eager":
        return tg.eager(fn)(*args)
    raise ValueError(mode)


def as_list(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def assert_close(op, got, want, what=""):
    got, want = as_list(got), as_list(want)
    assert len(got) == len(want), f"{what}: {len(got)} outputs vs {len(want)}"
    for g, w in zip(got, want):
        w = jnp.asarray(w)
        assert tuple(g.shape) == tuple(w.shape), f"{what}: shape {g.shape} vs {w.shape}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} vs {w.dtype}"
        if jax.dtypes.issubdtype(g.dtype, jax.dtypes.prng_key):  # keys: equal data
            g, w = jax.random.key_data(g), jax.random.key_data(w)
        rtol, atol = tolerance(op, g.dtype)
        gn = np.asarray(g.astype(jnp.float32) if g.dtype == jnp.bfloat16 else g)
        wn = np.asarray(w.astype(jnp.float32) if w.dtype == jnp.bfloat16 else w)
        np.testing.assert_allclose(gn, wn, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
