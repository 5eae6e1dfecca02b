"""What the seed twins' test and docs/seeds.md share: ``run`` (a seed program executed
with the names it assumes), ``keras_step_graph`` (the graph of fit's training step,
written out with public API), ``shown`` (a graph as the page shows it), the Keras home
holding the digits as MNIST, and one snippet per article that runs its two programs
(tests/seed_programs/tf_00N_*.py and torch_00N_*.py), prints their figures, and leaves
``tf_graph`` and ``torch_loss`` (a recorded loss) for the page's IR blocks.

The page's snippets are the strings in ``SNIPPETS``; tests/test_seed_twins.py runs them,
checks that both programs learn, and compares the page with what they print.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

from test_keras_seeds import cnn_data, regression_data, write_mnist

import tracegraph as tg

PROGRAMS = Path(__file__).parent / "seed_programs"


def run(program: str, names: dict | None = None) -> dict:
    """Execute ``tests/seed_programs/<program>`` with ``names`` defined (the data it
    assumes); returns its globals. ``names`` is filled in place, so it holds what the
    program made even when the program raises. What the program prints (Keras' progress
    bars, with their timings) is dropped."""
    path = PROGRAMS / program
    ns = {} if names is None else names
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(path.read_text(encoding="utf-8"), path.name, "exec"), ns)  # noqa: S102
    return ns


def keras_step_graph(model, loss: str, x, y):
    """The training step ``model.fit`` compiles for ``model`` (compiled with ``loss``),
    written out with public API and traced by ``tg.jit`` on one batch: forward in
    training mode, the loss, the IR backward, the optimizer ``compile`` chose
    (``model.optimizer.transformation``) and the update. fit's own step also carries a
    padding mask, the metrics and the packed logs; the arithmetic is this."""
    opt = model.optimizer.transformation
    loss_fn = tg.keras.losses.get(loss)

    def train_step(model, opt_state, x, y):
        def loss_of(model):
            return loss_fn(y, model(x, training=True))

        value, grads = tg.value_and_grad(loss_of)(model)
        updates, opt_state = opt.update(grads, opt_state, model)
        return tg.optim.apply_updates(model, updates), opt_state, value

    return tg.jit(train_step).trace(model, opt.init(model), x, y)


def shown(graph, limit: int = 40, head: int = 20) -> str:
    """``graph`` printed whole when it has at most ``limit`` lines; else its signature,
    the number of its constants, its first ``head`` nodes and its node count."""
    lines = str(graph).splitlines()
    if len(lines) <= limit:
        return "\n".join(lines)
    consts = [i for i, line in enumerate(lines) if line.startswith("  %c")]
    first = consts[0] if consts else 1
    body = [line for line in lines[first:-2] if not line.startswith("  %c")]
    return "\n".join(lines[:first] + [f"  ... {len(consts)} constants"] + body[:head]
                     + [f"  ... ({len(graph.nodes)} nodes in all)"])


@contextlib.contextmanager
def keras_home_with_digits():
    """``$KERAS_HOME`` pointing at a folder whose ``datasets/mnist.npz`` holds
    scikit-learn's digits at 28x28 (tests/test_keras_seeds.py), for the block's
    duration."""
    old = os.environ.get("KERAS_HOME")
    with tempfile.TemporaryDirectory() as home:
        write_mnist(Path(home), 16.0, shifted=False)
        os.environ["KERAS_HOME"] = home
        try:
            yield home
        finally:
            if old is None:
                os.environ.pop("KERAS_HOME", None)
            else:
                os.environ["KERAS_HOME"] = old


def names() -> dict:
    """What a snippet finds defined besides its own imports."""
    return {"run": run, "keras_step_graph": keras_step_graph, "cnn_data": cnn_data,
            "regression_data": regression_data, "keras_home_with_digits": keras_home_with_digits}


SNIPPETS = {}

SNIPPETS["000"] = '''import numpy as np
import tracegraph as tg

x = np.linspace(-1, 1, 100).astype(np.float32)   # what both programs assume: x and y
y = 3 * x + 2

tg.manual_seed(0)
tf_ns = run("tf_000_variables_tape.py", {"x": x, "y": y})
tg.manual_seed(0)
torch_ns = run("torch_000_autograd_linear.py", {"x": tg.tensor(x), "y": tg.tensor(y)})
for name, ns in (("TensorFlow", tf_ns), ("PyTorch", torch_ns)):
    w, b, loss = ns["w"].numpy()[0], ns["b"].numpy()[0], float(ns["loss_value"])
    print(f"{name:<10}  w = {w:.3f}  b = {b:.3f}  last loss {loss:.5f}")

tf_graph = tf_ns["loss_value"].tape()   # the last step, as its GradientTape recorded it
# the PyTorch program's last loss was freed by its backward(): record one more
torch_loss = torch_ns["loss"](torch_ns["linear_model"](tg.tensor(x)), tg.tensor(y))
'''

SNIPPETS["001"] = '''import numpy as np
import tracegraph as tg

tg.manual_seed(0)
tf_ns = run("tf_001_linear_keras.py")           # makes its own data
tg.manual_seed(0)
torch_ns = run("torch_001_linear_module.py")

losses = tf_ns["model"].history.history["loss"]
X = np.array(tf_ns["X"], np.float32)
y_pred = tf_ns["model"].predict(X, verbose=0).ravel()
print(f"TensorFlow  loss {losses[0]:.2f} -> {losses[-1]:.2f} in {len(losses)} epochs; "
      f"predicts {y_pred[0]:.2f}, {y_pred[1]:.2f} for Y = 5, 6")
tg.manual_seed(0)                                 # the same seed: the untrained Net
untrained = torch_ns["criterion"](torch_ns["Net"]()(torch_ns["X"]), torch_ns["Y"])
print(f"PyTorch     loss {untrained.item():.2f} -> {torch_ns['loss'].item():.6f} in 100 "
      f"steps; net(X) = {torch_ns['net'](torch_ns['X']).item():.3f} for Y = 5")

tf_graph = keras_step_graph(tf_ns["model"], "mean_squared_error", X, np.array([5, 6], np.float32))
torch_loss = torch_ns["criterion"](torch_ns["net"](torch_ns["X"]), torch_ns["Y"])
'''

SNIPPETS["002"] = '''import numpy as np
import tracegraph as tg

tg.manual_seed(0)
with keras_home_with_digits():                    # mnist.npz: the digits at 28x28
    tf_ns = run("tf_002_mnist_sequential.py")
history = tf_ns["model"].history.history
loss, accuracy = tf_ns["model"].evaluate(tf_ns["x_test"], tf_ns["y_test"], verbose=0)
print("TensorFlow  accuracy by epoch", " ".join(f"{a:.2f}" for a in history["accuracy"]),
      f"| test accuracy {accuracy:.2f}")

# The PyTorch program is the model class only: train it to spell a short text
tg.manual_seed(0)
torch_ns = run("torch_002_lstm_text.py")
text = "hello tracegraph"
chars = sorted(set(text))
onehot = np.eye(len(chars), dtype=np.float32)
codes = np.array([chars.index(c) for c in text])
x = tg.tensor(onehot[codes[:-1]][:, None, :])     # (seq, batch=1, feature): nn.LSTM's layout
target = tg.tensor(codes[1:])                     # each next character
model = torch_ns["LSTM"](len(chars), 32, len(chars))
hidden = (tg.zeros(1, 1, 32), tg.zeros(1, 1, 32))  # (h0, c0): (layers, batch, hidden)
criterion = tg.nn.CrossEntropyLoss()
optimizer = tg.optim.Adam(model.parameters(), lr=0.02)
losses = []
for step in range(40):
    optimizer.zero_grad()
    output, _ = model(x, hidden)
    loss = criterion(output.view(-1, len(chars)), target)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with tg.no_grad():                                # generate: feed back the likeliest next character
    out, state, c = "h", hidden, "h"
    for _ in range(len(text) - 1):
        y, state = model(tg.tensor(onehot[[chars.index(c)]][:, None, :]), state)
        c = chars[int(y.view(-1).argmax().item())]
        out += c
print(f"PyTorch     loss {losses[0]:.2f} -> {losses[-1]:.3f} in 40 steps; generates {out!r}")

tf_graph = keras_step_graph(tf_ns["model"], "sparse_categorical_crossentropy",
                            tf_ns["x_train"][:32].astype(np.float32), tf_ns["y_train"][:32])
output, _ = model(x, hidden)
torch_loss = criterion(output.view(-1, len(chars)), target)
'''

SNIPPETS["003"] = '''import numpy as np
import tracegraph as tg

data = regression_data()   # 200 + 56 rows of y = x @ [1, -2, 0.5, 3] + 1, x: 4 features

tg.manual_seed(0)
tf_ns = dict(data)
try:
    run("tf_003_regression.py", tf_ns)
except TypeError as e:     # its last line unpacks evaluate's one number into two names
    print(f"TensorFlow  raised TypeError: {e}")
history = tf_ns["model"].history.history["loss"]
test_loss = tf_ns["model"].evaluate(data["x_test"], data["y_test"], verbose=0)
print(f"TensorFlow  loss {history[0]:.2f} -> {history[-1]:.2f} in 10 epochs; "
      f"test loss {test_loss:.2f}")

tg.manual_seed(0)
torch_ns = run("torch_003_regression.py", {k: tg.tensor(v) for k, v in data.items()})
tg.manual_seed(0)                                 # the same seed: the untrained Net
with tg.no_grad():
    before = torch_ns["loss_fn"](torch_ns["Net"]()(tg.tensor(data["x_test"])),
                                 tg.tensor(data["y_test"]))
print(f"PyTorch     test loss {before.item():.2f} -> {torch_ns['loss'].item():.2f} after "
      f"10 full-batch steps; 'accuracy' {torch_ns['accuracy'].item():.2f}")

tf_graph = keras_step_graph(tf_ns["model"], "mse", data["x_train"][:32], data["y_train"][:32])
torch_loss = torch_ns["loss_fn"](torch_ns["model"](torch_ns["x_train"]), torch_ns["y_train"])
'''

SNIPPETS["004"] = '''import numpy as np
import tracegraph as tg

x, y, x_test, y_test = cnn_data()   # the digits at 10x10x1, 1,437 to train, 360 to test

tg.manual_seed(0)
tf_ns = run("tf_004_cnn_subclass.py")            # defines the class only: train it
model = tf_ns["CNN"]()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=3, batch_size=32, verbose=0)
loss, tf_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"TensorFlow  test accuracy {tf_accuracy:.2f} after 3 epochs (Adam)")

# Conv2d(3, ...): three channels first; F is the one name the program lacks
tg.manual_seed(0)
torch_ns = run("torch_004_cnn.py", {"F": tg.nn.functional})
rgb = lambda a: tg.tensor(np.repeat(a.transpose(0, 3, 1, 2), 3, axis=1))  # (N, 3, 10, 10)
images, labels, test_images = rgb(x), tg.tensor(y.astype(np.int64)), rgb(x_test)
cnn, criterion, optimizer = torch_ns["model"], torch_ns["criterion"], torch_ns["optimizer"]
for epoch in range(5):
    for i in range(0, len(x), 32):
        optimizer.zero_grad()
        loss = criterion(cnn(images[i:i + 32]), labels[i:i + 32])
        loss.backward()
        optimizer.step()
with tg.no_grad():
    accuracy = (cnn(test_images).argmax(dim=1) == tg.tensor(y_test)).float().mean()
print(f"PyTorch     test accuracy {accuracy.item():.2f} after 5 epochs (SGD, lr 0.01)")

tf_graph = keras_step_graph(model, "sparse_categorical_crossentropy", x[:32], y[:32])
torch_loss = criterion(cnn(images[:32]), labels[:32])
'''


def run_snippet(article: str) -> tuple[dict, str]:
    """Run ``SNIPPETS[article]`` as ``seed_<article>.py``; returns its namespace and what
    it printed. Keras' automatic layer names start afresh, so the printed graphs do not
    depend on what ran before in the process."""
    tg.keras.backend.clear_session()
    ns = {"__name__": "__seed_snippet__", **names()}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SNIPPETS[article], f"seed_{article}.py", "exec"), ns)  # noqa: S102
    return ns, out.getvalue().rstrip()
