"""scikit-learn's bundled data sets (no download): 8x8 handwritten digits and Wisconsin
breast cancer. scikit-learn is an optional extra. Its data files are read where the
installed package keeps them, without importing scikit-learn (about 66 MB and a second
of import for two small CSV files); a layout this reader does not know goes through
``sklearn.datasets`` itself, which gives the same arrays."""

from __future__ import annotations

import csv
import gzip
import importlib
import importlib.util
import os

import numpy as np

from ._dataset import Dataset, check_fraction, make_dataset
from ._errors import DataError

_INSTALL_HINT = "pip install scikit-learn  (or: pip install 'tracegraph[examples]')"


def _sklearn_datasets(loader: str):
    # NOTE: imported here, not at module top: scikit-learn is an optional extra and
    # `import tracegraph` must work without it.
    try:
        return importlib.import_module("sklearn.datasets")
    except ImportError as e:
        raise DataError(
            f"tg.data.{loader} needs scikit-learn, which is not installed ({e}); "
            f"install it with: {_INSTALL_HINT}"
        ) from None


def _data_file(name: str) -> str | None:
    """The path of ``sklearn/datasets/data/<name>`` in the installed package, found
    without importing it; None where it is not there."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError, AttributeError):  # e.g. sys.modules["sklearn"] = None
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "datasets", "data", name)
        if os.path.isfile(path):
            return path
    return None


def _digits_arrays(loader: str):
    """(pixels float64 (1797, 64), labels int) as ``sklearn.datasets.load_digits``."""
    path = _data_file("digits.csv.gz")
    if path is None:
        raw = _sklearn_datasets(loader).load_digits()
        return raw.data, raw.target
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int)


def _breast_cancer_arrays(loader: str):
    """(features float64 (569, 30), labels int) as ``sklearn.datasets.load_breast_cancer``:
    a header row (samples, features, class names), then features and the label."""
    path = _data_file("breast_cancer.csv")
    if path is None:
        raw = _sklearn_datasets(loader).load_breast_cancer()
        return raw.data, raw.target
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        head = next(rows)
        n, features = int(head[0]), int(head[1])
        data = np.empty((n, features))
        target = np.empty(n, dtype=int)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = int(row[-1])
    return data, target


def load_digits(
    *, test_fraction: float = 0.2, seed=0, standardize: bool = False, image: bool = False
) -> Dataset:
    """scikit-learn's handwritten digits: 1797 images of 8x8 pixels, 10 classes.

    Arguments:
        test_fraction: share of each class held out for testing (stratified split).
        seed: int seed (or a ``tg.random`` key) of the split; same seed, same split.
        standardize: subtract the training set's mean pixel value and divide by its
            standard deviation (one statistic over all pixels). Otherwise pixels are
            scaled from 0..16 to 0..1.
        image: give ``x`` as NCHW images ``(N, 1, 8, 8)`` instead of ``(N, 64)``.

    Returns:
        a `Dataset` with float32 ``x`` and int32 ``y``.

    Example::

        ds = tg.data.load_digits(image=True)
        ds.x_train.shape        # (1438, 1, 8, 8)
    """
    fraction = check_fraction(test_fraction, "load_digits")
    pixels, labels = _digits_arrays("load_digits")
    x = pixels / 16.0  # pixel values are 0..16
    if image:
        x = x.reshape(-1, 1, 8, 8)
    return make_dataset(
        "digits", x, labels, 10,
        test_fraction=fraction, seed=seed, standardize=standardize, per_feature=False,
    )


def load_breast_cancer(
    *, test_fraction: float = 0.2, seed=0, standardize: bool = True
) -> Dataset:
    """scikit-learn's Wisconsin breast cancer set: 569 examples, 30 features, 2 classes
    (label 0 malignant, 1 benign).

    Arguments:
        test_fraction: share of each class held out for testing (stratified split).
        seed: int seed (or a ``tg.random`` key) of the split; same seed, same split.
        standardize: scale each feature to zero mean and unit variance, with the
            statistics of the training split only (the features span 0.001 to 4000).

    Example::

        ds = tg.data.load_breast_cancer(seed=0)
        ds.x_train.shape, ds.y_train.dtype      # (455, 30), int32
    """
    fraction = check_fraction(test_fraction, "load_breast_cancer")
    features, labels = _breast_cancer_arrays("load_breast_cancer")
    return make_dataset(
        "breast_cancer", features, labels, 2,
        test_fraction=fraction, seed=seed, standardize=standardize, per_feature=True,
    )
