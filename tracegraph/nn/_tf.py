"""``tg.nn.relu``, ``tg.nn.softmax``, ``tg.nn.sparse_softmax_cross_entropy_with_logits``
...: the ``tf.nn`` functions, with TensorFlow's argument names, defaults and semantics,
over the same ops as ``tg.nn.functional`` (so they work in every mode).

The losses give one loss per example, as TF's do (reduce them with ``tg.reduce_mean``).
TF's ``name=`` argument is accepted and ignored.

Example::

    import tracegraph as tf
    logits = x @ w + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    h = tf.nn.leaky_relu(x, alpha=0.1)
"""

from __future__ import annotations

from ..core import bind
from ..frontend import fn_math, fn_reduce
from . import functional as F


def relu(features, name=None):
    """``max(features, 0)``."""
    return fn_math.relu(features)


def sigmoid(x, name=None):
    """``1 / (1 + exp(-x))``."""
    return fn_math.sigmoid(x)


def tanh(x, name=None):
    """Hyperbolic tangent."""
    return fn_math.tanh(x)


def softmax(logits, axis=None, name=None):
    """Softmax along ``axis`` (None: the last)."""
    return F.softmax(logits, axis=-1 if axis is None else axis)


def log_softmax(logits, axis=None, name=None):
    """Log-softmax along ``axis`` (None: the last)."""
    return F.log_softmax(logits, axis=-1 if axis is None else axis)


def gelu(features, approximate=False, name=None):
    """GELU; TF's default is the exact (erf) form, ``approximate=True`` the tanh form."""
    return fn_math.gelu(features, approximate=bool(approximate))


def leaky_relu(features, alpha=0.2, name=None):
    """``features`` where positive, else ``alpha * features`` (TF's default alpha 0.2)."""
    return fn_math.where(fn_math.greater(features, 0), features, fn_math.multiply(features, alpha))


def softplus(features, name=None):
    """``log(exp(features) + 1)``, computed stably."""
    return F.softplus(features)


def silu(features, beta=1.0, name=None):
    """``features * sigmoid(beta * features)`` (also ``swish``)."""
    if beta == 1.0:
        return F.silu(features)
    return fn_math.multiply(features, fn_math.sigmoid(fn_math.multiply(features, beta)))


swish = silu


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """Per-example softmax cross-entropy; expects **logits** (unnormalized scores, as the
    name says; there is no ``from_logits``): ``labels`` are integer class ids of shape
    ``logits.shape[:-1]`` (ids outside the class range give 0, where TF raises on CPU);
    the result has ``labels``' shape."""
    if labels is None or logits is None:
        raise TypeError("sparse_softmax_cross_entropy_with_logits needs labels= and logits=")
    return F.cross_entropy(logits, labels, reduction="none")


def softmax_cross_entropy_with_logits(labels=None, logits=None, axis=-1, name=None):
    """Per-example cross-entropy between the distributions ``labels`` and
    ``softmax(logits)`` along ``axis``; expects **logits**:
    ``-sum(labels * log_softmax(logits), axis)``."""
    if labels is None or logits is None:
        raise TypeError("softmax_cross_entropy_with_logits needs labels= and logits=")
    logp = F.log_softmax(logits, axis=axis)
    return fn_math.negative(fn_reduce.sum(fn_math.multiply(labels, logp), axis=axis))


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """Elementwise logistic loss ``max(x, 0) - x * z + log(1 + exp(-|x|))``; expects
    **logits** ``x``, against targets ``z`` (same shape)."""
    if labels is None or logits is None:
        raise TypeError("sigmoid_cross_entropy_with_logits needs labels= and logits=")
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none")


def l2_loss(t, name=None):
    """``sum(t ** 2) / 2`` of any tensor (a weight penalty: neither logits nor
    probabilities)."""
    return fn_math.multiply(bind("sum", fn_math.square(t), axes=None, keepdims=False), 0.5)


from ..errors import public_functions as _public_functions

_public_functions(globals())

__all__ = [
    "gelu", "l2_loss", "leaky_relu", "log_softmax", "relu", "sigmoid",
    "sigmoid_cross_entropy_with_logits", "silu", "softmax", "softmax_cross_entropy_with_logits",
    "softplus", "sparse_softmax_cross_entropy_with_logits", "swish", "tanh",
]
