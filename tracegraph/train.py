"""Training: THE training loop (`Loop`), the functional ``tg.train.fit`` / ``evaluate``
built on it, and the pieces Keras-style ``model.fit`` (`tg.nn.Module.fit`, in
``nn/_trainer.py``) shares with them: the step builders, the execution modes, the logs.

Two ways to call `fit`:

* with a model, a loss and an optimizer::

      def loss_fn(model, batch):
          return F.cross_entropy(model(batch["x"]), batch["y"])

      state, hist = tg.train.fit(model, batches, loss=loss_fn,
                                 optimizer=tg.optim.adam(1e-3), epochs=5, mode="jit")

  the step (forward, IR-level backward, optimizer update as IR) is built for you and
  ``state.model`` is the trained model;

* with your own step ``step(state, batch) -> (state, loss)`` (or ``(state, metrics)``
  where ``metrics`` is a dict holding ``"loss"``)::

      state, hist = tg.train.fit(step, batches, state=init_state, epochs=5)

``mode`` is ``"jit"`` (tg.jit: define-then-run), ``"interpret"`` (the same graph run node
by node), ``"eager"`` (tg.eager: define-by-run), ``"compile"`` (tg.compile),
``"imperative"`` (PyTorch style: ``.backward()``, ``optimizer.step()``) or
``"tf-function"`` (TensorFlow 2 style: Variables, a GradientTape and
``apply_gradients`` in a `tg.function`).

Keras style, on any `tg.nn.Module` (the same `Loop`, the same `make_step`)::

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.1)

NOTE (one loop): `Loop` runs epochs of steps and calls Keras-style callbacks
(`tracegraph.callbacks`) at each hook; everything else is a callback or an argument.
``tg.train.fit``'s `History`, its ``callback=`` and its one progress bar over all steps
are callbacks here; ``model.fit``'s Keras `tg.callbacks.History`, its per-epoch tqdm bar,
validation (the ``end_of_epoch`` hook) and ``model.stop_training`` (the ``stop`` test)
are the same loop's other arguments.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Mapping
from typing import Any, Callable

import jax
import numpy as np

from .callbacks import Callback, CallbackList, ProgbarLogger
from .errors import Error
from .compile import compile as compile_fn
from .compile import function
from .core import Tensor
from .frontend.eager import eager
from .frontend.tape import leaf, tensor
from .frontend.variables import GradientTape, Variable
from .ir.types import is_inexact
from .optim import FromTransform
from .optim._keras import FromTransform as KerasFromTransform
from .jit import JitFunction, jit
from .optim import apply_updates
from .autodiff import value_and_grad

MODES = ("jit", "interpret", "eager", "compile", "imperative", "tf-function")


class TrainingError(Error):
    """Training was set up or called wrongly: ``model.compile`` with an unknown loss or
    optimizer, ``model.fit`` without targets or with arrays of different lengths,
    ``tg.train.fit`` without its state. The message names the call (``fit``,
    ``compile`` ...) and the user's line."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """What the built-in step carries: the model (any pytree of parameters), the
    optimizer state, and the step count."""

    model: Any
    opt_state: Any
    step: Any = 0


@dataclasses.dataclass
class History:
    """Per-step losses, per-epoch mean losses and timing of a `fit` run."""

    losses: list = dataclasses.field(default_factory=list)
    epoch_losses: list = dataclasses.field(default_factory=list)
    metrics: list = dataclasses.field(default_factory=list)
    step_times: list = dataclasses.field(default_factory=list)
    examples: int = 0
    seconds: float = 0.0

    @property
    def time_per_step(self) -> float:
        """Median seconds per step, leaving out the first (which compiles)."""
        t = self.step_times[1:] or self.step_times
        return float(np.median(t)) if t else math.nan

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else math.nan


def compile_step(fn: Callable, mode: str, **jit_kwargs) -> Callable:
    """``fn`` in one of the execution modes. A `tg.jit` function (a step compiled with
    its own options, e.g. ``tg.nn.parallel.Plan.jit``'s shardings) is used as it is."""
    if isinstance(fn, JitFunction) and not jit_kwargs and mode in ("jit", "interpret"):
        return fn if mode == "jit" else fn.interpret
    if mode == "jit":
        return jit(fn, **jit_kwargs)
    if mode == "interpret":
        jf = jit(fn, **jit_kwargs)
        return jf.interpret
    if mode in ("eager", "imperative"):  # imperative: eager code on parameter tensors
        return eager(fn)
    if mode == "tf-function":
        return function(fn)
    if mode == "compile":
        return compile_fn(fn)
    raise TrainingError(f"mode must be one of {MODES}, not {mode!r}")


def _float_leaves_as(model, make) -> tuple:
    """A copy of ``model`` whose float leaves are ``make(array)`` (parameter tensors,
    Variables), and those new leaves in order; the caller's model stays as it was."""
    made = []

    def convert(x):
        x = x._data if isinstance(x, Tensor) else x
        dtype = getattr(x, "dtype", None) or np.asarray(x).dtype
        if not is_inexact(np.dtype(dtype)):
            return x
        made.append(make(x))
        return made[-1]

    model = jax.tree_util.tree_map(convert, model, is_leaf=lambda x: isinstance(x, Tensor))
    return model, made


def make_imperative_step(model, loss: Callable, optimizer, *, has_aux: bool = False):
    """PyTorch style: ``(TrainState, batch) -> (TrainState, metrics)`` running
    ``zero_grad(); loss(model, batch).backward(); step()`` on a copy of ``model`` whose
    parameters are leaf tensors (the functional ``optimizer`` drives them through
    `tg.optim.FromTransform`)."""
    model, params = _float_leaves_as(model, lambda a: leaf(a, requires_grad=True))
    opt = FromTransform(params, optimizer)

    def step(state: TrainState, batch):
        opt.zero_grad()
        batch = jax.tree_util.tree_map(tensor, batch)
        out = loss(model, batch)
        value, aux = out if has_aux else (out, {})
        value.backward()
        opt.step()
        metrics = {k: np.asarray(v) for k, v in dict(aux).items()}
        return TrainState(model, None, state.step + 1), {"loss": value.item(), **metrics}

    return model, step


def make_tf_function_step(model, loss: Callable, optimizer, *, has_aux: bool = False):
    """TensorFlow 2 style: ``(TrainState, batch) -> (TrainState, metrics)`` running a
    `tg.function` train step on a copy of ``model`` whose float leaves are `tg.Variable`s:
    ``loss(model, batch)`` under a `GradientTape`, ``tape.gradient`` of the variables,
    and ``optimizer.apply_gradients`` (the functional ``optimizer`` as
    `tg.optimizers.FromTransform`). The first step records one graph (variables and
    optimizer state in, assigned values out) and later steps run it compiled. Returns
    ``(model copy, step)``; the step has the `tg.function` as ``.function``."""
    model, variables = _float_leaves_as(model, Variable)
    opt = KerasFromTransform(optimizer, name="optimizer")

    @function
    def train_step(batch):
        with GradientTape() as tape:
            out = loss(model, batch)
        value, aux = out if has_aux else (out, {})
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))
        return value, dict(aux)

    def step(state: TrainState, batch):
        value, aux = train_step(batch)
        return TrainState(model, None, state.step + 1), {"loss": value, **aux}

    step.function = train_step
    return model, step


def make_step(loss: Callable, optimizer, *, has_aux: bool = False) -> Callable:
    """The training step ``(TrainState, batch) -> (TrainState, metrics)`` for
    ``loss(model, batch)`` and a `tg.optim` optimizer."""
    def step(state: TrainState, batch):
        out, grads = value_and_grad(loss, has_aux=has_aux)(state.model, batch)
        value, aux = out if has_aux else (out, {})
        updates, opt_state = optimizer.update(grads, state.opt_state, state.model)
        model = apply_updates(state.model, updates)
        return TrainState(model, opt_state, state.step + 1), {"loss": value, **dict(aux)}

    return step


def _batches_of(data, epoch):
    if callable(data) and not hasattr(data, "__iter__"):
        return data(epoch)
    return iter(data)


def _num_examples(batch) -> int:
    leaves = jax.tree_util.tree_leaves(batch)
    return int(np.shape(leaves[0])[0]) if leaves and np.ndim(leaves[0]) else 1


EXAMPLES = "_examples"  # a step's metric: how many real (not padding) examples it saw


class PackedLogs(Mapping):
    """A step's scalar logs as ONE device vector and their names, so reading them costs
    one transfer from the device per step, not one per value (the Keras-style steps
    return their logs this way). A read-only mapping: ``logs["loss"]`` is a device
    scalar."""

    __slots__ = ("names", "vector")

    def __init__(self, names, vector):
        self.names = tuple(names)
        self.vector = vector

    def __getitem__(self, name):
        try:
            return self.vector[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)

    def to_host(self) -> dict:
        values = np.asarray(jax.device_get(self.vector))
        return {k: float(v) for k, v in zip(self.names, values)}


def host_scalars(metrics) -> dict:
    """The scalar entries of a step's metrics as Python floats (read from the device
    together, which waits for the step to finish); other entries are left out."""
    if isinstance(metrics, PackedLogs):
        return metrics.to_host()
    keys = list(metrics)  # in the step's order (device_get of a dict would sort them)
    values = jax.device_get([metrics[k] for k in keys])
    return {k: float(v) for k, v in zip(keys, values) if np.ndim(v) == 0}


class RunningMeans:
    """Means of per-batch values weighted by each batch's examples, as Keras' metrics
    accumulate them (a smaller last batch counts for what it holds)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0.0

    def add(self, values: dict, examples: float) -> dict:
        """Add one batch's means; returns the running means (names starting with ``_``
        are bookkeeping and left out)."""
        if examples > 0:
            for k, v in values.items():
                if not k.startswith("_"):
                    self.sums[k] = self.sums.get(k, 0.0) + v * examples
            self.count += examples
        return self.result()

    def result(self) -> dict:
        if not self.count:
            return {}
        return {k: v / self.count for k, v in self.sums.items()}


class Loop:
    """THE training loop: epochs of ``state, metrics = run(state, batch)``, with Keras'
    callback hooks around each step and epoch.

    Arguments:
      run: the compiled step ``(state, batch) -> (state, metrics)`` (metrics: a dict of
        scalars holding ``"loss"``, or the loss alone); `compile_step` makes it.
      state: the initial state; ``loop.state`` is always the latest.
      callbacks: a `tg.callbacks.CallbackList`; the batch logs are the running means of
        the epoch's metrics, the epoch logs their final means (weighted by the examples
        of each batch: the ``"_examples"`` metric when the step gives it, else the
        leading dimension of the batch) plus what ``end_of_epoch`` adds.
      stop: checked after every step and epoch; True ends training
        (``model.stop_training``).
      max_steps: end after this many steps in all.

    While it runs, callbacks may read ``loop.state``, ``loop.last`` (the last step's
    metrics as floats), ``loop.last_metrics`` (as the step returned them),
    ``loop.steps``, ``loop.examples``, ``loop.epoch_examples`` and
    ``loop.step_seconds`` (the last step, waiting for its result included).

    Example::

        loop = tg.train.Loop(tg.train.compile_step(step, "jit"), state,
                             tg.callbacks.CallbackList([tg.callbacks.History()]))
        state = loop.run_epochs(lambda epoch: batches, epochs=3)
    """

    def __init__(self, run: Callable, state, callbacks: CallbackList, *,
                 stop: Callable[[], bool] | None = None, max_steps: int | None = None):
        self.run = run
        self.state = state
        self.callbacks = callbacks
        self.stop = stop or (lambda: False)
        self.max_steps = max_steps
        self.steps = 0
        self.examples = 0
        self.epoch_examples = 0
        self.last: dict = {}
        self.last_metrics = None
        self.last_examples = 0
        self.step_seconds = 0.0
        self.seconds = 0.0
        self.epoch = None
        callbacks.set_loop(self)

    def _done(self) -> bool:
        return self.stop() or (self.max_steps is not None and self.steps >= self.max_steps)

    def run_epochs(self, batches_of: Callable, *, epochs: int, initial_epoch: int = 0,
                   steps_per_epoch: int | None = None, start_of_epoch: Callable | None = None,
                   end_of_epoch: Callable | None = None, empty_epoch: Callable | None = None):
        """Train epochs ``initial_epoch .. epochs - 1``; ``batches_of(epoch)`` gives each
        epoch's batches (at most ``steps_per_epoch`` are taken).
        ``start_of_epoch(epoch, state) -> state`` runs after the ``on_epoch_begin`` hooks;
        ``end_of_epoch(epoch, state)`` before the ``on_epoch_end`` hooks, and may return
        more epoch logs (validation). An epoch that got no batches at all ends without
        them when ``empty_epoch(epoch)`` is given (it may stop training: an iterator that
        ran out). Returns the final state."""
        cbs = self.callbacks
        t_start = time.perf_counter()
        logs: dict = {}
        try:
            cbs.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                if self._done():
                    break
                self.epoch = epoch
                cbs.on_epoch_begin(epoch)
                if start_of_epoch is not None:
                    self.state = start_of_epoch(epoch, self.state)
                means = RunningMeans()
                self.epoch_examples = 0
                steps_before = self.steps
                batches = iter(batches_of(epoch))
                if steps_per_epoch is not None:
                    batches = itertools.islice(batches, steps_per_epoch)
                for i, batch in enumerate(batches):
                    cbs.on_train_batch_begin(i)
                    t0 = time.perf_counter()
                    self.state, metrics = self.run(self.state, batch)
                    if not isinstance(metrics, Mapping):
                        metrics = {"loss": metrics}
                    host = host_scalars(metrics)  # waits for the step to finish
                    self.step_seconds = time.perf_counter() - t0
                    n = host.pop(EXAMPLES, None)
                    n = _num_examples(batch) if n is None else n
                    self.last, self.last_metrics, self.last_examples = host, metrics, n
                    self.steps += 1
                    self.examples += n
                    self.epoch_examples += n
                    cbs.on_train_batch_end(i, means.add(host, n))
                    if self._done():
                        break
                if self.steps == steps_before and empty_epoch is not None:
                    empty_epoch(epoch)
                    continue
                logs = means.result()
                if end_of_epoch is not None:
                    logs.update(end_of_epoch(epoch, self.state) or {})
                cbs.on_epoch_end(epoch, logs)
            cbs.on_train_end(logs)
        except BaseException:
            for cb in cbs:  # an error or ^C: close the progress bars, keep the terminal sane
                if isinstance(cb, (ProgbarLogger, _TotalProgress)):
                    cb._close()
            raise
        finally:
            self.seconds = time.perf_counter() - t_start
        return self.state


def evaluate_loop(run: Callable, params, batches, *, callbacks: CallbackList | None = None,
                  steps: int | None = None) -> dict:
    """Weighted means of ``run(params, batch)`` (a scalar, named ``"value"``, or a dict of
    scalars) over ``batches`` (at most ``steps``), calling the ``on_test_*`` hooks. The
    weights are the ``"_examples"`` entry when ``run`` gives one, else each batch's
    leading dimension."""
    cbs = callbacks if callbacks is not None else CallbackList()
    means = RunningMeans()
    cbs.on_test_begin()
    batches = iter(batches)
    if steps is not None:
        batches = itertools.islice(batches, steps)
    try:
        for i, batch in enumerate(batches):
            cbs.on_test_batch_begin(i)
            out = run(params, batch)
            host = host_scalars(out if isinstance(out, Mapping) else {"value": out})
            n = host.pop(EXAMPLES, None)
            cbs.on_test_batch_end(i, means.add(host, _num_examples(batch) if n is None else n))
    except BaseException:
        for cb in cbs:
            if isinstance(cb, ProgbarLogger):
                cb._close()
        raise
    logs = means.result()
    cbs.on_test_end(logs)
    if not means.count:
        raise TrainingError("evaluate got no batches")
    return logs


# -- tg.train.fit's own callbacks ------------------------------------------------------------


class _Recorder(Callback):
    """Fills tg.train's `History`: each step's loss, time and examples, each epoch's
    mean loss."""

    def __init__(self, hist: History):
        super().__init__()
        self.hist = hist
        self._epoch_losses: list = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_losses = []

    def on_train_batch_end(self, batch, logs=None):
        loop = self._tg_loop
        value = loop.last["loss"]
        self.hist.step_times.append(loop.step_seconds)
        self.hist.losses.append(value)
        self.hist.examples += int(loop.last_examples)
        self._epoch_losses.append(value)

    def on_epoch_end(self, epoch, logs=None):
        if self._epoch_losses:
            self.hist.epoch_losses.append(float(np.mean(self._epoch_losses)))


class _StepCallback(Callback):
    """tg.train.fit's ``callback(step_index, state, metrics)`` after each step."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def on_train_batch_end(self, batch, logs=None):
        loop = self._tg_loop
        self.fn(loop.steps, loop.state, loop.last_metrics)


class _TotalProgress(Callback):
    """tg.train.fit's progress bar: one tqdm bar over all steps (loss of the last step,
    examples per second, epoch), refreshed every ``log_every`` steps."""

    def __init__(self, total, desc, log_every):
        super().__init__()
        self.total, self.desc, self.log_every = total, desc, max(1, int(log_every))
        self.bar = None
        self._t0 = 0.0

    def on_train_begin(self, logs=None):
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415  (optional extra)
        except ImportError:
            return
        self._t0 = time.perf_counter()
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", dynamic_ncols=True,
                        leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is None:
            return
        loop = self._tg_loop
        self.bar.update(1)
        if loop.steps % self.log_every == 0 or loop.steps == 1:
            rate = loop.examples / max(time.perf_counter() - self._t0, 1e-9)
            self.bar.set_postfix(loss=f"{loop.last['loss']:.4f}", ex_per_s=f"{rate:.0f}",
                                 epoch=loop.epoch)

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def fit(
    step_or_model,
    data,
    *,
    loss: Callable | None = None,
    optimizer=None,
    state=None,
    epochs: int = 1,
    steps: int | None = None,
    mode: str = "jit",
    has_aux: bool = False,
    progress: bool = True,
    log_every: int = 10,
    callback: Callable | None = None,
):
    """Train. Returns ``(state, History)``.

    Arguments:
      step_or_model: a step function ``(state, batch) -> (state, loss or metrics)``, or a
        model (a pytree, e.g. a `tg.nn.Module`) when ``loss`` and ``optimizer`` are given.
      data: an iterable of batches (re-iterated each epoch, e.g. `tg.data.batches`), or
        a function ``epoch -> iterable``.
      loss, optimizer: build the step from ``loss(model, batch)`` and a `tg.optim`
        optimizer (``has_aux=True`` when loss returns ``(loss, metrics_dict)``).
      state: the initial state for a custom step.
      epochs, steps: stop after ``epochs`` passes or ``steps`` steps, whichever first.
      mode: ``"jit"``, ``"interpret"``, ``"eager"``, ``"compile"`` (`tg.compile`) or
        ``"imperative"`` (PyTorch style: ``loss.backward()`` and an optimizer ``step()``
        on a copy of the model whose parameters are tensors; needs ``loss``/``optimizer``)
        or ``"tf-function"`` (TensorFlow 2 style: a `tg.function` step with a
        `GradientTape` and ``apply_gradients`` on a copy of the model whose parameters
        are `tg.Variable`s; needs ``loss``/``optimizer``).
      progress: show a tqdm progress bar (loss, examples/s, ETA) when tqdm is installed.
      callback: called as ``callback(step_index, state, metrics)`` after each step.
    """
    if loss is not None or optimizer is not None:
        if loss is None or optimizer is None:
            raise TrainingError("fit needs both loss= and optimizer= to build the step")
        model = step_or_model
        if mode in ("imperative", "tf-function"):
            make = make_imperative_step if mode == "imperative" else make_tf_function_step
            model, step_fn = make(model, loss, optimizer, has_aux=has_aux)
            state = TrainState(model, None, 0)
        else:
            state = TrainState(model, optimizer.init(model), 0) if state is None else state
            step_fn = make_step(loss, optimizer, has_aux=has_aux)
    else:
        step_fn = step_or_model
        if state is None:
            raise TrainingError("fit with a custom step needs state=")
    own = mode in ("imperative", "tf-function") and loss is not None  # the step runs itself
    run = step_fn if own else compile_step(step_fn, mode)
    total = steps
    if total is None:
        try:
            total = epochs * len(data)
        except TypeError:
            total = None
    hist = History()
    callbacks = [_Recorder(hist)]
    if callback is not None:
        callbacks.append(_StepCallback(callback))
    if progress:
        callbacks.append(_TotalProgress(total, f"fit [{mode}]", log_every))
    loop = Loop(run, state, CallbackList(callbacks), max_steps=steps)
    state = loop.run_epochs(lambda epoch: _batches_of(data, epoch), epochs=epochs)
    hist.seconds = loop.seconds
    return state, hist


def evaluate(fn: Callable, params, data, *, mode: str = "jit") -> dict:
    """Mean of ``fn(params, batch)`` (a scalar, returned as ``"value"``, or a dict of
    scalars) over ``data``, weighted by batch size. ``fn`` is compiled once in ``mode``.

    Example::

        tg.train.evaluate(lambda m, b: {"accuracy": accuracy(m, b)}, model, test_batches)
    """
    return evaluate_loop(compile_step(fn, mode), params, data)
