"""``keras.datasets.cifar100``: CIFAR-100 from the folder Keras extracted.

Keras 3 extracts ``cifar-100-python.tar.gz`` to
``$KERAS_HOME/datasets/cifar-100-python-target/cifar-100-python/`` (Keras 2 and early
Keras 3 to ``datasets/cifar-100-python/``; both are looked for, the newer first). The
files ``train`` and ``test`` are read with a restricted unpickler that runs nothing from
the file. Never downloads.

Example::

    (x_train, y_train), _ = tf.keras.datasets.cifar100.load_data(label_mode="coarse")
    x_train.shape, int(y_train.max())   # (50000, 32, 32, 3) 19
"""

from __future__ import annotations

import os

from ...data._errors import DataError
from ...errors import public
from ._cache import find_dir
from ._cifar import load_batch

_FOLDERS = [os.path.join("cifar-100-python-target", "cifar-100-python"), "cifar-100-python"]
_NOTE = "the folder extracted from cifar-100-python.tar.gz, with train and test"
_CLASSES = {"fine": 100, "coarse": 20}


@public("keras.datasets.cifar100.load_data", kind=DataError)
def load_data(label_mode="fine"):
    """CIFAR-100 as Keras gives it (channels last): ``(x_train, y_train), (x_test,
    y_test)``, images uint8 ``(50000, 32, 32, 3)`` / ``(10000, 32, 32, 3)``, labels
    ``(50000, 1)`` / ``(10000, 1)`` (int64, as Keras' own loader returns them).

    Arguments:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Raises `tg.data.DataError` for another ``label_mode``, when the folder is not there
    (saying where to put it), or when a file is missing, damaged or refused.

    Example::

        (x_train, y_train), _ = tf.keras.datasets.cifar100.load_data()
        int(y_train.max())  # 99
    """
    if label_mode not in _CLASSES:
        raise DataError(f'label_mode must be one of "fine", "coarse". Received: '
                        f"label_mode={label_mode!r}")
    folder = find_dir("cifar100", _FOLDERS, _NOTE)
    key, n = f"{label_mode}_labels", _CLASSES[label_mode]
    x_train, y_train = load_batch(os.path.join(folder, "train"), key, n)
    x_test, y_test = load_batch(os.path.join(folder, "test"), key, n)
    return ((x_train.transpose(0, 2, 3, 1), y_train.reshape(-1, 1)),
            (x_test.transpose(0, 2, 3, 1), y_test.reshape(-1, 1)))
