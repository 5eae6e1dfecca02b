"""``tg.callbacks``: Keras' callbacks for `tg.nn.Module.fit` (``keras.callbacks``).

A callback is an object whose hooks the training loop calls (`tracegraph.train.Loop`, the
one loop behind both ``model.fit`` and ``tg.train.fit``), with Keras' names and
arguments:

- ``on_train_begin(logs)`` / ``on_train_end(logs)``;
- ``on_epoch_begin(epoch, logs)`` / ``on_epoch_end(epoch, logs)``: the epoch's logs are
  its mean loss and metrics (``{"loss": ..., "accuracy": ..., "val_loss": ...}``);
- ``on_train_batch_begin(batch, logs)`` / ``on_train_batch_end(batch, logs)``: the logs
  are the running means over the epoch so far;
- ``on_test_*`` and ``on_predict_*`` for ``evaluate`` and ``predict``.

``self.model`` is the model being trained; setting ``self.model.stop_training = True``
ends training after the current batch. ``self.params`` holds ``epochs``, ``steps``
(per epoch, or None) and ``verbose``.

The callbacks here: `History` (always added by ``fit``, which returns it),
`ProgbarLogger` (the tqdm progress bar, added for ``verbose`` 1 or 2), `EarlyStopping`,
`ModelCheckpoint` (tracegraph's crash-safe checkpoints), `LearningRateScheduler`,
`LambdaCallback` and `TensorBoard` (needs ``tensorboardX`` or PyTorch's TensorBoard
writer).

Example::

    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=50, validation_split=0.1, callbacks=[
        tg.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        tg.callbacks.ModelCheckpoint("best.ckpt", save_best_only=True),
        tg.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.9),
    ])
    history.history["val_accuracy"]
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
import warnings

import numpy as np

from . import checkpoint
from .errors import Error, user_location_long
from .metrics import direction

__all__ = [
    "Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
    "LearningRateScheduler", "ModelCheckpoint", "ProgbarLogger", "TensorBoard",
]


class CallbackError(Error, ValueError):
    """A callback was set up or used wrongly (an unknown monitor direction, a schedule
    that returns no number, a missing TensorBoard writer)."""


class Callback:
    """Base class of the callbacks: every hook does nothing; override the ones you need.

    Example::

        class PrintLoss(tg.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                print(epoch, logs["loss"])
    """

    def __init__(self):
        self.params: dict = {}
        self._model = None

    @property
    def model(self):
        """The model being trained (set by ``fit`` through `set_model`)."""
        return self._model

    def set_model(self, model) -> None:
        self._model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


_HOOKS = (
    "on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
    "on_predict_end",
)
_INDEXED_HOOKS = (
    "on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
    "on_predict_batch_end",
)


class CallbackList(Callback):
    """Several callbacks called in order; a `History` (and, when asked, a
    `ProgbarLogger`) is appended unless one is already in the list, as in Keras, so
    it sees what the user's callbacks added to the logs."""

    def __init__(self, callbacks=None, *, add_history: bool = False, add_progbar: bool = False,
                 model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise CallbackError(f"callback {i} is a {type(cb).__name__}, not a "
                                    f"tg.callbacks.Callback")
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        has_bar = any(isinstance(cb, ProgbarLogger) for cb in self.callbacks)
        if add_progbar and not has_bar:
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model) -> None:
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def set_loop(self, loop) -> None:
        """Let the callbacks that show progress read the loop's counters (examples
        seen, seconds)."""
        for cb in self.callbacks:
            cb._tg_loop = loop

    def __iter__(self):
        return iter(self.callbacks)


def _make_hook(name, indexed):
    if indexed:
        def hook(self, index, logs=None):
            for cb in self.callbacks:
                getattr(cb, name)(index, logs)
    else:
        def hook(self, logs=None):
            for cb in self.callbacks:
                getattr(cb, name)(logs)
    hook.__name__ = name
    return hook


for _name in _HOOKS:
    setattr(CallbackList, _name, _make_hook(_name, False))
for _name in _INDEXED_HOOKS:
    setattr(CallbackList, _name, _make_hook(_name, True))


class History(Callback):
    """Records each epoch's logs: ``history.history`` is ``{"loss": [...],
    "accuracy": [...], "val_loss": [...], ...}`` (one value per epoch) and
    ``history.epoch`` the epoch indices. ``fit`` adds one and returns it (it is also
    ``model.history``).

    Example::

        history = model.fit(x, y, epochs=3)
        history.history["loss"]         # three floats
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def format_logs(logs: dict, digits: int = 4) -> str:
    """``loss: 0.1234 - accuracy: 0.9500`` (Keras' progress-bar text)."""
    parts = []
    for k, v in logs.items():
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            v = float(v)
            text = f"{v:.{digits}e}" if v and abs(v) < 10 ** -digits else f"{v:.{digits}f}"
            parts.append(f"{k}: {text}")
    return " - ".join(parts)


class ProgbarLogger(Callback):
    """The progress bar: with ``verbose=1`` a tqdm bar per epoch (``Epoch 3/10``) showing
    steps, ETA, the running loss and metrics and examples per second, ending with the
    epoch's validation results; with ``verbose=2`` one line per epoch. ``evaluate`` and
    ``predict`` (outside ``fit``) get a bar of their own. Writes to standard output, as
    Keras does; nothing when tqdm is not installed and ``verbose=1`` (the lines of
    ``verbose=2`` need no tqdm)."""

    def __init__(self):
        super().__init__()
        self._bar = None
        self._t0 = 0.0
        self._seen = 0
        self._in_fit = False

    # -- fit ----------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._close()
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._seen = 0
        self._rate = ""
        epochs = self.params.get("epochs")
        self._desc = f"Epoch {epoch + 1}/{epochs}" if epochs else f"Epoch {epoch + 1}"
        if self.params.get("verbose") == 1:
            self._bar = _tqdm(self.params.get("steps"), self._desc)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(logs), refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(logs, batch_end=False), refresh=False)
            self._close()
        elif self.params.get("verbose") == 2:
            per_step = seconds / self._seen * 1e3 if self._seen else math.nan
            text = format_logs(logs or {})
            print(f"{self._desc}\n{self._seen}/{self._seen} - {seconds:.2f}s - "
                  f"{per_step:.2f}ms/step" + (f" - {text}" if text else ""),
                  file=sys.stdout, flush=True)

    # -- evaluate / predict ------------------------------------------------------------
    def on_test_begin(self, logs=None):
        if not self._in_fit and self.params.get("verbose") == 1:
            self._bar = _tqdm(self.params.get("steps"), "evaluate")

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit and self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=False)
            self._bar.update(1)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            if self._bar is not None:
                self._bar.set_postfix_str(format_logs(logs or {}), refresh=False)
                self._close()
            elif self.params.get("verbose") == 2:
                print(format_logs(logs or {}), file=sys.stdout, flush=True)

    def on_predict_begin(self, logs=None):
        if self.params.get("verbose") == 1:
            self._bar = _tqdm(self.params.get("steps"), "predict")

    def on_predict_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_predict_end(self, logs=None):
        self._close()

    # -- helpers ------------------------------------------------------------------------
    def _postfix(self, logs, batch_end: bool = True) -> str:
        """The logs and, measured at each batch's end, the examples per second."""
        loop = getattr(self, "_tg_loop", None)
        if batch_end and loop is not None:
            seconds = time.perf_counter() - self._t0
            self._rate = f"{loop.epoch_examples / seconds:,.0f} ex/s" if seconds > 0 else ""
        text = format_logs(logs or {})
        rate = getattr(self, "_rate", "")
        return f"{text} - {rate}" if text and rate else text or rate

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _tqdm(total, desc):
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415  (optional: no bar without it)
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="step", file=sys.stdout, dynamic_ncols=True,
                leave=True)


class _Monitor(Callback):
    """What EarlyStopping and ModelCheckpoint share: a monitored log entry and which way
    is an improvement (``mode``: ``"min"``, ``"max"``, or ``"auto"``: from the name)."""

    def __init__(self, monitor, mode, baseline, min_delta):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode {mode!r} is unknown, fallback to auto mode.",
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.baseline = baseline
        self.min_delta = abs(float(min_delta))
        self.best = baseline
        self._better = None

    def _direction(self) -> str:
        if self.mode != "auto":
            return self.mode
        found = direction(self.monitor)
        if found is None:
            raise CallbackError(
                f"{type(self).__name__}(monitor={self.monitor!r}) cannot tell whether that "
                f"quantity should be maximized or minimized: pass mode='max' or mode='min'"
            )
        return found

    def _is_improvement(self, value, reference) -> bool:
        if self._better is None:
            self._better = self._direction()
        if reference is None:
            return True
        if self._better == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs or {})}",
                stacklevel=3,
            )
        return value


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs (Keras' ``EarlyStopping``: ``mode``, ``baseline``,
    ``restore_best_weights`` — put back the weights of the best epoch when training
    ends —, ``start_from_epoch``, ``verbose``). ``stopped_epoch`` and ``best_epoch`` say
    what happened.

    Example::

        stop = tg.callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                          restore_best_weights=True)
        model.fit(x, y, epochs=100, validation_split=0.1, callbacks=[stop])
        stop.stopped_epoch
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, baseline, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model's weights after each epoch (``save_freq="epoch"``) or every
    ``save_freq`` batches, as a `tg.checkpoint` file: written atomically (a crash never
    leaves a half-written file), no pickle. ``filepath`` may hold Keras' placeholders,
    ``"ckpt/{epoch:02d}-{val_loss:.2f}.ckpt"``. ``save_best_only``: only when
    ``monitor`` improved (``mode``, ``initial_value_threshold`` as in Keras). The
    checkpoint's step is the optimizer's step count and its metadata
    ``{"epoch": ..., "logs": {...}}``.

    Load it with ``model.load_weights(path)``, or ``tg.checkpoint.load(path, like=model)``.

    Example::

        save = tg.callbacks.ModelCheckpoint("run/best.ckpt", monitor="val_accuracy",
                                            save_best_only=True)
        model.fit(x, y, epochs=10, validation_split=0.1, callbacks=[save])
        model.load_weights("run/best.ckpt")
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold, 0)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)  # weights are all a checkpoint holds
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise CallbackError(f"ModelCheckpoint: unrecognized save_freq {save_freq!r}; expected "
                                f"'epoch' or a positive int (batches)")
        self.save_freq = save_freq
        self._batches = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs) -> str:
        fields = {k: v for k, v in (logs or {}).items()}
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise CallbackError(f"ModelCheckpoint: cannot format the file path "
                                f"{self.filepath!r} ({type(e).__name__}: {e})") from None

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if self.save_best_only:
            current = self._current(logs)
            if current is not None:
                if not self._is_improvement(current, self.best):
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                              f"{self.best:.5f}", flush=True)
                    return
                if self.verbose > 0:
                    best = "None" if self.best is None else f"{self.best:.5f}"
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                          f"{current:.5f}, saving model to {path}", flush=True)
                self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}", flush=True)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise CallbackError(f"ModelCheckpoint: the file path {path!r} is a directory; give "
                                f"a file name")
        optimizer = getattr(self.model, "optimizer", None)
        step = getattr(optimizer, "iterations", None)
        plain = {k: float(v) for k, v in (logs or {}).items()
                 if isinstance(v, numbers.Real) and math.isfinite(float(v))}
        checkpoint.save(path, self.model, step=step,
                        metadata={"epoch": epoch + 1, "batch": None if batch is None else batch + 1,
                                  "logs": plain})


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (or
    ``schedule(epoch)``), and log it as ``"learning_rate"``. The rate is an input of the
    compiled training step, so changing it never recompiles. Needs an optimizer whose
    learning rate is a number (a name such as ``"adam"``, a `tg.optim` optimizer or a
    `tg.optimizers` one built with a float rate).

    Example::

        sched = tg.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 5 else lr * 0.5)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise CallbackError(f"LearningRateScheduler: schedule must be a function "
                                f"(epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise CallbackError("LearningRateScheduler: the model has no optimizer with a "
                                "learning_rate (call model.compile first)")
        lr = float(optimizer.learning_rate)
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # Keras' old form: schedule(epoch)
            new = self.schedule(epoch)
        if isinstance(new, bool) or not isinstance(new, (numbers.Real, np.floating)):
            raise CallbackError(f"LearningRateScheduler: the schedule must return a float, "
                                f"got {new!r}")
        optimizer.learning_rate = float(new)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(new)}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)`` (and
    Keras' ``on_batch_begin``/``on_batch_end``).

    Example::

        log = tg.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not (name.startswith("on_") and hasattr(Callback, name)):
                raise CallbackError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class TensorBoard(Callback):
    """Write the epoch logs as TensorBoard scalars (``epoch_loss``, ``epoch_accuracy``
    ...; training values under ``log_dir/train``, validation ones under
    ``log_dir/validation``, as Keras lays them out; ``update_freq="batch"`` or an int
    also writes ``batch_*`` every that many batches), with Keras' other arguments:

    - ``histogram_freq=N``: every N epochs, a histogram of each parameter of the model
      (``fc1.weight``, ...) under ``log_dir/train``;
    - ``write_steps_per_second=True``: ``epoch_steps_per_second`` (and
      ``batch_steps_per_second`` with ``update_freq``);
    - ``profile_batch``: a `jax.profiler` trace of these training batches (counted from
      1 over the whole run: ``2``, or ``(10, 20)``, or ``"10,20"``; 0 for none), written
      where TensorBoard's Profile dashboard reads it
      (``log_dir/train/plugins/profile/<session>/<host>.xplane.pb``). The compiled
      step's XLA ops carry the IR nodes' names (``%3 = matmul at model.py:12``), so the
      trace viewer leads back to the graph.

    Writes with `tg.tensorboard.SummaryWriter` (TensorBoard's own protobufs and event
    writer: ``pip install tensorboard``), else ``tensorboardX`` or PyTorch's
    ``torch.utils.tensorboard``; without any, constructing it raises `CallbackError`
    naming them. The IR graph goes to the Graphs dashboard with
    `tg.tensorboard.write_graph` (it needs an input to trace the model on).

    Example::

        model.fit(x, y, epochs=5, callbacks=[tg.callbacks.TensorBoard(
            "logs/run1", histogram_freq=1, profile_batch=(3, 5))])
    """

    def __init__(self, log_dir="logs", histogram_freq: int = 0, write_steps_per_second: bool = False,
                 update_freq="epoch", profile_batch=0):
        super().__init__()
        self._writer_class = _summary_writer_class()
        self.log_dir = os.fspath(log_dir)
        where = user_location_long(2)  # the line that made the callback, for its mistakes
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise CallbackError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                                f"int, got {update_freq!r} (at {where})")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise CallbackError(f"TensorBoard: histogram_freq must be an int >= 0, got "
                                f"{histogram_freq!r} (at {where})")
        self.update_freq = update_freq
        self.histogram_freq = histogram_freq
        self.write_steps_per_second = bool(write_steps_per_second)
        self.profile_range = _profile_range(profile_batch, where)
        self._writers: dict = {}
        self._step = 0
        self._profiling = False
        self._epoch_start = self._batch_start = None
        self._epoch_batches = 0

    def _writer(self, kind):
        w = self._writers.get(kind)
        if w is None:
            w = self._writers[kind] = self._writer_class(os.path.join(self.log_dir, kind))
        return w

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()
        if self.profile_range and self._step + 1 == self.profile_range[0]:
            self._start_profile()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._epoch_batches += 1
        if self._profiling and self._step >= self.profile_range[1]:
            self._stop_profile()
        if self.update_freq != "epoch" and self._step % self.update_freq == 0:
            w = self._writer("train")
            for k, v in (logs or {}).items():
                if isinstance(v, numbers.Real) or np.ndim(v) == 0:
                    w.add_scalar(f"batch_{k}", float(v), self._step)
            if self.write_steps_per_second and self._batch_start is not None:
                elapsed = time.perf_counter() - self._batch_start
                if elapsed > 0:
                    w.add_scalar("batch_steps_per_second", 1.0 / elapsed, self._step)

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            if not isinstance(v, numbers.Real):
                continue
            kind, name = ("validation", k[4:]) if k.startswith("val_") else ("train", k)
            self._writer(kind).add_scalar(f"epoch_{name}", float(v), epoch)
        if self.write_steps_per_second and self._epoch_start is not None and self._epoch_batches:
            elapsed = time.perf_counter() - self._epoch_start
            self._writer("train").add_scalar("epoch_steps_per_second", self._epoch_batches / elapsed, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            w = self._writer("train")
            for name, value in _named_weights(self.model):
                w.add_histogram(name, np.asarray(value), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        if self._profiling:  # fewer batches ran than the range asked for
            self._stop_profile()
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def _start_profile(self):
        import jax

        try:
            jax.profiler.start_trace(os.path.join(self.log_dir, "train"))
        except RuntimeError as e:  # another trace is running in this process
            raise CallbackError(f"TensorBoard(profile_batch=...): cannot start a jax.profiler "
                                f"trace: {e}") from None
        self._profiling = True

    def _stop_profile(self):
        import jax

        self._profiling = False
        jax.profiler.stop_trace()


def _profile_range(profile_batch, where: str) -> tuple | None:
    """Keras' ``profile_batch``: 0 (none), N (batch N), (start, stop) or "start,stop"."""
    spec = profile_batch
    if isinstance(spec, str):
        try:
            spec = tuple(int(p) for p in spec.split(","))
        except ValueError:
            spec = None
    elif isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        spec = (int(spec), int(spec))
    if isinstance(spec, (tuple, list)) and len(spec) == 1:
        spec = (spec[0], spec[0])
    if (not isinstance(spec, (tuple, list)) or len(spec) != 2
            or not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in spec)
            or spec[0] < 0 or spec[1] < spec[0] or (spec[0] == 0 and spec[1] != 0)):
        raise CallbackError(f"TensorBoard: profile_batch must be 0, a batch number, or "
                            f"(start, stop) with 1 <= start <= stop, got {profile_batch!r} (at {where})")
    return None if spec[0] == 0 else (int(spec[0]), int(spec[1]))


def _named_weights(model):
    """``(name, array)`` of each parameter of a model: a `tg.nn.Module`'s
    ``named_parameters``, else the dotted paths of a pytree's array leaves."""
    if model is None:
        return []
    named = getattr(model, "named_parameters", None)
    if callable(named):
        pairs = named()
    else:
        import jax

        pairs = [(jax.tree_util.keystr(path, simple=True, separator="."), x)
                 for path, x in jax.tree_util.tree_flatten_with_path(model)[0]]
    import jax.numpy as jnp

    out = []
    for name, x in pairs:
        data = getattr(x, "_data", x)  # a leaf tensor of a PyTorch-style module
        dtype = getattr(data, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.inexact):  # not keys, not ints
            out.append((name, data))
    return out


def _summary_writer_class():
    """A ``SummaryWriter`` class: tg.tensorboard's, tensorboardX's or torch's."""
    problems = []
    try:
        import tensorboard  # noqa: F401, PLC0415  (optional)

        from .tensorboard import SummaryWriter  # noqa: PLC0415
        return SummaryWriter
    except ImportError as e:
        problems.append(f"tensorboard: {e}")
    try:
        from tensorboardX import SummaryWriter  # noqa: PLC0415  (optional)
        return SummaryWriter
    except ImportError as e:
        problems.append(f"tensorboardX: {e}")
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415  (optional)
        return SummaryWriter
    except ImportError as e:
        problems.append(f"torch.utils.tensorboard: {e}")
    raise CallbackError(
        "TensorBoard needs a TensorBoard event writer, and none is installed: install "
        "tensorboard (pip install tensorboard) or tensorboardX (pip install tensorboardX) "
        f"({'; '.join(problems)})"
    )
