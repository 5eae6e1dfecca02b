"""`MultiHeadAttention`: scaled dot-product attention over several heads."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError
from ..frontend.fn_creation import arange
from ..frontend.fn_linalg import matmul
from ..frontend.fn_math import add, greater_equal, logical_and, multiply, where
from ..frontend.fn_shape import reshape, shape_of, swapaxes
from . import functional as F
from . import init
from ._linear import Linear
from ._module import Module


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention (PyTorch's ``nn.MultiheadAttention``
    with ``batch_first=True``; Flax's ``MultiHeadDotProductAttention``)::

        q, k, v = q_proj(query), k_proj(key_), v_proj(value)      # split into heads
        weights = softmax(q k^T / sqrt(head_dim), masked)         # (..., H, T, S)
        out = out_proj(concat_heads(dropout(weights) v))

    Arguments:
        embed_dim: model width E (query, key and value all have E features).
        num_heads: H, dividing E; each head has ``E // H`` features.
        causal: position ``t`` attends only to positions ``<= t`` (the mask is
            ``tril``, aligned at the first position, as PyTorch's ``is_causal``).
        dropout: dropout rate on the attention weights (training only).
        bias: whether the four projections have biases.
        key: PRNG key (keyword-only, required); dtype: parameter dtype. The projection
            weights are initialized Glorot/Xavier uniform and the biases zero (PyTorch's
            ``nn.MultiheadAttention`` convention).

    Parameters: the `Linear` children ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``.

    Call: ``mha(query, key_=None, value=None, *, mask=None, key=None, train=None)``.
    ``query`` is ``(..., T, E)``; ``key_`` and ``value`` are ``(..., S, E)`` (default:
    ``query``, i.e. self-attention; ``value`` defaults to ``key_``). ``mask``:
    broadcastable to ``(..., H, T, S)``; a boolean mask is True where attention is
    allowed, and masked scores are set to the dtype's most negative finite value (not
    -inf), so a fully masked row gives uniform weights instead of NaN, in the forward and
    the gradient; a float mask is added to the scores (PyTorch's float ``attn_mask``,
    whose -inf entries do give NaN for a fully masked row). ``key`` is the
    PRNG key for dropout; ``train`` overrides the ``training`` flag (see `Dropout`).

    Example::

        attn = tg.nn.MultiHeadAttention(128, 4, causal=True, key=key)
        y = attn(x)                         # x: f32[batch, time, 128]
    """

    def __init__(self, embed_dim: int, num_heads: int, *, causal: bool = False,
                 dropout: float = 0.0, bias: bool = True, key=None, dtype=jnp.float32,
                 training: bool = True):
        embed_dim, num_heads = int(embed_dim), int(num_heads)
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"MultiHeadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                f"({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.causal = bool(causal)
        self.dropout = float(dropout)
        self.training = bool(training)
        kq, kk, kv, ko = init.split(key, 4, "MultiHeadAttention")

        def proj(k):
            return Linear(embed_dim, embed_dim, bias=bias, key=k, dtype=dtype,
                          weight_init=init.xavier_uniform(), bias_init=init.zeros)

        self.q_proj, self.k_proj, self.v_proj = proj(kq), proj(kk), proj(kv)
        self.out_proj = proj(ko)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def _check(self, x, what):
        shape = shape_of(x)
        if len(shape) < 2 or shape[-1] != self.embed_dim:
            raise ShapeError(
                f"MultiHeadAttention({self.embed_dim}, {self.num_heads}): {what} must be "
                f"(..., length, {self.embed_dim}), got {list(shape)}"
            )

    def _heads(self, x):
        shape = shape_of(x)
        x = reshape(x, shape[:-1] + (self.num_heads, self.head_dim))
        return swapaxes(x, -2, -3)  # (..., H, length, head_dim)

    def forward(self, query, key_=None, value=None, *, mask=None, key=None, train=None):
        key_ = query if key_ is None else key_
        value = key_ if value is None else value
        for x, what in ((query, "query"), (key_, "key_"), (value, "value")):
            self._check(x, what)
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key_))
        v = self._heads(self.v_proj(value))
        t, s = shape_of(q)[-2], shape_of(k)[-2]
        scores = matmul(multiply(q, 1.0 / math.sqrt(self.head_dim)), swapaxes(k, -1, -2))
        allowed = None
        if self.causal:
            allowed = greater_equal(reshape(arange(t), (t, 1)), reshape(arange(s), (1, s)))
        if mask is not None and np.dtype(F._dtype(mask)) == np.bool_:
            allowed = mask if allowed is None else logical_and(mask, allowed)
        elif mask is not None:  # a float mask is added to the scores (PyTorch's attn_mask)
            scores = add(scores, mask)
        if allowed is not None:
            scores = where(allowed, scores, float(np.finfo(np.dtype(scores.dtype)).min))
        weights = F.softmax(scores, axis=-1)
        train = self.training if train is None else bool(train)
        if self.dropout and train:
            weights = F.dropout(weights, key, rate=self.dropout, train=True)
        out = swapaxes(matmul(weights, v), -2, -3)  # (..., T, H, head_dim)
        out = reshape(out, shape_of(out)[:-2] + (self.embed_dim,))
        return self.out_proj(out)
