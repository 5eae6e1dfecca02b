"""Fields of a Module and how each one splits into pytree children and static data.

A field is an attribute a module sets in ``__init__`` (or an annotated dataclass field).
Its value is classified once, when the module is built: arrays and modules are children
(the parameters), plain Python data is static (in the tree definition), and lists, tuples
and dicts hold a mix (see `classify`). `field` declares an explicit choice instead:
``field(static=True)`` makes a value static data even when it is an array, and
``field(static=False)`` makes it a child even when it is a Python float.

The classification of a field is a *spec*: `DYN` (a child as a whole), `StaticSpec`
(static data, compared by value), `SeqSpec` / `MapSpec` (a list, tuple or dict with
children among its static items). `dynamic_part` and `combine` take a value apart by
its spec and put it back together.
"""

from __future__ import annotations

import dataclasses
import numbers

import jax
import numpy as np

from ...core import Tensor

# Bookkeeping entries in a module's __dict__, next to its fields (never fields themselves).
META = "_tg_"  # their prefix
NAME = "_tg_name"  # the module's name in its parent (its scope), or None for a root
SPEC = "_tg_spec"  # the `Layout` of its fields, set when __init__ returns
INIT = "_tg_init"  # present while __init__ runs (the module is not frozen yet)

_STATIC = "tracegraph.static"  # the metadata key `field` stores ``static`` under


def field(*, static: bool | None = None, **kwargs):
    """Declare a module field with an explicit role (Equinox's ``eqx.field``).

    Arguments:
        static: ``True``: the value is static data of the pytree (part of its tree
            definition, compared by value, or by identity for arrays and other unhashable
            values) even when it is an array; `tg.jit` bakes it into the graph as a
            constant and retraces when it changes. ``False``: the value is a pytree child
            as a whole (a leaf, for a number) even when it is a Python scalar; `tg.jit`
            makes it a graph input. ``None`` (default): classified by its value.
        **kwargs: passed to ``dataclasses.field`` (``default``, ``default_factory``, ...).

    Returns:
        A ``dataclasses.Field``, to assign to an annotated class attribute.

    Example::

        class Embed(tg.nn.Module):
            weight: jax.Array
            positions: jax.Array = tg.nn.field(static=True)   # a constant, not trained
            temperature: float = tg.nn.field(static=False, default=1.0)  # a graph input
    """
    if static is not None and not isinstance(static, bool):
        raise TypeError(f"tg.nn.field(static=...) takes True, False or None, not {static!r}")
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_STATIC] = static
    return dataclasses.field(metadata=metadata, **kwargs)


def static_of(f: dataclasses.Field) -> bool | None:
    """The ``static=`` a `field` was declared with (None: decided by value)."""
    return f.metadata.get(_STATIC)


def field_names(module) -> list[str]:
    """The fields of a module instance, in the order ``__init__`` set them."""
    return [k for k in module.__dict__ if not k.startswith(META)]


def is_array(x) -> bool:
    """Arrays are parameters: numpy and jax arrays (and jax tracers), numpy scalars,
    `Tensor`s, and ``jax.ShapeDtypeStruct`` placeholders."""
    return isinstance(x, (jax.Array, np.ndarray, np.generic, Tensor, jax.ShapeDtypeStruct))


# -- specs ----------------------------------------------------------------------------------


class _DynSpec:
    """Spec of a value that is a pytree child as a whole (an array, a Module)."""

    __slots__ = ()

    def __repr__(self):
        return "DYN"


DYN = _DynSpec()


class StaticSpec:
    """Spec of a static value; compares and hashes by value (by identity for unhashable
    objects) so that equal hyper-parameters give equal tree definitions."""

    __slots__ = ("_hash", "_key", "value")

    def __init__(self, value):
        self.value = value
        self._key = _hash_key(value)
        self._hash = hash(self._key)

    def __eq__(self, other):
        return self is other or (isinstance(other, StaticSpec) and self._key == other._key)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"static({self.value!r})"


class SeqSpec:
    """Spec of a list or tuple that holds children among static items."""

    __slots__ = ("items", "kind", "plain")

    def __init__(self, kind, items):
        self.kind, self.items = kind, tuple(items)
        self.plain = all(s is DYN for s in self.items)  # no static item: the value as is

    def __eq__(self, other):
        return isinstance(other, SeqSpec) and (self.kind, self.items) == (other.kind, other.items)

    def __hash__(self):
        return hash((self.kind, self.items))

    def __repr__(self):
        return f"{self.kind.__name__}{list(self.items)}"


class MapSpec:
    """Spec of a dict that holds children among static items."""

    __slots__ = ("items", "keys")

    def __init__(self, keys, items):
        self.keys, self.items = tuple(keys), tuple(items)

    def __eq__(self, other):
        return isinstance(other, MapSpec) and (self.keys, self.items) == (other.keys, other.items)

    def __hash__(self):
        return hash((self.keys, self.items))

    def __repr__(self):
        return f"dict{dict(zip(self.keys, self.items))}"


def _hash_key(v):
    # NOTE: an unhashable value (an array) is keyed by its id. That is safe: the spec holds
    # the value, so the id cannot be reused while a tree definition refers to it.
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


# -- classification -------------------------------------------------------------------------


def classify(value, is_module, static: bool | None = None):
    """The spec of a field's value.

    Arguments:
        value: the field's value.
        is_module: ``is_module(x)`` tells whether ``x`` is a Module (a child as a whole).
        static: the field's declared ``static=`` (see `field`); None classifies by value:
            arrays and modules are children, and so are lists, tuples and dicts holding
            any (their other items stay static); everything else is static.

    Returns:
        A spec: `DYN`, a static spec, or a list/tuple/dict spec.
    """
    if static is True:
        return StaticSpec(value)
    if static is False:
        return DYN
    return _classify(value, is_module)


def _classify(v, is_module):
    if is_array(v) or is_module(v):
        return DYN
    if type(v) in (list, tuple):
        items = [_classify(x, is_module) for x in v]
        if any(not isinstance(s, StaticSpec) for s in items):
            return SeqSpec(type(v), items)
        return StaticSpec(v)
    if type(v) is dict:
        items = [_classify(x, is_module) for x in v.values()]
        if any(not isinstance(s, StaticSpec) for s in items):
            return MapSpec(v.keys(), items)
        return StaticSpec(v)
    if v is None or isinstance(v, (str, bytes, numbers.Number, type, np.dtype)) or callable(v):
        return StaticSpec(v)
    # Another registered pytree (a namedtuple of arrays, an optax state): a child as a
    # whole when it holds arrays.
    leaves = jax.tree_util.tree_leaves(v, is_leaf=is_module)
    if leaves and any(is_array(x) or is_module(x) for x in leaves):
        return DYN
    return StaticSpec(v)


def dynamic_part(v, spec):
    """The children of a field: the value with its static items replaced by None."""
    if spec is DYN:
        return v
    if isinstance(spec, SeqSpec):
        if spec.plain:
            return v
        return spec.kind(
            None if isinstance(s, StaticSpec) else dynamic_part(x, s) for x, s in zip(v, spec.items)
        )
    return {
        k: (None if isinstance(s, StaticSpec) else dynamic_part(v[k], s))
        for k, s in zip(spec.keys, spec.items)
    }


def combine(d, spec):
    """Inverse of `dynamic_part`: children and static items back into the value."""
    if spec is DYN:
        return d
    if isinstance(spec, StaticSpec):
        return spec.value
    if isinstance(spec, SeqSpec):
        return spec.kind(combine(x, s) for x, s in zip(d, spec.items))
    return {k: combine(d[k], s) for k, s in zip(spec.keys, spec.items)}
