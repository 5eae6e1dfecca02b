"""Recurrent layers `LSTM` and `GRU`: one layer each, run over the sequence with `tg.scan`.

NOTE (speed): the input projection of every time step is one matmul over the whole
sequence, made before the loop; the loop body does one matmul per step (``h @ W_hh^T``,
all gates at once) plus elementwise gate math. The weights are transposed once, outside
the loop.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..errors import ShapeError
from ..frontend.control_flow import scan
from ..frontend.fn_creation import zeros
from ..frontend.fn_linalg import matmul
from ..frontend.fn_math import add, multiply, sigmoid, subtract, tanh
from ..frontend.fn_shape import (
    expand_dims,
    shape_of,
    split,
    squeeze,
    swapaxes,
    transpose,
)
from . import init
from ._module import Module


def _sequence(x, batch_first, who):
    """``x`` as time-major ``(T, B, F)``; also whether it was unbatched ``(T, F)``."""
    shape = shape_of(x)
    if len(shape) == 2:
        return expand_dims(x, 1), True
    if len(shape) != 3:
        raise ShapeError(
            f"{who} needs a sequence of shape (T, B, F), (B, T, F) with batch_first, or "
            f"(T, F); got {list(shape)}"
        )
    return (swapaxes(x, 0, 1) if batch_first else x), False


def _restore(ys, batch_first, unbatched):
    if unbatched:
        return squeeze(ys, 1)
    return swapaxes(ys, 0, 1) if batch_first else ys


def _state(s, unbatched, batch, hidden, dtype):
    if s is None:
        return zeros((batch, hidden), dtype)
    return expand_dims(s, 0) if unbatched else s


class LSTM(Module):
    """A one-layer LSTM (PyTorch's ``nn.LSTM`` gate equations and order i, f, g, o)::

        i, f, g, o = split(x_t @ W_ih^T + h @ W_hh^T + bias, 4)
        c = sigmoid(f) * c + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c)

    Arguments:
        input_size, hidden_size: feature sizes F and H.
        batch_first: inputs and outputs are ``(B, T, ...)`` instead of ``(T, B, ...)``.
        bias: whether to learn ``bias``.
        key: PRNG key (keyword-only, required); dtype: parameter dtype. Every parameter
            is initialized U(±1/sqrt(hidden_size)), as in PyTorch.

    Parameters: ``weight_ih`` ``(4H, F)``, ``weight_hh`` ``(4H, H)`` and one ``bias``
    ``(4H,)`` (PyTorch's ``bias_ih + bias_hh``).

    Call: ``lstm(x, state=None)`` with ``x`` ``(T, B, F)`` (or ``(B, T, F)``, or
    unbatched ``(T, F)``) and optional ``state = (h0, c0)`` each ``(B, H)`` (zeros by
    default). Returns ``(outputs, (h, c))``: every step's ``h`` (``(T, B, H)``) and the
    final state.

    Example::

        lstm = tg.nn.LSTM(64, 128, key=key)
        ys, (h, c) = lstm(x)                # x: f32[T, B, 64] -> ys: f32[T, B, 128]
    """

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False,
                 bias: bool = True, key=None, dtype=jnp.float32):
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.batch_first = bool(batch_first)
        k_ih, k_hh, k_b = init.split(key, 3, "LSTM")
        dtype = init.param_dtype(dtype)
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size else 0.0
        u = init.uniform(-bound, bound)
        h4 = 4 * self.hidden_size
        self.weight_ih = u(k_ih, (h4, self.input_size), dtype)
        self.weight_hh = u(k_hh, (h4, self.hidden_size), dtype)
        self.bias = u(k_b, (h4,), dtype) if bias else None

    def forward(self, x, state=None):
        xs, unbatched = _sequence(x, self.batch_first, "LSTM")
        _, batch, _ = shape_of(xs)
        dtype = self.weight_ih.dtype
        h0, c0 = (None, None) if state is None else state
        h0 = _state(h0, unbatched, batch, self.hidden_size, dtype)
        c0 = _state(c0, unbatched, batch, self.hidden_size, dtype)
        gates_x = matmul(xs, transpose(self.weight_ih))  # every step's input part at once
        if self.bias is not None:
            gates_x = add(gates_x, self.bias)
        w_hh = transpose(self.weight_hh)

        def step(carry, gx):
            h, c = carry
            i, f, g, o = split(add(gx, matmul(h, w_hh)), 4, axis=-1)
            c = add(multiply(sigmoid(f), c), multiply(sigmoid(i), tanh(g)))
            h = multiply(sigmoid(o), tanh(c))
            return (h, c), h

        (h, c), ys = scan(step, (h0, c0), gates_x)
        if unbatched:
            h, c = squeeze(h, 0), squeeze(c, 0)
        return _restore(ys, self.batch_first, unbatched), (h, c)


class GRU(Module):
    """A one-layer GRU (PyTorch's ``nn.GRU`` equations, gate order r, z, n)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h = (1 - z) * n + z * h

    Arguments as `LSTM`. Parameters: ``weight_ih`` ``(3H, F)``, ``weight_hh``
    ``(3H, H)``, ``bias_ih`` and ``bias_hh`` ``(3H,)`` (two biases: ``b_hn`` sits inside
    ``r * (...)``), all initialized U(±1/sqrt(hidden_size)).

    Call: ``gru(x, h0=None)``; returns ``(outputs, h)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False,
                 bias: bool = True, key=None, dtype=jnp.float32):
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.batch_first = bool(batch_first)
        k_ih, k_hh, k_bi, k_bh = init.split(key, 4, "GRU")
        dtype = init.param_dtype(dtype)
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size else 0.0
        u = init.uniform(-bound, bound)
        h3 = 3 * self.hidden_size
        self.weight_ih = u(k_ih, (h3, self.input_size), dtype)
        self.weight_hh = u(k_hh, (h3, self.hidden_size), dtype)
        self.bias_ih = u(k_bi, (h3,), dtype) if bias else None
        self.bias_hh = u(k_bh, (h3,), dtype) if bias else None

    def forward(self, x, h0=None):
        xs, unbatched = _sequence(x, self.batch_first, "GRU")
        _, batch, _ = shape_of(xs)
        h0 = _state(h0, unbatched, batch, self.hidden_size, self.weight_ih.dtype)
        gates_x = matmul(xs, transpose(self.weight_ih))
        if self.bias_ih is not None:
            gates_x = add(gates_x, self.bias_ih)
        w_hh, b_hh = transpose(self.weight_hh), self.bias_hh

        def step(h, gx):
            gh = matmul(h, w_hh)
            if b_hh is not None:
                gh = add(gh, b_hh)
            xr, xz, xn = split(gx, 3, axis=-1)
            hr, hz, hn = split(gh, 3, axis=-1)
            r = sigmoid(add(xr, hr))
            z = sigmoid(add(xz, hz))
            n = tanh(add(xn, multiply(r, hn)))
            h = add(multiply(subtract(1.0, z), n), multiply(z, h))
            return h, h

        h, ys = scan(step, h0, gates_x)
        if unbatched:
            h = squeeze(h, 0)
        return _restore(ys, self.batch_first, unbatched), h
