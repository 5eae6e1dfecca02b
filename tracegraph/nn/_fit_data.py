"""The data that Keras-style ``fit`` / ``evaluate`` / ``predict`` take, as batches for
the compiled step: arrays (`ArrayData`: numpy arrays, nested lists, tensors, or dicts /
tuples of them, held on the host and sliced per batch) or an iterable of batches
(`BatchData`: ``(x, y)`` pairs or ``{"x", "y"}`` dicts, as `tg.data.batches` gives).

Every batch is a dict ``{"x": ..., "y": ..., "mask": f32[batch]}``. A batch smaller than
the others (the last of an epoch) is padded to their size by repeating its examples,
and ``mask`` is 0 for the padding, which the loss and metrics leave out: the compiled
step sees one shape, so it is traced and compiled once.

Example::

    data = as_data(x, y, need_y=True)
    for batch in data.epoch(32):
        batch["x"].shape, batch["mask"].sum()
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np

from ..core import Tensor
from ..train import TrainingError


def _is_array(a) -> bool:
    return isinstance(a, (np.ndarray, jax.Array, Tensor, np.generic))


def _host_array(a, what: str) -> np.ndarray:
    if isinstance(a, Tensor):
        if not a._trace.free or a._data is None:
            raise TrainingError(f"{what} is a traced tensor; pass concrete arrays")
        a = a._data
    try:
        arr = np.asarray(a)
    except Exception as e:  # noqa: BLE001 - a ragged list, an odd object
        raise TrainingError(f"{what} cannot be read as an array ({e})") from None
    if arr.dtype == object:
        raise TrainingError(f"{what} cannot be read as a numeric array (ragged or mixed data)")
    if arr.ndim == 0:
        raise TrainingError(f"{what} is a scalar; fit splits the first axis into batches")
    canonical = jax.dtypes.canonicalize_dtype(arr.dtype)
    return arr if arr.dtype == canonical else arr.astype(canonical)


def host_tree(x, what: str):
    """``x`` (an array, a nested list of numbers, a tensor, or a dict / tuple / list of
    those) as a pytree of numpy arrays."""
    if isinstance(x, dict):
        return {k: host_tree(v, f"{what}[{k!r}]") for k, v in x.items()}
    if isinstance(x, (tuple, list)) and x and all(_is_array(v) or isinstance(v, dict) for v in x):
        return type(x)(host_tree(v, f"{what}[{i}]") for i, v in enumerate(x))
    return _host_array(x, what)


def _length(tree, what: str) -> int:
    lengths = {len(a) for a in jax.tree_util.tree_leaves(tree)}
    if len(lengths) != 1:
        raise TrainingError(f"the arrays of {what} differ in length along the first axis "
                            f"({sorted(lengths)})")
    return lengths.pop()


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def _padded(idx: np.ndarray, size: int):
    """``idx`` repeated cyclically up to ``size``, and the mask of the real ones."""
    mask = np.zeros(size, np.float32)
    mask[: len(idx)] = 1.0
    return (idx if len(idx) == size else np.resize(idx, size)), mask


class ArrayData:
    """``x`` and ``y`` held on the host as numpy pytrees, sliced into batches padded to
    one size (the padding masked out)."""

    def __init__(self, x, y, *, need_y: bool = True):
        if x is None:
            raise TrainingError("x is missing")
        self.x = host_tree(x, "x")
        self.y = None if y is None else host_tree(y, "y")
        if need_y and self.y is None:
            hint = ""
            if isinstance(x, dict) and set(x) == {"x", "y"}:
                hint = "; for a split of tg.data (a dict with 'x' and 'y') call model.fit(**ds.train)"
            raise TrainingError(
                "y is missing: pass the targets as y, or x as an iterable of (x, y) batches "
                f"(such as tg.data.batches(...)){hint}")
        nx = _length(self.x, "x")
        if self.y is not None:
            ny = _length(self.y, "y")
            if nx != ny:
                raise TrainingError(f"x and y differ in length: x has {nx} examples, y has {ny}")
        self.n = nx

    @classmethod
    def _from(cls, x, y, n):
        new = object.__new__(cls)
        new.x, new.y, new.n = x, y, n
        return new

    def split(self, fraction: float):
        """Keras' ``validation_split``: the last ``fraction`` of the examples (before
        any shuffling) for validation."""
        at = int(math.floor(self.n * (1.0 - fraction)))
        if at <= 0 or at >= self.n:
            raise TrainingError(f"validation_split={fraction} leaves "
                                f"{'no training' if at <= 0 else 'no validation'} examples "
                                f"out of {self.n}")
        head, tail = slice(0, at), slice(at, self.n)
        return (ArrayData._from(_take(self.x, head), _maybe(self.y, head), at),
                ArrayData._from(_take(self.x, tail), _maybe(self.y, tail), self.n - at))

    def batch_size(self, requested: int) -> int:
        return max(1, min(int(requested), self.n))

    def num_batches(self, batch_size: int) -> int:
        return -(-self.n // batch_size)

    def batch(self, idx, size: int) -> dict:
        idx, mask = _padded(idx, size)
        out = {"x": _take(self.x, idx), "mask": mask}
        if self.y is not None:
            out["y"] = _take(self.y, idx)
        return out

    def epoch(self, batch_size: int, order=None):
        """One pass, in ``order`` (default: as stored)."""
        order = np.arange(self.n) if order is None else order
        for i in range(self.num_batches(batch_size)):
            yield self.batch(order[i * batch_size:(i + 1) * batch_size], batch_size)

    def stream(self, batch_size: int, rng, shuffle: bool):
        """Passes over the data without end, a fresh permutation for each."""
        while True:
            yield from self.epoch(batch_size, rng.permutation(self.n) if shuffle else None)


def _maybe(tree, idx):
    return None if tree is None else _take(tree, idx)


class BatchData:
    """An iterable of batches — ``(x, y)`` pairs, ``{"x": ..., "y": ...}`` dicts (as
    `tg.data.batches` gives), or ``x`` alone for predict — re-iterated each epoch (an
    iterator continues where it stopped). Each batch is padded to the size of the first
    one, so a smaller last batch needs no new compilation."""

    def __init__(self, data, *, need_y: bool = True):
        if callable(data) and not hasattr(data, "__iter__"):
            raise TrainingError("x must be arrays or an iterable of batches, got a function")
        self.data = data
        self.need_y = need_y
        self.size = None
        try:
            self.length = len(data) if iter(data) is not data else None
        except TypeError:
            self.length = None

    def _split(self, b):
        if isinstance(b, dict) and "x" in b:
            return b["x"], b.get("y"), b.get("sample_weight")
        if isinstance(b, (tuple, list)) and 1 <= len(b) <= 3 and not all(
                isinstance(v, numbers.Number) for v in b):
            return b[0], b[1] if len(b) > 1 else None, b[2] if len(b) > 2 else None
        return b, None, None

    def normalize(self, b) -> dict:
        x, y, sw = self._split(b)
        if sw is not None:
            raise TrainingError("batches with sample weights (x, y, sample_weight) are not "
                                "supported")
        if self.need_y and y is None:
            raise TrainingError("each batch must hold targets: (x, y) pairs or {'x': ..., "
                                "'y': ...} dicts")
        x = host_tree(x, "a batch's x")
        n = _length(x, "a batch's x")
        out = {"x": x}
        if y is not None:
            out["y"] = host_tree(y, "a batch's y")
            if _length(out["y"], "a batch's y") != n:
                raise TrainingError(f"a batch's x and y differ in length ({n} and "
                                    f"{_length(out['y'], 'y')})")
        if self.size is None:
            self.size = n
        if n < self.size:
            idx, mask = _padded(np.arange(n), self.size)
            out = {k: _take(v, idx) for k, v in out.items()}
        else:
            mask = np.ones(n, np.float32)
        out["mask"] = mask
        return out

    def epoch(self):
        for b in self.data:
            yield self.normalize(b)


def as_data(x, y, *, need_y: bool):
    """`BatchData` when ``x`` alone is an iterable of batches, else `ArrayData`."""
    if y is None and _is_batches(x):
        return BatchData(x, need_y=need_y)
    return ArrayData(x, y, need_y=need_y)


def _is_batches(x) -> bool:
    """Whether ``x`` (given without ``y``) is an iterable of batches rather than data: not
    an array, a dict (several inputs), a list of arrays (several inputs) or a nested
    list of numbers; a list of ``(x, y)`` tuples, ``[x, y]`` lists or dicts is batches."""
    if x is None or _is_array(x) or isinstance(x, dict):
        return False
    if not isinstance(x, (list, tuple)):
        return True  # tg.data.batches, a generator, any other iterable
    first = x[0] if x else None
    if isinstance(first, (tuple, dict)) or (isinstance(first, list) and first
                                           and _is_array(first[0])):
        return True
    while isinstance(first, list) and first:
        first = first[0]
    return not (first is None or isinstance(first, numbers.Number) or _is_array(first))


def validation_data_of(validation_data):
    """Keras' forms: a tuple ``(x_val, y_val)`` (or ``(x_val, y_val, None)``) of arrays,
    or anything else iterable as batches."""
    if isinstance(validation_data, tuple):
        if len(validation_data) not in (2, 3):
            raise TrainingError(f"validation_data must be a tuple (x_val, y_val) or an iterable "
                                f"of batches, got a tuple of {len(validation_data)}")
        if len(validation_data) == 3 and validation_data[2] is not None:
            raise TrainingError("validation_data with sample weights is not supported")
        return ArrayData(validation_data[0], validation_data[1])
    return BatchData(validation_data)
