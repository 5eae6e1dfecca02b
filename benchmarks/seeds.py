"""One training step of each seed article's two programs (tests/seed_programs/), as
tracegraph runs them, beside the PyTorch twins run by PyTorch itself (when installed).

Each program file is executed as it is, on small random data of the shapes it assumes
(the Keras programs' fit runs a few steps), and one step of its training is then timed
with the objects it made:

- the TensorFlow style: article 000's loop body (``tg.GradientTape``, ``tape.gradient``,
  ``tf.optimizers.SGD.apply_gradients``); for the Keras programs (001-004) fit's compiled
  step on one batch of 32 (``model.train_on_batch``, which returns the logs as numbers);
- the PyTorch style on tracegraph: the twin's loop body (``zero_grad``, forward, loss,
  ``backward()``, ``step()``; article 000: manual SGD under ``no_grad``), on the twin's
  own batch (001: one example; 003: the 200 training rows at once; 002, which has no
  loop: the LSTM on a 15-character text, Adam; 004: a batch of 32 images, the twin's SGD);
- the same twin in PyTorch: the program file with its imports changed back to ``torch``
  (004 given ``F = torch.nn.functional``, as the test harness gives tracegraph's).

    python benchmarks/seeds.py [--repeat 7] [--number 10] [--torch-threads N]

Prints milliseconds per step (median of --repeat rounds of --number steps, the rows
taking turns within each round, after warm-up) and the ratios of the tracegraph rows to
PyTorch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _timing import (
    timed_rows,  # benchmarks/_timing.py (the script's folder is on the path)
)

import tracegraph as tg

PROGRAMS = Path(__file__).resolve().parent.parent / "tests" / "seed_programs"
ARTICLES = ("000", "001", "002", "003", "004")
TEXT = "hello tracegraph"  # article 002's corpus in docs/seeds.md


def program(prefix: str) -> tuple[str, str]:
    path = next(PROGRAMS.glob(f"{prefix}_*.py"))
    return path.name, path.read_text(encoding="utf-8")


def run(prefix: str, names: dict, torch_module=None) -> dict:
    """Execute a seed program with ``names`` defined; with ``torch_module``, a PyTorch
    twin runs on PyTorch (its imports changed back). Its prints are dropped."""
    name, src = program(prefix)
    if torch_module is not None:
        src = re.sub(r"^import tracegraph(\S*) as (\w+).*$", r"import torch\1 as \2", src, flags=re.MULTILINE)
    ns = names
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            exec(compile(src, name, "exec"), ns)  # noqa: S102 - the project's own programs
        except TypeError:
            if not prefix.startswith("tf_003"):  # 003's last line unpacks a float (see docs/seeds.md)
                raise
    return ns


def data(rng):
    """Random arrays of the shapes each program assumes."""
    x = np.linspace(-1, 1, 100).astype(np.float32)
    reg_x = rng.normal(size=(256, 4)).astype(np.float32)
    reg_y = (reg_x @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0).reshape(-1, 1).astype(np.float32)
    return {
        "line": (x, 3 * x + 2),
        "mnist": (rng.integers(0, 17, size=(64, 28, 28)).astype(np.uint8),
                  rng.integers(0, 10, size=64).astype(np.uint8)),
        "regression": {"x_train": reg_x[:200], "y_train": reg_y[:200],
                       "x_test": reg_x[200:], "y_test": reg_y[200:]},
        "images": (rng.random((32, 10, 10, 1)).astype(np.float32),
                   rng.integers(0, 10, size=32).astype(np.int64)),
    }


def keras_rows(d, home: Path) -> dict:
    """article -> the TensorFlow-style step (a function)."""
    rows = {}
    x, y = d["line"]
    p0 = run("tf_000", {"x": x, "y": y})
    w, b = p0["w"], p0["b"]

    def tf_000():
        with tg.GradientTape() as tape:
            loss_value = p0["loss"](p0["linear_model"](x), y)
        gradients = tape.gradient(loss_value, [w, b])
        p0["optimizer"].apply_gradients(zip(gradients, [w, b]))
        return loss_value._data

    rows["000"] = tf_000
    ns = run("tf_001", {})
    X, Y = np.array(ns["X"], np.float32), np.array(ns["Y"], np.float32)
    rows["001"] = lambda m=ns["model"]: m.train_on_batch(X, Y)
    mx, my = d["mnist"]
    (home / "datasets").mkdir(exist_ok=True)
    np.savez(home / "datasets" / "mnist.npz", x_train=mx, y_train=my, x_test=mx[:16], y_test=my[:16])
    os.environ["KERAS_HOME"] = str(home)
    ns = run("tf_002", {})
    xb, yb = mx[:32].astype(np.float32), my[:32]
    rows["002"] = lambda m=ns["model"]: m.train_on_batch(xb, yb)
    reg = d["regression"]
    ns = run("tf_003", dict(reg))
    rb = reg["x_train"][:32], reg["y_train"][:32]
    rows["003"] = lambda m=ns["model"]: m.train_on_batch(*rb)
    ns = run("tf_004", {})
    cnn = ns["CNN"]()
    cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ix, iy = d["images"]
    rows["004"] = lambda: cnn.train_on_batch(ix, iy)
    return rows


def torch_style_rows(d, T, functional, to_tensor, done) -> dict:
    """article -> the PyTorch twin's step on module ``T`` (tracegraph or torch);
    ``done(loss)`` is what a step returns (something to wait on)."""
    torch_module = None if T is tg else T
    rows = {}
    x, y = (to_tensor(a) for a in d["line"])
    p0 = run("torch_000", {"x": x, "y": y}, torch_module)

    def step_000():
        loss_value = p0["loss"](p0["linear_model"](x), y)
        loss_value.backward()
        with T.no_grad():
            p0["w"] -= 0.01 * p0["w"].grad
            p0["b"] -= 0.01 * p0["b"].grad
        p0["w"].grad.zero_()
        p0["b"].grad.zero_()
        return done(loss_value)

    rows["000"] = step_000

    def loop_body(model, criterion, optimizer, inputs, target, view=None):
        def step():
            optimizer.zero_grad()
            out = model(*inputs)
            if view is not None:
                out = view(out)
            loss = criterion(out, target)
            loss.backward()
            optimizer.step()
            return done(loss)

        return step

    ns = run("torch_001", {}, torch_module)
    rows["001"] = loop_body(ns["net"], ns["criterion"], ns["optimizer"], (ns["X"],), ns["Y"])

    ns = run("torch_002", {}, torch_module)
    chars = sorted(set(TEXT))
    onehot = np.eye(len(chars), dtype=np.float32)
    codes = np.array([chars.index(c) for c in TEXT])
    lstm = ns["LSTM"](len(chars), 32, len(chars))
    hidden = (T.zeros(1, 1, 32), T.zeros(1, 1, 32))
    rows["002"] = loop_body(
        lambda seq: lstm(seq, hidden)[0], T.nn.CrossEntropyLoss(),
        T.optim.Adam(lstm.parameters(), lr=0.02), (to_tensor(onehot[codes[:-1]][:, None, :]),),
        to_tensor(codes[1:].astype(np.int64)), view=lambda o: o.view(-1, len(chars)))

    reg = {k: to_tensor(v) for k, v in d["regression"].items()}
    ns = run("torch_003", dict(reg), torch_module)
    rows["003"] = loop_body(ns["model"], ns["loss_fn"], ns["optimizer"], (reg["x_train"],),
                            reg["y_train"])

    ns = run("torch_004", {"F": functional}, torch_module)
    ix, iy = d["images"]
    rows["004"] = loop_body(ns["model"], ns["criterion"], ns["optimizer"],
                            (to_tensor(np.repeat(ix.transpose(0, 3, 1, 2), 3, axis=1)),),
                            to_tensor(iy))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=10)
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch.set_num_threads (0: PyTorch's default); on a shared machine "
                         "whose cores are busy, PyTorch's worker threads wait on each other")
    a = ap.parse_args(argv)
    d = data(np.random.default_rng(0))
    # article 001's twin: MSELoss of a [1, 1] output against a [1] target (PyTorch warns)
    warnings.filterwarnings("ignore", message="Using a target size")
    tg.manual_seed(0)
    with tempfile.TemporaryDirectory() as home:
        tf_rows = keras_rows(d, Path(home))
    tg_rows = torch_style_rows(d, tg, tg.nn.functional, tg.tensor, lambda loss: loss._data)
    rows = [(f"{k} TF style", tf_rows[k]) for k in ARTICLES]
    rows += [(f"{k} PyTorch style", tg_rows[k]) for k in ARTICLES]
    try:
        import jax.numpy as jnp
        import torch

        if a.torch_threads:
            torch.set_num_threads(a.torch_threads)
        torch.manual_seed(0)
        pt_rows = torch_style_rows(d, torch, torch.nn.functional, torch.from_numpy,
                                   lambda loss: jnp.zeros(()))
        rows += [(f"{k} PyTorch", pt_rows[k]) for k in ARTICLES]
        version = f"PyTorch {torch.__version__.split('+')[0]}"
        print(f"{version}, {torch.get_num_threads()} thread(s)")
    except ImportError:
        version = None
    times = dict(zip((n for n, _ in rows), timed_rows([f for _, f in rows], a.repeat, a.number,
                                                       warmup=5)))
    print(f"one training step, ms (median of {a.repeat} x {a.number} steps)")
    head = f"{'article':<8} {'tg TF style':>12} {'tg PyTorch style':>17}"
    if version:
        head += f" {version:>14} {'PyTorch style / PyTorch':>24} {'TF style / PyTorch':>19}"
    print(head)
    for k in ARTICLES:
        tf_ms, tg_ms = times[f"{k} TF style"] * 1e3, times[f"{k} PyTorch style"] * 1e3
        line = f"{k:<8} {tf_ms:12.3f} {tg_ms:17.3f}"
        if version:
            pt_ms = times[f"{k} PyTorch"] * 1e3
            line += f" {pt_ms:14.3f} {tg_ms / pt_ms:24.2f} {tf_ms / pt_ms:19.2f}"
        print(line)


if __name__ == "__main__":
    main()
