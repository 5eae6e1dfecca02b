"""Keras' recurrent layers: `SimpleRNN`, `LSTM`, `GRU`, their cells (`SimpleRNNCell`,
`LSTMCell`, `GRUCell`) and the generic `RNN` over a cell, with Keras 3's signatures and
defaults, weight shapes and gate orders, so Keras' weights load with
``set_weights(keras_layer.get_weights())``:

- ``kernel`` ``(features, gates * units)``, ``recurrent_kernel`` ``(units, gates *
  units)`` (initialized glorot_uniform and orthogonal) and ``bias`` (zeros), held by the
  layer's ``cell`` as in Keras (``lstm.cell.kernel``);
- gate order LSTM ``i, f, c, o`` (``unit_forget_bias=True`` starts the forget bias at
  one), GRU ``z, r, h`` (``reset_after=True``: a ``(2, 3 * units)`` bias, input and
  recurrent rows);
- ``go_backwards`` reads the sequence from its end and returns the outputs in that
  reading order (Keras').

The time loop is one `tg.scan` node (``f32[T, B, ...]`` over its leading axis) in every
traced mode; define-by-run modes (`tg.eager`, a `GradientTape`) run its steps one by one.

NOTE (speed): for the built-in cells the input part of every step, ``x_t @ kernel +
bias``, is one matmul over the whole sequence before the loop (Keras' JAX backend does it
inside); the loop body does one ``h @ recurrent_kernel`` for all gates and elementwise
gate math. Dropout masks are drawn once per call (the same mask at every step, as Keras)
from the cell's `SeedGenerator`, outside the loop.

Example::

    model = tg.keras.Sequential([
        tg.keras.Input(shape=(20, 8)),
        layers.LSTM(32, return_sequences=True),
        layers.GRU(16),
        layers.Dense(1),
    ])
"""

from __future__ import annotations

import jax.numpy as jnp

from ...core import bind
from ...frontend import fn_math
from ...frontend.control_flow import scan
from ...frontend.fn_creation import ones, zeros
from ...frontend.fn_linalg import matmul
from ...frontend.fn_shape import concatenate, shape_of, split, swapaxes
from ...nn import functional as F
from ...nn._module._module import reopened
from .. import activations, initializers
from .._layer import Layer, SeedGenerator


def _unsupported(who: str, **options) -> None:
    given = sorted(k for k, v in options.items() if v)
    if given:
        raise NotImplementedError(f"{who}: {', '.join(given)} not supported yet")


def build_child(layer: Layer, input_shape) -> None:
    """Build a sub-layer now, for ``input_shape`` (a parent's ``build`` makes its
    sub-layers' weights, as Keras' does)."""
    if not layer.built:
        with reopened(layer):
            layer.build(input_shape)
            layer.built = True


def clone(layer: Layer, **changes) -> Layer:
    """A new, unbuilt layer from ``layer``'s config with ``changes`` (Keras clones the
    wrapped layer of `Bidirectional` this way)."""
    config = {**layer.get_config(), **changes}
    from_config = getattr(type(layer), "from_config", None)
    return from_config(config) if from_config is not None else type(layer)(**config)


def _activation_config(fn):
    name = activations.serialize(fn)
    try:
        return name if activations.get(name) is fn else fn
    except ValueError:
        return fn


# -- cells ------------------------------------------------------------------------------------


class _Cell(Layer):
    """The weights and step of one built-in cell. Besides Keras' one-step
    ``call(inputs, states)``, it splits a step in two, so `RNN` can hoist the input part
    out of the loop: `project` (``x @ kernel + input bias``, over any leading axes) and
    `recurrence` (the rest, one step from the projected input)."""

    gates = 1

    def _setup(self, units, activation, recurrent_activation, use_bias, kernel_initializer,
               recurrent_initializer, bias_initializer, dropout, recurrent_dropout, seed,
               **unsupported):
        _unsupported(type(self).__name__, **unsupported)
        if int(units) <= 0:
            raise ValueError(f"{type(self).__name__}: units must be positive, got {units}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def get_initial_state(self, batch_size=None) -> list:
        """Zeros, one ``(batch, units)`` array per state."""
        n = 2 if isinstance(self.state_size, list) else 1
        return [zeros((batch_size, self.units), dtype=self.dtype) for _ in range(n)]

    def build(self, input_shape):
        n = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], n),
                                      initializer=self.kernel_initializer, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, n),
                                                initializer=self.recurrent_initializer,
                                                name="recurrent_kernel")
        self.bias = (self.add_weight(shape=self._bias_shape(), initializer=self._bias_init(),
                                     name="bias") if self.use_bias else None)
        if self.dropout > 0.0 or self.recurrent_dropout > 0.0:
            # after the weights, so get_weights() lists them in Keras' order first
            self.seed_generator = SeedGenerator(self.seed)

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _input_bias(self):
        return self.bias

    # -- dropout ------------------------------------------------------------------------------
    def dropout_masks(self, batch: int, features: int, training) -> tuple:
        """``(input masks, recurrent masks)`` for one call: lists of ``1/(1-rate)``-scaled
        0/1 masks, or None. Keras' counts: with recurrent dropout the LSTM and GRU take one
        mask per gate (its ``implementation=1``), else one input mask for all gates."""
        if not training:
            return None, None
        n_in = self.gates if self.recurrent_dropout > 0.0 else 1

        def draw(rate, size, count):
            if not 0.0 < rate < 1.0:
                return None
            one = ones((batch, size), dtype=self.dtype)
            return [F.dropout(one, self.seed_generator.next(), rate=rate) for _ in range(count)]

        return (draw(self.dropout, features, n_in),
                draw(self.recurrent_dropout, self.units, self.gates))

    # -- the step, split in two ---------------------------------------------------------------
    def project(self, x, masks=None):
        """``x @ kernel + input bias`` over ``x``'s last axis (one step ``(B, F)``, or a
        whole time-major sequence ``(T, B, F)``); ``masks`` per gate group."""
        if masks is None:
            y = matmul(x, self.kernel)
        elif len(masks) == 1:
            y = matmul(x * masks[0], self.kernel)
        else:
            kernels = split(self.kernel, len(masks), axis=1)
            y = concatenate([matmul(x * m, k) for m, k in zip(masks, kernels)], axis=-1)
        b = self._input_bias()
        return y if b is None else y + b

    def recurrence(self, rmasks=None):
        """The step function ``(projected input, states) -> (output, new states)`` (the
        recurrent weights are split and read once, outside the loop)."""
        raise NotImplementedError

    def _recurrent_part(self, rmasks, gates=None):
        """``h -> h @ recurrent_kernel`` (over the first ``gates`` gates), with one
        recurrent dropout mask per gate when given."""
        gates = self.gates if gates is None else gates
        r = self.recurrent_kernel
        if gates != self.gates:
            r = split(r, [gates * self.units], axis=1)[0]
        if rmasks is None:
            return lambda h: matmul(h, r)
        if gates == 1:
            return lambda h: matmul(h * rmasks[0], r)
        parts = split(r, gates, axis=1)
        return lambda h: concatenate([matmul(h * m, p) for m, p in zip(rmasks, parts)], axis=-1)

    def call(self, inputs, states, training=None):
        """Keras' cell call: one step, ``inputs`` ``(B, F)``; returns ``(output, new
        states)``."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        masks, rmasks = self.dropout_masks(shape_of(inputs)[0], shape_of(inputs)[-1], training)
        return self.recurrence(rmasks)(self.project(inputs, masks), states)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": _activation_config(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


class SimpleRNNCell(_Cell):
    """One step of `SimpleRNN`: ``h = activation(x @ kernel + bias + h @ recurrent_kernel)``."""

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, None, use_bias, kernel_initializer,
                    recurrent_initializer, bias_initializer, dropout, recurrent_dropout, seed,
                    kernel_regularizer=kernel_regularizer,
                    recurrent_regularizer=recurrent_regularizer,
                    bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                    recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint)

    def recurrence(self, rmasks=None):
        recur, act = self._recurrent_part(rmasks), self.activation

        def step(gx, states):
            h = act(gx + recur(states[0]))
            return h, [h]

        return step


class LSTMCell(_Cell):
    """One step of `LSTM`, Keras' gate order ``i, f, c, o``::

        i, f, g, o = split(x @ kernel + h @ recurrent_kernel + bias, 4)
        c = rec_act(f) * c + rec_act(i) * act(g);   h = rec_act(o) * act(c)
    """

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, implementation=2, **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, recurrent_activation, use_bias, kernel_initializer,
                    recurrent_initializer, bias_initializer, dropout, recurrent_dropout, seed,
                    kernel_regularizer=kernel_regularizer,
                    recurrent_regularizer=recurrent_regularizer,
                    bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                    recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, u = self.bias_initializer, self.units

        def forget_one(shape, dtype=None):  # Keras: [init(u), ones(u), init(2u)]
            return jnp.concatenate([jnp.asarray(init((u,), dtype)), jnp.ones((u,), dtype),
                                    jnp.asarray(init((2 * u,), dtype))])

        return forget_one

    def recurrence(self, rmasks=None):
        recur = self._recurrent_part(rmasks)
        act, rec_act = self.activation, self.recurrent_activation

        def step(gx, states):
            h, c = states
            i, f, g, o = split(gx + recur(h), 4, axis=-1)
            c = rec_act(f) * c + rec_act(i) * act(g)
            h = rec_act(o) * act(c)
            return h, [h, c]

        return step

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": _activation_config(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_Cell):
    """One step of `GRU`, Keras' gate order ``z, r, h``::

        z = rec_act(x_z + h @ R_z);  r = rec_act(x_r + h @ R_r)
        hh = act(x_h + r * (h @ R_h))          # reset_after=True (default)
        hh = act(x_h + (r * h) @ R_h)          # reset_after=False
        h = z * h + (1 - z) * hh

    With ``reset_after`` the bias is ``(2, 3 * units)``: the input row, then the recurrent
    row (added to ``h @ R``).
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 seed=None, implementation=2, **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, recurrent_activation, use_bias, kernel_initializer,
                    recurrent_initializer, bias_initializer, dropout, recurrent_dropout, seed,
                    kernel_regularizer=kernel_regularizer,
                    recurrent_regularizer=recurrent_regularizer,
                    bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                    recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint)
        self.reset_after = bool(reset_after)

    def _bias_shape(self) -> tuple:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recurrence(self, rmasks=None):
        act, rec_act, u = self.activation, self.recurrent_activation, self.units
        if self.reset_after:
            recur = self._recurrent_part(rmasks)
            rb = None if self.bias is None else self.bias[1]

            def step(gx, states):
                h = states[0]
                gh = recur(h)
                if rb is not None:
                    gh = gh + rb
                xz, xr, xh = split(gx, 3, axis=-1)
                hz, hr, hh = split(gh, 3, axis=-1)
                z, r = rec_act(xz + hz), rec_act(xr + hr)
                h = z * h + (1.0 - z) * act(xh + r * hh)
                return h, [h]

            return step
        recur_zr = self._recurrent_part(None if rmasks is None else rmasks[:2], gates=2)
        r_h = split(self.recurrent_kernel, [2 * u], axis=1)[1]
        m_h = None if rmasks is None else rmasks[2]

        def step(gx, states):
            h = states[0]
            xz, xr, xh = split(gx, 3, axis=-1)
            hz, hr = split(recur_zr(h), 2, axis=-1)
            z, r = rec_act(xz + hz), rec_act(xr + hr)
            h_h = h if m_h is None else h * m_h
            h = z * h + (1.0 - z) * act(xh + matmul(r * h_h, r_h))
            return h, [h]

        return step

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": _activation_config(self.recurrent_activation),
                "reset_after": self.reset_after}


# -- the layer over a cell --------------------------------------------------------------------


class RNN(Layer):
    """Keras' ``RNN(cell)``: run ``cell`` over the time axis of ``(batch, steps,
    features)`` inputs, in one `tg.scan`.

    Arguments: ``return_sequences`` (every step's output ``(batch, steps, units)``, else
    the last ``(batch, units)``), ``return_state`` (also return the final states:
    ``output, *states``), ``go_backwards`` (read the sequence from its end; the sequence
    returned is in that reading order). ``unroll`` is accepted and changes nothing (the
    loop is always one scan node); ``stateful``, ``mask`` and stacked cells are not
    supported.

    Call: ``rnn(sequences, initial_state=None, training=None)``; ``initial_state`` is a
    list of ``(batch, units)`` arrays (LSTM: ``[h, c]``), zeros by default.

    A cell is a `Layer` with ``state_size`` and ``call(inputs, states, training=None)``
    returning ``(output, new_states)``, as in Keras; the built-in cells also hoist their
    input projection out of the loop.

    Example::

        layers.RNN(layers.LSTMCell(32), return_sequences=True)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False,
                 activity_regularizer=None, **kwargs):
        if isinstance(cell, (list, tuple)):
            raise NotImplementedError("RNN: a list of cells (StackedRNNCells) is not supported "
                                      "yet; stack RNN layers instead")
        _unsupported(type(self).__name__, stateful=stateful,
                     activity_regularizer=activity_regularizer)
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise TypeError(f"RNN takes a cell: a keras Layer with state_size and "
                            f"call(inputs, states), got {type(cell).__name__}")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)

    def build(self, sequences_shape):
        if len(sequences_shape) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} takes (batch, steps, "
                             f"features) inputs, got shape {tuple(sequences_shape)}")
        build_child(self.cell, (sequences_shape[0], *sequences_shape[2:]))

    def _initial_state(self, batch: int, initial_state) -> list:
        cell = self.cell
        if initial_state is None:
            if hasattr(cell, "get_initial_state"):
                return list(cell.get_initial_state(batch))
            sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) \
                else [cell.state_size]
            return [zeros((batch, int(s)), dtype=self.dtype) for s in sizes]
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
            else [initial_state]
        return [s if s.dtype == self.dtype else fn_math.astype(s, self.dtype) for s in states]

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if mask is not None:
            raise NotImplementedError(f"{type(self).__name__}: mask= (Keras masking) is not "
                                      f"supported yet")
        batch, _, features = shape_of(sequences)
        cell = self.cell
        states = self._initial_state(batch, initial_state)
        xs = swapaxes(sequences, 0, 1)  # time-major: scan runs over the leading axis
        fused = isinstance(cell, _Cell)
        if fused:
            masks, rmasks = cell.dropout_masks(batch, features, training)
            xs = cell.project(xs, masks)  # every step's input part in one matmul
            step = cell.recurrence(rmasks)
        else:
            def step(x, s):
                return cell(x, s, training=training)
        keep_ys = self.return_sequences or not fused

        def body(s, x):
            out, new = step(x, s)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            return new, (out if keep_ys else ())

        final, ys = scan(body, states, xs, reverse=self.go_backwards)
        if self.return_sequences:
            if self.go_backwards:  # Keras returns the outputs in reading order
                ys = bind("rev", ys, axes=(0,))
            output = swapaxes(ys, 0, 1)
        elif fused:
            output = final[0]  # the built-in cells' output is their first state
        else:
            n = shape_of(ys)[0]
            last = 0 if self.go_backwards else n - 1
            output = ys[last]
        if self.return_state:
            return (output, *final)
        return output

    def get_config(self) -> dict:
        return {**super().get_config(), "cell": self.cell,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("cell"), Layer):
            config["cell"] = clone(config["cell"])
        return cls(**config)


class _CellRNN(RNN):
    """`SimpleRNN`, `LSTM` and `GRU`: an `RNN` that makes its own cell, and shows the
    cell's options as its own (``lstm.units``), as Keras."""

    def get_config(self) -> dict:
        config = {**self.cell.get_config(), **RNN.get_config(self)}
        del config["cell"]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def units(self) -> int:
        return self.cell.units

    @property
    def activation(self):
        return self.cell.activation

    @property
    def use_bias(self) -> bool:
        return self.cell.use_bias

    @property
    def dropout(self) -> float:
        return self.cell.dropout

    @property
    def recurrent_dropout(self) -> float:
        return self.cell.recurrent_dropout


def _cell_kwargs(kwargs) -> dict:
    return {"dtype": kwargs.get("dtype"), "trainable": kwargs.get("trainable", True)}


class SimpleRNN(_CellRNN):
    """A fully connected RNN: ``h = activation(x_t @ kernel + bias + h @ recurrent_kernel)``.

    Weights (``layer.cell``): ``kernel`` ``(features, units)``, ``recurrent_kernel``
    ``(units, units)``, ``bias`` ``(units,)``. Other arguments as `RNN`.

    Example::

        layers.SimpleRNN(4, return_sequences=True)      # (2, 5, 3) -> (2, 5, 4)
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, seed=None, **kwargs):
        cell = SimpleRNNCell(
            units, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, name="simple_rnn_cell",
            **_cell_kwargs(kwargs))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)


class LSTM(_CellRNN):
    """Long short-term memory (Hochreiter 1997), Keras' gates ``i, f, c, o`` (see
    `LSTMCell`); states ``[h, c]``.

    Weights (``layer.cell``): ``kernel`` ``(features, 4 * units)``, ``recurrent_kernel``
    ``(units, 4 * units)``, ``bias`` ``(4 * units,)`` (the forget part starts at one with
    ``unit_forget_bias``). Other arguments as `RNN`; ``use_cudnn`` is accepted.

    Example::

        out, h, c = layers.LSTM(4, return_state=True)(x)      # x: (2, 5, 3)
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 use_cudnn="auto", **kwargs):
        cell = LSTMCell(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            unit_forget_bias=unit_forget_bias, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, name="lstm_cell",
            **_cell_kwargs(kwargs))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)

    @property
    def recurrent_activation(self):
        return self.cell.recurrent_activation

    @property
    def unit_forget_bias(self) -> bool:
        return self.cell.unit_forget_bias


class GRU(_CellRNN):
    """Gated recurrent unit (Cho 2014), Keras' gates ``z, r, h`` (see `GRUCell`); with
    ``reset_after=True`` (Keras 3's default, cuDNN's form) the reset gate multiplies
    ``h @ R_h + b``.

    Weights (``layer.cell``): ``kernel`` ``(features, 3 * units)``, ``recurrent_kernel``
    ``(units, 3 * units)``, ``bias`` ``(2, 3 * units)`` (``(3 * units,)`` without
    ``reset_after``). Other arguments as `RNN`.

    Example::

        layers.GRU(4, go_backwards=True)
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, reset_after=True,
                 use_cudnn="auto", **kwargs):
        cell = GRUCell(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, reset_after=reset_after,
            seed=seed, name="gru_cell", **_cell_kwargs(kwargs))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)

    @property
    def recurrent_activation(self):
        return self.cell.recurrent_activation

    @property
    def reset_after(self) -> bool:
        return self.cell.reset_after
