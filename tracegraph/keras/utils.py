"""``tf.keras.utils``: Keras' data utilities, in numpy on the host.

- `to_categorical` — class indices to one-hot rows (float32).
- `normalize` — divide by the ``order``-norm along an axis.
- `pad_sequences` — ragged sequences to one ``[N, maxlen]`` array.
- `set_random_seed` — seed Python's, numpy's and tracegraph's global generators.

Each accepts lists, numpy arrays, JAX arrays and (concrete) tracegraph tensors, and
returns numpy arrays. A mistake in a call raises a `tg.data.DataError` that is also the
``ValueError`` / ``IndexError`` / ``TypeError`` Keras raises.

Example::

    import tracegraph as tf
    tf.keras.utils.to_categorical([0, 2, 1], num_classes=3)
    # array([[1., 0., 0.], [0., 0., 1.], [0., 1., 0.]], dtype=float32)
"""

from __future__ import annotations

import random

import numpy as np

from ..data._errors import DataError
from ..errors import public
from ..frontend.fn_random import manual_seed

__all__ = ["normalize", "pad_sequences", "set_random_seed", "to_categorical"]


@public("keras.utils.to_categorical", kind=DataError)
def to_categorical(x, num_classes=None):
    """Class indices to a one-hot matrix, the class axis last: ``x`` of shape ``S`` gives
    ``S + (num_classes,)``; a trailing axis of size 1 is dropped first (``(N, 1)`` labels
    give ``(N, num_classes)``), as Keras does.

    Arguments:
        x: integer class indices (floats are truncated to integers, as in Keras).
        num_classes: the number of classes; ``None`` (or 0): ``max(x) + 1``.

    Returns:
        A float32 numpy array of zeros and ones (the dtype Keras gives a tensor; for a
        numpy input Keras gives the same values as float64).

    Example::

        tf.keras.utils.to_categorical(np.array([[1], [0]]))
        # array([[0., 1.], [1., 0.]], dtype=float32)
    """
    x = np.asarray(x)
    x = x.astype(np.int64) if x.dtype != np.int64 else x
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if not num_classes:
        if x.size == 0:
            raise ValueError("cannot infer num_classes from an empty x; pass num_classes")
        num_classes = int(x.max()) + 1
    num_classes = int(num_classes)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        bad = int(x.min()) if x.min() < 0 else int(x.max())
        raise IndexError(f"class index {bad} is out of range for num_classes={num_classes}")
    out = np.zeros((x.size, num_classes), dtype=np.float32)
    out[np.arange(x.size), x] = 1
    return out.reshape(shape + (num_classes,))


@public("keras.utils.normalize", kind=DataError)
def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (``np.linalg.norm``'s ``ord``);
    an all-zero slice stays zero.

    Example::

        tf.keras.utils.normalize(np.array([[3.0, 4.0]]))
        # array([[0.6, 0.8]])
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    # Keras' numpy path writes `axis or -1`, which divides along the wrong axis for
    # axis=0; its tensor path (and this) expand the axis the norm was taken along.
    return x / np.expand_dims(norm, -1 if axis is None else axis)


@public("keras.utils.pad_sequences", kind=DataError)
def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or cut) each sequence to ``maxlen`` and stack them: ``[len(sequences),
    maxlen] + sample_shape``, as Keras' ``pad_sequences``.

    Arguments:
        sequences: a list of sequences (lists or arrays; their elements may be arrays
            of one common shape).
        maxlen: the length; ``None``: the longest sequence's.
        dtype: of the result (``object`` or a string dtype for string values).
        padding: ``"pre"`` or ``"post"``: where the padding goes.
        truncating: ``"pre"`` or ``"post"``: which end of a longer sequence is cut.
        value: the padding value.

    Example::

        tf.keras.utils.pad_sequences([[1], [2, 3]], padding="post")
        # array([[1, 0], [2, 3]], dtype=int32)
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    num_samples = len(sequences)
    lengths = []
    sample_shape = ()
    found = False
    for s in sequences:
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: "
                             f"{s}") from None
        if not found and len(s):
            sample_shape = np.asarray(s).shape[1:]
            found = True
    if maxlen is None:
        if not lengths:
            raise ValueError("cannot infer maxlen from no sequences; pass maxlen")
        maxlen = int(np.max(lengths))
    is_text = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: "
                         f"{type(value)}\nYou should set `dtype=object` for variable length "
                         f"strings.")
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood')
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood')
    out = np.full((num_samples, maxlen) + sample_shape, value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        # s[-maxlen:] with maxlen=0 is the whole sequence (Keras then fails on it too)
        cut = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if cut.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {cut.shape[1:]} of sequence at position {i} "
                             f"is different from expected shape {sample_shape}")
        if padding == "post":
            out[i, :len(cut)] = cut
        else:
            out[i, -len(cut):] = cut
    return out


@public("keras.utils.set_random_seed", kind=DataError)
def set_random_seed(seed):
    """Seed Python's ``random``, numpy's global generator and tracegraph's global key
    stream (`tg.manual_seed`: layers built without a key, ``tg.random.normal(shape)``,
    ``fit``'s shuffling), as Keras seeds Python, numpy and its backend.

    Example::

        tf.keras.utils.set_random_seed(0)
    """
    if not isinstance(seed, int):
        raise ValueError(  # noqa: TRY004 - Keras raises ValueError here
            f"Expected `seed` argument to be an integer. Received: seed={seed} (of type "
            f"{type(seed)})")
    random.seed(seed)
    np.random.seed(seed)
    manual_seed(seed)
