"""tg.data: scikit-learn sets, IDX files (good and corrupt), the pydoc corpus, batches."""

import gzip
import itertools
import math
import os
import re
import subprocess
import sys
from collections import Counter

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.data import DataError, IDXError

# ----------------------------------------------------------------------------- sklearn


@pytest.fixture(scope="module")
def sklearn():
    return pytest.importorskip("sklearn")


def test_digits_flat_split_and_scale(sklearn):
    ds = tg.data.load_digits(seed=0)
    assert ds.x_train.shape == (1438, 64) and ds.x_test.shape == (359, 64)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.num_classes == 10 and set(np.unique(ds.y_train)) == set(range(10))
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.mean is None and ds.std is None
    # every example lands in exactly one split
    everything = np.concatenate([ds.x_train, ds.x_test])
    raw = sklearn.datasets.load_digits().data / 16.0
    assert sorted(map(bytes, everything.astype(np.float32))) == sorted(
        map(bytes, raw.astype(np.float32))
    )


def test_digits_split_is_stratified_and_deterministic(sklearn):
    a, b = tg.data.load_digits(seed=3), tg.data.load_digits(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    c = tg.data.load_digits(seed=4)
    assert not np.array_equal(a.y_train, c.y_train)
    counts = Counter(a.y_test.tolist())
    assert all(34 <= counts[k] <= 38 for k in range(10))  # ~20% of ~180 per class
    d = tg.data.load_digits(seed=0, test_fraction=0.5)
    assert abs(len(d.y_test) - 1797 / 2) <= 10


def test_digits_image_form_and_standardize(sklearn):
    flat = tg.data.load_digits(seed=1)
    img = tg.data.load_digits(seed=1, image=True)
    assert img.x_train.shape == (1438, 1, 8, 8)
    np.testing.assert_array_equal(img.x_train.reshape(-1, 64), flat.x_train)
    st = tg.data.load_digits(seed=1, image=True, standardize=True)
    assert st.x_train.dtype == np.float32 and st.mean.shape == () and st.std.shape == ()
    assert abs(st.x_train.mean()) < 1e-5 and abs(st.x_train.std() - 1) < 1e-4
    # statistics come from the training split only and are applied to both splits
    assert st.mean == pytest.approx(flat.x_train.mean(), rel=1e-5)
    np.testing.assert_allclose(st.x_test, (img.x_test - st.mean) / st.std, rtol=1e-6)


def test_breast_cancer_standardized_per_feature_on_train(sklearn):
    ds = tg.data.load_breast_cancer(seed=0)
    assert ds.x_train.shape[1] == 30 and len(ds.x_train) + len(ds.x_test) == 569
    assert ds.num_classes == 2 and ds.mean.shape == (30,)
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(0), 1, atol=1e-4)
    assert not np.allclose(ds.x_test.mean(0), 0, atol=1e-3)  # test set not used for stats
    raw = tg.data.load_breast_cancer(seed=0, standardize=False)
    np.testing.assert_allclose(raw.x_train.mean(0), ds.mean, rtol=1e-5)
    np.testing.assert_allclose((raw.x_test - ds.mean) / ds.std, ds.x_test, rtol=1e-5, atol=1e-6)
    # stratified: class balance of test matches train
    assert abs(ds.y_test.mean() - ds.y_train.mean()) < 0.01
    assert ds.train["x"] is ds.x_train and ds.test["y"] is ds.y_test
    assert "breast_cancer" in repr(ds)


def test_bundled_sets_read_without_importing_sklearn_equal_its_loaders(sklearn):
    # the CSV files scikit-learn ships, read in place: the arrays its loaders give
    from tracegraph.data._sklearn import _breast_cancer_arrays, _digits_arrays

    for ours, theirs in ((_digits_arrays, sklearn.datasets.load_digits),
                         (_breast_cancer_arrays, sklearn.datasets.load_breast_cancer)):
        x, y = ours("test")
        raw = theirs()
        np.testing.assert_array_equal(x, raw.data)
        np.testing.assert_array_equal(y, raw.target)
        assert x.dtype == raw.data.dtype and y.dtype == raw.target.dtype
    code = ("import sys, tracegraph as tg; tg.data.load_digits(); tg.data.load_breast_cancer(); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sklearn_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"pip install scikit-learn") as e:
        tg.data.load_digits()
    assert isinstance(e.value, tg.Error) and "tracegraph[examples]" in str(e.value)
    with pytest.raises(DataError, match="load_breast_cancer"):
        tg.data.load_breast_cancer()


@pytest.mark.parametrize("bad", [1.0, -0.1, "x", None])
def test_bad_test_fraction(bad):
    with pytest.raises(DataError, match="test_fraction"):
        tg.data.load_digits(test_fraction=bad)


# ----------------------------------------------------------------------------- IDX

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
          np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr, *, code=None, dims=None, magic=None, extra=b"", cut=0):
    arr = np.asarray(arr)
    code = _CODES[arr.dtype.type] if code is None else code
    dims = arr.shape if dims is None else dims
    head = bytes([0, 0, code, len(dims)]) if magic is None else magic
    body = head + np.asarray(dims, ">u4").tobytes() + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    body += extra
    return body[: len(body) - cut] if cut else body


def write(path, data: bytes, gz: bool):
    if gz:
        path = str(path) + ".gz"
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(_CODES))
def test_read_idx_roundtrip_every_dtype(tmp_path, gz, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    p = write(tmp_path / "a-idx3", idx_bytes(arr), gz)
    out = tg.data.read_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # a writable, owned array


def test_read_idx_empty_dims(tmp_path):
    p = write(tmp_path / "e", idx_bytes(np.zeros((0, 5), np.uint8)), False)
    assert tg.data.read_idx(p).shape == (0, 5)


def make_mnist(folder, n_train=6, n_test=4, rows=5, cols=3, gz=False, dotted=False):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, arr in data.items():
        if dotted:
            name = name.replace("-idx", ".idx")
        write(os.path.join(folder, name), idx_bytes(arr), gz)
    return data


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dotted", [False, True])
def test_load_mnist_folder(tmp_path, gz, dotted):
    data = make_mnist(tmp_path / "fashion", gz=gz, dotted=dotted)
    ds = tg.data.load_mnist(tmp_path / "fashion")
    assert ds.name == "fashion" and ds.num_classes == 10
    assert ds.x_train.shape == (6, 15) and ds.x_test.shape == (4, 15)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_allclose(ds.x_train * 255, data["train-images-idx3-ubyte"].reshape(6, 15),
                               rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, data["t10k-labels-idx1-ubyte"])
    img = tg.data.load_mnist(str(tmp_path / "fashion"), image=True, standardize=True)
    assert img.x_train.shape == (6, 1, 5, 3)
    assert abs(img.x_train.mean()) < 1e-5 and img.mean.shape == ()


def _error(tmp_path, data: bytes, gz: bool, name="bad-idx3-ubyte"):
    p = write(tmp_path / name, data, gz)
    with pytest.raises(IDXError) as e:
        tg.data.read_idx(p)
    msg = str(e.value)
    assert os.path.basename(p) in msg and "Traceback" not in msg
    assert isinstance(e.value, tg.Error)
    return msg


_IMG = np.zeros((3, 2, 2), np.uint8)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "data, expect",
    [
        (idx_bytes(_IMG, magic=b"\x1f\x00\x08\x03"), "bad magic"),
        (idx_bytes(_IMG, magic=b"PK\x03\x04"), "bad magic"),
        (idx_bytes(_IMG, code=0x0A), "unsupported IDX element type code 0x0A"),
        (idx_bytes(_IMG, dims=()), "number of dimensions 0"),
        (b"\x00\x00", "truncated header"),
        (b"", "truncated header"),
        (idx_bytes(_IMG)[:9], "truncated header"),
        (idx_bytes(_IMG, cut=1), "truncated payload: 11 bytes, the header declares 12"),
        (idx_bytes(_IMG, extra=b"\x00"), "oversized payload"),
        (idx_bytes(_IMG, dims=(3, 2, 3)), "truncated payload"),  # dims product != data
        (idx_bytes(_IMG, dims=(3, 2, 1)), "oversized payload"),
        (idx_bytes(_IMG, dims=(2**31, 2**31, 2**31)), "truncated payload"),  # no huge alloc
        (idx_bytes(np.zeros(3, np.float32), cut=2), "truncated payload"),
    ],
)
def test_corrupt_idx_files(tmp_path, gz, data, expect):
    assert expect in _error(tmp_path, data, gz)


def test_damaged_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    msg = _error(tmp_path, good[: len(good) // 2], False, "cut.gz")  # truncated stream
    assert "gzip" in msg
    bad = bytearray(good)
    bad[20:40] = b"\xff" * 20
    assert "gzip" in _error(tmp_path, bytes(bad), False, "flipped.gz")


def test_missing_idx_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        tg.data.read_idx(tmp_path / "nope")


def test_mnist_count_mismatch_and_bad_files(tmp_path):
    make_mnist(tmp_path / "m")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)), False)
    with pytest.raises(IDXError, match=r"t10k-images-idx3-ubyte holds 4 images but .*"
                                       r"t10k-labels-idx1-ubyte holds 5 labels"):
        tg.data.load_mnist(tmp_path / "m")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte", idx_bytes(np.full(4, 10, np.uint8)), False)
    with pytest.raises(IDXError, match="label 10 is out of range"):
        tg.data.load_mnist(tmp_path / "m")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros((4, 1), np.uint8)), False)
    with pytest.raises(IDXError, match=r"t10k-labels-idx1-ubyte: expected uint8 labels"):
        tg.data.load_mnist(tmp_path / "m")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)), False)
    write(tmp_path / "m" / "train-images-idx3-ubyte", idx_bytes(np.zeros((6, 15), np.uint8)), False)
    with pytest.raises(IDXError, match=r"train-images-idx3-ubyte: expected uint8 images"):
        tg.data.load_mnist(tmp_path / "m")
    write(tmp_path / "m" / "train-images-idx3-ubyte", idx_bytes(np.zeros((6, 4, 4), np.uint8)), False)
    with pytest.raises(IDXError, match="train images are 4x4 but test images are 5x3"):
        tg.data.load_mnist(tmp_path / "m")


def test_mnist_missing_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        tg.data.load_mnist(tmp_path / "absent")
    make_mnist(tmp_path / "m")
    os.remove(tmp_path / "m" / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match=r"no train-labels-idx1-ubyte file \(looked for "
                                        r"train-labels-idx1-ubyte, train-labels-idx1-ubyte.gz"):
        tg.data.load_mnist(tmp_path / "m")


# ----------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def corpus():
    return tg.data.load_pydoc_corpus()


def test_pydoc_corpus(corpus):
    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))
    assert corpus.text == text
    assert corpus.vocab == "".join(sorted(set(text))) and corpus.vocab_size == len(set(text))
    assert corpus.train.dtype == np.int32 and corpus.validation.dtype == np.int32
    assert len(corpus.train) + len(corpus.validation) == len(text)
    assert abs(len(corpus.validation) / len(text) - 0.1) < 1e-3
    assert corpus.decode(corpus.train[:200]) == text[:200]
    assert corpus.decode(corpus.validation) == text[-len(corpus.validation):]
    np.testing.assert_array_equal(corpus.encode(text[1000:1100]), corpus.train[1000:1100])
    counts = Counter(text[: len(corpus.train)])
    n = len(corpus.train)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    assert corpus.unigram_entropy == pytest.approx(entropy, rel=1e-9)
    assert 3.5 < corpus.unigram_entropy < math.log2(corpus.vocab_size)
    assert "bits/char" in repr(corpus)


def test_corpus_is_deterministic_and_can_be_short():
    a = tg.data.load_pydoc_corpus(max_chars=5000, validation_fraction=0.2)
    b = tg.data.load_pydoc_corpus(max_chars=5000, validation_fraction=0.2)
    assert a.text == b.text and len(a.text) == 5000 and a.vocab == b.vocab
    np.testing.assert_array_equal(a.train, b.train)
    assert len(a.validation) == 1000


def test_windows_are_next_char_pairs(corpus):
    x, y = corpus.windows("train", 32)
    assert x.shape == y.shape == ((len(corpus.train) - 1) // 32, 32) and x.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x[3], corpus.train[96:128])
    np.testing.assert_array_equal(y[3], corpus.train[97:129])
    vx, _ = corpus.windows("validation", 16, stride=4)
    np.testing.assert_array_equal(vx[2], corpus.validation[8:24])


def test_char_windows_edges():
    x, y = tg.data.char_windows(np.arange(10), 4)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(y, [[1, 2, 3, 4], [5, 6, 7, 8]])
    x, _ = tg.data.char_windows(np.arange(5), 4)
    assert x.shape == (1, 4)
    x, _ = tg.data.char_windows(np.arange(10), 4, stride=1)
    assert x.shape == (6, 4)
    for ids, seq_len, stride in [(np.arange(4), 4, None), (np.arange(9), 0, None),
                                 (np.ones((2, 5), int), 2, None), (np.ones(9), 2, None),
                                 (np.arange(9), 2, 0)]:
        with pytest.raises(DataError):
            tg.data.char_windows(ids, seq_len, stride=stride)


def test_encode_decode_errors():
    c = tg.data.corpus_from_text("hello world")
    assert c.vocab == " dehlorw"
    assert c.decode(c.encode("world hello")) == "world hello"
    with pytest.raises(DataError, match=r"not in the vocabulary: \['x', 'z'\]"):
        c.encode("zex")
    with pytest.raises(DataError, match="ids must be ints"):
        c.decode([0, 99])
    with pytest.raises(DataError, match="split must be"):
        c.windows("test", 2)
    with pytest.raises(DataError, match="validation_fraction"):
        tg.data.load_pydoc_corpus(validation_fraction=0)


# ----------------------------------------------------------------------------- batches


def test_batches_in_order_and_drop_last():
    x, y = np.arange(10) * 2, np.arange(10)
    out = list(tg.data.batches((x, y), 4))
    assert [len(b[0]) for b in out] == [4, 4, 2] and isinstance(out[0], tuple)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in out]), x)
    bs = tg.data.batches((x, y), 4, drop_last=True, epochs=3)
    assert len(bs) == 6 and bs.batches_per_epoch == 2
    assert [len(b[1]) for b in bs] == [4] * 6
    assert len(tg.data.batches(x, 20, drop_last=True)) == 0 and list(tg.data.batches(x, 20)) != []


def test_batches_keep_the_container_form():
    x = np.arange(12).reshape(6, 2)
    d = next(iter(tg.data.batches({"x": x, "y": x[:, 0]}, 4)))
    assert list(d) == ["x", "y"] and d["x"].shape == (4, 2)
    lst = next(iter(tg.data.batches([x, x], 4)))
    assert isinstance(lst, list) and len(lst) == 2
    one = next(iter(tg.data.batches(x, 4)))
    assert isinstance(one, np.ndarray) and one.shape == (4, 2)
    j = next(iter(tg.data.batches(jax.numpy.arange(6.0), 4)))
    assert isinstance(j, np.ndarray)


def _epochs(bs, n):
    flat = np.concatenate([b["i"] for b in bs])
    return flat.reshape(-1, n)


def test_shuffle_is_a_deterministic_permutation_per_epoch():
    n = 50
    data = {"i": np.arange(n), "v": np.arange(n) * 10}
    a = tg.data.batches(data, 8, seed=7, epochs=3)
    orders = _epochs(a, n)
    for o in orders:
        assert sorted(o.tolist()) == list(range(n))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], np.arange(n))
    np.testing.assert_array_equal(_epochs(a, n), orders)  # iterating again replays
    np.testing.assert_array_equal(_epochs(tg.data.batches(data, 8, seed=7, epochs=3), n), orders)
    assert not np.array_equal(_epochs(tg.data.batches(data, 8, seed=8), n)[0], orders[0])
    for b in a:
        np.testing.assert_array_equal(b["v"], b["i"] * 10)  # rows stay together


def test_shuffle_from_keys():
    data = {"i": np.arange(30)}
    k = tg.random.key(3)
    a = _epochs(tg.data.batches(data, 7, key=k), 30)
    b = _epochs(tg.data.batches(data, 7, key=jax.random.PRNGKey(3)), 30)
    c = _epochs(tg.data.batches(data, 7, key=jax.random.key(3)), 30)
    d = _epochs(tg.data.batches(data, 7, key=np.array([0, 3], np.uint32)), 30)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d)
    e = _epochs(tg.data.batches(data, 7, key=tg.random.key(4)), 30)
    assert not np.array_equal(a, e)


def test_batches_forever():
    bs = tg.data.batches(np.arange(5), 2, seed=0, epochs=None)
    got = list(itertools.islice(bs, 7))
    assert [len(b) for b in got] == [2, 2, 1, 2, 2, 1, 2]
    with pytest.raises(TypeError):
        len(bs)
    assert list(tg.data.batches(np.arange(1), 2, drop_last=True, epochs=None)) == []


@pytest.mark.parametrize(
    "args, kwargs, expect",
    [
        (((np.arange(3), np.arange(4)), 2), {}, "differ in length"),
        ((np.arange(3), 0), {}, "batch_size"),
        ((np.arange(3), 2.0), {}, "batch_size"),
        ((np.arange(3), 2), {"seed": 1, "key": tg.random.key(1)}, "not both"),
        ((np.arange(3), 2), {"seed": -1}, "seed"),
        ((np.arange(3), 2), {"key": np.zeros(2, np.float32)}, "key must be"),
        ((np.arange(3), 2), {"epochs": -1}, "epochs"),
        ((np.float32(3), 2), {}, "scalar"),
        (({}, 2), {}, "no arrays"),
    ],
)
def test_batches_errors(args, kwargs, expect):
    with pytest.raises(DataError, match=expect):
        tg.data.batches(*args, **kwargs)


# ----------------------------------------------------------------------------- docs


def test_docs_page_examples_run(sklearn, tmp_path, monkeypatch, capsys):
    """The python blocks of docs/data_and_checkpoints.md run, in order, as written."""
    doc = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "data_and_checkpoints.md")
    with open(doc, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{doc}:block{i}", "exec"), env)  # noqa: S102 - our own docs
    out = capsys.readouterr().out
    assert "truncated payload" in out and "does not match like" in out
    assert env["accuracy"] > 0.9
