"""``keras.datasets.mnist``: the MNIST digits from the file Keras downloaded.

Reads ``mnist.npz`` (arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``) from the
Keras cache folder, ``$KERAS_HOME/datasets/`` or ``~/.keras/datasets/``. Never downloads.

Example::

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    x_train.shape, x_train.dtype        # (60000, 28, 28) uint8
"""

from __future__ import annotations

from ...data._errors import DataError
from ...errors import public
from ._cache import find_file
from ._npz import load_npz


@public("keras.datasets.mnist.load_data", kind=DataError)
def load_data(path="mnist.npz"):
    """The MNIST digits as Keras gives them: ``(x_train, y_train), (x_test, y_test)``,
    images uint8 ``(60000, 28, 28)`` / ``(10000, 28, 28)`` with pixels 0..255, labels
    uint8 ``(60000,)`` / ``(10000,)`` in 0..9.

    Arguments:
        path: the file's name in the Keras datasets folder (as Keras' ``path=``), or an
            absolute path.

    Raises `tg.data.DataError` when the file is not there (saying where to put it) or
    is damaged.

    Example::

        (x_train, y_train), _ = tf.keras.datasets.mnist.load_data()
        y_train[:3]         # array([5, 0, 4], dtype=uint8)
    """
    file = find_file("mnist", [path])
    a = load_npz(file, ["x_train", "y_train", "x_test", "y_test"])
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{file}: x_{split} is {x.dtype}{list(x.shape)} and y_{split} "
                            f"{y.dtype}{list(y.shape)}; MNIST holds images [N, rows, cols] "
                            f"and labels [N]")
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])
