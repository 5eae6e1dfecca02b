"""Layer 7: optimizers, all backed by optax transformations: functional (lowercase,
optax's ``init``/``update``) and PyTorch-style stateful classes (`SGD`, `Adam`, `AdamW`,
`RMSprop`: ``zero_grad()`` / ``step()`` on parameter tensors, ``state_dict()``, with
PyTorch's arithmetic; see ``_stateful.py``), and PyTorch's learning-rate schedulers in
`tg.optim.lr_scheduler` (``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``,
``ReduceLROnPlateau`` ...).
Keras 3's optimizers (``apply_gradients``, TF 2 style) are in ``_keras.py``, public as
``tg.optimizers``.

Inside tracegraph code (tg.jit, tg.trace, tg.eager) ``update`` is captured through
`tg.from_jax` as explicit IR: a printed train step shows the optimizer's arithmetic.
Outside, on concrete arrays, it is optax itself.

Example::

    opt = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(1e-3))
    state = opt.init(params)

    @tg.jit
    def step(params, state, x, y):
        grads = tg.grad(loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates), state
"""

from . import lr_scheduler
from ._optimizers import (
    adam,
    adamw,
    clip_by_global_norm,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    rmsprop,
    sgd,
    warmup_cosine_decay_schedule,
)
from ._stateful import SGD, Adam, AdamW, FromTransform, Optimizer, RMSprop
from ._transform import GradientTransformation, apply_updates, chain, wrap

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "FromTransform",
    "GradientTransformation",
    "Optimizer",
    "RMSprop",
    "adam",
    "adamw",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "lr_scheduler",
    "rmsprop",
    "sgd",
    "warmup_cosine_decay_schedule",
    "wrap",
]
