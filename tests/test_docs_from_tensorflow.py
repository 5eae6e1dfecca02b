"""docs/from_tensorflow.md shows TensorFlow programs run with only their import changed,
and the graph tg.function records: this test runs each snippet and fails when the page
drifts from what the code prints (TRACEGRAPH_UPDATE_DOCS=1 rewrites it)."""

import contextlib
import io
import os
import pathlib
import re

import numpy as np

import tracegraph as tf

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


KERAS_SRC = '''import tracegraph as tf
from tracegraph.keras import layers

ds = tf.data.load_digits()                 # scikit-learn's 8x8 handwritten digits
x_train = ds.x_train.reshape(-1, 8, 8, 1) / 16.0
x_test = ds.x_test.reshape(-1, 8, 8, 1) / 16.0
tf.keras.utils.set_random_seed(0)

model = tf.keras.Sequential([
    tf.keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(16, kernel_size=3, padding="same", activation="relu"),
    layers.BatchNormalization(),
    layers.MaxPooling2D(pool_size=2),
    layers.Flatten(),
    layers.Dropout(0.25),
    layers.Dense(10, activation="softmax"),
])
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, ds.y_train, epochs=10, batch_size=32, validation_split=0.1,
                    verbose=0)
loss, accuracy = model.evaluate(x_test, ds.y_test, verbose=0)
print(f"val_accuracy {history.history['val_accuracy'][-1]:.2f}, test accuracy {accuracy:.2f}")
'''

LOOP_SRC = r'''import tracegraph as tf
from tracegraph.keras import layers

class MLP(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(64, activation="relu")
        self.dropout = layers.Dropout(0.2)
        self.out = layers.Dense(10)

    def call(self, x, training=None):
        return self.out(self.dropout(self.hidden(x), training=training))

ds = tf.data.load_digits()
tf.keras.utils.set_random_seed(0)
model = MLP()
model(ds.x_train[:1])                      # builds the weights
optimizer = tf.keras.optimizers.Adam(1e-2)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

losses = [float(train_step(ds.x_train / 16.0, ds.y_train)) for step in range(100)]
print(f"loss {losses[0]:.2f} -> {losses[-1]:.2f}")
path = train_step.paths()[0]
print("\n".join(str(path).splitlines()[:2]))
print(f"{len(path.graph.nodes)} nodes, one graph")
'''


def _run(src, name):
    tf.keras.backend.clear_session()  # automatic layer names start again: dense, dense_1 ...
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, name, "exec"), {"__name__": "__doc_snippet__"})
    return out.getvalue().rstrip()


def render():
    return {
        "seed_source": SEED_SRC.rstrip(), "seed_output": _run(SEED_SRC, "seed_linreg.py"),
        "function_source": FUNCTION_SRC.rstrip(), "function_output": _run(FUNCTION_SRC, "train_step.py"),
        "nested_source": NESTED_SRC.rstrip(), "nested_output": _run(NESTED_SRC, "nested.py"),
        "keras_source": KERAS_SRC.rstrip(), "keras_output": _run(KERAS_SRC, "digits_cnn.py"),
        "loop_source": LOOP_SRC.rstrip(), "loop_output": _run(LOOP_SRC, "custom_loop.py"),
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
