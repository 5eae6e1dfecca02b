"""scikit-learn's bundled data sets (no download): 8x8 handwritten digits and Wisconsin
breast cancer. scikit-learn is an optional extra, imported only when a loader runs."""

from __future__ import annotations

import importlib

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
    raw = _sklearn_datasets("load_digits").load_digits()
    x = raw.data / 16.0  # pixel values are 0..16
    if image:
        x = x.reshape(-1, 1, 8, 8)
    return make_dataset(
        "digits", x, raw.target, 10,
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
    raw = _sklearn_datasets("load_breast_cancer").load_breast_cancer()
    return make_dataset(
        "breast_cancer", raw.data, raw.target, 2,
        test_fraction=fraction, seed=seed, standardize=standardize, per_feature=True,
    )
