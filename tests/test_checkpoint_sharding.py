"""tg.checkpoint with sharded jax.Arrays: the shardings are recorded and shown by `info`,
`load` places leaves onto the shardings of ``like`` or of ``shardings=`` (a mesh of any
shape), reading only the saved blocks each device's part meets; checkpoints that
several processes wrote (shard files next to the checkpoint) read back whole; damaged
or forged shard records are `CheckpointError`s. Eight devices need XLA_FLAGS before JAX
is imported: that test runs in a subprocess (-m slow); tests/test_multiprocess.py runs
two processes."""

import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

import tracegraph as tg
from tracegraph import _checkpoint_shards as shards
from tracegraph.checkpoint import CheckpointError, ShardingInfo

from sharded_checkpoints import TOKEN, forge, side_path, write_document, write_side

MESH = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Auto,))
X = np.arange(48, dtype=np.float32).reshape(8, 6)
V = np.arange(10, dtype=np.int32)


def test_a_sharded_array_keeps_its_sharding(tmp_path):
    w = jax.device_put(X, NamedSharding(MESH, P("data")))
    tree = {"w": w, "b": np.ones(3, np.float32), "n": 3}
    p = tmp_path / "s.ckpt"
    tg.checkpoint.save(p, tree, step=7)
    inf = tg.checkpoint.info(p)
    assert inf.leaves == (("b", (3,), "float32"), ("n", (), "int64"), ("w", (8, 6), "float32"))
    assert inf.shardings[:2] == (None, None)
    assert inf.shardings[2] == ShardingInfo(("data",), (1,), P("data"), (((0, 8), (0, 6)),), (0,))
    assert str(inf.shardings[2]) == "mesh {'data': 1}, spec P('data'), 1 shard"
    host = tg.checkpoint.load(p)  # no target: numpy, as always
    assert type(host["w"]) is np.ndarray and host["n"] == 3
    np.testing.assert_array_equal(host["w"], X)
    back = tg.checkpoint.load(p, like=tree)  # like's sharding
    assert back["w"].sharding == w.sharding and type(back["b"]) is np.ndarray
    np.testing.assert_array_equal(np.asarray(back["w"]), X)
    # a ShapeDtypeStruct with another sharding; a single-device array stays on the host
    want = NamedSharding(MESH, P(None, "data"))
    abstract = {"w": jax.ShapeDtypeStruct(X.shape, X.dtype, sharding=want),
                "b": jax.numpy.zeros(3), "n": 0}
    out = tg.checkpoint.load(p, like=abstract)
    assert out["w"].sharding == want and type(out["b"]) is np.ndarray
    # shardings=: a mesh with the saved axis names (the saved spec over it), one sharding
    # for every array leaf, or a pytree of like's structure
    other = jax.make_mesh((1, 1), ("model", "data"), axis_types=(AxisType.Auto,) * 2)
    out = tg.checkpoint.load(p, shardings=other)
    assert out["w"].sharding == NamedSharding(other, P("data")) and type(out["b"]) is np.ndarray
    one = SingleDeviceSharding(jax.devices()[0])
    out = tg.checkpoint.load(p, like=tree, shardings={"w": None, "b": one, "n": None})
    assert type(out["w"]) is np.ndarray and out["b"].sharding == one and out["n"] == 3
    out = tg.checkpoint.load(p, shardings=NamedSharding(MESH, P()))
    assert out["b"].sharding == NamedSharding(MESH, P()) and isinstance(out["w"], jax.Array)
    assert out["n"] == 3  # a Python scalar stays one


def test_bf16_and_keys_sharded(tmp_path):
    import ml_dtypes

    b = jax.device_put(X.astype(ml_dtypes.bfloat16), NamedSharding(MESH, P("data")))
    k = jax.device_put(jax.random.split(jax.random.key(1), 4), NamedSharding(MESH, P("data")))
    p = tmp_path / "k.ckpt"
    tg.checkpoint.save(p, {"b": b, "k": k})
    assert tg.checkpoint.info(p).shardings[1].shards == (((0, 4), (0, 2)),)  # the key data
    for out in (tg.checkpoint.load(p), tg.checkpoint.load(p, like={"b": b, "k": k})):
        assert out["b"].dtype == ml_dtypes.bfloat16 and out["k"].dtype == k.dtype
        np.testing.assert_array_equal(np.asarray(out["b"]), np.asarray(b))
        np.testing.assert_array_equal(jax.random.key_data(out["k"]), jax.random.key_data(k))
    assert tg.checkpoint.load(p, like={"b": b, "k": k})["k"].sharding == k.sharding


@pytest.mark.parametrize("processes", [1, 3])
def test_blocks_assemble_and_place(tmp_path, processes):
    arrays = {"w": X, "v": V, "h": np.linspace(0, 1, 5)}
    p = tmp_path / "f.ckpt"
    forge(p, arrays, {"w": (4, 2), "v": (5,)}, processes=processes, step=4)
    inf = tg.checkpoint.info(p)
    w = inf.shardings[0]
    assert w.mesh_axes == ("m0", "m1") and w.mesh_shape == (4, 2) and w.spec == P("m0", "m1")
    assert len(w.shards) == 8 and w.shards[1] == ((0, 2), (3, 6))
    assert set(w.processes) == set(range(processes)) and inf.shardings[2] is None
    host = tg.checkpoint.load(p)
    for name, arr in arrays.items():
        np.testing.assert_array_equal(host[name], arr)
    mesh = jax.make_mesh((1, 1), ("m0", "m1"), axis_types=(AxisType.Auto,) * 2)
    placed = tg.checkpoint.load(p, shardings=mesh)  # h was saved whole: it stays on the host
    assert placed["w"].sharding == NamedSharding(mesh, P("m0", "m1"))
    assert type(placed["h"]) is np.ndarray
    np.testing.assert_array_equal(np.asarray(placed["w"]), X)
    np.testing.assert_array_equal(np.asarray(placed["v"]), V)
    assert w.named_sharding(mesh) == NamedSharding(mesh, P("m0", "m1"))


def test_a_region_reads_only_the_blocks_it_meets():
    blocks = [((0, 4), (0, 3)), ((0, 4), (3, 6)), ((4, 8), (0, 3)), ((4, 8), (3, 6))]
    read = []

    def fetch(j):
        read.append(j)
        (a, b), (c, d) = blocks[j]
        return X[a:b, c:d]

    np.testing.assert_array_equal(shards.region(blocks, ((1, 3), (2, 5)), X.dtype, fetch), X[1:3, 2:5])
    assert read == [0, 1]
    read.clear()
    np.testing.assert_array_equal(shards.region(blocks, ((5, 8), (4, 6)), X.dtype, fetch), X[5:, 4:])
    assert read == [3]


def test_placement_problems_are_listed(tmp_path):
    p = tmp_path / "s.ckpt"
    tg.checkpoint.save(p, {"w": jax.device_put(X, NamedSharding(MESH, P("data"))),
                           "h": np.ones(3), "n": 1.5})
    other = jax.make_mesh((1,), ("model",), axis_types=(AxisType.Auto,))
    with pytest.raises(CheckpointError, match=r"(?s)cannot place the leaves as asked:\n  w: cannot "
                                              r"be placed on the mesh, it was saved over mesh axes "
                                              r"\('data',\); the mesh has \('model',\)"):
        tg.checkpoint.load(p, shardings=other)
    with pytest.raises(CheckpointError, match=r"h: a float64 array cannot be placed.*jax_enable_x64"):
        tg.checkpoint.load(p, shardings=NamedSharding(MESH, P()))
    with pytest.raises(CheckpointError, match=r"load: shardings= is a str; without like="):
        tg.checkpoint.load(p, shardings="data")
    like = {"w": X, "h": np.ones(3), "n": 0.0}
    with pytest.raises(CheckpointError, match=r"shardings does not have like's structure"):
        tg.checkpoint.load(p, like=like, shardings={"w": None})
    with pytest.raises(CheckpointError, match=r"w: shardings holds a str, not a Sharding or None"):
        tg.checkpoint.load(p, like=like, shardings={"w": "data", "h": None, "n": None})
    with pytest.raises(CheckpointError, match=r"w: cannot be placed with NamedSharding.*rank"):
        tg.checkpoint.load(p, like=like, shardings={"w": NamedSharding(MESH, P(None, None, "data")),
                                                    "h": None, "n": None})


def test_a_failed_load_names_the_call_site(tmp_path):
    p = tmp_path / "s.ckpt"
    tg.checkpoint.save(p, {"w": jax.device_put(X, NamedSharding(MESH, P("data")))})
    other = jax.make_mesh((1,), ("model",), axis_types=(AxisType.Auto,))
    with pytest.raises(CheckpointError) as e:
        tg.checkpoint.load(p, shardings=other)
    assert str(e.value).startswith(f"load: {p}") and "test_checkpoint_sharding.py:" in str(e.value)


# ------------------------------------------------------------------ damaged or forged records


def _forged(tmp_path, processes=1):
    p = tmp_path / "f.ckpt"
    doc = forge(p, {"w": X, "v": V}, {"w": (2, 2), "v": (2,)}, processes=processes)
    return p, doc


def _rewrite(p, doc):
    with zipfile.ZipFile(p) as z:
        entries = {n[:-4]: np.load(z.open(n)) for n in z.namelist() if n != "__checkpoint__.json.npy"}
    write_document(p, doc, entries)


def _shard(doc, leaf=0, j=0):
    return doc["leaves"][leaf]["sharding"]["shards"][j]


@pytest.mark.parametrize("edit, match", [
    (lambda d: _shard(d).update(index=[[0, 4], [0, 4]]), "do not tile|overlap"),
    (lambda d: _shard(d).update(index=[[0, 4], [1, 3]]), "overlap|gap"),
    (lambda d: _shard(d).update(index=[[0, 9], [0, 3]]), "not within its shape"),
    (lambda d: _shard(d).update(index=[[-1, 4], [0, 3]]), "not within its shape"),
    (lambda d: _shard(d).update(index=[[3, 1], [0, 3]]), "not within its shape"),
    (lambda d: _shard(d).update(index=[[0, 4]]), "not within its shape"),
    (lambda d: _shard(d).update(index=[[0, 4], [0, True]]), "not within its shape"),
    (lambda d: d["leaves"][0]["sharding"]["shards"].append(_shard(d)), "lists a shard twice"),
    (lambda d: d["leaves"][0]["sharding"]["shards"].pop(), "do not tile"),
    (lambda d: d["leaves"][1]["sharding"]["shards"].pop(), "leave a gap along dimension 0"),
    (lambda d: d["leaves"][0]["sharding"].update(shards=[]), "bad list of shards"),
    (lambda d: _shard(d).update(file=1), "bad shard 0"),
    (lambda d: _shard(d).update(file="0"), "bad shard 0"),
    (lambda d: _shard(d).update(extra=1), "bad shard 0"),
    (lambda d: d["leaves"][0]["sharding"].update(mesh={"axes": ["m0"], "shape": [2, 2]}), "bad mesh"),
    (lambda d: d["leaves"][0]["sharding"].update(mesh={"axes": ["m0", "m0"], "shape": [2, 2]}), "bad mesh"),
    (lambda d: d["leaves"][0]["sharding"].update(mesh={"axes": ["m0", "m1"], "shape": [0, 2]}), "bad mesh"),
    (lambda d: d["leaves"][0]["sharding"].update(spec=["m0", "zz"]), "bad partition spec"),
    (lambda d: d["leaves"][0]["sharding"].update(spec=["m0", "m1", None]), "bad partition spec"),
    (lambda d: d["leaves"][0]["sharding"].update(spec=["m0", ["m0"]]), "uses a mesh axis twice"),
    (lambda d: d["leaves"][0]["sharding"].update(mesh=None), "bad partition spec"),
    (lambda d: d["leaves"][0]["sharding"].update(more=1), "bad sharding record"),
    (lambda d: d["leaves"][0].update(sharding=[1]), "bad sharding record"),
    (lambda d: d["leaves"][0].update(shape=[8, 6, 1]), "not within its shape"),
    (lambda d: d["leaves"][0].update(shape=[800000, 6]), "leave a gap along dimension 0"),
    (lambda d: d.update(shard_files={"token": TOKEN, "processes": [1]}), "holds no shard"),
    (lambda d: d.update(shard_files={"token": "../../etc", "processes": [1]}), "bad shard_files"),
    (lambda d: d.update(shard_files={"token": TOKEN, "processes": []}), "bad shard_files"),
    (lambda d: d.pop("shard_files"), "lacks 'shard_files'"),
    (lambda d: d.update(version=1), "unexpected keys 'shard_files'"),
    (lambda d: d["leaves"][0].update(py="float"), "scalar kind|sharded Python scalar"),
])
def test_forged_shard_records(tmp_path, edit, match):
    p, doc = _forged(tmp_path)
    edit(doc)
    _rewrite(p, doc)
    for read in (tg.checkpoint.info, tg.checkpoint.load):
        with pytest.raises(CheckpointError, match=match) as e:
            read(p)
        assert str(p) in str(e.value)


def test_entries_that_disagree_with_the_shards(tmp_path):
    p, doc = _forged(tmp_path)
    with zipfile.ZipFile(p) as z:
        entries = {n[:-4]: np.load(z.open(n)) for n in z.namelist() if n != "__checkpoint__.json.npy"}
    for name, value, match in [
        ("a0.1", None, "entry 'a0.1' is missing"),
        ("a0.9", np.ones(3), "unexpected entries 'a0.9.npy'"),
        ("a0.1", np.ones((400, 400), np.float32), r"entry 'a0.1' holds \d+ bytes, more than"),
        ("a0.1", np.ones((4, 2), np.float32), r"is float32\[4, 2\], its header says float32\[4, 3\]"),
        ("a0.1", np.ones((3, 4), np.float32), r"leaf w \(a0.1\) is float32\[3, 4\], its header says"),
    ]:
        changed = dict(entries)
        if value is None:
            del changed[name]
        else:
            changed[name] = value
        write_document(p, doc, changed)
        with pytest.raises(CheckpointError, match=match):
            tg.checkpoint.load(p)


def test_shard_files(tmp_path):
    p, doc = _forged(tmp_path, processes=2)
    side = side_path(p, TOKEN, 1)
    assert os.path.exists(side) and tg.checkpoint.info(p).shardings[0].processes == (0, 1, 0, 1)
    good = open(side, "rb").read()
    with zipfile.ZipFile(side) as z:
        entries = {n[:-4]: np.load(z.open(n)) for n in z.namelist() if n != "__shards__.json.npy"}
    os.unlink(side)
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint, the shard file of process 1 "
                                              r"\(f.ckpt.0123456789abcdef.p00001.shards\) is missing"):
        tg.checkpoint.load(p)
    for doc_, ents, match in [
        ({"format": "tracegraph-checkpoint-shards", "version": 1, "token": "f" * 16, "process": 1},
         entries, "the shard file says"),
        ({"format": "tracegraph-checkpoint-shards", "version": 1, "token": TOKEN, "process": 2},
         entries, "the shard file says"),
        ({"format": "tracegraph-checkpoint-shards", "version": True, "token": TOKEN, "process": 1},
         entries, "the shard file says"),
        (None, {k: v for k, v in entries.items() if k != "a0.1"}, "entry 'a0.1' is missing"),
        (None, {**entries, "a5": np.ones(2)}, "unexpected entries 'a5.npy'"),
    ]:
        write_side(side, TOKEN, 1, ents, doc_)
        for read in (tg.checkpoint.info, tg.checkpoint.load):
            with pytest.raises(CheckpointError, match=match) as e:
                read(p)
            assert str(p) in str(e.value)
    with open(side, "wb") as f:
        f.write(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        tg.checkpoint.load(p)
    with open(side, "wb") as f:
        f.write(good)
    np.testing.assert_array_equal(tg.checkpoint.load(p)["w"], X)


def test_sizes_beyond_the_file_are_refused_before_allocating(tmp_path):
    p = tmp_path / "big.ckpt"
    n = 1 << 40
    doc = {"format": "tracegraph-checkpoint", "version": 2, "step": None, "metadata": None,
           "tree": {"dict": [["w", {"leaf": 0}]]},
           "leaves": [{"path": "w", "shape": [n], "dtype": "float32", "py": None,
                       "sharding": {"mesh": {"axes": ["d"], "shape": [2]}, "spec": ["d"],
                                    "shards": [{"file": 0, "index": [[0, n // 2]]},
                                               {"file": 0, "index": [[n // 2, n]]}]}}],
           "shard_files": None}
    write_document(p, doc, {"a0.0": np.ones(4, np.float32), "a0.1": np.ones(4, np.float32)})
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="less than its declared 2199023255552"):
            tg.checkpoint.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    # a deflated entry that would inflate far past what the file holds: refused from the
    # zip directory, before it is inflated
    bomb = tmp_path / "bomb.ckpt"
    small = {"format": "tracegraph-checkpoint", "version": 2, "step": None, "metadata": None,
             "tree": {"dict": [["w", {"leaf": 0}]]},
             "leaves": [{"path": "w", "shape": [1 << 24], "dtype": "float32", "py": None,
                         "sharding": {"mesh": None, "spec": None,
                                      "shards": [{"file": 0, "index": [[0, 1 << 24]]}]}}],
             "shard_files": None}
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__checkpoint__.json.npy", _npy_bytes(np.frombuffer(json.dumps(small).encode(), np.uint8)))
        z.writestr("a0.0.npy", _npy_bytes(np.zeros(1 << 24, np.float32)))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(CheckpointError, match="compression bomb"):
        tg.checkpoint.load(bomb)


def _npy_bytes(arr):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


# ------------------------------------------------------------------ saving over, pruning


def test_a_save_over_a_multi_file_checkpoint_removes_its_shard_files(tmp_path):
    p, _ = _forged(tmp_path, processes=3)
    orphan = side_path(p, "f" * 16, 1)  # what a save killed before its checkpoint file left
    write_side(orphan, "f" * 16, 1, {"a0.0": np.ones(2)})
    other = side_path(tmp_path / "other.ckpt", TOKEN, 1)  # another checkpoint's: kept
    write_side(other, TOKEN, 1, {})
    past = time.time() - 5
    for name in os.listdir(tmp_path):
        os.utime(tmp_path / name, (past, past))
    assert len(os.listdir(tmp_path)) == 5
    tg.checkpoint.save(p, {"w": np.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == sorted(["f.ckpt", os.path.basename(other)])
    np.testing.assert_array_equal(tg.checkpoint.load(p)["w"], np.zeros(2))


def test_the_manager_prunes_shard_files_too(tmp_path):
    mgr = tg.checkpoint.CheckpointManager(tmp_path, keep=1)
    forge(mgr.path(1), {"w": X}, {"w": (2, 1)}, processes=2)
    assert len(os.listdir(tmp_path)) == 2
    np.testing.assert_array_equal(mgr.load()["w"], X)
    w = jax.device_put(X, NamedSharding(MESH, P("data")))
    mgr.save(2, {"w": w})
    assert os.listdir(tmp_path) == ["step_00000002.ckpt"]
    assert mgr.load(like={"w": w})["w"].sharding == w.sharding
    assert mgr.load(shardings=MESH)["w"].sharding == w.sharding


# ------------------------------------------------------------------ eight devices


_EIGHT = textwrap.dedent("""
    import os, sys, numpy as np, jax, ml_dtypes
    import tracegraph as tg
    import tracegraph.checkpoint as ck
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    assert len(jax.devices()) == 8
    d = sys.argv[1]
    m8 = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    m42 = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    x = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    tree = {"w": jax.device_put(x, NamedSharding(m8, P("data"))),
            "r": jax.device_put(x, NamedSharding(m42, P(None, "model"))),   # replicated over data
            "b": jax.device_put(x.astype(ml_dtypes.bfloat16), NamedSharding(m42, P("data", "model"))),
            "k": jax.device_put(jax.random.split(jax.random.key(0), 8), NamedSharding(m8, P("data"))),
            "n": np.ones(3), "s": 2.5}
    path = os.path.join(d, "a.ckpt")
    tg.checkpoint.save(path, tree, step=1)
    inf = tg.checkpoint.info(path)
    got = {l[0]: s for l, s in zip(inf.leaves, inf.shardings)}
    assert str(got["w"]) == "mesh {'data': 8}, spec P('data'), 8 shards", str(got["w"])
    assert len(got["r"].shards) == 2 and got["r"].spec == P(None, "model")   # each block once
    assert len(got["k"].shards) == 8 and got["n"] is None
    host = tg.checkpoint.load(path)
    for n in "wr":
        np.testing.assert_array_equal(host[n], x)
    back = tg.checkpoint.load(path, like=tree)
    for n in "wrbk":
        assert back[n].sharding == tree[n].sharding, (n, back[n].sharding)
    np.testing.assert_array_equal(jax.random.key_data(back["k"]), jax.random.key_data(tree["k"]))

    # onto other mesh shapes: each device's part is read from the blocks it meets, only
    reads = []
    real = ck._read_npy
    def counting(zf, name, *a, **k):
        reads.append(name)
        return real(zf, name, *a, **k)
    ck._read_npy = counting
    target = NamedSharding(m42, P("model", "data"))   # 8 x 2 blocks of 8 x 8 rows x cols
    out = tg.checkpoint.load(path, like={**tree, "w": jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=target)})
    w_reads = [r for r in reads if r.startswith("a5.")]   # w is leaf 5 (b, k, n, r, s, w)
    assert sorted(w_reads) == [f"a5.{j}" for j in range(8)], w_reads   # each block read once
    ck._read_npy = real
    for s in out["w"].addressable_shards:
        np.testing.assert_array_equal(np.asarray(s.data), x[s.index])
    assert out["w"].sharding == target
    m2 = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Auto,), devices=jax.devices()[:2])
    two = tg.checkpoint.load(path, like=tree, shardings={**{n: None for n in tree}, "w": NamedSharding(m2, P("data"))})
    np.testing.assert_array_equal(np.asarray(two["w"]), x)
    on42 = tg.checkpoint.load(path, shardings=m42)
    assert on42["w"].sharding == NamedSharding(m42, P("data"))
    np.testing.assert_array_equal(np.asarray(on42["w"]), x)

    # a device's part reads only the blocks it meets: 2 rows of 16 from 8 blocks of 2 rows
    seen = []
    from tracegraph import _checkpoint_shards as shards
    real_region = shards.region
    def region(blocks, index, dtype, read):
        met = []
        out = real_region(blocks, index, dtype, lambda j: (met.append(j), read(j))[1])
        seen.append((index, met))
        return out
    shards.region = region
    tg.checkpoint.load(path, like=tree)
    shards.region = real_region
    w_parts = [m for i, m in seen if len(i) == 2 and i[1] == (0, 8) and i[0][1] - i[0][0] == 2]
    assert len(w_parts) == 8 and all(len(m) == 1 for m in w_parts), seen

    mgr = tg.checkpoint.CheckpointManager(os.path.join(d, "mgr"), keep=1)
    mgr.save(1, tree)
    mgr.save(2, tree)
    assert os.listdir(mgr.directory) == ["step_00000002.ckpt"]
    assert mgr.load(like=tree)["w"].sharding == tree["w"].sharding
    print("ok")
""")


@pytest.mark.slow
def test_eight_devices_in_a_subprocess(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _EIGHT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=600, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
