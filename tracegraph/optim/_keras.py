"""Keras 3 optimizers (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`; public home
``tg.optimizers``): ``optimizer.apply_gradients(zip(grads, variables))`` on variables
(`tg.Variable`, or imperative tensors made with ``requires_grad=True``), as TF 2 and
Keras code calls them.

Names, defaults and arithmetic are Keras 3's (``keras/src/optimizers/*.py``): gradient
clipping (``clipnorm`` per variable, ``global_clipnorm`` over all, ``clipvalue``), then
Keras' decoupled weight decay ``v -= v * weight_decay * lr`` (any optimizer; AdamW's
default is 0.004), then the optimizer's ``update_step`` in Keras' own order of
operations (e.g. Adam's ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` and
``m * alpha / (sqrt(v) + epsilon)``, where optax puts epsilon elsewhere; SGD's momentum
holds ``-lr * g`` terms, so a changing learning rate acts as in Keras).

Each update is plain JAX, in one function over lists of variables: ``apply_gradients``
runs it as ONE ``jax.jit`` call for all variables, with the learning rate and the step
count as arguments (changing ``optimizer.learning_rate`` or a schedule's value does not
recompile). The same function is an optax ``GradientTransformation``:
``opt.transformation()`` gives it as a functional `tg.optim` optimizer (``init`` /
``update``, explicit IR inside tg.jit). Optimizer state is keyed by the identity of each
variable; variables seen for the first time get fresh slots.

The optimizer's own state (``iterations``, a float learning rate, the slots) is held in
non-trainable `tg.Variable`s, as Keras holds it: inside a `tg.function` step,
``apply_gradients`` records its arithmetic as nodes of the step's graph (one
``from_jax`` block) and updates the variables, slots and step count by ``assign``, so
they are the compiled step's state inputs and outputs.

Example::

    import tracegraph as tf
    w = tf.Variable(tf.random.normal([1]), name="weight")
    optimizer = tf.optimizers.Adam(learning_rate=0.01)
    for step in range(100):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(w * x - y))
        grads = tape.gradient(loss, [w])
        optimizer.apply_gradients(zip(grads, [w]))
    optimizer.iterations            # 100
    optimizer.learning_rate = 1e-3  # no recompilation
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..core import Tensor, at_bottom, current_trace
from ..errors import ShapeError, TracingError, user_location_long
from ..frontend.tape import no_grad
from ..frontend.variables import Variable
from ..interop import from_jax
from ._transform import GradientTransformation

# -- the arithmetic: Keras' apply after filtering, over lists, plain JAX ------------------------


def _clip_by_norm(g, clipnorm):
    # Keras' Optimizer._clip_by_norm: the two-tap where keeps a zero gradient NaN-free
    l2sum = jnp.sum(jnp.square(g), axis=None, keepdims=True)
    pred = l2sum > 0
    l2sum_safe = jnp.where(pred, l2sum, jnp.ones_like(l2sum))
    l2norm = jnp.where(pred, jnp.sqrt(l2sum_safe), l2sum)
    return (g * clipnorm) / jnp.maximum(l2norm, clipnorm)


def _clip_by_global_norm(grads, clip_norm):
    norm = jnp.sqrt(jnp.sum(jnp.stack([jnp.sum(jnp.square(g)) for g in grads])))
    scale_for_finite = clip_norm * jnp.minimum(1.0 / norm, 1.0 / clip_norm)
    scale = scale_for_finite + (norm - norm)  # NaN for an infinite or NaN norm, as Keras
    return [g * scale for g in grads]


def _clip(grads, hp):
    if hp["clipnorm"] and hp["clipnorm"] > 0:
        return [_clip_by_norm(g, hp["clipnorm"]) for g in grads]
    if hp["global_clipnorm"] and hp["global_clipnorm"] > 0:
        return _clip_by_global_norm(grads, hp["global_clipnorm"])
    if hp["clipvalue"] and hp["clipvalue"] > 0:
        v = hp["clipvalue"]
        return [jnp.clip(g, -v, v) for g in grads]
    return grads


def _apply(cls, hp, lr, count, params, grads, slots, decays):
    """One Keras ``apply`` on the variables that have gradients: unscale, clip, weight
    decay, then ``cls._step`` per variable. ``lr``: f32 scalar; ``count``: the
    iterations so far (i32 scalar). Returns (new params, new slots)."""
    if hp["loss_scale_factor"] is not None:
        grads = [g / hp["loss_scale_factor"] for g in grads]
    grads = _clip(list(grads), hp)
    new_ps, new_slots = [], []
    for p, g, s, decay in zip(params, grads, slots, decays):
        lr_p = lr.astype(p.dtype)
        if hp["weight_decay"] is not None and decay:
            p = p - p * jnp.asarray(hp["weight_decay"], p.dtype) * lr_p
        p, s = cls._step(p, g.astype(p.dtype), tuple(s), lr_p, count, hp)
        new_ps.append(p)
        new_slots.append(tuple(s))
    return new_ps, new_slots


@functools.lru_cache(maxsize=64)
def _compiled_apply(cls, settings):
    """``(lr, count, params, grads, slots, decays) -> (params, slots, count + 1)`` under one
    ``jax.jit``, per optimizer class and settings (``decays`` is static)."""
    hp = dict(settings)

    def run(lr, count, params, grads, slots, decays):
        new_ps, new_slots = _apply(cls, hp, lr, count, params, grads, slots, decays)
        return new_ps, new_slots, count + 1

    return jax.jit(run, static_argnums=(5,))


@functools.lru_cache(maxsize=64)
def _traced_apply(cls, settings, decays):
    """The same as a `tg.from_jax` function, for apply_gradients inside recorded code
    (tg.function, tg.compile, tg.eager): its arithmetic becomes nodes of that graph."""
    hp = dict(settings)

    def apply(lr, count, params, grads, slots):
        lr = jnp.asarray(lr, jnp.float32)
        return _apply(cls, hp, lr, count, params, grads, slots, decays)

    return from_jax(apply, name=f"{cls.__name__}.apply")


class KerasState(NamedTuple):
    """The functional form's state: the step count (Keras' ``iterations``) and, per
    parameter leaf, the tuple of its slot arrays (momentums, velocities ...)."""

    count: Any
    slots: Any


def keras_transformation(cls, settings, learning_rate) -> optax.GradientTransformation:
    """Optimizer class ``cls`` with ``settings`` as an optax transformation whose updates
    are ``new_param - param``; ``learning_rate``: a number or a JAX-traceable schedule of
    the step count (optax's convention)."""
    hp = dict(settings)

    def init(params):
        leaves = jax.tree_util.tree_leaves(params)
        return KerasState(jnp.zeros([], jnp.int32), [cls._init_slots(jnp.asarray(p), hp) for p in leaves])

    def update(grads, state, params=None):
        if params is None:
            raise ValueError(f"{cls.__name__}: update(grads, state, params) needs params")
        leaves, treedef = jax.tree_util.tree_flatten(params)
        g_leaves = treedef.flatten_up_to(grads)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        lr = jnp.asarray(lr, jnp.float32)
        new, slots = _apply(cls, hp, lr, state.count, leaves, g_leaves, state.slots, (True,) * len(leaves))
        updates = [n - p for n, p in zip(new, leaves)]
        return treedef.unflatten(updates), KerasState(state.count + 1, slots)

    return optax.GradientTransformation(init, update)


# -- the stateful optimizers ------------------------------------------------------------------

_BASE_SETTINGS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor")


# Keras 3 gives each optimizer its default name explicitly
_KERAS_NAMES = {"SGD": "SGD", "Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop", "Adagrad": "adagrad"}


def _snake(name: str) -> str:
    if name in _KERAS_NAMES:
        return _KERAS_NAMES[name]
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _takes_step(fn) -> bool:
    """Whether a learning-rate callable takes the step (Keras' LearningRateSchedule,
    optax schedules) or nothing (Keras' plain callables)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(0)
        return True
    except TypeError:
        return False


class Optimizer:
    """Base of the Keras 3 optimizers: ``apply_gradients``, ``apply``, ``build``,
    ``iterations``, ``learning_rate`` (a float or a schedule ``lr(step)``, settable),
    ``variables``, ``get_config``/``from_config``, ``exclude_from_weight_decay``,
    ``transformation()``. Subclasses give ``_hparams`` (their own settings),
    ``_slot_names``, ``_init_slots`` and ``_step`` (Keras' ``update_step``, in JAX)."""

    _hparams: tuple = ()

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        cls = type(self).__name__
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=3)
        if kwargs:
            raise ValueError(f"{cls}: argument(s) not recognized: {kwargs}")
        if use_ema:
            raise NotImplementedError(f"{cls}(use_ema=True) is not supported")
        if gradient_accumulation_steps:
            raise NotImplementedError(f"{cls}(gradient_accumulation_steps=...) is not supported")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                f"{cls}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        self.name = name if name is not None else _snake(cls)
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.loss_scale_factor = None if loss_scale_factor is None else float(loss_scale_factor)
        self.use_ema, self.ema_momentum = False, ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.gradient_accumulation_steps = None
        # the state, in Variables (as Keras): a tg.function step reads and writes them
        self._iterations_var = Variable(np.int32(0), trainable=False, name="iteration")
        # Python mirrors of the two scalars, valid while the Variables hold these arrays
        # (reading a device array back each step would wait for the device)
        self._count, self._count_data = 0, self._iterations_var._data
        self._lr_var = self._lr_data = None
        self.learning_rate = learning_rate
        self._slots: dict[int, list] = {}  # id(variable) -> [variable, tuple of slot Variables]
        self._trainable_variables: list | None = None
        self._exclude_ids: set = set()
        self._exclude_pattern = None

    # -- public state -------------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """The number of ``apply`` calls so far (the step a schedule reads)."""
        data = self._iterations_var._data
        if data is not self._count_data:  # assigned since (a tg.function step, the setter)
            self._count, self._count_data = int(np.asarray(data)), data
        return self._count

    @iterations.setter
    def iterations(self, n):
        self._iterations_var.assign(np.int32(int(n)))

    @property
    def learning_rate(self) -> float:
        """The current learning rate: the float, or the schedule at ``iterations``.
        Set a float or a callable (``lr(step)``, or Keras' ``lr()``); no recompilation."""
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value) and not isinstance(value, Tensor):
            self._learning_rate, self._lr_takes_step = value, _takes_step(value)
            return
        try:
            lr = np.float32(float(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"{type(self).__name__}: learning_rate must be a float or a callable schedule, "
                f"got {value!r}"
            ) from None
        self._learning_rate, self._lr_takes_step = None, False
        self._lr_float = float(value)  # as given, while the Variable holds its float32
        if self._lr_var is None:
            self._lr_var = Variable(lr, trainable=False, name="learning_rate")
        else:
            self._lr_var.assign(lr)
        self._lr_data = self._lr_var._data

    def _current_lr(self) -> float:
        lr = self._learning_rate
        if lr is None:
            if self._lr_var._data is self._lr_data:
                return self._lr_float
            return float(np.asarray(self._lr_var._data))  # assigned inside a recorded step
        return float(lr(self.iterations) if self._lr_takes_step else lr())

    @property
    def variables(self) -> list:
        """The optimizer's own state, as non-trainable `tg.Variable`s: ``iterations``,
        the learning rate (when a float), then each variable's slots in the order the
        variables were first seen."""
        out = [self._iterations_var]
        if self._learning_rate is None:
            out.append(self._lr_var)
        for _, slots in self._slots.values():
            out.extend(slots)
        return out

    def get_config(self) -> dict:
        """The settings (Keras' keys): ``type(opt).from_config(opt.get_config())`` makes
        an equal optimizer without state."""
        config = {
            "name": self.name,
            "learning_rate": self._current_lr() if self._learning_rate is None else self._learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        config.update({k: getattr(self, k) for k in self._hparams})
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Leave these variables out of weight decay: ``var_list`` (variables) or
        ``var_names`` (substrings of a variable's ``name``)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(map(re.escape, set(var_names)))) if var_names else None

    def transformation(self) -> GradientTransformation:
        """This optimizer's update as a functional optimizer (an optax transformation in
        tg.optim's wrapper), with its own state::

            tx = tg.optimizers.Adam(1e-3).transformation()
            state = tx.init(params)
            updates, state = tx.update(grads, state, params)
            params = tg.optim.apply_updates(params, updates)

        The learning rate is this optimizer's: a float, or a schedule of the step count
        (JAX-traceable). Weight-decay exclusions do not carry over."""
        lr = self._learning_rate
        if lr is None:
            lr = self._current_lr()
        elif not self._lr_takes_step:
            lr = float(lr())
        return GradientTransformation(keras_transformation(type(self), self._settings(), lr), self.name)

    # -- applying gradients -----------------------------------------------------------------
    def apply_gradients(self, grads_and_vars) -> int:
        """Apply ``(gradient, variable)`` pairs (``zip(grads, variables)``); pairs whose
        gradient is None are skipped, as in Keras. Returns ``iterations``."""
        pairs = list(grads_and_vars)
        cls = type(self).__name__
        if not pairs:
            raise TracingError(
                f"{cls}.apply_gradients got no (gradient, variable) pairs (at "
                f"{user_location_long(1)}): is the zip(...) already consumed?"
            )
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TracingError(
                    f"{cls}.apply_gradients: item {i} is not a (gradient, variable) pair "
                    f"(at {user_location_long(1)}); pass zip(gradients, variables)"
                )
        grads, variables = zip(*pairs)
        self._apply(grads, variables, "apply_gradients")
        return self.iterations

    def apply(self, grads, trainable_variables=None) -> None:
        """Apply ``grads`` to ``trainable_variables`` (one to one), or to the variables
        the optimizer was built with when not given."""
        self._apply(grads, trainable_variables, "apply")

    def build(self, var_list) -> None:
        """Create the slots of ``var_list`` now (apply does it on first sight)."""
        var_list = list(var_list)
        for i, v in enumerate(var_list):
            self._check_variable(v, i, "build")
        if self._trainable_variables is None:
            self._trainable_variables = var_list
        hp = self._hp()
        for v in var_list:
            self._slots_of(v, hp)

    def _apply(self, grads, variables, method) -> None:
        cls = type(self).__name__
        grads = list(grads)
        if variables is None:
            if self._trainable_variables is None:
                raise TracingError(
                    f"{cls}.{method}: pass the variables (the optimizer is not built yet) "
                    f"(at {user_location_long(2)})"
                )
            variables = self._trainable_variables
        variables = list(variables)
        if len(grads) != len(variables):
            raise ShapeError(
                f"{cls}.{method}: {len(grads)} gradients for {len(variables)} variables (at "
                f"{user_location_long(2)})"
            )
        if not grads:
            return
        for i, v in enumerate(variables):
            self._check_variable(v, i, method)
        if self._trainable_variables is None:
            self._trainable_variables = variables
        keep = [i for i, g in enumerate(grads) if g is not None]
        if not keep:
            raise TracingError(
                f"{cls}.{method}: no gradients provided for any variable (every gradient is "
                f"None) (at {user_location_long(2)}): does the loss depend on the variables?"
            )
        if len(keep) < len(grads):
            missing = [_name_of(variables[i], i) for i in range(len(grads)) if grads[i] is None]
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss.", stacklevel=4)
        seen = set()
        for i in keep:
            if id(variables[i]) in seen:
                raise TracingError(
                    f"{cls}.{method}: variable {i} appears twice (at {user_location_long(2)})"
                )
            seen.add(id(variables[i]))
        vs = [variables[i] for i in keep]
        gs = [self._gradient(grads[i], variables[i], i, method) for i in keep]
        hp = self._hp()
        slots = [self._slots_of(v, hp) for v in vs]
        decays = tuple(self._use_weight_decay(v) for v in vs)
        if at_bottom():
            self._apply_now(vs, gs, slots, decays)
        else:
            self._apply_recorded(vs, gs, slots, decays)

    def _apply_now(self, vs, gs, slots, decays) -> None:
        """Outside traced code: one jax.jit call on the arrays, then write them back."""
        count = self.iterations
        if self._learning_rate is None:
            lr = self._lr_var._data  # already a device f32 scalar
        else:
            lr = jnp.asarray(self._current_lr(), jnp.float32)
        run = _compiled_apply(type(self), self._settings())
        new_ps, new_slots, new_count = run(
            lr, self._iterations_var._data, [v._data for v in vs], [_array(g) for g in gs],
            [tuple(s._data for s in ss) for ss in slots], decays,
        )
        with no_grad():
            for v, p, ss, arrays in zip(vs, new_ps, slots, new_slots):
                _write(v, p)
                for s, a in zip(ss, arrays):
                    s._data = a
        self._iterations_var._data = self._count_data = new_count
        self._count = count + 1

    def _apply_recorded(self, vs, gs, slots, decays) -> None:
        """Inside recorded code (tg.function, tg.compile, tg.eager): the arithmetic as a
        from_jax block of that trace, the variables, slots and step count updated by
        assignment (state outputs of a compiled step)."""
        lr = self._learning_rate
        if lr is None:
            lr = self._lr_var
        else:  # a schedule of the step: of the iterations Variable, so it is not baked in
            lr = lr(self._iterations_var) if self._lr_takes_step else lr()
        run = _traced_apply(type(self), self._settings(), decays)
        new_ps, new_slots = run(lr, self._iterations_var, vs, gs, [tuple(ss) for ss in slots])
        for v, p, ss, values in zip(vs, new_ps, slots, new_slots):
            _write(v, p)
            for s, value in zip(ss, values):
                s.assign(value)
        self._iterations_var.assign(self._iterations_var + 1)

    def _check_variable(self, v, i, method) -> None:
        cls = type(self).__name__
        if not (isinstance(v, Tensor) and v._trace.free):
            what = "a traced tensor" if isinstance(v, Tensor) else f"a {type(v).__name__}"
            raise TracingError(
                f"{cls}.{method}: variable {i} is {what}, not a variable (at "
                f"{user_location_long(2)}): pass tg.Variable(...)s or imperative tensors "
                "(tg.tensor(..., requires_grad=True), module parameters); inside tg.jit, "
                "which cannot update them, use tg.function, or the functional form "
                "opt.transformation()"
            )
        if not hasattr(v, "assign") and not v.is_leaf:
            raise TracingError(
                f"{cls}.{method}: variable {i} ({v.type}) was computed by an op (it has "
                f"history), so updating it would change nothing upstream (at "
                f"{user_location_long(2)}): pass the leaf tensors themselves"
            )

    def _gradient(self, g, v, i, method):
        """Gradient ``i``: a tensor of the current trace, an imperative tensor or an
        array, of its variable's shape."""
        if not isinstance(g, Tensor):
            g = g if hasattr(g, "shape") and hasattr(g, "dtype") else np.asarray(g)
        elif at_bottom() and not g._trace.free:
            raise TracingError(
                f"{type(self).__name__}.{method}: gradient {i} is a traced tensor ({g.type}) "
                f"used outside its trace (at {user_location_long(2)})"
            )
        if tuple(g.shape) != tuple(v.shape):
            raise ShapeError(
                f"{type(self).__name__}.{method}: gradient {i} has shape {list(g.shape)} but "
                f"its variable {_name_of(v, i)!r} is {v.type} (at {user_location_long(2)})"
            )
        return g

    def _slots_of(self, v, hp) -> tuple:
        entry = self._slots.get(id(v))
        if entry is None:
            arrays = self._init_slots(jnp.asarray(v._data), hp)
            slots = tuple(
                Variable(a, trainable=False, name=f"{n}_{_name_of(v, len(self._slots))}")
                for n, a in zip(self._slot_names(hp), arrays)
            )
            entry = self._slots[id(v)] = [v, slots]
        return entry[1]

    def _use_weight_decay(self, v) -> bool:
        if id(v) in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None and self._exclude_pattern.search(_name_of(v, 0)))

    def _hp(self) -> dict:
        return {k: getattr(self, k) for k in self._hparams + _BASE_SETTINGS}

    def _settings(self) -> tuple:
        return tuple(sorted(self._hp().items()))

    # -- what subclasses give -------------------------------------------------------------
    @classmethod
    def _slot_names(cls, hp) -> tuple:
        return ()

    @classmethod
    def _init_slots(cls, p, hp) -> tuple:
        return tuple(jnp.zeros_like(p) for _ in cls._slot_names(hp))

    @classmethod
    def _step(cls, p, g, slots, lr, count, hp):
        raise NotImplementedError

    def __repr__(self):
        lr = self._learning_rate
        lr = self._current_lr() if lr is None else getattr(lr, "__name__", type(lr).__name__)
        return f"<tg.optimizers.{type(self).__name__} name={self.name!r} learning_rate={lr} iterations={self.iterations}>"


def _array(g):
    return g._data if isinstance(g, Tensor) else g


def _write(v, value) -> None:
    """Give variable ``v`` its updated value: ``assign`` for a `tg.Variable`; for an
    imperative leaf tensor, its array outside traced code, or an assignment of the trace's
    state inside it (a compiled step's state output)."""
    if hasattr(v, "assign"):
        v.assign(value)
    elif at_bottom():
        v._data = value
    else:
        current_trace().assign_state(v, value)


class FromTransform:
    """Any functional optimizer (a `tg.optim` / optax transformation, learning rate and
    schedule included) with TensorFlow's interface: ``apply_gradients(zip(grads,
    variables))`` on `tg.Variable`s (or imperative tensors). The TF 2 spelling of
    `tg.optim.FromTransform` (PyTorch's ``step()``), for a step written with a
    `GradientTape` around a model whose optimizer is an optax chain.

    The transformation's state (its count, moments ...) is held in non-trainable
    `tg.Variable`s, one per state leaf, made on the first ``apply_gradients`` from the
    variables it was given: inside a `tg.function` step, the update is recorded as one
    ``from_jax`` block of the step's graph and the variables and state are assigned (the
    compiled step's state inputs and outputs); outside, it is one ``jax.jit`` call. The
    transformation sees all variables as one list, so ``clip_by_global_norm`` couples
    them; a variable whose gradient is None gets a zero gradient (it still moves where
    the transformation has momentum or weight decay, as optax would move it). Every call
    must pass the same variables, in the same order.

    Example::

        opt = tg.optimizers.FromTransform(
            tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(1e-3)))

        @tg.function
        def train_step(x, y):
            with tg.GradientTape() as tape:
                loss = loss_fn(model(x), y)
            grads = tape.gradient(loss, variables)
            opt.apply_gradients(zip(grads, variables))
            return loss
    """

    def __init__(self, transformation, name: str = "from_transform"):
        self.tx = getattr(transformation, "tx", transformation)
        if not (callable(getattr(self.tx, "init", None)) and callable(getattr(self.tx, "update", None))):
            raise TypeError(
                f"FromTransform: expected a tg.optim / optax transformation (init, update), "
                f"got {type(transformation).__name__}"
            )
        self.name = name
        self._iterations_var = Variable(np.int32(0), trainable=False, name="iteration")
        self._variables: list | None = None
        self._state: list = []  # the transformation's state leaves, as Variables
        self._treedef = None
        tx = self.tx

        def update(params, grads, state_leaves):
            state = jax.tree_util.tree_unflatten(self._treedef, state_leaves)
            updates, state = tx.update(list(grads), state, list(params))
            new = [(p + u).astype(p.dtype) for p, u in zip(params, updates)]
            return new, jax.tree_util.tree_leaves(state)

        self._jitted = jax.jit(update)
        self._recorded = from_jax(update, name=f"{name}.apply")

    @property
    def iterations(self) -> int:
        """The number of ``apply_gradients`` calls so far."""
        return int(np.asarray(self._iterations_var._data))

    @property
    def variables(self) -> list:
        """``iterations``, then the transformation's state leaves, as `tg.Variable`s."""
        return [self._iterations_var, *self._state]

    def build(self, var_list) -> None:
        """Create the transformation's state for ``var_list`` (the first
        ``apply_gradients`` does it otherwise)."""
        var_list = list(var_list)
        for i, v in enumerate(var_list):
            Optimizer._check_variable(self, v, i, "build")
        state = self.tx.init([jnp.asarray(v._data) for v in var_list])
        leaves, self._treedef = jax.tree_util.tree_flatten(state)
        self._state = [Variable(a, trainable=False, name=f"{self.name}/state_{i}")
                       for i, a in enumerate(leaves)]
        self._variables = var_list

    def apply_gradients(self, grads_and_vars) -> int:
        """Apply ``(gradient, variable)`` pairs (``zip(grads, variables)``). Returns
        ``iterations``."""
        pairs = list(grads_and_vars)
        if not pairs or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise TracingError(
                f"FromTransform.apply_gradients: pass zip(gradients, variables) (non-empty "
                f"(gradient, variable) pairs) (at {user_location_long(1)})"
            )
        grads, variables = (list(t) for t in zip(*pairs))
        if self._variables is None:
            self.build(variables)
        elif [id(v) for v in variables] != [id(v) for v in self._variables]:
            raise TracingError(
                f"FromTransform.apply_gradients: {len(variables)} variables that are not the "
                f"{len(self._variables)} of the first call, in its order (at "
                f"{user_location_long(1)}): a transformation's state belongs to one list"
            )
        if all(g is None for g in grads):
            raise TracingError(
                f"FromTransform.apply_gradients: every gradient is None (at "
                f"{user_location_long(1)}): does the loss depend on the variables?"
            )
        gs = [jnp.zeros(v.shape, v.dtype) if g is None
              else Optimizer._gradient(self, g, v, i, "apply_gradients")
              for i, (g, v) in enumerate(zip(grads, variables))]
        if at_bottom():
            new, state = self._jitted([v._data for v in variables], [_array(g) for g in gs],
                                      [s._data for s in self._state])
            with no_grad():
                for v, a in zip(variables, new):
                    _write(v, a)
                for s, a in zip(self._state, state):
                    s.assign(a)
                self._iterations_var.assign(self._iterations_var._data + 1)
            return self.iterations
        new, state = self._recorded(variables, gs, self._state)
        for v, value in zip(variables, new):
            _write(v, value)
        for s, value in zip(self._state, state):
            s.assign(value)
        self._iterations_var.assign(self._iterations_var + 1)
        return None

    def __repr__(self):
        return f"<tg.optimizers.FromTransform name={self.name!r} iterations={self.iterations}>"


def _name_of(v, i) -> str:
    name = getattr(v, "name", None)
    if not isinstance(name, str):
        value = getattr(v, "_value", None)
        name = getattr(value, "name", None)
    return name if isinstance(name, str) and name else f"variable_{i}"


class SGD(Optimizer):
    """Keras 3's SGD: ``v -= lr * g``; with ``momentum``, ``m = momentum * m - lr * g``
    and ``v += m`` (``nesterov``: ``v += momentum * m - lr * g``).

    Example: ``opt = tg.optimizers.SGD(0.01, momentum=0.9, nesterov=True)``.
    """

    _hparams = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"SGD: `momentum` must be a float between [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    @classmethod
    def _slot_names(cls, hp):
        return ("momentum",) if hp["momentum"] != 0 else ()

    @classmethod
    def _step(cls, p, g, slots, lr, count, hp):
        if hp["momentum"] == 0:
            return p - g * lr, ()
        (m,) = slots
        momentum = jnp.asarray(hp["momentum"], p.dtype)
        m = m * momentum - g * lr
        if hp["nesterov"]:
            return p + (m * momentum - g * lr), (m,)
        return p + m, (m,)


class Adam(Optimizer):
    """Keras 3's Adam: ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``, ``var -= m alpha / (sqrt(v) +
    epsilon)`` (``amsgrad``: the running maximum of ``v`` in the denominator).

    Example: ``opt = tg.optimizers.Adam(learning_rate=1e-3)``.
    """

    _hparams = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    @classmethod
    def _slot_names(cls, hp):
        return ("momentum", "velocity") + (("velocity_hat",) if hp["amsgrad"] else ())

    @classmethod
    def _step(cls, p, g, slots, lr, count, hp):
        b1, b2 = hp["beta_1"], hp["beta_2"]
        t = (count + 1).astype(p.dtype)
        b1_power = jnp.power(jnp.asarray(b1, p.dtype), t)
        b2_power = jnp.power(jnp.asarray(b2, p.dtype), t)
        m, v = slots[0], slots[1]
        alpha = lr * jnp.sqrt(1 - b2_power) / (1 - b1_power)
        m = m + (g - m) * (1 - b1)
        v = v + (jnp.square(g) - v) * (1 - b2)
        new = (m, v)
        if hp["amsgrad"]:
            v_hat = jnp.maximum(slots[2], v)
            new, v = (m, v, v_hat), v_hat
        return p - (m * alpha) / (jnp.sqrt(v) + hp["epsilon"]), new


class AdamW(Adam):
    """Keras 3's AdamW: `Adam` with weight decay ``v -= v * weight_decay * lr`` before
    each step (default 0.004).

    Example: ``opt = tg.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)``.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm,
                         clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps,
                         name, **kwargs)


class RMSprop(Optimizer):
    """Keras 3's RMSprop: ``velocity = rho velocity + (1 - rho) g^2``; ``centered``
    subtracts the square of the running mean gradient; the increment ``lr g /
    sqrt(denominator + epsilon)`` goes through ``momentum`` when it is > 0.

    Example: ``opt = tg.optimizers.RMSprop(learning_rate=1e-3, rho=0.9)``.
    """

    _hparams = ("rho", "momentum", "epsilon", "centered")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    @classmethod
    def _slot_names(cls, hp):
        return (
            ("velocity",)
            + (("momentum",) if hp["momentum"] > 0 else ())
            + (("average_gradient",) if hp["centered"] else ())
        )

    @classmethod
    def _step(cls, p, g, slots, lr, count, hp):
        rho, eps = hp["rho"], hp["epsilon"]
        slots = list(slots)
        velocity = rho * slots[0] + (1 - rho) * jnp.square(g)
        new = [velocity]
        if hp["centered"]:
            average_grad = rho * slots[-1] + (1 - rho) * g
            denominator = velocity - jnp.square(average_grad) + eps
        else:
            denominator = velocity + eps
        increment = (lr * g) / jnp.sqrt(denominator)
        if hp["momentum"] > 0:
            momentum = hp["momentum"] * slots[1] + increment
            new.append(momentum)
            p = p - momentum
        else:
            p = p - increment
        if hp["centered"]:
            new.append(average_grad)
        return p, tuple(new)


class Adagrad(Optimizer):
    """Keras 3's Adagrad: ``accumulator += g^2`` (starting at
    ``initial_accumulator_value``), ``var -= lr g / sqrt(accumulator + epsilon)``.

    Example: ``opt = tg.optimizers.Adagrad(learning_rate=0.01)``.
    """

    _hparams = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    @classmethod
    def _slot_names(cls, hp):
        return ("accumulator",)

    @classmethod
    def _init_slots(cls, p, hp):
        return (jnp.full_like(p, hp["initial_accumulator_value"]),)

    @classmethod
    def _step(cls, p, g, slots, lr, count, hp):
        accumulator = slots[0] + jnp.square(g)
        return p - (lr * g) / jnp.sqrt(accumulator + hp["epsilon"]), (accumulator,)


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "FromTransform", "KerasState", "Optimizer", "RMSprop", "keras_transformation"]
