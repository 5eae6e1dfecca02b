"""``tg.data``: real data sets that need no download, and a deterministic batcher.

- `load_digits`, `load_breast_cancer` — scikit-learn's bundled sets (optional extra).
- `load_mnist`, `read_idx` — MNIST / Fashion-MNIST IDX files from a local folder.
- `load_pydoc_corpus`, `char_windows` — characters of Python's own documentation text.
- `batches` — minibatches, shuffled from a ``tg.random`` key or an int seed.

Everything is numpy on the host; no JAX computation runs here.

Example::

    ds = tg.data.load_digits(seed=0)
    for batch in tg.data.batches(ds.train, 64, seed=0, epochs=3):
        ...
"""

from ._batching import Batches, batches
from ._dataset import Dataset
from ._errors import DataError, IDXError
from ._idx import load_mnist, read_idx
from ._sklearn import load_breast_cancer, load_digits
from ._text import CharCorpus, char_windows, corpus_from_text, load_pydoc_corpus

__all__ = [
    "Batches", "CharCorpus", "DataError", "Dataset", "IDXError", "batches", "char_windows",
    "corpus_from_text", "load_breast_cancer", "load_digits", "load_mnist",
    "load_pydoc_corpus", "read_idx",
]
