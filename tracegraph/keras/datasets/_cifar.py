"""One batch file of CIFAR-10 / CIFAR-100 ("python version"), read safely.

A batch is a pickled dict: ``b"data"`` a uint8 array ``[N, 3072]`` (each row the red,
green and blue 32x32 planes), the labels under ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` / ``b"coarse_labels"`` (CIFAR-100) as a list of ints, plus names
we do not use. The dict is read with the restricted unpickler of `_unpickle`; the array's
width, the labels' count, type and range are checked before anything is reshaped.

Example::

    x, y = load_batch(".../cifar-10-batches-py/test_batch", "labels", 10)
    x.shape, y.dtype    # (10000, 3, 32, 32) int64
"""

from __future__ import annotations

import os

import numpy as np

from ...data._errors import DataError
from ._unpickle import as_array, unpickle

_ROW = 3 * 32 * 32


def load_batch(path: str, label_key: str, num_classes: int):
    """``(x, labels)`` of one batch: uint8 ``[N, 3, 32, 32]`` (channels first, as stored)
    and int64 ``[N]``, as Keras' ``keras.src.datasets.cifar.load_batch`` gives them."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing (the CIFAR folder holds no {os.path.basename(path)})")
    with open(path, "rb") as f:
        batch = unpickle(path, f.read())
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (a pickled {type(batch).__name__}, "
                        f"not a dict)")
    # Python 2 wrote str keys, read back as bytes; accept str keys of a rewritten file
    fields = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", label_key):
        if key not in fields:
            have = ", ".join(sorted(map(str, fields)))
            raise DataError(f"{path}: not a CIFAR batch: no {key!r} entry (it has: {have})")
    data = as_array(fields["data"], path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        raise DataError(f"{path}: 'data' is {data.dtype}{list(data.shape)}, a CIFAR batch "
                        f"holds uint8[N, {_ROW}]")
    labels = fields[label_key]
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise DataError(f"{path}: {label_key!r} is not a list of ints")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} {label_key}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise DataError(f"{path}: a {label_key} value does not fit int64") from None
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{path}: {label_key} value {int(y.min() if y.min() < 0 else y.max())}"
                        f" is out of range for {num_classes} classes")
    return data.reshape(len(data), 3, 32, 32), y
