"""The tables that `tg.from_jax` reads, keyed on JAX's primitive objects (``lax.exp_p``),
as jax2tf keys ``tf_impl``:

- `RULES`: ``Primitive -> Rule``, how each supported primitive becomes tracegraph ops;
- `NOT_YET_SUPPORTED`: ``Primitive -> reason``, a one-line reason for each primitive
  that has no mapping, which the converter's error shows.

A rule is ``Rule(convert, check)``: ``convert(ctx, eqn, *inputs) -> Tensor | list[Tensor]``
converts ops with `bind` (``eqn.params`` are the primitive's static parameters); the optional
``check(eqn)`` returns why one particular use cannot be expressed (or None), and the
converter runs every check before converting anything, so one error lists every problem.

The rules are split by family: ``_elementwise``, ``_reductions`` (also pooling and
sorts), ``_shape`` (also indexing: dynamic slices, gather, scatter), ``_linalg`` (dot,
conv, decompositions), ``_control`` (calls, custom derivatives, remat, cond, while,
scan) and ``_misc`` (copies, placement, shardings, effects, randomness). Each family
declares its ``RULES`` and ``NOT_YET_SUPPORTED`` side by side; a primitive that does not
exist in the installed JAX fails at import, and ``tests/test_interop_rules.py`` checks
that every public JAX primitive is in one table or the other.

NOTE: most primitives map onto existing ops, sometimes several ops per primitive
(``integer_pow`` is JAX's own square-and-multiply chain, ``gather`` a transpose +
reshape + ``take``, ``dynamic_update_slice`` a masked ``where``). That keeps every
converted node an ordinary op with a VJP rule, so tracegraph's autodiff differentiates
converted code with no JAX-specific rules.

Example::

    from jax import lax
    from tracegraph.interop.rules import NOT_YET_SUPPORTED, RULES

    RULES[lax.exp_p].convert            # the rule that converts tracegraph's exp
    NOT_YET_SUPPORTED[lax.sort_p]    # 'no sort op yet'
"""

from __future__ import annotations

from jax.extend.core import Primitive

from . import _control, _elementwise, _linalg, _misc, _reductions, _shape
from ._rule import Rule

_FAMILIES = (_elementwise, _reductions, _shape, _linalg, _control, _misc)


def _merge(tables: list[dict]) -> dict:
    merged: dict = {}
    for table in tables:
        for prim, value in table.items():
            if not isinstance(prim, Primitive):
                raise TypeError(f"the tables are keyed on JAX Primitives, not {prim!r}")
            if prim in merged:
                raise ValueError(f"the JAX primitive {prim.name} is listed twice")
            merged[prim] = value
    return merged


RULES: dict[Primitive, Rule] = _merge([f.RULES for f in _FAMILIES])
NOT_YET_SUPPORTED: dict[Primitive, str] = _merge([f.NOT_YET_SUPPORTED for f in _FAMILIES])

_both = sorted(p.name for p in RULES.keys() & NOT_YET_SUPPORTED.keys())
if _both:
    raise ValueError(f"JAX primitives with a rule that are also not supported: {_both}")

__all__ = ["NOT_YET_SUPPORTED", "RULES", "Rule"]
