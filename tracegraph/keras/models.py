"""``keras.models``: `Sequential` and `Model` (as ``tf.keras.models.Sequential``)."""

from ._model import Model, Sequential

__all__ = ["Model", "Sequential"]
