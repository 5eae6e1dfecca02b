"""PyTorch's update rules as optax transformations: the core of the stateful `SGD`,
`Adam`/`AdamW` and `RMSprop` of ``_stateful.py``.

Each is an ``optax.GradientTransformation`` whose state is a NamedTuple with PyTorch's
names (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``,
``square_avg``, ``grad_avg``, ``step``), so an optimizer's ``state_dict()`` reads like
PyTorch's. The learning rate, L2 weight decay and ``maximize`` are not part of them (the
optimizer applies those). Hyper-parameters may be traced scalars: the optimizer passes
them into its compiled update, so a schedule that changes ``momentum`` or ``betas``
(`OneCycleLR`) does not recompile it. Optional state (AMSGrad's maximum, a centered
RMSprop's mean) is ``None`` when off.

NOTE: where optax differs from PyTorch these follow PyTorch: the SGD momentum buffer is
the first gradient itself (not ``(1 - dampening) * g``), and AMSGrad keeps the maximum
of the *uncorrected* second moment and divides by ``sqrt(max) / sqrt(1 - beta2^t) + eps``
(``optax.scale_by_amsgrad`` takes the maximum of the bias-corrected moment).

Example::

    tx = scale_by_adam(0.9, 0.999, 1e-8, amsgrad=True)
    state = tx.init(params)
    direction, state = tx.update(grads, state)      # params -= lr * direction
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def _zeros(params):
    return jax.tree.map(jnp.zeros_like, params)


def _like(x, ref):
    """``x`` in ``ref``'s dtype: a float32 hyper-parameter must not widen a bfloat16 state."""
    return x.astype(ref.dtype)


class SGDMomentumState(NamedTuple):
    step: jax.Array  # 0 until the first update, whose buffer is the gradient itself
    momentum_buffer: optax.Updates


def sgd_momentum(momentum, dampening=0.0, nesterov: bool = False) -> optax.GradientTransformation:
    """``torch.optim.SGD``'s momentum: ``buf = g`` on the first step, then
    ``buf = momentum * buf + (1 - dampening) * g``; the direction is ``buf``, or
    ``g + momentum * buf`` with ``nesterov``."""

    def init(params):
        return SGDMomentumState(jnp.zeros([], jnp.int32), _zeros(params))

    def update(updates, state, params=None):
        del params
        first = state.step == 0
        buf = jax.tree.map(
            lambda b, g: _like(jnp.where(first, g, momentum * b + (1 - dampening) * g), b),
            state.momentum_buffer, updates)
        if nesterov:
            out = jax.tree.map(lambda g, b: _like(g + momentum * b, g), updates, buf)
        else:
            out = buf
        return out, SGDMomentumState(optax.safe_increment(state.step), buf)

    return optax.GradientTransformation(init, update)


class AdamState(NamedTuple):
    step: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    max_exp_avg_sq: optax.Updates | None  # AMSGrad only


def scale_by_adam(b1, b2, eps, amsgrad: bool = False) -> optax.GradientTransformation:
    """``torch.optim.Adam``'s direction ``(m / (1 - b1^t)) / (sqrt(v') / sqrt(1 - b2^t) + eps)``
    with ``v' = v``, or with ``amsgrad`` the running maximum of ``v`` (uncorrected)."""

    def init(params):
        return AdamState(jnp.zeros([], jnp.int32), _zeros(params), _zeros(params),
                         _zeros(params) if amsgrad else None)

    def update(updates, state, params=None):
        del params
        step = optax.safe_increment(state.step)
        t = step.astype(jnp.float32)
        m = jax.tree.map(lambda m, g: _like(m + (1 - b1) * (g - m), m), state.exp_avg, updates)
        v = jax.tree.map(lambda v, g: _like(b2 * v + (1 - b2) * (g * g), v), state.exp_avg_sq, updates)
        vmax = jax.tree.map(jnp.maximum, state.max_exp_avg_sq, v) if amsgrad else None
        bc1 = 1 - b1 ** t
        bc2_sqrt = jnp.sqrt(1 - b2 ** t)
        out = jax.tree.map(lambda m, v: _like((m / bc1) / (jnp.sqrt(v) / bc2_sqrt + eps), m),
                           m, vmax if amsgrad else v)
        return out, AdamState(step, m, v, vmax)

    return optax.GradientTransformation(init, update)


class RMSpropState(NamedTuple):
    step: jax.Array
    square_avg: optax.Updates
    grad_avg: optax.Updates | None  # centered only
    momentum_buffer: optax.Updates | None  # with momentum only


def scale_by_rmsprop(alpha, eps, momentum=None, centered: bool = False) -> optax.GradientTransformation:
    """``torch.optim.RMSprop``'s direction ``g / (sqrt(v) + eps)`` with
    ``v = alpha v + (1 - alpha) g^2`` (``centered``: ``v - mean(g)^2``); with a
    ``momentum`` (None: none) the direction is ``buf = momentum * buf + g / (...)``."""

    def init(params):
        return RMSpropState(jnp.zeros([], jnp.int32), _zeros(params),
                            _zeros(params) if centered else None,
                            _zeros(params) if momentum is not None else None)

    def update(updates, state, params=None):
        del params
        sq = jax.tree.map(lambda v, g: _like(alpha * v + (1 - alpha) * (g * g), v),
                          state.square_avg, updates)
        if centered:
            mean = jax.tree.map(lambda a, g: _like(a + (1 - alpha) * (g - a), a), state.grad_avg, updates)
            avg = jax.tree.map(lambda v, a: jnp.sqrt(v - a * a) + eps, sq, mean)
        else:
            mean = None
            avg = jax.tree.map(lambda v: jnp.sqrt(v) + eps, sq)
        out = jax.tree.map(lambda g, a: _like(g / a, g), updates, avg)
        buf = None
        if momentum is not None:
            buf = jax.tree.map(lambda b, d: _like(momentum * b + d, b), state.momentum_buffer, out)
            out = buf
        return out, RMSpropState(optax.safe_increment(state.step), sq, mean, buf)

    return optax.GradientTransformation(init, update)


__all__ = ["AdamState", "RMSpropState", "SGDMomentumState", "scale_by_adam", "scale_by_rmsprop",
           "sgd_momentum"]
