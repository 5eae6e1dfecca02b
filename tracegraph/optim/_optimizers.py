"""The optimizers and learning-rate schedules, each a thin layer over optax.

Learning rates may be floats, optax schedules, or the schedules here; the step count a
schedule reads lives in the optimizer state, as in optax.
"""

from __future__ import annotations

import optax

from ._transform import GradientTransformation, as_schedule


def sgd(learning_rate, momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum (``optax.sgd``)."""
    return _recorded("sgd", _sgd, learning_rate=learning_rate, momentum=momentum,
                     nesterov=nesterov)


def _recorded(name: str, factory, **hyperparams) -> GradientTransformation:
    """``factory(**hyperparams)`` as a `GradientTransformation` that remembers how it was
    made (see `GradientTransformation`: fit rebuilds it with an injected learning rate)."""
    return GradientTransformation(factory(**hyperparams), name, factory=factory,
                                  hyperparams=hyperparams)


def _sgd(learning_rate, momentum, nesterov):
    return optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)


def _rmsprop(learning_rate, decay, eps, momentum, nesterov, centered):
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, momentum=momentum or None,
                         nesterov=nesterov, centered=centered)


def adam(
    learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    """Adam (``optax.adam``)."""
    return _recorded("adam", optax.adam, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps)


def adamw(
    learning_rate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    mask=None,
) -> GradientTransformation:
    """Adam with decoupled weight decay (``optax.adamw``)."""
    return _recorded("adamw", optax.adamw, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
                     weight_decay=weight_decay, mask=mask)


def rmsprop(
    learning_rate,
    decay: float = 0.9,
    eps: float = 1e-8,
    momentum: float = 0.0,
    nesterov: bool = False,
    centered: bool = False,
) -> GradientTransformation:
    """RMSProp (``optax.rmsprop``), optionally centered and with momentum."""
    return _recorded("rmsprop", _rmsprop, learning_rate=learning_rate, decay=decay, eps=eps,
                     momentum=momentum, nesterov=nesterov, centered=centered)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all gradients down together so their global L2 norm is at most
    ``max_norm`` (``optax.clip_by_global_norm``); use it first in a `chain`."""
    return GradientTransformation(optax.clip_by_global_norm(max_norm), "clip_by_global_norm")


# -- schedules ---------------------------------------------------------------------------


def constant_schedule(value: float):
    """``count -> value``."""
    return as_schedule(optax.constant_schedule(value), "constant_schedule")


def cosine_decay_schedule(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
):
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``."""
    return as_schedule(
        optax.cosine_decay_schedule(init_value, decay_steps, alpha=alpha, exponent=exponent),
        "cosine_decay_schedule",
    )


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
):
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to
    ``end_value`` at ``decay_steps`` (warm-up included)."""
    return as_schedule(
        optax.warmup_cosine_decay_schedule(
            init_value, peak_value, warmup_steps, decay_steps,
            end_value=end_value, exponent=exponent,
        ),
        "warmup_cosine_decay_schedule",
    )


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
):
    """``init_value * decay_rate ** (count / transition_steps)`` (``optax.exponential_decay``)."""
    return as_schedule(
        optax.exponential_decay(
            init_value, transition_steps, decay_rate, transition_begin=transition_begin,
            staircase=staircase, end_value=end_value,
        ),
        "exponential_decay",
    )
