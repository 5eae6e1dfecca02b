"""Module scopes: calling a named module opens ``tg.scope(name)`` around its forward.

Scopes nest, so every node a layer records carries its module path (``encoder.0.attn``).
A module whose scope is already the innermost open one does not open it again (a
user-written ``__call__`` that calls ``super().__call__`` runs in one scope, not two).

NOTE: the modules whose scope is open are kept in a ``ContextVar`` holding a tuple, not a
process-global list: each thread (and each asyncio task) sees only the scopes it opened
itself, so two threads calling the same module at once both record its scope.
"""

from __future__ import annotations

import contextlib
import contextvars

from ...core import scope as open_scope

# ids of the modules whose scope is open in this context, innermost last
_OPEN: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "tracegraph_nn_open_module_scopes", default=()
)


@contextlib.contextmanager
def module_scope(module_id: int, name: str | None):
    """Run the body in the scope ``name`` of the module ``module_id`` (its ``id``); a
    no-op for a root module (no name) or when that module's scope is the innermost one."""
    active = _OPEN.get()
    if not name or (active and active[-1] == module_id):
        yield
        return
    token = _OPEN.set((*active, module_id))
    try:
        with open_scope(name):
            yield
    finally:
        _OPEN.reset(token)


def open_modules() -> tuple[int, ...]:
    """The ids of the modules whose scope is open in this thread, innermost last."""
    return _OPEN.get()
