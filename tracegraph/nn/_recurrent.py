"""Recurrent layers with PyTorch's semantics and parameter names: `LSTM` and `GRU`
(``num_layers``, ``bidirectional``, ``batch_first``, ``dropout`` between layers; each
layer and direction is one `tg.scan` over time) and the single steps `LSTMCell` and
`GRUCell`.

The parameters are PyTorch's, under PyTorch's names (``weight_ih_l0``,
``weight_hh_l0_reverse``, ``bias_ih_l1`` ...), so ``load_state_dict`` takes a
``torch.nn.LSTM``'s state dict as it is. Hidden states are ``(num_layers *
num_directions, batch, hidden_size)`` (``(num_layers * num_directions, hidden_size)``
unbatched); a state of any other shape is a `tg.ShapeError`, never broadcast.

NOTE (speed): the input projection of every time step is one matmul over the whole
sequence, made before the loop (with both LSTM biases added there); the loop body does
one matmul per step (``h @ W_hh^T``, all gates at once) plus elementwise gate math. The
weights are transposed once, outside the loop.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..errors import ShapeError, TracingError, user_location_long
from ..frontend.control_flow import scan
from ..frontend.fn_creation import zeros
from ..frontend.fn_linalg import matmul
from ..frontend.fn_math import add, multiply, sigmoid, subtract, tanh
from ..frontend.fn_random import split as split_key
from ..frontend.fn_shape import (
    concatenate,
    expand_dims,
    shape_of,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
)
from . import functional as F
from . import init
from ._module import Module

# -- the step equations (PyTorch's gate order) ------------------------------------------------


def _lstm_step(gx, h, c, w_hh_t):
    """One LSTM step from the input part of the gates ``gx`` (biases included)."""
    i, f, g, o = split(add(gx, matmul(h, w_hh_t)), 4, axis=-1)
    c = add(multiply(sigmoid(f), c), multiply(sigmoid(i), tanh(g)))
    return multiply(sigmoid(o), tanh(c)), c


def _gru_step(gx, h, w_hh_t, b_hh):
    """One GRU step from the input part of the gates ``gx`` (``b_ih`` included);
    ``b_hh`` stays on the hidden side, as ``b_hn`` sits inside ``r * (...)``."""
    gh = matmul(h, w_hh_t)
    if b_hh is not None:
        gh = add(gh, b_hh)
    xr, xz, xn = split(gx, 3, axis=-1)
    hr, hz, hn = split(gh, 3, axis=-1)
    r = sigmoid(add(xr, hr))
    z = sigmoid(add(xz, hz))
    n = tanh(add(xn, multiply(r, hn)))
    return add(multiply(subtract(1.0, z), n), multiply(z, h))


# -- the multi-layer sequence layers --------------------------------------------------------


class _RNNBase(Module):
    """The parameters, checks and layer/direction loop of `LSTM` and `GRU`; subclasses
    give ``_gates`` (4 or 3), ``_name`` and ``_run(layer, direction, xs, state)``."""

    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, *, key=None, dtype=jnp.float32, training: bool = True):
        who = type(self).__name__
        if proj_size:
            raise NotImplementedError(f"{who}: proj_size is not supported")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers = int(num_layers)
        if self.num_layers < 1:
            raise ValueError(f"{who}: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{who}: dropout must be in [0, 1), got {dropout}")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.training = bool(training)
        dtype = init.param_dtype(dtype)
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size else 0.0
        u = init.uniform(-bound, bound)
        gh = self._gates * self.hidden_size
        keys = iter(init.split(key, 4 * self.num_layers * self.num_directions, who))
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            for sfx in self._suffixes(layer):
                setattr(self, f"weight_ih{sfx}", u(next(keys), (gh, in_size), dtype))
                setattr(self, f"weight_hh{sfx}", u(next(keys), (gh, self.hidden_size), dtype))
                b_ih, b_hh = next(keys), next(keys)
                setattr(self, f"bias_ih{sfx}", u(b_ih, (gh,), dtype) if bias else None)
                setattr(self, f"bias_hh{sfx}", u(b_hh, (gh,), dtype) if bias else None)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _params(self, sfx):
        d = self.__dict__
        return d[f"weight_ih{sfx}"], d[f"weight_hh{sfx}"], d[f"bias_ih{sfx}"], d[f"bias_hh{sfx}"]

    def _describe(self):
        extra = "".join(
            f", {k}={v}" for k, v in (("num_layers", self.num_layers),
                                      ("bidirectional", self.bidirectional)) if v not in (1, False))
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"

    def _sequence(self, x):
        """``x`` as time-major ``(T, B, F)``, and whether it was unbatched ``(T, F)``."""
        shape = shape_of(x)
        if len(shape) not in (2, 3) or shape[-1] != self.input_size:
            raise ShapeError(
                f"{self._describe()} needs a sequence of shape (T, B, {self.input_size}), "
                f"(B, T, {self.input_size}) with batch_first, or (T, {self.input_size}); got "
                f"{list(shape)}"
            )
        if len(shape) == 2:
            return expand_dims(x, 1), True
        return (swapaxes(x, 0, 1) if self.batch_first else x), False

    def _initial(self, s, what, batch, unbatched, dtype):
        """A hidden state: ``(L * D, B, H)`` (``(L * D, H)`` unbatched), zeros if None;
        as ``(L * D, B, H)``."""
        n = self.num_layers * self.num_directions
        want = (n, self.hidden_size) if unbatched else (n, batch, self.hidden_size)
        if s is None:
            return zeros((n, batch, self.hidden_size), dtype)
        if tuple(shape_of(s)) != want:
            layout = ("(num_layers * num_directions, hidden_size)" if unbatched else
                      "(num_layers * num_directions, batch, hidden_size)")
            raise ShapeError(
                f"{self._describe()}: {what} must be {layout} = {list(want)} for this input, "
                f"got {list(shape_of(s))}"
            )
        return expand_dims(s, 1) if unbatched else s

    def _layers(self, x, states, key, train):
        """Run every layer and direction; ``states``: per initial-state tensor, its
        ``(L * D, B, H)`` value. Returns the outputs ``(T, B, D * H)`` and, per state
        tensor, the final values stacked ``(L * D, B, H)``."""
        train = self.training if train is None else bool(train)
        drop = self.dropout and train and self.num_layers > 1
        if drop and key is None:
            raise TracingError(
                f"{self._describe()} with dropout={self.dropout} between layers needs a PRNG "
                f"key in training: call it with key=k (or train=False, or after .eval()) "
                f"(at {user_location_long(3)})"
            )
        keys = split_key(key, self.num_layers - 1) if drop else None
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and drop:
                x = F.dropout(x, keys[layer - 1], rate=self.dropout)
            outs = []
            for d, sfx in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                ys, last = self._run(sfx, x, [s[k] for s in states], reverse=d == 1)
                outs.append(ys)
                for acc, v in zip(finals, last):
                    acc.append(v)
            x = outs[0] if len(outs) == 1 else concatenate(outs, axis=-1)
        return x, [stack(acc, axis=0) for acc in finals]

    def _restore(self, ys, finals, unbatched):
        if unbatched:
            return squeeze(ys, 1), [squeeze(f, 1) for f in finals]
        return (swapaxes(ys, 0, 1) if self.batch_first else ys), finals


class LSTM(_RNNBase):
    """A multi-layer LSTM with PyTorch's ``nn.LSTM`` equations, gate order (i, f, g, o),
    parameters and shapes::

        i, f, g, o = split(x_t @ W_ih^T + b_ih + h @ W_hh^T + b_hh, 4)
        c = sigmoid(f) * c + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c)

    Arguments (PyTorch's order):
        input_size, hidden_size: feature sizes F and H.
        num_layers: stacked layers; layer ``l > 0`` reads the outputs of layer ``l - 1``.
        bias: whether to learn the biases.
        batch_first: inputs and outputs are ``(B, T, ...)`` instead of ``(T, B, ...)``
            (the hidden states keep their layout).
        dropout: dropout on the outputs of every layer but the last, in training (a
            PRNG ``key=`` is then needed in the call, as for `Dropout`).
        bidirectional: a second, reversed pass per layer; outputs ``(..., 2H)``.
        key: PRNG key (keyword-only; None draws from the global stream); dtype:
            parameter dtype. Every parameter is U(±1/sqrt(hidden_size)), as in PyTorch.

    Parameters, per layer ``k`` (and ``_reverse`` for the backward direction):
    ``weight_ih_l{k}`` ``(4H, F or D*H)``, ``weight_hh_l{k}`` ``(4H, H)``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(4H,)``: PyTorch's names and layouts, so a
    ``torch.nn.LSTM`` state dict loads as is.

    Call: ``lstm(x, state=None, *, key=None, train=None)`` with ``x`` ``(T, B, F)`` (or
    ``(B, T, F)``, or unbatched ``(T, F)``) and ``state = (h0, c0)``, each ``(L * D, B,
    H)`` (``(L * D, H)`` unbatched; zeros by default). Returns ``(outputs, (h_n, c_n))``:
    the last layer's ``h`` at every step, ``(T, B, D * H)``, and the final states, each
    ``(L * D, B, H)``.

    Example::

        lstm = tg.nn.LSTM(64, 128, num_layers=2, batch_first=True, key=key)
        ys, (h, c) = lstm(x)                # x: f32[B, T, 64] -> ys: f32[B, T, 128]
    """

    _gates = 4

    def forward(self, x, state=None, *, key=None, train=None):
        xs, unbatched = self._sequence(x)
        batch = shape_of(xs)[1]
        dtype = self.weight_ih_l0.dtype
        h0, c0 = (None, None) if state is None else state
        h0 = self._initial(h0, "h0", batch, unbatched, dtype)
        c0 = self._initial(c0, "c0", batch, unbatched, dtype)
        ys, (h, c) = self._layers(xs, [h0, c0], key, train)
        ys, (h, c) = self._restore(ys, [h, c], unbatched)
        return ys, (h, c)

    def _run(self, sfx, xs, init_state, reverse):
        w_ih, w_hh, b_ih, b_hh = self._params(sfx)
        gates_x = matmul(xs, transpose(w_ih))  # every step's input part at once
        for b in (b_ih, b_hh):
            if b is not None:
                gates_x = add(gates_x, b)
        w_hh_t = transpose(w_hh)

        def step(carry, gx):
            h, c = _lstm_step(gx, *carry, w_hh_t)
            return (h, c), h

        (h, c), ys = scan(step, tuple(init_state), gates_x, reverse=reverse)
        return ys, (h, c)


class GRU(_RNNBase):
    """A multi-layer GRU with PyTorch's ``nn.GRU`` equations, gate order (r, z, n),
    parameters and shapes::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h = (1 - z) * n + z * h

    Arguments and parameters as `LSTM`, with ``3H`` rows instead of ``4H``.

    Call: ``gru(x, h0=None, *, key=None, train=None)`` with ``h0`` ``(L * D, B, H)``
    (``(L * D, H)`` unbatched); returns ``(outputs, h_n)``.

    Example::

        gru = tg.nn.GRU(32, 64, bidirectional=True, key=key)
        ys, h = gru(x)                      # x: f32[T, B, 32] -> ys: f32[T, B, 128]
    """

    _gates = 3

    def forward(self, x, h0=None, *, key=None, train=None):
        xs, unbatched = self._sequence(x)
        h0 = self._initial(h0, "h0", shape_of(xs)[1], unbatched, self.weight_ih_l0.dtype)
        ys, (h,) = self._layers(xs, [h0], key, train)
        ys, (h,) = self._restore(ys, [h], unbatched)
        return ys, h

    def _run(self, sfx, xs, init_state, reverse):
        w_ih, w_hh, b_ih, b_hh = self._params(sfx)
        gates_x = matmul(xs, transpose(w_ih))
        if b_ih is not None:
            gates_x = add(gates_x, b_ih)
        w_hh_t = transpose(w_hh)

        def step(h, gx):
            h = _gru_step(gx, h, w_hh_t, b_hh)
            return h, h

        h, ys = scan(step, init_state[0], gates_x, reverse=reverse)
        return ys, (h,)


# -- single steps ---------------------------------------------------------------------------


class _CellBase(Module):
    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, key=None,
                 dtype=jnp.float32):
        who = type(self).__name__
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        k_ih, k_hh, k_bi, k_bh = init.split(key, 4, who)
        dtype = init.param_dtype(dtype)
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size else 0.0
        u = init.uniform(-bound, bound)
        gh = self._gates * self.hidden_size
        self.weight_ih = u(k_ih, (gh, self.input_size), dtype)
        self.weight_hh = u(k_hh, (gh, self.hidden_size), dtype)
        self.bias_ih = u(k_bi, (gh,), dtype) if bias else None
        self.bias_hh = u(k_bh, (gh,), dtype) if bias else None

    def _input(self, x):
        """``x`` as ``(B, F)``, and whether it was one unbatched ``(F,)`` example."""
        shape = shape_of(x)
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise ShapeError(
                f"{type(self).__name__}({self.input_size}, {self.hidden_size}) needs an input "
                f"of shape (B, {self.input_size}) or ({self.input_size},), got {list(shape)}"
            )
        return (expand_dims(x, 0), True) if len(shape) == 1 else (x, False)

    def _hidden(self, s, what, batch, unbatched, dtype):
        want = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if s is None:
            return zeros((batch, self.hidden_size), dtype)
        if tuple(shape_of(s)) != want:
            raise ShapeError(
                f"{type(self).__name__}({self.input_size}, {self.hidden_size}): {what} must "
                f"be {list(want)} for this input, got {list(shape_of(s))}"
            )
        return expand_dims(s, 0) if unbatched else s

    def _gates_x(self, x):
        gx = matmul(x, transpose(self.weight_ih))
        return gx if self.bias_ih is None else add(gx, self.bias_ih)


class LSTMCell(_CellBase):
    """One LSTM step (PyTorch's ``nn.LSTMCell``; the equations of `LSTM`).

    Parameters: ``weight_ih`` ``(4H, F)``, ``weight_hh`` ``(4H, H)``, ``bias_ih``,
    ``bias_hh`` ``(4H,)``, U(±1/sqrt(hidden_size)).

    Call: ``cell(x, hx=None)`` with ``x`` ``(B, F)`` (or ``(F,)``) and ``hx = (h, c)``
    each ``(B, H)`` (``(H,)``; zeros by default); returns the new ``(h, c)``.

    Example::

        cell = tg.nn.LSTMCell(10, 20, key=key)
        h, c = cell(x_t, (h, c))
    """

    _gates = 4

    def forward(self, x, hx=None):
        x, unbatched = self._input(x)
        batch, dtype = shape_of(x)[0], self.weight_ih.dtype
        h, c = (None, None) if hx is None else hx
        h = self._hidden(h, "h", batch, unbatched, dtype)
        c = self._hidden(c, "c", batch, unbatched, dtype)
        gx = self._gates_x(x)
        if self.bias_hh is not None:
            gx = add(gx, self.bias_hh)
        h, c = _lstm_step(gx, h, c, transpose(self.weight_hh))
        return (squeeze(h, 0), squeeze(c, 0)) if unbatched else (h, c)


class GRUCell(_CellBase):
    """One GRU step (PyTorch's ``nn.GRUCell``; the equations of `GRU`).

    Parameters: ``weight_ih`` ``(3H, F)``, ``weight_hh`` ``(3H, H)``, ``bias_ih``,
    ``bias_hh`` ``(3H,)``, U(±1/sqrt(hidden_size)).

    Call: ``cell(x, hx=None)`` with ``x`` ``(B, F)`` (or ``(F,)``) and ``hx`` ``(B, H)``
    (``(H,)``; zeros by default); returns the new ``h``.

    Example::

        cell = tg.nn.GRUCell(10, 20, key=key)
        h = cell(x_t, h)
    """

    _gates = 3

    def forward(self, x, hx=None):
        x, unbatched = self._input(x)
        h = self._hidden(hx, "hx", shape_of(x)[0], unbatched, self.weight_ih.dtype)
        h = _gru_step(self._gates_x(x), h, transpose(self.weight_hh), self.bias_hh)
        return squeeze(h, 0) if unbatched else h
