"""The IDX file format of MNIST and Fashion-MNIST, read from a local folder.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type code,
``NN`` the number of dimensions), ``NN`` big-endian uint32 sizes, then the elements in
big-endian C order. Files may be gzip-compressed (detected from their first bytes, not
their name).

NOTE: every field is checked before anything is allocated: the payload must be exactly
the size the header declares (a forged header cannot make us allocate more than the file
holds, and a gzip stream is read in chunks up to the declared size plus one byte), and
every problem raises `IDXError` naming the file — never a numpy or struct traceback.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ._dataset import Dataset, standardize_pair
from ._errors import DataError, IDXError

# IDX type code -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_MAX_DIMS = 8


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a native-endian numpy array.

    Raises `tg.data.IDXError` for a malformed file (naming the file and the problem),
    `FileNotFoundError` for a missing one.

    Example::

        labels = tg.data.read_idx("mnist/t10k-labels-idx1-ubyte.gz")   # uint8[10000]
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    try:
        if gzipped:
            with gzip.open(path, "rb") as f:
                return _parse(f, path, None)
        with open(path, "rb") as f:
            return _parse(f, path, os.fstat(f.fileno()).st_size)
    except (OSError, EOFError, zlib.error) as e:
        if not gzipped:
            raise  # an I/O error of the disk, not a malformed file
        raise IDXError(f"{path}: damaged gzip stream ({type(e).__name__}: {e})") from None


def _parse(f, path: str, file_size: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4:
        raise IDXError(f"{path}: truncated header: {len(magic)} bytes, an IDX file starts "
                       f"with a 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXError(f"{path}: bad magic number 0x{magic.hex()} (not an IDX file; an IDX "
                       f"magic number starts with two zero bytes)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: unsupported IDX element type code 0x{code:02X} "
                       f"(known: {known})")
    if not 1 <= ndim <= _MAX_DIMS:
        raise IDXError(f"{path}: unsupported number of dimensions {ndim} "
                       f"(expected 1 to {_MAX_DIMS})")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions declared, but the "
                       f"file ends inside the dimension sizes")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, ">u4"))
    dtype = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d
    expected = count * dtype.itemsize
    header = 4 + 4 * ndim
    if file_size is not None:
        actual = file_size - header
        if actual != expected:
            _size_error(path, dims, dtype, expected, actual)
        payload = f.read(expected)
    else:
        payload = _read_at_most(f, expected + 1)
        if len(payload) != expected:
            _size_error(path, dims, dtype, expected, len(payload), more=len(payload) > expected)
    if len(payload) != expected:  # the file shrank while we read it
        _size_error(path, dims, dtype, expected, len(payload))
    return np.frombuffer(payload, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _size_error(path, dims, dtype, expected, actual, more=None):
    shape = "x".join(map(str, dims))
    if actual < expected:
        problem = f"truncated payload: {actual} bytes, the header declares {expected}"
    elif more is None:
        problem = f"oversized payload: {actual} bytes, the header declares {expected}"
    else:
        problem = f"oversized payload: more than the {expected} bytes the header declares"
    raise IDXError(f"{path}: {problem} ({shape} elements of {dtype.name})")


def _read_at_most(f, limit: int) -> bytes:
    # Chunked so a forged size never becomes one huge allocation.
    parts, n = [], 0
    while n < limit:
        part = f.read(min(_CHUNK, limit - n))
        if not part:
            break
        parts.append(part)
        n += len(part)
    return b"".join(parts)


# MNIST and Fashion-MNIST use the same four file names; some mirrors write a dot.
_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(data_dir: str, stem: str) -> str:
    dotted = stem.replace("-idx", ".idx")
    candidates = [stem, stem + ".gz", dotted, dotted + ".gz"]
    for name in candidates:
        p = os.path.join(data_dir, name)
        if os.path.isfile(p):
            return p
    raise DataError(f"{data_dir}: no {stem} file (looked for {', '.join(candidates)})")


def _load_split(data_dir: str, split: str, num_classes: int):
    images_path = _find(data_dir, _SPLITS[split][0])
    labels_path = _find(data_dir, _SPLITS[split][1])
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{images_path}: expected uint8 images [N, rows, cols], got "
                       f"{images.dtype}{list(images.shape)}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(f"{labels_path}: expected uint8 labels [N], got "
                       f"{labels.dtype}{list(labels.shape)}")
    if len(images) != len(labels):
        raise IDXError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                       f"{len(labels)} labels")
    if len(labels) and int(labels.max()) >= num_classes:
        raise IDXError(f"{labels_path}: label {int(labels.max())} is out of range for "
                       f"{num_classes} classes")
    return images, labels


def load_mnist(
    data_dir, *, image: bool = False, standardize: bool = False, num_classes: int = 10
) -> Dataset:
    """MNIST or Fashion-MNIST from a local folder holding the four IDX files
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``). Nothing is downloaded.

    Arguments:
        data_dir: the folder.
        image: give ``x`` as NCHW images ``(N, 1, rows, cols)`` instead of flat rows.
        standardize: subtract the training images' mean pixel value and divide by their
            standard deviation; otherwise pixels are scaled from 0..255 to 0..1.
        num_classes: labels must lie in ``range(num_classes)``.

    Raises `tg.data.IDXError` for a malformed file, `tg.data.DataError` for a missing one.

    Example::

        ds = tg.data.load_mnist("~/data/fashion-mnist", image=True)
        ds.x_train.shape        # (60000, 1, 28, 28)
    """
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: no such folder (load_mnist reads local IDX files)")
    splits = {s: _load_split(data_dir, s, num_classes) for s in _SPLITS}
    (xtr, ytr), (xte, yte) = splits["train"], splits["test"]
    if xtr.shape[1:] != xte.shape[1:]:
        raise IDXError(f"{data_dir}: train images are {xtr.shape[1]}x{xtr.shape[2]} but "
                       f"test images are {xte.shape[1]}x{xte.shape[2]}")

    def form(x):
        x = x.astype(np.float32) / np.float32(255.0)
        return x[:, None] if image else x.reshape(len(x), -1)

    x_train, x_test = form(xtr), form(xte)
    mean = std = None
    if standardize:
        x_train, x_test, mean, std = standardize_pair(x_train, x_test, per_feature=False)
    name = os.path.basename(os.path.normpath(data_dir)) or "mnist"
    return Dataset(name, x_train, ytr.astype(np.int32), x_test, yte.astype(np.int32),
                   num_classes, mean, std)
