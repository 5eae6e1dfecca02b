"""Data-parallel training over several processes, as on several hosts: the Transformer of
examples/transformer.py on one global mesh of the devices of every process.

    python examples/multiprocess.py                    # 2 processes x 4 CPU devices, then 1 x 8
    python examples/multiprocess.py --processes 4 --devices-per-process 2 --steps 10

The launcher (this script without --process-id) starts the processes on localhost, each
with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (N CPU devices per process)
and the coordinator's free port, waits for them, and prints each one's output; then it
runs the same training in one process with all the devices, and compares the losses.
On real hosts, start one process per host yourself with the same flags:

    python examples/multiprocess.py --process-id I --processes P --coordinator HOST0:PORT

Each process runs the same program (JAX's multi-controller model):
``jax.distributed.initialize`` joins them, after which ``jax.devices()`` lists the devices
of every process. The parameters are replicated (``P()``), the batch is split over the
mesh axis "data" (each process builds only its own devices' rows with
``jax.make_array_from_callback``), the optimizer's moments are split over "data" too
(ZeRO stage 1: `tg.with_sharding_constraint` keeps them there), and ``tg.jit`` hands the
step to XLA's SPMD partitioner, which inserts the all-reduces. CPU collectives across
processes go through gloo. Every step is saved with `tg.checkpoint.CheckpointManager`:
each process writes only its own shards, process 0 the checkpoint file last; the last
checkpoint is restored onto the same shardings (the next step from it gives the same
loss) and onto a mesh of another shape.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = "RESULT "  # the line each process prints its results on, as JSON


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--processes", type=int, default=2, help="number of processes")
    p.add_argument("--devices-per-process", type=int, default=4, help="CPU devices per process")
    p.add_argument("--process-id", type=int, default=None,
                   help="run as this process (default: launch all of them on localhost)")
    p.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16, help="the global batch (all processes)")
    p.add_argument("--seq-len", type=int, default=12)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--max-chars", type=int, default=20000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None,
                   help="where to save checkpoints (default: a temporary folder, removed after)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds the launcher waits for the processes")
    p.add_argument("--no-single", action="store_true",
                   help="do not also run one process with all the devices")
    return p


# ------------------------------------------------------------------ one process of the run


def worker(args) -> dict:
    """Train, save, restore: what each process runs. Returns (and prints) its results."""
    # NOTE: JAX reads XLA_FLAGS once, when it starts: the device count is set before it is
    # imported (the launcher also sets it, for processes started by hand it is set here).
    os.environ.setdefault("XLA_FLAGS",
                          f"--xla_force_host_platform_device_count={args.devices_per_process}")
    import jax
    import numpy as np
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import tracegraph as tg
    from tracegraph.nn import functional as F

    sys.path.insert(0, HERE)
    from transformer import CharTransformer

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.processes > 1:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.processes, process_id=args.process_id)
    me = jax.process_index()
    n = jax.device_count()  # every process's devices
    if jax.local_device_count() != args.devices_per_process:
        raise SystemExit(f"process {me} has {jax.local_device_count()} devices, not "
                         f"{args.devices_per_process}: set XLA_FLAGS before starting it")
    if args.batch_size % n:
        raise SystemExit(f"--batch-size {args.batch_size} does not split over {n} devices")
    mesh = jax.make_mesh((n,), ("data",), axis_types=(AxisType.Auto,))
    replicated, by_row = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    def global_array(host, sharding):
        """Each process gives the parts of ``host`` that its own devices hold."""
        host = np.asarray(host)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def zero1(leaf):  # an optimizer moment is split over "data" where its rows divide
        return by_row if leaf.ndim and leaf.shape[0] % n == 0 else replicated

    corpus = tg.data.load_pydoc_corpus(max_chars=args.max_chars)
    x, y = corpus.windows("train", args.seq_len)
    model = CharTransformer(corpus.vocab_size, args.dim, args.heads, args.layers, args.seq_len,
                            key=tg.random.key(args.seed))  # the same on every process
    model = jax.tree.map(lambda a: global_array(a, replicated), model)
    optimizer = tg.optim.adam(args.lr)
    state_shardings = jax.tree.map(zero1, jax.eval_shape(optimizer.init, model))
    opt_state = tg.jit(optimizer.init, out_shardings=state_shardings)(model)

    @tg.jit
    def train_step(model, opt_state, x, y):
        loss, grads = tg.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
        updates, opt_state = optimizer.update(grads, opt_state, model)
        model = tg.optim.apply_updates(model, updates)
        return (tg.with_sharding_constraint(model, replicated),
                tg.with_sharding_constraint(opt_state, state_shardings), loss)

    # every process draws the same global batches; each places only its devices' rows
    batches = iter(tg.data.batches({"x": x, "y": y}, args.batch_size, seed=args.seed,
                                   drop_last=True, epochs=None))
    batches = [{k: global_array(v, by_row) for k, v in next(batches).items()}
               for _ in range(args.steps + 1)]
    folder = args.checkpoint_dir
    mgr = tg.checkpoint.CheckpointManager(folder, keep=2)
    losses, start = [], time.perf_counter()
    for step in range(args.steps):
        model, opt_state, loss = train_step(model, opt_state, batches[step]["x"], batches[step]["y"])
        losses.append(float(loss))  # a replicated scalar: every process has it
        mgr.save(step + 1, {"model": model, "opt": opt_state}, metadata={"loss": losses[-1]})
    seconds = time.perf_counter() - start

    # restore the last checkpoint onto the same shardings: the next step is the same
    state = {"model": model, "opt": opt_state}
    restored = mgr.load(like=state)
    same = all(a.sharding == b.sharding and all(
        np.array_equal(np.asarray(s.data), np.asarray(t.data))
        for s, t in zip(a.addressable_shards, b.addressable_shards))
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)))
    last = batches[args.steps]
    next_loss = float(train_step(model, opt_state, last["x"], last["y"])[2])
    resumed_loss = float(train_step(restored["model"], restored["opt"], last["x"], last["y"])[2])

    # ... and onto a mesh of another shape: each device's part read from the saved shards
    other = jax.make_mesh((2, n // 2), ("model", "data"), axis_types=(AxisType.Auto,) * 2)
    moved = mgr.load(shardings=other)
    host = mgr.load()  # every leaf whole, on the host
    moved_ok = all(np.array_equal(np.asarray(s.data), h[s.index])
                   for a, h in zip(jax.tree.leaves(moved), jax.tree.leaves(host))
                   for s in a.addressable_shards)
    result = {"process": me, "processes": jax.process_count(), "devices": n,
              "losses": losses, "seconds": seconds, "next_loss": next_loss,
              "resumed_loss": resumed_loss, "restored_same": same, "other_mesh_same": moved_ok,
              "checkpoint": mgr.latest(), "steps_kept": mgr.steps()}
    print(RESULT + json.dumps(result), flush=True)
    return result


# ------------------------------------------------------------------ the launcher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_all(procs, timeout: float) -> tuple[list, str | None]:
    """The outputs of started processes (text stdout) and what went wrong, if anything: a
    process past ``timeout`` (all are killed then) or one that exited with a non-zero
    status; the message then shows the end of every process's output."""
    deadline = time.monotonic() + timeout
    outputs, failed = [], None
    for i, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            out, _ = proc.communicate()
            failed = failed or f"process {i} did not finish within {timeout:.0f} s"
        outputs.append(out)
        if proc.returncode and failed is None:
            failed = f"process {i} exited with status {proc.returncode}"
    if failed:
        shown = "\n".join(f"--- process {i} ---\n{out[-4000:]}" for i, out in enumerate(outputs))
        failed = f"{failed}\n{shown}"
    return outputs, failed


def launch(processes: int, devices_per_process: int, argv=(), *, checkpoint_dir: str,
           timeout: float = 300.0) -> list[dict]:
    """Run ``processes`` processes of this script on localhost (a free port for the
    coordinator), each with ``devices_per_process`` CPU devices, saving checkpoints to
    ``checkpoint_dir``; returns their results. Raises RuntimeError with every process's
    output if one fails or they take longer than ``timeout`` seconds (then all are
    killed)."""
    coordinator = f"localhost:{free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
    procs = [subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--process-id", str(i),
         "--processes", str(processes), "--devices-per-process", str(devices_per_process),
         "--coordinator", coordinator, "--checkpoint-dir", checkpoint_dir, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for i in range(processes)]
    outputs, failed = wait_all(procs, timeout)
    if failed:
        raise RuntimeError(f"{processes} x {devices_per_process} devices: {failed}")
    results = []
    for i, out in enumerate(outputs):
        lines = [ln for ln in out.splitlines() if ln.startswith(RESULT)]
        if not lines:
            raise RuntimeError(f"process {i} printed no results:\n{out[-4000:]}")
        results.append(json.loads(lines[-1][len(RESULT):]))
    return results


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    if args.process_id is not None:
        if args.processes > 1 and not args.coordinator:
            raise SystemExit("--coordinator HOST:PORT is needed with --process-id")
        if args.checkpoint_dir is None:
            raise SystemExit("--checkpoint-dir is needed with --process-id (a folder every "
                             "process sees)")
        return worker(args)
    passed = ["--steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--seq-len", str(args.seq_len), "--dim", str(args.dim), "--heads", str(args.heads),
              "--layers", str(args.layers), "--max-chars", str(args.max_chars),
              "--lr", str(args.lr), "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory() as tmp:
        return _compare(args, passed, args.checkpoint_dir or tmp)


def _compare(args, passed: list, folder: str) -> dict:
    runs = {"multi": launch(args.processes, args.devices_per_process, passed, timeout=args.timeout,
                            checkpoint_dir=os.path.join(folder, "multi"))}
    print(f"{args.processes} processes x {args.devices_per_process} devices:")
    for r in runs["multi"]:
        print(f"  process {r['process']}: losses {[round(v, 5) for v in r['losses']]}, "
              f"restored checkpoint equal: {r['restored_same']}, resumed loss "
              f"{r['resumed_loss']:.5f} (next step without restoring {r['next_loss']:.5f}), "
              f"on another mesh: {r['other_mesh_same']}")
    if not args.no_single:
        total = args.processes * args.devices_per_process
        runs["single"] = launch(1, total, passed, timeout=args.timeout,
                                checkpoint_dir=os.path.join(folder, "single"))
        single = runs["single"][0]["losses"]
        worst = max(abs(a - b) for a, b in zip(single, runs["multi"][0]["losses"]))
        print(f"1 process x {total} devices: losses {[round(v, 5) for v in single]}")
        print(f"largest loss difference: {worst:.2e}")
    return runs


if __name__ == "__main__":
    main()
