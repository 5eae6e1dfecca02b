"""Several processes on localhost, as on several hosts (``jax.distributed.initialize``,
CPU collectives through gloo; -m slow):

* examples/multiprocess.py trains the Transformer data-parallel over 2 processes x 4 CPU
  devices and over 1 process x 8: the same losses; each saves and restores sharded
  checkpoints (the processes each write their own shards);
* the multi-process checkpoint protocol: each process reads only the shards its devices
  need, a process that cannot write its shards makes every process fail and leaves the
  previous checkpoint as it was, processes saving different trees are refused.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracegraph as tg

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REPO = EXAMPLES.parent

pytestmark = pytest.mark.slow

TINY = ["--steps", "4", "--batch-size", "16", "--seq-len", "12", "--dim", "16", "--heads", "2",
        "--layers", "1", "--max-chars", "20000"]


def _example():
    """examples/multiprocess.py, by its path (a package named ``multiprocess`` exists)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tg_example_multiprocess", EXAMPLES / "multiprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_train_like_one(tmp_path):
    multiprocess = _example()
    two = multiprocess.launch(2, 4, TINY, timeout=240, checkpoint_dir=str(tmp_path / "two"))
    one = multiprocess.launch(1, 8, TINY, timeout=240, checkpoint_dir=str(tmp_path / "one"))
    assert [r["process"] for r in two] == [0, 1] and two[0]["processes"] == 2
    assert all(r["devices"] == 8 for r in two + one)
    losses = [r["losses"] for r in two]
    assert losses[0] == losses[1]  # one replicated value, read by each process
    np.testing.assert_allclose(losses[0], one[0]["losses"], rtol=1e-5, atol=1e-6)
    assert len(losses[0]) == 4 and losses[0][-1] < losses[0][0]
    for r in two + one:
        assert r["restored_same"] and r["other_mesh_same"], r
        assert r["resumed_loss"] == r["next_loss"], r  # the restored state steps the same
        assert r["steps_kept"] == [3, 4]
    # the 2-process checkpoint: process 1's shards in its own file, written before the
    # checkpoint file; the pruned steps' shard files are gone, no temp file is left
    names = sorted(os.listdir(tmp_path / "two"))
    assert [n.split(".")[0] + "." + n.split(".")[-1] for n in names] == [
        "step_00000003.ckpt", "step_00000003.shards", "step_00000004.ckpt", "step_00000004.shards"], names
    assert names[3].endswith(".p00001.shards")
    last, side = tmp_path / "two" / names[2], tmp_path / "two" / names[3]
    assert last.stat().st_mtime >= side.stat().st_mtime
    assert sorted(os.listdir(tmp_path / "one")) == ["step_00000003.ckpt", "step_00000004.ckpt"]
    # here (one device, one process) the 2-process checkpoint loads whole; it holds what
    # the 1-process one holds, laid out the same (its values may differ more than the
    # losses: Adam turns the rounding noise of a zero gradient, such as the attention
    # keys' bias has, into steps of the learning rate's size)
    import jax

    whole = tg.checkpoint.load(last)
    info, single = tg.checkpoint.info(last), tg.checkpoint.info(tmp_path / "one" / "step_00000004.ckpt")
    assert info.leaves == single.leaves
    assert [s and (s.spec, s.shards) for s in info.shardings] == \
        [s and (s.spec, s.shards) for s in single.shardings]
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(whole))
    split = [s for s in info.shardings if s is not None and len(s.shards) == 8]
    assert split and all(set(s.processes) == {0, 1} and s.spec == jax.sharding.PartitionSpec("data")
                         for s in split)
    assert info.step == 4 and info.metadata == {"loss": losses[0][-1]}


_PROTOCOL = textwrap.dedent("""
    import errno, os, sys, tracemalloc
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                               process_id=int(sys.argv[2]))
    import numpy as np
    import tracegraph as tg
    import tracegraph.checkpoint as ck
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    me, d = jax.process_index(), sys.argv[3]
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    x = np.arange(1024 * 1024, dtype=np.float32).reshape(1024, 1024)   # 4 MiB
    def tree(extra=3):
        w = jax.make_array_from_callback(x.shape, NamedSharding(mesh, P("data")), lambda i: x[i])
        return {"w": w, "h": np.ones(extra, np.float32)}
    path = os.path.join(d, "a.ckpt")
    tg.checkpoint.save(path, tree(), step=1)
    sides = [n for n in os.listdir(d) if n.endswith(".shards")]
    assert len(sides) == 1 and sides[0].endswith(".p00001.shards"), os.listdir(d)

    # each process reads only its own devices' blocks, and never holds the whole array
    writers = tg.checkpoint.info(path).shardings[1].processes
    reads, real = [], ck._read_npy
    ck._read_npy = lambda zf, name, *a, **k: (reads.append(name), real(zf, name, *a, **k))[1]
    like = tree()
    tracemalloc.start()
    back = tg.checkpoint.load(path, like=like)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ck._read_npy = real
    mine = sorted(f"a1.{j}" for j, p in enumerate(writers) if p == me)
    assert sorted(r for r in reads if r.startswith("a1.")) == mine, (reads, mine)
    assert peak < 0.75 * x.nbytes, (peak, x.nbytes)   # its half, 2 MiB, and a block being read
    for s in back["w"].addressable_shards:
        np.testing.assert_array_equal(np.asarray(s.data), x[s.index])

    # process 1 cannot write its shards: every process fails, the checkpoint is unchanged
    real_write = ck._write_archive
    def full(f, archive):
        if me == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(f, archive)
    ck._write_archive = full
    try:
        tg.checkpoint.save(path, tree(), step=2)
        raise AssertionError("the save did not fail")
    except ck.CheckpointError as e:
        text = str(e)
        if me == 1:
            assert isinstance(e, ck.CheckpointWriteError) and e.errno == errno.ENOSPC, text
            assert "a.ckpt: cannot save the checkpoint (No space left on device); the previous" in text
        else:
            assert "cannot save the checkpoint, process 1 could not write its part; the previous " \\
                   "checkpoint there is unchanged" in text, text
    ck._write_archive = real_write
    assert tg.checkpoint.info(path).step == 1 and sorted(os.listdir(d)) == sorted(["a.ckpt"] + sides)

    # processes that save different trees are refused, by every process
    try:
        tg.checkpoint.save(path, tree(extra=3 + me), step=2)
        raise AssertionError("different trees were saved")
    except ck.CheckpointError as e:
        assert "process 1 saves another tree than process 0" in str(e), str(e)

    # a good save replaces the checkpoint and its shard file
    tg.checkpoint.save(path, tree(), step=3)
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("pruned")   # process 0 removes the old shard file
    names = sorted(os.listdir(d))
    assert len(names) == 2 and names[0] == "a.ckpt" and names[1] != sides[0], names
    assert tg.checkpoint.info(path).step == 3
    print("ok", flush=True)
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run_processes(code: str, n: int, devices: int, folder, timeout: float = 180.0) -> list:
    """Run ``code`` in ``n`` processes (``devices`` CPU devices each); their outputs.
    Every process's output is shown if one fails or they run past ``timeout``."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    address = f"localhost:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, "-c", code, address, str(i), str(folder)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(n)]
    outs, failure = _example().wait_all(procs, timeout)
    if failure:
        pytest.fail(failure)
    return outs


def test_the_multi_process_checkpoint_protocol(tmp_path):
    outs = _run_processes(_PROTOCOL, 2, 4, tmp_path)
    assert all(o.strip().endswith("ok") for o in outs), outs
