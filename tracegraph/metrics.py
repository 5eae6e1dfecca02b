"""``tg.metrics``: Keras' metric functions (``keras.metrics.sparse_categorical_accuracy``
...), one value per sample, and the lookup that ``model.compile(metrics=[...])`` uses.

`tg.nn.Module.fit` averages a metric's per-sample values over each epoch (weighted by
the examples in each batch, as Keras' ``MeanMetricWrapper``), so the functions here only
compute per-sample values. Names follow Keras: ``"accuracy"`` (or ``"acc"``) becomes
binary, sparse categorical or categorical accuracy from the shapes of the targets and
predictions (``y_pred`` ending in 1: binary; ``y_true`` of lower rank, or ending in 1:
sparse; else categorical), keeping the name the user gave; ``"mae"``, ``"mse"`` and the
cross-entropy names are the losses of `tg.losses` used as metrics.

Example::

    tg.metrics.sparse_categorical_accuracy([1, 2], [[0.1, 0.9, 0.0], [0.2, 0.7, 0.1]])
    # -> [1., 0.]
    name, fn = tg.metrics.get("accuracy", y_true, y_pred)   # ("accuracy", sparse_...)
"""

from __future__ import annotations

import numpy as np

from . import losses as _losses
from .errors import Error, public_functions
from .frontend import fn_math, fn_reduce
from .frontend.fn_shape import ndim_of, shape_of, squeeze

__all__ = [
    "binary_accuracy", "categorical_accuracy", "get", "mean_absolute_error",
    "mean_squared_error", "sparse_categorical_accuracy",
]

mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error


def _dtype(x) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _arr(x):
    return x if hasattr(x, "dtype") else np.asarray(x)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_pred, -1)`` equals the integer class ``y_true``, else 0.0;
    ``y_true`` has ``y_pred``'s shape without the class axis (or with a last axis of 1)."""
    y_true, y_pred = _arr(y_true), _arr(y_pred)
    if ndim_of(y_true) == ndim_of(y_pred) and shape_of(y_true)[-1:] == (1,):
        y_true = squeeze(y_true, -1)
    predicted = fn_math.astype(fn_reduce.argmax(y_pred, axis=-1), np.int32)
    return fn_math.astype(fn_math.equal(fn_math.astype(y_true, np.int32), predicted), np.float32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_pred, -1)`` equals ``argmax(y_true, -1)`` (one-hot targets)."""
    y_true, y_pred = _arr(y_true), _arr(y_pred)
    return fn_math.astype(
        fn_math.equal(fn_reduce.argmax(y_true, axis=-1), fn_reduce.argmax(y_pred, axis=-1)),
        np.float32,
    )


def binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    """The share of ``y_pred > threshold`` that equals ``y_true`` over the last axis (one
    value per sample). ``threshold`` 0.5 suits probabilities; for logits use 0.0."""
    y_true, y_pred = _losses.squeeze_or_expand_to_same_rank(_arr(y_true), _arr(y_pred))
    predicted = fn_math.astype(fn_math.greater(y_pred, float(threshold)), np.float32)
    hits = fn_math.astype(fn_math.equal(fn_math.astype(y_true, np.float32), predicted), np.float32)
    return fn_reduce.mean(hits, axis=-1)


_BY_NAME = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_squared_error": _losses.mean_squared_error, "mse": _losses.mean_squared_error,
    "MSE": _losses.mean_squared_error,
    "mean_absolute_error": _losses.mean_absolute_error, "mae": _losses.mean_absolute_error,
    "MAE": _losses.mean_absolute_error,
    "huber": _losses.huber,
    "binary_crossentropy": _losses.binary_crossentropy,
    "categorical_crossentropy": _losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": _losses.sparse_categorical_crossentropy,
}

NAMES = tuple(sorted(_BY_NAME)) + ("accuracy", "acc")

# Which way is better, for EarlyStopping / ModelCheckpoint's mode="auto".
MAXIMIZED = frozenset({"accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
                       "binary_accuracy"})
MINIMIZED = frozenset({"loss", *(n for n in _BY_NAME if n not in MAXIMIZED)})


class UnknownMetricError(Error, ValueError):
    """A metric name that `get` does not know."""


def get(identifier, y_true=None, y_pred=None):
    """``(name, fn)`` for a metric: ``fn(y_true, y_pred)`` gives one value per sample.

    ``identifier`` is a Keras name (see the module docstring; ``"accuracy"`` needs
    ``y_true`` and ``y_pred``, or their shapes, to choose) or a function
    ``fn(y_true, y_pred)`` (named by its ``__name__``; a `tg.losses.Loss` object is used
    unreduced, by its ``call``).
    """
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            if y_true is None or y_pred is None:
                raise UnknownMetricError(f"metric {identifier!r} needs the shapes of y_true and "
                                         f"y_pred to choose binary, sparse or categorical accuracy")
            binary, sparse = _losses.is_binary_or_sparse_categorical(y_true, y_pred)
            fn = binary_accuracy if binary else (
                sparse_categorical_accuracy if sparse else categorical_accuracy)
            return identifier, fn
        fn = _BY_NAME.get(identifier)
        if fn is None:
            raise UnknownMetricError(f"unknown metric {identifier!r}; known names: "
                                     f"{', '.join(NAMES)}; or pass a function (y_true, y_pred)")
        return identifier, fn
    if isinstance(identifier, _losses.Loss):
        return identifier.name, identifier.call
    if callable(identifier):
        return getattr(identifier, "__name__", type(identifier).__name__), identifier
    raise UnknownMetricError(f"a metric must be a name or a function (y_true, y_pred), got "
                             f"{type(identifier).__name__}")


def direction(name: str) -> str | None:
    """``"max"`` or ``"min"``: which way the logged quantity ``name`` (``"val_"`` prefix
    allowed) improves, or None when unknown."""
    base = name.removeprefix("val_")
    if base in MAXIMIZED or base.endswith(("accuracy", "_acc")):
        return "max"
    if base in MINIMIZED or base.endswith(("loss", "error")):
        return "min"
    return None


public_functions(globals(), exclude=("direction",))
