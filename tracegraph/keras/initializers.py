"""``keras.initializers``: Keras 3's weight initializers, by name or as objects.

An initializer is called as Keras calls it, ``init(shape, dtype=None)``, and returns a
concrete array (weights are made outside traced code, when a layer builds). Fans follow
Keras' layout: a kernel is ``(..., in, out)`` (Dense ``(in, out)``, Conv2D
``(kh, kw, in, out)``), so fan_in is ``shape[-2] * receptive field`` and fan_out
``shape[-1] * receptive field``. With ``seed=None`` the random ones draw a fresh key from
the global key stream (`tg.manual_seed` / `tg.keras.utils.set_random_seed` make runs
repeat); with an int seed they give the same values every call, as Keras' do.

Example::

    layers.Dense(64, kernel_initializer="he_normal", bias_initializer="zeros")
    tg.keras.initializers.GlorotUniform(seed=0)((784, 64))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..errors import Error
from ..frontend.fn_random import next_key
from ..nn.init import param_dtype


class UnknownInitializerError(Error, ValueError):
    """An initializer name Keras would not know either."""


def _dtype(dtype):
    return param_dtype("float32" if dtype is None else dtype)


class Initializer:
    """Base class: ``__call__(shape, dtype=None)`` returns an array."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class _Random(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def _key(self):
        if self.seed is None:
            return next_key()
        with jax.ensure_compile_time_eval():
            return jax.random.PRNGKey(int(self.seed))

    def __call__(self, shape, dtype=None):
        with jax.ensure_compile_time_eval():  # concrete even when first called under jax
            return self._sample(self._key(), tuple(int(d) for d in shape), _dtype(dtype))

    def get_config(self) -> dict:
        return {"seed": self.seed}


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        return jnp.zeros(tuple(shape), _dtype(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return jnp.ones(tuple(shape), _dtype(dtype))


class Constant(Initializer):
    """Every element ``value``."""

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return jnp.full(tuple(shape), self.value, _dtype(dtype))


class RandomNormal(_Random):
    """Normal(mean, stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def _sample(self, key, shape, dtype):
        return self.mean + self.stddev * jax.random.normal(key, shape, dtype)


class RandomUniform(_Random):
    """Uniform(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def _sample(self, key, shape, dtype):
        return jax.random.uniform(key, shape, dtype, self.minval, self.maxval)


class TruncatedNormal(_Random):
    """Normal(mean, stddev) cut at two standard deviations."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def _sample(self, key, shape, dtype):
        return self.mean + self.stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


def compute_fans(shape) -> tuple[int, int]:
    """Keras' ``(fan_in, fan_out)`` of a weight shape."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(_Random):
    """Keras' variance scaling: ``scale / n`` variance, n the fan_in, fan_out or their
    mean; a truncated normal (corrected for the cut), an untruncated normal or a uniform."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise UnknownInitializerError(f"VarianceScaling mode {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise UnknownInitializerError(f"VarianceScaling distribution {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _sample(self, key, shape, dtype):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        if self.distribution in ("truncated_normal", "normal"):
            std = math.sqrt(var) / 0.87962566103423978  # the std of a normal cut at ±2
            return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
        if self.distribution == "untruncated_normal":
            return math.sqrt(var) * jax.random.normal(key, shape, dtype)
        limit = math.sqrt(3.0 * var)
        return jax.random.uniform(key, shape, dtype, -limit, limit)


class GlorotUniform(VarianceScaling):
    """U(±sqrt(6 / (fan_in + fan_out))): Keras' default kernel initializer."""

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed)


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "uniform", seed)


class Orthogonal(_Random):
    """A (semi-)orthogonal matrix times ``gain`` (recurrent kernels)."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def _sample(self, key, shape, dtype):
        return jax.nn.initializers.orthogonal(self.gain)(key, shape, dtype)


class Identity(Initializer):
    """``gain`` times the identity (2-D shapes)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise UnknownInitializerError(f"Identity needs a 2-D shape, got {tuple(shape)}")
        return self.gain * jnp.eye(*shape, dtype=_dtype(dtype))


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_normal": HeNormal, "he_uniform": HeUniform,
    "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform, "orthogonal": Orthogonal,
    "identity": Identity,
}
_BY_NAME.update({cls.__name__: cls for cls in list(_BY_NAME.values())})


def get(identifier):
    """An initializer from a name (``"glorot_uniform"``, ``"GlorotUniform"``), an
    `Initializer`, or a function ``(shape, dtype) -> array``."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier]()
        except KeyError:
            raise UnknownInitializerError(
                f"unknown initializer {identifier!r}; known: "
                f"{', '.join(sorted(k for k in _BY_NAME if k.islower()))}") from None
    if callable(identifier):
        return identifier
    raise UnknownInitializerError(f"an initializer is a name or a callable, got {identifier!r}")


def initial_value(init, shape, dtype) -> jax.Array:
    """``init(shape, dtype)`` as a concrete array of that shape and dtype."""
    with jax.ensure_compile_time_eval():
        value = jnp.asarray(init(tuple(shape), dtype), _dtype(dtype))
    if value.shape != tuple(shape):
        raise UnknownInitializerError(
            f"initializer {init!r} returned shape {value.shape}, expected {tuple(shape)}")
    return value


__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "Initializer", "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal",
    "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "compute_fans", "get",
]
