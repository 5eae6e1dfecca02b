"""Keras' core layers: `Dense`, `Activation`, `Flatten`, `Reshape`, `Permute`,
`Dropout`, `Embedding`, `Lambda`, `Identity`, and the merging layers (`Add`,
`Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`, `Concatenate`), with Keras 3's
signatures and defaults (weights glorot_uniform and zeros), channels-last.
"""

from __future__ import annotations

import math

import numpy as np

from ...core import bind
from ...frontend import fn_math, fn_reduce
from ...frontend.fn_linalg import matmul
from ...frontend.fn_shape import concatenate, reshape, transpose
from ...nn import functional as F
from .. import activations, initializers
from .._layer import InputSpec, Layer, SeedGenerator


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` over the last axis; kernel ``(in, units)``.

    Example::

        layers.Dense(128, activation="relu")
    """

    def __init__(self, units, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        if kernel_regularizer or bias_regularizer or activity_regularizer or kernel_constraint \
                or bias_constraint or lora_rank:
            raise NotImplementedError("Dense: regularizers, constraints and LoRA are not "
                                      "supported yet")
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"Dense: units must be positive, got {units}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_shape[-1]})
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = (self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                     name="bias") if self.use_bias else None)

    def call(self, inputs):
        y = matmul(inputs, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)


class Activation(Layer):
    """An activation as a layer: ``Activation("relu")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)


class Flatten(Layer):
    """Every axis but the batch into one (channels-last order)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"

    def call(self, inputs):
        shape = tuple(inputs.shape)
        if self.data_format == "channels_first" and len(shape) > 2:
            inputs = transpose(inputs, (0, *range(2, len(shape)), 1))
        return reshape(inputs, (shape[0], math.prod(shape[1:])))


class Reshape(Layer):
    """Reshape every example to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        return reshape(inputs, (inputs.shape[0], *self.target_shape))


class Permute(Layer):
    """Permute the non-batch axes: ``dims`` counts from 1."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        return transpose(inputs, (0, *self.dims))


class Dropout(Layer):
    """In training, zero each element with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``; the identity otherwise. The mask comes from the layer's own
    `SeedGenerator` (a new one each call, in every mode).

    Example::

        layers.Dropout(0.5)(x, training=True)
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1], got {rate}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout: noise_shape is not supported yet")
        self.rate = float(rate)
        self.seed_generator = SeedGenerator(seed, name=f"{self.name}/seed_generator")
        self.built = True

    def call(self, inputs, training=None):
        if training and self.rate > 0.0:
            if self.rate >= 1.0:
                return inputs * 0.0
            return F.dropout(inputs, self.seed_generator.next(), rate=self.rate, train=True)
        return inputs


class Embedding(Layer):
    """Rows of an ``(input_dim, output_dim)`` table for integer ids (any shape).

    Example::

        layers.Embedding(10000, 64)          # (batch, seq) -> (batch, seq, 64)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 input_length=None, **kwargs):
        super().__init__(**kwargs)
        if embeddings_regularizer or embeddings_constraint:
            raise NotImplementedError("Embedding: regularizers and constraints are not supported")
        if mask_zero:
            raise NotImplementedError("Embedding: mask_zero (Keras masking) is not supported yet")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = (initializers.RandomUniform()
                                       if embeddings_initializer == "uniform"
                                       else initializers.get(embeddings_initializer))

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          name="embeddings")

    def call(self, inputs):
        if np.dtype(inputs.dtype).kind not in "iu":
            inputs = fn_math.astype(inputs, np.int32)
        return F.embedding(inputs, self.embeddings)


class Lambda(Layer):
    """A function as a layer (it has no weights): ``Lambda(lambda x: x ** 2)``."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self.arguments = dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)


class Identity(Layer):
    """Returns its input."""

    def call(self, inputs):
        return inputs


# -- merging ----------------------------------------------------------------------------------


class _Merge(Layer):
    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 1:
            raise ValueError(f"{type(self).__name__} takes a list of inputs")
        return self._merge(list(inputs))


class Add(_Merge):
    """The sum of a list of inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    """``inputs[0] - inputs[1]``."""

    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError("Subtract takes exactly two inputs")
        return xs[0] - xs[1]


class Multiply(_Merge):
    """The elementwise product of a list of inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    """The elementwise mean of a list of inputs."""

    def _merge(self, xs):
        return Add._merge(self, xs) / float(len(xs))


class Maximum(_Merge):
    """The elementwise maximum of a list of inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn_math.maximum(out, x)
        return out


class Minimum(_Merge):
    """The elementwise minimum of a list of inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn_math.minimum(out, x)
        return out


class Concatenate(_Merge):
    """Join a list of inputs along ``axis`` (default the last)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _merge(self, xs):
        return concatenate(xs, axis=self.axis)


def add(inputs, **kwargs):
    """``Add()(inputs)``."""
    return Add(**kwargs)(inputs)


def concatenate_(inputs, axis=-1, **kwargs):
    """``Concatenate(axis)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


_unused = (bind, fn_reduce)
