"""Convolution and pooling layers in PyTorch's layouts: activations ``(N, C, *spatial)``,
kernels ``(out, in / groups, *window)`` (``(in, out / groups, *window)`` for the
transposed convolution). ``Conv1d``, ``Conv3d`` and ``ConvTranspose2d`` are one
``conv_general`` node each; ``Conv2d`` is the ``conv2d`` op."""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from ..errors import ShapeError
from ..frontend.fn_shape import expand_dims, shape_of, squeeze
from . import functional as F
from . import init
from ._module import Module


def _ntuple(v, what, n):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    try:
        out = tuple(int(a) for a in v)
    except (TypeError, ValueError):
        out = ()
    if len(out) != n:
        kind = "a pair of ints" if n == 2 else f"{n} ints"
        raise ValueError(f"{what} must be an int or {kind}, got {v!r}")
    return out


def _pair(v, what):
    return _ntuple(v, what, 2)


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
        _build_conv(self, 2, in_channels, out_channels, kernel_size, stride, padding, dilation,
                    groups, bias, key, dtype, weight_init, bias_init)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups)


def _build_conv(m, nd, in_channels, out_channels, kernel_size, stride, padding, dilation,
                groups, bias, key, dtype, weight_init, bias_init, transposed=False,
                output_padding=0):
    """Set the fields of an ``nd``-d convolution layer (PyTorch's, in its order) and make
    its parameters with PyTorch's default initialization: ``kaiming_uniform(a=sqrt(5))``
    of the weight and U(±1/sqrt(fan_in)) of the bias, where the fan-in is axis 1 of the
    weight times the window (also for the transposed layout, as PyTorch computes it)."""
    who = type(m).__name__
    in_channels, out_channels, groups = int(in_channels), int(out_channels), int(groups)
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{who}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
            f"both be divisible by groups ({groups})"
        )
    wkey, bkey = init.split(key, 2, who)
    dtype = init.param_dtype(dtype)
    m.in_channels, m.out_channels, m.groups = in_channels, out_channels, groups
    m.kernel_size = _ntuple(kernel_size, "kernel_size", nd)
    m.stride = _ntuple(stride, "stride", nd)
    m.padding = _padding(padding)
    if transposed:
        m.output_padding = _ntuple(output_padding, "output_padding", nd)
    m.dilation = _ntuple(dilation, "dilation", nd)
    if transposed:
        shape = (in_channels, out_channels // groups, *m.kernel_size)
    else:
        shape = (out_channels, in_channels // groups, *m.kernel_size)
    fan_in = shape[1]
    for k in m.kernel_size:
        fan_in *= k
    m.weight = (weight_init or init.torch_default())(wkey, shape, dtype)
    m.bias = (
        (bias_init or init.bias_uniform(fan_in))(bkey, (out_channels,), dtype) if bias else None
    )


def _batched(m, x, nd):
    """``x`` with a batch axis (PyTorch's layers also take one unbatched example), after
    checking its rank and channels against layer ``m``; and whether one was added."""
    shape = shape_of(x)
    if len(shape) not in (nd + 1, nd + 2) or shape[-nd - 1] != m.in_channels:
        dims = ("L",) if nd == 1 else ("H", "W") if nd == 2 else ("D", "H", "W")
        want = ", ".join((str(m.in_channels),) + dims)
        raise ShapeError(
            f"{type(m).__name__}({m.in_channels}, {m.out_channels}, kernel_size="
            f"{m.kernel_size}) needs inputs of shape (N, {want}) or ({want}), got {list(shape)}"
        )
    return (x, False) if len(shape) == nd + 2 else (expand_dims(x, 0), True)


class Conv1d(Module):
    """1-D convolution (cross-correlation) of an ``(N, C, L)`` or ``(C, L)`` input, as
    PyTorch's ``nn.Conv1d`` (one ``conv_general`` node).

    Arguments as `Conv2d`, with one int (or a 1-tuple) for ``kernel_size``, ``stride``,
    ``dilation``; ``padding``: an int, ``((lo, hi),)``, ``"SAME"`` or ``"VALID"``.
    Parameters: ``weight`` ``(out_channels, in_channels // groups, k)``, ``bias``
    ``(out_channels,)``; PyTorch's initialization.

    Example::

        conv = tg.nn.Conv1d(16, 32, 3, padding=1, key=key)
        y = conv(x)                         # f32[N, 16, L] -> f32[N, 32, L]
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, key=None, dtype=jnp.float32,
                 weight_init=None, bias_init=None):
        _build_conv(self, 1, in_channels, out_channels, kernel_size, stride, padding, dilation,
                    groups, bias, key, dtype, weight_init, bias_init)

    def forward(self, x):
        x, unbatched = _batched(self, x, 1)
        y = F.conv1d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                     dilation=self.dilation, groups=self.groups)
        return squeeze(y, 0) if unbatched else y


class Conv3d(Module):
    """3-D convolution (cross-correlation) of an ``(N, C, D, H, W)`` or ``(C, D, H, W)``
    input, as PyTorch's ``nn.Conv3d`` (one ``conv_general`` node).

    Arguments as `Conv2d`, with an int or three for ``kernel_size``, ``stride``,
    ``dilation``. Parameters: ``weight`` ``(out_channels, in_channels // groups, kd, kh,
    kw)``, ``bias`` ``(out_channels,)``; PyTorch's initialization.

    Example::

        conv = tg.nn.Conv3d(1, 8, 3, padding="SAME", key=key)
        y = conv(x)                         # f32[N, 1, D, H, W] -> f32[N, 8, D, H, W]
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, key=None, dtype=jnp.float32,
                 weight_init=None, bias_init=None):
        _build_conv(self, 3, in_channels, out_channels, kernel_size, stride, padding, dilation,
                    groups, bias, key, dtype, weight_init, bias_init)

    def forward(self, x):
        x, unbatched = _batched(self, x, 3)
        y = F.conv3d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                     dilation=self.dilation, groups=self.groups)
        return squeeze(y, 0) if unbatched else y


class ConvTranspose2d(Module):
    """2-D transposed convolution of an ``(N, C, H, W)`` or ``(C, H, W)`` input, as
    PyTorch's ``nn.ConvTranspose2d``: the gradient of a `Conv2d` with respect to its
    input, used to upsample. The output is ``(H - 1) * stride - 2 * padding +
    dilation * (kh - 1) + output_padding + 1`` high (likewise wide).

    Arguments:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size, stride, padding, output_padding, dilation: an int or a pair (no
            padding strings): ``padding`` trims that many rows and columns off each side
            of the full output, ``output_padding`` (< stride or dilation) adds rows and
            columns at the end, as PyTorch's.
        groups, bias, key, dtype, weight_init, bias_init: as `Conv2d`.

    Parameters: ``weight`` ``(in_channels, out_channels // groups, kh, kw)`` (PyTorch's
    transposed layout) and ``bias`` ``(out_channels,)``; PyTorch's initialization (its
    fan-in is ``out_channels // groups * kh * kw``).

    Example::

        up = tg.nn.ConvTranspose2d(32, 16, 2, stride=2, key=key)
        y = up(x)                           # f32[N, 32, H, W] -> f32[N, 16, 2H, 2W]
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, *, key=None,
                 dtype=jnp.float32, weight_init=None, bias_init=None):
        _build_conv(self, 2, in_channels, out_channels, kernel_size, stride, padding, dilation,
                    groups, bias, key, dtype, weight_init, bias_init, transposed=True,
                    output_padding=output_padding)
        if isinstance(self.padding, str):
            raise TypeError(f"ConvTranspose2d: padding must be an int or a pair, got "
                            f"{self.padding!r}")
        _ntuple(self.padding, "padding", 2)

    def forward(self, x):
        x, unbatched = _batched(self, x, 2)
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride,
                               padding=self.padding, output_padding=self.output_padding,
                               groups=self.groups, dilation=self.dilation)
        return squeeze(y, 0) if unbatched else y


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


class MaxPool1d(Module):
    """Max over ``kernel_size`` windows along the last axis of an ``(N, C, L)`` or
    ``(C, L)`` input; ``stride`` defaults to the window; ``padding`` (an int, at both
    ends) never wins (PyTorch's ``nn.MaxPool1d``; a ``max_pool2d`` node). ``dilation``,
    ``return_indices`` and ``ceil_mode`` are PyTorch's arguments; only their defaults are
    supported.

    Example::

        pool = tg.nn.MaxPool1d(2)
        y = pool(x)                         # f32[N, C, L] -> f32[N, C, L // 2]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        if _ntuple(dilation, "dilation", 1) != (1,) or return_indices or ceil_mode:
            raise NotImplementedError(
                "MaxPool1d: dilation != 1, return_indices and ceil_mode are not supported")
        self.kernel_size = _ntuple(kernel_size, "kernel_size", 1)[0]
        self.stride = None if stride is None else _ntuple(stride, "stride", 1)[0]
        self.padding = _ntuple(padding, "padding", 1)[0]
        if self.padding * 2 > self.kernel_size:
            raise ValueError(f"MaxPool1d: padding ({self.padding}) must be at most half the "
                             f"kernel size ({self.kernel_size})")

    def forward(self, x):
        shape = shape_of(x)
        if len(shape) not in (2, 3):
            raise ShapeError(f"MaxPool1d({self.kernel_size}) needs inputs of shape (N, C, L) or "
                             f"(C, L), got {list(shape)}")
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling of an ``(N, C, H, W)`` or ``(C, H, W)`` input to a fixed
    ``output_size`` (an int, or a pair where None keeps that dim), with PyTorch's
    windows (``nn.AdaptiveAvgPool2d``; see `tg.nn.functional.adaptive_avg_pool2d`).

    Example::

        gap = tg.nn.AdaptiveAvgPool2d(1)
        y = gap(x)                          # f32[N, C, H, W] -> f32[N, C, 1, 1]
    """

    def __init__(self, output_size):
        if isinstance(output_size, numbers.Integral) or output_size is None:
            output_size = (output_size, output_size)
        try:
            h, w = output_size
        except (TypeError, ValueError):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got "
                             f"{output_size!r}") from None
        self.output_size = tuple(None if v is None else int(v) for v in (h, w))

    def forward(self, x):
        shape = shape_of(x)
        if len(shape) not in (3, 4):
            raise ShapeError(f"AdaptiveAvgPool2d({self.output_size}) needs inputs of shape "
                             f"(N, C, H, W) or (C, H, W), got {list(shape)}")
        return F.adaptive_avg_pool2d(x, self.output_size)
