"""PyTorch-style stateful optimizers: ``opt.zero_grad(); loss.backward(); opt.step()``.

`SGD`, `Adam`, `AdamW` and `RMSprop` take parameter tensors (``model.parameters()``, or
leaf tensors made with ``requires_grad=True``) or PyTorch's list of parameter groups,
and update the tensors in place from their ``.grad``, with PyTorch's semantics (defaults,
L2 ``weight_decay`` added to the gradient, AdamW's decoupled decay, momentum buffers
that start at the first gradient). The arithmetic is optax's transformations (the same
as the functional `tg.optim.sgd`/`adam`/...), without the learning rate, which is applied
last so that changing ``param_groups[i]["lr"]`` (a schedule) needs no recompilation. Each
group's update runs as one ``jax.jit`` call over all of its parameters.

Example::

    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = tg.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from ..core import Tensor
from ..errors import TracingError, user_location_long
from ..frontend.tape import enable_grad


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step``. Subclasses give
    ``_transform(group)`` (an optax transformation without the learning rate) and
    ``_decoupled(group)`` (AdamW's weight decay, applied with the learning rate)."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # parameter tensor -> its optax state
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        """Add a group: ``{"params": [...], "lr": ...}``; missing settings come from the
        optimizer's defaults."""
        g = {**self.defaults, **group}
        ps = g["params"]
        g["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for i, p in enumerate(g["params"]):
            if not (isinstance(p, Tensor) and p._trace.free and p.is_leaf):
                raise TracingError(
                    f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a leaf "
                    "tensor: pass model.parameters() of a module built PyTorch style (no key=), "
                    "call model.requires_grad_() on a module built with keys, or make tensors "
                    f"with requires_grad=True (at {user_location_long(2)})"
                )
            if not p.requires_grad:
                raise TracingError(
                    f"{type(self).__name__}: parameter {i} ({p.type}) does not require grad "
                    f"(at {user_location_long(2)})"
                )
        seen = {id(p) for grp in self.param_groups for p in grp["params"]}
        if any(id(p) in seen for p in g["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(g)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (None by default, as in PyTorch 2)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a ``.grad``, in place. ``closure``: a function
        that re-evaluates the loss (and calls backward); its result is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for g in self.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            settings = self._settings(g)
            update = _update_fn(type(self), settings)
            states = []
            for p in ps:
                s = self.state.get(p)
                if s is None:
                    s = self._transform(settings).init(p._data)
                states.append(s)
            new_ps, new_states = update(
                jnp.asarray(g["lr"], jnp.float32), [p._data for p in ps], [p.grad._data for p in ps], states,
            )
            for p, new, s in zip(ps, new_ps, new_states):
                p._data = new
                self.state[p] = s
        return loss

    def _settings(self, group) -> tuple:
        """The group's settings other than ``lr`` and ``params``, as a hashable tuple."""
        return tuple(sorted((k, v if not isinstance(v, list) else tuple(v))
                            for k, v in group.items() if k not in ("params", "lr")))

    @classmethod
    def _transform(cls, settings) -> optax.GradientTransformation:
        raise NotImplementedError

    @classmethod
    def _decay(cls, settings) -> float:
        return 0.0

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines + [")"])


@functools.lru_cache(maxsize=64)
def _update_fn(cls, settings):
    """One compiled update for a group: ``(lr, params, grads, states) -> (params,
    states)``; cached per optimizer class and settings."""
    tx = cls._transform(settings)
    decay = cls._decay(settings)

    def update(lr, params, grads, states):
        new_ps, new_states = [], []
        for p, g, s in zip(params, grads, states):
            u, s = tx.update(g, s, p)
            step = u + decay * p if decay else u
            new_ps.append((p - lr * step).astype(p.dtype))
            new_states.append(s)
        return new_ps, new_states

    return jax.jit(update)


def _get(settings, name):
    return dict(settings)[name]


def _l2(settings):
    wd = _get(settings, "weight_decay")
    return [optax.add_decayed_weights(wd)] if wd else []


class SGD(Optimizer):
    """``torch.optim.SGD``: ``p -= lr * (g + wd p)``, with momentum
    ``buf = momentum * buf + g`` (``nesterov``: ``g + momentum * buf``)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        if dampening:
            raise NotImplementedError("SGD(dampening=...) is not supported")
        if nesterov and not momentum:
            raise ValueError("Nesterov momentum requires a momentum")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    @classmethod
    def _transform(cls, settings):
        parts = _maximize(settings) + _l2(settings)
        if _get(settings, "momentum"):
            parts.append(optax.trace(decay=_get(settings, "momentum"), nesterov=_get(settings, "nesterov")))
        return optax.chain(*parts) if parts else optax.identity()


def _maximize(settings):
    return [optax.scale(-1.0)] if _get(settings, "maximize") else []


class Adam(Optimizer):
    """``torch.optim.Adam`` (``weight_decay`` is L2, added to the gradient)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        if amsgrad:
            raise NotImplementedError("Adam(amsgrad=True) is not supported")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize))

    @classmethod
    def _transform(cls, settings):
        b1, b2 = _get(settings, "betas")
        return optax.chain(*_maximize(settings), *_l2(settings),
                           optax.scale_by_adam(b1=b1, b2=b2, eps=_get(settings, "eps")))


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay
    ``p -= lr * (adam_step + wd p)`` (default ``weight_decay=0.01``, as PyTorch's)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        if amsgrad:
            raise NotImplementedError("AdamW(amsgrad=True) is not supported")
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                              weight_decay=weight_decay, maximize=maximize))

    @classmethod
    def _transform(cls, settings):
        b1, b2 = _get(settings, "betas")
        return optax.chain(*_maximize(settings), optax.scale_by_adam(b1=b1, b2=b2, eps=_get(settings, "eps")))

    @classmethod
    def _decay(cls, settings):
        return float(_get(settings, "weight_decay"))


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: ``v = alpha v + (1 - alpha) g^2``, step
    ``g / (sqrt(v) + eps)`` (``centered``: the variance instead of ``v``), optional
    momentum on the step and L2 ``weight_decay``."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    @classmethod
    def _transform(cls, settings):
        alpha, eps = _get(settings, "alpha"), _get(settings, "eps")
        scale = optax.scale_by_stddev if _get(settings, "centered") else optax.scale_by_rms
        parts = [*_maximize(settings), *_l2(settings), scale(decay=alpha, eps=eps, eps_in_sqrt=False)]
        if _get(settings, "momentum"):
            parts.append(optax.trace(decay=_get(settings, "momentum")))
        return optax.chain(*parts)


class FromTransform:
    """Any functional optimizer (a `tg.optim` / optax transformation, learning rate
    included) driving parameter tensors PyTorch style: ``zero_grad()``, ``step()``. The
    transformation sees all parameters as one list, so couplings such as
    ``clip_by_global_norm`` work; a parameter without a ``.grad`` gets a zero gradient.

    Example::

        opt = tg.optim.FromTransform(model.parameters(),
                                     tg.optim.chain(tg.optim.clip_by_global_norm(1.0),
                                                    tg.optim.adam(1e-3)))
    """

    def __init__(self, params, transformation):
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not (isinstance(p, Tensor) and p._trace.free and p.is_leaf and p.requires_grad):
                raise TracingError(
                    f"FromTransform: parameter {i} is not a leaf tensor that requires grad "
                    f"(call model.requires_grad_()) (at {user_location_long(2)})"
                )
        self.tx = getattr(transformation, "tx", transformation)
        self.state = self.tx.init([p._data for p in self.params])
        tx = self.tx

        def update(params, grads, state):
            updates, state = tx.update(grads, state, params)
            return [(p + u).astype(p.dtype) for p, u in zip(params, updates)], state

        self._update = jax.jit(update)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        grads = [p.grad._data if p.grad is not None else jnp.zeros(p.shape, p.dtype) for p in self.params]
        new, self.state = self._update([p._data for p in self.params], grads, self.state)
        for p, a in zip(self.params, new):
            p._data = a
        return loss


__all__ = ["SGD", "Adam", "AdamW", "FromTransform", "Optimizer", "RMSprop"]
