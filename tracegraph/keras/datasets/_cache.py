"""Where Keras keeps the data sets it downloaded, and the error for one that is not there.

Keras' ``get_file`` caches under ``$KERAS_HOME/datasets/`` when the ``KERAS_HOME``
environment variable is set, else under ``~/.keras/datasets/``; when that folder's parent
is not writable it falls back to ``/tmp/.keras/datasets/``. The loaders here look in the
same places (reading ``KERAS_HOME`` at each call, not at import) and never download.

Example::

    find_file("mnist", ["mnist.npz"])     # '/home/me/.keras/datasets/mnist.npz'
"""

from __future__ import annotations

import os
import tempfile

from ...data._errors import DataError


def keras_home() -> str:
    """The Keras cache root: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when the
    home folder is not writable), as ``keras.src.backend.config`` decides it."""
    if "KERAS_HOME" in os.environ:
        return os.path.expanduser(os.environ["KERAS_HOME"])
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def datasets_dirs() -> list[str]:
    """The folders Keras may have downloaded data sets into, the usual one first."""
    home = keras_home()
    dirs = [os.path.join(home, "datasets")]
    if not _writable(home):  # get_file's fallback for a read-only cache root
        tmp = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        dirs.append(os.path.join(tmp, ".keras", "datasets"))
    return dirs


def _writable(path: str) -> bool:
    # Keras creates its cache root on import, so a missing one counts as writable when
    # its nearest existing parent is
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK)


def _candidates(relpaths) -> list[str]:
    # an absolute relpath (a user's path=) stands for itself: os.path.join keeps it
    seen: dict[str, None] = {}
    for d in datasets_dirs():
        for rel in relpaths:
            seen[os.path.join(d, os.path.expanduser(os.fspath(rel)))] = None
    return list(seen)


def find_file(dataset: str, relpaths, note: str = "") -> str:
    """The first existing file among ``relpaths`` (relative to the Keras datasets
    folder, or absolute; the first is where Keras 3 puts it), else the `DataError`
    saying what to put where."""
    looked = _candidates(relpaths)
    for p in looked:
        if os.path.isfile(p):
            return p
    raise missing(dataset, looked, note)


def find_dir(dataset: str, relpaths, note: str = "") -> str:
    """The first existing folder among ``relpaths``, else the missing-data-set error."""
    looked = _candidates(relpaths)
    for p in looked:
        if os.path.isdir(p):
            return p
    raise missing(dataset, looked, note)


def missing(dataset: str, looked: list[str], note: str = "") -> DataError:
    """The one error of a data set that is not in the Keras cache: which file to put
    into which folder (``looked[0]``, where Keras 3 keeps it)."""
    folder, name = os.path.split(looked[0])
    note = f" ({note})" if note else ""
    return DataError(
        f"keras.datasets.{dataset}.load_data: {name} is not in {folder} (looked at: "
        f"{', '.join(looked)}). tracegraph never downloads data sets: put {name}{note} "
        f"into {folder}, where Keras' own keras.datasets.{dataset}.load_data() keeps it "
        f"after its download (copy it from a machine where that ran), or set KERAS_HOME "
        f"to a folder whose datasets/ subfolder holds it.")
