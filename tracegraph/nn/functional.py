"""``tg.nn.functional``: stateless neural-network functions.

Activations, softmax, convolution, pooling and dropout are single ops (``conv1d``,
``conv3d`` and ``conv_transpose2d`` are ``conv_general`` nodes); normalization, adaptive
pooling and the losses are compositions of existing ops (mean, sub, mul, rsqrt,
log_softmax ...), so they print as a few readable nodes in the IR and need no gradient
rules of their own. The one exception to statelessness is PyTorch's: ``batch_norm`` in
training updates running statistics given as imperative tensors in place.

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

import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError, TracingError, user_location_long
from ..frontend import fn_math
from ..core import bind
from ..frontend.fn_linalg import stop_gradient
from ..core import Tensor
from ..ir.types import is_float

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "batch_norm_stats",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "group_norm",
    "layer_norm",
    "log_sigmoid",
    "log_softmax",
    "max_pool1d",
    "max_pool2d",
    "mse_loss",
    "normalize_channels",
    "one_hot",
    "relu",
    "rms_norm",
    "running_stats",
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


def _ntuple(fn, name, v, n):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    try:
        out = tuple(int(a) for a in v)
        if len(out) != n:
            raise ValueError
        return out
    except (TypeError, ValueError):
        what = "a pair of ints" if n == 2 else f"{n} ints"
        raise _bad(fn, f"{name} must be an int or {what}, got {v!r}") from None


def _pair(fn, name, v):
    return _ntuple(fn, name, v, 2)


def _padding(fn, padding, in_hw, window, stride, dilation=None):
    """int | (ph, pw) | ((top, bottom), (left, right)) | "SAME" | "VALID" -> pairs, one
    per spatial dim (``in_hw`` gives their number)."""
    nd = len(in_hw)
    dilation = (1,) * nd if dilation is None else dilation
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * nd
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
        return ((p, p),) * nd
    try:
        items = list(padding)
        if len(items) != nd:
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



_CONV_SPECS = {1: ("NCW", "OIW"), 2: ("NCHW", "OIHW"), 3: ("NCDHW", "OIDHW")}


def _conv_nd(fn, nd, x, w, b, stride, padding, dilation, groups):
    """An ``nd``-d convolution in PyTorch's layouts as one ``conv_general`` node."""
    xs, ws = _shape(x), _shape(w)
    lhs, rhs = _CONV_SPECS[nd]
    if len(xs) != nd + 2 or len(ws) != nd + 2:
        raise _bad(fn, f"needs x of rank {nd + 2} ({lhs}) and w of rank {nd + 2} ({rhs}), got "
                       f"{list(xs)} and {list(ws)}")
    groups = int(groups)
    if groups < 1 or xs[1] != ws[1] * groups or ws[0] % groups:
        raise _bad(fn, f"x has {xs[1]} channels, w {list(ws)} expects {ws[1]} per group x "
                       f"{groups} groups (and out channels divisible by groups)")
    stride = _ntuple(fn, "stride", stride, nd)
    dilation = _ntuple(fn, "dilation", dilation, nd)
    pads = _padding(fn, padding, xs[2:], ws[2:], stride, dilation)
    y = bind("conv_general", x, w, window_strides=stride, padding=pads, lhs_dilation=(1,) * nd,
             rhs_dilation=dilation, lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs,
             feature_group_count=groups, batch_group_count=1)
    if b is not None:
        y = fn_math.add(y, bind("reshape", b, shape=(ws[0],) + (1,) * nd))
    return y


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D convolution (cross-correlation), x ``(N, C, L)``, w ``(O, C/groups, k)``,
    optional bias ``(O,)`` (PyTorch's ``F.conv1d``; one ``conv_general`` node).
    ``padding``: an int, ``(lo, hi)`` pairs per dim, ``"SAME"`` or ``"VALID"``.

    Example::

        y = F.conv1d(x, w, b, padding=1)     # f32[N, C, L] -> f32[N, O, L]
    """
    return _conv_nd("conv1d", 1, x, w, b, stride, padding, dilation, groups)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """3-D convolution (cross-correlation), x ``(N, C, D, H, W)``, w
    ``(O, C/groups, kd, kh, kw)``, optional bias ``(O,)`` (PyTorch's ``F.conv3d``; one
    ``conv_general`` node).

    Example::

        y = F.conv3d(x, w, padding="SAME")
    """
    return _conv_nd("conv3d", 3, x, w, b, stride, padding, dilation, groups)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1):
    """2-D transposed convolution (the gradient of `conv2d` with respect to its input),
    x ``(N, C_in, H, W)``, w ``(C_in, C_out/groups, kh, kw)`` (PyTorch's layout),
    optional bias ``(C_out,)``; output size ``(H - 1) * stride - 2 * padding +
    dilation * (kh - 1) + output_padding + 1`` (PyTorch's ``F.conv_transpose2d``).

    It is one ``conv_general`` node: the input dilated by ``stride`` (lhs dilation), the
    kernel flipped spatially with its in/out roles swapped, padded by
    ``dilation * (k - 1) - padding`` (plus ``output_padding`` at the end).

    Example::

        up = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)   # H -> 2H
    """
    fn = "conv_transpose2d"
    xs, ws = _shape(x), _shape(w)
    if len(xs) != 4 or len(ws) != 4:
        raise _bad(fn, f"needs x of rank 4 (NCHW) and w of rank 4 (C_in, C_out/groups, kh, "
                       f"kw), got {list(xs)} and {list(ws)}")
    groups = int(groups)
    if groups < 1 or xs[1] != ws[0] or ws[0] % groups:
        raise _bad(fn, f"x has {xs[1]} channels, w {list(ws)} expects {ws[0]} (divisible by "
                       f"groups={groups})")
    stride = _pair(fn, "stride", stride)
    dilation = _pair(fn, "dilation", dilation)
    pad = _pair(fn, "padding", padding)
    out_pad = _pair(fn, "output_padding", output_padding)
    for s, d, op in zip(stride, dilation, out_pad):
        if min(s, d) < 1 or not 0 <= op < max(s, d):
            raise _bad(fn, f"needs stride {stride} and dilation {dilation} >= 1 and "
                           f"0 <= output_padding < stride or dilation, got {out_pad}")
    pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op)
                 for k, d, p, op in zip(ws[2:], dilation, pad, out_pad))
    kernel = bind("rev", w, axes=(2, 3))
    c_in, c_out = ws[0], ws[1] * groups
    if groups == 1:
        rhs_spec = "IOHW"  # (C_in, C_out, kh, kw) read as is
    else:  # (g * C_in/g, C_out/g, ...) -> (g * C_out/g, C_in/g, ...): OIHW per group
        g = groups
        kernel = bind("reshape", kernel, shape=(g, c_in // g, ws[1]) + ws[2:])
        kernel = bind("transpose", kernel, perm=(0, 2, 1, 3, 4))
        kernel = bind("reshape", kernel, shape=(c_out, c_in // g) + ws[2:])
        rhs_spec = "OIHW"
    y = bind("conv_general", x, kernel, window_strides=(1, 1), padding=pads,
             lhs_dilation=stride, rhs_dilation=dilation, lhs_spec="NCHW", rhs_spec=rhs_spec,
             out_spec="NCHW", feature_group_count=groups, batch_group_count=1)
    if b is not None:
        y = fn_math.add(y, bind("reshape", b, shape=(c_out, 1, 1)))
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



def max_pool1d(x, kernel_size, stride=None, padding=0):
    """Max over ``kernel_size`` windows along the last axis of an ``(N, C, L)`` (or
    ``(C, L)``) input; ``stride`` defaults to the window; ``padding`` (an int, at both
    ends) never wins. A ``max_pool2d`` node over a height-1 view of the input."""
    fn = "max_pool1d"
    xs = _shape(x)
    if len(xs) not in (2, 3):
        raise _bad(fn, f"needs x of rank 3 (N, C, L) or 2 (C, L), got {list(xs)}")
    window = _ntuple(fn, "kernel_size", kernel_size, 1)[0]
    step = window if stride is None else _ntuple(fn, "stride", stride, 1)[0]
    pad = _ntuple(fn, "padding", padding, 1)[0]
    y = bind("reshape", x, shape=(xs[0] if len(xs) == 3 else 1, xs[-2], 1, xs[-1]))
    y = bind("max_pool2d", y, window=(1, window), stride=(1, step), padding=((0, 0), (pad, pad)))
    out = _shape(y)
    return bind("reshape", y, shape=xs[:-1] + out[-1:])


def _adaptive_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """``(n_out, n_in)`` averaging weights of PyTorch's adaptive windows: output ``i``
    averages inputs ``floor(i * n_in / n_out)`` to ``ceil((i + 1) * n_in / n_out)``."""
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m.astype(dtype)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling of an ``(N, C, H, W)`` (or ``(C, H, W)``) input to
    ``output_size`` (an int, a pair; None keeps that dim), with PyTorch's windows:
    output ``i`` of a dim averages inputs ``floor(i * n / m)`` to
    ``ceil((i + 1) * n / m)``. When each size divides its input it is one ``avg_pool2d``
    node; otherwise the windows overlap or differ in size and it is two matmuls with
    constant averaging matrices.

    Example::

        F.adaptive_avg_pool2d(x, 1)         # global average pooling: (N, C, 1, 1)
    """
    fn = "adaptive_avg_pool2d"
    xs = _shape(x)
    if len(xs) not in (3, 4):
        raise _bad(fn, f"needs x of rank 4 (N, C, H, W) or 3 (C, H, W), got {list(xs)}")
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size, output_size)
    try:
        oh, ow = output_size
    except (TypeError, ValueError):
        raise _bad(fn, f"output_size must be an int or a pair, got {output_size!r}") from None
    h, w = xs[-2:]
    oh, ow = h if oh is None else int(oh), w if ow is None else int(ow)
    if min(oh, ow) < 1 or (h == 0 or w == 0):
        raise _bad(fn, f"needs output sizes >= 1 and a non-empty input, got output_size "
                       f"{(oh, ow)} for an input {list(xs)}")
    if h % oh == 0 and w % ow == 0:
        y = x if len(xs) == 4 else bind("reshape", x, shape=(1,) + xs)
        kh, kw = h // oh, w // ow
        y = bind("avg_pool2d", y, window=(kh, kw), stride=(kh, kw), padding=((0, 0), (0, 0)),
                 count_include_pad=True)
        return y if len(xs) == 4 else bind("reshape", y, shape=xs[:-2] + (oh, ow))
    dt = _dtype(x) if is_float(_dtype(x)) else np.dtype(np.float32)
    y = bind("matmul", _adaptive_matrix(h, oh, dt), x)                    # (..., oh, W)
    return bind("matmul", y, _adaptive_matrix(w, ow, dt).T)               # (..., oh, ow)

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



def _per_channel(v, channels: int, nd: int):
    """A per-channel vector ``(C,)`` shaped to broadcast against ``(N, C, *spatial)``."""
    return bind("reshape", v, shape=(channels,) + (1,) * nd)


def _normalized(x, mean, var, eps):
    return fn_math.multiply(fn_math.subtract(x, mean), fn_math.rsqrt(fn_math.add(var, float(eps))))


def normalize_channels(x, mean, var, weight=None, bias=None, eps: float = 1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` for ``x`` ``(N, C, *spatial)``,
    ``mean``/``var`` broadcasting against it and ``weight``/``bias`` per channel ``(C,)``
    (what `batch_norm` computes once it has its statistics)."""
    xs = _shape(x)
    return _affine(_normalized(x, mean, var, eps), weight, bias, xs[1], len(xs) - 2)


def _affine(y, weight, bias, channels: int, nd: int):
    if weight is not None:
        y = fn_math.multiply(y, _per_channel(weight, channels, nd))
    if bias is not None:
        y = fn_math.add(y, _per_channel(bias, channels, nd))
    return y


def batch_norm_stats(x):
    """The batch statistics `batch_norm` normalizes with in training, over every axis
    but the channel axis 1 of ``(N, C, *spatial)``: ``(mean, biased variance, count)``,
    the means kept as ``(1, C, 1, ...)`` and ``count`` the number of values per channel
    (a Python int)."""
    xs = _shape(x)
    if len(xs) < 2:
        raise _bad("batch_norm", f"needs x of shape (N, C, *spatial), got {list(xs)}")
    axes = (0,) + tuple(range(2, len(xs)))
    mean = bind("mean", x, axes=axes, keepdims=True)
    centered = fn_math.subtract(x, mean)
    var = bind("mean", fn_math.multiply(centered, centered), axes=axes, keepdims=True)
    count = 1
    for a in axes:
        count *= xs[a]
    return mean, var, count


def running_stats(running_mean, running_var, mean, var, count: int, factor):
    """PyTorch's update of the running statistics from a batch's ``mean`` and biased
    ``var`` (shaped ``(1, C, 1, ...)``, ``count`` values per channel): an exponential
    moving average with weight ``factor`` on the batch, the variance made unbiased
    (``* count / (count - 1)``). No gradient flows into the new values. Returns
    ``(new_mean, new_var)`` shaped ``(C,)``."""
    channels = _shape(running_mean)[0]
    mean = bind("reshape", stop_gradient(mean), shape=(channels,))
    var = bind("reshape", stop_gradient(var), shape=(channels,))
    unbiased = fn_math.multiply(var, count / max(count - 1, 1))
    keep = fn_math.subtract(1.0, factor)
    new_mean = fn_math.add(fn_math.multiply(keep, stop_gradient(running_mean)),
                           fn_math.multiply(factor, mean))
    new_var = fn_math.add(fn_math.multiply(keep, stop_gradient(running_var)),
                          fn_math.multiply(factor, unbiased))
    return new_mean, new_var


def _assign_in_place(t, value, fn: str) -> None:
    from ..frontend.tape import no_grad
    from ..frontend.variables import Variable

    if isinstance(t, Variable):
        t.assign(value)
    elif isinstance(t, Tensor) and t._trace.free:
        with no_grad():
            t._trace.inplace(t, lambda _, v: v, value)
    else:
        raise TracingError(
            f"{fn}: training=True updates running_mean and running_var in place, as in "
            f"PyTorch, which needs imperative tensors (tg.tensor, tg.Variable), not a "
            f"{type(t).__name__} (at {user_location_long(3)}). Pass running_mean=None and "
            f"running_var=None to use the batch statistics only, or use tg.nn.BatchNorm1d/2d "
            f"(its functional form returns the new statistics)"
        )


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalization of ``x`` ``(N, C, *spatial)`` per channel (PyTorch's
    ``F.batch_norm``): ``(x - mean) / sqrt(var + eps) * weight + bias``.

    With ``training=True`` the mean and biased variance are the batch's (over every axis
    but 1), and running statistics given as imperative tensors (``tg.tensor``,
    ``tg.Variable``) are updated in place, as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch`` (the unbiased batch
    variance for ``running_var``); arrays or traced values cannot be updated in place,
    which is an error rather than a silent no-op. With ``training=False`` it normalizes
    with ``running_mean``/``running_var`` (no gradient flows into them).

    Example::

        y = F.batch_norm(x, None, None, training=True)      # batch statistics only
    """
    fn = "batch_norm"
    xs = _shape(x)
    if len(xs) < 2:
        raise _bad(fn, f"needs x of shape (N, C, *spatial), got {list(xs)}")
    c, nd = xs[1], len(xs) - 2
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(_shape(v)) != (c,):
            raise _bad(fn, f"{name} must have shape ({c},) for x {list(xs)}, got "
                           f"{list(_shape(v))}")
    if training or running_mean is None or running_var is None:
        mean, var, count = batch_norm_stats(x)
        if training and count <= 1:
            raise _bad(fn, f"needs more than one value per channel when training, got x "
                           f"{list(xs)}")
        if training and running_mean is not None and running_var is not None:
            new_mean, new_var = running_stats(running_mean, running_var, mean, var, count,
                                              float(momentum))
            _assign_in_place(running_mean, new_mean, fn)
            _assign_in_place(running_var, new_var, fn)
    else:
        mean = _per_channel(stop_gradient(running_mean), c, nd)
        var = _per_channel(stop_gradient(running_var), c, nd)
    return _affine(_normalized(x, mean, var, eps), weight, bias, c, nd)


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Group normalization (PyTorch's ``F.group_norm``): the channels of ``x``
    ``(N, C, *spatial)`` split into ``num_groups`` groups, each normalized over its
    channels and the spatial axes, then a per-channel ``weight`` and ``bias``.

    Example::

        y = F.group_norm(x, 4, gamma, beta)   # x: f32[N, 32, H, W]
    """
    fn = "group_norm"
    xs = _shape(x)
    g = int(num_groups)
    if len(xs) < 2 or g < 1 or xs[1] % g:
        raise _bad(fn, f"needs x of shape (N, C, *spatial) with C divisible by num_groups="
                       f"{num_groups}, got {list(xs)}")
    grouped = bind("reshape", x, shape=(xs[0], g, int(np.prod(xs[1:])) // g))
    mean = bind("mean", grouped, axes=(2,), keepdims=True)
    centered = fn_math.subtract(grouped, mean)
    var = bind("mean", fn_math.multiply(centered, centered), axes=(2,), keepdims=True)
    y = bind("reshape", _normalized(grouped, mean, var, eps), shape=xs)
    return _affine(y, weight, bias, xs[1], len(xs) - 2)


def rms_norm(x, normalized_shape, weight=None, eps: float | None = None):
    """Root-mean-square normalization over the trailing ``normalized_shape`` axes
    (PyTorch's ``F.rms_norm``): ``x / sqrt(mean(x ** 2) + eps) * weight``; ``eps=None``
    is the machine epsilon of x's dtype, as PyTorch.

    Example::

        y = F.rms_norm(x, (512,), weight)
    """
    fn = "rms_norm"
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    ns = tuple(int(d) for d in normalized_shape)
    xs = _shape(x)
    if len(xs) < len(ns) or tuple(xs[len(xs) - len(ns):]) != ns:
        raise _bad(fn, f"needs an input whose trailing axes are {list(ns)}, got {list(xs)}")
    dt = _dtype(x)
    if eps is None:
        eps = float(jnp.finfo(dt if is_float(dt) else np.float32).eps)
    axes = tuple(range(len(xs) - len(ns), len(xs)))
    ms = bind("mean", fn_math.multiply(x, x), axes=axes, keepdims=True)
    y = fn_math.multiply(x, fn_math.rsqrt(fn_math.add(ms, float(eps))))
    return y if weight is None else fn_math.multiply(y, weight)

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


_EPSILON = 1e-7  # how far from_logits=False keeps probabilities from 0 and 1 (Keras')


def cross_entropy(logits, labels, label_smoothing: float = 0.0, reduction: str = "mean", *,
                  from_logits: bool = True):
    """Softmax cross-entropy with classes on the last axis of ``logits``.

    Expects **logits** (unnormalized scores; log-softmax is applied here), as PyTorch's
    ``F.cross_entropy``. With ``from_logits=False`` (Keras' keyword) the first argument
    holds **probabilities** instead (a softmax's output): they are normalized along the
    class axis and clipped to ``[1e-7, 1 - 1e-7]`` before the log, as Keras does.

    ``labels`` are integer class ids of shape ``logits.shape[:-1]`` (ids outside the
    class range contribute zero), or probabilities of ``logits``' shape.
    ``label_smoothing`` mixes the targets with the uniform distribution, as
    ``optax.smooth_labels``. ``reduction``: "mean" (default), "sum" or "none".

    Example::

        loss = F.cross_entropy(model(x), y)              # y: int32[batch]
        loss = F.cross_entropy(probs, y, from_logits=False)
    """
    ls, ys = _shape(logits), _shape(labels)
    if not ls:
        raise _bad("cross_entropy", "logits need a class axis (rank >= 1)")
    num_classes = ls[-1]
    if from_logits:
        logp = log_softmax(logits, axis=-1)
    else:
        total = bind("sum", logits, axes=(len(ls) - 1,), keepdims=True)
        logp = fn_math.log(fn_math.clip(fn_math.divide(logits, total), _EPSILON, 1.0 - _EPSILON))
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
    """Mean squared error ``(pred - target) ** 2``, reduced by ``reduction``: a
    regression loss of any real-valued predictions (neither logits nor probabilities)."""
    d = fn_math.subtract(pred, target)
    return _reduce("mse_loss", fn_math.multiply(d, d), reduction)


def binary_cross_entropy(probs, targets, reduction: str = "mean", *, from_logits: bool = False):
    """Binary cross-entropy of **probabilities** in ``[0, 1]`` (a sigmoid's output, as
    PyTorch's ``F.binary_cross_entropy``): ``-(t log p + (1 - t) log(1 - p))``, each log
    clamped at -100 as in PyTorch so that p = 0 or 1 gives a finite loss.
    ``from_logits=True`` (Keras' keyword) takes **logits** instead and is
    `binary_cross_entropy_with_logits`, which is more accurate."""
    if from_logits:
        return binary_cross_entropy_with_logits(probs, targets, reduction)
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
    """Binary cross-entropy of ``sigmoid(logits)``: expects **logits**, computed stably
    as ``softplus(x) - x * t`` (equal to optax.sigmoid_binary_cross_entropy)."""
    loss = fn_math.subtract(softplus(logits), fn_math.multiply(logits, targets))
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


from ..errors import public_functions as _public_functions

_public_functions(globals())
