"""Checking and converting user arguments before a graph runs (both backends)."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ..core import weak_value
from ..errors import ShapeError
from ..ir.types import is_key


def coerce_inputs(graph, flat_args) -> list:
    """Check user arrays against the graph's input types; give weak inputs Python
    scalars and strong inputs arrays of the declared dtype."""
    out = []
    for i, (v, a) in enumerate(zip(graph.inputs, flat_args)):
        t = v.type
        shape = tuple(np.shape(a))
        if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
            dtype = np.asarray(a).dtype
        elif is_key(getattr(a, "dtype", None)):  # typed PRNG keys
            dtype = a.dtype
        else:
            dtype = np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype)
        if shape != t.shape or not _dtype_ok(dtype, t.dtype):
            what = "shape" if shape != t.shape else "dtype"
            raise ShapeError(
                f"graph {graph.name}: input {v.name or i} (input {i}) expects {t}, got "
                f"{dtype}{list(shape)} (wrong {what})"
            )
        if t.weak:
            out.append(_weak(a, t))
        else:
            out.append(a if getattr(a, "dtype", None) == t.dtype else jnp.asarray(a, t.dtype))
    return out


def _weak(a, t):
    if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
        return a
    return weak_value(a, t.dtype)


def _dtype_ok(given, declared) -> bool:
    if given == declared:
        return True
    if is_key(given) or is_key(declared):
        return False
    return np.dtype(jax.dtypes.canonicalize_dtype(given)) == declared
