"""What every example shares: the command line, device selection, the train step's IR
dump, the jit / interpret / eager comparison table, and the timing report.

Each example builds a model, a loss and an optimizer, then hands them to `train`, which
runs `tg.train.fit` (with its tqdm progress bar) in the mode given by ``--mode``, after
``--dump-ir`` and ``--compare`` if they were asked for. ``--mode keras`` trains the same
model Keras style instead: ``model.compile(optimizer, loss)`` and ``model.fit`` (the
example names its loss as Keras would, e.g. ``SparseCategoricalCrossentropy``). ``--mesh
data=4,model=2`` trains on a device mesh instead (`train_on_mesh`: ``tg.nn.parallel``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time

import jax
import numpy as np

import tracegraph as tg
from tracegraph.nn import functional as F

# jit, interpret, eager, compile, imperative, tf-function (tg.train.fit), and keras
# (model.compile / model.fit)
MODES = (*tg.train.MODES, "keras")


def parser(description: str, *, steps=None, epochs=None, batch_size=32, lr=1e-3,
           seed=0, compare_steps=5) -> argparse.ArgumentParser:
    """The flags every example takes, with that example's defaults."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mode", choices=MODES, default="jit",
                   help="jit: define-then-run (tg.jit, XLA); interpret: the same IR run node "
                        "by node; eager: define-by-run (tg.eager); compile: define-by-run "
                        "recorded and run compiled, Python control flow kept (tg.compile); "
                        "imperative: PyTorch style, loss.backward() and optimizer.step(); "
                        "tf-function: TensorFlow 2 style, Variables, a GradientTape and "
                        "apply_gradients in one tg.function; keras: model.compile and "
                        "model.fit")
    p.add_argument("--steps", type=int, default=steps,
                   help="stop after this many training steps (default: run --epochs)")
    p.add_argument("--epochs", type=int, default=epochs, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr, help="learning rate")
    p.add_argument("--seed", type=int, default=seed, help="seed of every random choice")
    p.add_argument("--device", choices=("cpu", "gpu", "tpu"), default=None,
                   help="run on this kind of device (default: JAX's default device)")
    p.add_argument("--dump-ir", metavar="DIR", default=None,
                   help="write the train step's IR (text, JSON, Graphviz DOT, after each "
                        "pass), its StableHLO and optimized HLO to DIR")
    p.add_argument("--compare", action="store_true",
                   help="first run a few steps in each mode from the same parameters and "
                        "batches, and print a table")
    p.add_argument("--compare-steps", type=int, default=compare_steps,
                   help="steps per mode for --compare (the first one, which traces and "
                        "compiles, is left out of the median)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--mesh", metavar="SPEC", default=None,
                   help="train on a device mesh with XLA's SPMD partitioner "
                        "(tg.nn.parallel): data=8 is data parallel, data=4,model=2 also "
                        "splits attention heads and MLPs over 'model'; --mode jit only. On "
                        "CPU with too few devices the script runs itself again with "
                        "XLA_FLAGS=--xla_force_host_platform_device_count=N")
    return p


def select_device(kind: str | None):
    """The first device of ``kind`` ('cpu', 'gpu', 'tpu'), or None for JAX's default.
    A kind this machine lacks is a `tg.Error` saying which devices there are."""
    if kind is None:
        return None
    try:
        return jax.devices(kind)[0]
    except RuntimeError:
        have = sorted({d.platform for d in jax.devices()})
        raise tg.Error(
            f"--device {kind}: this machine has no {kind.upper()} that JAX can use "
            f"(devices: {', '.join(have)}); for a GPU install jax[cuda12], for a TPU jax[tpu]"
        ) from None


def _script() -> str:
    return os.path.basename(sys.argv[0]) or "python"


def on_device(kind: str | None, mesh: str | None = None):
    """A context in which new arrays and computations go to the ``kind`` device. A kind
    this machine lacks ends the script with one line ``SCRIPT: error: ...`` (no traceback).
    With ``mesh`` (``--mesh``), first check that there are enough devices for it (see
    `ensure_mesh_devices`)."""
    try:
        dev = select_device(kind)
    except tg.Error as e:
        raise SystemExit(f"{_script()}: error: {e}") from None
    if mesh:
        ensure_mesh_devices(mesh, kind)
    if dev is None:
        return contextlib.nullcontext()
    print(f"device: {dev}")
    return jax.default_device(dev)


def dump_step_ir(step, state, batch, directory: str, jitted=None) -> list[str]:
    """Compile ``step(state, batch)`` with ``tg.jit(dump=directory)`` (the traced IR, the
    IR after each pass, JSON, DOT, StableHLO, optimized HLO), and also write the traced IR
    as ``train_step.txt``, ``train_step.json`` and ``train_step.dot`` at the top of
    ``directory``. ``jitted``: the step already compiled with ``dump=directory`` (the
    mesh's). Returns the files written."""
    os.makedirs(directory, exist_ok=True)
    jitted = jitted or tg.jit(step, dump=directory)
    jax.block_until_ready(jitted(state, batch))
    graph = jitted.trace(state, batch)
    for ext, text in (("txt", str(graph)), ("json", graph.to_json()), ("dot", graph.to_dot())):
        with open(os.path.join(directory, f"train_step.{ext}"), "w") as f:
            f.write(text)
    files = sorted(os.path.relpath(os.path.join(d, n), directory)
                   for d, _, names in os.walk(directory) for n in names)
    print(f"train step IR ({len(graph.nodes)} nodes) dumped to {directory}/: "
          + ", ".join(files))
    return files


def compare_modes(model, batches, *, loss, optimizer, steps: int = 5, has_aux=False,
                  keras_loss=None) -> list:
    """Train ``steps`` steps from the same ``model`` and the same batches in each mode, and
    print a table: the first step (tracing, compiling), the median of the other steps,
    the loss after the last step, and the time per step relative to jit. Returns the rows
    ``(mode, first_s, median_s, first_loss, final_loss)``."""
    batches = list(itertools.islice(iter(batches), steps))
    rows = []
    for mode in MODES:
        if mode == "keras":
            if keras_loss is None:
                continue
            copy = jax.tree_util.tree_map(lambda a: a, model)  # fit trains in place
            hist = fit_keras(copy, batches, loss=keras_loss, optimizer=optimizer, steps=steps,
                             progress=False)
        else:
            _, hist = tg.train.fit(model, batches, loss=loss, optimizer=optimizer, steps=steps,
                                   mode=mode, has_aux=has_aux, progress=False)
        rows.append((mode, hist.step_times[0], hist.time_per_step, hist.losses[0],
                     hist.losses[-1]))
    print(format_compare(rows, len(batches)))
    return rows


def format_compare(rows, steps: int) -> str:
    base = rows[0][2]
    lines = [
        f"mode comparison: {steps} steps from the same parameters and batches",
        f"{'mode':<11} {'first step':>11} {'time/step':>11} {'vs jit':>8} "
        f"{'loss, step 1':>13} {f'after {steps}':>10}",
    ]
    for mode, first, med, loss0, last in rows:
        lines.append(f"{mode:<11} {_ms(first):>11} {_ms(med):>11} {med / base:>7.1f}x "
                     f"{loss0:>13.6f} {last:>10.6f}")
    lines.append("(time/step: median, leaving out the first step, which traces and compiles; "
                 "jit = define-then-run, interpret = the same IR node by node, "
                 "eager = define-by-run, compile = define-by-run recorded then run compiled, "
                 "imperative = PyTorch style, loss.backward() and optimizer.step(), "
                 "tf-function = TensorFlow 2 style, GradientTape and apply_gradients in a "
                 "tg.function, keras = model.compile and model.fit)")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


class _KerasSteps(tg.callbacks.Callback):
    """Each step's own loss and time during Keras-style ``fit``, into a `tg.train.History`.
    Keras' batch logs hold the epoch's running mean of the loss (what its progress bar
    shows), so step k's loss is ``k * mean_k - (k - 1) * mean_(k-1)``."""

    def __init__(self, hist, batch_size):
        super().__init__()
        self.hist, self.batch_size = hist, batch_size
        self.k, self.mean, self.t0 = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.k, self.mean = 0, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.k += 1
        self.hist.losses.append(self.k * mean - (self.k - 1) * self.mean)
        self.hist.step_times.append(time.perf_counter() - self.t0)
        self.hist.examples += self.batch_size
        self.mean = mean


def fit_keras(model, batches, *, loss, optimizer, steps=None, progress=True) -> tg.train.History:
    """Keras style: ``model.compile(optimizer=optimizer, loss=loss)`` then ``model.fit``
    over the ``{"x", "y"}`` batches (one pass, or ``steps`` steps); the trained weights
    stay in ``model``. Returns a `tg.train.History` of each step's loss and time."""
    model.compile(optimizer=optimizer, loss=loss)
    batches = iter(batches)
    first = next(batches)
    hist = tg.train.History()
    t0 = time.perf_counter()
    model.fit(itertools.chain([first], batches), epochs=1, steps_per_epoch=steps,
              verbose=1 if progress else 0,
              callbacks=[_KerasSteps(hist, len(jax.tree_util.tree_leaves(first)[0]))])
    hist.seconds = time.perf_counter() - t0
    return hist


def eval_mode(mode: str) -> str:
    """The `tg.train.evaluate` mode after training in ``mode`` (keras evaluates with jit)."""
    return "jit" if mode == "keras" else mode


def train(args, model, data, *, loss, optimizer, has_aux=False, compare_data=None,
          keras_loss=None):
    """``--dump-ir`` and ``--compare`` if asked, then `tg.train.fit` in ``args.mode``
    (``keras``: `fit_keras` with ``keras_loss``; ``--mesh``: `train_on_mesh`). Prints the
    time per step. Returns ``(TrainState, History)``."""
    if getattr(args, "mesh", None):
        return train_on_mesh(args, model, data, loss=loss, optimizer=optimizer, has_aux=has_aux)
    if args.dump_ir or args.compare:
        sample = list(itertools.islice(iter(compare_data or data), args.compare_steps))
    if args.dump_ir:
        state0 = tg.train.TrainState(model, optimizer.init(model), 0)
        dump_step_ir(tg.train.make_step(loss, optimizer, has_aux=has_aux), state0, sample[0],
                     args.dump_ir)
    if args.compare:
        compare_modes(model, sample, loss=loss, optimizer=optimizer,
                      steps=args.compare_steps, has_aux=has_aux, keras_loss=keras_loss)
    if args.mode == "keras":
        if keras_loss is None:
            raise SystemExit(f"{os.path.basename(sys.argv[0])}: error: --mode keras: this "
                             "example names no Keras loss")
        hist = fit_keras(model, data, loss=keras_loss, optimizer=optimizer, steps=args.steps,
                         progress=not args.no_progress)
        state = tg.train.TrainState(model, None, len(hist.losses))
    else:
        state, hist = tg.train.fit(model, data, loss=loss, optimizer=optimizer, epochs=1,
                                   steps=args.steps, mode=args.mode, has_aux=has_aux,
                                   progress=not args.no_progress)
    print(f"trained {len(hist.losses)} steps in {hist.seconds:.1f} s [{args.mode}]: "
          f"{hist.time_per_step * 1e3:.2f} ms per step (median, first step "
          f"{hist.step_times[0] * 1e3:.0f} ms), {hist.examples_per_second:,.0f} examples/s; "
          f"loss {hist.losses[0]:.4f} -> {hist.losses[-1]:.4f}")
    return state, hist


# -- --mesh: data and tensor parallelism (tg.nn.parallel) ---------------------------------


def ensure_mesh_devices(spec: str, kind: str | None = None) -> None:
    """Check that JAX has the devices ``--mesh spec`` needs. On CPU with too few, run this
    script again with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (JAX reads
    it when it starts, so it cannot be set from inside); otherwise end with one line
    ``SCRIPT: error: ...``."""
    try:
        need = int(np.prod(list(tg.nn.parallel.mesh_shape(spec).values())))
    except tg.Error as e:
        raise SystemExit(f"{_script()}: error: --mesh: {e}") from None
    default = jax.default_backend()
    if kind and kind != default:
        # the ops of the sharded graph build their meshes over JAX's default devices
        raise SystemExit(f"{_script()}: error: --mesh runs on JAX's default devices ({default}), "
                         f"not --device {kind}; set JAX_PLATFORMS={kind} to make them the default")
    devices = jax.devices()
    if len(devices) >= need:
        return
    flag = f"--xla_force_host_platform_device_count={need}"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    run_as_script = os.path.dirname(os.path.abspath(main_file)) == os.path.dirname(os.path.abspath(__file__))
    on_cpu = default == "cpu"
    if on_cpu and run_as_script and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        print(f"--mesh {spec}: {len(devices)} CPU device(s); running again with XLA_FLAGS={flag}",
              flush=True)
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()}
        env.setdefault("JAX_PLATFORMS", "cpu")
        os.execve(sys.executable, [sys.executable, main_file, *sys.argv[1:]], env)
    hint = f" (on CPU, set XLA_FLAGS={flag} before JAX is imported)" if on_cpu else ""
    raise SystemExit(f"{_script()}: error: --mesh {spec} needs {need} devices, JAX has "
                     f"{len(devices)}{hint}")


def train_on_mesh(args, model, data, *, loss, optimizer, has_aux=False):
    """``--mesh``: the model's `tg.nn.parallel.Plan` on the mesh places the parameters and
    optimizer state, each batch is split over the ``data`` axis, and the step is one
    `tg.jit` with the plan's shardings, trained by `tg.train.fit`. Same model, same
    batches, same losses as one device, to float rounding."""
    if args.mode != "jit":
        raise SystemExit(f"{_script()}: error: --mesh trains in --mode jit (XLA's SPMD "
                         f"partitioner), not --mode {args.mode}")
    if args.compare:
        raise SystemExit(f"{_script()}: error: --compare compares modes on one device; "
                         "leave out --mesh")
    try:
        mesh = tg.nn.parallel.parse_mesh(args.mesh)
        plan = tg.nn.parallel.plan(model, mesh)
        data_size = mesh.shape[plan.data_axis] if plan.data_axis else 1
        if args.batch_size % data_size:
            raise tg.ShapeError(f"--batch-size {args.batch_size} does not split over the mesh "
                                f"axis {plan.data_axis!r} of size {data_size}; use a multiple "
                                f"of {data_size}")
    except tg.Error as e:
        raise SystemExit(f"{_script()}: error: --mesh {args.mesh}: {e}") from None
    print(f"mesh: {plan}")
    state0 = plan.place(tg.train.TrainState(model, optimizer.init(model), 0))
    step_fn = tg.train.make_step(loss, optimizer, has_aux=has_aux)
    step = plan.jit(step_fn, state0, **({"dump": args.dump_ir} if args.dump_ir else {}))
    batches = plan.batches(data)
    if args.dump_ir:
        first = next(iter(batches))
        dump_step_ir(step_fn, state0, first, args.dump_ir, jitted=step)
    state, hist = tg.train.fit(step, batches, state=state0, epochs=1, steps=args.steps,
                               mode="jit", progress=not args.no_progress)
    print(f"trained {len(hist.losses)} steps in {hist.seconds:.1f} s [jit, mesh "
          f"{dict(mesh.shape)}]: {hist.time_per_step * 1e3:.2f} ms per step (median, first "
          f"step {hist.step_times[0] * 1e3:.0f} ms), {hist.examples_per_second:,.0f} "
          f"examples/s; loss {hist.losses[0]:.4f} -> {hist.losses[-1]:.4f}")
    return state, hist


def train_batches(arrays, args):
    """Shuffled training batches (a new order each epoch, fixed by ``--seed``): ``--epochs``
    passes, or endless when only ``--steps`` is given (`train` stops after ``--steps``)."""
    epochs = None if args.steps is not None and args.epochs is None else (args.epochs or 1)
    return tg.data.batches(arrays, args.batch_size, seed=args.seed, drop_last=True,
                           epochs=epochs)


def accuracy_fn(model, batch):
    """``{"accuracy": ...}`` of a classifier on a batch ``{"x", "y"}`` (for evaluate)."""
    pred = tg.argmax(model(batch["x"]), axis=-1)
    return {"accuracy": tg.mean((pred == batch["y"]).astype("f32"))}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def as_numpy(x):
    return np.asarray(jax.device_get(x))


def add_text_flags(p, *, seq_len=64, sample_length=300, temperature=0.8, prompt="The "):
    p.add_argument("--seq-len", type=int, default=seq_len, help="characters per training window")
    p.add_argument("--max-chars", type=int, default=None,
                   help="use only the start of the corpus (quick runs)")
    p.add_argument("--sample-length", type=int, default=sample_length,
                   help="characters to generate after training")
    p.add_argument("--temperature", type=float, default=temperature,
                   help="sampling temperature (0: greedy)")
    p.add_argument("--prompt", default=prompt, help="text the sample starts from")
    return p


# the cross-entropy of logits, as a Keras user names it for model.compile
KERAS_CROSS_ENTROPY = tg.losses.SparseCategoricalCrossentropy(from_logits=True)


def next_char_loss(model, batch):
    """Cross-entropy of next-character logits ``model(x)`` against ``y``."""
    return F.cross_entropy(model(batch["x"]), batch["y"])


def run_text_model(args, corpus, model, optimizer, *, summary: bool = False) -> dict:
    """What both language-model examples do after building their model: train on the
    corpus' windows, report validation bits per character (and optionally the model's IR
    summary), generate a sample, and return the metrics."""
    x, y = corpus.windows("train", args.seq_len)
    state, hist = train(args, model, train_batches({"x": x, "y": y}, args),
                        loss=next_char_loss, optimizer=optimizer, keras_loss=KERAS_CROSS_ENTROPY)
    bpc = bits_per_char(state.model, corpus.windows("validation", args.seq_len), next_char_loss,
                        mode=eval_mode(args.mode))
    print(f"validation: {bpc:.3f} bits per character "
          f"(unigram entropy {corpus.unigram_entropy:.3f})")
    if summary:
        print("IR summary of the model (nodes per module scope, parameters):")
        print(tg.nn.summary(state.model, tg.spec((args.batch_size, args.seq_len), "i32")))
    text = sample_text(state.model, corpus, prompt=args.prompt, length=args.sample_length,
                       seq_len=args.seq_len, temperature=args.temperature,
                       key=tg.random.key(args.seed + 1))
    print(f"sample (temperature {args.temperature}):\n{text}")
    return {"bpc": bpc, "unigram_entropy": corpus.unigram_entropy, "sample": text,
            "final_loss": hist.losses[-1], "time_per_step": hist.time_per_step,
            "losses": hist.losses}


def bits_per_char(model, windows, loss_fn, *, batch_size=256, mode="jit") -> float:
    """Mean cross-entropy of ``model`` over ``windows`` = ``(x, y)``, in bits per
    character."""
    x, y = windows
    nats = tg.train.evaluate(loss_fn, model, tg.data.batches({"x": x, "y": y}, batch_size),
                             mode=mode)["value"]
    return nats / float(np.log(2.0))


def sample_text(model, corpus, *, prompt: str, length: int, seq_len: int,
                temperature: float, key) -> str:
    """Generate ``length`` characters after ``prompt``, one at a time: the model (causal)
    sees the last ``seq_len`` characters, right-padded to a fixed shape so one compiled
    `tg.jit` function serves every step; the next character is sampled from the logits
    at the last real position with an explicit key per step (``temperature`` 0: argmax).
    """
    logits_of = tg.jit(lambda m, ids: m(ids))
    ids = [int(i) for i in corpus.encode(prompt)] or [0]
    for _ in range(length):
        window = ids[-seq_len:]
        buf = np.zeros((1, seq_len), np.int32)
        buf[0, : len(window)] = window
        logits = as_numpy(logits_of(model, buf))[0, len(window) - 1]
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            key, sub = tg.random.split(key)
            nxt = int(jax.random.categorical(sub, logits / temperature))
        ids.append(nxt)
    return corpus.decode(np.asarray(ids, np.int32))
