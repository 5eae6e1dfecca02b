"""``guard``: a Python decision taken on a tensor's value, as an IR op.

`tg.compile` runs a function define-by-run and records, for every ``bool()``, ``int()``,
``float()``, ``.item()`` or index use of a tensor, a ``guard`` node: its input is the
tensor, ``expect`` the value Python saw, ``kind`` how Python read it. The node's output is
``true`` when the input would make Python decide the same way again, so a compiled path
computes its guards next to its results and is used only when all of them hold.

    %7: bool[] = guard(%6, expect=true, kind="bool")      # model.py:12
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax
import numpy as np

from .defop import NOT_DIFFERENTIABLE, Attr, Sample, ShapeError, defop, never_weak

KINDS = ("bool", "int", "float", "item")


def _shape(x, *, expect, kind):
    if kind not in KINDS:
        raise ShapeError(f"guard kind must be one of {KINDS}, got {kind!r}")
    if x.size != 1:
        raise ShapeError(f"a guarded value has one element, got {x}")
    return ()


def guard_holds(x, *, expect, kind):
    """Whether ``x`` gives the same Python decision ``expect`` (jax.numpy), a strongly
    typed bool (comparing with the Python value alone would give a weak one)."""
    return lax.convert_element_type(_holds(x, expect, kind), np.bool_)


def _holds(x, expect, kind):
    v = jnp.reshape(x, ())
    if kind == "bool":
        return (v != 0) == bool(expect)
    if kind == "int":  # int() truncates toward zero
        t = jnp.trunc(v) if jnp.issubdtype(v.dtype, jnp.inexact) else v
        return t == expect
    if isinstance(expect, float) and math.isnan(expect):
        return jnp.isnan(v)
    return v == expect


def _reference(x, *, expect, kind):
    """numpy's reading of the same decision (what Python itself would conclude)."""
    v = np.asarray(x).reshape(()).item()
    if kind == "bool":
        return np.bool_(bool(v) == bool(expect))
    if kind == "int":
        return np.bool_(int(v) == expect)
    if isinstance(expect, float) and math.isnan(expect):
        return np.bool_(math.isnan(v))
    return np.bool_(v == expect)


guard = defop(
    "guard",
    vjp=NOT_DIFFERENTIABLE,
    shape=_shape,
    dtype=lambda x, **_: np.dtype(np.bool_),
    weak=never_weak,
    impl=guard_holds,
    attrs={"expect": Attr("scalar"), "kind": Attr("str")},
    reference=_reference,
    samples=lambda: [
        Sample((np.float32(1.5),), {"expect": True, "kind": "bool"}, name="bool-holds"),
        Sample((np.zeros((1,), np.float32),), {"expect": True, "kind": "bool"}, name="bool-fails"),
        Sample((np.array([[-2.7]], np.float32),), {"expect": -2, "kind": "int"}, name="int-truncates"),
        Sample((np.int32(7),), {"expect": 7, "kind": "int"}, name="int"),
        Sample((np.float32(0.25),), {"expect": 0.25, "kind": "float"}, name="float"),
        Sample((np.float32(np.nan),), {"expect": float("nan"), "kind": "item"}, name="nan"),
    ],
    doc=__doc__,
)
