"""Every public sampler of ``jax.random``, converted by ``tg.from_jax``: the census behind
tests/test_jnp_coverage.py's jax.random cases and docs/interop.md's jax.random coverage
line (``python tests/jnp_coverage.py`` prints it after the jax.numpy tables).

Each public function of ``jax.random`` except the key utilities (`KEY_UTILITIES`: making,
splitting, folding, wrapping and inspecting keys, which tests/test_from_jax_random.py
checks on their own) is called as tests/test_from_jax_random.py's ``SAMPLERS`` call it
(every variant: ``normal`` and ``normal-f16`` ...), or as `RECIPES` here calls the ones
that test has no entry for, with the typed key ``jax.random.key(0)`` as the converted
function's argument. It runs under ``tg.jit`` and is compared with ``jax.jit``'s draw for
the same key: integers and bools bit for bit, floats to one float32 ulp or so (XLA may
fuse the arithmetic on the same bits differently). Outcomes as in tests/jnp_coverage.py:
``converts``, ``unsupported`` (names primitives declared unsupported), ``WRONG`` /
``ERROR``.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp

from jnp_coverage import convert_and_compare
from test_from_jax_random import SAMPLERS, assert_trees_equal

KEY = jax.random.key(0)

# not samplers: keys themselves
KEY_UTILITIES = {"PRNGKey", "key", "key_data", "key_dtype", "key_impl", "wrap_key_data",
                 "split", "fold_in", "clone"}

# samplers that test_from_jax_random's SAMPLERS leaves out (they do not convert yet)
RECIPES = {
    "multivariate_normal": lambda k: jax.random.multivariate_normal(
        k, jnp.zeros(2), jnp.array([[2.0, 0.5], [0.5, 1.0]]), (4,)),
    "orthogonal": lambda k: jax.random.orthogonal(k, 3, (2,)),
}


def census_names() -> list[str]:
    """The public samplers of jax.random, sorted."""
    return [n for n in sorted(dir(jax.random))
            if not n.startswith("_") and n not in KEY_UTILITIES
            and inspect.isfunction(getattr(jax.random, n))]


def recipes(name: str) -> list:
    """The draws the census makes for sampler ``name``: SAMPLERS' entries ``name`` and
    ``name-<variant>``, else `RECIPES`' entry; empty where neither has one."""
    found = [fn for k, fn in sorted(SAMPLERS.items()) if k == name or k.startswith(name + "-")]
    return found or ([RECIPES[name]] if name in RECIPES else [])


def compare(got, want):
    """None if ``got`` equals ``jax.jit``'s ``want`` as test_from_jax_random compares
    draws, else what differs."""
    float_draw = any(jnp.issubdtype(w.dtype, jnp.floating) for w in jax.tree_util.tree_leaves(want))
    try:
        assert_trees_equal(got, want, rtol=1e-6 * float_draw, atol=1e-7 * float_draw)
    except AssertionError as e:
        return str(e).strip().splitlines()[0][:160]
    return None


def check(name: str):
    """(outcome, detail) for the sampler ``jax.random.<name>``."""
    draws = recipes(name)
    if not draws:
        return "ERROR", "no recipe: add one to test_from_jax_random.SAMPLERS or RECIPES"
    missing = []
    for fn in draws:
        outcome, detail = convert_and_compare(name, fn, (KEY,), reference=jax.jit(fn),
                                              compare=compare)
        if outcome == "unsupported":
            missing += [m for m in detail.split(", ") if m not in missing]
        elif outcome != "converts":
            return outcome, detail
    return ("unsupported", ", ".join(missing)) if missing else ("converts", "")

