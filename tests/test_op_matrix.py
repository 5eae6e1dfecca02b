"""The op test matrix: every registered op x its samples x (jit, interpreter,
define-by-run), each against the op record's jax.numpy/jax.lax reference: each op's
first three samples in every mode, the rest (-m slow) in one mode each, the modes taking
turns (every mode under TRACEGRAPH_EXHAUSTIVE=1)."""

import jax.numpy as jnp
import pytest

from tracegraph.ir import all_ops, lookup

from conftest import x64_if_needed
from op_matrix import assert_close, op_function, run_mode, sample_cases, slow_in_one_mode

import tracegraph  # noqa: F401  (registers the ops)
from tracegraph.ops.collectives import COLLECTIVES


def test_collectives_run_in_shard_map_samples():
    # collectives need a mesh axis that a shard_map binds: they have no samples of their
    # own, and run here inside shard_map's (tests/test_shard_map.py runs eight devices)
    held = {n.op for s in lookup("shard_map").samples() for n in s.attrs["body"].nodes}
    assert set(COLLECTIVES) <= held, set(COLLECTIVES) - held


# every op in every mode by default; the remaining samples run with -m slow
CASES = list(sample_cases(default_per_op=3))


def test_every_op_has_samples_and_reference():
    missing = [
        f"{n}: " + ", ".join(f for f in ("samples", "reference") if getattr(op, f) is None)
        for n, op in sorted(all_ops().items())
        if (op.samples is None or op.reference is None) and n not in COLLECTIVES
    ]
    assert not missing, "ops without test records:\n" + "\n".join(missing)
    empty = [n for n, op in all_ops().items() if op.samples is not None and not op.samples()]
    assert not empty, f"ops with an empty sample list: {empty}"


@pytest.mark.parametrize("name,index,mode", list(slow_in_one_mode(CASES)))
def test_op_matches_reference(name, index, mode):
    op = lookup(name)
    sample = op.samples()[index]
    with x64_if_needed(sample.args, sample.attrs):
        attrs = op.check_attrs(sample.attrs)
        want = op.reference(*[jnp.asarray(a) for a in sample.args], **attrs)
        got = run_mode(mode, op_function(name, sample.attrs), sample.args)
        assert_close(op, got, want, f"{name}[{sample.name}] in {mode}")
