"""``keras.datasets.boston_housing``: the Boston housing prices from the file Keras
downloaded (``boston_housing.npz`` with arrays ``x`` and ``y`` in the Keras datasets
folder), shuffled and split exactly as Keras does. Never downloads.

Example::

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.boston_housing.load_data()
    x_train.shape, x_test.shape         # (404, 13) (102, 13)
"""

from __future__ import annotations

import numpy as np

from ...data._errors import DataError
from ...errors import public
from ._cache import find_file
from ._npz import load_npz


@public("keras.datasets.boston_housing.load_data", kind=DataError)
def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """``(x_train, y_train), (x_test, y_test)``: 13 features per house (float64) and
    the median price in k$, the rows shuffled by ``np.random.RandomState(seed)`` and the
    last ``test_split`` of them held out, as Keras' loader does.

    Arguments:
        path: the file's name in the Keras datasets folder, or an absolute path.
        test_split: the fraction held out, in ``[0, 1)``.
        seed: the shuffle's seed.

    Raises `tg.data.DataError` for a bad ``test_split``, when the file is not there
    (saying where to put it), or when it is damaged.

    Example::

        (x_train, y_train), _ = tf.keras.datasets.boston_housing.load_data(test_split=0.1)
        len(x_train)        # 455
    """
    if not 0 <= test_split < 1:
        raise DataError(f"Invalid test_split argument: {test_split}. It must be between 0 "
                        f"and 1 (exclusive of 1).")
    file = find_file("boston_housing", [path])
    a = load_npz(file, ["x", "y"])
    x, y = a["x"], a["y"]
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y):
        raise DataError(f"{file}: x is {x.dtype}{list(x.shape)} and y {y.dtype}"
                        f"{list(y.shape)}; expected one target per row")
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    cut = int(len(x) * (1 - test_split))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])
