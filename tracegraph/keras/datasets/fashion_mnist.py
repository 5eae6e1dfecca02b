"""``keras.datasets.fashion_mnist``: Fashion-MNIST from the files Keras downloaded.

Reads the four gzipped IDX files Keras keeps in ``$KERAS_HOME/datasets/fashion-mnist/``
(or ``~/.keras/datasets/fashion-mnist/``), with the checked IDX reader of `tg.data`.
Never downloads.

Example::

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
    x_test.shape, y_test.dtype          # (10000, 28, 28) uint8
"""

from __future__ import annotations

import os

import numpy as np

from ...data._errors import DataError, IDXError
from ...data._idx import read_idx
from ...errors import public
from ._cache import find_file

_FOLDER = "fashion-mnist"
_NOTE = ("one of the four: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
         "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz")


def _split(images_name: str, labels_name: str):
    images_path = find_file("fashion_mnist", [os.path.join(_FOLDER, images_name)], _NOTE)
    labels_path = find_file("fashion_mnist", [os.path.join(_FOLDER, labels_name)], _NOTE)
    x, y = read_idx(images_path), read_idx(labels_path)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise IDXError(f"{images_path}: expected uint8 images [N, rows, cols], got "
                       f"{x.dtype}{list(x.shape)}")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise IDXError(f"{labels_path}: expected uint8 labels [N], got {y.dtype}{list(y.shape)}")
    if len(x) != len(y):
        raise IDXError(f"{images_path} holds {len(x)} images but {labels_path} holds "
                       f"{len(y)} labels")
    return x, y


@public("keras.datasets.fashion_mnist.load_data", kind=DataError)
def load_data():
    """Fashion-MNIST as Keras gives it: ``(x_train, y_train), (x_test, y_test)``, images
    uint8 ``(60000, 28, 28)`` / ``(10000, 28, 28)``, labels uint8 ``(60000,)`` /
    ``(10000,)`` in 0..9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt,
    Sneaker, Bag, Ankle boot).

    Raises `tg.data.DataError` when a file is not there (saying where to put it), a
    `tg.data.IDXError` (a `DataError`) when one is damaged.

    Example::

        (x_train, y_train), _ = tf.keras.datasets.fashion_mnist.load_data()
        x_train.max()       # 255
    """
    train = _split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    test = _split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return train, test
