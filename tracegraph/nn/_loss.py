"""Loss modules with PyTorch's names and conventions: ``criterion(input, target)``.

Each is a thin `Module` over the `tg.nn.functional` loss of the same meaning, with
``reduction`` ("mean", "sum", "none") as in ``torch.nn``. They hold no parameters.

Example::

    criterion = tg.nn.CrossEntropyLoss()
    loss = criterion(model(x), y)        # logits f32[N, C], y: int class ids [N]
    loss.backward()
"""

from __future__ import annotations

from ..errors import ShapeError
from ..frontend import fn_math, fn_reduce
from ..frontend.fn_shape import moveaxis, shape_of
from ..ir.types import is_inexact
from . import functional as F
from ._module import Module


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce_kept(losses, target, ignore_index, reduction):
    """Per-target ``losses`` with those of ``ignore_index`` targets zeroed, reduced as
    PyTorch does: the mean is over the kept targets."""
    keep = fn_math.not_equal(target, ignore_index)
    losses = fn_math.where(keep, losses, 0.0)
    if reduction == "none":
        return losses
    total = fn_reduce.sum(losses)
    if reduction == "sum":
        return total
    return fn_math.divide(total, fn_reduce.sum(fn_math.astype(keep, losses.dtype)))


class _Criterion(Module):
    """Base of the losses here. ``_tg_input_target`` tells ``model.compile(loss=...)`` to
    call them PyTorch's way, ``criterion(y_pred, y_true)`` with ``reduction="none"``
    (Keras' losses and plain loss functions take ``(y_true, y_pred)``)."""

    _tg_input_target = True


class MSELoss(_Criterion):
    """Mean squared error ``(input - target) ** 2`` (``torch.nn.MSELoss``): a regression
    loss of any real-valued ``input`` (neither logits nor probabilities)."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def forward(self, input, target):  # noqa: A002 - PyTorch's names
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Criterion):
    """Mean absolute error ``|input - target|`` (``torch.nn.L1Loss``): a regression loss
    of any real-valued ``input`` (neither logits nor probabilities)."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def forward(self, input, target):  # noqa: A002
        loss = fn_math.abs(fn_math.subtract(input, target))
        return F._reduce("l1_loss", loss, self.reduction)


class CrossEntropyLoss(_Criterion):
    """Softmax cross-entropy; expects **logits** (unnormalized scores, not
    probabilities: log-softmax is applied here) ``(N, C)`` or ``(N, C, d1, ...)`` (classes on
    axis 1, as in PyTorch) against integer class ids ``(N, d1, ...)`` or class
    probabilities of the input's shape (``torch.nn.CrossEntropyLoss``). Targets equal
    to ``ignore_index`` contribute nothing, and the mean is over the others.
    ``label_smoothing`` as in PyTorch. Per-class ``weight`` is not supported."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        if weight is not None:
            raise NotImplementedError("CrossEntropyLoss(weight=...) is not supported yet")
        self.ignore_index = int(ignore_index)
        self.reduction = _check_reduction(reduction)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):  # noqa: A002
        shape = shape_of(input)
        if len(shape) > 2:  # PyTorch's (N, C, d...) -> classes last
            input = moveaxis(input, 1, -1)
        if len(shape) == 1:
            raise ShapeError(f"CrossEntropyLoss needs logits (N, C), got {list(shape)}")
        if is_inexact(F._dtype(target)):
            if len(shape) > 2:
                target = moveaxis(target, 1, -1)
            return F.cross_entropy(input, target, self.label_smoothing, self.reduction)
        losses = F.cross_entropy(input, target, self.label_smoothing, "none")
        return _reduce_kept(losses, target, self.ignore_index, self.reduction)


class NLLLoss(_Criterion):
    """Negative log-likelihood; expects **log-probabilities** ``(N, C)`` (a
    `LogSoftmax`'s output, neither logits nor probabilities) at integer targets ``(N,)``
    (``torch.nn.NLLLoss``)."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        self.ignore_index = int(ignore_index)
        self.reduction = _check_reduction(reduction)

    def forward(self, input, target):  # noqa: A002
        shape = shape_of(input)
        if len(shape) > 2:
            input = moveaxis(input, 1, -1)
        picked = fn_reduce.sum(fn_math.multiply(input, F.one_hot(target, shape[1], dtype=input.dtype)), axis=-1)
        return _reduce_kept(fn_math.negative(picked), target, self.ignore_index, self.reduction)


class BCEWithLogitsLoss(_Criterion):
    """Binary cross-entropy of ``sigmoid(input)``; expects **logits**, computed stably
    (``torch.nn.BCEWithLogitsLoss``)."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)


class BCELoss(_Criterion):
    """Binary cross-entropy; expects **probabilities** in ``[0, 1]`` (a sigmoid's
    output; each log clamped at -100) (``torch.nn.BCELoss``). Prefer
    `BCEWithLogitsLoss` on logits."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, reduction=self.reduction)


def Parameter(data, requires_grad: bool = True):  # noqa: N802 - PyTorch's name
    """A leaf tensor holding ``data`` that requires grad (``torch.nn.Parameter``):
    assign it to a module attribute in ``__init__`` to make a trainable parameter."""
    from ..frontend.tape import tensor

    return tensor(data, requires_grad=requires_grad)
