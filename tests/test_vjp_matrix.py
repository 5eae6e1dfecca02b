"""Gradient checks for every op record: the VJP rule (a graph of tracegraph ops)
against jax.vjp of the op's implementation, and against finite differences in float64
(the inner-product test <J u, v> = <u, J^T v>, as JAX's check_grads does), in jit,
interpreter and define-by-run: every op in every mode, and with -m slow every other
sample in one of them (`op_matrix.slow_in_one_mode`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir import NOT_DIFFERENTIABLE, all_ops, lookup
from tracegraph.ir.types import is_inexact

from conftest import x64_if_needed
from op_matrix import EXHAUSTIVE, MODES, as_list, assert_close, run_mode, sample_cases, slow_in_one_mode, one_mode_per_op


def _dtype(a):
    # typed keys (random_gamma's samples) have a dtype but no numpy form
    return a.dtype if isinstance(a, jax.Array) else np.asarray(a).dtype


def _is_inexact(dtype):
    return not jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and is_inexact(dtype)


def _differentiable_positions(sample):
    return [i for i, a in enumerate(sample.args) if _is_inexact(_dtype(a))]


def _has_subgraphs(sample):
    return any(hasattr(v, "nodes") for v in sample.attrs.values())


def _all_floats_f64(sample):
    return all(
        _dtype(a) == np.float64 for a in sample.args if _is_inexact(_dtype(a))
    )


def _grad_cases(fd=False):
    """Differentiable samples: one per op by default, the rest with -m slow."""

    def keep(op, s):
        if op.vjp is NOT_DIFFERENTIABLE or not s.grad or not _differentiable_positions(s):
            return False
        if not fd:
            return s.jax_vjp
        if not any(_dtype(a) in (np.float32, np.float64) for a in s.args):
            return False
        # subgraphs are typed: only their f64 samples can run in f64
        return not _has_subgraphs(s) or _all_floats_f64(s)

    return sample_cases(default_per_op=1, keep=keep)


def _fd_cases():
    """`_grad_cases(fd=True)` x modes, each sample in one mode, the modes taking turns
    (finite differences check the rule, which is the same in every mode;
    test_vjp_matches_jax runs every op in every mode): each op's first sample by
    default, the rest with -m slow (in every mode under TRACEGRAPH_EXHAUSTIVE)."""
    for i, p in enumerate(_grad_cases(fd=True)):
        slow = any(m.name == "slow" for m in p.marks)
        for mode in MODES if slow and EXHAUSTIVE else (MODES[i % len(MODES)],):
            yield pytest.param(*p.values, mode, marks=p.marks, id=f"{p.id}-{mode}")


def _split(op, sample, args):
    pos = _differentiable_positions(sample)
    attrs = op.check_attrs(sample.attrs)

    def full(dargs):
        xs = list(args)
        for p, d in zip(pos, dargs):
            xs[p] = d
        return xs

    return pos, attrs, full


def _output_is_differentiable(op, sample, attrs):
    """Whether some output is inexact (an op with integer outputs beside them, as
    top_k's indices or lu's pivots, is checked through its inexact ones)."""
    out = op.impl(*[jnp.asarray(a) for a in sample.args], **attrs)
    return any(is_inexact(o.dtype) for o in as_list(out)), out


def _cotangent(out, seed, float0=False):
    """Random cotangents for the inexact outputs; zeros for integer ones (JAX's
    ``float0`` zeros with ``float0=True``, as `jax.vjp` takes them)."""
    rng = np.random.default_rng(seed)
    cts = [jnp.asarray(rng.normal(size=o.shape), dtype=o.dtype) if is_inexact(o.dtype)
           else (np.zeros(o.shape, jax.dtypes.float0) if float0 else jnp.zeros(o.shape, o.dtype))
           for o in as_list(out)]
    return type(out)(cts) if isinstance(out, (tuple, list)) else cts[0]


def _tg_pullback(name, attrs, full, nd):
    def pull(*xs):
        dargs, ct = xs[:nd], xs[nd] if len(xs) == nd + 1 else tuple(xs[nd:])
        _, vjp_fn = tg.vjp(lambda *d: bind(name, *full(d), **attrs), *dargs)
        return vjp_fn(ct)

    pull.__name__ = f"vjp_{name}"
    return pull


def test_every_op_declares_its_gradient():
    missing = [n for n, op in sorted(all_ops().items()) if op.vjp is None]
    assert not missing, "ops with neither a VJP rule nor NOT_DIFFERENTIABLE: " + ", ".join(missing)


@pytest.mark.parametrize("name,index,mode", list(one_mode_per_op(_grad_cases())))
def test_vjp_matches_jax(name, index, mode):
    op = lookup(name)
    sample = op.samples()[index]
    with x64_if_needed(sample.args, sample.attrs):
        args = [jnp.asarray(a) for a in sample.args]
        pos, attrs, full = _split(op, sample, args)
        ok, out = _output_is_differentiable(op, sample, attrs)
        if not ok:
            pytest.skip("integer output")
        dargs = [args[p] for p in pos]
        want_out, jax_pull = jax.vjp(lambda *d: op.impl(*full(d), **attrs), *dargs)
        ct = _cotangent(want_out, index)
        want = jax_pull(_cotangent(want_out, index, float0=True))
        got = run_mode(mode, _tg_pullback(name, attrs, full, len(pos)), [*dargs, *as_list(ct)])
        assert_close(op, list(got), list(want), f"vjp of {name}[{sample.name}] in {mode}")


@pytest.mark.parametrize("name,index,mode", list(_fd_cases()))
def test_vjp_finite_differences_f64(name, index, mode):
    op = lookup(name)
    sample = op.samples()[index]
    with jax.enable_x64(True):
        args = [
            jnp.asarray(a, jnp.float64) if _is_inexact(_dtype(a)) else jnp.asarray(a)
            for a in sample.args
        ]
        pos, attrs, full = _split(op, sample, args)
        ok, _ = _output_is_differentiable(op, sample, attrs)
        if not ok:
            pytest.skip("integer output")
        rng = np.random.default_rng(index + 7)
        dargs = [args[p] for p in pos]
        us = [jnp.asarray(rng.normal(size=d.shape)) for d in dargs]
        f = lambda *d: as_list(op.impl(*full(d), **attrs))  # noqa: E731
        if any(np.dtype(o.dtype) != np.float64 for o in f(*dargs) if is_inexact(o.dtype)):  # float64 run
            pytest.skip("an output cast below float64 quantizes away a finite-difference step")
        eps = 1e-6
        plus = f(*[d + eps * u for d, u in zip(dargs, us)])
        minus = f(*[d - eps * u for d, u in zip(dargs, us)])
        ct = _cotangent(f(*dargs) if len(plus) > 1 else f(*dargs)[0], index + 3)
        cts = as_list(ct)
        # integer outputs (indices, pivots) are piecewise constant: their cotangents are
        # zeros, and they take no part in <J u, v>
        jvp_v = sum(float(jnp.vdot((p - m) / (2 * eps), c)) for p, m, c in zip(plus, minus, cts)
                    if is_inexact(p.dtype))
        got = run_mode(mode, _tg_pullback(name, attrs, full, len(pos)), [*dargs, *cts])
        u_jtv = sum(float(jnp.vdot(u, g)) for u, g in zip(us, got))
        scale = max(1.0, abs(jvp_v), abs(u_jtv))
        assert abs(jvp_v - u_jtv) <= 1e-5 * scale, f"<Ju,v>={jvp_v} <u,J^T v>={u_jtv}"
