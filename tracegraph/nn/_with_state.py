"""`call_with_state`: call a module functionally and get back the state it updated (a
batch norm's running statistics) in a new copy of the module."""

from __future__ import annotations

import jax

from ..core import Tensor
from ._module._state import collecting_state


def call_with_state(model, *args, **kwargs):
    """Call ``model(*args, **kwargs)`` and return ``(outputs, new_model)``: ``new_model``
    is a copy of ``model`` whose state leaves (`tg.nn.BatchNorm2d`'s ``running_mean``,
    ``running_var``, ``num_batches_tracked`` ...) hold the values the call computed, and
    the same leaves as ``model`` elsewhere; ``model`` itself is left as it is.

    This is the functional form of a training call, for `tg.jit` and `tg.grad`, where the
    model holds traced values that cannot be updated in place (a plain call in training
    mode there is an error, not a silent no-op). Outside traced code it works too, and
    leaves the module's Variables untouched.

    Example::

        def loss_fn(model, x, y):
            logits, model = tg.nn.call_with_state(model, x)
            return F.cross_entropy(logits, y), model

        @tg.jit
        def step(model, opt_state, x, y):
            (loss, stepped), grads = tg.value_and_grad(loss_fn, has_aux=True)(model, x, y)
            updates, opt_state = opt.update(grads, opt_state, model)
            return tg.optim.apply_updates(stepped, updates), opt_state, loss

    The gradient with respect to a state leaf is zero, so ``sgd``/``adam`` leave the new
    statistics as they are; mask them out of an optimizer with weight decay
    (``optax.masked``).
    """
    with collecting_state() as updates:
        out = model(*args, **kwargs)
    if not updates:
        return out, model
    new = jax.tree_util.tree_map(lambda v: updates.get(id(v), v), model,
                                 is_leaf=lambda v: isinstance(v, Tensor))
    return out, new
