"""tf.keras.datasets and tf.keras.utils against Keras 3 itself.

Small fake data sets are written in exactly the layout Keras' own download leaves in its
cache folder (``$KERAS_HOME/datasets/...``), then read by tracegraph and, where Keras is
installed, by ``keras.datasets.X.load_data()`` pointed at the same folder (its hash check
is patched out, and its downloader replaced by a failure: nothing is ever downloaded).
CIFAR batches are written as Python 2's cPickle with numpy 1.x wrote the originals. Also:
the missing-file error, refused malicious pickles, damaged files."""

import gzip
import io
import os
import pickle
import struct
import tarfile
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.data import DataError, IDXError
from tracegraph.keras import datasets, utils

RNG = np.random.default_rng(0)


# -- writing fake data sets in Keras' layout ---------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Keras cache folder, named by KERAS_HOME: returns its datasets/."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    d = tmp_path / "datasets"
    d.mkdir()
    return d


@pytest.fixture
def keras(tmp_path, monkeypatch):
    """Keras 3 (JAX backend) reading the same cache folder as ``cache``, offline."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def no_download(*args, **kwargs):
        raise AssertionError("the test made Keras try to download")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # Keras reads KERAS_HOME at import
    monkeypatch.setattr(file_utils, "validate_file", lambda *a, **k: True)  # fake files' hashes
    monkeypatch.setattr(file_utils, "urlretrieve", no_download)
    return keras


def py2_pickle(batch: dict) -> bytes:
    """``batch`` as Python 2's ``cPickle.dump(batch, f, 2)`` with numpy 1.x writes it (the
    CIFAR originals): str as SHORT_BINSTRING/BINSTRING, a uint8 array as
    ``numpy.core.multiarray._reconstruct`` + ``numpy.dtype('u1')`` + raw bytes."""
    out = [b"\x80\x02"]

    def string(s):
        out.append(b"U" + bytes([len(s)]) + s if len(s) < 256 else b"T" + struct.pack("<i", len(s)) + s)

    def integer(i):
        if 0 <= i < 256:
            out.append(b"K" + bytes([i]))
        elif 0 <= i < 65536:
            out.append(b"M" + struct.pack("<H", i))
        else:
            out.append(b"J" + struct.pack("<i", i))

    def value(v):
        if isinstance(v, np.ndarray):
            out.append(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            integer(0)
            out.append(b"\x85")
            string(b"b")
            out.append(b"\x87R(")
            integer(1)
            for d in v.shape:
                integer(d)
            out.append(b"\x86" if v.ndim == 2 else b"\x85")
            out.append(b"cnumpy\ndtype\n")
            string(b"u1")
            integer(0)
            integer(1)
            out.append(b"\x87R(")
            integer(3)
            string(b"|")
            out.append(b"NNN")
            integer(-1)
            integer(-1)
            integer(0)
            out.append(b"tb\x89")
            string(v.tobytes())
            out.append(b"tb")
        elif isinstance(v, list):
            out.append(b"](")
            for e in v:
                value(e)
            out.append(b"e")
        elif isinstance(v, int):
            integer(v)
        else:
            string(v.encode())

    out.append(b"}(")
    for k, v in batch.items():
        string(k.encode())
        value(v)
    out.append(b"u.")
    return b"".join(out)


def cifar_batch(n, label_keys, num_classes, seed):
    rng = np.random.default_rng(seed)
    batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    for key in label_keys:
        batch[key] = [int(v) for v in rng.integers(0, num_classes, n)]
    batch["batch_label"] = f"batch {seed}"
    batch["filenames"] = [f"img_{seed}_{i}.png" for i in range(n)]
    return batch


def write_cifar10(folder, n=(3, 4, 2, 5, 3), n_test=4):
    """Keras 3's extracted layout; returns the batches written (train ones, then test)."""
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = [cifar_batch(k, ["labels"], 10, i) for i, k in enumerate(list(n) + [n_test])]
    for name, b in zip(names, batches):
        (folder / name).write_bytes(py2_pickle(b))
    return batches


def tar_folder(src_dir, archive):
    with tarfile.open(archive, "w") as t:
        t.add(src_dir, arcname=src_dir.name)


def idx_gz(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes(), compresslevel=1))


def ragged(n, rng, top=40):
    seqs = np.empty(n, dtype=object)
    for i in range(n):
        seqs[i] = [int(v) for v in rng.integers(1, top, rng.integers(2, 12))]
    return seqs


def assert_same(ours, theirs):
    (a, b), (c, d) = ours
    (a2, b2), (c2, d2) = theirs
    for x, y in ((a, a2), (b, b2), (c, c2), (d, d2)):
        assert x.shape == y.shape and x.dtype == y.dtype
        if x.dtype == object:
            assert x.tolist() == y.tolist()
        else:
            np.testing.assert_array_equal(x, y)


# -- each data set: shapes, dtypes and values as Keras gives them ------------------------

def write_mnist(path, n=7, n_test=3):
    arrays = {"x_train": RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "y_train": RNG.integers(0, 10, n, dtype=np.uint8),
              "x_test": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": RNG.integers(0, 10, n_test, dtype=np.uint8)}
    np.savez_compressed(path, **arrays)
    return arrays


def test_mnist(cache, tmp_path):
    arrays = write_mnist(cache / "mnist.npz")
    (x, y), (xt, yt) = datasets.mnist.load_data()
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((7, 28, 28), np.uint8, (7,), np.uint8)
    np.testing.assert_array_equal(xt, arrays["x_test"])
    np.testing.assert_array_equal(yt, arrays["y_test"])
    x[0, 0, 0] = 1  # writable, as np.load gives them
    # path=: a name in the datasets folder, or an absolute path
    write_mnist(cache / "other.npz", n=2)
    assert datasets.mnist.load_data(path="other.npz")[0][0].shape == (2, 28, 28)
    write_mnist(tmp_path / "elsewhere.npz", n=4)
    assert len(datasets.mnist.load_data(path=str(tmp_path / "elsewhere.npz"))[0][1]) == 4


def test_mnist_matches_keras(cache, keras):
    write_mnist(cache / "mnist.npz")
    assert_same(datasets.mnist.load_data(), keras.datasets.mnist.load_data())


def test_fashion_mnist_matches_keras(cache, keras):
    folder = cache / "fashion-mnist"
    folder.mkdir()
    for split, n in (("train", 6), ("t10k", 4)):
        idx_gz(folder / f"{split}-images-idx3-ubyte.gz", RNG.integers(0, 256, (n, 28, 28)))
        idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", RNG.integers(0, 10, n))
    ours = datasets.fashion_mnist.load_data()
    assert ours[0][0].shape == (6, 28, 28) and ours[1][1].dtype == np.uint8
    assert_same(ours, keras.datasets.fashion_mnist.load_data())


def test_cifar10_in_keras_layout(cache):
    batches = write_cifar10(cache / "cifar-10-batches-py-target" / "cifar-10-batches-py")
    (x, y), (xt, yt) = datasets.cifar10.load_data()
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((17, 32, 32, 3), np.uint8, (17, 1), np.uint8)
    assert (xt.shape, yt.shape) == ((4, 32, 32, 3), (4, 1))
    first = batches[0]["data"][1].reshape(3, 32, 32).transpose(1, 2, 0)  # planes -> HWC
    np.testing.assert_array_equal(x[1], first)
    assert y[:, 0].tolist() == [v for b in batches[:5] for v in b["labels"]]
    assert yt[:, 0].tolist() == batches[5]["labels"]


def test_cifar10_older_layout(cache):
    write_cifar10(cache / "cifar-10-batches-py")  # Keras 2 / early Keras 3
    assert datasets.cifar10.load_data()[1][0].shape == (4, 32, 32, 3)


def test_cifar10_matches_keras_layout_and_batches(cache, keras, tmp_path):
    """Keras' own get_file extracts the archive the way cifar10.load_data asks it to, and
    Keras' batch reader agrees with ours (Keras' load_data itself needs 10000-image
    batches: see the slow test)."""
    from keras.src.datasets.cifar import load_batch
    from keras.src.utils.file_utils import get_file

    src = tmp_path / "src" / "cifar-10-batches-py"
    write_cifar10(src)
    tar_folder(src, cache / "cifar-10-batches-py-target_archive")
    path = get_file(fname="cifar-10-batches-py-target", origin="offline", extract=True)
    assert os.path.isfile(os.path.join(path, "cifar-10-batches-py", "test_batch"))
    _, (xt, yt) = datasets.cifar10.load_data()
    xk, yk = load_batch(os.path.join(path, "cifar-10-batches-py", "test_batch"))
    np.testing.assert_array_equal(xt, xk.transpose(0, 2, 3, 1))
    assert yt[:, 0].tolist() == list(yk)


@pytest.mark.slow
def test_cifar10_full_size_matches_keras(cache, keras, tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    write_cifar10(src, n=(10000,) * 5, n_test=100)
    tar_folder(src, cache / "cifar-10-batches-py-target_archive")
    theirs = keras.datasets.cifar10.load_data()
    assert_same(datasets.cifar10.load_data(), theirs)


def test_cifar100_matches_keras(cache, keras, tmp_path):
    src = tmp_path / "src" / "cifar-100-python"
    src.mkdir(parents=True)
    for name, n in (("train", 6), ("test", 3)):
        batch = cifar_batch(n, ["fine_labels", "coarse_labels"], 20, n)
        (src / name).write_bytes(py2_pickle(batch))
    # only the archive: Keras extracts it, then both read what Keras extracted
    tar_folder(src, cache / "cifar-100-python-target_archive")
    for mode in ("fine", "coarse"):
        theirs = keras.datasets.cifar100.load_data(label_mode=mode)
        ours = datasets.cifar100.load_data(label_mode=mode)
        assert ours[0][0].shape == (6, 32, 32, 3) and ours[0][1].shape == (6, 1)
        assert_same(ours, theirs)
    with pytest.raises(DataError, match="label_mode"):
        datasets.cifar100.load_data(label_mode="medium")


def test_boston_housing_matches_keras(cache, keras):
    np.savez(cache / "boston_housing.npz", x=RNG.normal(size=(30, 13)), y=RNG.normal(size=30))
    for kwargs in ({}, {"test_split": 0.3, "seed": 1}, {"test_split": 0.0}):
        ours = datasets.boston_housing.load_data(**kwargs)
        assert_same(ours, keras.datasets.boston_housing.load_data(**kwargs))
    assert ours[0][0].shape == (30, 13)
    with pytest.raises(DataError, match="test_split"):
        datasets.boston_housing.load_data(test_split=1.0)


def test_imdb_matches_keras(cache, keras):
    rng = np.random.default_rng(1)
    np.savez(cache / "imdb.npz", x_train=ragged(12, rng), y_train=rng.integers(0, 2, 12),
             x_test=ragged(8, rng), y_test=rng.integers(0, 2, 8))
    for kwargs in ({}, {"num_words": 20, "skip_top": 2}, {"maxlen": 8, "seed": 3},
                   {"start_char": None, "oov_char": None, "num_words": 25},
                   {"start_char": None, "index_from": 0}):
        ours = datasets.imdb.load_data(**kwargs)
        assert_same(ours, keras.datasets.imdb.load_data(**kwargs))
    assert ours[0][0].dtype == object and isinstance(ours[0][0][0], list)
    (cache / "imdb_word_index.json").write_text('{"the": 1, "and": 2}')
    assert datasets.imdb.get_word_index() == keras.datasets.imdb.get_word_index()


# -- where the files are looked for, and the one error when they are not there -----------

@pytest.mark.parametrize("name, file", [
    ("mnist", "mnist.npz"), ("fashion_mnist", "train-images-idx3-ubyte.gz"),
    ("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
    ("boston_housing", "boston_housing.npz"), ("imdb", "imdb.npz")])
def test_missing_file_says_what_to_put_where(cache, name, file):
    with pytest.raises(DataError) as info:
        getattr(datasets, name).load_data()
    msg = str(info.value)
    assert isinstance(info.value, tg.Error)
    assert file in msg and str(cache) in msg and "never downloads" in msg, msg


def test_default_cache_is_home_keras(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match=os.path.join(str(tmp_path), ".keras", "datasets")):
        datasets.mnist.load_data()
    (tmp_path / ".keras" / "datasets").mkdir(parents=True)
    write_mnist(tmp_path / ".keras" / "datasets" / "mnist.npz", n=2)
    assert datasets.mnist.load_data()[0][0].shape == (2, 28, 28)


def test_missing_batch_names_it(cache):
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_cifar10(folder)
    os.remove(folder / "data_batch_3")
    with pytest.raises(DataError, match="data_batch_3"):
        datasets.cifar10.load_data()


# -- nothing from a file is ever run; damaged files give the tracegraph error ------------

class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_cifar_pickle_is_refused_unrun(cache, tmp_path):
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_cifar10(folder)
    marker = tmp_path / "pwned"
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": RunsCode(marker), b"labels": []}))
    with pytest.raises(DataError, match=r"refusing.*system"):
        datasets.cifar10.load_data()
    assert not marker.exists()


@pytest.mark.parametrize("stream", [
    b"\x80\x02cbuiltins\neval\nX\x08\x00\x00\x001 + 1 + 1\x85R.",  # a global beyond numpy's
    # numpy.ndarray called directly with a huge shape: the stand-in is not callable
    b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x7f\x85\x85R.",
    # a forged array: shape 10^9 x 3072, payload 4 bytes (nothing that size is allocated)
    py2_pickle({"data": np.zeros((1, 4), np.uint8), "labels": [0]}).replace(
        b"K\x01K\x04\x86", b"J\x00\xca\x9a;M\x00\x0c\x86"),
    b"\x80\x02}q\x01(U\x04data",  # truncated
    b"not a pickle at all",
])
def test_hostile_or_damaged_batch_gives_data_error(cache, stream):
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_cifar10(folder)
    (folder / "test_batch").write_bytes(stream)
    with pytest.raises(DataError, match="test_batch"):
        datasets.cifar10.load_data()


def test_python3_pickled_batch_is_read(cache):
    """A batch rewritten by Python 3 (protocol 4, numpy 2's numpy._core names) reads the
    same; protocol 5 (numpy's _frombuffer) is refused as Keras refuses it."""
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    batches = write_cifar10(folder)
    b = batches[5]
    py3 = {k.encode(): np.asarray(v) if k == "data" else v for k, v in b.items()}
    (folder / "test_batch").write_bytes(pickle.dumps(py3, protocol=4))
    _, (_, yt) = datasets.cifar10.load_data()
    assert yt[:, 0].tolist() == b["labels"]
    (folder / "test_batch").write_bytes(pickle.dumps(py3, protocol=5))
    with pytest.raises(DataError, match="_frombuffer"):
        datasets.cifar10.load_data()


def test_malicious_imdb_npz_is_refused_unrun(cache, tmp_path):
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        payload, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    payload.write(pickle.dumps(RunsCode(marker)))
    ok = io.BytesIO()
    np.save(ok, np.zeros(1, np.int64))
    with zipfile.ZipFile(cache / "imdb.npz", "w") as z:
        z.writestr("x_train.npy", payload.getvalue())
        for key in ("y_train", "x_test", "y_test"):
            z.writestr(f"{key}.npy", ok.getvalue())
    with pytest.raises(DataError, match=r"refusing.*system"):
        datasets.imdb.load_data()
    assert not marker.exists()
    # mnist never unpickles at all: an object member is refused outright
    (cache / "imdb.npz").rename(cache / "mnist.npz")
    with pytest.raises(DataError, match="Python-object array"):
        datasets.mnist.load_data()
    assert not marker.exists()


def test_damaged_npz_gives_data_error(cache):
    write_mnist(cache / "mnist.npz")
    whole = (cache / "mnist.npz").read_bytes()
    (cache / "mnist.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="mnist.npz"):
        datasets.mnist.load_data()
    # a header that declares far more than the member holds: refused before allocating
    big = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        big, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 28)})
    big.write(b"\0" * 100)
    with zipfile.ZipFile(cache / "mnist.npz", "w") as z:
        z.writestr("x_train.npy", big.getvalue())
        for key in ("y_train", "x_test", "y_test"):
            z.writestr(f"{key}.npy", big.getvalue())
    with pytest.raises(DataError, match="declares"):
        datasets.mnist.load_data()
    np.savez(cache / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="no array 'y_train'"):
        datasets.mnist.load_data()


def test_damaged_idx_gives_idx_error(cache):
    folder = cache / "fashion-mnist"
    folder.mkdir()
    for split, n in (("train", 6), ("t10k", 4)):
        idx_gz(folder / f"{split}-images-idx3-ubyte.gz", RNG.integers(0, 256, (n, 28, 28)))
        idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", RNG.integers(0, 10, n))
    whole = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(whole[:-30])
    with pytest.raises(IDXError, match="t10k-images"):
        datasets.fashion_mnist.load_data()


def mutants(good: bytes, rng, n):
    for _ in range(n):
        b = bytearray(good)
        kind = rng.integers(4)
        if kind == 0:  # byte flips
            for i in rng.integers(0, len(b), rng.integers(1, 5)):
                b[i] = rng.integers(256)
        elif kind == 1:  # truncation
            b = b[: rng.integers(len(b))]
        elif kind == 2:  # inserted bytes
            i = rng.integers(len(b))
            b[i:i] = rng.integers(0, 256, rng.integers(1, 9), dtype=np.uint8).tobytes()
        else:  # a forged length or count
            i = rng.integers(len(b) - 4)
            b[i:i + 4] = [b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff"][rng.integers(3)]
        yield bytes(b)


def test_mutated_files_load_or_raise_data_error(cache):
    """Seeded mutants of a CIFAR batch, a numeric and an object-array .npz: each loads or
    raises DataError, and reading never holds much more memory than the file."""
    import tracemalloc

    rng = np.random.default_rng(0)
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_cifar10(folder, n=(2,) * 5, n_test=3)
    batch = (folder / "test_batch").read_bytes()
    write_mnist(cache / "mnist.npz", n=3, n_test=2)
    mnist = (cache / "mnist.npz").read_bytes()
    buf = io.BytesIO()
    np.savez(buf, x_train=ragged(3, rng), y_train=np.arange(3), x_test=ragged(2, rng),
             y_test=np.arange(2))
    imdb = buf.getvalue()
    cases = [(batch, folder / "test_batch", datasets.cifar10.load_data),
             (mnist, cache / "mnist.npz", datasets.mnist.load_data),
             (imdb, cache / "imdb.npz", datasets.imdb.load_data)]
    for good, path, load in cases:
        for mutant in mutants(good, rng, 50):
            path.write_bytes(mutant)
            tracemalloc.start()
            try:
                load()
            except DataError:
                pass
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            assert peak < 20 * len(good) + (1 << 20), (path.name, peak)


# -- tf.keras.utils ------------------------------------------------------------------------

@pytest.mark.parametrize("x, n", [
    ([0, 2, 1], None), (np.array([[1], [0], [3]]), None), (np.array([[0, 1], [2, 1]]), 4),
    (np.array(2), None), (np.array([1]), 3), ([1.7, 0.2], None)])
def test_to_categorical_matches_keras(keras, x, n):
    ours = utils.to_categorical(x, n)
    theirs = keras.utils.to_categorical(x, n)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_takes_arrays_and_tensors():
    expected = np.eye(3, dtype=np.float32)[[2, 0]]
    np.testing.assert_array_equal(utils.to_categorical(jnp.array([2, 0]), 3), expected)
    np.testing.assert_array_equal(utils.to_categorical(tg.tensor([[2], [0]])), expected)
    with pytest.raises(DataError) as info:
        utils.to_categorical([0, 5], num_classes=3)
    assert isinstance(info.value, IndexError) and "to_categorical" in str(info.value)


@pytest.mark.parametrize("kwargs", [
    {}, {"maxlen": 2}, {"maxlen": 5, "padding": "post", "truncating": "post"},
    {"value": -1, "dtype": "float32"}, {"maxlen": 3, "truncating": "post"}])
def test_pad_sequences_matches_keras(keras, kwargs):
    seqs = [[1, 2, 3], [4], [], [5, 6, 7, 8]]
    ours = utils.pad_sequences(seqs, **kwargs)
    theirs = keras.utils.pad_sequences(seqs, **kwargs)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_samples_and_mistakes(keras):
    seqs = [np.ones((2, 3)), np.zeros((1, 3))]
    np.testing.assert_array_equal(utils.pad_sequences(seqs, dtype="float32"),
                                  keras.utils.pad_sequences(seqs, dtype="float32"))
    with pytest.raises(DataError) as info:
        utils.pad_sequences([[1]], padding="middle")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError):
        utils.pad_sequences([[1], 2])


@pytest.mark.parametrize("axis, order", [(-1, 2), (1, 1), (-1, np.inf), (None, 2)])
def test_normalize_matches_keras(keras, axis, order):
    x = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, -2.0, 2.0]], dtype=np.float32)
    ours = utils.normalize(x, axis=axis, order=order)
    theirs = keras.utils.normalize(x, axis=axis, order=order)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_normalize_axis0_divides_by_column_norms():
    x = np.array([[3.0, 1.0], [4.0, 0.0]])
    np.testing.assert_allclose(utils.normalize(x, axis=0), [[0.6, 1.0], [0.8, 0.0]])


def test_set_random_seed():
    utils.set_random_seed(7)
    a, na = np.asarray(tg.randn(3)), np.random.rand()
    utils.set_random_seed(7)
    np.testing.assert_array_equal(np.asarray(tg.randn(3)), a)
    assert np.random.rand() == na
    with pytest.raises(DataError) as info:
        utils.set_random_seed(1.5)
    assert isinstance(info.value, ValueError)
