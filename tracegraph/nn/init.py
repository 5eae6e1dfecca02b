"""``tg.nn.init``: parameter initializers, built on ``jax.nn.initializers``.

Every initializer is a function ``init(key, shape, dtype=float32) -> jax.Array`` (the
``jax.nn.initializers`` protocol, so theirs can be passed to tracegraph layers too).
They are deterministic: the same key gives the same array, equal to what
``jax.nn.initializers`` gives for that key.

NOTE (layout): tracegraph layers store weights in PyTorch's layout: ``Linear`` weights
are ``(out, in)`` and ``Conv2d`` weights ``(out, in, kh, kw)``. The fan-based
initializers here therefore read the input fan on axis 1 and the output fan on axis 0
(``jax.nn.initializers`` defaults to Flax's ``(in, out)`` kernels: axes -2 and -1); the
receptive field is the product of the other axes. Pass ``in_axis``/``out_axis`` for
other layouts.

Example::

    w = tg.nn.init.glorot_uniform()(tg.random.key(0), (128, 784))   # Linear(784, 128)
    lin = tg.nn.Linear(784, 128, key=key, weight_init=tg.nn.init.he_normal())
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import TracingError
from ..core import Tensor
from ..ir.types import DTYPE_NAMES
from ..frontend.fn_random import next_key
from ._module._module import mark_pytorch_style

__all__ = [
    "as_key",
    "bias_uniform",
    "constant",
    "fan_in_out",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "param_dtype",
    "split",
    "torch_default",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

IN_AXIS, OUT_AXIS = 1, 0  # PyTorch layout: (out, in, *receptive field)

zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones


def constant(value):
    """Every element ``value``."""
    return jax.nn.initializers.constant(value)


def normal(stddev: float = 1.0, mean: float = 0.0):
    """Normal(mean, stddev**2) (PyTorch's ``nn.init.normal_``; Embedding's default)."""
    base = jax.nn.initializers.normal(stddev)

    def init(key, shape, dtype=jnp.float32):
        x = base(key, shape, dtype)
        return x + jnp.asarray(mean, dtype) if mean else x

    return init


def uniform(low: float = 0.0, high: float = 1.0):
    """Uniform on ``[low, high)`` (PyTorch's ``nn.init.uniform_(a, b)``; note that
    ``jax.nn.initializers.uniform(scale)`` is ``[0, scale)``)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, minval=low, maxval=high)

    return init


def fan_in_out(shape, in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape in PyTorch layout: ``(784*1, 128*1)`` for a
    ``(128, 784)`` Linear weight, ``(C*kh*kw, O*kh*kw)`` for an OIHW kernel."""
    shape = tuple(shape)
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    fan_axes = (in_axis % len(shape), out_axis % len(shape))
    receptive = math.prod(d for i, d in enumerate(shape) if i not in fan_axes)
    return shape[in_axis] * receptive, shape[out_axis] * receptive


def variance_scaling(scale, mode, distribution, in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """``jax.nn.initializers.variance_scaling`` with PyTorch-layout fan axes.

    ``mode``: "fan_in", "fan_out" or "fan_avg"; ``distribution``: "truncated_normal",
    "normal" or "uniform"."""
    return jax.nn.initializers.variance_scaling(
        scale, mode, distribution, in_axis=in_axis, out_axis=out_axis
    )


def glorot_uniform(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """Glorot/Xavier uniform: U(±sqrt(6 / (fan_in + fan_out)))."""
    return jax.nn.initializers.glorot_uniform(in_axis=in_axis, out_axis=out_axis)


def glorot_normal(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """Glorot/Xavier normal (truncated, as ``jax.nn.initializers.glorot_normal``)."""
    return jax.nn.initializers.glorot_normal(in_axis=in_axis, out_axis=out_axis)


def he_uniform(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """He/Kaiming uniform for ReLU: U(±sqrt(6 / fan_in))."""
    return jax.nn.initializers.he_uniform(in_axis=in_axis, out_axis=out_axis)


def he_normal(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """He/Kaiming normal for ReLU (truncated, variance 2 / fan_in)."""
    return jax.nn.initializers.he_normal(in_axis=in_axis, out_axis=out_axis)


def lecun_uniform(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """LeCun uniform: U(±sqrt(3 / fan_in))."""
    return jax.nn.initializers.lecun_uniform(in_axis=in_axis, out_axis=out_axis)


def lecun_normal(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """LeCun normal (truncated, variance 1 / fan_in); Flax's default kernel init."""
    return jax.nn.initializers.lecun_normal(in_axis=in_axis, out_axis=out_axis)


def kaiming_uniform(a: float = 0.0, mode: str = "fan_in", in_axis: int = IN_AXIS,
                    out_axis: int = OUT_AXIS):
    """PyTorch's ``kaiming_uniform_(a=a)`` for leaky-ReLU slope ``a``:
    U(±gain * sqrt(3 / fan)) with ``gain = sqrt(2 / (1 + a**2))``."""
    return variance_scaling(2.0 / (1.0 + a * a), mode, "uniform", in_axis, out_axis)


def kaiming_normal(a: float = 0.0, mode: str = "fan_in", in_axis: int = IN_AXIS,
                   out_axis: int = OUT_AXIS):
    """PyTorch's ``kaiming_normal_(a=a)``: Normal(0, gain**2 / fan), not truncated."""
    return variance_scaling(2.0 / (1.0 + a * a), mode, "normal", in_axis, out_axis)


def torch_default(in_axis: int = IN_AXIS, out_axis: int = OUT_AXIS):
    """The default weight init of PyTorch's Linear and Conv2d,
    ``kaiming_uniform_(a=sqrt(5))``, which is U(±1/sqrt(fan_in))."""
    return kaiming_uniform(math.sqrt(5.0), "fan_in", in_axis, out_axis)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal


def orthogonal(scale: float = 1.0):
    """A (semi-)orthogonal matrix times ``scale`` (``jax.nn.initializers.orthogonal``)."""
    return jax.nn.initializers.orthogonal(scale)


def bias_uniform(fan_in: int):
    """PyTorch's bias init for Linear/Conv2d: U(±1/sqrt(fan_in)) (zeros if fan_in is 0)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform(-bound, bound)


# -- keys -----------------------------------------------------------------------------------


def as_key(key, who: str):
    """A concrete PRNG key for initializing ``who``: a ``tg.random.key`` /
    ``jax.random.PRNGKey`` (raw ``u32[2]``), a typed ``jax.random.key``, or a concrete
    define-by-run Tensor; None draws from the global key stream (`tg.manual_seed`).
    Parameters are made outside traced code: a traced key is an error."""
    if key is None:
        # PyTorch style: the global key stream (tg.manual_seed), and the model being
        # built holds parameter tensors when done (see nn/_module)
        mark_pytorch_style()
        return next_key()
    if isinstance(key, Tensor):
        value = key._trace.known_value(key)
        if value is None:
            raise TracingError(
                f"{who}: build modules outside tg.jit/tg.trace (their parameters are made "
                "from a concrete key) and pass the module into the traced function"
            )
        key = value
    dt = getattr(key, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        return key
    key = jnp.asarray(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise TypeError(
            f"{who}: a key is a uint32[2] array (tg.random.key(seed)), "
            f"got {key.dtype}{list(key.shape)}"
        )
    return key


def param_dtype(dtype):
    """A parameter dtype: numpy/jax dtypes and tracegraph's short names (``"bf16"``)."""
    return np.dtype(DTYPE_NAMES.get(dtype, dtype) if isinstance(dtype, str) else dtype)


def split(key, num: int, who: str):
    """``num`` keys from ``key`` (checked as in `as_key`), as a list."""
    return list(jax.random.split(as_key(key, who), num))
