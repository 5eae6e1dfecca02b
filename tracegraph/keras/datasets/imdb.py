"""``keras.datasets.imdb``: the IMDB reviews as word indices, from the files Keras
downloaded (``imdb.npz``, ``imdb_word_index.json`` in the Keras datasets folder), with
Keras' shuffling, index shifting, filtering and out-of-vocabulary rules. Never downloads.

The ``.npz`` keeps the ragged reviews as numpy object arrays (a pickle); they are rebuilt
by a restricted unpickler that allows plain lists of ints and numpy's array
reconstruction only.

Example::

    (x_train, y_train), _ = tf.keras.datasets.imdb.load_data(num_words=10000)
    x_train[0][:3], y_train.shape       # [1, 14, 22] (25000,)
"""

from __future__ import annotations

import json

import numpy as np

from ...data._errors import DataError
from ...errors import public
from ._cache import find_file
from ._npz import load_npz


def _sequences(a, file: str, key: str) -> list[list[int]]:
    seqs = a[key]
    if seqs.ndim not in (1, 2):  # an object array of lists, or equal lengths as a matrix
        raise DataError(f"{file}: {key} is {seqs.dtype}{list(seqs.shape)}, not sequences")
    out = []
    for s in seqs:
        s = s.tolist() if isinstance(s, np.ndarray) else s
        if not isinstance(s, list) or not all(type(w) is int for w in s):
            raise DataError(f"{file}: {key} holds a {type(s).__name__} that is not a list "
                            f"of word indices")
        out.append(s)
    return out


@public("keras.datasets.imdb.load_data", kind=DataError)
def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113,
              start_char=1, oov_char=2, index_from=3, **kwargs):
    """``(x_train, y_train), (x_test, y_test)`` as Keras' loader gives them: reviews as
    object arrays of lists of word indices, labels (0 negative, 1 positive) as arrays.

    Arguments (Keras' own):
        path: the file's name in the Keras datasets folder, or an absolute path.
        num_words: keep the ``num_words`` most frequent words; rarer ones become
            ``oov_char`` (or are dropped when ``oov_char`` is None).
        skip_top: the most frequent words to treat the same way.
        maxlen: drop the reviews that are not shorter than ``maxlen``.
        seed: the shuffle's seed.
        start_char: put in front of every review (None: nothing).
        oov_char: the out-of-vocabulary index.
        index_from: added to every word index.
        **kwargs: accepted and ignored, as Keras 3 does.

    Raises `tg.data.DataError` when the file is not there (saying where to put it), is
    damaged or refused, or when ``maxlen`` leaves no review.

    Example::

        (x_train, y_train), _ = tf.keras.datasets.imdb.load_data(maxlen=100)
        max(map(len, x_train)) < 100        # True
    """
    file = find_file("imdb", [path])
    a = load_npz(file, ["x_train", "y_train", "x_test", "y_test"], allow_object=True)
    for key in ("y_train", "y_test"):
        if a[key].dtype == object or a[key].ndim != 1:
            raise DataError(f"{file}: {key} is {a[key].dtype}{list(a[key].shape)}, not labels")
    x_train, labels_train = _sequences(a, file, "x_train"), a["y_train"]
    x_test, labels_test = _sequences(a, file, "x_test"), a["y_test"]
    if len(x_train) != len(labels_train) or len(x_test) != len(labels_test):
        raise DataError(f"{file}: {len(x_train)}/{len(x_test)} reviews but "
                        f"{len(labels_train)}/{len(labels_test)} labels")

    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train, labels_train = [x_train[i] for i in indices], labels_train[indices]
    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test, labels_test = [x_test[i] for i in indices], labels_test[indices]

    if start_char is not None:
        x_train = [[start_char] + [w + index_from for w in x] for x in x_train]
        x_test = [[start_char] + [w + index_from for w in x] for x in x_test]
    elif index_from:
        x_train = [[w + index_from for w in x] for x in x_train]
        x_test = [[w + index_from for w in x] for x in x_test]

    if maxlen:
        x_train, labels_train = _shorter_than(maxlen, x_train, labels_train)
        x_test, labels_test = _shorter_than(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise DataError(f"After filtering for sequences shorter than maxlen={maxlen}, "
                            f"no sequence was kept. Increase maxlen.")

    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])
    if not num_words:
        num_words = max(max(x) for x in xs if x) if any(xs) else 0
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]

    idx = len(x_train)
    return ((np.array(xs[:idx], dtype="object"), labels[:idx]),
            (np.array(xs[idx:], dtype="object"), labels[idx:]))


def _shorter_than(maxlen, seqs, labels):
    # Keras' remove_long_seq: keeps len(x) < maxlen (a review of exactly maxlen goes)
    keep = [i for i, x in enumerate(seqs) if len(x) < maxlen]
    return [seqs[i] for i in keep], labels[np.asarray(keep, dtype=np.int64)]


@public("keras.datasets.imdb.get_word_index", kind=DataError)
def get_word_index(path="imdb_word_index.json"):
    """The dict from word to its index (before ``index_from`` is added), read from the
    file Keras downloaded.

    Example::

        word_index = tf.keras.datasets.imdb.get_word_index()
        word_index["the"]   # 1
    """
    file = find_file("imdb", [path])
    try:
        with open(file, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{file}: not a JSON word index ({e})") from None
    if not isinstance(index, dict) or not all(type(v) is int for v in index.values()):
        raise DataError(f"{file}: not a word index (a JSON object from word to int)")
    return index
