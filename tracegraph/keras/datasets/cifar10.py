"""``keras.datasets.cifar10``: CIFAR-10 from the folder Keras extracted.

Keras 3 extracts ``cifar-10-python.tar.gz`` to
``$KERAS_HOME/datasets/cifar-10-batches-py-target/cifar-10-batches-py/`` (Keras 2 and
early Keras 3 to ``datasets/cifar-10-batches-py/``; both are looked for, the newer
first). The batches ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` are read
with a restricted unpickler that runs nothing from the file. Never downloads.

Example::

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
    x_train.shape, y_train.shape        # (50000, 32, 32, 3) (50000, 1)
"""

from __future__ import annotations

import os

import numpy as np

from ...data._errors import DataError
from ...errors import public
from ._cache import find_dir
from ._cifar import load_batch

_FOLDERS = [os.path.join("cifar-10-batches-py-target", "cifar-10-batches-py"),
            "cifar-10-batches-py"]
_NOTE = "the folder extracted from cifar-10-python.tar.gz, with data_batch_1..5 and test_batch"


@public("keras.datasets.cifar10.load_data", kind=DataError)
def load_data():
    """CIFAR-10 as Keras gives it (channels last): ``(x_train, y_train), (x_test,
    y_test)``, images uint8 ``(50000, 32, 32, 3)`` / ``(10000, 32, 32, 3)``, labels uint8
    ``(50000, 1)`` / ``(10000, 1)`` in 0..9 (airplane, automobile, bird, cat, deer, dog,
    frog, horse, ship, truck).

    Raises `tg.data.DataError` when the folder is not there (saying where to put it) or
    a batch is missing, damaged or refused (a pickle naming anything beyond numpy's
    array reconstruction).

    Example::

        (x_train, y_train), _ = tf.keras.datasets.cifar10.load_data()
        x_train[0].shape    # (32, 32, 3)
    """
    folder = find_dir("cifar10", _FOLDERS, _NOTE)
    train = [load_batch(os.path.join(folder, f"data_batch_{i}"), "labels", 10)
             for i in range(1, 6)]
    x_test, y_test = load_batch(os.path.join(folder, "test_batch"), "labels", 10)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train]).astype(np.uint8)
    return ((x_train.transpose(0, 2, 3, 1), y_train.reshape(-1, 1)),
            (x_test.transpose(0, 2, 3, 1), y_test.astype(np.uint8).reshape(-1, 1)))
