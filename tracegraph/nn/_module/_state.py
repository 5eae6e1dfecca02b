"""State a module changes while it runs, and which of its leaves train.

Most of a model's leaves are parameters: the optimizer changes them, the forward pass only
reads them. Some are *state* the forward pass itself updates: a batch norm's moving
statistics, the key of a dropout layer's seed generator (Keras 3's ``SeedGenerator``).
A layer updates such a leaf with `update_state` and reads it with `read_state`; what
that means depends on how the model runs:

- the leaf is a `tg.Variable` (a Keras-style model called eagerly, or under a
  ``GradientTape``): ``assign``, at once; inside `tg.function` the assignment is a state
  output of the compiled graph (the trace's ``assign_state``);
- a functional step collects the updates (`collecting_state`): Keras-style ``fit``
  trains a copy of the model whose leaves are arrays, so the step returns the new state
  next to the new parameters (as Keras 3's ``stateless_call`` returns its
  ``non_trainable_variables``), printed in the step's graph as ordinary outputs;
- anything else (a copy with array leaves called outside such a step) cannot be updated
  in place, and saying nothing would train with stale statistics: a clear error.

Which leaves an optimizer trains is `_module.trainable_mask`.
"""

from __future__ import annotations

import contextlib
import contextvars

from ...errors import TracingError
from ...frontend.variables import Variable

_UPDATES: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "tracegraph_state_updates", default=None)


@contextlib.contextmanager
def collecting_state():
    """Collect the state updates of the modules run inside: yields a dict from
    ``id(old leaf)`` to its new value."""
    updates: dict = {}
    token = _UPDATES.set(updates)
    try:
        yield updates
    finally:
        _UPDATES.reset(token)


def read_state(module, field: str):
    """The current value of a state leaf (the updated one, if this step updated it)."""
    old = module.__dict__[field]
    updates = _UPDATES.get()
    if updates is not None and id(old) in updates:
        return updates[id(old)]
    return old


def update_state(module, field: str, value) -> None:
    """Give a state leaf a new value (see the module docstring for what that means)."""
    old = module.__dict__[field]
    updates = _UPDATES.get()
    if updates is not None:
        updates[id(old)] = value
    elif isinstance(old, Variable):
        old.assign(value)
    else:
        raise TracingError(
            f"{type(module).__name__}.{field} is state the layer updates while it runs, "
            f"but this copy of the model holds a plain array there, which cannot change in "
            f"place: call the model itself (its Variables), inside tg.function, through "
            f"model.fit, or with tg.nn.call_with_state(model, ...), which returns the new "
            f"state")
