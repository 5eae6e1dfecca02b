"""docs/from_tensorflow.md shows TensorFlow programs run with only their import changed,
and the graph tg.function records: this test runs each snippet and fails when the page
drifts from what the code prints (TRACEGRAPH_UPDATE_DOCS=1 rewrites it)."""

import contextlib
import io
import os
import pathlib
import re

import numpy as np

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "from_tensorflow.md"

# The TensorFlow program of the first seed article ("TensorFlow vs PyTorch": linear
# regression), with `import tensorflow as tf` changed and the data it assumes made here.
SEED_SRC = '''import numpy as np
import tracegraph as tf

x = np.linspace(-1, 1, 100).astype(np.float32)
y = 3 * x + 2 + np.random.default_rng(0).normal(0, 0.1, 100).astype(np.float32)
tf.random.set_seed(0)

# the seed article's program, unchanged from here on
w = tf.Variable(tf.random.normal([1]), name='weight')
b = tf.Variable(tf.zeros([1]), name='bias')

def linear_model(x):
    return w * x + b

def loss(y_pred, y_true):
    return tf.reduce_mean(tf.square(y_pred - y_true))

optimizer = tf.optimizers.SGD(0.01)

for i in range(1000):
    with tf.GradientTape() as tape:
        y_pred = linear_model(x)
        loss_value = loss(y_pred, y)
    gradients = tape.gradient(loss_value, [w, b])
    optimizer.apply_gradients(zip(gradients, [w, b]))

print(f"w = {w.numpy()[0]:.3f}, b = {b.numpy()[0]:.3f}, loss = {float(loss_value):.4f}")
'''

FUNCTION_SRC = '''import numpy as np
import tracegraph as tf

x = np.linspace(-1, 1, 100).astype(np.float32)
y = 3 * x + 2
w = tf.Variable(tf.zeros([1]), name='weight')
b = tf.Variable(tf.zeros([1]), name='bias')
optimizer = tf.optimizers.SGD(0.1)

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(w * x + b - y))
    gradients = tape.gradient(loss, [w, b])
    optimizer.apply_gradients(zip(gradients, [w, b]))
    return loss

for i in range(200):
    loss = train_step(x, y)
print(f"w = {w.numpy()[0]:.3f}, b = {b.numpy()[0]:.3f}, loss = {float(loss):.6f}")
print(train_step.paths()[0])
'''

NESTED_SRC = '''import tracegraph as tf

x = tf.constant(3.0)
with tf.GradientTape() as outer:
    outer.watch(x)
    with tf.GradientTape() as inner:
        inner.watch(x)
        y = x * x * x
    dy_dx = inner.gradient(y, x)      # 3 x^2, recorded by the outer tape
d2y_dx2 = outer.gradient(dy_dx, x)    # 6 x
print(float(dy_dx), float(d2y_dx2))
'''


def _run(src, name):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, name, "exec"), {"__name__": "__doc_snippet__"})
    return out.getvalue().rstrip()


def render():
    return {
        "seed_source": SEED_SRC.rstrip(), "seed_output": _run(SEED_SRC, "seed_linreg.py"),
        "function_source": FUNCTION_SRC.rstrip(), "function_output": _run(FUNCTION_SRC, "train_step.py"),
        "nested_source": NESTED_SRC.rstrip(), "nested_output": _run(NESTED_SRC, "nested.py"),
    }


def _block(name, text, lang):
    return f"<!-- {name} -->\n```{lang}\n{text}\n```\n<!-- /{name} -->"


def test_from_tensorflow_page_shows_what_the_code_prints():
    np.seterr(all="ignore")
    page = DOC.read_text()
    for name, text in render().items():
        lang = "python" if name.endswith("source") else "text"
        pattern = re.compile(rf"<!-- {name} -->\n```\w*\n(?:.*?\n)?```\n<!-- /{name} -->", re.S)
        assert pattern.search(page), f"docs/from_tensorflow.md lacks the {name} block"
        page = pattern.sub(lambda m: _block(name, text, lang), page)
    if os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        DOC.write_text(page)
    assert DOC.read_text() == page, "docs/from_tensorflow.md is stale: run with TRACEGRAPH_UPDATE_DOCS=1"


def test_seed_program_reaches_the_true_line():
    text = _run(SEED_SRC, "seed_linreg.py")
    w, b = re.findall(r"[wb] = (-?[\d.]+)", text)
    assert abs(float(w) - 3.0) < 0.1 and abs(float(b) - 2.0) < 0.1, text
