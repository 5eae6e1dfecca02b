"""tg.checkpoint: round trips of pytrees, ``like=`` checking, damaged files, atomic
writes (a saving process killed mid-write leaves the previous checkpoint loadable)."""

import errno
import io
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from collections import namedtuple
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.checkpoint import CheckpointError, CheckpointWriteError

try:
    import fcntl
except ImportError:  # Windows: no file locks
    fcntl = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
    else:
        assert a == b


def test_roundtrip_without_like_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.normal(size=(3, 4)).astype(np.float32),
        "f64": rng.normal(size=(2,)),
        "f16": rng.normal(size=(5,)).astype(np.float16),
        "bf16": rng.normal(size=(2, 3)).astype(ml_dtypes.bfloat16),
        "f8": rng.normal(size=(4,)).astype(ml_dtypes.float8_e4m3fn),
        "i8": np.arange(-3, 3, dtype=np.int8),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "u32": np.array([1, 2**32 - 1], np.uint32),
        "i64": np.array([2**40], np.int64),
        "bool": np.array([True, False]),
        "c64": np.array([1 + 2j], np.complex64),
        "scalar": np.array(3.5, np.float32),
        "empty": np.zeros((0, 7), np.float32),
        "nan": np.array([np.nan, np.inf, -0.0], np.float32),
    }
    tree = {"params": arrays, "list": [np.ones(2), None, (np.zeros(1, np.int32),)],
            "ints": {7: {"nested": {}}, 3: np.ones(1)}, "empty_list": [], "empty_tuple": (),
            "none": None,
            "py": [3, 2.5, True, 1 + 1j]}
    p = tmp_path / "a.ckpt"
    tg.checkpoint.save(p, tree)
    out = tg.checkpoint.load(p)
    same(out, tree)  # dict order, int keys, None, empties, Python scalars all kept
    assert out["params"]["bf16"].dtype == ml_dtypes.bfloat16


def test_jax_arrays_are_fetched_and_bf16_kept(tmp_path):
    tree = {"w": jnp.arange(6.0, dtype=jnp.bfloat16).reshape(2, 3), "b": jnp.zeros(3)}
    tg.checkpoint.save(tmp_path / "j.ckpt", tree, step=3)
    out = tg.checkpoint.load(tmp_path / "j.ckpt")
    assert isinstance(out["w"], np.ndarray) and out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(out["w"].astype(np.float32), np.arange(6.0).reshape(2, 3))
    # the archive itself is pickle-free numpy: bf16 sits there as its uint16 bit pattern
    with np.load(tmp_path / "j.ckpt", allow_pickle=False) as z:
        doc = json.loads(z["__checkpoint__.json"].tobytes())
        assert doc["format"] == "tracegraph-checkpoint" and doc["step"] == 3
        names = [leaf["path"] for leaf in doc["leaves"]]
        assert z[f"a{names.index('w')}"].dtype == np.uint16


def test_step_metadata_and_info(tmp_path):
    p = tmp_path / "m.ckpt"
    tg.checkpoint.save(p, {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)},
                       step=1200, metadata={"loss": 0.25, "model": "mlp", "sizes": [64, 10]})
    inf = tg.checkpoint.info(p)
    assert inf.step == 1200 and inf.metadata == {"loss": 0.25, "model": "mlp", "sizes": [64, 10]}
    assert inf.leaves == (("b", (3,), "float32"), ("w", (2, 3), "float32"))
    with pytest.raises(CheckpointError, match="JSON-serializable"):
        tg.checkpoint.save(tmp_path / "x.ckpt", {"w": np.ones(1)}, metadata={"f": object()})
    assert not os.path.exists(tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match="step"):
        tg.checkpoint.save(tmp_path / "x.ckpt", {}, step=1.5)


Adam = namedtuple("Adam", "count mu nu")


@jax.tree_util.register_pytree_with_keys_class
class Model:
    """A stand-in for tg.nn.Module: parameters as children, hyper-parameters static."""

    def __init__(self, layers, scale):
        self.layers, self.scale = layers, scale

    def tree_flatten_with_keys(self):
        return [(jax.tree_util.GetAttrKey("layers"), self.layers)], self.scale

    @classmethod
    def tree_unflatten(cls, scale, children):
        return cls(children[0], scale)


@jax.tree_util.register_dataclass
@dataclass
class Linear:
    w: np.ndarray
    b: np.ndarray


def make_model(seed, n=3):
    rng = np.random.default_rng(seed)
    return Model([Linear(rng.normal(size=(4, 4)).astype(np.float32),
                         rng.normal(size=4).astype(np.float32)) for _ in range(n)], scale=2.0)


def test_like_rebuilds_registered_classes(tmp_path):
    model = make_model(0)
    state = Adam(np.array(5, np.int32), {"w": np.ones(3)}, {"w": np.zeros(3)})
    tree = {"model": model, "opt": state, "step": 9}
    p = tmp_path / "m.ckpt"
    tg.checkpoint.save(p, tree)
    like = {"model": make_model(1), "opt": Adam(np.array(0, np.int32), {"w": np.zeros(3)},
                                                 {"w": np.zeros(3)}), "step": 0}
    out = tg.checkpoint.load(p, like=like)
    assert isinstance(out["model"], Model) and out["model"].scale == 2.0
    assert isinstance(out["model"].layers[2], Linear) and isinstance(out["opt"], Adam)
    np.testing.assert_array_equal(out["model"].layers[1].w, model.layers[1].w)
    assert int(out["opt"].count) == 5 and out["step"] == 9 and type(out["step"]) is int
    # without like: classes come back as dicts of their fields
    raw = tg.checkpoint.load(p)
    np.testing.assert_array_equal(raw["model"]["layers"][0]["b"], model.layers[0].b)
    np.testing.assert_array_equal(raw["opt"]["mu"]["w"], np.ones(3))
    # like may hold abstract leaves
    abstract = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype),
                                      like)
    out2 = tg.checkpoint.load(p, like=abstract)
    assert isinstance(out2["model"], Model)


def test_optax_state_roundtrip(tmp_path):
    optax = pytest.importorskip("optax")
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    opt = optax.adam(1e-2)
    state = opt.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    _, state = opt.update(grads, state, params)
    tg.checkpoint.save(tmp_path / "o.ckpt", {"params": params, "opt": state})
    out = tg.checkpoint.load(tmp_path / "o.ckpt", like={"params": params, "opt": opt.init(params)})
    assert jax.tree_util.tree_structure(out["opt"]) == jax.tree_util.tree_structure(state)
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves({"params": params,
                                                                             "opt": state})):
        np.testing.assert_array_equal(a, b)


def test_like_mismatches_are_all_listed(tmp_path):
    p = tmp_path / "m.ckpt"
    tg.checkpoint.save(p, make_model(0))
    bad = make_model(0)
    bad.layers[0].w = np.zeros((4, 5), np.float32)
    bad.layers[2].b = np.zeros(4, np.float64)
    with pytest.raises(CheckpointError) as e:
        tg.checkpoint.load(p, like=bad)
    msg = str(e.value)
    assert "layers/0/w: checkpoint float32[4, 4], like float32[4, 5]" in msg
    assert "layers/2/b: checkpoint float32[4], like float64[4]" in msg
    with pytest.raises(CheckpointError, match=r"3 leaves.*like has 6|6 leaves, like has 4"):
        tg.checkpoint.load(p, like=make_model(0, n=2))
    with pytest.raises(CheckpointError, match="layers/2/b: only in the checkpoint"):
        tg.checkpoint.load(p, like=make_model(0, n=2))


def test_like_paths_strict_and_not(tmp_path):
    p = tmp_path / "d.ckpt"
    tg.checkpoint.save(p, {"a": np.ones(2), "b": np.zeros(2)})
    renamed = {"a": np.ones(2), "c": np.zeros(2)}
    with pytest.raises(CheckpointError, match="b: only in the checkpoint\n  c: only in like"):
        tg.checkpoint.load(p, like=renamed)
    out = tg.checkpoint.load(p, like=renamed, strict=False)
    assert list(out) == ["a", "c"]
    # a dict of fields loads into the class with the same field names
    model = make_model(0)
    tg.checkpoint.save(p, {"layers": [{"b": l.b, "w": l.w} for l in model.layers]})
    out = tg.checkpoint.load(p, like=make_model(5))
    np.testing.assert_array_equal(out.layers[2].w, model.layers[2].w)


@pytest.mark.parametrize("leaf", ["text", object(), np.array(["a"]), np.array([object()])])
def test_unsupported_leaves(tmp_path, leaf):
    with pytest.raises(CheckpointError, match=r"leaf x/0"):
        tg.checkpoint.save(tmp_path / "u.ckpt", {"x": [leaf]})
    assert os.listdir(tmp_path) == []


def test_bad_dict_keys(tmp_path):
    with pytest.raises(CheckpointError, match="cannot flatten"):
        tg.checkpoint.save(tmp_path / "k.ckpt", {1: np.ones(1), "a": np.ones(1)})
    with pytest.raises(CheckpointError, match=r"dict key \(1, 2\) at p is not a str or int"):
        tg.checkpoint.save(tmp_path / "k.ckpt", {"p": {(1, 2): np.ones(1)}})
    with pytest.raises(CheckpointError, match=r"dict key np.int64\(3\) at the root"):
        tg.checkpoint.save(tmp_path / "k.ckpt", {np.int64(3): np.ones(1)})


# ------------------------------------------------------------------ damaged checkpoints


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.ckpt"
    tg.checkpoint.save(p, {"w": np.arange(4096, dtype=np.float32), "b": np.ones(3)}, step=1)
    return p


def _raises(path, match=None):
    with pytest.raises(CheckpointError, match=match) as e:
        tg.checkpoint.load(path)
    assert str(path) in str(e.value) and isinstance(e.value, tg.Error)
    return str(e.value)


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9, -22])
def test_truncated_checkpoint(tmp_path, good, keep):
    data = good.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    p = tmp_path / "cut.ckpt"
    p.write_bytes(data[:n])
    _raises(p, "damaged|truncated|not a")


def test_flipped_bytes_in_array_data(tmp_path, good):
    data = bytearray(good.read_bytes())
    i = data.find(np.arange(100, 110, dtype=np.float32).tobytes())
    assert i > 0
    data[i:i + 8] = b"\xff" * 8
    p = tmp_path / "flip.ckpt"
    p.write_bytes(bytes(data))
    _raises(p, "damaged")


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.ckpt"
    p.write_bytes(b"hello, not a zip at all")
    _raises(p, "not a readable checkpoint")
    np.save(tmp_path / "arr.npy", np.ones(3))
    _raises(tmp_path / "arr.npy", "bare .npy")
    np.savez(tmp_path / "plain.npz", a0=np.ones(3))
    _raises(tmp_path / "plain.npz", "no __checkpoint__.json")
    with pytest.raises(FileNotFoundError):
        tg.checkpoint.load(tmp_path / "missing.ckpt")


def _forge(path, doc, **arrays):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    np.savez(path, **{"__checkpoint__.json": np.frombuffer(text.encode(), np.uint8)}, **arrays)
    return path


def _doc(**over):
    doc = {"format": "tracegraph-checkpoint", "version": 1, "step": None, "metadata": None,
           "tree": {"dict": [["w", {"leaf": 0}]]},
           "leaves": [{"path": "w", "shape": [3], "dtype": "float32", "py": None}]}
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "doc, arrays, match",
    [
        ("{not json", {}, "not valid JSON"),
        (_doc(format="other"), {"a0": np.ones(3, np.float32)}, "format"),
        (_doc(version=3), {"a0": np.ones(3, np.float32)}, "version 3"),
        (_doc(), {}, "entry 'a0' is missing"),
        (_doc(), {"a0": np.ones(4, np.float32)}, r"float32\[4\], its header says float32\[3\]"),
        (_doc(), {"a0": np.ones(3, np.int32)}, "its header says"),
        (_doc(), {"a0": np.ones(100000, np.float32)}, "more than its declared"),
        (_doc(tree={"list": [{"leaf": 0}, {"leaf": 0}]}), {"a0": np.ones(3, np.float32)},
         "every leaf exactly once"),
        (_doc(tree={"leaf": 5}), {"a0": np.ones(3, np.float32)}, "bad leaf index"),
        (_doc(tree={"set": []}), {"a0": np.ones(3, np.float32)}, "bad tree node"),
        (_doc(leaves=[{"path": "w", "shape": [3], "dtype": "object", "py": None}]),
         {"a0": np.ones(3, np.float32)}, "unknown dtype"),
        (_doc(leaves=[{"path": "w", "shape": [-3], "dtype": "float32", "py": None}]),
         {"a0": np.ones(3, np.float32)}, "bad shape"),
        (_doc(leaves="x"), {}, "leaves is not a list"),
        (_doc(step="7"), {"a0": np.ones(3, np.float32)}, "step"),
        ('{"a":' * 100000 + "1" + "}" * 100000, {}, "JSON"),
    ],
)
def test_forged_documents(tmp_path, doc, arrays, match):
    p = _forge(tmp_path / "f.npz", doc, **arrays)
    _raises(p, match)


# ------------------------------------------------------------------ atomic writes


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, good, monkeypatch):
    before = good.read_bytes()

    def broken(f, archive):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(tg.checkpoint, "_write_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        tg.checkpoint.save(good, {"w": np.zeros(10)})
    assert good.read_bytes() == before
    assert os.listdir(good.parent) == [good.name]


_CHILD_SLOW = r"""
import io, os, sys, time
import numpy as np
import tracegraph.checkpoint as ck

real = ck._write_archive

def slow(f, archive):
    # the real archive bytes, but only the first half reaches the temp file; then stall
    buf = io.BytesIO()
    real(buf, archive)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    print("HALF", flush=True)
    time.sleep(120)

ck._write_archive = slow
ck.save(sys.argv[1], {"w": np.full((512, 1024), 7.0, np.float32), "b": np.ones(3)}, step=2)
print("FINISHED", flush=True)
"""

_CHILD_REAL = r"""
import sys
import numpy as np
import tracegraph.checkpoint as ck

new = {"w": np.full((16 << 20,), 7.0, np.float32), "b": np.ones(3)}   # 64 MiB
print("READY", flush=True)
sys.stdin.readline()
ck.save(sys.argv[1], new, step=2)
print("FINISHED", flush=True)
"""


def _child(code, target):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)


def _readline(proc, timeout=60.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError("child process did not report in time")
    line = proc.stdout.readline().decode()
    if not line:
        raise AssertionError(f"child process died: {proc.stderr.read().decode()[-2000:]}")
    return line.strip()


def _old_checkpoint(path):
    old = {"w": np.arange(1000, dtype=np.float32), "b": np.zeros(3)}
    tg.checkpoint.save(path, old, step=1)
    return old, path.read_bytes()


def _check_old(path, old, old_bytes):
    assert path.read_bytes() == old_bytes
    out = tg.checkpoint.load(path, like=old)
    np.testing.assert_array_equal(out["w"], old["w"])
    assert tg.checkpoint.info(path).step == 1


def test_killed_mid_write_keeps_previous_checkpoint(tmp_path):
    target = tmp_path / "model.ckpt"
    old, old_bytes = _old_checkpoint(target)
    proc = _child(_CHILD_SLOW, target)
    try:
        assert _readline(proc) == "HALF"
        temps = [n for n in os.listdir(tmp_path) if n != target.name]
        assert len(temps) == 1 and temps[0].startswith(".model.ckpt.") and temps[0].endswith(".tmp")
        assert (tmp_path / temps[0]).stat().st_size > 1 << 20  # the child was mid-write
        _check_old(target, old, old_bytes)  # untouched while the new one is being written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    _check_old(target, old, old_bytes)
    # what the killed save left is only its own temp file, never read as a checkpoint,
    # and loading it anyway is a clean error, not a numpy traceback
    with pytest.raises(CheckpointError):
        tg.checkpoint.load(tmp_path / temps[0])
    # the next save into the folder deletes it (its writer is dead now)
    tg.checkpoint.save(tmp_path / "other.ckpt", {"x": np.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt", "other.ckpt"]
    _check_old(target, old, old_bytes)


def test_a_live_writers_temp_file_is_not_removed(tmp_path):
    target = tmp_path / "model.ckpt"
    old, _ = _old_checkpoint(target)
    proc = _child(_CHILD_SLOW, target)
    try:
        assert _readline(proc) == "HALF"
        temps = [n for n in os.listdir(tmp_path) if n != target.name]
        time.sleep(0.05)  # so that the temp file is older than the next save
        # a save of another file in the same folder, while the child is stalled mid-write
        tg.checkpoint.save(tmp_path / "other.ckpt", {"x": np.ones(2)})
        assert temps[0] in os.listdir(tmp_path)  # locked by its live writer: kept
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    tg.checkpoint.save(target, old, step=1)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt", "other.ckpt"]


def test_killed_during_real_write_leaves_old_or_new_never_partial(tmp_path):
    target = tmp_path / "model.ckpt"
    old, old_bytes = _old_checkpoint(target)
    proc = _child(_CHILD_REAL, target)
    try:
        assert _readline(proc) == "READY"
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(os.listdir(tmp_path)) < 2:
            if proc.poll() is not None:
                break
            time.sleep(0.0005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    tree = tg.checkpoint.load(target, like=old if tg.checkpoint.info(target).step == 1 else
                              {"w": np.zeros(16 << 20, np.float32), "b": np.zeros(3)})
    if tg.checkpoint.info(target).step == 1:
        _check_old(target, old, old_bytes)
    else:  # the save won the race: then the new checkpoint is complete
        assert np.all(tree["w"] == 7.0)


# ------------------------------------------------------------------ manager


def test_checkpoint_manager(tmp_path):
    mgr = tg.checkpoint.CheckpointManager(tmp_path / "run", keep=2)
    assert mgr.latest() is None and mgr.steps() == []
    with pytest.raises(CheckpointError, match="no checkpoints"):
        mgr.load()
    for step in (10, 20, 30, 40):
        path = mgr.save(step, {"w": np.full(2, step, np.float32)}, metadata={"s": step})
        assert os.path.basename(path) == f"step_{step:08d}.ckpt"
    assert mgr.steps() == [30, 40] and mgr.latest_step() == 40
    assert mgr.latest() == mgr.path(40)
    np.testing.assert_array_equal(mgr.load()["w"], [40, 40])
    np.testing.assert_array_equal(mgr.load(30, like={"w": np.zeros(2, np.float32)})["w"], [30, 30])
    assert tg.checkpoint.info(mgr.latest()).metadata == {"s": 40}
    mgr.save(5, {"w": np.zeros(2, np.float32)})  # an older step is kept once written
    assert 5 in mgr.steps() and 40 in mgr.steps()
    (tmp_path / "run" / "notes.txt").write_text("other files are left alone")
    assert tg.checkpoint.CheckpointManager(tmp_path / "run", keep=None).steps() == [5, 30, 40]
    with pytest.raises(CheckpointError, match="keep"):
        tg.checkpoint.CheckpointManager(tmp_path, keep=0)


# ------------------------------------------------------------------ failing cleanly


def test_info_checks_the_document_too(tmp_path):
    doc = _doc()
    del doc["metadata"]
    p = _forge(tmp_path / "f.npz", doc, a0=np.ones(3, np.float32))
    for read in (tg.checkpoint.info, tg.checkpoint.load):
        with pytest.raises(CheckpointError, match="lacks 'metadata'"):
            read(p)
    p = _forge(tmp_path / "g.npz", "[1, 2]")
    with pytest.raises(CheckpointError, match="format"):
        tg.checkpoint.info(p)


def _leaf(**over):
    return [{"path": "w", "shape": [3], "dtype": "float32", "py": None, **over}]


@pytest.mark.parametrize(
    "doc, arrays, match",
    [
        (_doc(extra=1), {"a0": np.ones(3, np.float32)}, "unexpected keys 'extra'"),
        (_doc(version=True), {"a0": np.ones(3, np.float32)}, "version True"),
        (_doc(version=1.0), {"a0": np.ones(3, np.float32)}, "version 1.0"),
        (_doc(step=True), {"a0": np.ones(3, np.float32)}, "step True"),
        (_doc(leaves=[{"path": "w", "shape": [3], "dtype": "float32"}]),
         {"a0": np.ones(3, np.float32)}, "leaf 0 lacks 'py'"),
        (_doc(leaves=_leaf(size=3)), {"a0": np.ones(3, np.float32)}, "unexpected keys 'size'"),
        (_doc(leaves=_leaf(path=3)), {"a0": np.ones(3, np.float32)}, "not a string"),
        (_doc(leaves=_leaf(path="v")), {"a0": np.ones(3, np.float32)},
         "leaf 0 is named 'v' but sits at 'w'"),
        (_doc(leaves=_leaf(shape=[3.0])), {"a0": np.ones(3, np.float32)}, "bad shape"),
        (_doc(leaves=_leaf(shape=[True])), {"a0": np.ones(3, np.float32)}, "bad shape"),
        (_doc(leaves=_leaf(shape="3")), {"a0": np.ones(3, np.float32)}, "bad shape"),
        (_doc(leaves=_leaf(dtype=["float32"])), {"a0": np.ones(3, np.float32)}, "unknown dtype"),
        (_doc(leaves=_leaf(py="int")), {"a0": np.ones(3, np.float32)}, "scalar kind"),
        (_doc(leaves=_leaf(shape=[], py="int")), {"a0": np.array(np.nan, np.float32)},
         "scalar kind 'int' for float32"),
        (_doc(leaves=_leaf(shape=[], py=1)), {"a0": np.array(1, np.float32)}, "scalar kind"),
        (_doc(leaves=[None]), {"a0": np.ones(3, np.float32)}, "leaf 0 is not an object"),
        (_doc(tree={"dict": [["w", {"leaf": 0}], ["w", None]]}), {"a0": np.ones(3, np.float32)},
         "bad dict item"),
        (_doc(tree={"dict": [["w", {"leaf": 0, "x": 1, "y": 2}]]}),
         {"a0": np.ones(3, np.float32)}, "bad tree node"),
        (_doc(tree={"dict": {"w": {"leaf": 0}}}), {"a0": np.ones(3, np.float32)}, "bad dict node"),
        (_doc(tree={"node": 1, "keys": ["w"], "children": [{"leaf": 0}]}),
         {"a0": np.ones(3, np.float32)}, "bad custom node"),
        (_doc(tree={"node": "m.C", "keys": [None], "children": [{"leaf": 0}]}),
         {"a0": np.ones(3, np.float32)}, "bad custom node"),
        (_doc(tree={"list": {"leaf": 0}}), {"a0": np.ones(3, np.float32)}, "bad list/tuple"),
        (_doc(tree={"leaf": True}), {"a0": np.ones(3, np.float32)}, "bad leaf index"),
        (_doc(), {"a0": np.ones(3, np.float32), "a1": np.ones(1)}, "unexpected entries 'a1.npy'"),
        (_doc(), {"a0": np.ones(3, np.float32), "junk": np.ones(1)}, "unexpected entries"),
        (_doc(leaves=_leaf(shape=[3000])), {"a0": np.ones(3, np.float32)},
         "less than its declared 12000"),
        (_doc(), {"a0": np.ones(3, np.float32), "__checkpoint__.json": None}, "not bytes"),
    ],
)
def test_malformed_documents_and_entries(tmp_path, doc, arrays, match):
    if arrays.get("__checkpoint__.json", 0) is None:  # the document as float64, not bytes
        arrays = {"a0": arrays["a0"]}
        p = tmp_path / "f.npz"
        np.savez(p, **{"__checkpoint__.json": np.frombuffer(json.dumps(doc).encode(), np.uint8)
                       .astype(np.float64)}, **arrays)
    else:
        p = _forge(tmp_path / "f.npz", doc, **arrays)
    for read in (tg.checkpoint.info, tg.checkpoint.load):
        with pytest.raises(CheckpointError, match=match) as e:
            read(p)
        assert str(p) in str(e.value)


def _npy(arr, version=None, **kw) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, **kw)
    return buf.getvalue()


def _rezip(src, dst, replace=None, drop=(), add=(), order=None):
    """Copy the zip ``src`` to ``dst``, member by member, with changes."""
    with zipfile.ZipFile(src) as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    members = [(n, (replace or {}).get(n, data)) for n, data in members if n not in drop]
    members += list(add)
    if order is not None:
        members = [members[i] for i in order(len(members))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is what some cases want
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
            for n, data in members:
                z.writestr(n, data)
    return dst


def test_entries_that_disagree_with_their_header(tmp_path, good):
    w = np.arange(4096, dtype=np.float32)
    idx = tg.checkpoint.info(good).leaves.index(("w", (4096,), "float32"))
    name = f"a{idx}.npy"
    cases = {
        "other dtype": (_npy(w.astype(np.int32)), "is int32\\[4096\\], its header says float32"),
        "other shape": (_npy(w.reshape(64, 64)), "is float32\\[64, 64\\]"),
        # a pickle in the entry is refused from its header, never unpickled
        "object dtype": (_npy(np.array([f"s{i:07d}" for i in range(4096)], object),
                              allow_pickle=True), "is object\\[4096\\]"),
        "bytes after": (_npy(w) + b"\0" * 8, "bytes after the 16384 declared"),
        "bytes short": (_npy(w)[:-8], "less than its declared|ends after"),
        "bad header": (_npy(w).replace(b"'descr'", b"'dexcr'"), "cannot be read"),
        "bad version": (_npy(w).replace(b"NUMPY\x01\x00", b"NUMPY\x07\x00"), "version"),
    }
    for what, (data, match) in cases.items():
        p = _rezip(good, tmp_path / f"{what}.ckpt", replace={name: data})
        with pytest.raises(CheckpointError, match=match):
            tg.checkpoint.load(p)
    # an array stored Fortran-ordered, byte-swapped or with a 2.0 header is the same array
    harmless = {"fortran": _npy(np.asfortranarray(w)), "v2": _npy(w, version=(2, 0)),
                "swapped": _npy(w.byteswap().view(">f4"))}
    for what, data in harmless.items():
        p = _rezip(good, tmp_path / f"{what}.ckpt", replace={name: data})
        out = tg.checkpoint.load(p)
        assert out["w"].dtype == np.float32 and np.array_equal(out["w"], w), what


def test_members_missing_twice_or_reordered(tmp_path, good):
    with zipfile.ZipFile(good) as z:
        names = z.namelist()
    with zipfile.ZipFile(good) as z:
        last = (names[-1], z.read(names[-1]))
    p = _rezip(good, tmp_path / "dup.ckpt", add=[last])
    _raises(p, "appear twice")
    p = _rezip(good, tmp_path / "nometa.ckpt", drop=["__checkpoint__.json.npy"])
    _raises(p, "no __checkpoint__.json")
    p = _rezip(good, tmp_path / "rev.ckpt", order=lambda n: range(n - 1, -1, -1))
    same(tg.checkpoint.load(p), tg.checkpoint.load(good))


def test_directories_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        tg.checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        tg.checkpoint.info(tmp_path)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    _raises(tmp_path / "empty.ckpt", "the file is empty")
    with pytest.raises(CheckpointError, match="the file is empty"):
        tg.checkpoint.info(tmp_path / "empty.ckpt")
    import gzip
    (tmp_path / "g.ckpt").write_bytes(gzip.compress(b"x" * 100))
    _raises(tmp_path / "g.ckpt", "not a readable checkpoint")


def test_like_scalar_that_does_not_convert(tmp_path):
    p = tmp_path / "n.ckpt"
    tg.checkpoint.save(p, {"n": np.array(np.nan), "c": np.array(1 + 2j)})
    with pytest.raises(CheckpointError, match=r"(?s)c: checkpoint complex128 value.*like "
                                              r"a Python int.*n: checkpoint float64"):
        tg.checkpoint.load(p, like={"n": 0, "c": 0})


def test_manager_load_of_a_damaged_checkpoint(tmp_path):
    mgr = tg.checkpoint.CheckpointManager(tmp_path, keep=None)
    mgr.save(1, {"w": np.ones(2)})
    path = mgr.save(2, {"w": np.ones(2)})
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(CheckpointError, match="step_00000002.ckpt"):
        mgr.load()
    np.testing.assert_array_equal(mgr.load(1)["w"], np.ones(2))


# ------------------------------------------------------------------ a refused save


def _refused_save(good, monkeypatch, fail):
    before = good.read_bytes()
    monkeypatch.setattr(tg.checkpoint, "_write_archive", fail)
    with pytest.raises(CheckpointWriteError) as e:
        tg.checkpoint.save(good, {"w": np.zeros(10)})
    assert good.read_bytes() == before  # the previous checkpoint is intact
    assert os.listdir(good.parent) == [good.name]  # and no temp file is left
    return e.value


def test_disk_full_names_the_target(tmp_path, good, monkeypatch):
    def full(f, archive):
        f.write(b"PK partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    e = _refused_save(good, monkeypatch, full)
    assert isinstance(e, OSError) and isinstance(e, CheckpointError) and isinstance(e, tg.Error)
    assert e.errno == errno.ENOSPC and e.filename == str(good)
    assert str(e) == (f"{good}: cannot save the checkpoint (No space left on device); "
                      f"the previous checkpoint there is unchanged")
    assert ".tmp" not in str(e) and isinstance(e.__cause__, OSError)
    assert tg.checkpoint.info(good).step == 1
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is CheckpointWriteError and str(copy) == str(e) and copy.errno == e.errno


def test_failed_rename_names_the_target(tmp_path, good, monkeypatch):
    import tracegraph._atomic as atomic

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", src)

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(CheckpointWriteError, match="Permission denied") as e:
        tg.checkpoint.save(good, {"w": np.zeros(10)})
    monkeypatch.undo()
    assert ".tmp" not in str(e.value) and e.value.filename == str(good)
    assert os.listdir(good.parent) == [good.name] and tg.checkpoint.info(good).step == 1


def test_missing_folder_and_target_that_is_a_folder(tmp_path):
    with pytest.raises(CheckpointWriteError, match="no file was written") as e:
        tg.checkpoint.save(tmp_path / "nope" / "x.ckpt", {"w": np.ones(1)})
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOENT
    assert str(tmp_path / "nope" / "x.ckpt") in str(e.value)
    (tmp_path / "d.ckpt").mkdir()
    with pytest.raises(CheckpointWriteError, match="d.ckpt: cannot save"):
        tg.checkpoint.save(tmp_path / "d.ckpt", {"w": np.ones(1)})
    assert os.listdir(tmp_path) == ["d.ckpt"] and os.listdir(tmp_path / "d.ckpt") == []


def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "x.ckpt"
    tg.checkpoint.save(target, {"w": np.ones(2)}, step=1)
    before = target.read_bytes()
    os.chmod(folder, 0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        with pytest.raises(CheckpointWriteError, match="Permission denied") as e:
            tg.checkpoint.save(target, {"w": np.zeros(2)}, step=2)
        assert str(e.value).startswith(f"{target}: cannot save") and ".tmp" not in str(e.value)
        assert isinstance(e.value, OSError) and e.value.errno == errno.EACCES
    finally:
        os.chmod(folder, 0o755)
    assert target.read_bytes() == before and os.listdir(folder) == ["x.ckpt"]


def test_read_only_folder_simulated(tmp_path, good, monkeypatch):
    # what creating the temp file in a read-only folder raises, also when run as root
    import tracegraph._atomic as atomic

    real_open = atomic.os.open

    def refuse(name, flags, mode=0o777):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, mode)

    before = good.read_bytes()
    monkeypatch.setattr(atomic.os, "open", refuse)
    with pytest.raises(CheckpointWriteError) as e:
        tg.checkpoint.save(good, {"w": np.zeros(2)}, step=2)
    monkeypatch.undo()
    assert str(e.value) == (f"{good}: cannot save the checkpoint (Permission denied); "
                            f"the previous checkpoint there is unchanged")
    assert e.value.errno == errno.EACCES and ".tmp" in e.value.__cause__.filename
    assert good.read_bytes() == before and os.listdir(good.parent) == [good.name]


# ------------------------------------------------------------------ stale temp files


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path, good):
    old = time.time() - 3600
    stale = [".good.ckpt.abcd1234.tmp", ".other.tg.zz_9a8b7.tmp", ".good.ckpt.k2x9_q0m.tmp"]
    kept = [".good.ckpt.tmp", "good.ckpt.abcd1234.tmp", ".good.ckpt.abcd1234.tmp.keep",
            ".good.ckpt.ABCD1234.tmp", ".good.ckpt.abc.tmp", "notes.txt",
            ".good.ckpt.future00.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"PK half a checkpoint")
        os.utime(tmp_path / name, (old, old))
    future = time.time() + 3600  # newer than the save below: a save that began after it
    os.utime(tmp_path / ".good.ckpt.future00.tmp", (future, future))
    (tmp_path / ".dir.abcd1234.tmp").mkdir()  # matching names that are not regular files
    os.symlink(tmp_path / "notes.txt", tmp_path / ".link.abcd1234.tmp")
    kept += [".dir.abcd1234.tmp", ".link.abcd1234.tmp"]
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / ".x.ckpt.abcd1234.tmp").write_bytes(b"")
    os.utime(sub / ".x.ckpt.abcd1234.tmp", (old, old))
    kept.append("sub")
    live = tmp_path / ".live.ckpt.11112222.tmp"  # a temp file whose writer is alive
    live.write_bytes(b"")
    os.utime(live, (old, old))
    with open(live, "rb") as writer:
        if fcntl is not None:  # (without file locks there is no telling: see _atomic)
            fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
            kept.append(live.name)
        tg.checkpoint.save(good, {"w": np.ones(3)}, step=2)
        assert sorted(os.listdir(tmp_path)) == sorted(kept + ["good.ckpt"])
    assert os.listdir(sub) == [".x.ckpt.abcd1234.tmp"]
    assert tg.checkpoint.info(good).step == 2
    tg.checkpoint.save(good, {"w": np.ones(3)}, step=3)  # its writer has "died"
    assert live.name not in os.listdir(tmp_path)


# ------------------------------------------------------------------ mutation fuzzer
#
# Damage a good checkpoint in seeded random ways and read it back with every reader: the
# only exception allowed out is CheckpointError naming the file; a read that succeeds
# must give exactly what the undamaged file gives (the damage was harmless: a zip
# timestamp, the members' order, a Fortran-ordered copy of an array, ...).


def _fuzz_tree():
    return {"model": make_model(7, n=2),
            "opt": Adam(np.array(5, np.int32), {"w": np.arange(3.0)}, {"w": -np.arange(3.0)}),
            "bf": np.arange(6, dtype=np.float32).astype(ml_dtypes.bfloat16).reshape(2, 3),
            "ints": {7: np.arange(3, dtype=np.int64), 3: np.zeros((0, 2), np.float32)},
            "py": [3, 2.5, True, (1 + 1j,)], "h": np.array(1.5, np.float16)}


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    p = tmp_path_factory.mktemp("fuzz") / "base.ckpt"
    tg.checkpoint.save(p, _fuzz_tree(), step=12,
                       metadata={"loss": 0.5, "tags": ["a", "b"], "cfg": {"lr": 0.1}})
    with zipfile.ZipFile(p) as z:
        doc = json.loads(np.load(io.BytesIO(z.read("__checkpoint__.json.npy"))).tobytes())
    return {"path": p, "bytes": p.read_bytes(), "doc": doc, "load": tg.checkpoint.load(p),
            "info": tg.checkpoint.info(p), "like": tg.checkpoint.load(p, like=_fuzz_tree())}


_FOREIGN = [None, True, 0, -1, 1.5, "x", [], {}, [0], {"x": 0}, 10 ** 30]


def _json_type(v):
    return {type(None): "null", bool: "bool", int: "int", float: "float", str: "str",
            list: "list", dict: "dict"}[type(v)]


def _json_mutation(doc, rng):
    """A copy of ``doc`` with one key or value changed; and the top-level key it is in."""
    doc = json.loads(json.dumps(doc))
    spots = []  # (container, key, path from the top)

    def walk(node, where):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            spots.append((node, k, where + (k,)))
            if isinstance(v, (dict, list)):
                walk(v, where + (k,))

    walk(doc, ())
    box, key, where = spots[rng.integers(len(spots))]
    op = rng.choice(["retype", "retype", "drop", "dup", "add", "rename"])
    if op == "retype":
        old = box[key]
        choices = [v for v in _FOREIGN if _json_type(v) != _json_type(old)
                   and not (v is None and key == "py")]  # py: null is a legal other value
        box[key] = choices[rng.integers(len(choices))]
    elif op == "drop":
        del box[key]
    elif op == "dup":
        if isinstance(box, list):
            box.insert(key, json.loads(json.dumps(box[key])))
        else:
            box[f"{key}_copy"] = box[key]
    elif op == "add":  # (not a null to a list: in the tree, that is a legal None child)
        extra = _FOREIGN[rng.integers(1, len(_FOREIGN))]
        (box.append if isinstance(box, list) else lambda v: box.__setitem__("extra", v))(extra)
    elif isinstance(box, dict):
        box[f"{key}x"] = box.pop(key)  # rename a key
    else:  # (swapping list items would be legal in the tree: a dict's key order)
        del box[key]
    return doc, where[0], f"json {op} at {'/'.join(map(str, where))}"


def _mutate(base, case, dst):
    """Write a damaged copy of the base checkpoint to ``dst``; returns (what, top key)."""
    rng = np.random.default_rng(case)
    data = base["bytes"]
    kind = ["flip", "truncate", "drop", "extra", "json", "json", "entry", "flip"][case % 8]
    with zipfile.ZipFile(base["path"]) as z:
        names = z.namelist()
    if kind == "flip":
        buf = bytearray(data)
        positions = rng.integers(len(buf), size=rng.integers(1, 5))
        for i in positions:
            buf[i] ^= int(rng.integers(1, 256))
        dst.write_bytes(bytes(buf))
        return f"flip bytes {sorted(positions.tolist())}", None
    if kind == "truncate":
        n = int(rng.integers(len(data)))
        dst.write_bytes(data[:n])
        return f"truncate to {n} bytes", None
    if kind == "drop":
        name = names[rng.integers(len(names))]
        _rezip(base["path"], dst, drop=[name])
        return f"drop {name}", None
    if kind == "extra":
        choice = rng.integers(3)
        name = [f"a{len(names) - 1}.npy", "junk.txt", names[rng.integers(len(names))]][choice]
        _rezip(base["path"], dst, add=[(name, _npy(np.ones(3)))])
        return f"add {name}", None
    if kind == "json":
        doc, top, what = _json_mutation(base["doc"], rng)
        text = json.dumps(doc).encode()
        entry = _npy(np.frombuffer(text, np.uint8))
        _rezip(base["path"], dst, replace={"__checkpoint__.json.npy": entry})
        return what, top
    # replace one leaf's entry by the same values in another dtype or shape, or by a
    # harmless other encoding of the same array
    name = f"a{rng.integers(len(names) - 1)}.npy"
    with zipfile.ZipFile(base["path"]) as z:
        arr = np.load(io.BytesIO(z.read(name)))
    other = {np.dtype(np.float64): np.float32, np.dtype(np.complex128): np.complex64}
    variants = [lambda a: a.astype(other.get(a.dtype, np.float64)),
                lambda a: a.reshape(-1), lambda a: a.reshape(1, *a.shape),
                lambda a: a[..., :0] if a.ndim else a.reshape(1, 1),
                lambda a: np.asfortranarray(a), lambda a: a.byteswap().view(a.dtype.newbyteorder())]
    v = int(rng.integers(len(variants)))
    _rezip(base["path"], dst, replace={name: _npy(variants[v](arr))})
    return f"entry {name} variant {v}", None


def _leaves_equal(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb and len(la) == len(lb)
    for x, y in zip(la, lb):
        same(x, y)


def _fuzz_case(base, case, tmp_path):
    p = tmp_path / f"m{case}.ckpt"
    what, top = _mutate(base, case, p)
    start = time.perf_counter()
    for reader in ("load", "info", "like"):
        try:
            if reader == "load":
                same(tg.checkpoint.load(p), base["load"])
            elif reader == "like":
                _leaves_equal(tg.checkpoint.load(p, like=_fuzz_tree()), base["like"])
            else:
                got, want = tg.checkpoint.info(p), base["info"]
                assert got.leaves == want.leaves, what
                assert got.step == want.step or top == "step", what
                assert got.metadata == want.metadata or top == "metadata", what
        except CheckpointError as e:
            assert str(p) in str(e), (what, str(e))
        except Exception as e:  # the point: nothing else may escape
            raise AssertionError(f"case {case} ({what}), {reader}: {type(e).__name__}: {e}") from e
    assert time.perf_counter() - start < 5.0, what


@pytest.mark.parametrize("case", range(100))
def test_fuzz_damaged_checkpoints(fuzz_base, case, tmp_path):
    _fuzz_case(fuzz_base, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(100, 3100))
def test_fuzz_damaged_checkpoints_slow(fuzz_base, case, tmp_path):
    _fuzz_case(fuzz_base, case, tmp_path)


def test_typed_prng_keys_round_trip(tmp_path):
    """Typed keys (what Flax NNX Rngs hold) save as their data and load back as keys of
    the same implementation, also into like=; the declared size includes the key data."""
    tree = {"w": np.ones(3, np.float32), "rng": jax.random.key(3),
            "keys": jax.random.split(jax.random.key(4, impl="rbg"), 2)}
    path = tmp_path / "keys.ckpt"
    tg.checkpoint.save(path, tree)
    for back in (tg.checkpoint.load(path), tg.checkpoint.load(path, like=tree)):
        for name in ("rng", "keys"):
            assert back[name].dtype == tree[name].dtype
            np.testing.assert_array_equal(jax.random.key_data(back[name]),
                                          jax.random.key_data(tree[name]))
    assert ("rng", (), "key<threefry2x32>") in tg.checkpoint.info(path).leaves
    wrong = dict(tree, rng=jax.random.key(3, impl="rbg"))
    with pytest.raises(tg.checkpoint.CheckpointError, match=r"rng: checkpoint key<threefry2x32>\[\], like key<rbg>\[\]"):
        tg.checkpoint.load(path, like=wrong)
