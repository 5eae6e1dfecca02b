"""Normalization layers: `LayerNorm`, `RMSNorm`, `GroupNorm` (compositions of reductions
and elementwise ops) and `BatchNorm1d` / `BatchNorm2d`, whose running statistics are
state the forward pass updates.

NOTE (running statistics): a `Module` is an immutable pytree, yet PyTorch's batch norm
changes its ``running_mean``/``running_var`` on every training call. They are leaves of
the pytree (so `tg.jit` takes them as inputs, never as stale constants, and
``state_dict``/`tg.checkpoint` save them) held as non-trainable `tg.Variable`s, the
module system's state (``_module/_state.py``, shared with Keras' BatchNormalization):

- imperative, PyTorch style (``model.train(); loss = crit(model(x), y); loss.backward();
  opt.step()``): the call assigns the new statistics to the Variables at once, in place,
  as PyTorch updates its buffers; inside `tg.function` / `tg.compile` / `tg.eager` the
  assignment is recorded as a state output of the graph and written back after the call;
- functional (`tg.jit`, `tg.grad`, Keras-style ``fit``): the model passed in holds
  traced values, which cannot change in place, so the updates are collected instead:
  ``out, model = tg.nn.call_with_state(model, x)`` returns the outputs and a copy of
  the model whose running statistics are the new ones (``fit`` does the same inside its
  step). A training call that could update neither way is a `tg.TracingError`, never
  a silent no-op that would train with stale statistics.

Excluding the statistics from ``parameters()`` (PyTorch's buffers) keeps them out of
optimizers, and a ``stop_gradient`` keeps gradients out of them.
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from ..errors import ShapeError, TracingError, user_location_long
from ..frontend.fn_linalg import stop_gradient
from ..frontend.fn_math import add, divide
from ..frontend.fn_shape import reshape, shape_of
from ..frontend.variables import Variable
from . import functional as F
from . import init
from ._module import Module
from ._module._state import read_state, update_state


class LayerNorm(Module):
    """Normalize the last ``len(normalized_shape)`` axes to zero mean and unit variance,
    then scale by ``weight`` and shift by ``bias`` (PyTorch's ``nn.LayerNorm``)::

        (x - mean) / sqrt(var + eps) * weight + bias

    Arguments:
        normalized_shape: an int or the trailing shape to normalize over.
        eps: added to the variance.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros); without it
            both are None.
        bias: with ``elementwise_affine``, whether to learn the bias.
        dtype: parameter dtype. No key: the initialization is deterministic.

    Example::

        ln = tg.nn.LayerNorm(512)
        y = ln(x)                           # x: f32[..., 512]
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, *,
                 bias: bool = True, dtype=jnp.float32):
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.eps = float(eps)
        dtype = init.param_dtype(dtype)
        self.weight = jnp.ones(self.normalized_shape, dtype) if elementwise_affine else None
        self.bias = jnp.zeros(self.normalized_shape, dtype) if elementwise_affine and bias else None

    def forward(self, x):
        n = len(self.normalized_shape)
        shape = shape_of(x)
        if len(shape) < n or tuple(shape[len(shape) - n:]) != self.normalized_shape:
            raise ShapeError(
                f"LayerNorm({list(self.normalized_shape)}) needs an input whose trailing "
                f"axes are {list(self.normalized_shape)}, got {list(shape)}"
            )
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps, axis=tuple(range(-n, 0)))


class RMSNorm(Module):
    """Root-mean-square normalization over the last ``len(normalized_shape)`` axes,
    scaled by ``weight`` (PyTorch's ``nn.RMSNorm``)::

        x / sqrt(mean(x ** 2) + eps) * weight

    Arguments:
        normalized_shape: an int or the trailing shape to normalize over.
        eps: added to the mean square; None (the default) is the machine epsilon of the
            input's dtype, as in PyTorch.
        elementwise_affine: learn ``weight`` (ones); without it ``weight`` is None.
        dtype: parameter dtype. No key: the initialization is deterministic.

    Example::

        norm = tg.nn.RMSNorm(512)
        y = norm(x)                         # x: f32[..., 512]
    """

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, *, dtype=jnp.float32):
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.eps = None if eps is None else float(eps)
        dtype = init.param_dtype(dtype)
        self.weight = jnp.ones(self.normalized_shape, dtype) if elementwise_affine else None

    def forward(self, x):
        n = len(self.normalized_shape)
        shape = shape_of(x)
        if len(shape) < n or tuple(shape[len(shape) - n:]) != self.normalized_shape:
            raise ShapeError(
                f"RMSNorm({list(self.normalized_shape)}) needs an input whose trailing axes "
                f"are {list(self.normalized_shape)}, got {list(shape)}"
            )
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class GroupNorm(Module):
    """Group normalization (PyTorch's ``nn.GroupNorm``): the ``num_channels`` channels of
    an ``(N, C, *spatial)`` input split into ``num_groups`` groups, each normalized to
    zero mean and unit variance over its channels and spatial positions, then scaled and
    shifted per channel. Independent of the batch: the same in training and inference.

    Arguments:
        num_groups: dividing ``num_channels``.
        num_channels: C.
        eps: added to the variance.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        dtype: parameter dtype.

    Example::

        gn = tg.nn.GroupNorm(4, 32)
        y = gn(x)                           # x: f32[N, 32, H, W]
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, dtype=jnp.float32):
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        if self.num_groups < 1 or self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps = float(eps)
        self.affine = bool(affine)
        dtype = init.param_dtype(dtype)
        self.weight = jnp.ones((self.num_channels,), dtype) if affine else None
        self.bias = jnp.zeros((self.num_channels,), dtype) if affine else None

    def forward(self, x):
        shape = shape_of(x)
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ShapeError(
                f"GroupNorm({self.num_groups}, {self.num_channels}) needs inputs of shape "
                f"(N, {self.num_channels}, ...), got {list(shape)}"
            )
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class _BatchNorm(Module):
    """The batch norm of `BatchNorm1d` and `BatchNorm2d` (see those); subclasses name
    the input ranks they take (``_ranks``) and their layout (``_layout``)."""

    _ranks: tuple = ()
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype=jnp.float32, training: bool = True):
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.training = bool(training)
        dtype = init.param_dtype(dtype)
        c = self.num_features
        self.weight = jnp.ones((c,), dtype) if affine else None
        self.bias = jnp.zeros((c,), dtype) if affine else None
        if track_running_stats:
            self.running_mean = Variable(jnp.zeros((c,), dtype), trainable=False)
            self.running_var = Variable(jnp.ones((c,), dtype), trainable=False)
            # a float count (PyTorch's is int64): tg.grad/jax.grad of a loss with respect
            # to the whole model need float leaves; f32 counts exactly to 2**24 steps
            self.num_batches_tracked = Variable(jnp.zeros((), jnp.float32), trainable=False)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def _check(self, x):
        shape = shape_of(x)
        if len(shape) not in self._ranks or shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}({self.num_features}) needs inputs of shape "
                f"{self._layout.format(c=self.num_features)}, got {list(shape)}"
            )
        return shape

    def forward(self, x, *, train=None):
        shape = self._check(x)
        train = self.training if train is None else bool(train)
        c, nd = self.num_features, len(shape) - 2
        if train or not self.track_running_stats:
            mean, var, count = F.batch_norm_stats(x)
            if train and count <= 1:
                raise ShapeError(
                    f"{type(self).__name__}({c}) needs more than one value per channel when "
                    f"training, got an input of shape {list(shape)}"
                )
            if train and self.track_running_stats:
                self._update_running_stats(mean, var, count)
        else:
            per_channel = (1, c) + (1,) * nd
            mean = reshape(stop_gradient(read_state(self, "running_mean")), per_channel)
            var = reshape(stop_gradient(read_state(self, "running_var")), per_channel)
        return F.normalize_channels(x, mean, var, self.weight, self.bias, self.eps)

    def _update_running_stats(self, mean, var, count):
        steps = add(read_state(self, "num_batches_tracked"), 1)
        # momentum=None: PyTorch's cumulative average, the batch weighted 1 / (steps so far)
        factor = divide(1.0, steps) if self.momentum is None else self.momentum
        new_mean, new_var = F.running_stats(read_state(self, "running_mean"),
                                            read_state(self, "running_var"), mean, var, count,
                                            factor)
        try:
            update_state(self, "running_mean", new_mean)
        except TracingError:
            raise TracingError(
                f"{type(self).__name__}({self.num_features}) in training mode updates its "
                f"running statistics, but this copy of the model holds traced values or "
                f"plain arrays there (a model argument of tg.jit / tg.grad, a functional "
                f"copy), which cannot change in place: call it through "
                f"`out, model = tg.nn.call_with_state(model, x)`, which returns the model "
                f"with the new statistics; or in inference mode (model.eval(), train=False), "
                f"or built with track_running_stats=False (at {user_location_long(2)})"
            ) from None
        update_state(self, "running_var", new_var)
        update_state(self, "num_batches_tracked", steps)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches tracked (in place, as PyTorch's)."""
        if self.track_running_stats:
            self.running_mean.assign(jnp.zeros_like(self.running_mean.numpy()))
            self.running_var.assign(jnp.ones_like(self.running_var.numpy()))
            self.num_batches_tracked.assign(0)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` inputs per channel (PyTorch's
    ``nn.BatchNorm1d``)::

        (x - mean) / sqrt(var + eps) * weight + bias

    In training (``training`` flag, ``model.train()``/``model.eval()``, or ``train=``)
    ``mean``/``var`` are the batch's (the biased variance, over every axis but 1) and the
    running statistics move towards them: ``running = (1 - momentum) * running +
    momentum * batch`` (the unbiased variance; ``momentum=None``: a cumulative average);
    in inference the running statistics are used (the batch's without
    ``track_running_stats``). See this file's NOTE for how the update reaches the module
    in each mode.

    Arguments:
        num_features: C.
        eps, momentum, affine, track_running_stats: as PyTorch's.
        dtype: parameter dtype. No key: the initialization is deterministic.

    Parameters: ``weight`` (ones) and ``bias`` (zeros), ``(C,)``. State (not in
    ``parameters()``, in ``state_dict()``): ``running_mean`` (zeros), ``running_var``
    (ones), ``num_batches_tracked`` (0, a float32 count), non-trainable `tg.Variable`s.

    Call: ``bn(x, *, train=None)``.

    Example::

        bn = tg.nn.BatchNorm1d(64)
        y = bn(x)                           # x: f32[N, 64]; updates the running stats
        y = bn.eval()(x)                    # normalizes with them
    """

    _ranks = (2, 3)
    _layout = "(N, {c}) or (N, {c}, L)"

    def forward(self, x, *, train=None):
        return _BatchNorm.forward(self, x, train=train)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``(N, C, H, W)`` inputs per channel (PyTorch's
    ``nn.BatchNorm2d``); everything else as `BatchNorm1d`.

    Example::

        bn = tg.nn.BatchNorm2d(32)
        y = bn(x)                           # x: f32[N, 32, H, W]
    """

    _ranks = (4,)
    _layout = "(N, {c}, H, W)"

    def forward(self, x, *, train=None):
        return _BatchNorm.forward(self, x, train=train)
