"""`Module`, `field` and `tree_at`: tracegraph's Equinox-style modules (see README.md here).

- `_field.py`: `field` and how a field's value splits into pytree children and static
  data (the classification);
- `_flatten.py`: the field layout and the flatten / unflatten functions of the pytree;
- `_module.py`: the `Module` class (construction, naming of children, immutability,
  parameters, train/eval, repr);
- `_scope.py`: the module scopes that calls open (per thread, in a ``ContextVar``);
- `_tree_at.py`: `tree_at`.
"""

from ._field import field
from ._module import Module
from ._tree_at import tree_at

__all__ = ["Module", "field", "tree_at"]
