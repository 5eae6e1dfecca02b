"""Layer 7: the model library. ``tg.nn.functional`` holds the stateless functions
(activations, losses, convolution, pooling, dropout, normalization)."""

from . import functional

__all__ = ["functional"]
