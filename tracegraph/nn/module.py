"""`Module`: the base class of tracegraph's layers, an immutable dataclass-style pytree.

A Module holds its parameters as attributes. Subclasses register themselves with
``jax.tree_util`` (keys included), so every pytree tool sees the parameters as leaves
named by attribute: ``jax.tree_util.tree_leaves(model)`` lists them, ``tree_map`` makes a
new model, `tg.jit` names the graph inputs ``model.fc1.weight``, optax optimizers take
the model as their params, and `tg.checkpoint` pairs leaves by those names.

Which attributes are parameters (pytree children) and which are hyper-parameters
(static data in the tree definition) is decided once, at the end of ``__init__``, from
the values: arrays (numpy, jax, `Tensor`) and Modules are children, and so are lists,
tuples and dicts holding any; everything else (ints, floats, strings, dtypes, functions,
None) is static. Static values must be hashable or plain containers of such; a change
of a static value is a change of the tree definition, so `tg.jit` retraces for it.

Modules are frozen once ``__init__`` returns: use `Module.replace` (or `tree_at`) to get
a changed copy, as in JAX and Equinox.

Scopes: each child module knows its name in its parent (its attribute name; a list or
dict element is ``attr.index`` or ``attr.key``; the elements of `Sequential` are just
``0``, ``1``, ...). ``module(x)`` runs ``forward`` inside ``tg.scope(name)``, and scopes
nest, so every node a layer makes records its path (``encoder.0.attn``) and the printed
IR shows it after the node's source line. The root module has no name: its nodes carry
no scope of their own. The name is static data, so it survives flattening and tracing.

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
import dataclasses
import functools
import inspect
import math
import numbers
import typing

import jax
import numpy as np

from ..frontend.builder import scope as _scope
from ..frontend.tensor import Tensor
from ..ir.types import dtype_name

__all__ = ["Module", "tree_at"]

_META = "_tg_"  # prefix of the bookkeeping entries in a module's __dict__ (not fields)
_NAME = "_tg_name"
_SPEC = "_tg_spec"
_INIT = "_tg_init"


# -- how a field value splits into pytree children and static data --------------------------


class _Dyn:
    """Spec of a value that is a pytree child as a whole (an array, a Module)."""

    __slots__ = ()

    def __repr__(self):
        return "DYN"


DYN = _Dyn()


class _Static:
    """Spec of a static value; compares and hashes by value (by identity for unhashable
    objects) so that equal hyper-parameters give equal tree definitions."""

    __slots__ = ("_hash", "_key", "value")

    def __init__(self, value):
        self.value = value
        self._key = _hash_key(value)
        self._hash = hash(self._key)

    def __eq__(self, other):
        return self is other or (isinstance(other, _Static) and self._key == other._key)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"static({self.value!r})"


class _Seq:
    """Spec of a list or tuple that holds children among static items."""

    __slots__ = ("items", "kind", "plain")

    def __init__(self, kind, items):
        self.kind, self.items = kind, tuple(items)
        self.plain = all(s is DYN for s in self.items)  # no static item: the value as is

    def __eq__(self, other):
        return isinstance(other, _Seq) and (self.kind, self.items) == (other.kind, other.items)

    def __hash__(self):
        return hash((self.kind, self.items))

    def __repr__(self):
        return f"{self.kind.__name__}{list(self.items)}"


class _Map:
    """Spec of a dict that holds children among static items."""

    __slots__ = ("items", "keys")

    def __init__(self, keys, items):
        self.keys, self.items = tuple(keys), tuple(items)

    def __eq__(self, other):
        return isinstance(other, _Map) and (self.keys, self.items) == (other.keys, other.items)

    def __hash__(self):
        return hash((self.keys, self.items))

    def __repr__(self):
        return f"dict{dict(zip(self.keys, self.items))}"


def _hash_key(v):
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_hash_key(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((_hash_key(k), _hash_key(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return ("set", frozenset(_hash_key(x) for x in v))
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return (type(v), v)


def is_array(x) -> bool:
    """Arrays are parameters: numpy and jax arrays (and jax tracers), numpy scalars,
    `Tensor`s, and ``jax.ShapeDtypeStruct`` placeholders."""
    return isinstance(x, (jax.Array, np.ndarray, np.generic, Tensor, jax.ShapeDtypeStruct))


def _classify(v):
    if is_array(v) or isinstance(v, Module):
        return DYN
    if type(v) in (list, tuple):
        items = [_classify(x) for x in v]
        if any(not isinstance(s, _Static) for s in items):
            return _Seq(type(v), items)
        return _Static(v)
    if type(v) is dict:
        items = [_classify(x) for x in v.values()]
        if any(not isinstance(s, _Static) for s in items):
            return _Map(v.keys(), items)
        return _Static(v)
    if v is None or isinstance(v, (str, bytes, numbers.Number, type, np.dtype)) or callable(v):
        return _Static(v)
    # Another registered pytree (a namedtuple of arrays, an optax state): a child as a
    # whole when it holds arrays.
    leaves = jax.tree_util.tree_leaves(v, is_leaf=lambda x: isinstance(x, Module))
    if leaves and any(is_array(x) or isinstance(x, Module) for x in leaves):
        return DYN
    return _Static(v)


def _dynamic_part(v, spec):
    """The children of a field: the value with its static items replaced by None."""
    if spec is DYN:
        return v
    if isinstance(spec, _Seq):
        if spec.plain:
            return v
        return spec.kind(
            None if isinstance(s, _Static) else _dynamic_part(x, s) for x, s in zip(v, spec.items)
        )
    return {
        k: (None if isinstance(s, _Static) else _dynamic_part(v[k], s))
        for k, s in zip(spec.keys, spec.items)
    }


def _combine(d, spec):
    """Inverse of `_dynamic_part`: children and static items back into the value."""
    if spec is DYN:
        return d
    if isinstance(spec, _Static):
        return spec.value
    if isinstance(spec, _Seq):
        return spec.kind(_combine(x, s) for x, s in zip(d, spec.items))
    return {k: _combine(d[k], s) for k, s in zip(spec.keys, spec.items)}


# -- the pytree registration ----------------------------------------------------------------


def _fields(module) -> list[str]:
    return [k for k in module.__dict__ if not k.startswith(_META)]


class _Layout:
    """A module's field layout: each field's spec, in order, plus what flattening needs
    precomputed (the dynamic fields and their keys). Shared by a module and every copy
    that `jax.tree_util` unflattens from it; compares by value, hash cached.

    NOTE (speed): `tg.jit` and `jax.jit` flatten the model on every call, so the common
    case (every dynamic field an array or a module) is a single list comprehension.
    """

    __slots__ = ("_hash", "dynamic", "names", "simple", "specs")

    def __init__(self, specs, index_fields):
        self.specs = tuple(specs)
        # (field, spec, key, whether its elements are children of the module itself)
        self.dynamic = tuple(
            (f, s, jax.tree_util.GetAttrKey(f), f in index_fields and isinstance(s, _Seq))
            for f, s in self.specs if not isinstance(s, _Static)
        )
        self.names = tuple(f for f, *_ in self.dynamic)
        self.simple = all(s is DYN for _, s, _, _ in self.dynamic)
        self._hash = hash(self.specs)

    def __eq__(self, other):
        return self is other or (isinstance(other, _Layout) and self.specs == other.specs)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return ", ".join(f"{f}={s!r}" for f, s in self.specs)


def _flatten_with_keys(module):
    d = module.__dict__
    layout = d[_SPEC]
    children = []
    for field, s, key, expand in layout.dynamic:
        value = _dynamic_part(d[field], s)
        if expand:
            # e.g. Sequential.layers: elements are children 0, 1, ... of the module itself
            children.extend(
                (jax.tree_util.SequenceKey(i), x)
                for i, (x, si) in enumerate(zip(value, s.items))
                if not isinstance(si, _Static)
            )
        else:
            children.append((key, value))
    return children, (d[_NAME], layout)


def _flatten(module):
    d = module.__dict__
    layout = d[_SPEC]
    if layout.simple:
        return [d[f] for f in layout.names], (d[_NAME], layout)
    children = []
    for field, s, _, expand in layout.dynamic:
        value = d[field] if s is DYN else _dynamic_part(d[field], s)
        if expand:
            children.extend(x for x, si in zip(value, s.items) if not isinstance(si, _Static))
        else:
            children.append(value)
    return children, (d[_NAME], layout)


def _unflatten(cls, aux, children):
    name, layout = aux
    obj = object.__new__(cls)
    d = obj.__dict__
    it = iter(children)
    for field, s in layout.specs:
        if isinstance(s, _Static):
            d[field] = s.value
        elif s is DYN:
            d[field] = next(it)
        elif field in cls._tg_index_fields and isinstance(s, _Seq):
            d[field] = s.kind(
                si.value if isinstance(si, _Static) else _combine(next(it), si) for si in s.items
            )
        else:
            d[field] = _combine(next(it), s)
    d[_NAME] = name
    d[_SPEC] = layout
    return obj


# -- naming children --------------------------------------------------------------------------


def _renamed(module, name):
    if module.__dict__.get(_NAME) == name:
        return module
    new = object.__new__(type(module))
    new.__dict__.update(module.__dict__)
    new.__dict__[_NAME] = name
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
    specs = []
    for field in _fields(module):
        prefix = "" if field in cls._tg_index_fields else field
        d[field] = _name_children(d[field], prefix)
        old = keep.get(field) if keep else None
        specs.append((field, old if old is not None else _classify(d[field])))
    d[_SPEC] = _Layout(specs, cls._tg_index_fields)
    d.pop(_INIT, None)


class _ModuleMeta(type):
    def __call__(cls, *args, **kwargs):
        obj = cls.__new__(cls)
        obj.__dict__[_NAME] = None
        obj.__dict__[_INIT] = True
        obj.__init__(*args, **kwargs)
        _check_fields(obj)
        _finish(obj)
        return obj


@functools.cache
def _annotated_fields(cls):
    """Annotated instance fields over the class's Module bases: name -> has a default."""
    out = {}
    for base in reversed(cls.__mro__):
        if base is Module or not issubclass(base, Module):
            continue
        for name, ann in inspect.get_annotations(base).items():
            if name.startswith(_META) or "ClassVar" in str(ann):
                continue
            out[name] = name in base.__dict__ or hasattr(base, name)
    return out


def _check_fields(obj):
    d = obj.__dict__
    for name, has_default in _annotated_fields(type(obj)).items():
        if name in d:
            continue
        if has_default:
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


_ACTIVE: list[int] = []  # ids of the modules whose scope is open (innermost last)


@contextlib.contextmanager
def _module_scope(module):
    name = module.__dict__.get(_NAME)
    if not name or (_ACTIVE and _ACTIVE[-1] == id(module)):
        yield
        return
    _ACTIVE.append(id(module))
    try:
        with _scope(name):
            yield
    finally:
        _ACTIVE.pop()


def _scoped_call(call):
    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        with _module_scope(self):
            return call(self, *args, **kwargs)

    __call__._tg_scoped = True
    return __call__


# -- the base class -------------------------------------------------------------------------


class Module(metaclass=_ModuleMeta):
    """Base class of layers and models: an immutable pytree of parameters.

    Subclass it, set parameters and sub-modules as attributes in ``__init__`` (or declare
    annotated fields and let a dataclass ``__init__`` be generated), and write
    ``forward`` (or ``__call__``). Calling a module runs ``forward`` in the module's
    scope.

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
        if not _has_custom_init(cls) and _annotated_fields(cls):
            # Equinox-style: annotated fields and no __init__ give a dataclass __init__.
            dataclasses.dataclass(cls, init=True, repr=False, eq=False)
            if "__init__" in cls.__dict__:
                cls.__init__._tg_generated = True
        jax.tree_util.register_pytree_with_keys(
            cls,
            _flatten_with_keys,
            lambda aux, children, cls=cls: _unflatten(cls, aux, children),
            _flatten,
        )

    # -- calling ----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        with _module_scope(self):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines neither forward nor __call__")

    # -- immutability --------------------------------------------------------------------
    def __setattr__(self, name, value):
        if not self.__dict__.get(_INIT):
            raise AttributeError(
                f"cannot set {type(self).__name__}.{name}: modules are immutable after "
                f"__init__; use module.replace({name}=...) or tg.nn.tree_at(...)"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if not self.__dict__.get(_INIT):
            raise AttributeError(
                f"cannot delete {type(self).__name__}.{name}: modules are immutable"
            )
        object.__delattr__(self, name)

    def replace(self, **changes) -> Module:
        """A copy with some fields replaced: ``lin.replace(bias=None)``. Child modules
        are named and fields classified (parameter or static) as in ``__init__``; the
        fields left alone keep their classification."""
        fields = _fields(self)
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {unknown}; fields: {fields}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        keep = {f: s for f, s in self.__dict__[_SPEC].specs if f not in changes}
        _finish(new, keep)
        return new

    # -- names ------------------------------------------------------------------------
    @property
    def scope_name(self) -> str | None:
        """This module's name in its parent (``fc1``, ``layers.0``), which its call opens
        as a scope; None for a root."""
        return self.__dict__.get(_NAME)

    # -- parameters -------------------------------------------------------------------
    def parameters(self) -> list:
        """The parameter arrays (the pytree leaves), in flattening order."""
        return jax.tree_util.tree_leaves(self)

    def named_parameters(self) -> list[tuple[str, object]]:
        """``[("fc1.weight", array), ...]``: each leaf with its dotted path (the names
        `tg.jit` gives graph inputs, after the argument's own name)."""
        return [(path_name(p), x) for p, x in jax.tree_util.tree_flatten_with_path(self)[0]]

    def num_parameters(self) -> int:
        """The number of scalars in all parameters."""
        return sum(math.prod(np.shape(x)) for x in self.parameters())

    def children(self) -> list[Module]:
        """The direct sub-modules, in field order (through lists, tuples and dicts)."""
        return [sub for field in _fields(self) for sub in _modules_in(self.__dict__[field])]

    def named_modules(self, prefix: str = "") -> list[tuple[str, Module]]:
        """``[("", self), ("fc1", fc1), ("layers.0", ...), ...]``: this module and its
        descendants with their scope paths, parents first."""
        out = [(prefix, self)]
        for sub in self.children():
            out.extend(sub.named_modules(_join(prefix, sub.scope_name or "")))
        return out

    # -- train / eval -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """A copy with every ``training`` flag (Dropout, MultiHeadAttention) set to
        ``mode`` (PyTorch's ``model.train()``, but returning a new model)."""
        return _set_training(self, bool(mode))

    def eval(self) -> Module:
        """``self.train(False)``: a copy whose dropout layers are the identity."""
        return _set_training(self, False)

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


def _modules_in(value):
    if isinstance(value, Module):
        yield value
    elif type(value) in (list, tuple):
        for x in value:
            yield from _modules_in(x)
    elif type(value) is dict:
        for x in value.values():
            yield from _modules_in(x)


def _map_modules(value, fn):
    if isinstance(value, Module):
        return fn(value)
    if type(value) in (list, tuple):
        return type(value)(_map_modules(x, fn) for x in value)
    if type(value) is dict:
        return {k: _map_modules(x, fn) for k, x in value.items()}
    return value


def _set_training(module, mode):
    changes = {}
    for field in _fields(module):
        v = module.__dict__[field]
        if field == "training" and isinstance(v, bool):
            changes[field] = mode
        elif _modules_in_any(v):
            changes[field] = _map_modules(v, lambda m: _set_training(m, mode))
    return module.replace(**changes) if changes else module


# -- tree_at ----------------------------------------------------------------------------


def tree_at(where, module, value):
    """A copy of ``module`` with the node that ``where(module)`` selects replaced by
    ``value`` (Equinox's ``tree_at`` for modules): a parameter array or a sub-module,
    reached through attributes, list/tuple items and dict items.

    Example::

        model = tg.nn.tree_at(lambda m: m.fc1.bias, model, jnp.zeros(128))
    """
    target = where(module)
    found, new = _replace_node(module, target, value)
    if not found:
        raise ValueError(
            "tree_at: the node selected by `where` is not an attribute, list item or dict "
            "item of the module tree (select a parameter or a sub-module)"
        )
    return new


def _replace_node(node, target, value):
    if node is target:
        return True, value
    if isinstance(node, Module):
        changes = {}
        for field in _fields(node):
            found, new = _replace_node(node.__dict__[field], target, value)
            if found:
                changes[field] = new
        return (True, node.replace(**changes)) if changes else (False, node)
    if type(node) in (list, tuple):
        results = [_replace_node(x, target, value) for x in node]
        if any(f for f, _ in results):
            return True, type(node)(x for _, x in results)
    elif type(node) is dict:
        results = {k: _replace_node(x, target, value) for k, x in node.items()}
        if any(f for f, _ in results.values()):
            return True, {k: x for k, (_, x) in results.items()}
    return False, node


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
        parts = [(f, value.__dict__[f]) for f in _fields(value)]
        flat = [f"{f}={_repr(v, indent + 1)}" for f, v in parts]
        one_line = f"{type(value).__name__}({', '.join(flat)})"
        if not any(_modules_in_any(v) for _, v in parts) and len(one_line) + 2 * indent <= 96:
            return one_line
        body = ",\n".join(pad + s for s in flat)
        return f"{type(value).__name__}(\n{body}\n{'  ' * indent})"
    if type(value) in (list, tuple) and any(_modules_in_any(x) for x in value):
        open_, close = ("[", "]") if type(value) is list else ("(", ")")
        body = ",\n".join(pad + _repr(x, indent + 1) for x in value)
        return f"{open_}\n{body}\n{'  ' * indent}{close}"
    if type(value) is dict and any(_modules_in_any(x) for x in value.values()):
        body = ",\n".join(f"{pad}{k!r}: {_repr(x, indent + 1)}" for k, x in value.items())
        return f"{{\n{body}\n{'  ' * indent}}}"
    if type(value) in (list, tuple):
        inner = ", ".join(_repr(x, indent) for x in value)
        return f"[{inner}]" if type(value) is list else f"({inner}{',' if len(value) == 1 else ''})"
    return _short(value)


def _modules_in_any(value) -> bool:
    return next(_modules_in(value), None) is not None
