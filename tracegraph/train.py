"""A small training loop in the spirit of Keras' ``fit``/``evaluate``, for any of the three
execution modes, with a progress bar showing loss, throughput and ETA.

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
by node) or ``"eager"`` (tg.eager: define-by-run).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import jax
import numpy as np

from .errors import Error
from .compile import compile as compile_fn
from .core import Tensor
from .frontend.eager import eager
from .frontend.tape import leaf, tensor
from .ir.types import is_inexact
from .optim import FromTransform
from .jit import jit
from .optim import apply_updates
from .autodiff import value_and_grad

MODES = ("jit", "interpret", "eager", "compile", "imperative")


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
    """``fn`` in one of the three execution modes."""
    if mode == "jit":
        return jit(fn, **jit_kwargs)
    if mode == "interpret":
        jf = jit(fn, **jit_kwargs)
        return jf.interpret
    if mode in ("eager", "imperative"):  # imperative: eager code on parameter tensors
        return eager(fn)
    if mode == "compile":
        return compile_fn(fn)
    raise Error(f"mode must be one of {MODES}, not {mode!r}")


def make_imperative_step(model, loss: Callable, optimizer, *, has_aux: bool = False):
    """PyTorch style: ``(TrainState, batch) -> (TrainState, metrics)`` running
    ``zero_grad(); loss(model, batch).backward(); step()`` on a copy of ``model`` whose
    parameters are leaf tensors (the functional ``optimizer`` drives them through
    `tg.optim.FromTransform`)."""
    def as_parameter(x):
        x = x._data if isinstance(x, Tensor) else x
        return leaf(x, requires_grad=True) if is_inexact(np.asarray(x).dtype) else x

    # a copy whose float leaves are parameter tensors: the caller's model stays as it was
    model = jax.tree_util.tree_map(as_parameter, model, is_leaf=lambda x: isinstance(x, Tensor))
    params = [x for x in jax.tree_util.tree_leaves(model, is_leaf=lambda x: isinstance(x, Tensor))
              if isinstance(x, Tensor)]
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


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415  (optional extra)
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True)


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
        on a copy of the model whose parameters are tensors; needs ``loss``/``optimizer``).
      progress: show a tqdm progress bar (loss, examples/s, ETA) when tqdm is installed.
      callback: called as ``callback(step_index, state, metrics)`` after each step.
    """
    if loss is not None or optimizer is not None:
        if loss is None or optimizer is None:
            raise Error("fit needs both loss= and optimizer= to build the step")
        model = step_or_model
        if mode == "imperative":
            model, step_fn = make_imperative_step(model, loss, optimizer, has_aux=has_aux)
            state = TrainState(model, None, 0)
        else:
            state = TrainState(model, optimizer.init(model), 0) if state is None else state
            step_fn = make_step(loss, optimizer, has_aux=has_aux)
    else:
        step_fn = step_or_model
        if state is None:
            raise Error("fit with a custom step needs state=")
    run = step_fn if mode == "imperative" and loss is not None else compile_step(step_fn, mode)
    total = steps
    if total is None:
        try:
            total = epochs * len(data)
        except TypeError:
            total = None
    hist = History()
    bar = _progress(total, f"fit [{mode}]", progress)
    done = 0
    t_start = time.perf_counter()
    try:
        for epoch in range(epochs):
            epoch_losses = []
            for batch in _batches_of(data, epoch):
                t0 = time.perf_counter()
                state, metrics = run(state, batch)
                if not isinstance(metrics, dict):
                    metrics = {"loss": metrics}
                value = float(metrics["loss"])  # waits for the step to finish
                dt = time.perf_counter() - t0
                hist.step_times.append(dt)
                hist.losses.append(value)
                hist.examples += _num_examples(batch)
                epoch_losses.append(value)
                done += 1
                if callback is not None:
                    callback(done, state, metrics)
                if bar is not None:
                    bar.update(1)
                    if done % log_every == 0 or done == 1:
                        rate = hist.examples / (time.perf_counter() - t_start)
                        bar.set_postfix(loss=f"{value:.4f}", ex_per_s=f"{rate:.0f}", epoch=epoch)
                if steps is not None and done >= steps:
                    break
            if epoch_losses:
                hist.epoch_losses.append(float(np.mean(epoch_losses)))
            if steps is not None and done >= steps:
                break
    finally:
        if bar is not None:
            bar.close()
    hist.seconds = time.perf_counter() - t_start
    return state, hist


def evaluate(fn: Callable, params, data, *, mode: str = "jit") -> dict:
    """Mean of ``fn(params, batch)`` (a scalar or a dict of scalars) over ``data``,
    weighted by batch size. ``fn`` is compiled once in ``mode``."""
    run = compile_step(fn, mode)
    sums: dict[str, float] = {}
    count = 0
    for batch in data:
        out = run(params, batch)
        out = out if isinstance(out, dict) else {"value": out}
        n = _num_examples(batch)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        count += n
    if not count:
        raise Error("evaluate got no batches")
    return {k: v / count for k, v in sums.items()}
