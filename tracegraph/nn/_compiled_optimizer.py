"""The optimizer of Keras-style training: whatever ``model.compile(optimizer=...)`` was
given — a Keras name, a functional `tg.optim` optimizer, any optax transformation, or a
Keras-style optimizer object (`tg.optimizers.Adam` ...) — as the functional optax
transformation the compiled step applies, wrapped in a `CompiledOptimizer`
(``model.optimizer``).

NOTE (the learning rate is an input): names, `tg.optim` optimizers (which record how
they were made: ``factory`` and ``hyperparams``) and Keras-style objects are rebuilt
with optax's ``inject_hyperparams``, so the learning rate lives in the optimizer state,
an input of the compiled step: ``model.optimizer.learning_rate = x`` (what
`tg.callbacks.LearningRateScheduler` does) writes it there and nothing is retraced. A
transformation that cannot be rebuilt (``tg.optim.wrap(optax.lion(...))``, a schedule)
is applied as it is, and its rate cannot be set.

Example::

    model.compile("adam", "mse")                  # Keras 3's Adam defaults, optax's math
    model.optimizer.learning_rate = 1e-4           # no recompilation
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..optim import GradientTransformation
from ..train import TrainingError

# Keras 3's defaults for the names compile takes; the arithmetic is optax's.
_KERAS_DEFAULTS = {
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "adamw": dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                  epsilon=1e-7, amsgrad=False),
    "rmsprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
}


def _keras_math(kind: str, c: dict):
    """``learning_rate -> optax transformation`` for Keras optimizer ``kind`` with
    settings ``c`` (Keras' names: beta_1, epsilon, rho ...)."""

    def build(learning_rate):
        if kind == "sgd":
            tx = optax.sgd(learning_rate, momentum=c.get("momentum") or None,
                           nesterov=bool(c.get("nesterov")))
        elif kind in ("adam", "adamw"):
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            if kind == "adamw":
                tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps,
                                 weight_decay=c.get("weight_decay") or 0.0)
            elif c.get("amsgrad"):
                tx = optax.amsgrad(learning_rate, b1=b1, b2=b2, eps=eps)
            else:
                tx = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
        elif kind == "rmsprop":
            tx = optax.rmsprop(learning_rate, decay=c.get("rho", 0.9), eps=c.get("epsilon", 1e-7),
                               momentum=c.get("momentum") or None,
                               centered=bool(c.get("centered")))
        elif kind == "adagrad":
            tx = optax.adagrad(learning_rate,
                               initial_accumulator_value=c.get("initial_accumulator_value", 0.1),
                               eps=c.get("epsilon", 1e-7))
        else:  # pragma: no cover - _KERAS_DEFAULTS lists the kinds
            raise AssertionError(kind)
        parts = []
        if c.get("clipnorm"):
            parts.append(_clip_each_by_norm(float(c["clipnorm"])))
        elif c.get("global_clipnorm"):
            parts.append(optax.clip_by_global_norm(float(c["global_clipnorm"])))
        elif c.get("clipvalue"):
            parts.append(optax.clip(float(c["clipvalue"])))
        parts.append(tx)
        if kind != "adamw" and c.get("weight_decay"):  # Keras: v -= v * weight_decay * lr
            parts.append(optax.add_decayed_weights(-learning_rate * float(c["weight_decay"])))
        return optax.chain(*parts) if len(parts) > 1 else tx

    return build


def _clip_each_by_norm(max_norm: float) -> optax.GradientTransformation:
    """Keras' ``clipnorm``: each gradient scaled to an L2 norm of at most ``max_norm``."""

    def update(grads, state, params=None):
        def clip(g):
            norm = jnp.sqrt(jnp.sum(jnp.square(g)))
            return g * max_norm / jnp.maximum(norm, max_norm)

        return jax.tree_util.tree_map(clip, grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class CompiledOptimizer:
    """``model.optimizer`` after ``model.compile``: the optimizer as ``fit`` runs it.

    ``learning_rate`` reads and sets the current rate (setting it recompiles nothing: it
    is an input of the compiled step); ``iterations`` is the number of steps taken;
    ``transformation`` the functional `tg.optim` optimizer the step applies;
    ``source`` what was given to ``compile``.

    Example::

        model.compile("adam", "mse")
        model.optimizer.learning_rate = 1e-4
    """

    def __init__(self, trainer, name, transformation, learning_rate, source, key=None):
        self._trainer = trainer
        self.key = ("transformation", transformation) if key is None else key  # for `steps_for`
        self.name = name
        self.transformation = transformation
        self._lr = learning_rate  # None: fixed inside the transformation (a schedule ...)
        self.source = source

    @property
    def learning_rate(self):
        if self._lr is None:
            raise TrainingError(
                f"the learning rate of {self.source!r} is not a number that training can read or "
                f"set (a schedule, or an optimizer that cannot be rebuilt); compile with 'adam', "
                f"tg.optim.adam(lr) or tg.optimizers.Adam(lr) to change it during training"
            )
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.learning_rate  # noqa: B018 - raises when it cannot be set
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.ndarray, jax.Array)):
            raise TrainingError(f"learning_rate must be a number, got {value!r}")
        self._lr = float(value)
        state = self._trainer.live_opt_state()
        if state is not None:
            set_learning_rate(state, self._lr)

    @property
    def iterations(self) -> int:
        return self._trainer.iterations

    def __repr__(self) -> str:
        lr = "schedule" if self._lr is None else self._lr
        return f"<compiled optimizer {self.name} learning_rate={lr} iterations={self.iterations}>"


def set_learning_rate(opt_state, lr: float) -> None:
    """Write the learning rate into an ``inject_hyperparams`` state, in place (its
    ``hyperparams`` dict is the state's own: each step returns a new one)."""
    opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)


def _injected(name: str, build, learning_rate: float) -> GradientTransformation:
    tx = optax.inject_hyperparams(lambda learning_rate: build(learning_rate))(
        learning_rate=float(learning_rate))
    return GradientTransformation(tx, name)


def resolve_optimizer(trainer, optimizer) -> CompiledOptimizer:
    """Any form ``compile`` takes as the `CompiledOptimizer` ``fit`` runs."""
    if isinstance(optimizer, str):
        kind = optimizer.lower()
        if kind not in _KERAS_DEFAULTS:
            raise TrainingError(f"unknown optimizer {optimizer!r}; known names: "
                                f"{', '.join(sorted(_KERAS_DEFAULTS))}, or pass a tg.optim "
                                f"optimizer (tg.optim.adam(1e-3)) or a tg.optimizers one")
        c = dict(_KERAS_DEFAULTS[kind])
        return CompiledOptimizer(trainer, kind, _injected(kind, _keras_math(kind, c), c["learning_rate"]),
                                 c["learning_rate"], optimizer, key=_settings_key(kind, c))
    if isinstance(optimizer, GradientTransformation) or (
            hasattr(optimizer, "init") and hasattr(optimizer, "update") and not hasattr(optimizer, "step")):
        opt = optimizer if isinstance(optimizer, GradientTransformation) else GradientTransformation(
            optimizer, type(optimizer).__name__)
        factory, hp = getattr(opt, "factory", None), getattr(opt, "hyperparams", None) or {}
        lr = hp.get("learning_rate")
        if factory is not None and isinstance(lr, numbers.Real) and not isinstance(lr, bool):
            tx = _injected(opt.name, lambda r: factory(**{**hp, "learning_rate": r}), lr)
            return CompiledOptimizer(trainer, opt.name, tx, float(lr), optimizer,
                                     key=_settings_key(factory, hp))
        return CompiledOptimizer(trainer, opt.name, opt, None, optimizer)
    if hasattr(optimizer, "zero_grad") and hasattr(optimizer, "step"):
        raise TrainingError(
            f"{type(optimizer).__name__} is a PyTorch-style optimizer (zero_grad/step on "
            f"parameter tensors); compile takes a name ('adam'), a functional tg.optim "
            f"optimizer (tg.optim.adam(1e-3)) or a Keras one (tg.optimizers.Adam(1e-3))"
        )
    if hasattr(optimizer, "learning_rate"):
        return _from_keras_object(trainer, optimizer)
    raise TrainingError(f"compile: optimizer must be a name, a tg.optim optimizer or a Keras "
                        f"optimizer, got {type(optimizer).__name__}")


def _from_keras_object(trainer, opt) -> CompiledOptimizer:
    """A Keras-style optimizer object (`tg.optimizers.Adam` ...) by its class and
    settings: the same update in optax's arithmetic (Adam's epsilon is added to optax's
    bias-corrected denominator, Keras adds it before the correction: a difference of
    order epsilon)."""
    kind = type(opt).__name__.lower()
    if kind not in _KERAS_DEFAULTS:
        raise TrainingError(f"compile cannot convert the optimizer {type(opt).__name__} (known: "
                            f"SGD, Adam, AdamW, RMSprop, Adagrad); pass a tg.optim optimizer")
    config = opt.get_config() if hasattr(opt, "get_config") else {}
    c = dict(_KERAS_DEFAULTS[kind])
    for k in (*c, "weight_decay", "clipnorm", "global_clipnorm", "clipvalue"):
        if k in config:
            c[k] = config[k]
        elif k != "learning_rate" and hasattr(opt, k):
            c[k] = getattr(opt, k)
    if config.get("use_ema") or getattr(opt, "use_ema", False):
        raise TrainingError(f"{type(opt).__name__}(use_ema=True) is not supported by fit")
    lr = config.get("learning_rate", getattr(opt, "_learning_rate", None))
    if lr is None:
        lr = opt.learning_rate
    build = _keras_math(kind, c)
    if callable(lr) and not isinstance(lr, (numbers.Real, np.ndarray)):
        return CompiledOptimizer(trainer, kind, GradientTransformation(build(lr), kind), None, opt)
    return CompiledOptimizer(trainer, kind, _injected(kind, build, float(lr)), float(lr), opt,
                             key=_settings_key(kind, c))


def _settings_key(kind, settings: dict) -> tuple:
    """What an optimizer's compiled step depends on: its kind and settings without the
    learning rate (an input of the step)."""
    return (kind, tuple(sorted((k, v) for k, v in settings.items() if k != "learning_rate")))
