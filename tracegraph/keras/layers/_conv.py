"""Keras' convolution and pooling layers, channels-last by default (``data_format=
"channels_first"`` accepted): `Conv1D`, `Conv2D`, `Conv3D`, `MaxPooling1D/2D`,
`AveragePooling1D/2D`, `GlobalAveragePooling1D/2D`, `GlobalMaxPooling1D/2D`.

A convolution is one ``conv_general`` node with the layouts as strings (``NHWC`` input,
``HWIO`` kernel: Keras' kernel ``(kh, kw, in, filters)``), so no transposes are added;
``padding="same"`` is TensorFlow's (the extra pixel after), ``"causal"`` (Conv1D) pads
before only. Pooling runs the registry's 2-D pooling ops on a channels-first view.
"""

from __future__ import annotations

import numpy as np

from ...core import bind
from ...frontend import fn_reduce
from ...frontend.fn_shape import expand_dims, reshape, squeeze, transpose
from .. import activations, initializers
from .._layer import InputSpec, Layer

_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


def _tuple(v, n: int, what: str) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    if len(v) != n:
        raise ValueError(f"{what} must be an int or {n} ints, got {v}")
    return v


def same_padding(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding of one axis: ``(before, after)``."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if kernel_regularizer or bias_regularizer or activity_regularizer or kernel_constraint \
                or bias_constraint:
            raise NotImplementedError(f"{type(self).__name__}: regularizers and constraints "
                                      f"are not supported yet")
        n = self.rank
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.strides = _tuple(strides, n, "strides")
        self.dilation_rate = _tuple(dilation_rate, n, "dilation_rate")
        padding = padding.lower()
        if padding not in ("valid", "same") and not (padding == "causal" and n == 1):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same'"
                             f"{' or causal' if n == 1 else ''}, got {padding!r}")
        self.padding = padding
        self.data_format = data_format or "channels_last"
        self.groups = int(groups)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.input_spec = InputSpec(min_ndim=n + 2)

    def _channels(self, shape) -> int:
        return shape[-1] if self.data_format == "channels_last" else shape[1]

    def build(self, input_shape):
        cin = self._channels(input_shape)
        channel_axis = -1 if self.data_format == "channels_last" else 1
        self.input_spec = InputSpec(min_ndim=self.rank + 2, axes={channel_axis: cin})
        if cin % self.groups or self.filters % self.groups:
            raise ValueError(f"{type(self).__name__}: input channels {cin} and filters "
                             f"{self.filters} must be divisible by groups={self.groups}")
        self.kernel = self.add_weight(shape=(*self.kernel_size, cin // self.groups, self.filters),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = (self.add_weight(shape=(self.filters,), initializer=self.bias_initializer,
                                     name="bias") if self.use_bias else None)

    def call(self, inputs):
        n, letters = self.rank, _LETTERS[self.rank]
        last = self.data_format == "channels_last"
        spec = f"N{letters}C" if last else f"NC{letters}"
        sizes = tuple(inputs.shape[1:1 + n]) if last else tuple(inputs.shape[2:])
        if self.padding == "valid":
            pads = ((0, 0),) * n
        elif self.padding == "causal":
            pads = (((self.kernel_size[0] - 1) * self.dilation_rate[0], 0),)
        else:
            pads = tuple(same_padding(s, k, st, d) for s, k, st, d in
                         zip(sizes, self.kernel_size, self.strides, self.dilation_rate))
        y = bind("conv_general", inputs, self.kernel, window_strides=self.strides,
                 padding=pads, lhs_dilation=(1,) * n, rhs_dilation=self.dilation_rate,
                 lhs_spec=spec, rhs_spec=f"{letters}IO", out_spec=spec,
                 feature_group_count=self.groups, batch_group_count=1)
        if self.bias is not None:
            y = y + (self.bias if last else reshape(self.bias, (self.filters,) + (1,) * n))
        return self.activation(y)


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)``; kernel ``(k, in, filters)``."""

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over ``(batch, height, width, channels)``; kernel
    ``(kh, kw, in, filters)``.

    Example::

        layers.Conv2D(32, kernel_size=(3, 3), activation="relu")
    """

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over ``(batch, depth, height, width, channels)``."""

    rank = 3


# -- pooling ----------------------------------------------------------------------------------


class _Pool(Layer):
    rank = 2
    op = "max_pool2d"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        n = self.rank
        self.pool_size = _tuple(pool_size, n, "pool_size")
        self.strides = self.pool_size if strides is None else _tuple(strides, n, "strides")
        padding = padding.lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same', "
                             f"got {padding!r}")
        self.padding = padding
        self.data_format = data_format or "channels_last"
        self.input_spec = InputSpec(ndim=n + 2)
        self.built = True

    def call(self, inputs):
        n = self.rank
        last = self.data_format == "channels_last"
        x = transpose(inputs, (0, n + 1, *range(1, n + 1))) if last else inputs  # to NC...
        if n == 1:
            x = expand_dims(x, 2)  # (N, C, 1, W)
        window = (1, *self.pool_size) if n == 1 else self.pool_size
        stride = (1, *self.strides) if n == 1 else self.strides
        sizes = tuple(x.shape[2:])
        pads = (tuple(same_padding(s, k, st) for s, k, st in zip(sizes, window, stride))
                if self.padding == "same" else ((0, 0), (0, 0)))
        attrs = {"window": window, "stride": stride, "padding": pads}
        if self.op == "avg_pool2d":
            attrs["count_include_pad"] = False  # Keras: padding is not averaged in
        y = bind(self.op, x, **attrs)
        if n == 1:
            y = squeeze(y, 2)
        return transpose(y, (0, *range(2, n + 2), 1)) if last else y


class MaxPooling2D(_Pool):
    """The maximum of each ``pool_size`` window (default 2x2, stride = pool size).

    Example::

        layers.MaxPooling2D(pool_size=(2, 2))
    """


class AveragePooling2D(_Pool):
    """The mean of each window (padding, with ``"same"``, not counted)."""

    op = "avg_pool2d"


class MaxPooling1D(_Pool):
    """The maximum of each window along the steps of ``(batch, steps, channels)``."""

    rank = 1


class AveragePooling1D(_Pool):
    """The mean of each window along the steps."""

    rank = 1
    op = "avg_pool2d"


class _GlobalPool(Layer):
    rank = 2

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    def call(self, inputs):
        n = self.rank
        axes = tuple(range(1, n + 1)) if self.data_format == "channels_last" else tuple(range(2, n + 2))
        return self.reduce(inputs, axis=axes, keepdims=self.keepdims)


class GlobalAveragePooling2D(_GlobalPool):
    """The mean over height and width: ``(batch, channels)``."""

    reduce = staticmethod(fn_reduce.mean)


class GlobalMaxPooling2D(_GlobalPool):
    """The maximum over height and width."""

    reduce = staticmethod(fn_reduce.max)


class GlobalAveragePooling1D(_GlobalPool):
    """The mean over the steps: ``(batch, channels)``."""

    rank = 1
    reduce = staticmethod(fn_reduce.mean)


class GlobalMaxPooling1D(_GlobalPool):
    """The maximum over the steps."""

    rank = 1
    reduce = staticmethod(fn_reduce.max)


_unused = np
