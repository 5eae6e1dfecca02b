"""``tg.keras``: Keras 3's API on tracegraph — the TensorFlow half of the contrast as its
users write it. A program written for ``tf.keras`` runs with ``import tracegraph as tf``
(or ``from tracegraph import keras``).

- `layers` (``Dense``, ``Conv2D``, ``MaxPooling2D``, ``Dropout``, ``BatchNormalization``
  ...): channels-last, built lazily from the first input's shape, weights as
  `tg.Variable`\\ s initialized as Keras does;
- `Sequential`, `Model` (subclassed with ``call``, or functional ``Model(inputs,
  outputs)`` from `Input`): `tg.nn.Module`\\ s, so ``compile`` / ``fit`` / ``evaluate``
  / ``predict`` are the one training engine of tracegraph (the whole step compiled once
  through the IR), and a `tg.GradientTape` / `tg.function` step sees
  ``model.trainable_variables``;
- `activations`, `initializers`, `losses`, `metrics`, `optimizers`, `callbacks`,
  `utils` (``to_categorical`` ...), `datasets` (Keras' own files, never downloaded).

Example::

    import tracegraph as tf

    model = tf.keras.models.Sequential([
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5)
"""

from .. import callbacks, losses, metrics, optimizers
from . import activations, backend, datasets, initializers, layers, models, utils
from ._functional import Input, KerasTensor
from ._layer import Layer, SeedGenerator
from ._model import Model, Sequential

__all__ = [
    "Input", "KerasTensor", "Layer", "Model", "SeedGenerator", "Sequential", "activations", "backend",
    "callbacks", "datasets", "initializers", "layers", "losses", "metrics", "models",
    "optimizers", "utils",
]
