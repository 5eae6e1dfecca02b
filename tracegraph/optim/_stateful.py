"""PyTorch-style stateful optimizers: ``opt.zero_grad(); loss.backward(); opt.step()``.

`SGD`, `Adam`, `AdamW` and `RMSprop` take parameter tensors (``model.parameters()``, or
leaf tensors made with ``requires_grad=True``) or PyTorch's list of parameter groups,
and update the tensors in place from their ``.grad``, with PyTorch's semantics and
arithmetic: defaults, L2 ``weight_decay`` added to the gradient, AdamW's decoupled
decay, SGD's ``dampening`` and a momentum buffer that starts at the first gradient,
Adam's ``amsgrad`` (the maximum of the uncorrected second moment), ``maximize``. The
update rules are optax transformations written to PyTorch's formulas
(``_torch_rules.py``); the tests compare parameters with PyTorch's over 100 steps.

``opt.state_dict()`` / ``opt.load_state_dict(sd)`` have PyTorch's layout: ``{"state":
{param_index: {"exp_avg": array, ...}}, "param_groups": [{"lr": ..., "params":
[indices]}]}``, with PyTorch's state names; it is a tree of arrays and numbers that
`tg.checkpoint.save` writes as it is (a group setting that is text, such as a ``"name"``
of the user's, is not: the checkpoint refuses it). `tg.optim.lr_scheduler` sets
``group["lr"]``.

NOTE (one compiled update per group, no recompilation): each group's update runs as one
``jax.jit`` call over all of its parameters. Its inputs are the learning rate and every
float setting (momentum, betas, eps, weight decay ...) as one float32 vector, so a
schedule that changes ``param_groups[i]["lr"]`` — or ``momentum``/``betas``, as
`OneCycleLR` does — runs the same compiled update. Only the boolean settings
(``nesterov``, ``amsgrad``, ``centered``, ``maximize``) and whether ``momentum`` is zero
choose the compiled function; when one changes, each state keeps its arrays by name and
new ones start fresh (momentum switched on starts its buffer at the next gradient, as in
PyTorch).

Example::

    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = tg.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
    tg.checkpoint.save("opt.ckpt", opt.state_dict())
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..core import Tensor
from ..errors import TracingError, user_location_long
from ..frontend.tape import enable_grad
from ._torch_rules import scale_by_adam, scale_by_rmsprop, sgd_momentum


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step``, ``state_dict``.

    A subclass names its settings: ``_hyper`` (float settings and how many numbers each
    holds, inputs of the compiled update), ``_flags`` (settings that choose the compiled
    update: booleans, and float settings counted by whether they are nonzero), and gives
    ``_transform(hp, flags)``: the optax transformation of one parameter's gradient into
    its step direction, without learning rate, L2 decay or ``maximize``, which the base
    class applies. ``_decoupled``: weight decay is AdamW's ``p *= 1 - lr * wd``."""

    _hyper: ClassVar[dict[str, int]] = {"weight_decay": 1}
    _flags: ClassVar[tuple[str, ...]] = ("maximize",)
    _decoupled: ClassVar[bool] = False

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # parameter tensor -> its optax state
        self._made_with: dict[int, tuple] = {}  # group index -> flags its states were made for
        self._opt_called = False  # step() ran; lr_scheduler warns when it is stepped first
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
        self._opt_called = True
        for i, g in enumerate(self.param_groups):
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            flags, scalars = self._flags_of(g), self._scalars(g)
            if self._made_with.get(i) != flags:  # a changed flag may change the state's layout
                for p in g["params"]:
                    if p in self.state:
                        self.state[p] = _conform(self.state[p], self._init(flags, p))
                self._made_with[i] = flags
            states = [self.state[p] if p in self.state else self._init(flags, p) for p in ps]
            new_ps, new_states = _update_fn(type(self), flags)(
                scalars, [p._data for p in ps], [p.grad._data for p in ps], states)
            for p, new, s in zip(ps, new_ps, new_states):
                p._data = new
                self.state[p] = s
        return loss

    # -- state_dict ------------------------------------------------------------------

    def state_dict(self) -> dict:
        """PyTorch's layout: ``{"state": {i: {name: array}}, "param_groups": [{setting:
        value, ..., "params": [i, ...]}]}``, parameters numbered across the groups in
        order. State names are PyTorch's (``step``, ``exp_avg``, ``momentum_buffer``
        ...); a parameter without state (never stepped, or plain SGD) is absent. The
        arrays are the optimizer's own (immutable) jax arrays, not copies.

        Example::

            tg.checkpoint.save("opt.ckpt", opt.state_dict())
            opt.load_state_dict(tg.checkpoint.load("opt.ckpt"))
        """
        groups, state, n = [], {}, 0
        for g in self.param_groups:
            indices = list(range(n, n + len(g["params"])))
            for i, p in zip(indices, g["params"]):
                named = _named(self.state[p]) if p in self.state else {}
                if named:
                    state[i] = named
            n += len(indices)
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": indices})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and state saved by `state_dict` (directly, or loaded back by
        `tg.checkpoint.load`): the next steps continue exactly as the saved optimizer's
        would. Each group takes the saved settings (its parameters stay its own).

        Raises:
            ValueError: the group count, a group's parameter count, a state's names or
                shapes differ from this optimizer's (nothing is changed then).
        """
        name = type(self).__name__
        if not (isinstance(state_dict, dict) and {"state", "param_groups"} <= set(state_dict)):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups', got {_describe(state_dict)}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved_groups)} "
                             f"parameter groups, the optimizer {len(self.param_groups)}")
        groups, owner = [], {}
        for gi, (saved, ours) in enumerate(zip(saved_groups, self.param_groups)):
            indices = list(saved.get("params", ()))
            if len(indices) != len(ours["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {gi} has "
                                 f"{len(indices)} parameters in the state dict, "
                                 f"{len(ours['params'])} in the optimizer")
            missing = sorted(k for k in self.defaults if k not in saved)
            if missing:
                raise ValueError(f"{name}.load_state_dict: parameter group {gi} lacks the "
                                 f"settings {missing} (a state dict of another optimizer?)")
            group = {k: _setting(v) for k, v in saved.items() if k != "params"}
            group["params"] = list(ours["params"])
            groups.append(group)
            for i, p in zip(indices, ours["params"]):
                owner[int(i)] = (p, group)
        state = {}
        for i, named in dict(state_dict["state"]).items():
            if int(i) not in owner:
                raise ValueError(f"{name}.load_state_dict: the state dict has state for "
                                 f"parameter {i}, which none of its groups lists")
            p, group = owner[int(i)]
            fresh = self._init(self._flags_of(group), p)
            state[p] = _restore(fresh, dict(named), f"{name}.load_state_dict: parameter {i}")
        self.param_groups = groups
        self.state = state
        self._made_with = {}

    # -- the compiled update's inputs ---------------------------------------------------

    def _flags_of(self, group) -> tuple:
        return tuple(bool(group[k]) for k in self._flags)

    def _scalars(self, group) -> np.ndarray:
        """``lr`` and the float settings of ``_hyper``, in order, as one float32 vector."""
        vals = [group["lr"]]
        for k, n in self._hyper.items():
            vals += list(group[k]) if n > 1 else [group[k]]
        return np.asarray([float(v) for v in vals], np.float32)

    @classmethod
    def _unpack(cls, scalars) -> dict:
        hp, i = {}, 1
        for k, n in cls._hyper.items():
            hp[k] = tuple(scalars[i + j] for j in range(n)) if n > 1 else scalars[i]
            i += n
        return hp

    def _init(self, flags: tuple, p: Tensor):
        hp = self._unpack(np.zeros(1 + sum(self._hyper.values()), np.float32))
        return self._transform(hp, dict(zip(self._flags, flags))).init(p._data)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        raise NotImplementedError

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines + [")"])


@functools.lru_cache(maxsize=64)
def _update_fn(cls, flags: tuple):
    """One compiled update for a group: ``(scalars, params, grads, states) -> (params,
    states)``, ``scalars`` being ``[lr, *hyper-parameters]``; cached per optimizer class
    and flags."""
    named_flags = dict(zip(cls._flags, flags))

    def update(scalars, params, grads, states):
        lr, hp = scalars[0], cls._unpack(scalars)
        tx = cls._transform(hp, named_flags)
        wd = hp["weight_decay"]
        new_ps, new_states = [], []
        for p, g, s in zip(params, grads, states):
            if named_flags["maximize"]:
                g = -g
            if not cls._decoupled:
                g = (g + wd * p).astype(g.dtype)
            u, s = tx.update(g, s, p)
            decayed = p * (1 - lr * wd) if cls._decoupled else p
            new_ps.append((decayed - lr * u).astype(p.dtype))
            new_states.append(s)
        return new_ps, new_states

    return jax.jit(update)


# -- state by name ------------------------------------------------------------------------


def _named(state) -> dict:
    """``{name: array}`` of an optax state, named by path (``exp_avg``, ``0/trace``)."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(path, simple=True, separator="/"): leaf for path, leaf in leaves}


def _restore(fresh, named: dict, where: str):
    """``fresh`` (a new state) with every leaf taken from ``named``: the same names and
    shapes are required; dtypes become ``fresh``'s."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(fresh)
    names = [jax.tree_util.keystr(path, simple=True, separator="/") for path, _ in flat]
    if set(names) != set(named):
        raise ValueError(f"{where}: the state dict holds {sorted(named)}, this optimizer's "
                         f"state is {sorted(names)}")
    leaves = []
    for n, (_, ref) in zip(names, flat):
        shape = tuple(np.shape(named[n]))
        if shape != tuple(ref.shape):
            raise ValueError(f"{where}: state {n!r} has shape {list(shape)}, the parameter's "
                             f"needs {list(ref.shape)}")
        leaves.append(jnp.asarray(named[n], ref.dtype))
    return treedef.unflatten(leaves)


def _conform(state, fresh):
    """``state`` in ``fresh``'s layout (after a flag changed it): leaves of the same name
    and shape are kept (PyTorch keeps such buffers too), new ones start fresh."""
    if jax.tree.structure(state) == jax.tree.structure(fresh):
        return state
    old = _named(state)
    flat, treedef = jax.tree_util.tree_flatten_with_path(fresh)
    leaves = []
    for path, ref in flat:
        a = old.get(jax.tree_util.keystr(path, simple=True, separator="/"))
        leaves.append(a if a is not None and a.shape == ref.shape else ref)
    return treedef.unflatten(leaves)


def _setting(v):
    """A loaded setting as the optimizer keeps it (a checkpoint gives lists for tuples
    only if saved that way; numpy scalars become Python numbers)."""
    if isinstance(v, list):
        return tuple(_setting(x) for x in v)
    if isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
        return v.item()
    return v


def _describe(x) -> str:
    return f"a dict with keys {sorted(map(str, x))}" if isinstance(x, dict) else type(x).__name__


def _check(ok: bool, what: str, value) -> None:
    if not ok:
        raise ValueError(f"Invalid {what}: {value}")


class SGD(Optimizer):
    """``torch.optim.SGD``: ``p -= lr * d`` with ``g = grad + weight_decay * p`` and
    ``d = g``, or with momentum ``buf = g`` on the first step, then
    ``buf = momentum * buf + (1 - dampening) * g`` and ``d = buf`` (``nesterov``:
    ``g + momentum * buf``).

    Example::

        opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.1)
    """

    _hyper: ClassVar[dict[str, int]] = {"momentum": 1, "dampening": 1, "weight_decay": 1}
    _flags = ("maximize", "nesterov", "momentum")

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    @classmethod
    def _transform(cls, hp, flags):
        if not flags["momentum"]:
            return optax.identity()
        return sgd_momentum(hp["momentum"], hp["dampening"], flags["nesterov"])


class Adam(Optimizer):
    """``torch.optim.Adam`` (``weight_decay`` is L2, added to the gradient;
    ``amsgrad`` divides by the running maximum of the second moment, PyTorch's way).

    Example::

        opt = tg.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    """

    _hyper: ClassVar[dict[str, int]] = {"betas": 2, "eps": 1, "weight_decay": 1}
    _flags = ("maximize", "amsgrad")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        _check_adam(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize})

    @classmethod
    def _transform(cls, hp, flags):
        b1, b2 = hp["betas"]
        return scale_by_adam(b1, b2, hp["eps"], amsgrad=flags["amsgrad"])


def _check_adam(lr, betas, eps, weight_decay):
    _check(lr >= 0.0, "learning rate", lr)
    _check(eps >= 0.0, "epsilon value", eps)
    betas = tuple(betas)
    _check(len(betas) == 2, "betas (two are needed)", betas)
    _check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
    _check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
    _check(weight_decay >= 0.0, "weight_decay value", weight_decay)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay
    ``p *= 1 - lr * wd`` before the Adam step (default ``weight_decay=0.01``, as PyTorch's).

    Example::

        opt = tg.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: ``v = alpha v + (1 - alpha) g^2``, step
    ``g / (sqrt(v) + eps)`` (``centered``: the variance instead of ``v``), optional
    momentum on the step and L2 ``weight_decay``.

    Example::

        opt = tg.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
    """

    _hyper: ClassVar[dict[str, int]] = {"alpha": 1, "eps": 1, "momentum": 1, "weight_decay": 1}
    _flags = ("maximize", "centered", "momentum")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check(alpha >= 0.0, "alpha value", alpha)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    @classmethod
    def _transform(cls, hp, flags):
        momentum = hp["momentum"] if flags["momentum"] else None
        return scale_by_rmsprop(hp["alpha"], hp["eps"], momentum, centered=flags["centered"])


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
