"""`TransformerEncoderLayer`: PyTorch's encoder block (self-attention and a feed-forward
network, each with dropout, a residual connection and layer norm), built from
`MultiHeadAttention`, `Linear`, `Dropout` and `LayerNorm`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError
from ..frontend import fn_math
from ..frontend.fn_creation import arange
from ..frontend.fn_random import split
from ..frontend.fn_shape import expand_dims, reshape, shape_of, squeeze, swapaxes
from . import functional as F
from . import init
from ._attention import MultiHeadAttention
from ._dropout import Dropout
from ._linear import Linear
from ._module import Module
from ._norm import LayerNorm

_ACTIVATIONS = {"relu": fn_math.relu, "gelu": lambda x: fn_math.gelu(x, approximate=False)}


def _mask_dtype(m) -> np.dtype:
    return np.dtype(F._dtype(m))


def _additive(mask, dtype):
    """A PyTorch mask as one to add to the scores: a bool mask (True: not allowed)
    becomes -inf there, as PyTorch converts it; a float mask is already additive."""
    if _mask_dtype(mask) == np.bool_:
        return fn_math.where(mask, -np.inf, np.zeros((), dtype))
    return mask


class TransformerEncoderLayer(Module):
    """PyTorch's ``nn.TransformerEncoderLayer``: self-attention then a feed-forward
    network ``linear2(dropout(activation(linear1(x))))``, each followed by dropout and
    added to its input, with layer norm after each sum (``norm_first=False``, the
    original Transformer) or on each block's input (``norm_first=True``)::

        x = norm1(x + dropout1(self_attn(x)));  x = norm2(x + dropout2(ff(x)))

    Arguments (PyTorch's order):
        d_model: the model width E; nhead: attention heads (dividing E).
        dim_feedforward: the feed-forward width (2048, as PyTorch).
        dropout: the rate of every dropout, attention weights included (0.1, as
            PyTorch; training needs a PRNG ``key=`` in the call when it is not 0).
        activation: ``"relu"`` (default), ``"gelu"`` (the exact, erf form, as PyTorch's)
            or a function.
        layer_norm_eps, batch_first, norm_first, bias: as PyTorch's; ``batch_first=False``
            (PyTorch's default) takes ``(S, N, E)``, True ``(N, S, E)``; ``(S, E)`` works
            unbatched.
        key: PRNG key (keyword-only; None draws from the global stream); dtype.

    Parameters: ``self_attn`` (`MultiHeadAttention`: PyTorch's ``in_proj_weight`` is
    ``q_proj``, ``k_proj``, ``v_proj`` stacked), ``linear1`` ``(dim_feedforward, E)``,
    ``linear2`` ``(E, dim_feedforward)``, ``norm1``, ``norm2``.

    Call: ``layer(src, src_mask=None, src_key_padding_mask=None, is_causal=False, *,
    key=None, train=None)``. The masks follow PyTorch: ``src_mask`` ``(S, S)`` (or
    ``(N * nhead, S, S)``) and ``src_key_padding_mask`` ``(N, S)`` are boolean, True where
    attention is NOT allowed (padding), or float, added to the attention scores.
    ``is_causal=True`` without ``src_mask`` applies the causal mask.

    Example::

        layer = tg.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.1, batch_first=True)
        y = layer(x, key=k)                 # x: f32[N, S, 64]; layer.eval()(x) for inference
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, *,
                 key=None, dtype=jnp.float32, training: bool = True):
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' "
                                 f"or a function, got {activation!r}")
            activation = _ACTIVATIONS[activation]
        self.d_model, self.nhead = int(d_model), int(nhead)
        self.batch_first, self.norm_first = bool(batch_first), bool(norm_first)
        self.activation = activation
        self.training = bool(training)
        ka, k1, k2 = init.split(key, 3, "TransformerEncoderLayer")
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias, key=ka,
                                            dtype=dtype, training=training)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, key=k1, dtype=dtype)
        self.dropout = Dropout(dropout, training=training)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, key=k2, dtype=dtype)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, training=training)
        self.dropout2 = Dropout(dropout, training=training)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False,
                *, key=None, train=None):
        shape = shape_of(src)
        if len(shape) not in (2, 3) or shape[-1] != self.d_model:
            raise ShapeError(
                f"TransformerEncoderLayer({self.d_model}, {self.nhead}) needs src of shape "
                f"{'(N, S, E)' if self.batch_first else '(S, N, E)'} or (S, E) with E = "
                f"{self.d_model}, got {list(shape)}"
            )
        unbatched = len(shape) == 2
        x = expand_dims(src, 0) if unbatched else src if self.batch_first else swapaxes(src, 0, 1)
        mask = self._mask(x, src_mask, src_key_padding_mask, is_causal)
        train = self.training if train is None else bool(train)
        keys = split(key, 4) if key is not None and train else [None] * 4

        def attend(h):
            h = self.self_attn(h, mask=mask, key=keys[0], train=train)
            return self.dropout1(h, key=keys[1], train=train)

        def feed_forward(h):
            h = self.dropout(self.activation(self.linear1(h)), key=keys[2], train=train)
            return self.dropout2(self.linear2(h), key=keys[3], train=train)

        if self.norm_first:
            x = fn_math.add(x, attend(self.norm1(x)))
            x = fn_math.add(x, feed_forward(self.norm2(x)))
        else:
            x = self.norm1(fn_math.add(x, attend(x)))
            x = self.norm2(fn_math.add(x, feed_forward(x)))
        return squeeze(x, 0) if unbatched else x if self.batch_first else swapaxes(x, 0, 1)

    def _mask(self, x, src_mask, padding, is_causal):
        """PyTorch's masks as one `MultiHeadAttention` mask over ``(N, H, S, S)``: boolean
        (True: allowed) when every given mask is boolean, else additive."""
        n, s, _ = shape_of(x)
        who = f"TransformerEncoderLayer({self.d_model}, {self.nhead})"
        if src_mask is None and is_causal:
            src_mask = fn_math.greater(reshape(arange(s), (1, s)), reshape(arange(s), (s, 1)))
        masks = []
        if src_mask is not None:
            ms = tuple(shape_of(src_mask))
            if ms == (n * self.nhead, s, s):
                src_mask = reshape(src_mask, (n, self.nhead, s, s))
            elif ms != (s, s):
                raise ShapeError(f"{who}: src_mask must be ({s}, {s}) or ({n * self.nhead}, {s}, "
                                 f"{s}) for this input, got {list(ms)}")
            masks.append(src_mask)
        if padding is not None:
            if tuple(shape_of(padding)) != (n, s):
                raise ShapeError(f"{who}: src_key_padding_mask must be ({n}, {s}) for this "
                                 f"input, got {list(shape_of(padding))}")
            masks.append(reshape(padding, (n, 1, 1, s)))
        if not masks:
            return None
        if all(_mask_dtype(m) == np.bool_ for m in masks):
            out = fn_math.logical_not(masks[0])
            for m in masks[1:]:
                out = fn_math.logical_and(out, fn_math.logical_not(m))
            return out
        dtype = np.dtype(self.linear1.weight.dtype)
        out = _additive(masks[0], dtype)
        for m in masks[1:]:
            out = fn_math.add(out, _additive(m, dtype))
        return out
