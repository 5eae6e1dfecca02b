"""`GradientTransformation`: an optax transformation whose ``init`` and ``update`` run
through `tg.from_jax`, so inside tracegraph code they are explicit IR."""

from __future__ import annotations

import jax
import optax

from ..core import Tensor
from ..errors import ShapeError, public, public_functions
from ..interop import JaxFunction, from_jax


class GradientTransformation:
    """An optax ``GradientTransformation`` usable in tracegraph code.

    ``init(params)`` and ``update(grads, state, params=None) -> (updates, state)`` have
    optax's meaning. Inside tg.jit / tg.trace / tg.eager they are captured through
    `tg.from_jax`: the printed train step shows the optimizer's arithmetic (moments,
    ``sqrt``, bias correction) as ordinary nodes in scope ``from_jax/<name>.update``. On
    concrete arrays outside any trace they simply call optax.

    ``factory`` and ``hyperparams``, when given, say how it was made:
    ``factory(**hyperparams)`` builds the same optax transformation, so a caller can
    rebuild it with other hyper-parameters — ``model.fit`` makes the learning rate an
    input of its compiled step that way (optax's ``inject_hyperparams``). The optimizers
    of `tg.optim` record them; `wrap` of a foreign transformation cannot.

    Example::

        opt = tg.optim.adam(1e-3)
        state = opt.init(params)
        updates, state = opt.update(grads, state, params)
        params = tg.optim.apply_updates(params, updates)
        opt.hyperparams["learning_rate"]          # 0.001
    """

    __slots__ = ("tx", "name", "_init", "_update", "factory", "hyperparams")

    def __init__(self, tx: optax.GradientTransformation, name: str = "optimizer", *,
                 factory=None, hyperparams: dict | None = None):
        if isinstance(tx, GradientTransformation):
            tx = tx.tx
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(f"expected an optax GradientTransformation, got {type(tx).__name__}")
        self.tx = tx
        self.name = name
        self.factory = factory
        self.hyperparams = dict(hyperparams or {})
        self._init = from_jax(tx.init, name=f"{name}.init")
        self._update = from_jax(tx.update, name=f"{name}.update")

    @public("init")
    def init(self, params):
        """The optimizer state for ``params`` (a pytree of arrays or tensors)."""
        return self._init(params)

    @public("update")
    def update(self, grads, state, params=None):
        """``(updates, new_state)`` for gradients ``grads``; add the updates to the
        parameters with `apply_updates`."""
        if params is not None:
            _same_structure("update", grads, params, "grads", "params")
        return self._update(grads, state, params)

    def __repr__(self):
        return f"tg.optim.{self.name}"


def wrap(tx, name: str | None = None) -> GradientTransformation:
    """Any optax ``GradientTransformation`` (or a `GradientTransformation`) as a
    tracegraph optimizer: ``tg.optim.wrap(optax.lion(1e-4))``."""
    if isinstance(tx, GradientTransformation) and name is None:
        return tx
    return GradientTransformation(tx, name or type(tx).__name__)


def chain(*transforms) -> GradientTransformation:
    """Apply transformations in order (``optax.chain``); each may be a tracegraph or an
    optax transformation: ``chain(clip_by_global_norm(1.0), adam(1e-3))``."""
    txs = [t.tx if isinstance(t, GradientTransformation) else t for t in transforms]
    names = [
        t.name if isinstance(t, GradientTransformation) else type(t).__name__ for t in transforms
    ]
    # rebuildable with another learning rate when exactly one part has one
    with_lr = [i for i, t in enumerate(transforms) if isinstance(t, GradientTransformation)
               and t.factory is not None and "learning_rate" in t.hyperparams]
    name = "chain(" + ",".join(names) + ")"
    if len(with_lr) != 1:
        return GradientTransformation(optax.chain(*txs), name=name)
    part = transforms[with_lr[0]]

    def rebuild(learning_rate):
        rebuilt = part.factory(**{**part.hyperparams, "learning_rate": learning_rate})
        return optax.chain(*(rebuilt if i == with_lr[0] else tx for i, tx in enumerate(txs)))

    return GradientTransformation(optax.chain(*txs), name=name, factory=rebuild,
                                  hyperparams={"learning_rate": part.hyperparams["learning_rate"]})


_apply_updates = from_jax(optax.apply_updates, name="apply_updates")


def apply_updates(params, updates):
    """``params + updates`` leaf by leaf, keeping each parameter's dtype
    (``optax.apply_updates``); IR nodes inside tracegraph code."""
    _same_structure("apply_updates", updates, params, "updates", "params")
    return _apply_updates(params, updates)


def _same_structure(op, a, b, name_a, name_b):
    ta = jax.tree_util.tree_structure(a, is_leaf=lambda x: isinstance(x, Tensor))
    tb = jax.tree_util.tree_structure(b, is_leaf=lambda x: isinstance(x, Tensor))
    if ta != tb:
        raise ShapeError(f"{op}: {name_a} and {name_b} differ in structure: {ta} vs {tb}")


def as_schedule(fn, name: str) -> JaxFunction:
    """A learning-rate schedule (``count -> value``) that works on tensors too."""
    return from_jax(fn, name=name)


public_functions(globals())
