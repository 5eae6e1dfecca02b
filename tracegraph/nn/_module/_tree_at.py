"""`tree_at`: a copy of a module with one node of its tree replaced (Equinox's
``eqx.tree_at``, for modules). Modules are immutable; this and `Module.replace` are how a
changed one is made."""

from __future__ import annotations

from ._field import field_names
from ._module import Module


def tree_at(where, module, value):
    """A copy of ``module`` with the node that ``where(module)`` selects replaced by
    ``value``: a parameter array or a sub-module, reached through attributes, list/tuple
    items and dict items.

    Arguments:
        where: a function from the module to the node to replace.
        module: the module to copy.
        value: the new node.

    Returns:
        The changed copy; ``module`` itself is left alone. Raises ``ValueError`` when
        ``where`` selects nothing reachable that way.

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
        for field in field_names(node):
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
