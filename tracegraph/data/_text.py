"""A character-level text corpus that needs no download: the documentation topics that
ship with Python itself (``pydoc_data.topics``, the text behind ``help("if")``).

The text is the same on every machine with the same Python version (the topics are
joined in sorted key order), about 465,000 characters over about 100 distinct ones.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from ._errors import DataError


@dataclass(frozen=True, eq=False)
class CharCorpus:
    """A text encoded character by character, split into train and validation ids.

    Attributes:
        text: the whole text.
        vocab: its distinct characters, sorted; id ``i`` is ``vocab[i]``.
        train, validation: int32 ids of the first and last part of the text.
        unigram_entropy: bits per character of the training text's character
            frequencies — what a model that ignores context scores at best; a sequence
            model should reach well below it.

    Example::

        corpus = tg.data.load_pydoc_corpus()
        x, y = corpus.windows("train", 64)       # int32[N, 64] each; y is x shifted by 1
        corpus.decode(x[0])
    """

    text: str
    vocab: str
    train: np.ndarray
    validation: np.ndarray
    unigram_entropy: float
    _codes: np.ndarray = field(repr=False)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of ``text``; a character outside the vocabulary is a `DataError`."""
        return _encode(text, self._codes, self.vocab)

    def decode(self, ids) -> str:
        """The text of a sequence of ids (a list, numpy or jax array)."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "ui" or ids.min() < 0 or ids.max() >= len(self.vocab)):
            raise DataError(f"decode: ids must be ints in [0, {len(self.vocab)}), got "
                            f"{ids.dtype} values in [{ids.min()}, {ids.max()}]")
        return "".join(self.vocab[i] for i in ids.tolist())

    def windows(self, split: str = "train", seq_len: int = 128, *, stride: int | None = None):
        """``(inputs, targets)`` windows of ``split`` for next-character prediction;
        see `char_windows`."""
        if split not in ("train", "validation"):
            raise DataError(f"windows: split must be 'train' or 'validation', got {split!r}")
        return char_windows(getattr(self, split), seq_len, stride=stride)

    def __repr__(self) -> str:
        return (f"CharCorpus({len(self.text)} chars, vocab {len(self.vocab)}, "
                f"train {len(self.train)}, validation {len(self.validation)}, "
                f"unigram entropy {self.unigram_entropy:.3f} bits/char)")


def load_pydoc_corpus(
    *, validation_fraction: float = 0.1, max_chars: int | None = None
) -> CharCorpus:
    """The pydoc topics text as a `CharCorpus`: the first ``1 - validation_fraction`` of
    the text for training, the rest for validation (contiguous, so no window straddles
    both). ``max_chars`` keeps only the start of the text (for quick runs).

    Example::

        corpus = tg.data.load_pydoc_corpus(max_chars=100_000)
        corpus.vocab_size, corpus.unigram_entropy
    """
    try:
        f = float(validation_fraction)
    except (TypeError, ValueError):
        f = -1.0
    if not 0.0 < f < 1.0:
        raise DataError(f"load_pydoc_corpus: validation_fraction must be in (0, 1), "
                        f"got {validation_fraction!r}")
    try:
        # NOTE: the stdlib module is imported only when the corpus is wanted; some
        # trimmed Python builds leave it out, which should not break `import tracegraph`.
        topics = importlib.import_module("pydoc_data.topics").topics
    except (ImportError, AttributeError) as e:
        raise DataError(f"load_pydoc_corpus: this Python has no pydoc_data.topics ({e})") from None
    text = "".join(topics[k] for k in sorted(topics))
    if max_chars is not None:
        if max_chars < 2:
            raise DataError(f"load_pydoc_corpus: max_chars must be at least 2, got {max_chars!r}")
        text = text[: int(max_chars)]
    return corpus_from_text(text, validation_fraction=f)


def corpus_from_text(text: str, *, validation_fraction: float = 0.1) -> CharCorpus:
    """A `CharCorpus` of any text (vocabulary: its sorted distinct characters)."""
    if len(text) < 2:
        raise DataError("a corpus needs at least 2 characters")
    vocab = "".join(sorted(set(text)))
    codes = np.array([ord(c) for c in vocab], np.uint32)
    ids = _encode(text, codes, vocab)
    n_val = max(1, round(len(ids) * validation_fraction))
    n_val = min(n_val, len(ids) - 1)
    train, validation = ids[:-n_val], ids[-n_val:]
    counts = np.bincount(train, minlength=len(vocab))
    p = counts[counts > 0] / len(train)
    entropy = float(-(p * np.log2(p)).sum())
    return CharCorpus(text, vocab, train, validation, entropy, codes)


def _encode(text: str, codes: np.ndarray, vocab: str) -> np.ndarray:
    # Vectorized: code points of the text looked up in the sorted code points of vocab.
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    ids = np.searchsorted(codes, points)
    bad = (ids >= len(codes)) | (codes[np.minimum(ids, len(codes) - 1)] != points)
    if bad.any():
        missing = sorted({text[i] for i in np.flatnonzero(bad)[:100].tolist()})
        raise DataError(f"encode: characters not in the vocabulary: {missing!r}")
    return ids.astype(np.int32)


def char_windows(ids, seq_len: int, *, stride: int | None = None):
    """``(inputs, targets)``, both int32 ``[N, seq_len]``: window ``k`` starts at
    ``k * stride`` and ``targets`` is ``inputs`` shifted by one character, for
    next-character prediction. ``stride`` defaults to ``seq_len`` (no overlap); a small
    stride gives more, overlapping windows (``N * seq_len`` ids each, so mind memory).

    Example::

        x, y = tg.data.char_windows(np.arange(10), 4)    # x[0] = 0 1 2 3, y[0] = 1 2 3 4
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "ui":
        raise DataError(f"char_windows: ids must be a 1-D int array, got {ids.dtype}{list(ids.shape)}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise DataError(f"char_windows: seq_len must be a positive int, got {seq_len!r}")
    stride = seq_len if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise DataError(f"char_windows: stride must be a positive int, got {stride!r}")
    if len(ids) < seq_len + 1:
        raise DataError(f"char_windows: {len(ids)} ids are too few for one window of "
                        f"{seq_len} inputs plus its shifted targets")
    view = np.lib.stride_tricks.sliding_window_view
    inputs = view(ids[:-1], seq_len)[::stride]
    targets = view(ids[1:], seq_len)[::stride]
    return inputs.astype(np.int32), targets.astype(np.int32)
