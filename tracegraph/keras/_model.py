"""Keras' models: `Model` (subclassed with ``call``, or functional ``Model(inputs,
outputs)``) and `Sequential`; ``summary`` with Keras' columns.

A model is a `Layer`, so a `tg.nn.Module`: ``compile`` / ``fit`` / ``evaluate`` /
``predict`` / ``save_weights`` / ``load_weights`` are the module's (one training engine,
``tracegraph/nn/_trainer.py``); what this file adds is Keras' construction. ``fit``
builds a model that has not met its input yet by running it once on two examples,
before the step is traced.

Example::

    model = tg.keras.Sequential([
        tg.keras.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5)
"""

from __future__ import annotations

import jax
import numpy as np

from ..errors import ShapeError
from ..frontend.tape import no_grad
from ..nn import Module
from ..nn._module._module import reopened
from ._functional import OUT_SHAPE, KerasTensor, run_wiring, trace_wiring
from ._layer import Layer, _weights_of


def _layers_in(module) -> list:
    """Every Layer under ``module`` (itself excluded), depth first."""
    out = []
    for x in jax.tree_util.tree_leaves(
            module, is_leaf=lambda v: v is not module and isinstance(v, Module)):
        if isinstance(x, Layer):
            out.append(x)
            out.extend(_layers_in(x))
        elif isinstance(x, Module):
            out.extend(_layers_in(x))
    return out


class Model(Layer):
    """``keras.Model``: subclass it (layers as attributes in ``__init__``, the computation
    in ``call(self, inputs, training=None)``), or build it from the functional API:
    ``Model(inputs, outputs)`` with `Input` and layer calls.

    Example::

        class CNN(tg.keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(32, 3, activation="relu")
                self.flat = layers.Flatten()
                self.out = layers.Dense(10)

            def call(self, x, training=None):
                return self.out(self.flat(self.conv(x)))
    """

    def __init__(self, inputs=None, outputs=None, *, name=None, trainable: bool = True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        if (inputs is None) != (outputs is None):
            raise TypeError("keras.Model takes both inputs and outputs (the functional API), "
                            "or neither (a subclass with call)")
        if inputs is not None:
            self.layers, self.wiring = trace_wiring(inputs, outputs)
            self.input_shapes = jax.tree_util.tree_map(
                lambda kt: kt.shape, inputs, is_leaf=lambda v: isinstance(v, KerasTensor))
            self.built = True

    def call(self, inputs, training=None):
        wiring = self.__dict__.get("wiring")
        if wiring is None:
            raise NotImplementedError(f"{type(self).__name__} is a subclassed keras.Model "
                                      f"without a call() method")
        return run_wiring(self.layers, wiring, inputs, training)

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Keras' ``model.build(input_shape)``: make every weight for inputs of that shape
        (the batch dimension may be None), by running the model on zeros."""
        if self.built and not self._tg_needs_build():
            return
        if isinstance(input_shape, KerasTensor):
            input_shape = input_shape.shape
        shapes = input_shape
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            sample = [np.zeros(tuple(2 if d is None else d for d in s), self.dtype) for s in shapes]
        else:
            sample = np.zeros(tuple(2 if d is None else d for d in input_shape), self.dtype)
        self._tg_build_for(sample)

    def build_from(self, inputs) -> None:
        """On the first call: a model's layers build as the call reaches them, so only a
        subclass's own ``build`` (one that makes weights of the model itself) runs."""
        if self.built:
            return
        if type(self).build in (Model.build, Sequential.build):
            with reopened(self):
                self.built = True
        else:
            super().build_from(inputs)

    def _tg_needs_build(self) -> bool:
        return not self.built or any(not layer.built for layer in _layers_in(self))

    def _tg_build_for(self, sample) -> None:
        with no_grad():
            self(sample, training=False)

    # -- Keras' conveniences ----------------------------------------------------------------
    def get_layer(self, name=None, index=None):
        """A sub-layer by ``name`` or position."""
        layers = self._own_layers()
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[la.name for la in layers]}")

    def _own_layers(self) -> list:
        layers = self.__dict__.get("layers")
        if isinstance(layers, list):
            return list(layers)
        out = []
        for x in jax.tree_util.tree_leaves(
                self, is_leaf=lambda v: v is not self and isinstance(v, Module)):
            if isinstance(x, Layer):
                out.append(x)
        return out

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly: bool = False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, *, mode: str = "jit") -> None:
        """Keras' ``compile`` (see `tg.nn.Module.compile`): ``run_eagerly=True`` trains
        define-by-run; ``loss_weights`` and ``weighted_metrics`` are not supported."""
        if loss_weights is not None or weighted_metrics is not None:
            raise NotImplementedError("compile: loss_weights and weighted_metrics are not "
                                      "supported yet")
        super().compile(optimizer, loss, metrics, mode=mode, run_eagerly=run_eagerly)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict: bool = False):
        """One optimizer step on exactly this batch (Keras' ``train_on_batch``): the
        compiled train step of ``fit``; returns the loss (and metrics: a list, or a dict
        with ``return_dict=True``) of the step."""
        if sample_weight is not None or class_weight is not None:
            raise NotImplementedError("train_on_batch: sample_weight and class_weight are "
                                      "not supported yet")
        return self._keras("train_on_batch").train_on_batch(self, x, y, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss and metrics on exactly this batch, in inference mode."""
        if sample_weight is not None:
            raise NotImplementedError("test_on_batch: sample_weight is not supported yet")
        return self._keras("test_on_batch").test_on_batch(self, x, y, return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for this batch, as numpy arrays (inference mode)."""
        leaves = jax.tree_util.tree_leaves(x, is_leaf=lambda v: hasattr(v, "shape"))
        n = len(leaves[0]) if leaves else 1
        return self.predict(x, batch_size=max(n, 1), verbose=0)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print Keras' table: each layer's name and type, output shape and parameter
        count, then the total, trainable and non-trainable parameter counts and sizes.
        ``print_fn`` takes each line (default: print)."""
        print_fn = print_fn or print
        for line in summary_lines(self, line_length or 80):
            print_fn(line)


def _format_shape(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_format_shape(s) for s in shape)
    if isinstance(shape, tuple) and (not shape or not isinstance(shape[0], (tuple, list))):
        dims = ", ".join("None" if d is None else str(d) for d in shape)
        return f"({dims},)" if len(shape) == 1 else f"({dims})"
    return str(shape)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""


def summary_lines(model: Model, width: int = 80) -> list[str]:
    """The lines of ``model.summary()``."""
    cols = (int(width * 0.5), int(width * 0.32), width - int(width * 0.5) - int(width * 0.32))
    lines = [f'Model: "{model.name}"', "_" * width,
             "Layer (type)".ljust(cols[0]) + "Output Shape".ljust(cols[1]) + "Param #".rjust(cols[2]),
             "=" * width]
    for layer in model._own_layers():
        label = f"{layer.name} ({type(layer).__name__})"
        shape = _format_shape(layer.__dict__.get(OUT_SHAPE))
        params = f"{sum(int(np.prod(v.shape)) for v in layer.weights):,}" if layer.built else "0 (unbuilt)"
        lines.append(label[:cols[0] - 1].ljust(cols[0]) + shape.ljust(cols[1]) + params.rjust(cols[2]))
    lines.append("=" * width)
    weights: list = []
    _weights_of(model, False, weights)
    total = sum(int(np.prod(v.shape)) for v, _ in weights)
    trainable = [(v, t) for v, t in weights if t]
    n_train = sum(int(np.prod(v.shape)) for v, _ in trainable)
    nbytes = lambda ws: sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v, _ in ws)
    lines += [f" Total params: {total:,} ({_size(nbytes(weights))})",
              f" Trainable params: {n_train:,} ({_size(nbytes(trainable))})",
              (f" Non-trainable params: {total - n_train:,} "
              f"({_size(nbytes([w for w in weights if not w[1]]))})"),
              "_" * width]
    return lines


class Sequential(Model):
    """``keras.Sequential``: layers called one after the other. The first element may be
    a ``keras.Input`` (or the first layer may take ``input_shape=``): the model is then
    built at once (``summary`` shows its shapes before any data).

    Example::

        model = tg.keras.Sequential([
            layers.Dense(10, activation="relu", input_shape=(4,)),
            layers.Dense(1),
        ])
    """

    def __init__(self, layers=None, trainable: bool = True, name=None):
        super().__init__(name=name, trainable=trainable)
        self.layers = []
        self.input_batch_shape = None
        for layer in layers or ():
            self._append(layer)
        self._maybe_build()

    def _append(self, layer) -> None:
        if isinstance(layer, KerasTensor):
            if self.layers or self.input_batch_shape is not None:
                raise ShapeError("Sequential: a keras.Input can only come first")
            self.input_batch_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes keras layers, got {type(layer).__name__}")
        if not self.layers and self.input_batch_shape is None and layer.batch_input_shape:
            self.input_batch_shape = layer.batch_input_shape
        self.layers = [*self.layers, layer]

    def _maybe_build(self) -> None:
        if self.input_batch_shape is not None and self.layers:
            self.build(self.input_batch_shape)

    def add(self, layer) -> None:
        """Append a layer (built at once when the model's input shape is known)."""
        with reopened(self):
            self._append(layer)
            self.built = False
        self._maybe_build()

    def pop(self):
        """Remove and return the last layer."""
        if not self.layers:
            raise TypeError("Sequential.pop: there are no layers")
        with reopened(self):
            layers = list(self.layers)
            last = layers.pop()
            self.layers = layers
        return last

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            input_shape = self.input_batch_shape
        if input_shape is None:
            raise ShapeError("Sequential.build needs an input shape (or a first layer with "
                             "input_shape=, or a keras.Input)")
        super().build(input_shape)
        with reopened(self):
            self.input_batch_shape = tuple(input_shape) if not isinstance(input_shape, KerasTensor) \
                else input_shape.shape
