"""`TreeSpec`: the portable pytree structure of a graph's inputs and outputs.

A traced function takes and returns pytrees (tuples, lists, dicts, None, and registered
custom nodes such as `tg.nn.Module`). The graph records their structure so that a graph
loaded from a file is called like the function it was traced from. Tuples, lists, dicts
and None rebuild exactly; a custom node rebuilds as its own class while the live pytree
definition is at hand (`py_treedef`), and as a tuple of its children once the graph has
gone through a file (its class name is kept for printing).
"""

from __future__ import annotations

import json

from ..errors import IRError

LEAF, NONE, TUPLE, LIST, DICT, CUSTOM = "leaf", "none", "tuple", "list", "dict", "custom"
_KINDS = (LEAF, NONE, TUPLE, LIST, DICT, CUSTOM)


class TreeSpec:
    __slots__ = ("kind", "children", "keys", "type_name", "py_treedef", "num_leaves")

    def __init__(self, kind, children=(), keys=None, type_name=None, py_treedef=None):
        if kind not in _KINDS:
            raise IRError(f"unknown tree node kind {kind!r}")
        self.kind = kind
        self.children = tuple(children)
        self.keys = tuple(keys) if keys is not None else None
        self.type_name = type_name
        self.py_treedef = py_treedef  # live jax PyTreeDef, never serialized
        if kind == LEAF:
            self.num_leaves = 1
        else:
            self.num_leaves = sum(c.num_leaves for c in self.children)
        if kind in (LEAF, NONE) and self.children:
            raise IRError(f"tree node {kind} cannot have children")
        if kind == DICT and (self.keys is None or len(self.keys) != len(self.children)):
            raise IRError("dict tree node needs one key per child")

    # -- construction -------------------------------------------------------------
    @staticmethod
    def leaf() -> "TreeSpec":
        return _LEAF

    @staticmethod
    def flat(n: int) -> "TreeSpec":
        """A tuple of ``n`` leaves."""
        return TreeSpec(TUPLE, [_LEAF] * n)

    # -- use ----------------------------------------------------------------------
    def unflatten(self, leaves):
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise IRError(f"tree expects {self.num_leaves} leaves, got {len(leaves)}")
        if self.py_treedef is not None:
            return self.py_treedef.unflatten(leaves)
        it = iter(leaves)
        return self._build(it)

    def _build(self, it):
        k = self.kind
        if k == LEAF:
            return next(it)
        if k == NONE:
            return None
        kids = [c._build(it) for c in self.children]
        if k == LIST:
            return kids
        if k == DICT:
            return dict(zip(self.keys, kids))
        return tuple(kids)  # tuple, and custom nodes once their class is gone

    def without_treedef(self) -> "TreeSpec":
        if self.kind == LEAF:
            return _LEAF
        return TreeSpec(
            self.kind, [c.without_treedef() for c in self.children], self.keys, self.type_name
        )

    def structure_key(self):
        """A hashable description of the structure (ignores the live treedef)."""
        return (self.kind, self.keys, self.type_name, tuple(c.structure_key() for c in self.children))

    def __eq__(self, other):
        return isinstance(other, TreeSpec) and self.structure_key() == other.structure_key()

    def __hash__(self):
        return hash(self.structure_key())

    # -- text ---------------------------------------------------------------------
    def format(self, leaf_names) -> str:
        """Render as a pytree expression, e.g. ``(%x, {"w": %w, "b": none})``."""
        it = iter(leaf_names)
        return self._format(it)

    def _format(self, it) -> str:
        k = self.kind
        if k == LEAF:
            return next(it)
        if k == NONE:
            return "none"
        parts = [c._format(it) for c in self.children]
        if k == LIST:
            return "[" + ", ".join(parts) + "]"
        if k == DICT:
            items = [f"{_format_key(key)}: {p}" for key, p in zip(self.keys, parts)]
            return "{" + ", ".join(items) + "}"
        inner = ", ".join(parts) + ("," if len(parts) == 1 else "")
        if k == CUSTOM:
            return f"{self.type_name}({', '.join(parts)})"
        return "(" + inner + ")"

    # -- JSON ---------------------------------------------------------------------
    def to_obj(self):
        d = {"kind": self.kind}
        if self.children:
            d["children"] = [c.to_obj() for c in self.children]
        if self.kind == DICT:
            d["keys"] = list(self.keys)
        if self.kind == CUSTOM:
            d["type"] = self.type_name
        return d

    @staticmethod
    def from_obj(obj, depth: int = 0) -> "TreeSpec":
        if depth > 100:
            raise IRError("tree structure nested too deeply")
        if not isinstance(obj, dict) or obj.get("kind") not in _KINDS:
            raise IRError(f"bad tree structure entry: {obj!r:.80}")
        kind = obj["kind"]
        children = obj.get("children", [])
        if not isinstance(children, list):
            raise IRError("tree children must be a list")
        kids = [TreeSpec.from_obj(c, depth + 1) for c in children]
        keys = None
        if kind == DICT:
            keys = obj.get("keys")
            if not isinstance(keys, list) or not all(type(k) in (str, int) for k in keys):
                raise IRError("dict tree keys must be a list of strings or ints")
        type_name = None
        if kind == CUSTOM:
            type_name = obj.get("type")
            if not isinstance(type_name, str) or not type_name.isidentifier():
                raise IRError(f"custom tree node needs an identifier type name, got {type_name!r}")
        return TreeSpec(kind, kids, keys, type_name)

    def __repr__(self):
        return f"TreeSpec({self.format(['*'] * self.num_leaves)})"


def default_in_tree(n: int) -> TreeSpec:
    """``(args, kwargs)`` with ``n`` positional array arguments and no keywords."""
    return TreeSpec(TUPLE, [TreeSpec.flat(n), TreeSpec(DICT, [], keys=[])])


def default_out_tree(n: int) -> TreeSpec:
    return TreeSpec.leaf() if n == 1 else TreeSpec.flat(n)


def _format_key(key) -> str:
    if isinstance(key, str):
        return json.dumps(key)
    return str(key)


_LEAF = TreeSpec(LEAF)
