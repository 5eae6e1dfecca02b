"""``tg.nn.functional``: stateless neural-network functions.

Activations, softmax, convolution, pooling and dropout are single ops; normalization and
the losses are compositions of existing ops (mean, sub, mul, rsqrt, log_softmax ...), so
they print as a few readable nodes in the IR and need no gradient rules of their own.

Layouts follow PyTorch: activations NCHW, convolution weights OIHW. Class scores are on
the LAST axis (as in optax and jax.nn), not on axis 1 as in torch.

Example::

    import tracegraph.nn.functional as F
    h = F.relu(F.conv2d(x, w, b, padding="SAME"))
    h = F.max_pool2d(h, 2)
    loss = F.cross_entropy(logits, labels)
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ShapeError, TracingError, user_location_long
from ..frontend import fn_math
from ..core import bind
from ..frontend.fn_linalg import stop_gradient
from ..core import Tensor
from ..ir.types import is_float

__all__ = [
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "log_sigmoid",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "one_hot",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "stop_gradient",
    "tanh",
]

relu = fn_math.relu
sigmoid = fn_math.sigmoid
gelu = fn_math.gelu
tanh = fn_math.tanh


def _shape(x) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tensor) else tuple(np.shape(x))


def _dtype(x) -> np.dtype:
    if isinstance(x, Tensor) or hasattr(x, "dtype"):
        return np.dtype(x.dtype)
    return np.asarray(x).dtype


def _bad(fn: str, msg: str):
    return ShapeError(f"{fn}: {msg} (at {user_location_long(3)})")


# -- activations --------------------------------------------------------------------


def softplus(x):
    """``log(1 + exp(x))``, computed stably as ``relu(x) + log1p(exp(-|x|))``."""
    return fn_math.add(
        fn_math.relu(x), fn_math.log1p(fn_math.exp(fn_math.negative(fn_math.abs(x))))
    )


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, finite for large ``|x|``."""
    return fn_math.negative(softplus(fn_math.negative(x)))


def silu(x):
    """``x * sigmoid(x)`` (also called swish)."""
    return fn_math.multiply(x, fn_math.sigmoid(x))


def softmax(x, axis: int = -1):
    """Numerically stable softmax along ``axis`` (op ``softmax``)."""
    return bind("softmax", x, axis=axis)


def log_softmax(x, axis: int = -1):
    """Numerically stable log-softmax along ``axis`` (op ``log_softmax``)."""
    return bind("log_softmax", x, axis=axis)


def one_hot(x, num_classes: int, dtype=np.float32):
    """Integer class ids -> one-hot vectors on a new last axis; ids outside
    ``[0, num_classes)`` give all zeros (as jax.nn.one_hot)."""
    return bind("one_hot", x, num_classes=num_classes, dtype=dtype)


# -- convolution and pooling --------------------------------------------------------


def _pair(fn, name, v):
    if isinstance(v, numbers.Integral):
        return (int(v), int(v))
    try:
        a, b = v
        return (int(a), int(b))
    except (TypeError, ValueError):
        raise _bad(fn, f"{name} must be an int or a pair of ints, got {v!r}") from None


def _padding(fn, padding, in_hw, window, stride, dilation=(1, 1)):
    """int | (ph, pw) | ((top, bottom), (left, right)) | "SAME" | "VALID" -> pairs."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":  # as lax: output = ceil(input / stride), extra padding at the end
            pads = []
            for n, k, s, d in zip(in_hw, window, stride, dilation):
                extent = d * (k - 1) + 1
                total = max((-(-n // s) - 1) * s + extent - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise _bad(fn, f"padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}")
    if isinstance(padding, numbers.Integral):
        p = int(padding)
        return ((p, p), (p, p))
    try:
        items = list(padding)
        if len(items) != 2:
            raise ValueError
        if all(isinstance(i, numbers.Integral) for i in items):
            return tuple((int(i), int(i)) for i in items)
        return tuple((int(lo), int(hi)) for lo, hi in items)
    except (TypeError, ValueError):
        raise _bad(
            fn, f"padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}"
        ) from None


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D convolution (cross-correlation), x ``(N, C, H, W)``, w ``(O, C/groups, kh, kw)``,
    optional bias ``b`` of shape ``(O,)``.

    ``padding``: an int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"SAME"``
    (output size ceil(input / stride), as lax) or ``"VALID"`` (none).
    """
    xs, ws = _shape(x), _shape(w)
    if len(xs) != 4 or len(ws) != 4:
        raise _bad(
            "conv2d",
            f"needs x of rank 4 (NCHW) and w of rank 4 (OIHW), got {list(xs)} and {list(ws)}",
        )
    stride = _pair("conv2d", "stride", stride)
    dilation = _pair("conv2d", "dilation", dilation)
    pads = _padding("conv2d", padding, xs[2:], ws[2:], stride, dilation)
    y = bind("conv2d", x, w, stride=stride, padding=pads, dilation=dilation, groups=groups)
    if b is not None:
        y = fn_math.add(y, bind("reshape", b, shape=(ws[0], 1, 1)))
    return y


def _pool_args(fn, x, kernel_size, stride, padding):
    xs = _shape(x)
    if len(xs) != 4:
        raise _bad(fn, f"needs x of rank 4 (NCHW), got {list(xs)}")
    window = _pair(fn, "kernel_size", kernel_size)
    stride = window if stride is None else _pair(fn, "stride", stride)
    return window, stride, _padding(fn, padding, xs[2:], window, stride)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over ``kernel_size`` windows of an NCHW input; ``stride`` defaults to the
    window; padded positions never win."""
    window, stride, pads = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return bind("max_pool2d", x, window=window, stride=stride, padding=pads)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    """Mean over ``kernel_size`` windows of an NCHW input; ``stride`` defaults to the
    window. ``count_include_pad=False`` leaves padding out of each divisor."""
    window, stride, pads = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return bind(
        "avg_pool2d",
        x,
        window=window,
        stride=stride,
        padding=pads,
        count_include_pad=count_include_pad,
    )


# -- embedding, dropout, normalization ------------------------------------------------


def embedding(ids, table):
    """Rows of ``table`` (``(vocab, dim)``) for integer ``ids`` of any shape: the result
    is ``ids.shape + (dim,)``."""
    return bind("take", table, ids, axis=0)


def dropout(x, key, rate: float = 0.5, train: bool = True):
    """Zero elements with probability ``rate`` and scale the rest by ``1/(1-rate)``, with
    the mask drawn from ``key``; identity when ``train`` is False or ``rate`` is 0."""
    if not train or rate == 0:
        return x
    if key is None:
        raise TracingError(f"dropout in training needs a random key (at {user_location_long(2)})")
    return bind("dropout", x, key, rate=float(rate))


def _axes(fn, axis, ndim) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise _bad(fn, f"axis {a} is out of range for rank {ndim}")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5, axis=-1):
    """Normalize over ``axis`` (an int or tuple) to zero mean and unit variance, then
    scale by ``weight`` and shift by ``bias`` (both optional, broadcast against x)::

        (x - mean(x)) / sqrt(var(x) + eps) * weight + bias
    """
    axes = _axes("layer_norm", axis, len(_shape(x)))
    mean = bind("mean", x, axes=axes, keepdims=True)
    centered = fn_math.subtract(x, mean)
    var = bind("mean", fn_math.multiply(centered, centered), axes=axes, keepdims=True)
    y = fn_math.multiply(centered, fn_math.rsqrt(fn_math.add(var, float(eps))))
    if weight is not None:
        y = fn_math.multiply(y, weight)
    if bias is not None:
        y = fn_math.add(y, bias)
    return y


# -- losses -------------------------------------------------------------------------


def _reduce(fn, loss, reduction):
    if reduction == "mean":
        return bind("mean", loss, axes=None, keepdims=False)
    if reduction == "sum":
        return bind("sum", loss, axes=None, keepdims=False)
    if reduction == "none":
        return loss
    raise TracingError(
        f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r} "
        f"(at {user_location_long(3)})"
    )


def cross_entropy(logits, labels, label_smoothing: float = 0.0, reduction: str = "mean"):
    """Softmax cross-entropy with classes on the last axis of ``logits``.

    ``labels`` are integer class ids of shape ``logits.shape[:-1]`` (ids outside the
    class range contribute zero), or probabilities of ``logits``' shape.
    ``label_smoothing`` mixes the targets with the uniform distribution, as
    ``optax.smooth_labels``. ``reduction``: "mean" (default), "sum" or "none".

    Example::

        loss = F.cross_entropy(model(x), y)              # y: int32[batch]
    """
    ls, ys = _shape(logits), _shape(labels)
    if not ls:
        raise _bad("cross_entropy", "logits need a class axis (rank >= 1)")
    num_classes = ls[-1]
    logp = log_softmax(logits, axis=-1)
    kind = _dtype(labels).kind
    if kind in "iu":
        if ys != ls[:-1]:
            raise _bad(
                "cross_entropy", f"integer labels of shape {list(ys)} do not fit logits {list(ls)}"
            )
        targets = one_hot(labels, num_classes, dtype=_dtype(logp))
    elif is_float(_dtype(labels)):
        if ys != ls:
            raise _bad(
                "cross_entropy",
                f"probability targets of shape {list(ys)} must match logits {list(ls)}",
            )
        targets = labels
    else:
        raise _bad(
            "cross_entropy",
            f"labels must be integer ids or float probabilities, got {_dtype(labels)}",
        )
    if label_smoothing:
        a = float(label_smoothing)
        targets = fn_math.add(fn_math.multiply(targets, 1.0 - a), a / num_classes)
    per_example = fn_math.negative(
        bind("sum", fn_math.multiply(targets, logp), axes=(len(ls) - 1,), keepdims=False)
    )
    return _reduce("cross_entropy", per_example, reduction)


def mse_loss(pred, target, reduction: str = "mean"):
    """Mean squared error ``(pred - target) ** 2``, reduced by ``reduction``."""
    d = fn_math.subtract(pred, target)
    return _reduce("mse_loss", fn_math.multiply(d, d), reduction)


def binary_cross_entropy(probs, targets, reduction: str = "mean"):
    """Binary cross-entropy of probabilities in ``[0, 1]``:
    ``-(t log p + (1 - t) log(1 - p))``, each log clamped at -100 as in PyTorch so that
    p = 0 or 1 gives a finite loss. Prefer `binary_cross_entropy_with_logits`."""
    log_p = fn_math.maximum(fn_math.log(probs), -100.0)
    log_not_p = fn_math.maximum(fn_math.log1p(fn_math.negative(probs)), -100.0)
    loss = fn_math.negative(
        fn_math.add(
            fn_math.multiply(targets, log_p),
            fn_math.multiply(fn_math.subtract(1.0, targets), log_not_p),
        )
    )
    return _reduce("binary_cross_entropy", loss, reduction)


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean"):
    """Binary cross-entropy of ``sigmoid(logits)``, computed stably as
    ``softplus(x) - x * t`` (equal to optax.sigmoid_binary_cross_entropy)."""
    loss = fn_math.subtract(softplus(logits), fn_math.multiply(logits, targets))
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


from ..errors import public_functions as _public_functions

_public_functions(globals())
