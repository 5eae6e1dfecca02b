"""`GuardTrace`: define-by-run that also records each Python decision on a tensor's value
as a ``guard`` node (the trace of `tg.compile`'s recording runs).

It is an `EagerTrace` (every op runs at once and is recorded), so the function's Python
control flow runs on concrete values as in `tg.eager`. Where the eager trace would just
answer ``bool(t)`` / ``int(t)`` / ``float(t)`` / ``t.item()`` / an index, this one also
binds ``guard(t, expect=<the answer>, kind=...)`` and keeps the guard's output: the
recorded graph is then a *path* through the function, valid whenever its guards hold.

Structured control flow (`tg.cond`, `tg.while_loop`, `tg.scan`) is recorded as its own
op, not decided in Python (``known_value`` answers None), so a data-dependent branch
written with `tg.cond` needs no guard. A decision that cannot be guarded (a tensor
converted to a numpy array, a decision inside a function being differentiated, a JAX
function on a tensor) makes the path *unguardable*: `tg.compile` then runs the function
define-by-run each time, and says why.
"""

from __future__ import annotations

import numpy as np

from ..core import bind, using
from ..errors import user_location
from .eager import EagerTrace

_KINDS = {
    "int()": "int",
    "Use as a Python index": "int",
    "float()": "float",
    "complex()": None,
    ".item()": "item",
}


class GuardTrace(EagerTrace):
    """Define-by-run that records guards (see the module doc). ``guards``: the guard
    output Tensors, in program order; ``decisions``: (kind, value, location) of each;
    ``unguardable``: why the path cannot be compiled (None if it can)."""

    verify_graphs = True  # a recorded path is kept and compiled: verified once

    def __init__(self, name: str = "compile", parent=None, root=None):
        super().__init__(name, parent)
        self.root = root or self
        self.guards: list = []
        self.decisions: list[tuple] = []
        self.unguardable: str | None = None
        self.state_in: list = []  # (imperative tensor, its input Tensor), in first-read order
        self.state_out: dict = {}  # id(tensor) -> (tensor, its last value here)

    def child(self, name: str, keep_values: bool = False):
        t = GuardTrace(name, parent=self, root=self.root)
        t.values = {} if keep_values else None
        return t

    # -- state: the imperative tensors and Variables the function reads and writes ------
    def read_free(self, x):
        """An imperative tensor or Variable read by the recorded function: a *state
        input* of the path (its current array is passed at every compiled call), not a
        constant that would go stale after an update."""
        if self.root is not self:
            return super().read_free(x)
        t = self.new_input(x._value.type.with_(weak=False), name=x._value.name or "state", data=x._data)
        self.state_in.append((x, t))
        return t

    def assign_state(self, t, value):
        """An update of an imperative tensor or Variable: a *state output* of the path
        (written back after each compiled call); in this run it happens at once."""
        if self.root is not self:
            self.root.unguardable = self.root.unguardable or (
                f"a tensor updated in place inside a nested function at {user_location(2)}"
            )
            return super().assign_state(t, value)
        new = self.state_value(t, value)
        t._data = new._data
        self.builder.free_reads[id(t)] = (t, new)
        self.state_out[id(t)] = (t, new)
        return t

    def _guard(self, t, kind: str, value):
        root = self.root
        if root is not self:  # a decision inside a nested function (e.g. under tg.grad)
            root.unguardable = root.unguardable or (
                f"a Python decision on a tensor inside a nested function at {user_location(2)}"
            )
            return value
        if t.size != 1:
            root.unguardable = root.unguardable or f"a {kind} of a {t.type} tensor at {user_location(2)}"
            return value
        with using(self):
            g = bind("guard", t, expect=value, kind=kind)
        self.guards.append(g)
        self.decisions.append((kind, value, g._value.producer.location))
        return value

    def to_bool(self, t) -> bool:
        return self._guard(t, "bool", bool(t._data))

    def concrete(self, t, what: str):
        data = t._data
        kind = _KINDS.get(what)
        if kind is None:  # np.asarray(t), complex(): not guarded
            self.root.unguardable = self.root.unguardable or (
                f"{what} of a tensor ({t.type}) at {user_location(2)}"
            )
            return data
        value = np.asarray(data).reshape(()).item() if np.size(data) == 1 else data
        if kind == "int":
            value = int(value)
        elif kind == "float":
            value = float(value)
        self._guard(t, kind, value)
        return data

    def known_value(self, x):
        return None  # structured control flow is recorded as IR, not decided in Python

    def foreign_call(self, t):
        self.root.unguardable = self.root.unguardable or (
            f"a JAX function on a tensor ({t.type}) at {user_location(2)}"
        )
        return super().foreign_call(t)


__all__ = ["GuardTrace"]
