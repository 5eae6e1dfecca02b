"""The `Rule` record, the per-family `RuleTable` it is registered in, and the small convert
helpers (cast, reshape, transpose, static slices, scalar constants) that rules of several
families share."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive

from ...core import bind
from ...core import Tensor


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one JAX primitive becomes tracegraph ops.

    ``convert(ctx, eqn, *inputs) -> Tensor | list[Tensor]`` converts the ops with `bind`
    (``ctx`` is the converter, for rules that run nested jaxprs). ``check(eqn)``, when
    present, returns why this particular use of the primitive cannot be expressed (or
    None); the converter runs every check before converting anything. ``jaxprs(eqn,
    depth)``, when present, gives the closed jaxprs the conversion runs besides those in
    the equation's parameters (the backward pass of a custom derivative), so that the
    check covers them too; ``depth`` counts such jaxprs around the equation.
    """

    convert: Callable
    check: Callable | None = None
    jaxprs: Callable | None = None


class RuleTable(dict):
    """``Primitive -> Rule`` for one family of primitives; ``register`` is the decorator
    that fills it. Keys must be the primitive objects themselves (``lax.exp_p``), never
    their names, and each primitive is registered once.

    Example::

        RULES = RuleTable()
        rule = RULES.register

        @rule(lax.squeeze_p)
        def _squeeze(ctx, eqn, x):
            return bind("squeeze", x, axes=tuple(eqn.params["dimensions"]))
    """

    def register(self, *prims: Primitive, check: Callable | None = None, jaxprs: Callable | None = None):
        def add(fn):
            for p in prims:
                self.add(p, Rule(fn, check, jaxprs))
            return fn

        return add

    def add(self, prim: Primitive, r: Rule) -> None:
        if not isinstance(prim, Primitive):
            raise TypeError(f"a rule is keyed on a JAX Primitive, not {prim!r}")
        if prim in self:
            raise ValueError(f"two rules for the JAX primitive {prim.name}")
        self[prim] = r


def literal_value(eqn, i):
    """The Python value of operand ``i`` if it is a jaxpr literal, else None."""
    v = eqn.invars[i]
    if isinstance(v, jcore.Literal):
        return np.asarray(v.val).item()
    return None


def out_aval(eqn, i=0):
    return eqn.outvars[i].aval


def cast(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    return x if x.dtype == dtype else bind("astype", x, dtype=dtype)


def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(int(d) for d in shape)
    return x if tuple(x.shape) == shape else bind("reshape", x, shape=shape)


def transpose(x: Tensor, perm) -> Tensor:
    perm = tuple(int(p) for p in perm)
    return x if perm == tuple(range(len(perm))) else bind("transpose", x, perm=perm)


def static_slice(x: Tensor, start, limit, strides=None) -> Tensor:
    start, limit = tuple(int(s) for s in start), tuple(int(s) for s in limit)
    strides = None if strides is None or all(s == 1 for s in strides) else tuple(strides)
    if start == (0,) * x.ndim and limit == tuple(x.shape) and strides is None:
        return x
    return bind("slice", x, start=start, limit=limit, strides=strides)


def scalar_like(x: Tensor, value) -> Tensor:
    """A scalar constant of x's dtype (weak only where jax would make it weak)."""
    return bind("full", shape=(), value=value, dtype=x.dtype)


def is_float(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


def is_bool(dtype) -> bool:
    return np.dtype(dtype) == np.bool_


def bool_only(what: str) -> Callable:
    """A check that accepts only bool operands (the logical form of a bitwise op)."""

    def check(eqn):
        if not all(is_bool(v.aval.dtype) for v in eqn.invars):
            return f"{what} of integers (bitwise) is not supported, only of bools"
        return None

    return check
