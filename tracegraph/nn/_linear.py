"""Dense layers: `Linear`, `Embedding`, and the shape helpers `Flatten` and `Identity`."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..errors import ShapeError
from ..frontend.fn_linalg import matmul
from ..frontend.fn_math import add
from ..frontend.fn_shape import reshape, shape_of, transpose
from . import functional as F
from . import init
from ._activation_sharding import linear_output
from ._module import Module


class Linear(Module):
    """``y = x @ weight.T + bias`` on the last axis of ``x`` (PyTorch's ``nn.Linear``).

    Arguments:
        in_features, out_features: sizes of the last axis of input and output.
        bias: whether to add a bias (``self.bias`` is None without one).
        key: PRNG key for the initialization (keyword-only, required).
        dtype: parameter dtype (default float32).
        weight_init, bias_init: initializers ``(key, shape, dtype) -> array`` (see
            `tg.nn.init`); defaults: PyTorch's, ``kaiming_uniform(a=sqrt(5))`` for the
            weight and U(±1/sqrt(in_features)) for the bias.

    Parameters: ``weight`` of shape ``(out_features, in_features)`` (PyTorch layout; the
    transpose of a Flax ``Dense`` kernel) and ``bias`` of shape ``(out_features,)``.

    Example::

        fc = tg.nn.Linear(784, 128, key=tg.random.key(0))
        y = fc(x)                           # x: f32[batch, 784] -> f32[batch, 128]
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, key=None,
                 dtype=jnp.float32, weight_init=None, bias_init=None):
        wkey, bkey = init.split(key, 2, "Linear")
        dtype = init.param_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        shape = (self.out_features, self.in_features)
        self.weight = (weight_init or init.torch_default())(wkey, shape, dtype)
        self.bias = (
            (bias_init or init.bias_uniform(self.in_features))(bkey, (self.out_features,), dtype)
            if bias else None
        )

    def forward(self, x):
        shape = shape_of(x)
        if not shape or shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}) needs inputs of shape "
                f"(..., {self.in_features}), got {list(shape)}"
            )
        y = matmul(x, transpose(self.weight))
        y = y if self.bias is None else add(y, self.bias)
        return linear_output(y, self.weight)  # tensor parallelism: see _activation_sharding


class Embedding(Module):
    """A lookup table: integer ids of any shape -> ``ids.shape + (embedding_dim,)``
    (PyTorch's ``nn.Embedding``; initialized Normal(0, 1), as there).

    Example::

        emb = tg.nn.Embedding(vocab, 64, key=key)
        h = emb(tokens)                     # i32[batch, time] -> f32[batch, time, 64]
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, key=None, dtype=jnp.float32,
                 weight_init=None):
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.weight = (weight_init or init.normal(1.0))(
            init.as_key(key, "Embedding"), (self.num_embeddings, self.embedding_dim),
            init.param_dtype(dtype),
        )

    def forward(self, ids):
        return F.embedding(ids, self.weight)


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one (PyTorch's ``nn.Flatten``; by default
    everything but the batch axis): ``(N, C, H, W) -> (N, C*H*W)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x):
        shape = shape_of(x)
        n = len(shape)
        in_range = -n <= self.start_dim < n and -n <= self.end_dim < n
        lo, hi = (self.start_dim % n, self.end_dim % n) if in_range else (1, 0)
        if lo > hi:
            raise ShapeError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit "
                f"an input of shape {list(shape)}"
            )
        return reshape(x, shape[:lo] + (math.prod(shape[lo:hi + 1]),) + shape[hi + 1:])


class Identity(Module):
    """Returns its input."""

    def forward(self, x):
        return x
