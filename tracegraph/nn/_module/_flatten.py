"""A Module as a pytree: its field `Layout`, and the flatten / unflatten functions that
``jax.tree_util`` calls.

The children are the dynamic parts of the fields (see `_field`), keyed by attribute name
(``GetAttrKey``); the auxiliary data is the module's name and its `Layout`, so two modules
have equal tree definitions exactly when their classes, names and static data are equal.
A field listed in the class's ``_tg_index_fields`` (``Sequential.layers``) contributes its
elements as children ``0``, ``1``, ... of the module itself.
"""

from __future__ import annotations

import jax

from ._field import DYN, NAME, SPEC, SeqSpec, StaticSpec, combine, dynamic_part


class Layout:
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
            (f, s, jax.tree_util.GetAttrKey(f), f in index_fields and isinstance(s, SeqSpec))
            for f, s in self.specs if not isinstance(s, StaticSpec)
        )
        self.names = tuple(f for f, *_ in self.dynamic)
        self.simple = all(s is DYN for _, s, _, _ in self.dynamic)
        self._hash = hash(self.specs)

    def __eq__(self, other):
        return self is other or (isinstance(other, Layout) and self.specs == other.specs)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return ", ".join(f"{f}={s!r}" for f, s in self.specs)


def register(cls):
    """Register a Module subclass with ``jax.tree_util`` (keys included)."""
    jax.tree_util.register_pytree_with_keys(
        cls,
        _flatten_with_keys,
        lambda aux, children: _unflatten(cls, aux, children),
        _flatten,
    )


def _flatten_with_keys(module):
    d = module.__dict__
    layout = d[SPEC]
    children = []
    for field, s, key, expand in layout.dynamic:
        value = dynamic_part(d[field], s)
        if expand:
            # e.g. Sequential.layers: elements are children 0, 1, ... of the module itself
            children.extend(
                (jax.tree_util.SequenceKey(i), x)
                for i, (x, si) in enumerate(zip(value, s.items))
                if not isinstance(si, StaticSpec)
            )
        else:
            children.append((key, value))
    return children, (d[NAME], layout)


def _flatten(module):
    d = module.__dict__
    layout = d[SPEC]
    if layout.simple:
        return [d[f] for f in layout.names], (d[NAME], layout)
    children = []
    for field, s, _, expand in layout.dynamic:
        value = d[field] if s is DYN else dynamic_part(d[field], s)
        if expand:
            children.extend(x for x, si in zip(value, s.items) if not isinstance(si, StaticSpec))
        else:
            children.append(value)
    return children, (d[NAME], layout)


def _unflatten(cls, aux, children):
    name, layout = aux
    obj = object.__new__(cls)
    d = obj.__dict__
    it = iter(children)
    for field, s in layout.specs:
        if isinstance(s, StaticSpec):
            d[field] = s.value
        elif s is DYN:
            d[field] = next(it)
        elif field in cls._tg_index_fields and isinstance(s, SeqSpec):
            d[field] = s.kind(
                si.value if isinstance(si, StaticSpec) else combine(next(it), si) for si in s.items
            )
        else:
            d[field] = combine(next(it), s)
    d[NAME] = name
    d[SPEC] = layout
    return obj
