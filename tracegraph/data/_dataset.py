"""`Dataset`: a supervised data set as numpy arrays, split into train and test, and the
split / standardization helpers the loaders share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._errors import DataError
from ._rng import numpy_generator


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one data set, ready for `tg.data.batches`.

    ``x_*`` are float32, ``y_*`` int32 class labels in ``range(num_classes)``. When the
    features were standardized, ``mean`` and ``std`` are the statistics of the training
    split that were applied (use them on new inputs: ``(x - ds.mean) / ds.std``).

    Example::

        ds = tg.data.load_digits(seed=0)
        for batch in tg.data.batches(ds.train, 64, seed=0):
            batch["x"], batch["y"]
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def train(self) -> dict[str, np.ndarray]:
        """``{"x": x_train, "y": y_train}``."""
        return {"x": self.x_train, "y": self.y_train}

    @property
    def test(self) -> dict[str, np.ndarray]:
        """``{"x": x_test, "y": y_test}``."""
        return {"x": self.x_test, "y": self.y_test}

    def __repr__(self) -> str:
        def t(a):
            return f"{a.dtype}{list(a.shape)}"

        return (
            f"Dataset({self.name!r}, train: x {t(self.x_train)} y {t(self.y_train)}, "
            f"test: x {t(self.x_test)} y {t(self.y_test)}, num_classes={self.num_classes})"
        )


def check_fraction(test_fraction, what: str) -> float:
    try:
        f = float(test_fraction)
    except (TypeError, ValueError):
        f = -1.0
    if not 0.0 <= f < 1.0:
        raise DataError(f"{what}: test_fraction must be in [0, 1), got {test_fraction!r}")
    return f


def stratified_split(y: np.ndarray, test_fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(train, test)``: each class contributes ``round(fraction * count)``
    test examples, chosen by a generator seeded with ``seed``; both halves are shuffled.

    NOTE: stratifying keeps small test sets (breast cancer has 569 examples) from
    drifting in class balance with the seed, so accuracies are comparable across seeds.
    """
    rng = numpy_generator(seed, what="train/test split")
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    return train_idx, test_idx


def make_dataset(name, x, y, num_classes, *, test_fraction, seed, standardize, per_feature):
    """Split ``x, y`` and optionally standardize with statistics of the training part
    only (per feature, or one mean and std over all values when ``per_feature`` is
    False — for images, where per-pixel statistics blow up rarely-lit pixels)."""
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32)
    x_train, x_test = x[train_idx], x[test_idx]
    mean = std = None
    if standardize:
        x_train, x_test, mean, std = standardize_pair(x_train, x_test, per_feature)
    return Dataset(name, x_train, y[train_idx], x_test, y[test_idx], num_classes, mean, std)


def standardize_pair(x_train, x_test, per_feature: bool):
    """``(x - mean) / std`` on both, with statistics of ``x_train``; a constant feature
    keeps std 1 so it maps to 0 instead of NaN."""
    if len(x_train) == 0:
        raise DataError("cannot standardize: the training split is empty")
    axis = 0 if per_feature else None
    mean = x_train.astype(np.float64).mean(axis=axis)
    std = x_train.astype(np.float64).std(axis=axis)
    std = np.where(std > 0, std, 1.0)
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (x_train - mean) / std, (x_test - mean) / std, mean, std
