"""Keras' normalization layers: `BatchNormalization` (moving statistics as state) and
`LayerNormalization`, with Keras 3's defaults (``epsilon=1e-3``, ``momentum=0.99``).
"""

from __future__ import annotations

from ...frontend import fn_math, fn_reduce
from ...frontend.fn_shape import reshape
from ...nn import functional as F
from ...nn._module._state import read_state, update_state
from .. import initializers
from .._layer import InputSpec, Layer


def _axes(axis, ndim: int) -> tuple:
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axis))


def _build_scale_and_shift(layer, input_shape) -> tuple:
    """A norm layer's ``gamma`` (when ``scale``) and ``beta`` (when ``center``), one per
    feature of ``layer.axis``; returns that per-feature shape."""
    axes = _axes(layer.axis, len(input_shape))
    shape = tuple(input_shape[a] for a in axes)
    layer.gamma = (layer.add_weight(shape=shape, initializer=layer.gamma_initializer,
                                    name="gamma") if layer.scale else None)
    layer.beta = (layer.add_weight(shape=shape, initializer=layer.beta_initializer,
                                   name="beta") if layer.center else None)
    return shape


class BatchNormalization(Layer):
    """Normalize each feature (``axis``, default the last: channels-last) by the batch's
    mean and variance in training, by the moving averages otherwise.

    In training the moving statistics move towards the batch's
    (``moving = momentum * moving + (1 - momentum) * batch``; the variance is the biased
    one, as Keras); they are non-trainable weights, updated as state (see
    ``tracegraph/nn/_module/_state.py``): in place when the layer runs eagerly, a state
    output in `tg.function`, carried by ``fit``'s compiled step. As in Keras, a frozen
    layer (``trainable = False``) always runs in inference mode.

    Example::

        layers.BatchNormalization()(x, training=True)
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if beta_regularizer or gamma_regularizer or beta_constraint or gamma_constraint:
            raise NotImplementedError("BatchNormalization: regularizers and constraints are "
                                      "not supported yet")
        self.axis = axis if isinstance(axis, int) else tuple(axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        shape = _build_scale_and_shift(self, input_shape)
        ndim = len(input_shape)
        self.input_spec = InputSpec(ndim=ndim, axes={a: input_shape[a] for a in _axes(self.axis, ndim)})
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(
            shape=shape, initializer=self.moving_variance_initializer, trainable=False,
            name="moving_variance")

    def call(self, inputs, training=None):
        ndim = len(inputs.shape)
        axes = _axes(self.axis, ndim)
        reduce_axes = tuple(i for i in range(ndim) if i not in axes)
        bshape = tuple(inputs.shape[i] if i in axes else 1 for i in range(ndim))

        def b(v):  # a per-feature vector, broadcast against the input
            return reshape(v, bshape)

        if training and self.trainable:
            mean = fn_reduce.mean(inputs, axis=reduce_axes)
            centered = inputs - b(mean)
            var = fn_reduce.mean(centered * centered, axis=reduce_axes)
            m = self.momentum
            update_state(self, "moving_mean", read_state(self, "moving_mean") * m + mean * (1.0 - m))
            update_state(self, "moving_variance",
                         read_state(self, "moving_variance") * m + var * (1.0 - m))
        else:
            mean, var = self.moving_mean, self.moving_variance
            centered = inputs - b(mean)
        y = centered * b(fn_math.rsqrt(var + self.epsilon))
        if self.gamma is not None:
            y = y * b(self.gamma)
        if self.beta is not None:
            y = y + b(self.beta)
        return y


class LayerNormalization(Layer):
    """Normalize each example over ``axis`` (default the last), then scale by ``gamma``
    and shift by ``beta`` (Keras' ``epsilon=1e-3``).

    Example::

        layers.LayerNormalization(epsilon=1e-6)
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 rms_scaling=False, **kwargs):
        super().__init__(**kwargs)
        if beta_regularizer or gamma_regularizer or beta_constraint or gamma_constraint:
            raise NotImplementedError("LayerNormalization: regularizers and constraints are "
                                      "not supported yet")
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling is not supported yet")
        self.axis = axis if isinstance(axis, int) else tuple(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def build(self, input_shape):
        _build_scale_and_shift(self, input_shape)

    def call(self, inputs):
        ndim = len(inputs.shape)
        axes = _axes(self.axis, ndim)
        bshape = tuple(inputs.shape[i] if i in axes else 1 for i in range(ndim))
        gamma = None if self.gamma is None else reshape(self.gamma, bshape)
        beta = None if self.beta is None else reshape(self.beta, bshape)
        return F.layer_norm(inputs, gamma, beta, eps=self.epsilon, axis=axes)
