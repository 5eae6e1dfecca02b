"""Keras' `MultiHeadAttention` (Vaswani et al. 2017), with Keras 3's signature, weight
shapes and einsum equations, so Keras' weights load with ``set_weights``:

- ``query_dense`` / ``key_dense`` / ``value_dense``: kernel ``(dim, num_heads, key_dim)``
  (``value_dim`` for the value), bias ``(num_heads, key_dim)``;
- ``output_dense``: kernel ``(num_heads, value_dim, dim)`` (or ``output_shape``), bias
  ``(dim,)``;

in that order in ``get_weights()`` (with ``use_gate``, ``gate_dense`` sits after
``key_dense``, as in Keras). Each projection and both attention products are one
``einsum`` node with Keras' own equation, so ``attention_axes`` (attention over several
axes, e.g. the height and width of an image) works as in Keras.

Example::

    mha = layers.MultiHeadAttention(num_heads=2, key_dim=16)
    out, scores = mha(query, value, return_attention_scores=True)   # scores (B, 2, T, S)
"""

from __future__ import annotations

import math
import string

import numpy as np

from ...frontend import fn_math, fn_reduce
from ...frontend.fn_linalg import einsum
from ...frontend.fn_shape import expand_dims
from ...nn import functional as F
from .. import activations, initializers
from .._layer import Layer
from ._core import Dropout
from ._recurrent import build_child

_NEG = -1e9  # Keras' softmax fills masked scores with this (float32)


def _letters(i: int) -> str:
    return string.ascii_lowercase[i]


def proj_equation(free_dims: int, bound_dims: int, output_dims: int) -> tuple[str, str]:
    """Keras' projection einsum: ``(equation, bias axes)``; e.g. ``(2, 1, 2)`` gives
    ``"abc,cde->abde"`` and ``"de"``."""
    inp = out = kernel = ""
    for i in range(free_dims):
        inp += _letters(i)
        out += _letters(i)
    for i in range(free_dims, free_dims + bound_dims):
        inp += _letters(i)
        kernel += _letters(i)
    bias = ""
    for i in range(free_dims + bound_dims, free_dims + bound_dims + output_dims):
        kernel += _letters(i)
        out += _letters(i)
        bias += _letters(i)
    return f"{inp},{kernel}->{out}", bias


def attention_equations(rank: int, attn_axes: tuple) -> tuple[str, str, int]:
    """Keras' two attention einsums for projected tensors of ``rank`` (``(batch, ...,
    heads, channels)``): ``(scores equation, combine equation, scores rank)``."""
    target = "".join(_letters(i) for i in range(rank))
    batch_dims = tuple(i for i in range(rank) if i not in (*attn_axes, rank - 1))
    offset, source = rank, ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _letters(offset)
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class _Projection(Layer):
    """Keras' ``EinsumDense`` as MultiHeadAttention uses it: ``einsum(equation, x,
    kernel) + bias`` with the shapes given (not inferred from the equation)."""

    def __init__(self, equation, kernel_shape, bias_shape, kernel_initializer,
                 bias_initializer, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.equation = equation
        self.kernel_shape = tuple(kernel_shape)
        self.bias_shape = None if bias_shape is None else tuple(bias_shape)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.activation = activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=self.kernel_shape,
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = (None if self.bias_shape is None else
                     self.add_weight(shape=self.bias_shape, initializer=self.bias_initializer,
                                     name="bias"))

    def call(self, inputs):
        y = einsum(self.equation, inputs, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)


class MultiHeadAttention(Layer):
    """Multi-head attention: project query, key and value to ``num_heads`` heads, attend
    (softmax of scaled dot products over ``attention_axes``), combine the heads with an
    output projection back to the query's last size (or ``output_shape``).

    Arguments (Keras 3's): ``num_heads``, ``key_dim`` (query and key size per head),
    ``value_dim`` (default ``key_dim``), ``dropout`` (on the attention probabilities, in
    training), ``use_bias``, ``output_shape``, ``attention_axes`` (default: every axis
    between the batch and the features), ``kernel_initializer`` (glorot_uniform),
    ``bias_initializer`` (zeros), ``use_gate`` (a sigmoid gate from the query on each
    head's output), ``sliding_window``, ``seed``. ``flash_attention`` is accepted: the
    result is the same computation.

    Call: ``mha(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None,
    use_causal_mask=False)``; ``key`` defaults to ``value``; ``attention_mask`` ``(B, T,
    S)`` is True (nonzero) where a query may attend; the masks combine with ``and``.
    Returns the output ``(B, T, dim)``, and with ``return_attention_scores`` the
    probabilities ``(B, num_heads, T, S)`` (before dropout) too.

    Example::

        mha = layers.MultiHeadAttention(num_heads=4, key_dim=8)
        y = mha(x, x, use_causal_mask=True)               # causal self-attention
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None,
                 flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(f"MultiHeadAttention: num_heads must be a positive integer, "
                             f"got {num_heads!r}")
        if not isinstance(key_dim, int) or key_dim <= 0:
            raise ValueError(f"MultiHeadAttention: key_dim must be a positive integer, got "
                             f"{key_dim!r}")
        if value_dim is not None and (not isinstance(value_dim, int) or value_dim <= 0):
            raise ValueError(f"MultiHeadAttention: value_dim must be a positive integer or "
                             f"None, got {value_dim!r}")
        if kernel_regularizer or bias_regularizer or activity_regularizer or kernel_constraint \
                or bias_constraint:
            raise NotImplementedError("MultiHeadAttention: regularizers and constraints are "
                                      "not supported yet")
        if sliding_window is not None and (not isinstance(sliding_window, int)
                                           or sliding_window <= 0):
            raise ValueError(f"MultiHeadAttention: sliding_window must be None or a positive "
                             f"integer, got {sliding_window!r}")
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if output_shape:
            output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self._output_shape = output_shape or None  # `output_shape` is the Layer's property
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(f"MultiHeadAttention: attention_axes must be an int, a list or "
                             f"a tuple, got {attention_axes!r}")
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)
        self.sliding_window = sliding_window
        self.flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.seed = seed

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"MultiHeadAttention: value and key must agree on every axis but "
                             f"the last, got {tuple(value_shape)} and {tuple(key_shape)}")
        n, kd, vd = self.num_heads, self.key_dim, self.value_dim

        def projection(shape, size, name, activation=None):
            equation, _ = proj_equation(len(shape) - 1, 1, 2)
            layer = _Projection(equation, (shape[-1], n, size),
                                (n, size) if self.use_bias else None, self.kernel_initializer,
                                self.bias_initializer, activation, name=name, dtype=self.dtype)
            build_child(layer, shape)
            return layer

        # Keras' order (and so get_weights'): query, key, [gate], value, output
        self.query_dense = projection(query_shape, kd, "query")
        self.key_dense = projection(key_shape, kd, "key")
        if self.use_gate:
            self.gate_dense = projection(query_shape, vd, "gate", "sigmoid")
        self.value_dense = projection(value_shape, vd, "value")
        rank = len(query_shape) + 1  # of the projected tensors: (B, ..., heads, channels)
        axes = (tuple(range(1, rank - 2)) if self.attention_axes is None else
                tuple(a if a >= 0 else (rank - 1) + a for a in self.attention_axes))
        self.attention_axes = axes
        self.dot_product_equation, self.combine_equation, scores_rank = \
            attention_equations(rank, axes)
        self.softmax_axes = tuple(range(scores_rank - len(axes), scores_rank))
        out = self._output_shape or (query_shape[-1],)
        equation, _ = proj_equation(len(query_shape) - 1, 2, len(out))
        self.output_dense = _Projection(equation, (n, vd, *out), out if self.use_bias else None,
                                        self.kernel_initializer, self.bias_initializer,
                                        name="attention_output", dtype=self.dtype)
        build_child(self.output_dense, None)
        if self.dropout > 0.0:  # after the weights: get_weights() starts with Keras' list
            self.dropout_layer = Dropout(self.dropout, seed=self.seed, dtype=self.dtype)

    # -- masks ------------------------------------------------------------------------------
    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        """The ``(B or 1, T, S)`` boolean mask of where each query may attend, or None:
        Keras' ``_compute_attention_mask``."""
        def as_bool(m):
            return fn_math.astype(m, np.bool_)

        masks = []
        if query_mask is not None:
            masks.append(expand_dims(as_bool(query_mask), -1))  # (B, T, 1)
        if value_mask is not None:
            masks.append(expand_dims(as_bool(value_mask), -2))  # (B, 1, S)
        if key_mask is not None:
            masks.append(expand_dims(as_bool(key_mask), -2))
        t, s = query.shape[1], value.shape[1]
        rows, cols = np.arange(t)[:, None], np.arange(s)[None, :]
        if use_causal_mask:
            masks.append((rows >= cols)[None])  # constants of the graph: shapes are static
        if self.sliding_window is not None:
            masks.append((np.abs(rows - cols) < self.sliding_window)[None])
        if attention_mask is not None:
            masks.insert(0, as_bool(attention_mask))
        if not masks:
            return None
        mask = masks[0]
        for m in masks[1:]:
            mask = fn_math.logical_and(mask, m)
        return mask

    def _masked_softmax(self, scores, mask):
        if mask is not None:
            for _ in range(len(scores.shape) - len(mask.shape)):
                mask = expand_dims(mask, -len(self.attention_axes) * 2 - 1)
            scores = fn_math.where(mask, scores, _NEG)
        if len(self.softmax_axes) == 1:
            return F.softmax(scores, axis=self.softmax_axes[0])
        return fn_math.exp(scores - fn_reduce.logsumexp(scores, axis=self.softmax_axes,
                                                         keepdims=True))

    # -- the call ---------------------------------------------------------------------------
    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        if key is None:
            key = value
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask,
                                    attention_mask, use_causal_mask)
        gate = self.gate_dense(query) if self.use_gate else None
        q = self.query_dense(query) * (1.0 / math.sqrt(float(self.key_dim)))
        k = self.key_dense(key)
        v = self.value_dense(value)
        scores = self._masked_softmax(einsum(self.dot_product_equation, k, q), mask)
        probs = (self.dropout_layer(scores, training=training) if self.dropout > 0.0
                 else scores)
        out = einsum(self.combine_equation, probs, v)
        if gate is not None:
            out = out * gate
        out = self.output_dense(out)
        return (out, scores) if return_attention_scores else out
