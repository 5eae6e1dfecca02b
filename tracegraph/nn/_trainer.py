"""Keras' ``compile`` / ``fit`` / ``evaluate`` / ``predict`` for any `tg.nn.Module`, on the
one training loop of `tracegraph.train` (`Loop`, `make_step`, `compile_step`).

``model.compile(...)`` makes a `Trainer` and keeps it on the model (a bookkeeping entry
of the module, not a field: it is not a pytree leaf and copies made by ``jax.tree_util``
do not carry it). The trainer holds what Keras' compiled model holds: the optimizer (as a
functional optax transformation, whatever form it was given in), the loss and metrics,
the execution mode, the optimizer state and step count (kept across ``fit`` calls), and a
random generator for shuffling and dropout keys (drawn from the global key stream,
`tg.manual_seed`, when compiling).

NOTE (where the trained weights go): the step trains a functional copy of the model whose
leaves are plain arrays (the parameter tensors' data for a module built PyTorch style),
so the whole step — forward, IR-level backward, optimizer update — is one graph compiled
once (in jit mode; the last, smaller batch is padded to the batch size and masked, so it
needs no second compilation). At the end of every epoch the new arrays are written back
into the model itself (``_module.assign_leaves``, as ``Module.set_weights``): a parameter
tensor keeps its identity and gets the new array as its data (an optimizer or a closure
holding it sees the new values), and an array leaf of a module built with ``key=`` is
swapped in its parent's field, so the model object, and every sub-module, stays the same
object and every pytree tool sees the trained weights. We chose writing back over
keeping the weights beside the model (and having ``model(...)`` use them) because a
Module is a pytree: `tg.jit`, `tree_map` and `tg.checkpoint` read its leaves directly,
and they would all have kept seeing the untrained ones. It is the same in-place update
``load_state_dict`` already makes.

The optimizer (``_compiled_optimizer.py``: the learning rate is an input of the step)
and the data forms (``_fit_data.py``: arrays or batches, padded and masked) have files
of their own.
"""

from __future__ import annotations

import inspect
import math
import numbers
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import cache
from .. import losses as losses_lib
from .. import metrics as metrics_lib
from ..autodiff import value_and_grad
from ..callbacks import Callback, CallbackList
from ..core import Tensor
from ..frontend import fn_math, fn_reduce
from ..frontend.fn_random import next_key
from ..frontend.fn_shape import reshape, shape_of, stack
from ..optim import apply_updates
from ..train import (
    EXAMPLES,
    Loop,
    PackedLogs,
    TrainingError,
    TrainState,
    compile_step,
    evaluate_loop,
    host_scalars,
)
from ._compiled_optimizer import resolve_optimizer, set_learning_rate
from ._fit_data import ArrayData, as_data, validation_data_of
from ._module._state import collecting_state

KERAS_MODES = ("jit", "interpret", "eager", "compile")
NOT_PROBABILITIES = "_not_probabilities"  # a train-step metric: see `not_probabilities`


class ProbabilityWarning(UserWarning):
    """The model's outputs do not look like the probabilities its loss expects."""


# -- the loss and the metrics -----------------------------------------------------------------


_PROBABILITY_LOSSES = {
    losses_lib.SparseCategoricalCrossentropy: "categorical",
    losses_lib.CategoricalCrossentropy: "categorical",
    losses_lib.BinaryCrossentropy: "binary",
}


def expects_probabilities(loss) -> str | None:
    """``"categorical"`` / ``"binary"`` when ``loss`` is a Keras cross-entropy that
    expects probabilities (``from_logits=False``), ``"auto"`` for ``"crossentropy"``."""
    if isinstance(loss, str):
        if loss.lower() in ("crossentropy", "ce"):
            return "auto"
        cls = losses_lib._BY_NAME.get(loss)
        return _PROBABILITY_LOSSES.get(cls)
    if isinstance(loss, losses_lib.Loss) and not getattr(loss, "from_logits", True):
        return _PROBABILITY_LOSSES.get(type(loss))
    return None


def not_probabilities(y_pred, kind: str):
    """1.0 when ``y_pred`` cannot be what a probability-expecting loss of ``kind`` wants
    (values outside [0, 1]; for the categorical ones, rows that do not sum to 1), else
    0.0: fit warns once, since Keras would quietly clip logits into nonsense."""
    if kind == "auto":
        kind = "binary" if shape_of(y_pred)[-1:] == (1,) else "categorical"
    bad = fn_math.logical_or(fn_math.less(y_pred, 0.0), fn_math.greater(y_pred, 1.0))
    flag = fn_reduce.max(fn_math.astype(bad, np.float32))
    if kind == "categorical":
        off = fn_reduce.max(fn_math.abs(fn_math.subtract(fn_reduce.sum(y_pred, axis=-1), 1.0)))
        flag = fn_math.maximum(flag, fn_math.astype(fn_math.greater(off, 1e-3), np.float32))
    return flag


def resolve_loss(loss):
    """``(y_true, y_pred) -> per-sample values`` for any form ``compile`` takes.
    PyTorch-style `tg.nn` loss modules take ``(input, target)`` and reduce themselves:
    they are called as ``loss(y_pred, y_true)`` with ``reduction="none"``."""
    if loss is None:
        raise TrainingError("compile needs a loss: a name ('sparse_categorical_crossentropy', "
                            "'mse' ...), a tg.losses object, a tg.nn loss module or a "
                            "function loss(y_true, y_pred)")
    if getattr(type(loss), "_tg_input_target", False):  # tg.nn.CrossEntropyLoss ...
        per_sample = loss.replace(reduction="none") if hasattr(loss, "reduction") else loss
        return lambda y_true, y_pred: per_sample(y_pred, y_true)
    if isinstance(loss, str):
        if loss.lower() in ("crossentropy", "ce"):
            return lambda y_true, y_pred: losses_lib.get(loss, y_true, y_pred).call(y_true, y_pred)
        return losses_lib.get(loss).call
    if isinstance(loss, losses_lib.Loss):
        return loss.call
    if callable(loss):
        return losses_lib.LossFunctionWrapper(loss).call
    raise TrainingError(f"compile: loss must be a name, a tg.losses object, a tg.nn loss module "
                        f"or a function (y_true, y_pred), got {type(loss).__name__}")


def resolve_metrics(metrics) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, (str, dict)) or callable(metrics):
        metrics = [metrics]
    metrics = list(metrics)
    for m in metrics:
        if isinstance(m, str) and m.lower() not in ("accuracy", "acc"):
            metrics_lib.get(m)  # unknown names fail at compile, not in the first step
        elif not (isinstance(m, str) or callable(m)):
            raise TrainingError(f"compile: a metric must be a name or a function "
                                f"(y_true, y_pred), got {type(m).__name__}")
    return metrics


def _metric_name(m) -> str:
    if isinstance(m, str):
        return m
    if isinstance(m, losses_lib.Loss):
        return m.name
    return getattr(m, "__name__", type(m).__name__)


def _masked_mean(values, mask):
    """The mean of per-sample ``values`` (leading axis: the batch) over the examples that
    ``mask`` (f32[batch], 0 for padding) keeps; a scalar is returned as it is."""
    shape = shape_of(values)
    if not shape or shape[0] != shape_of(mask)[0]:
        return fn_reduce.mean(values) if shape else values
    values = fn_math.astype(values, np.float32) if np.dtype(values.dtype) != np.float32 else values
    per_example = math.prod(shape[1:])
    w = reshape(mask, (shape[0],) + (1,) * (len(shape) - 1)) if len(shape) > 1 else mask
    total = fn_reduce.sum(fn_math.multiply(values, w))
    return fn_math.divide(total, fn_math.multiply(fn_reduce.sum(mask), float(per_example)))


# -- calling the model ------------------------------------------------------------------------


def call_keywords(model) -> frozenset:
    """Which of ``key``, ``train``, ``training`` the model's call names as parameters:
    its class's own ``__call__`` if one was written (Module marks those), else
    ``forward``."""
    cls = type(model)
    fn = cls.forward
    for base in cls.__mro__:
        call = base.__dict__.get("__call__")
        if call is not None:
            if getattr(call, "_tg_scoped", False):
                fn = call
            break
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(n for n in ("key", "train", "training") if n in params)


def _call(model, x, keywords, training: bool, key):
    kwargs = {}
    if "key" in keywords and key is not None:
        kwargs["key"] = key
    if "train" in keywords:
        kwargs["train"] = training
    elif "training" in keywords:
        kwargs["training"] = training
    return model(x, **kwargs)


def arrays_of(model):
    """A copy of ``model`` (new module objects) whose leaves are arrays: a parameter
    tensor's data instead of the tensor."""
    return jax.tree_util.tree_map(
        lambda v: v._data if isinstance(v, Tensor) and v._trace.free else v, model,
        is_leaf=lambda v: isinstance(v, Tensor))


def in_mode(model, training: bool):
    """A copy of ``model`` (an `arrays_of` copy already is one) with every ``training``
    flag set: Keras trains in training mode and evaluates and predicts in inference mode
    whatever mode the model is in."""
    copy = jax.tree_util.tree_map(lambda v: v, model)
    return copy.train(training) if hasattr(copy, "train") else copy


# -- the trainer ------------------------------------------------------------------------------


def _verbosity(verbose, what: str) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise TrainingError(f"{what}: verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _positive_int(value, what: str, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise TrainingError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def make_state_step(loss, optimizer, trainable, *, has_aux: bool = False):
    """The training step ``(TrainState, batch) -> (TrainState, metrics)`` of
    ``loss(model, batch)`` for a model with frozen leaves and state: ``trainable`` (one
    bool per leaf, `trainable_mask`) says which leaves are differentiated and updated by
    ``optimizer`` (its state covers those only, as a list); the others are state, and
    take the values the forward pass gave them (`update_state`, collected here), or stay.

    NOTE: the state updates leave the differentiated function as auxiliary outputs, so
    the moving statistics of a batch norm or a dropout layer's next key are ordinary
    outputs of the step's one graph, computed in the same forward pass as the loss."""
    def step(state, batch):
        leaves, treedef = jax.tree_util.tree_flatten(state.model)
        train = [x for x, m in zip(leaves, trainable) if m]

        def of(train, batch):
            it = iter(train)
            full = [next(it) if m else x for x, m in zip(leaves, trainable)]
            with collecting_state() as updates:
                out = loss(treedef.unflatten(full), batch)
            value, aux = out if has_aux else (out, {})
            new_state = [updates.get(id(x), x) for x, m in zip(full, trainable) if not m]
            return value, (aux, new_state)

        (value, (aux, new_state)), grads = value_and_grad(of, has_aux=True)(train, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, train)
        train = apply_updates(train, updates)
        trained, kept = iter(train), iter(new_state)
        model = treedef.unflatten([next(trained) if m else next(kept) for m in trainable])
        return TrainState(model, opt_state, state.step + 1), {"loss": value, **dict(aux)}

    return step


def trainable_leaves(model, trainable):
    """The leaves of ``model`` that train (the optimizer's params)."""
    return [x for x, m in zip(jax.tree_util.tree_leaves(model), trainable) if m]


def build_for(model, sample) -> None:
    """Build a model whose layers make their weights on the first call (Keras' lazy
    ``build``) before a step is traced: ``sample()`` gives a few examples of ``x``."""
    needs = getattr(type(model), "_tg_needs_build", None)
    if needs is not None and needs(model):
        model._tg_build_for(sample())


def _sample_of(data):
    """A function giving two examples of ``x`` from fit/evaluate/predict data."""
    if isinstance(data, ArrayData):
        return lambda: jax.tree_util.tree_map(lambda a: a[:2], data.x)
    return lambda: next(iter(data.epoch()))["x"]


class Steps:
    """The compiled functions of one training configuration: the train step
    ``(TrainState, batch) -> (TrainState, logs)``, the evaluation step and the forward
    pass for predict (each compiled on first use, in ``mode``). Shared by every model
    compiled with the same configuration (see `steps_for`), so compiling an identical
    model again, or the same one twice, reuses what was traced and compiled.

    Each step is compiled once per model structure (tree definition): models whose
    structures differ (two Keras models differ at least by their layers' names) get
    steps of their own instead of retracing one step in turn, and only the last
    `_STRUCTURES_KEPT` structures keep theirs, so a sweep over many models does not keep
    every model's executables alive."""

    def __init__(self, transformation, loss_values, metrics, keywords, mode, probabilities=None):
        self.transformation = transformation
        self.loss_values = loss_values
        self.probabilities = probabilities
        self.metrics = metrics
        self.keywords = keywords
        self.mode = mode
        self.names = ["loss", *(_metric_name(m) for m in metrics)]  # the logs, in order
        self._train = {}  # (trainable mask, structure) -> train step, oldest first
        self._eval = {}  # structure -> evaluation step, oldest first
        self._predict = {}  # structure -> forward pass, oldest first

    def _metric_values(self, y, y_pred, mask) -> dict:
        out = {}
        for m in self.metrics:
            name, fn = metrics_lib.get(m, y, y_pred)
            out[name] = _masked_mean(fn(y, y_pred), mask)
        return out

    def _packed(self, logs: dict, names: list):
        """The logs as one f32 vector, in the order of ``names`` (read back in one
        transfer: `PackedLogs`)."""
        return stack([fn_math.astype(logs[k], np.float32) for k in names])

    def train(self, trainable: tuple, state):
        """The train step for ``trainable`` and the structure of ``state`` (a
        `TrainState`)."""
        return _kept(self._train, (trainable, jax.tree_util.tree_structure(state)),
                     lambda: self._make_train(trainable))

    def _make_train(self, trainable: tuple):
        names = [*self.names, EXAMPLES] + ([NOT_PROBABILITIES] if self.probabilities else [])

        def keras_loss(model, batch):
            y, mask = batch["y"], batch["mask"]
            y_pred = _call(model, batch["x"], self.keywords, True, batch.get("key"))
            loss = _masked_mean(self.loss_values(y, y_pred), mask)
            aux = {**self._metric_values(y, y_pred, mask), EXAMPLES: fn_reduce.sum(mask)}
            if self.probabilities is not None:
                aux[NOT_PROBABILITIES] = not_probabilities(y_pred, self.probabilities)
            return loss, aux

        step = make_state_step(keras_loss, self.transformation, trainable, has_aux=True)

        def keras_step(state, batch):
            state, logs = step(state, batch)
            return state, self._packed(logs, names)

        run = compile_step(keras_step, self.mode)

        def train_step(state, batch):
            state, vector = run(state, batch)
            return state, PackedLogs(names, vector)

        return train_step

    def eval(self, model):
        """The evaluation step ``(model, batch) -> logs`` for ``model``'s structure."""
        return _kept(self._eval, jax.tree_util.tree_structure(model), self._make_eval)

    def _make_eval(self):
        names = [*self.names, EXAMPLES]

        def keras_eval(model, batch):
            y, mask = batch["y"], batch["mask"]
            y_pred = _call(model, batch["x"], self.keywords, False, None)
            logs = {"loss": _masked_mean(self.loss_values(y, y_pred), mask),
                    **self._metric_values(y, y_pred, mask), EXAMPLES: fn_reduce.sum(mask)}
            return self._packed(logs, names)

        run = compile_step(keras_eval, self.mode)
        return lambda params, batch: PackedLogs(names, run(params, batch))

    def predict(self, model):
        """The forward pass ``(model, x) -> y_pred`` for ``model``'s structure."""
        keywords = self.keywords
        return _kept(self._predict, jax.tree_util.tree_structure(model),
                     lambda: compile_step(lambda m, x: _call(m, x, keywords, False, None),
                                          self.mode))


_STRUCTURES_KEPT = 4
_KEPT_LOCK = threading.Lock()


def _kept(table: dict, key, make, limit: int = _STRUCTURES_KEPT):
    """``table[key]``, made by ``make()`` on a miss; kept most recently used last, the
    oldest dropped past ``limit`` entries. ``make`` only wraps or builds (nothing is
    traced until a step is called), so it runs under the lock: threads fitting models
    of one configuration share these tables."""
    with _KEPT_LOCK:
        found = table.pop(key, None)
        if found is None:
            found = make()
        table[key] = found
        while len(table) > limit:
            table.pop(next(iter(table)))
        return found


_STEPS: dict = cache({})  # configuration key -> Steps, oldest first
_STEPS_KEPT = 16


def steps_for(key, make) -> Steps:
    """The `Steps` cached under ``key`` (None: not cacheable), made by ``make()`` on a
    miss; the oldest of more than `_STEPS_KEPT` entries is dropped."""
    if key is None:
        return make()
    try:
        hash(key)
    except TypeError:  # an unhashable setting
        return make()
    return _kept(_STEPS, key, make, _STEPS_KEPT)


class Trainer:
    """What ``model.compile`` configured (see the module docstring)."""

    def __init__(self, model, optimizer, loss, metrics, mode):
        if mode not in KERAS_MODES:
            raise TrainingError(f"mode must be one of {', '.join(KERAS_MODES)}, not {mode!r}")
        self._fits_known = None  # (key, answer) of the last _fits
        self.optimizer = resolve_optimizer(self, optimizer)
        metrics = resolve_metrics(metrics)
        loss_values = resolve_loss(loss)
        keywords = call_keywords(model)
        key = (mode, keywords, self.optimizer.key, loss, tuple(metrics))
        self.steps = steps_for(key, lambda: Steps(self.optimizer.transformation, loss_values,
                                                  metrics, keywords, mode,
                                                  expects_probabilities(loss)))
        self.keywords = keywords
        # shuffling and dropout keys: a numpy generator seeded from the global key stream
        self.rng = np.random.default_rng([int(w) for w in np.asarray(next_key()).ravel()])
        self.opt_state = None
        self.iterations = 0
        self.history = None
        self._loop = None

    def live_opt_state(self):
        if self._loop is not None:
            return self._loop.state.opt_state
        return self.opt_state

    # -- fit --------------------------------------------------------------------------------
    def fit(self, model, x, y, *, batch_size, epochs, verbose, callbacks, validation_split,
            validation_data, shuffle, initial_epoch, steps_per_epoch, validation_steps,
            validation_batch_size, validation_freq):
        verbose = _verbosity(verbose, "fit")
        batch_size = _positive_int(32 if batch_size is None else batch_size, "batch_size")
        steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
        validation_freq = _positive_int(validation_freq, "validation_freq")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise TrainingError(f"epochs must be an int >= 0, got {epochs!r}")
        if not 0.0 <= float(validation_split) < 1.0:
            raise TrainingError(f"validation_split must be in [0, 1), got {validation_split!r}")
        data = as_data(x, y, need_y=True)
        val = None
        if validation_data is not None:
            val = validation_data_of(validation_data)
        elif validation_split:
            if not isinstance(data, ArrayData):
                raise TrainingError("validation_split needs arrays (x, y); with an iterable of "
                                    "batches pass validation_data")
            data, val = data.split(float(validation_split))
        val_size = _positive_int(validation_batch_size or batch_size, "validation_batch_size")

        if isinstance(data, ArrayData):
            size = data.batch_size(batch_size)
            steps = steps_per_epoch or data.num_batches(size)
            stream = data.stream(size, self.rng, bool(shuffle))
            batches_of = lambda epoch: stream
        else:
            steps = steps_per_epoch or data.length
            batches_of = lambda epoch: data.epoch()
        needs_key = "key" in self.keywords
        if needs_key:
            batches_of = self._with_keys(batches_of)

        build_for(model, _sample_of(data))
        run, state = self._start(model)

        callbacks = list(callbacks or [])
        if self.steps.probabilities is not None:
            callbacks.append(_ProbabilityCheck())
        cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                           epochs=epochs, steps=steps, verbose=verbose)
        self.history = cbs.history
        model.stop_training = False

        def start_of_epoch(epoch, state):
            # a callback may have changed the model's weights (set_weights): train those
            leaves = jax.tree_util.tree_leaves(arrays_of(model))
            if any(a is not b for a, b in zip(leaves, jax.tree_util.tree_leaves(state.model))):
                state = TrainState(in_mode(arrays_of(model), True), state.opt_state, state.step)
            return state

        def empty_epoch(epoch):
            warnings.warn(f"fit: epoch {epoch + 1} got no batches: the input ran out of data (an "
                          f"iterator is not re-iterated), interrupting training", stacklevel=2)
            model.stop_training = True

        def end_of_epoch(epoch, state):
            assign_weights(model, state.model)
            self.opt_state = state.opt_state
            self.iterations = start_iterations + loop.steps
            if val is None or (epoch + 1) % validation_freq:
                return {}
            logs = self._evaluate(in_mode(state.model, False), val, val_size, validation_steps,
                                  cbs)  # the on_test_* hooks; no second progress bar
            return {f"val_{k}": v for k, v in logs.items()}

        start_iterations = self.iterations
        loop = Loop(run, state, cbs, stop=lambda: bool(model.stop_training))
        self._loop = loop
        try:
            loop.run_epochs(batches_of, epochs=epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=steps, start_of_epoch=start_of_epoch,
                            end_of_epoch=end_of_epoch, empty_epoch=empty_epoch)
        except BaseException:
            # ^C (or an error) mid-epoch: keep what the finished steps learned, as Keras
            # keeps its variables (loop.state only ever holds a completed step's result)
            try:
                assign_weights(model, loop.state.model)
            except Exception:  # noqa: BLE001, S110 - never hide the error being raised
                pass
            raise
        finally:
            self._loop = None
            self.opt_state = loop.state.opt_state
            self.iterations = start_iterations + loop.steps
        return cbs.history

    def _start(self, model):
        """The train step for the model's trainable leaves and the state it starts from:
        the model's arrays in training mode, the kept optimizer state (a fresh one when
        the trainable leaves changed shape), the step count."""
        trainable = tuple(model.trainable_mask())
        params = in_mode(arrays_of(model), True)
        train = trainable_leaves(params, trainable)
        opt_state = self.opt_state
        if opt_state is None or not self._fits(opt_state, train):
            opt_state = _strong(self.steps.transformation.init(train))
        if self.optimizer._lr is not None:
            set_learning_rate(opt_state, self.optimizer._lr)
        state = TrainState(params, opt_state, np.int32(self.iterations))
        return self.steps.train(trainable, state), state

    def _fits(self, opt_state, params) -> bool:
        """Whether a kept optimizer state fits ``params`` (`_same_structure`), remembered
        for the last (state structure, parameter types) seen: ``train_on_batch`` in a loop
        asks each call, and the answer costs an abstract ``init`` (about 1 ms)."""
        def types(tree):
            leaves, treedef = jax.tree_util.tree_flatten(tree)
            return treedef, tuple((np.shape(x), np.dtype(x.dtype)) for x in leaves)

        key = (types(opt_state), types(params), id(self.steps.transformation))
        known = self._fits_known
        if known is not None and known[0] == key:
            return known[1]
        ok = _same_structure(opt_state, params, self.steps.transformation)
        self._fits_known = (key, ok)
        return ok

    # -- one batch (Keras' *_on_batch) ----------------------------------------------------
    def _one_batch(self, model, x, y):
        data = as_data(x, y, need_y=y is not None)
        if not isinstance(data, ArrayData):
            raise TrainingError("the *_on_batch methods take arrays, not an iterable of batches")
        build_for(model, _sample_of(data))
        return data.batch(np.arange(data.n), data.n)

    def _logs(self, logs, return_dict: bool):
        host = {k: float(v) for k, v in host_scalars(logs).items() if not k.startswith("_")}
        if return_dict:
            return host
        values = list(host.values())
        return values[0] if len(values) == 1 else values

    def train_on_batch(self, model, x, y, return_dict: bool):
        """One optimizer step on exactly this batch; the weights and the optimizer state
        stay in the model and the trainer, as after ``fit``."""
        batch = self._one_batch(model, x, y)
        run, state = self._start(model)
        if "key" in self.keywords:
            batch["key"] = self.rng.integers(0, 2**32, size=2, dtype=np.uint32)
        state, logs = run(state, batch)
        assign_weights(model, state.model)
        self.opt_state, self.iterations = state.opt_state, self.iterations + 1
        return self._logs(logs, return_dict)

    def test_on_batch(self, model, x, y, return_dict: bool):
        """The loss and metrics on exactly this batch, in inference mode."""
        batch = self._one_batch(model, x, y)
        params = in_mode(arrays_of(model), False)
        return self._logs(self.steps.eval(params)(params, batch), return_dict)

    def _with_keys(self, batches_of):
        rng = self.rng

        def keyed(epoch):
            for b in batches_of(epoch):
                b["key"] = rng.integers(0, 2**32, size=2, dtype=np.uint32)
                yield b

        return keyed

    # -- evaluate / predict ------------------------------------------------------------------
    def _evaluate(self, params, data, batch_size, steps, cbs) -> dict:
        if isinstance(data, ArrayData):
            size = data.batch_size(batch_size)
            batches = data.epoch(size)
        else:
            batches = data.epoch()
        return evaluate_loop(self.steps.eval(params), params, batches, callbacks=cbs, steps=steps)

    def evaluate(self, model, x, y, *, batch_size, verbose, steps, callbacks, return_dict):
        verbose = _verbosity(verbose, "evaluate")
        batch_size = _positive_int(32 if batch_size is None else batch_size, "batch_size")
        steps = _positive_int(steps, "steps")
        data = as_data(x, y, need_y=True)
        total = steps or (data.num_batches(data.batch_size(batch_size))
                          if isinstance(data, ArrayData) else data.length)
        cbs = CallbackList(callbacks, add_progbar=verbose != 0, model=model, steps=total,
                           verbose=verbose)
        build_for(model, _sample_of(data))
        logs = self._evaluate(in_mode(arrays_of(model), False), data, batch_size, steps, cbs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, model, x, *, batch_size, verbose, steps, callbacks):
        verbose = _verbosity(verbose, "predict")
        batch_size = _positive_int(32 if batch_size is None else batch_size, "batch_size")
        steps = _positive_int(steps, "steps")
        data = as_data(x, None, need_y=False)
        if isinstance(data, ArrayData):
            size = data.batch_size(batch_size)
            batches = data.epoch(size)
            total = data.num_batches(size)
        else:
            batches, total = data.epoch(), data.length
        total = steps or total
        cbs = CallbackList(callbacks, add_progbar=verbose != 0, model=model, steps=total,
                           verbose=verbose)
        build_for(model, _sample_of(data))
        params = in_mode(arrays_of(model), False)
        run = self.steps.predict(params)
        outputs = []
        cbs.on_predict_begin()
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            cbs.on_predict_batch_begin(i)
            out = run(params, batch["x"])
            real = int(batch["mask"].sum())
            out = jax.tree_util.tree_map(lambda a, real=real: np.asarray(a)[:real], out)
            outputs.append(out)
            cbs.on_predict_batch_end(i, {"outputs": out})
        cbs.on_predict_end()
        if not outputs:
            raise TrainingError("predict got no batches")
        return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts, axis=0), *outputs)


class _ProbabilityCheck(Callback):
    """Warns once, after the first step, when the loss expects probabilities and the
    model's outputs are not (most often: a model that ends in logits, compiled with
    ``loss="sparse_categorical_crossentropy"``)."""

    def on_train_batch_end(self, batch, logs=None):
        loop = self._tg_loop
        if loop.steps == 1 and loop.last.get(NOT_PROBABILITIES):
            warnings.warn(ProbabilityWarning(
                "fit: the loss expects probabilities (as Keras' cross-entropies do unless "
                "from_logits=True), but the model's outputs are not probabilities (values "
                "outside [0, 1], or rows that do not sum to 1): end the model with a softmax "
                "(tg.nn.Softmax()) or sigmoid, or compile with a loss object such as "
                "tg.losses.SparseCategoricalCrossentropy(from_logits=True)"), stacklevel=2)


def _same_structure(opt_state, params, transformation) -> bool:
    """Whether a kept optimizer state fits ``params`` (a reshaped model starts from a
    fresh one)."""
    fresh = jax.eval_shape(transformation.tx.init, params)
    a, b = jax.tree_util.tree_structure(fresh), jax.tree_util.tree_structure(opt_state)
    if a != b:
        return False
    return all(np.shape(x) == np.shape(y) for x, y in
               zip(jax.tree_util.tree_leaves(fresh), jax.tree_util.tree_leaves(opt_state)))


def _strong(tree):
    """Every leaf as a strongly typed array, so the state the step returns has the same
    types as the one it was given (no retrace on the second step)."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.asarray(a).dtype), tree)


def assign_weights(model, trained) -> None:
    """Write the leaves of ``trained`` (an `arrays_of` copy of ``model``) into ``model``,
    in place (every leaf, state included; device arrays are taken without copies)."""
    model._tg_assign_leaves(jax.tree_util.tree_leaves(trained))
