"""Every public jax.numpy, jax.nn and jax.scipy.special function (with its recipe of
arguments where plain arrays do not fit it), the methods of jax.numpy's binary ufuncs and
every jax.random sampler converts through tg.from_jax to JAX's result, or names JAX
primitives that tracegraph declares unsupported (with a reason), or is declared not
applicable with its reason; never a wrong value or another error (tests/jnp_coverage.py
and tests/random_coverage.py make the censuses)."""

import jax
import pytest

import jnp_coverage
import random_coverage
from jnp_coverage import NOT_APPLICABLE, RECIPES, SKIP, census_names, check
from tracegraph.interop.rules import NOT_YET_SUPPORTED, RULES

NAMES = census_names()
SAMPLERS = random_coverage.census_names()
# declared: listed as not yet supported, or a rule whose check refuses this use of the
# primitive with its reason (a complex operand, a backend without a platform_dependent branch)
DECLARED = {p.name for p in NOT_YET_SUPPORTED} | {p.name for p, r in RULES.items() if r.check}


def every_16th(names):
    """Every sixteenth name in the default run, all of them with -m slow."""
    return [n if i % 16 == 0 else pytest.param(n, marks=pytest.mark.slow)
            for i, n in enumerate(names)]


def assert_converts_or_declared(name, outcome, detail):
    assert outcome in ("converts", "unsupported", "n/a"), f"{name}: {outcome} {detail}"
    if outcome == "unsupported":
        missing = set(detail.split(", "))
        assert missing <= DECLARED, f"{name}: {missing - DECLARED} are not declared"


@pytest.mark.parametrize("name", every_16th(NAMES))
def test_jnp_function_converts_or_is_declared_unsupported(name):
    outcome, detail = check(name)
    assert_converts_or_declared(name, outcome, detail)
    if outcome == "n/a":  # check says so only with NOT_APPLICABLE's reason
        assert detail == NOT_APPLICABLE[name]


@pytest.mark.parametrize("name", every_16th(SAMPLERS))
def test_jax_random_sampler_converts_or_is_declared_unsupported(name):
    assert_converts_or_declared(f"jax.random.{name}", *random_coverage.check(name))


def test_the_census_tables_name_what_exists():
    """A recipe or a reason for a name the census does not reach (a renamed or removed
    function, or one in SKIP) is stale, and so is a skipped name JAX no longer has."""
    names = set(NAMES)
    assert not set(RECIPES) - names, sorted(set(RECIPES) - names)
    assert not set(NOT_APPLICABLE) - names, sorted(set(NOT_APPLICABLE) - names)
    public = {n for m in jnp_coverage.MODULES.values() for n in dir(m)}
    assert SKIP <= public, sorted(SKIP - public)
    assert set(random_coverage.RECIPES) <= set(SAMPLERS)
    assert not set(SAMPLERS) & random_coverage.KEY_UTILITIES
    assert {n for n in dir(jax.random) if not n.startswith("_")} >= random_coverage.KEY_UTILITIES
