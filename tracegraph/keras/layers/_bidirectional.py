"""Keras' `Bidirectional` wrapper: a recurrent layer run forwards and, as a clone with
``go_backwards=True``, backwards, the two outputs merged (Keras 3's signature, merge
modes and weight order: the forward layer's weights, then the backward one's).

Example::

    layers.Bidirectional(layers.LSTM(16, return_sequences=True))   # (..., 32)
"""

from __future__ import annotations

from ...core import bind
from ...frontend.fn_shape import concatenate
from .._layer import Layer
from ._recurrent import build_child, clone


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards, and merge the two.

    ``layer`` is cloned from its config twice (``forward_<name>`` and, with
    ``go_backwards=True``, ``backward_<name>``; or pass ``backward_layer``), so the two
    have their own weights: ``get_weights()`` is the forward layer's, then the backward
    one's. With ``return_sequences`` the backward outputs are flipped back to time order
    before merging. ``merge_mode``: ``"concat"`` (last axis), ``"sum"``, ``"mul"``,
    ``"ave"``, or None (the pair). With ``return_state``: ``output, *forward states,
    *backward states``; ``initial_state`` is the forward states, then the backward ones.

    Example::

        layers.Bidirectional(layers.LSTM(16, return_sequences=True))   # (..., 32)
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"Bidirectional wraps a keras layer, got {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise TypeError(f"Bidirectional: backward_layer must be a keras layer, got "
                             f"{backward_layer!r}")
        if merge_mode not in ("sum", "mul", "ave", "concat", None):
            raise ValueError(f"Bidirectional: merge_mode must be one of 'sum', 'mul', 'ave', "
                             f"'concat' or None, got {merge_mode!r}")
        if weights is not None:
            raise NotImplementedError("Bidirectional: weights= is not supported; call "
                                      "set_weights once the layer is built")
        super().__init__(**kwargs)
        self.forward_layer = clone(layer, name=f"forward_{layer.name.removeprefix('forward_')}")
        if backward_layer is None:
            backward_layer = clone(layer, go_backwards=True,
                                    name=f"backward_{layer.name.removeprefix('backward_')}")
        self.backward_layer = backward_layer
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError("Bidirectional: the forward and backward layers need different "
                             "go_backwards values")
        for attr in ("return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(f"Bidirectional: the forward and backward layers need the "
                                 f"same {attr}")
        self.merge_mode = merge_mode
        self.return_sequences = fwd.return_sequences
        self.return_state = fwd.return_state

    def build(self, sequences_shape):
        build_child(self.forward_layer, sequences_shape)
        build_child(self.backward_layer, sequences_shape)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if mask is not None:
            raise NotImplementedError("Bidirectional: mask= (Keras masking) is not supported "
                                      "yet")
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, training=training)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, training=training)
        states = ()
        if self.return_state:
            states = (*y[1:], *y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = bind("rev", y_rev, axes=(1,))
        if self.merge_mode == "concat":
            output = concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2.0
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = (y, y_rev)
        if self.return_state:
            return (*output, *states) if self.merge_mode is None else (output, *states)
        return output

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": self.forward_layer,
                "merge_mode": self.merge_mode, "backward_layer": self.backward_layer}

    @classmethod
    def from_config(cls, config):
        config = dict(config)  # the layer is cloned by __init__; the backward one here
        config["backward_layer"] = clone(config["backward_layer"])
        return cls(**config)
