"""``keras.activations``: Keras 3's activation functions by name, over tracegraph's ops
(so they work in every mode and print as ordinary IR nodes).

``get`` resolves what a layer's ``activation=`` takes: a name (``"relu"``), a function,
or None (linear).

Example::

    layers.Dense(64, activation="relu")
    tg.keras.activations.get("gelu")(x)
"""

from __future__ import annotations

from ..errors import Error
from ..frontend import fn_math
from ..frontend.fn_creation import zeros_like
from ..nn import functional as F


def linear(x):
    """The identity."""
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """``max(x, 0)``, with Keras' options (a leaky slope, a ceiling, a threshold)."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return fn_math.relu(x)
    y = fn_math.where(x >= threshold, x, negative_slope * (x - threshold) if negative_slope
                      else zeros_like(x))
    return y if max_value is None else fn_math.minimum(y, max_value)


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return fn_math.minimum(fn_math.relu(x), 6.0)


def leaky_relu(x, negative_slope=0.2):
    """``x`` where positive, ``negative_slope * x`` elsewhere (Keras' default 0.2)."""
    return fn_math.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    return fn_math.where(x > 0, x, alpha * (fn_math.exp(fn_math.minimum(x, 0.0)) - 1.0))


def selu(x):
    """Scaled ELU (Klambauer et al.)."""
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return scale * elu(x, alpha)


def sigmoid(x):
    """``1 / (1 + exp(-x))``."""
    return fn_math.sigmoid(x)


def hard_sigmoid(x):
    """Keras 3's piecewise-linear sigmoid: ``relu6(x + 3) / 6``."""
    return relu6(x + 3.0) / 6.0


def tanh(x):
    """Hyperbolic tangent."""
    return fn_math.tanh(x)


def softmax(x, axis=-1):
    """Softmax along ``axis``."""
    return F.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """Log of the softmax along ``axis``."""
    return F.log_softmax(x, axis=axis)


def softplus(x):
    """``log(1 + exp(x))``."""
    return F.softplus(x)


def softsign(x):
    """``x / (1 + |x|)``."""
    return x / (fn_math.abs(x) + 1.0)


def silu(x):
    """``x * sigmoid(x)`` (also named swish)."""
    return F.silu(x)


swish = silu


def gelu(x, approximate=False):
    """Gaussian error linear unit (exact by default, as Keras)."""
    return fn_math.gelu(x, approximate=approximate)


def exponential(x):
    """``exp(x)``."""
    return fn_math.exp(x)


def mish(x):
    """``x * tanh(softplus(x))``."""
    return x * fn_math.tanh(F.softplus(x))


def log_sigmoid(x):
    """``log(sigmoid(x))``."""
    return F.log_sigmoid(x)


_BY_NAME = {f.__name__: f for f in (
    linear, relu, relu6, leaky_relu, elu, selu, sigmoid, hard_sigmoid, tanh, softmax,
    log_softmax, softplus, softsign, silu, gelu, exponential, mish, log_sigmoid)}
_BY_NAME["swish"] = silu


class UnknownActivationError(Error, ValueError):
    """An activation name Keras would not know either."""


def get(identifier):
    """The activation function for a layer's ``activation=``: None is linear; a string
    is looked up by Keras' name; a callable is used as it is."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier]
        except KeyError:
            raise UnknownActivationError(
                f"unknown activation {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            ) from None
    if callable(identifier):
        return identifier
    raise UnknownActivationError(f"activation must be a name or a function, got {identifier!r}")


def serialize(fn) -> str:
    """The Keras name of an activation function (its ``__name__``)."""
    return getattr(fn, "__name__", repr(fn))


__all__ = [  # noqa: RUF022 - Keras' names, then the helpers
    "elu", "exponential", "gelu", "hard_sigmoid", "leaky_relu", "linear", "log_sigmoid",
    "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus",
    "softsign", "swish", "tanh", "get", "serialize",
]
