"""``keras.backend``: the few global settings Keras programs read, and
``clear_session`` (which restarts the automatic layer names: ``dense``, ``dense_1`` ...).

Example::

    tg.keras.backend.clear_session()
    tg.keras.layers.Dense(3).name          # "dense"
"""

from __future__ import annotations

from . import _layer


def clear_session(free_memory: bool = True) -> None:
    """Restart the automatic layer names (Keras' ``clear_session``)."""
    _layer.reset_names()


def backend() -> str:
    """The name of the backend: tracegraph (on JAX)."""
    return "tracegraph"


def floatx() -> str:
    """The default float type of weights and computation."""
    return "float32"


def epsilon() -> float:
    """Keras' fuzz factor (losses clip probabilities with it)."""
    return 1e-7


def image_data_format() -> str:
    """Layers are channels-last unless given ``data_format="channels_first"``."""
    return "channels_last"


__all__ = ["backend", "clear_session", "epsilon", "floatx", "image_data_format"]
