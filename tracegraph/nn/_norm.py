"""Normalization layers."""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from ..errors import ShapeError
from ..frontend.fn_shape import shape_of
from . import functional as F
from . import init
from ._module import Module


class LayerNorm(Module):
    """Normalize the last ``len(normalized_shape)`` axes to zero mean and unit variance,
    then scale by ``weight`` and shift by ``bias`` (PyTorch's ``nn.LayerNorm``)::

        (x - mean) / sqrt(var + eps) * weight + bias

    Arguments:
        normalized_shape: an int or the trailing shape to normalize over.
        eps: added to the variance.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros); without it
            both are None.
        bias: with ``elementwise_affine``, whether to learn the bias.
        dtype: parameter dtype. No key: the initialization is deterministic.

    Example::

        ln = tg.nn.LayerNorm(512)
        y = ln(x)                           # x: f32[..., 512]
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, *,
                 bias: bool = True, dtype=jnp.float32):
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.eps = float(eps)
        dtype = init.param_dtype(dtype)
        self.weight = jnp.ones(self.normalized_shape, dtype) if elementwise_affine else None
        self.bias = jnp.zeros(self.normalized_shape, dtype) if elementwise_affine and bias else None

    def forward(self, x):
        n = len(self.normalized_shape)
        shape = shape_of(x)
        if len(shape) < n or tuple(shape[len(shape) - n:]) != self.normalized_shape:
            raise ShapeError(
                f"LayerNorm({list(self.normalized_shape)}) needs an input whose trailing "
                f"axes are {list(self.normalized_shape)}, got {list(shape)}"
            )
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps, axis=tuple(range(-n, 0)))
