"""`Module`: the base class of tracegraph's layers, an immutable dataclass-style pytree.

A Module holds its parameters as attributes. Subclasses register themselves with
``jax.tree_util`` (keys included; see `_flatten`), so every pytree tool sees the
parameters as leaves named by attribute: ``jax.tree_util.tree_leaves(model)`` lists them,
``tree_map`` makes a new model, `tg.jit` names the graph inputs ``model.fc1.weight``, optax
optimizers take the model as their params, and `tg.checkpoint` pairs leaves by those names.

Which attributes are parameters (pytree children) and which are hyper-parameters (static
data in the tree definition) is decided once, at the end of ``__init__``, from the values
(see `_field` and this package's README): arrays and Modules are children, plain Python
data is static, unless a field is declared ``tg.nn.field(static=True)`` or
``static=False``. A change of a static value is a change of the tree definition, so
`tg.jit` retraces for it.

Modules are frozen once ``__init__`` returns: use `Module.replace` (or `tree_at`) to get a
changed copy, as in JAX and Equinox.

Each child module knows its name in its parent (its attribute name; a list or dict
element is ``attr.index`` or ``attr.key``; the elements of `Sequential` are just ``0``,
``1``, ...), and calling it runs ``forward`` in that scope (see `_scope`). The root module
has no name. The name is static data, so it survives flattening and tracing.

Example::

    class MLP(tg.nn.Module):
        def __init__(self, sizes, *, key):
            keys = tg.random.split(key, len(sizes) - 1)
            self.layers = [tg.nn.Linear(m, n, key=k)
                           for m, n, k in zip(sizes[:-1], sizes[1:], keys)]

        def forward(self, x):
            for layer in self.layers[:-1]:
                x = tg.relu(layer(x))
            return self.layers[-1](x)

    model = MLP([784, 128, 10], key=tg.random.key(0))
    logits = tg.jit(lambda model, x: model(x))(model, x)    # scopes layers.0, layers.1
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import math
import typing

import jax
import jax.numpy as jnp
import numpy as np

from ... import checkpoint
from ...core import Tensor
from ...errors import public
from ...frontend.variables import Variable
from ...ir.types import dtype_name, is_inexact
from ...train import TrainingError
from .. import _trainer
from . import _flatten
from ._field import INIT, META, NAME, SPEC, classify, field_names, is_array, static_of
from ._scope import module_scope

KERAS = "_tg_keras"  # the module's `Trainer` after model.compile (bookkeeping, not a field)
STOP = "_tg_stop_training"  # Keras' model.stop_training

# -- declared fields --------------------------------------------------------------------------


class _Declared(typing.NamedTuple):
    """What a class says about one annotated field."""

    has_default: bool  # a class attribute holds its default
    factory: typing.Callable | None  # or this makes it (``field(default_factory=...)``)
    static: bool | None  # ``field(static=...)``; None: classified by value


def _own_declarations(cls) -> dict[str, _Declared]:
    """The fields annotated in ``cls`` itself (not its bases), read before
    ``dataclasses`` replaces the `tg.nn.field` objects by their defaults."""
    annotations = inspect.get_annotations(cls)
    for name, value in cls.__dict__.items():
        if isinstance(value, dataclasses.Field) and name not in annotations:
            raise TypeError(f"{cls.__name__}.{name} = tg.nn.field(...) needs a type annotation")
    out = {}
    for name, ann in annotations.items():
        if name.startswith(META) or "ClassVar" in str(ann):
            continue
        value = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(value, dataclasses.Field):
            factory = value.default_factory
            out[name] = _Declared(
                value.default is not dataclasses.MISSING,
                None if factory is dataclasses.MISSING else factory,
                static_of(value),
            )
        else:
            has_default = value is not dataclasses.MISSING or hasattr(cls, name)
            out[name] = _Declared(has_default, None, None)
    return out


@functools.cache
def _declared_fields(cls) -> dict[str, _Declared]:
    """Annotated instance fields over the class's Module bases, base classes first."""
    out = {}
    for base in reversed(cls.__mro__):
        out.update(base.__dict__.get("_tg_declared", {}))
    return out


def _check_fields(obj):
    """Fill the annotated fields ``__init__`` left unset from their defaults."""
    d = obj.__dict__
    for name, decl in _declared_fields(type(obj)).items():
        if name in d:
            continue
        if decl.factory is not None:
            d[name] = decl.factory()
        elif decl.has_default:
            d[name] = getattr(type(obj), name)
        else:
            raise TypeError(f"{type(obj).__name__}.__init__ did not set the field {name!r}")


def _has_custom_init(cls) -> bool:
    for base in cls.__mro__:
        if base is Module:
            return False
        init = base.__dict__.get("__init__")
        if init is not None and not getattr(init, "_tg_generated", False):
            return True
    return False


def _unwrap_field_defaults(cls):
    """A class with its own ``__init__`` gets no dataclass processing: replace its
    `tg.nn.field` class attributes by their defaults, as ``dataclasses`` would."""
    for name, value in list(cls.__dict__.items()):
        if isinstance(value, dataclasses.Field):
            if value.default is dataclasses.MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value.default)


# -- naming children and classifying fields --------------------------------------------------


def _is_module(x) -> bool:
    return isinstance(x, Module)


def _renamed(module, name):
    if module.__dict__.get(NAME) == name:
        return module
    new = object.__new__(type(module))
    new.__dict__.update(module.__dict__)
    new.__dict__[NAME] = name
    return new


def _name_children(value, prefix):
    """``value`` with every Module in it (through lists, tuples, dicts) renamed by its
    position: ``prefix``, ``prefix.0``, ``prefix.key``..."""
    if isinstance(value, Module):
        return _renamed(value, prefix)
    if type(value) in (list, tuple):
        return type(value)(_name_children(x, _join(prefix, str(i))) for i, x in enumerate(value))
    if type(value) is dict:
        return {k: _name_children(x, _join(prefix, str(k))) for k, x in value.items()}
    return value


def _join(a, b):
    return f"{a}.{b}" if a else b


def _finish(module, keep=None):
    """Name the child modules, split the fields into children and static data, freeze.

    ``keep``: field -> spec to reuse (fields `replace` left alone)."""
    d = module.__dict__
    cls = type(module)
    declared = _declared_fields(cls)
    specs = []
    for field in field_names(module):
        prefix = "" if field in cls._tg_index_fields else field
        d[field] = _name_children(d[field], prefix)
        spec = keep.get(field) if keep else None
        if spec is None:
            decl = declared.get(field)
            spec = classify(d[field], _is_module, decl.static if decl else None)
        specs.append((field, spec))
    d[SPEC] = _flatten.Layout(specs, cls._tg_index_fields)
    d.pop(INIT, None)


# The construction under way in this context: one record per outermost module built,
# shared by the modules built inside it. A layer given no ``key=`` draws from the global
# key stream (`tg.manual_seed`) and marks the record: the model is being built PyTorch
# style, so when the outermost module is done its float arrays become parameters
# (leaf tensors that require grad), as ``torch.nn`` layers' are.
_BUILDING: contextvars.ContextVar[tuple] = contextvars.ContextVar("tracegraph_nn_building", default=())


def mark_pytorch_style() -> None:
    """Called when a layer under construction initializes from the global key stream."""
    stack = _BUILDING.get()
    if stack:
        stack[0][0] = True


class _ModuleMeta(type):
    def __call__(cls, *args, **kwargs):
        obj = cls.__new__(cls)
        obj.__dict__[NAME] = None
        obj.__dict__[INIT] = True
        stack = _BUILDING.get()
        record = stack[0] if stack else [False]
        token = _BUILDING.set((*stack, record))
        try:
            obj.__init__(*args, **kwargs)
        finally:
            _BUILDING.reset(token)
        _check_fields(obj)
        _finish(obj)
        if not stack and (record[0] or _holds_parameter_tensors(obj)):
            to_parameters(obj)
            obj.named_parameters()  # the tensors take their paths as names
        return obj


def _holds_parameter_tensors(module) -> bool:
    """Whether a module holds parameter tensors: a container built around layers made
    PyTorch style (``Sequential([Linear(4, 8), BatchNorm1d(8)])``, the layers built
    before it) is PyTorch style too, its keyless layers' arrays included."""
    for x in jax.tree_util.tree_leaves(module, is_leaf=_is_tensor):
        if isinstance(x, Tensor) and x._trace.free and x.requires_grad:
            return True
    return False


def _scoped_call(call):
    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        with module_scope(id(self), self.__dict__.get(NAME)):
            return call(self, *args, **kwargs)

    __call__._tg_scoped = True
    return __call__


# -- the base class -------------------------------------------------------------------------


_MISSING = object()


class Module(metaclass=_ModuleMeta):
    """Base class of layers and models: an immutable pytree of parameters.

    Subclass it, set parameters and sub-modules as attributes in ``__init__`` (or declare
    annotated fields and let a dataclass ``__init__`` be generated), and write
    ``forward`` (or ``__call__``). Calling a module runs ``forward`` in the module's
    scope. A field's role (parameter or static) follows its value unless it is declared
    with `tg.nn.field` (``static=True`` / ``static=False``).

    Every module also trains Keras style: ``model.compile(optimizer, loss, metrics)``,
    ``model.fit(x, y, ...)``, ``model.evaluate``, ``model.predict``,
    ``get_weights`` / ``set_weights`` / ``save_weights`` / ``load_weights`` (see
    `compile`; the engine is ``nn/_trainer.py`` on `tracegraph.train`'s loop). The
    trained weights are left in the module itself.

    Example::

        class Affine(tg.nn.Module):
            weight: jax.Array
            bias: jax.Array
            activation: object = tg.relu      # static: functions are not parameters

            def forward(self, x):
                return self.activation(x @ self.weight + self.bias)

        m = Affine(jnp.ones((3, 2)), jnp.zeros(2))
        jax.tree_util.tree_leaves(m)          # [weight, bias]
    """

    # Fields holding a list/tuple whose elements are named 0, 1, ... directly (their
    # scopes and key paths leave the field's own name out), as Sequential's layers.
    _tg_index_fields: typing.ClassVar[frozenset] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_call = cls.__dict__.get("__call__")
        if own_call is not None and not getattr(own_call, "_tg_scoped", False):
            cls.__call__ = _scoped_call(own_call)  # a user-written __call__ runs in scope too
        cls._tg_declared = _own_declarations(cls)
        if _has_custom_init(cls):
            _unwrap_field_defaults(cls)
        elif _declared_fields(cls):
            # Equinox-style: annotated fields and no __init__ give a dataclass __init__.
            dataclasses.dataclass(cls, init=True, repr=False, eq=False)
            if "__init__" in cls.__dict__:
                cls.__init__._tg_generated = True
        _flatten.register(cls)

    # -- calling ----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        with module_scope(id(self), self.__dict__.get(NAME)):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines neither forward nor __call__")

    # -- immutability --------------------------------------------------------------------
    def __setattr__(self, name, value):
        if not self.__dict__.get(INIT):
            if self.__dict__.get(name, _MISSING) is value:
                return  # `model.weight += 1` under no_grad: updated in place, the same object
            if name == "stop_training":  # Keras' flag, which callbacks set during fit
                object.__setattr__(self, name, value)
                return
            raise AttributeError(
                f"cannot set {type(self).__name__}.{name}: modules are immutable after "
                f"__init__; use module.replace({name}=...) or tg.nn.tree_at(...)"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if not self.__dict__.get(INIT):
            raise AttributeError(
                f"cannot delete {type(self).__name__}.{name}: modules are immutable"
            )
        object.__delattr__(self, name)

    def replace(self, **changes) -> Module:
        """A copy with some fields replaced: ``lin.replace(bias=None)``. Child modules
        are named and fields classified (parameter or static) as in ``__init__``; the
        fields left alone keep their classification."""
        fields = field_names(self)
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {unknown}; fields: {fields}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        keep = {f: s for f, s in self.__dict__[SPEC].specs if f not in changes}
        _finish(new, keep)
        return new

    # -- names ------------------------------------------------------------------------
    @property
    def scope_name(self) -> str | None:
        """This module's name in its parent (``fc1``, ``layers.0``), which its call opens
        as a scope; None for a root."""
        return self.__dict__.get(NAME)

    # -- parameters -------------------------------------------------------------------
    def parameters(self) -> list:
        """The parameters (the pytree leaves but the buffers), in flattening order:
        arrays, or leaf tensors that require grad in a module built PyTorch style (no
        ``key=``)."""
        return [x for _, x in self.named_parameters()]

    def named_parameters(self) -> list[tuple[str, object]]:
        """``[("fc1.weight", array), ...]``: each leaf with its dotted path (the names
        `tg.jit` gives graph inputs, after the argument's own name), but the buffers
        (`named_buffers`), as in PyTorch. Parameter tensors take the name, so their
        recorded tapes print ``%fc1.weight``."""
        return [(name, x) for name, x in self._named_leaves() if not is_buffer(x)]

    def buffers(self) -> list:
        """The buffers, in flattening order (see `named_buffers`)."""
        return [x for _, x in self.named_buffers()]

    def named_buffers(self) -> list[tuple[str, object]]:
        """``[("bn.running_mean", variable), ...]``: the leaves that are state the
        forward pass updates rather than parameters an optimizer trains (non-trainable
        `tg.Variable`s, such as a batch norm's running statistics; PyTorch's buffers).
        They are pytree leaves (`tg.jit` inputs) and in ``state_dict``, not in
        ``parameters()``."""
        return [(name, x) for name, x in self._named_leaves() if is_buffer(x)]

    def _named_leaves(self) -> list[tuple[str, object]]:
        """Every leaf with its dotted path: the parameters and the buffers."""
        out = []
        for p, x in jax.tree_util.tree_flatten_with_path(self, is_leaf=_is_tensor)[0]:
            name = path_name(p)
            if isinstance(x, Tensor) and x._trace.free and x.is_leaf:
                x._value.name = name
            out.append((name, x))
        return out

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """In place: make every float parameter a leaf tensor with ``requires_grad``
        (turning arrays into tensors first), for training with ``.backward()`` a module
        built or trained functionally. Returns self."""
        to_parameters(self)
        for x in self.parameters():
            if isinstance(x, Tensor) and x._trace.free and x.is_leaf and is_inexact(x.dtype):
                x.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the ``.grad`` of every parameter tensor (PyTorch's ``zero_grad``)."""
        for x in self.parameters():
            if isinstance(x, Tensor) and x._trace.free:
                if set_to_none or x.grad is None:
                    x.grad = None
                else:
                    x.grad.zero_()

    def state_dict(self) -> dict:
        """``{"fc1.weight": array, ...}``: every parameter's and buffer's current array by
        its path (plain JAX arrays: a copy of the values, detached from any tape)."""
        return {name: jnp.asarray(x._data if isinstance(x, Tensor) else x) for name, x in self._named_leaves()}

    def load_state_dict(self, state: dict, strict: bool = True):
        """Load arrays by path, in place (parameter tensors keep their identity, so an
        optimizer holding them sees the new values). ``strict``: the keys must match
        exactly. Returns ``(missing_keys, unexpected_keys)``."""
        own = dict(self._named_leaves())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        replacements = {}
        for name, x in own.items():
            if name not in state:
                continue
            new = state[name]
            new = new._data if isinstance(new, Tensor) and new._trace.free else new
            if tuple(np.shape(new)) != tuple(np.shape(x)):
                raise ValueError(
                    f"load_state_dict: {name} has shape {list(np.shape(new))} in the state, "
                    f"{list(np.shape(x))} in the module"
                )
            if isinstance(x, Tensor) and x._trace.free:
                x._data = jnp.asarray(new, x.dtype)
            else:
                replacements[name] = jnp.asarray(new, x.dtype)
        if replacements:
            _replace_leaves(self, replacements)
        return missing, unexpected

    def trainable_mask(self) -> list[bool]:
        """One bool per leaf (in flattening order): whether an optimizer trains it (see
        `trainable_mask`; Keras-style ``fit`` trains those and carries the others as
        state)."""
        return trainable_mask(self)

    def num_parameters(self) -> int:
        """The number of scalars in all parameters."""
        return sum(math.prod(np.shape(x)) for x in self.parameters())

    def children(self) -> list[Module]:
        """The direct sub-modules, in field order (through lists, tuples and dicts)."""
        return [sub for field in field_names(self) for sub in modules_in(self.__dict__[field])]

    def named_modules(self, prefix: str = "") -> list[tuple[str, Module]]:
        """``[("", self), ("fc1", fc1), ("layers.0", ...), ...]``: this module and its
        descendants with their scope paths, parents first."""
        out = [(prefix, self)]
        for sub in self.children():
            out.extend(sub.named_modules(_join(prefix, sub.scope_name or "")))
        return out

    def modules(self) -> list[Module]:
        """This module and its descendants, parents first (PyTorch's ``modules()``)."""
        return [m for _, m in self.named_modules()]

    def named_children(self) -> list[tuple[str, Module]]:
        """``[("fc1", fc1), ...]``: the direct sub-modules with their names."""
        return [((sub.scope_name or "").rsplit(".", 1)[-1], sub) for sub in self.children()]

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``"encoder.layers.0"``); ``""`` is self."""
        for name, m in self.named_modules():
            if name == target:
                return m
        raise AttributeError(f"{type(self).__name__} has no sub-module {target!r}")

    def get_parameter(self, target: str):
        """The parameter at dotted path ``target`` (``"fc1.weight"``)."""
        for name, x in self.named_parameters():
            if name == target:
                return x
        raise AttributeError(f"{type(self).__name__} has no parameter {target!r}")

    def apply(self, fn) -> Module:
        """Call ``fn`` on every sub-module, children before parents, then on this module
        (PyTorch's ``model.apply(init_weights)``); returns self."""
        for sub in self.children():
            sub.apply(fn)
        fn(self)
        return self

    # -- registering, as PyTorch's __init__ code does -----------------------------------
    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A buffer: state the module keeps but does not train (a non-trainable
        `tg.Variable` leaf, as batch norm's running statistics; in ``state_dict``, not in
        ``parameters()``). In ``__init__``, as modules are immutable after it;
        ``persistent=False`` is taken as True (every leaf is saved)."""
        self._register(name, None if tensor is None else Variable(tensor, trainable=False), "register_buffer")

    def register_parameter(self, name: str, param) -> None:
        """A parameter (`tg.nn.Parameter`, or None), in ``__init__``."""
        self._register(name, param, "register_parameter")

    def add_module(self, name: str, module) -> None:
        """A sub-module (or None), in ``__init__``."""
        self._register(name, module, "add_module")

    register_module = add_module

    def _register(self, name, value, what):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{what}: the name must be a non-empty string without dots, got {name!r}")
        if not self.__dict__.get(INIT):
            raise AttributeError(
                f"{what}({name!r}) on a built {type(self).__name__}: modules are immutable "
                "after __init__; register it there"
            )
        setattr(self, name, value)

    # -- devices and dtypes, in place ---------------------------------------------------
    @public("to")
    def to(self, *args, **kwargs) -> Module:
        """PyTorch's ``model.to(device)``, ``model.to(dtype)``, ``model.to(device,
        dtype)``, ``model.to(tensor)``: in place, every parameter and buffer moved to the
        device (`tg.device`; JAX's ``device_put``) and its floating values converted to
        the dtype (integer leaves keep theirs, as in PyTorch). Parameter tensors keep
        their identity, so an optimizer built on them sees the change. Returns self."""
        from ...frontend.devices import place, to_arguments
        from ...frontend.fn_creation import canonical_dtype

        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        device, dtype = to_arguments(args, device, dtype)
        dt = None if dtype is None else np.dtype(canonical_dtype(dtype))
        if dt is not None and not is_inexact(dt):
            raise TypeError(f"{type(self).__name__}.to() only accepts floating dtypes, got {dtype_name(dt)}")
        replacements = {}
        for name, x in self._named_leaves():
            free = isinstance(x, Tensor) and x._trace.free
            arr = x._data if free else x
            if not hasattr(arr, "dtype"):
                continue
            new = arr
            if dt is not None and is_inexact(arr.dtype) and np.dtype(arr.dtype) != dt:
                new = jnp.asarray(new, dt)
            if device is not None:
                new = place(jnp.asarray(new), device)
            if new is arr:
                continue
            if free:
                _set_tensor_array(x, new)
            else:
                replacements[name] = new
        if replacements:
            _replace_leaves(self, replacements)
        return self

    def cuda(self, device=None) -> Module:
        """``self.to(tg.device("cuda", device))``."""
        from ...frontend.devices import device as _device

        return self.to(_device("cuda", None if device is None else _device(device).index))

    def cpu(self) -> Module:
        return self.to("cpu")

    def float(self) -> Module:  # noqa: A003 - PyTorch's name
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    def bfloat16(self) -> Module:
        return self.to("bf16")

    def type(self, dst_type) -> Module:  # noqa: A003 - PyTorch's name
        return self.to(dst_type)

    # -- train / eval -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set every ``training`` flag (Dropout, MultiHeadAttention) to ``mode``, in
        place, and return the module (PyTorch's ``model.train()``). The flag is static
        data, so `tg.jit` retraces for a changed mode."""
        _set_training(self, bool(mode))
        return self

    def eval(self) -> Module:
        """``self.train(False)``: dropout layers become the identity, in place."""
        return self.train(False)

    @property
    def training(self) -> bool:
        """A layer's own ``training`` flag; for a model, True unless some flag inside is
        off (``model.eval()``)."""
        own = self.__dict__.get("training")
        if isinstance(own, bool):
            return own
        flags = [m.__dict__["training"] for _, m in self.named_modules()
                 if isinstance(m.__dict__.get("training"), bool)]
        return all(flags)

    @training.setter
    def training(self, mode):
        if not self.__dict__.get(INIT):
            raise AttributeError(
                f"cannot set {type(self).__name__}.training: use model.train() / model.eval()"
            )
        self.__dict__["training"] = mode

    # -- Keras-style training (the engine: nn/_trainer.py on tracegraph.train's Loop) ------
    @public("compile", kind=TrainingError)
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, *, mode: str = "jit",
                run_eagerly: bool = False) -> None:
        """Configure Keras-style training: ``model.compile(optimizer, loss, metrics)``.

        Arguments:
          optimizer: ``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adamw"`` or ``"adagrad"``
            (Keras 3's defaults: learning rate 0.001, SGD's 0.01; the arithmetic is
            optax's), a functional `tg.optim` optimizer (``tg.optim.adam(1e-3)``, any
            optax transformation), or a Keras-style optimizer object with a
            ``learning_rate`` (``tg.optimizers.Adam(1e-3)``: its settings, in optax's
            arithmetic).
          loss: a Keras name (``"sparse_categorical_crossentropy"``,
            ``"categorical_crossentropy"``, ``"binary_crossentropy"``, ``"mse"``,
            ``"mae"``, ``"huber"``), a `tg.losses` object
            (``tg.losses.SparseCategoricalCrossentropy(from_logits=True)``), a function
            ``loss(y_true, y_pred)`` (Keras' argument order; one value per sample, or a
            scalar), or a PyTorch-style `tg.nn` loss module (``tg.nn.CrossEntropyLoss()``,
            called as ``criterion(y_pred, y_true)``). As in Keras the cross-entropy names
            expect probabilities (a softmax or sigmoid output); for a model that ends in
            logits use a loss object with ``from_logits=True`` or a `tg.nn` loss.
          metrics: a list of Keras names (``"accuracy"`` — binary, sparse or categorical
            accuracy chosen from the shapes, as Keras does —, ``"mae"``, ``"mse"``,
            ``"sparse_categorical_accuracy"`` ...) or functions ``(y_true, y_pred)``.
          mode: how the training step runs: ``"jit"`` (tg.jit: the whole step —
            forward, IR backward, optimizer update — compiled once), ``"interpret"`` (the
            same graph, node by node), ``"eager"`` (tg.eager, define-by-run) or
            ``"compile"`` (tg.compile). Keras' ``run_eagerly=True`` means ``"eager"``.

        ``model.optimizer`` is then the compiled optimizer; its ``learning_rate`` can be
        set at any time without recompiling. Compiling again starts a fresh optimizer
        state.

        Example::

            model = tg.nn.Sequential([tg.nn.Linear(64, 32), tg.relu, tg.nn.Linear(32, 10),
                                      tg.nn.Softmax()])
            model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        """
        self.__dict__[KERAS] = _trainer.Trainer(self, optimizer, loss, metrics,
                                                "eager" if run_eagerly else mode)

    def _keras(self, op: str) -> _trainer.Trainer:
        trainer = self.__dict__.get(KERAS)
        if trainer is None:
            raise TrainingError(f"{op}: you must call model.compile(optimizer, loss) before "
                                f"model.{op}")
        return trainer

    @public("fit", kind=TrainingError)
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1, class_weight=None, sample_weight=None):
        """Train for ``epochs`` passes over the data, Keras style; the trained weights
        stay in the model. Returns a `tg.callbacks.History` (``.history``:
        ``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}`` per epoch;
        ``.epoch``), also kept as ``model.history``.

        Arguments:
          x, y: numpy arrays, nested lists, tensors, or dicts / tuples of them (a model
            with several inputs gets the dict or tuple); all of the same length. Or ``x``
            alone as an iterable of batches: ``(x, y)`` pairs or ``{"x", "y"}`` dicts
            (`tg.data.batches`), re-iterated each epoch.
          batch_size: examples per step (default 32). The last, smaller batch of an
            epoch is padded and its padding masked out of the loss and metrics, so the
            step compiles once.
          epochs, initial_epoch: train epochs ``initial_epoch .. epochs - 1``.
          verbose: ``"auto"`` or 1: a tqdm progress bar per epoch (loss, metrics,
            examples per second, ETA); 2: one line per epoch; 0: silent.
          callbacks: `tg.callbacks` objects (EarlyStopping, ModelCheckpoint,
            LearningRateScheduler ...).
          validation_split: the last fraction of ``x``/``y`` (before shuffling) held out
            and evaluated after each epoch (``val_loss``, ``val_accuracy``, ...).
          validation_data: a tuple ``(x_val, y_val)``, or an iterable of batches (any
            non-tuple: `tg.data.batches`, a list of ``(x, y)`` pairs), instead.
          shuffle: a new random order every epoch, from a generator seeded when the
            model was compiled (`tg.manual_seed` makes it reproducible).
          steps_per_epoch: steps per epoch (with arrays the batches continue from one
            epoch into the next).
          validation_steps, validation_batch_size, validation_freq: as in Keras.

        Keras trains in training mode and evaluates in inference mode: the step calls
        the model with ``train=True`` (or ``training=True``) and a fresh dropout
        ``key=`` per step when its call takes them, whatever ``model.train()`` /
        ``model.eval()`` set. ``class_weight`` and ``sample_weight`` are not supported.

        Example::

            ds = tg.data.load_digits()
            history = model.fit(ds.x_train, ds.y_train, epochs=10, batch_size=32,
                                validation_split=0.1)
            history.history["val_accuracy"][-1]
        """
        if class_weight is not None or sample_weight is not None:
            raise TrainingError("fit: class_weight and sample_weight are not supported yet")
        return self._keras("fit").fit(
            self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
            callbacks=callbacks, validation_split=validation_split,
            validation_data=validation_data, shuffle=shuffle, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq)

    @public("evaluate", kind=TrainingError)
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics over ``x``/``y`` (or an iterable of batches), in
        inference mode: a float when there are no metrics, else ``[loss, metric, ...]``
        in the compiled order, or ``{"loss": ..., "accuracy": ...}`` with
        ``return_dict=True``. Each value is the mean over all examples.

        Example::

            loss, acc = model.evaluate(ds.x_test, ds.y_test, verbose=0)
        """
        return self._keras("evaluate").evaluate(
            self, x, y, batch_size=batch_size, verbose=verbose, steps=steps,
            callbacks=callbacks, return_dict=return_dict)

    @public("predict", kind=TrainingError)
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for ``x`` (arrays, or an iterable of batches) as one numpy
        array (or pytree of arrays), concatenated over batches of ``batch_size``, in
        inference mode; compiled once (the last batch is padded).

        Example::

            probs = model.predict(ds.x_test, verbose=0)       # (359, 10)
        """
        trainer = self.__dict__.get(KERAS)
        if trainer is None:  # Keras predicts with an uncompiled model: no loss needed
            trainer = _trainer.Trainer(self, "sgd", "mse", None, "jit")
        return trainer.predict(
            self, x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    @property
    def stop_training(self) -> bool:
        """Keras' flag: a callback sets it to end ``fit`` after the current step."""
        return bool(self.__dict__.get(STOP, False))

    @stop_training.setter
    def stop_training(self, value):
        self.__dict__[STOP] = bool(value)

    def __getattr__(self, name):
        # Keras' model.optimizer and model.history, found only when no field of that name
        # exists (so they never shadow a user's attribute)
        if name in ("optimizer", "history"):
            trainer = self.__dict__.get(KERAS)
            return None if trainer is None else getattr(trainer, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_weights(self) -> list:
        """The parameters and buffers (every leaf) as numpy arrays, in flattening order
        (Keras' ``get_weights``, non-trainable weights included)."""
        return [np.asarray(x._data if isinstance(x, Tensor) else x) for _, x in self._named_leaves()]

    @public("set_weights", kind=TrainingError)
    def set_weights(self, weights) -> None:
        """Set every parameter, in place, from a list in flattening order (Keras'
        ``set_weights``; `get_weights` gives one). Parameter tensors keep their
        identity; array leaves are swapped in their modules."""
        assign_leaves(self, list(weights))

    def _tg_assign_leaves(self, leaves) -> None:
        """Every leaf (parameters, buffers, state) from a list in flattening order: how
        ``fit`` leaves the trained arrays in the model (subclasses may narrow
        ``set_weights``, as Keras layers do; this stays whole)."""
        assign_leaves(self, list(leaves))

    @public("save_weights", kind=TrainingError)
    def save_weights(self, filepath) -> None:
        """Save the parameters to ``filepath`` as a `tg.checkpoint` (atomic, no pickle);
        `load_weights` or ``tg.checkpoint.load(filepath, like=model)`` reads it."""
        checkpoint.save(filepath, self)

    @public("load_weights", kind=TrainingError)
    def load_weights(self, filepath) -> None:
        """Load parameters saved by `save_weights` (or `tg.callbacks.ModelCheckpoint`) in
        place, checking every name, shape and dtype."""
        loaded = checkpoint.load(filepath, like=self)
        assign_leaves(self, jax.tree_util.tree_leaves(loaded))

    # -- printing ---------------------------------------------------------------------
    def __repr__(self):
        return _repr(self, 0)


def path_name(path) -> str:
    """A jax key path as a dotted name: ``fc1.weight``, ``layers.0.bias``."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return ".".join(parts)


# -- walking the module tree ------------------------------------------------------------------


def modules_in(value):
    """The Modules in a field's value (itself, or through lists, tuples and dicts)."""
    if isinstance(value, Module):
        yield value
    elif type(value) in (list, tuple):
        for x in value:
            yield from modules_in(x)
    elif type(value) is dict:
        for x in value.values():
            yield from modules_in(x)


def _has_modules(value) -> bool:
    return next(modules_in(value), None) is not None


def _set_training(module, mode):
    """In place, through every sub-module: the ``training`` flags are static fields, read
    when the module is flattened, so writing them is all a mode change takes."""
    for field in field_names(module):
        v = module.__dict__[field]
        if field == "training" and isinstance(v, bool):
            module.__dict__[field] = mode
            _restatic(module, field)
        else:
            for sub in modules_in(v):
                _set_training(sub, mode)


def _restatic(module, field):
    """Refresh the layout's record of a static field written in place."""
    keep = {f: s for f, s in module.__dict__[SPEC].specs if f != field}
    _finish(module, keep)


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def is_buffer(x) -> bool:
    """Whether a leaf is a buffer (state, not a parameter): a non-trainable `tg.Variable`."""
    return isinstance(x, Variable) and not x.trainable


def to_parameters(module) -> None:
    """In place: every float array among the module's parameters (through sub-modules,
    lists, tuples, dicts) becomes a leaf tensor that requires grad."""
    from ...frontend.tape import leaf

    def convert(v):
        if isinstance(v, Module):
            to_parameters(v)
            return v
        if type(v) in (list, tuple):
            return type(v)(convert(x) for x in v)
        if type(v) is dict:
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, (jax.Array, np.ndarray)) and is_inexact(v.dtype):
            return leaf(v, requires_grad=True)
        return v

    for field in field_names(module):
        module.__dict__[field] = convert(module.__dict__[field])


def assign_leaves(module, leaves) -> None:
    """In place: the module's pytree leaves, in flattening order, take the arrays
    ``leaves``. A parameter tensor keeps its identity and gets the new array as its data
    (optimizers and closures holding it see the new values); an array leaf is swapped in
    its parent module's field, the modules staying the same objects.

    NOTE: this is the private hook Keras-style training uses to leave the trained weights
    in the model (``fit``, ``set_weights``, ``load_weights``); an immutable module is
    changed in place only here and in ``load_state_dict``.
    """
    named = module._named_leaves()
    if len(leaves) != len(named):
        raise ValueError(f"{type(module).__name__} has {len(named)} parameters, got "
                         f"{len(leaves)} arrays")
    replacements = {}
    for (name, old), new in zip(named, leaves):
        new = new._data if isinstance(new, Tensor) and new._trace.free else new
        if tuple(np.shape(new)) != tuple(np.shape(old)):
            raise ValueError(f"parameter {name} is {list(np.shape(old))}, got an array of "
                             f"shape {list(np.shape(new))}")
        dtype = jax.dtypes.canonicalize_dtype(getattr(old, "dtype", None) or np.asarray(old).dtype)
        new = new if isinstance(new, jax.Array) and new.dtype == dtype else jnp.asarray(new, dtype)
        if isinstance(old, Tensor) and old._trace.free:
            old._data = new
        else:
            replacements[name] = new
    if replacements:
        _replace_leaves(module, replacements)


def _set_tensor_array(t, array) -> None:
    """In place: an imperative tensor (a parameter, a buffer) takes ``array``; its type
    follows a changed dtype, so the graphs it enters next see it."""
    from ...core import type_of
    from ...ir.graph import Value

    old = t._value.type
    t._data = array
    new = type_of(array).with_(weak=False)
    if (new.shape, new.dtype) != (old.shape, old.dtype):
        t._value = Value(new, name=t._value.name)


def _replace_leaves(module, by_name: dict) -> None:
    """In place: the leaves (arrays) named in ``by_name`` take the new arrays."""
    _replace_in(module, "", by_name)


def _replace_in(v, path, by_name):
    if isinstance(v, Module):
        for field in field_names(v):
            sub = path if field in type(v)._tg_index_fields else _join(path, field)
            v.__dict__[field] = _replace_in(v.__dict__[field], sub, by_name)
        return v
    if type(v) in (list, tuple):
        return type(v)(_replace_in(x, _join(path, str(i)), by_name) for i, x in enumerate(v))
    if type(v) is dict:
        return {k: _replace_in(x, _join(path, str(k)), by_name) for k, x in v.items()}
    return by_name.get(path, v)


# -- repr -----------------------------------------------------------------------------------


def _short(x) -> str:
    if isinstance(x, Tensor):
        return str(x.type)
    if is_array(x):
        try:
            dt = dtype_name(np.dtype(x.dtype))
        except (KeyError, TypeError):
            dt = str(x.dtype)
        return f"{dt}[{','.join(str(d) for d in np.shape(x))}]"
    if callable(x) and hasattr(x, "__name__") and not isinstance(x, type):
        return x.__name__
    return repr(x)


def _repr(value, indent) -> str:
    pad = "  " * (indent + 1)
    if isinstance(value, Module):
        parts = [(f, value.__dict__[f]) for f in field_names(value)]
        flat = [f"{f}={_repr(v, indent + 1)}" for f, v in parts]
        one_line = f"{type(value).__name__}({', '.join(flat)})"
        if not any(_has_modules(v) for _, v in parts) and len(one_line) + 2 * indent <= 96:
            return one_line
        body = ",\n".join(pad + s for s in flat)
        return f"{type(value).__name__}(\n{body}\n{'  ' * indent})"
    if type(value) in (list, tuple) and any(_has_modules(x) for x in value):
        open_, close = ("[", "]") if type(value) is list else ("(", ")")
        body = ",\n".join(pad + _repr(x, indent + 1) for x in value)
        return f"{open_}\n{body}\n{'  ' * indent}{close}"
    if type(value) is dict and any(_has_modules(x) for x in value.values()):
        body = ",\n".join(f"{pad}{k!r}: {_repr(x, indent + 1)}" for k, x in value.items())
        return f"{{\n{body}\n{'  ' * indent}}}"
    if type(value) in (list, tuple):
        inner = ", ".join(_repr(x, indent) for x in value)
        return f"[{inner}]" if type(value) is list else f"({inner}{',' if len(value) == 1 else ''})"
    return _short(value)


# -- trainable leaves, and building after __init__ ------------------------------------------

# Keras' layer.trainable = False: a static field (so functional copies of the module, as
# fit's step trains, still know it; a frozen batch norm runs in inference mode)
FROZEN = "_frozen"


def _trainable_leaf(x) -> bool:
    if isinstance(x, Variable):
        return x.trainable
    if isinstance(x, Tensor):
        return bool(getattr(x, "requires_grad", True)) and is_inexact(np.dtype(x.dtype))
    dtype = getattr(x, "dtype", None)
    return dtype is not None and is_inexact(np.dtype(dtype))


def trainable_mask(module) -> list[bool]:
    """One bool per leaf of ``module`` (in ``jax.tree_util.tree_leaves`` order): whether
    an optimizer trains it. A `tg.Variable` trains when ``trainable``, a parameter tensor
    when it requires grad, an array when its dtype is a float one; nothing under a module
    whose ``trainable`` flag is off (Keras' ``layer.trainable = False``)."""
    out: list[bool] = []

    def walk(m, frozen: bool):
        frozen = frozen or bool(m.__dict__.get(FROZEN, False))
        for x in jax.tree_util.tree_leaves(
                m, is_leaf=lambda v: v is not m and isinstance(v, (Module, Tensor))):
            if isinstance(x, Module):
                walk(x, frozen)
            else:
                out.append(not frozen and _trainable_leaf(x))

    walk(module, False)
    return out


@contextlib.contextmanager
def reopened(module):
    """Let a built module take new fields (a Keras layer's weights, made by ``build`` on
    its first call): fields set inside are classified, and the module frozen again, on
    exit, as at the end of ``__init__``."""
    d = module.__dict__
    if d.get(INIT):
        yield module  # still in __init__: nothing to reopen
        return
    d[INIT] = True
    try:
        yield module
    finally:
        _finish(module)
