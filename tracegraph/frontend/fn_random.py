"""tg.random: random numbers from explicit keys, equal to jax.random bit for bit.

A key is a raw ``u32[2]`` array, the same as ``jax.random.PRNGKey(seed)``; keys can be
passed between tracegraph and JAX code freely. There is no hidden state: split a key to
get fresh ones.

Example::

    key = tg.random.key(0)
    k1, k2 = tg.random.split(key)
    w = tg.random.normal(k1, (784, 128)) * 0.01
    mask = tg.random.bernoulli(k2, 0.9, (128,))
"""

from __future__ import annotations

import numbers
import operator
import os
import threading

import jax
import numpy as np

from ..errors import TracingError, user_location_long
from ..core import bind, current_trace
from ..core import Tensor


def _raw_key(key):
    """Accept JAX's typed keys (``jax.random.key``) by taking their raw u32 data."""
    dt = getattr(key, "dtype", None)
    if (
        not isinstance(key, Tensor)
        and dt is not None
        and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)
    ):
        key = jax.random.key_data(key)
    return key


def _shape(shape) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, numbers.Integral):
        return (int(shape),)
    try:
        return tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TracingError(
            f"a random shape must be a tuple of Python ints, got {shape!r} "
            f"(at {user_location_long(3)})"
        ) from None


def key(seed):
    """A key from an integer seed, equal to ``jax.random.PRNGKey(seed)``.

    A Python int gives a constant key; a traced integer gives an op (``random_seed``).
    """
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        try:  # computed now even while jax traces (tg.jit), so it lands as a constant
            with jax.ensure_compile_time_eval():
                raw = np.asarray(jax.random.PRNGKey(int(seed)))
        except (OverflowError, TypeError, ValueError) as e:
            raise TracingError(f"bad seed {seed!r}: {e} (at {user_location_long(2)})") from None
        return current_trace().constant(raw)
    return bind("random_seed", seed)


PRNGKey = key


def split(key, num: int = 2):
    """``num`` new keys as the rows of a ``u32[num, 2]`` (``jax.random.split``)."""
    return bind("random_split", _raw_key(key), num=num)


def fold_in(key, data):
    """A new key from ``key`` and an integer (``jax.random.fold_in``)."""
    if isinstance(data, numbers.Integral) and not isinstance(data, bool):
        data = np.asarray(int(data) % 2**32, np.uint32)  # jax folds the low 32 bits
    return bind("random_fold_in", _raw_key(key), data)


def normal(key, shape=(), dtype=np.float32):
    """Standard normal draws (``jax.random.normal``)."""
    return bind("random_normal", _raw_key(key), shape=_shape(shape), dtype=dtype)


def uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform draws in ``[minval, maxval)`` (``jax.random.uniform``; static bounds)."""
    return bind(
        "random_uniform",
        _raw_key(key),
        shape=_shape(shape),
        dtype=dtype,
        minval=float(minval),
        maxval=float(maxval),
    )


def bernoulli(key, p=0.5, shape=None):
    """True with probability ``p`` (``jax.random.bernoulli``).

    ``p`` is a Python number (an attribute of the op) or an array/tensor of
    probabilities; then, as in JAX, the draw is ``uniform(key, shape, p.dtype) < p``
    and ``shape`` defaults to ``p.shape``.
    """
    key = _raw_key(key)
    if isinstance(p, (int, float)) and not isinstance(p, (bool, np.generic)):
        return bind("random_bernoulli", key, p=float(p), shape=_shape(shape))
    if not isinstance(p, Tensor) and not hasattr(p, "dtype"):
        p = np.asarray(p, np.float32)
    p_shape = p.shape
    dtype = p.dtype
    u = bind(
        "random_uniform",
        key,
        shape=_shape(p_shape if shape is None else shape),
        dtype=dtype,
        minval=0.0,
        maxval=1.0,
    )
    return bind("lt", u, p)




# -- the global key stream (PyTorch's generator), for code that gives no key ----------------

_STREAM_LOCK = threading.Lock()
_STREAM: list = []  # [key] once seeded


def manual_seed(seed: int) -> None:
    """Seed the global key stream that layers built without ``key=`` and `tg.randn` /
    `tg.rand` draw from (``torch.manual_seed``). Explicit keys never touch it."""
    raw = np.asarray(jax.random.PRNGKey(int(seed)))
    with _STREAM_LOCK:
        _STREAM[:] = [raw]


def next_key():
    """A fresh key from the global stream (seeded from the OS, as PyTorch's default
    generator, until `manual_seed` is called)."""
    with _STREAM_LOCK:
        if not _STREAM:
            _STREAM.append(np.asarray(jax.random.PRNGKey(int.from_bytes(os.urandom(4), "little"))))
        with jax.ensure_compile_time_eval():
            nxt, out = np.asarray(jax.random.split(_STREAM[0]))
        _STREAM[0] = nxt
    return out


from ..errors import public_functions as _public_functions

_public_functions(globals())
