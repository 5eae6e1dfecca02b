"""Deterministic sample arrays for op records (the op test matrix draws from these)."""

from __future__ import annotations

import zlib

import numpy as np

from ..ir.types import DTYPE_NAMES

FLOATS = ("f32", "f64", "f16", "bf16")
INTS = ("i32", "i64", "u8", "i8")
BOOL = ("bool",)


def arr(shape, dtype="f32", low=-2.0, high=2.0, tag="") -> np.ndarray:
    """A reproducible array: same (shape, dtype, range, tag) -> same values."""
    dt = DTYPE_NAMES[dtype] if isinstance(dtype, str) else np.dtype(dtype)
    seed = zlib.crc32(f"{shape}{dt}{low}{high}{tag}".encode())
    rng = np.random.default_rng(seed)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        lo = max(int(low), np.iinfo(dt).min)
        hi = min(int(high), np.iinfo(dt).max)
        return rng.integers(lo, hi + 1, size=shape).astype(dt)
    return rng.uniform(low, high, size=shape).astype(dt)


def positive(shape, dtype="f32", tag=""):
    return arr(shape, dtype, 0.5, 2.0, tag)
