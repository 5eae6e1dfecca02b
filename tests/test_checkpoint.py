"""tg.checkpoint: round trips of pytrees, ``like=`` checking, damaged files, atomic
writes (a saving process killed mid-write leaves the previous checkpoint loadable)."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import namedtuple
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.checkpoint import CheckpointError

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
        (_doc(version=2), {"a0": np.ones(3, np.float32)}, "version 2"),
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
