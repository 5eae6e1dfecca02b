"""`Layer`: Keras 3's layer on a `tg.nn.Module` — lazy ``build``, ``add_weight``,
``call(inputs, training=None)``, Variables as weights.

A Keras layer is constructed without knowing its input size (``Dense(128)``); its first
call builds it from the input's shape (``build(input_shape)`` makes the weights with
``add_weight``), then runs ``call``. Here a layer is a `tg.nn.Module`, so it is also a
pytree: before it is built it has no leaves, after it its weights (`tg.Variable`\\ s) are
the leaves, named by attribute (``kernel``, ``bias``), and `tg.jit`, ``fit``,
`tg.checkpoint` and a `GradientTape` all see them.

The call:

- ``training`` flows down as in Keras: a layer called with ``training=None`` inside a
  call that set it gets the outer value (``model(x, training=True)`` puts every dropout
  and batch-norm layer in training mode);
- floating inputs are cast to the layer's compute dtype (float32 by default) and Python
  lists/numpy arrays accepted, as Keras' autocast does;
- a layer builds only on concrete values: a first call inside `tg.jit` (abstract values)
  would make its weights constants of that one graph, so it is an error naming the layer;
  `tg.function` and ``fit`` build before tracing (``fit`` runs the model once on two
  examples), and ``model.build(input_shape)`` builds explicitly.

State the forward pass changes (a batch norm's moving statistics, a dropout layer's
`SeedGenerator`) is read and written with ``read_state``/``update_state``: in place on
the Variables when called eagerly, state outputs in `tg.function`, collected by the
``fit`` step (see ``tracegraph/nn/_module/_state.py``).

Example::

    class Scale(tg.keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import threading

import jax
import numpy as np

from ..core import Tensor
from ..errors import ShapeError, TracingError, user_location_long
from ..frontend import fn_math
from ..frontend.fn_random import next_key, split
from ..frontend.variables import Variable
from ..ir.types import is_inexact
from ..nn import Module
from ..nn._module._module import FROZEN, reopened
from ..nn._module._state import read_state, update_state
from ..nn.init import param_dtype
from . import initializers
from ._functional import OUT_SHAPE, KerasTensor, output_shapes, symbolic_call

# The ``training`` value of the enclosing layer call (Keras' call context).
_TRAINING: contextvars.ContextVar = contextvars.ContextVar("tracegraph_keras_training",
                                                           default=None)

_NAMES: dict = {}
_NAMES_LOCK = threading.Lock()


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base: str) -> str:
    """Keras' automatic layer names: ``dense``, ``dense_1``, ``dense_2`` ..."""
    with _NAMES_LOCK:
        n = _NAMES.get(base, 0)
        _NAMES[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def reset_names() -> None:
    """Start the automatic names again (``keras.backend.clear_session``)."""
    with _NAMES_LOCK:
        _NAMES.clear()


@functools.cache
def _call_parameters(cls) -> frozenset:
    try:
        params = inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return frozenset({"training", "mask", "**"})
    return frozenset(params)


@functools.cache
def _shape_parameters(cls) -> tuple:
    """``build``'s parameters when it takes one shape per call argument (Keras'
    ``build(query_shape, value_shape)``); () for the usual ``build(input_shape)``."""
    try:
        names = list(inspect.signature(cls.build).parameters)[1:]
    except (TypeError, ValueError):
        return ()
    if len(names) > 1 and all(n.endswith("_shape") for n in names):
        return tuple(names)
    return ()


def shape_of(x) -> tuple:
    """A tensor's (or array's, or KerasTensor's) shape as a tuple."""
    return tuple(x.shape)


def _autocast(x, dtype):
    """Keras' input conversion: lists and numpy arrays become arrays; floating inputs
    take the layer's compute dtype."""
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (Tensor, jax.Array, np.ndarray)):
        x = np.asarray(x)
    dt = getattr(x, "dtype", None)
    if dt is None:
        return x
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return x.astype(dtype)
    if is_inexact(np.dtype(dt)) and np.dtype(dt) != dtype:
        return fn_math.astype(x, dtype)
    return x


class Layer(Module):
    """The base class of Keras layers (see the module docstring).

    Arguments (every layer takes them): ``name`` (default: the class name in snake case,
    numbered), ``trainable`` (False: the optimizer leaves the weights alone; a frozen
    BatchNormalization also runs in inference mode, as in Keras), ``dtype`` (weights'
    and computation's, default float32), ``input_shape`` / ``input_dim`` /
    ``batch_input_shape`` (a `Sequential`'s first layer: the model builds at once).

    Subclass it: make weights in ``build(input_shape)`` with `add_weight`, compute in
    ``call(inputs, training=None)``.
    """

    def __init__(self, *, name=None, trainable: bool = True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, batch_size=None, autocast=True,
                 **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unrecognized keyword arguments "
                            f"{sorted(kwargs)}")
        self.name = name or unique_name(_snake(type(self).__name__))
        self.dtype = np.dtype(param_dtype(dtype or "float32")).name
        self.built = False
        if batch_input_shape is None and input_dim is not None:
            input_shape = (int(input_dim),)
        if batch_input_shape is None and input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            batch_input_shape = (batch_size, *input_shape)
        self.batch_input_shape = None if batch_input_shape is None else tuple(
            None if d is None else int(d) for d in batch_input_shape)
        self.__dict__[FROZEN] = not trainable

    # -- Keras' attributes ----------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return not self.__dict__.get(FROZEN, False)

    def __setattr__(self, name, value):
        if name == "trainable":  # Keras: layer.trainable = False freezes it (recompile)
            with reopened(self):
                self.__dict__[FROZEN] = not bool(value)
            return
        super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and not getattr(build, "_tg_reopens", False):
            cls.build = _reopening(build)

    def get_weights(self) -> list:
        """The weights as numpy arrays (`weights`' order: a seed generator's key is
        not a weight), as Keras' ``get_weights``."""
        return [np.asarray(v) for v in self.weights]

    def set_weights(self, weights) -> None:
        """Assign every weight from a list in `get_weights`' order (Keras'
        ``set_weights``): same count, same shapes."""
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"{self.name}: set_weights got {len(weights)} arrays for "
                             f"{len(mine)} weights")
        for v, w in zip(mine, weights):
            if tuple(np.shape(w)) != tuple(v.shape):
                raise ValueError(f"{self.name}: weight {v.name} is {tuple(v.shape)}, got an "
                                 f"array of shape {tuple(np.shape(w))}")
            v.assign(np.asarray(w))

    @property
    def input_spec(self):
        """What this layer's inputs must look like (an `InputSpec`, a list of them, or
        None): set it in ``__init__`` or ``build`` as Keras layers do; every call checks
        its inputs against it."""
        return self.__dict__.get(_INPUT_SPEC)

    @input_spec.setter
    def input_spec(self, spec):
        with reopened(self):  # a static field: copies of the layer (tree_map) keep it
            super().__setattr__(_INPUT_SPEC, spec)

    @property
    def output_shape(self):
        shape = self.__dict__.get(OUT_SHAPE)
        if shape is None:
            raise AttributeError(f"layer {self.name!r} has not been called yet, so it has no "
                                 f"output shape")
        return shape

    def _variables(self, which=None) -> list:
        out = []
        _weights_of(self, False, out)
        return [v for v, trains in out if which is None or trains == which]

    @property
    def weights(self) -> list:
        """Every weight Variable (trainable first in Keras; here in attribute order)."""
        return self._variables()

    variables = weights

    @property
    def trainable_weights(self) -> list:
        """The Variables an optimizer trains (none while ``trainable`` is False)."""
        return self._variables(True)

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list:
        """The other weights: moving statistics, and all of a frozen layer's."""
        return self._variables(False)

    non_trainable_variables = non_trainable_weights

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it or build it first")
        return int(sum(int(np.prod(v.shape)) for v in self.weights))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}

    # -- building ---------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable: bool = True,
                   autocast: bool = True, regularizer=None, constraint=None,
                   aggregation="none", name=None, **_ignored) -> Variable:
        """A new weight: a `tg.Variable` of ``shape``, initialized by ``initializer`` (a
        Keras name, an initializer, or a function ``(shape, dtype)``; default
        glorot_uniform for floats, zeros otherwise). Assign it to an attribute."""
        if regularizer is not None or constraint is not None:
            raise NotImplementedError(
                f"{type(self).__name__}.add_weight: regularizer= and constraint= are not "
                f"supported yet")
        dtype = np.dtype(param_dtype(dtype or self.dtype))
        shape = () if shape is None else tuple(int(d) for d in shape)
        if initializer is None:
            initializer = "glorot_uniform" if is_inexact(dtype) else "zeros"
        init = initializers.get(initializer)
        value = initializers.initial_value(init, shape, dtype)
        # Keras' variable path: the layer's name, then the weight's
        return Variable(value, trainable=trainable, name=f"{self.name}/{name or 'variable'}")

    def build(self, input_shape) -> None:
        """Make the weights for inputs of ``input_shape`` (override; the default makes
        none)."""

    def build_from(self, inputs) -> None:
        """Build for ``inputs`` (their shapes), once."""
        if self.built:
            return
        shapes = jax.tree_util.tree_map(shape_of, inputs, is_leaf=_is_array_like)
        with reopened(self):
            self.build(shapes)
            self.built = True

    def _build_by_name(self, args, kwargs) -> None:
        """Build a layer whose ``build`` takes one shape per call argument, as Keras
        matches them by name: ``build(query_shape, value_shape, key_shape=None)`` for
        ``call(query, value, key=None)`` (an argument left None is left out)."""
        bound = inspect.signature(self.call).bind_partial(*args, **kwargs).arguments
        shapes = {}
        for name in _shape_parameters(type(self)):
            value = bound.get(name[:-len("_shape")])
            if value is not None:
                shapes[name] = jax.tree_util.tree_map(shape_of, value, is_leaf=_is_array_like)
        with reopened(self):
            self.build(**shapes)
            self.built = True

    # -- calling ----------------------------------------------------------------------------
    def forward(self, *args, training=None, **kwargs):
        if not args:
            raise TypeError(f"{self.name}: a layer is called with its inputs")
        if any(isinstance(a, KerasTensor)
               for a in jax.tree_util.tree_leaves(args, is_leaf=_is_array_like)):
            return symbolic_call(self, args, dict(kwargs, training=training))
        if training is None:
            training = _TRAINING.get()
        token = _TRAINING.set(training) if training is not None else None
        try:
            args = jax.tree_util.tree_map(
                lambda a: _autocast(a, np.dtype(self.dtype)), args, is_leaf=_is_array_like)
            inputs = args[0]
            check_input_spec(self, inputs)
            if not self.built:
                _check_concrete(self, args)
                if _shape_parameters(type(self)):
                    self._build_by_name(args, kwargs)
                else:
                    self.build_from(inputs)
                check_input_spec(self, inputs)  # the one build may have set
            call_params = _call_parameters(type(self))
            if "training" in call_params:
                kwargs["training"] = training
            out = self.call(inputs, *args[1:], **kwargs)
            self.__dict__[OUT_SHAPE] = jax.tree_util.tree_map(
                lambda o: (None, *tuple(o.shape)[1:]) if len(o.shape) else (), out,
                is_leaf=_is_array_like)
            return out
        finally:
            if token is not None:
                _TRAINING.reset(token)

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines no call()")

    def compute_output_shape(self, input_shape):
        return output_shapes(self, input_shape)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


_INPUT_SPEC = "_input_spec"  # a static field of the layer


class InputSpec:
    """Keras 3's ``InputSpec``: the rank (``ndim``, ``min_ndim``, ``max_ndim``), the
    ``shape`` (None for any size) and the sizes of some ``axes`` (``{-1: 3}``) a layer's
    input must have. A layer sets ``self.input_spec`` (Dense in ``build``: at least 2
    axes, the last of the size it was built for; Conv2D: 4 axes); each call checks the
    input before ``call`` runs and raises a `tg.ShapeError` with Keras' wording, the
    layer's name and the caller's line, instead of an error deep in the op."""

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = None if dtype is None else np.dtype(dtype).name
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = {int(k): int(v) for k, v in (axes or {}).items()}
        self.allow_last_axis_squeeze = bool(allow_last_axis_squeeze)
        self.name, self.optional = name, bool(optional)
        for k in self.axes:
            if self.ndim is not None and not -self.ndim <= k < self.ndim:
                raise ValueError(f"InputSpec: axis {k} is out of range for ndim={self.ndim}")

    def _key(self):
        return (self.dtype, self.shape, self.ndim, self.max_ndim, self.min_ndim,
                tuple(sorted(self.axes.items())), self.allow_last_axis_squeeze, self.name,
                self.optional)

    def __eq__(self, other):
        return isinstance(other, InputSpec) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        parts = [f"{k}={v}" for k, v in (("dtype", self.dtype), ("shape", self.shape),
                                         ("ndim", self.ndim), ("max_ndim", self.max_ndim),
                                         ("min_ndim", self.min_ndim))
                 if v is not None]
        if self.axes:
            parts.append(f"axes={self.axes}")
        return f"InputSpec({', '.join(parts)})"


def _spec_problem(spec: InputSpec, shape: tuple) -> str | None:
    ndim = len(shape)
    if spec.ndim is not None and ndim != spec.ndim and not (
            spec.allow_last_axis_squeeze and ndim in (spec.ndim - 1, spec.ndim + 1)):
        return f"expected ndim={spec.ndim}, found ndim={ndim}"
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        return f"expected max_ndim={spec.max_ndim}, found ndim={ndim}"
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        return f"expected min_ndim={spec.min_ndim}, found ndim={ndim}"
    for axis, size in spec.axes.items():
        if -ndim <= axis < ndim and shape[axis] is not None and shape[axis] != size:
            return (f"expected axis {axis} of input shape to have value {size}, but received "
                    f"input with shape {shape}")
    if spec.shape is not None and ndim == len(spec.shape):
        for want, got in zip(spec.shape, shape):
            if want is not None and got is not None and want != got:
                return f"expected shape={spec.shape}, found shape={shape}"
    return None


def check_input_spec(layer, inputs) -> None:
    """Raise a `tg.ShapeError` when ``inputs`` do not fit ``layer.input_spec``."""
    specs = layer.__dict__.get(_INPUT_SPEC)
    if specs is None:
        return
    specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
    xs = jax.tree_util.tree_leaves(inputs, is_leaf=_is_array_like)
    for i, (spec, x) in enumerate(zip(specs, xs)):
        if spec is None:
            continue
        shape = tuple(None if d is None else int(d) for d in shape_of(x))
        problem = _spec_problem(spec, shape)
        if problem is not None:
            if "shape" not in problem:
                problem += f". Full shape received: {shape}"
            raise ShapeError(f"Input {i} of layer \"{layer.name}\" is incompatible with the "
                             f"layer: {problem} (at {user_location_long(1)})")


def _reopening(build):
    """A subclass's ``build``, callable directly (Keras code calls ``layer.build(shape)``
    on a layer it owns): it may set new attributes, and leaves the layer built."""
    @functools.wraps(build)
    def wrapped(self, *args, **kwargs):
        with reopened(self):
            build(self, *args, **kwargs)
            self.built = True

    wrapped._tg_reopens = True
    return wrapped


def _is_array_like(x) -> bool:
    return isinstance(x, (Tensor, jax.Array, np.ndarray)) or hasattr(x, "_keras_history")


def _check_concrete(layer, inputs) -> None:
    for x in jax.tree_util.tree_leaves(inputs, is_leaf=_is_array_like):
        if isinstance(x, Tensor) and x._trace.known_value(x) is None:
            raise TracingError(
                f"{type(layer).__name__} {layer.name!r} is called for the first time inside "
                f"a traced function (tg.jit), where its weights would become constants of "
                f"that one graph: build the model first (call it once on an example, or "
                f"model.build(input_shape)), then trace")


# -- randomness -------------------------------------------------------------------------------


class SeedGenerator(Module):
    """Keras 3's ``SeedGenerator``: a key held as state (a non-trainable `tg.Variable`),
    split on every draw, so a dropout layer draws a new mask each step in every mode —
    eagerly (the Variable is assigned), in `tg.function` (a state output of the graph)
    and in ``fit``'s compiled step (collected state).

    Example::

        gen = SeedGenerator(seed=1)
        k1, k2 = gen.next(), gen.next()      # different keys
    """

    def __init__(self, seed=None, name=None):
        if seed is None:
            raw = next_key()
        else:
            with jax.ensure_compile_time_eval():
                raw = np.asarray(jax.random.PRNGKey(int(seed)))
        self.state = Variable(np.asarray(raw, np.uint32), trainable=False,
                              name=f"{name or 'seed_generator'}_state")

    def next(self):
        """A fresh key (``u32[2]``); the generator moves on."""
        keys = split(read_state(self, "state"))
        update_state(self, "state", keys[0])
        return keys[1]


def _weights_of(m, frozen: bool, out: list) -> None:
    """``(variable, trains)`` for the weights under ``m``, in flattening order; a seed
    generator's key is state, not a weight (Keras leaves it out of ``weights`` too)."""
    frozen = frozen or bool(m.__dict__.get(FROZEN, False))
    for x in jax.tree_util.tree_leaves(
            m, is_leaf=lambda v: v is not m and isinstance(v, (Module, Tensor))):
        if isinstance(x, SeedGenerator):
            continue
        if isinstance(x, Module):
            _weights_of(x, frozen, out)
        elif isinstance(x, Variable):
            out.append((x, not frozen and x.trainable))
