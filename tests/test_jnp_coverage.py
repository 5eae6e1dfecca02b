"""Every public jax.numpy, jax.nn and jax.scipy.special function that takes plain arrays converts through tg.from_jax
to JAX's result, or names JAX primitives that tracegraph declares unsupported (with a
reason); never a wrong value or another error (tests/jnp_coverage.py makes the census)."""

import pytest

from jnp_coverage import census_names, check
from tracegraph.interop.rules import NOT_YET_SUPPORTED, RULES

NAMES = census_names()
# declared: listed as not yet supported, or a rule whose check refuses this use of the
# primitive with its reason (a sort over several keys, platform_index)
DECLARED = {p.name for p in NOT_YET_SUPPORTED} | {p.name for p, r in RULES.items() if r.check}


# every sixteenth function in the default run, all of them with -m slow
@pytest.mark.parametrize("name", [
    n if i % 16 == 0 else pytest.param(n, marks=pytest.mark.slow) for i, n in enumerate(NAMES)
])
def test_jnp_function_converts_or_is_declared_unsupported(name):
    outcome, detail = check(name)
    assert outcome in ("converts", "unsupported", "n/a"), f"{name}: {outcome} {detail}"
    if outcome == "unsupported":
        missing = set(detail.split(", "))
        assert missing <= DECLARED, f"{name}: {missing - DECLARED} are not declared"
