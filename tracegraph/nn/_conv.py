"""Convolution and pooling layers, NCHW activations and OIHW kernels (PyTorch's layouts)."""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from . import functional as F
from . import init
from ._module import Module


def _pair(v, what):
    if isinstance(v, numbers.Integral):
        return (int(v), int(v))
    try:
        a, b = v
        return (int(a), int(b))
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}") from None


def _padding(p):
    """Keep the padding static and hashable: a str, an int, or tuples."""
    if isinstance(p, (str, numbers.Integral)):
        return p if isinstance(p, str) else int(p)
    return tuple(_padding(x) for x in p)


class Conv2d(Module):
    """2-D convolution (cross-correlation) of an ``(N, C, H, W)`` input, as PyTorch's
    ``nn.Conv2d``.

    Arguments:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size, stride, dilation: an int or a pair ``(h, w)``.
        padding: an int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"SAME"``
            (output size ceil(input / stride), as lax) or ``"VALID"``.
        groups: split the channels into this many independent convolutions.
        bias: whether to add a per-channel bias.
        key: PRNG key (keyword-only, required); dtype: parameter dtype.
        weight_init, bias_init: initializers (`tg.nn.init`); defaults: PyTorch's,
            ``kaiming_uniform(a=sqrt(5))`` and U(±1/sqrt(fan_in)) with
            ``fan_in = in_channels / groups * kh * kw``.

    Parameters: ``weight`` ``(out_channels, in_channels // groups, kh, kw)`` (OIHW) and
    ``bias`` ``(out_channels,)``.

    Example::

        conv = tg.nn.Conv2d(1, 32, 3, padding="SAME", key=key)
        y = conv(x)                         # f32[N, 1, 28, 28] -> f32[N, 32, 28, 28]
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, key=None, dtype=jnp.float32,
                 weight_init=None, bias_init=None):
        in_channels, out_channels, groups = int(in_channels), int(out_channels), int(groups)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        wkey, bkey = init.split(key, 2, "Conv2d")
        dtype = init.param_dtype(dtype)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _padding(padding)
        self.dilation = _pair(dilation, "dilation")
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        fan_in = shape[1] * shape[2] * shape[3]
        self.weight = (weight_init or init.torch_default())(wkey, shape, dtype)
        self.bias = (
            (bias_init or init.bias_uniform(fan_in))(bkey, (out_channels,), dtype) if bias else None
        )

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups)


class MaxPool2d(Module):
    """Max over ``kernel_size`` windows of an NCHW input; ``stride`` defaults to the
    window (PyTorch's ``nn.MaxPool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = None if stride is None else _pair(stride, "stride")
        self.padding = _padding(padding)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(Module):
    """Mean over ``kernel_size`` windows of an NCHW input; ``stride`` defaults to the
    window; ``count_include_pad=False`` leaves padding out of each divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = None if stride is None else _pair(stride, "stride")
        self.padding = _padding(padding)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                            count_include_pad=self.count_include_pad)
