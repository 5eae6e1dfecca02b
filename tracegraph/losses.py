"""``tg.losses``: Keras 3's losses (``keras.losses`` / ``tf.keras.losses``), as functions of
``(y_true, y_pred)`` and as loss objects, for ``model.compile(loss=...)`` and for code
written against Keras.

Keras' conventions, which differ from ``tg.nn``'s PyTorch-style loss modules
(``criterion(input, target)``, always from logits):

- the argument order is ``(y_true, y_pred)``;
- the cross-entropies expect probabilities (the output of a softmax or sigmoid) unless
  told ``from_logits=True``; probabilities are normalized along the class axis and
  clipped to ``[1e-7, 1 - 1e-7]`` before the log, as Keras does;
- the functions return one value per sample (the mean over the last axis for the
  elementwise losses: ``mse``, ``mae``, ``huber``, ``binary_crossentropy``);
- a loss object reduces those with ``reduction="sum_over_batch_size"`` (the mean) when
  called, and its ``call(y_true, y_pred)`` gives them unreduced; a ``(batch,)`` target and
  a ``(batch, 1)`` prediction are brought to the same rank first (Keras'
  ``squeeze_or_expand_to_same_rank``), so they never broadcast to ``(batch, batch)``.

Everything works on arrays and on tensors inside tg.jit / tg.eager (the arithmetic is
tracegraph ops, so it shows in the IR).

Example::

    loss = tg.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss(y, logits)                                   # a scalar: the mean over the batch
    tg.losses.sparse_categorical_crossentropy(y, probs)   # one value per sample
    model.compile("adam", loss=loss, metrics=["accuracy"])
"""

from __future__ import annotations

import numpy as np

from .errors import Error, ShapeError, public_functions, user_location_long
from .frontend import fn_math, fn_reduce
from .frontend.fn_shape import expand_dims, ndim_of, shape_of, squeeze
from .ir.types import is_inexact
from .nn import functional as F

EPSILON = 1e-7  # Keras' backend.epsilon(): how far probabilities are kept from 0 and 1

__all__ = [
    "BinaryCrossentropy", "CategoricalCrossentropy", "Huber", "Loss", "LossFunctionWrapper",
    "MeanAbsoluteError", "MeanSquaredError", "SparseCategoricalCrossentropy",
    "binary_crossentropy", "categorical_crossentropy", "get", "huber", "mae",
    "mean_absolute_error", "mean_squared_error", "mse", "sparse_categorical_crossentropy",
]


# -- helpers ------------------------------------------------------------------------------


def _dtype(x) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _float_dtype_of(y_pred):
    dt = _dtype(y_pred)
    return dt if is_inexact(dt) else np.dtype(np.float32)


def _cast(x, dtype):
    return x if _dtype(x) == np.dtype(dtype) else fn_math.astype(x, dtype)


def _as_pred(y_pred):
    """y_pred as a float array or tensor (a list or an int array becomes float32)."""
    if not hasattr(y_pred, "dtype"):
        y_pred = np.asarray(y_pred, np.float32)
    return _cast(y_pred, _float_dtype_of(y_pred))


def _as_true(y_true):
    return np.asarray(y_true) if not hasattr(y_true, "dtype") else y_true


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1: bool = True):
    """Keras' rule for a target and a prediction whose ranks differ by one and whose
    longer shape ends in 1: squeeze that axis (or, for a rank-1 other operand, expand
    it), so that ``(N,)`` and ``(N, 1)`` compare element by element."""
    r1, r2 = ndim_of(x1), ndim_of(x2)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and shape_of(x1)[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = expand_dims(x2, -1)
        else:
            x1 = squeeze(x1, -1)
    if r2 == r1 + 1 and shape_of(x2)[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = expand_dims(x1, -1)
        else:
            x2 = squeeze(x2, -1)
    return x1, x2


def _check_axis(fn: str, axis, y_pred) -> None:
    n = ndim_of(y_pred)
    if axis != -1 and axis != n - 1:
        raise ShapeError(f"{fn}: only the last axis (axis=-1) is supported, got axis={axis} "
                         f"(at {user_location_long(2)})")


def _same_shape(fn: str, y_true, y_pred) -> None:
    if shape_of(y_true) != shape_of(y_pred):
        raise ShapeError(
            f"{fn}: y_true {list(shape_of(y_true))} and y_pred {list(shape_of(y_pred))} must "
            f"have the same shape (at {user_location_long(2)})"
        )


def _log_probs(y_pred, from_logits: bool, axis: int = -1):
    """Log-probabilities along ``axis``: log-softmax of logits, or the log of the
    probabilities normalized to sum to 1 and clipped away from 0 and 1 (Keras)."""
    if from_logits:
        return F.log_softmax(y_pred, axis=axis)
    total = fn_reduce.sum(y_pred, axis=axis, keepdims=True)
    p = fn_math.clip(fn_math.divide(y_pred, total), EPSILON, 1.0 - EPSILON)
    return fn_math.log(p)


# -- the loss functions (one value per sample) ----------------------------------------------


def mean_squared_error(y_true, y_pred):
    """``mean(square(y_true - y_pred), axis=-1)``: one value per sample; a regression
    loss of any real-valued ``y_pred`` (neither logits nor probabilities)."""
    y_pred = _as_pred(y_pred)
    y_true = _cast(_as_true(y_true), _dtype(y_pred))
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return fn_reduce.mean(fn_math.square(fn_math.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(abs(y_true - y_pred), axis=-1)``: one value per sample; a regression loss
    of any real-valued ``y_pred`` (neither logits nor probabilities)."""
    y_pred = _as_pred(y_pred)
    y_true = _cast(_as_true(y_true), _dtype(y_pred))
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return fn_reduce.mean(fn_math.abs(fn_math.subtract(y_true, y_pred)), axis=-1)


mse = mean_squared_error
mae = mean_absolute_error


def huber(y_true, y_pred, delta: float = 1.0):
    """Huber loss: ``0.5 x^2`` for ``|x| <= delta``, else ``delta |x| - 0.5 delta^2``,
    with ``x = y_pred - y_true``; the mean over the last axis. A regression loss of any
    real-valued ``y_pred`` (neither logits nor probabilities)."""
    y_pred = _as_pred(y_pred)
    y_true = _cast(_as_true(y_true), _dtype(y_pred))
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    d = float(delta)
    err = fn_math.subtract(y_pred, y_true)
    abs_err = fn_math.abs(err)
    quadratic = fn_math.multiply(0.5, fn_math.square(err))
    linear = fn_math.subtract(fn_math.multiply(d, abs_err), 0.5 * d * d)
    return fn_reduce.mean(fn_math.where(fn_math.less_equal(abs_err, d), quadratic, linear), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0,
                        axis: int = -1):
    """Binary cross-entropy, the mean over the last axis. Expects **probabilities** in
    ``y_pred`` (clipped to ``[1e-7, 1 - 1e-7]``), **logits** with ``from_logits=True``;
    ``label_smoothing`` squeezes the targets towards 0.5."""
    y_pred = _as_pred(y_pred)
    _check_axis("binary_crossentropy", axis, y_pred)
    y_true = _cast(_as_true(y_true), _dtype(y_pred))
    _same_shape("binary_crossentropy", y_true, y_pred)
    if label_smoothing:
        s = float(label_smoothing)
        y_true = fn_math.add(fn_math.multiply(y_true, 1.0 - s), 0.5 * s)
    if from_logits:
        per = fn_math.subtract(F.softplus(y_pred), fn_math.multiply(y_pred, y_true))
    else:
        p = fn_math.clip(y_pred, EPSILON, 1.0 - EPSILON)
        per = fn_math.negative(fn_math.add(
            fn_math.multiply(y_true, fn_math.log(p)),
            fn_math.multiply(fn_math.subtract(1.0, y_true), fn_math.log(fn_math.subtract(1.0, p))),
        ))
    return fn_reduce.mean(per, axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1):
    """Cross-entropy against one-hot (or probability) targets of ``y_pred``'s shape:
    one value per sample. Expects **probabilities** in ``y_pred`` (normalized along the
    class axis and clipped), **logits** with ``from_logits=True``."""
    y_pred = _as_pred(y_pred)
    _check_axis("categorical_crossentropy", axis, y_pred)
    y_true = _cast(_as_true(y_true), _dtype(y_pred))
    _same_shape("categorical_crossentropy", y_true, y_pred)
    if label_smoothing:
        s = float(label_smoothing)
        y_true = fn_math.add(fn_math.multiply(y_true, 1.0 - s), s / shape_of(y_pred)[-1])
    logp = _log_probs(y_pred, from_logits)
    return fn_math.negative(fn_reduce.sum(fn_math.multiply(y_true, logp), axis=-1))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1):
    """Cross-entropy against integer class ids: ``y_true`` has ``y_pred``'s shape without
    the class axis (or with it as a last axis of size 1). One value per sample;
    ``ignore_class`` targets give 0. Expects **probabilities** in ``y_pred``,
    **logits** with ``from_logits=True``."""
    y_pred = _as_pred(y_pred)
    _check_axis("sparse_categorical_crossentropy", axis, y_pred)
    y_true = _as_true(y_true)
    ts, ps = shape_of(y_true), shape_of(y_pred)
    if len(ts) == len(ps) and ts and ts[-1] == 1:
        y_true = squeeze(y_true, -1)
        ts = ts[:-1]
    if ts != ps[:-1]:
        raise ShapeError(
            f"sparse_categorical_crossentropy: y_true {list(ts)} must have the shape of y_pred "
            f"{list(ps)} up to its last (class) axis (at {user_location_long(1)})"
        )
    labels = _cast(y_true, np.int32)
    logp = _log_probs(y_pred, from_logits)
    per = fn_math.negative(fn_reduce.sum(
        fn_math.multiply(F.one_hot(labels, ps[-1], dtype=_dtype(y_pred)), logp), axis=-1))
    if ignore_class is not None:
        per = fn_math.where(fn_math.not_equal(labels, int(ignore_class)), per, 0.0)
    return per


# -- loss objects ---------------------------------------------------------------------------


_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean")


class Loss:
    """Base of the loss objects: ``loss(y_true, y_pred, sample_weight=None)`` is the
    reduced loss (``reduction``: ``"sum_over_batch_size"`` — the mean over all values —,
    ``"sum"``, or ``"none"``); ``loss.call(y_true, y_pred)`` the unreduced values that
    `tg.nn.Module.fit` weights and averages itself. Subclasses write ``call``."""

    def __init__(self, name: str | None = None, reduction="sum_over_batch_size"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"'sum_over_batch_size', 'sum', 'none', got {reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.call(y_true, y_pred)
        if sample_weight is not None:
            w = _cast(_as_true(sample_weight), _dtype(values))
            while ndim_of(w) < ndim_of(values):
                w = expand_dims(w, -1)
            values = fn_math.multiply(values, w)
        if self.reduction in ("none", None) or ndim_of(values) == 0:
            return values
        total = fn_reduce.sum(values)
        if self.reduction == "sum":
            return total
        return fn_math.divide(total, float(max(1, int(np.prod(shape_of(values))))))

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"tg.losses.{type(self).__name__}({args})"


class LossFunctionWrapper(Loss):
    """A loss function ``fn(y_true, y_pred, **kwargs)`` as a `Loss`: the operands are
    brought to the same rank first (Keras' rule; see the module docstring)."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(_as_true(y_true), _as_true(y_pred))
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}


class MeanSquaredError(LossFunctionWrapper):
    """``keras.losses.MeanSquaredError``: regression (any real-valued predictions)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(mean_squared_error, reduction, name)


class MeanAbsoluteError(LossFunctionWrapper):
    """``keras.losses.MeanAbsoluteError``: regression (any real-valued predictions)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(mean_absolute_error, reduction, name)


class Huber(LossFunctionWrapper):
    """``keras.losses.Huber(delta=1.0)``: regression (any real-valued predictions)."""

    def __init__(self, delta: float = 1.0, reduction="sum_over_batch_size", name="huber_loss"):
        super().__init__(huber, reduction, name, delta=float(delta))


class BinaryCrossentropy(LossFunctionWrapper):
    """``keras.losses.BinaryCrossentropy(from_logits=False, label_smoothing=0.0)``:
    expects probabilities (a sigmoid's output), logits with ``from_logits=True``."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name="binary_crossentropy"):
        super().__init__(binary_crossentropy, reduction, name, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing), axis=axis)
        self.from_logits = bool(from_logits)


class CategoricalCrossentropy(LossFunctionWrapper):
    """``keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0)``:
    one-hot targets; expects probabilities (a softmax's output), logits with
    ``from_logits=True``."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(categorical_crossentropy, reduction, name, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing), axis=axis)
        self.from_logits = bool(from_logits)


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """``keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)``:
    integer class-id targets; expects probabilities (a softmax's output), logits with
    ``from_logits=True``.

    Example::

        loss = tg.losses.SparseCategoricalCrossentropy(from_logits=True)
        loss([1, 2], [[0.1, 2.0, 0.3], [0.5, 0.1, 3.0]])
    """

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy"):
        super().__init__(sparse_categorical_crossentropy, reduction, name,
                         from_logits=bool(from_logits), ignore_class=ignore_class, axis=axis)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):  # no rank matching: the class axis is y_pred's own
        return self.fn(y_true, y_pred, **self._fn_kwargs)


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


# -- lookup by name -------------------------------------------------------------------------

_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError, "MeanAbsoluteError": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber, "Huber": Huber,
    "binary_crossentropy": BinaryCrossentropy, "BinaryCrossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
}

NAMES = tuple(sorted(n for n in _BY_NAME if n.islower() or n.isupper()))


class UnknownLossError(Error, ValueError):
    """A loss name that `get` does not know."""


def get(identifier, y_true=None, y_pred=None) -> Loss:
    """The `Loss` object for ``identifier``: a Keras name (``"mse"``,
    ``"sparse_categorical_crossentropy"`` ...; ``"crossentropy"``/``"ce"`` choose binary,
    sparse or categorical from the shapes of ``y_true`` and ``y_pred``, as Keras'
    compile does), a `Loss` (returned as is) or a function ``fn(y_true, y_pred)``
    (wrapped in `LossFunctionWrapper`, keeping its name).

    Example::

        tg.losses.get("mse")(y, y_hat)
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("crossentropy", "ce") and y_true is not None:
            binary, sparse = is_binary_or_sparse_categorical(y_true, y_pred)
            cls = (BinaryCrossentropy if binary else SparseCategoricalCrossentropy if sparse
                   else CategoricalCrossentropy)
            return cls(name=identifier)
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise UnknownLossError(
                f"unknown loss {identifier!r}; known names: {', '.join(NAMES)}, "
                f"'crossentropy'; or pass a tg.losses object or a function (y_true, y_pred)"
            )
        return cls()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise UnknownLossError(f"a loss must be a name, a tg.losses object or a function "
                           f"(y_true, y_pred), got {type(identifier).__name__}")


def is_binary_or_sparse_categorical(y_true, y_pred) -> tuple[bool, bool]:
    """Keras' shape rule: binary when ``y_pred`` ends in 1; sparse categorical when
    ``y_true`` has lower rank than ``y_pred`` or ends in 1 while ``y_pred`` does not."""
    ts, ps = tuple(shape_of(y_true)), tuple(shape_of(y_pred))
    binary = bool(ps) and ps[-1] == 1
    sparse = len(ts) < len(ps) or (bool(ts) and bool(ps) and ts[-1] == 1 and ps[-1] > 1)
    return binary, sparse


public_functions(globals(), exclude=("squeeze_or_expand_to_same_rank", "is_binary_or_sparse_categorical"))
