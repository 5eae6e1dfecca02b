"""Layer 5: running graphs. `jax_backend` lowers a graph through ``jax.jit``;
`interpreter` runs it node by node. Both call the same op implementations."""

from . import interpreter, jax_backend  # noqa: F401  (register the runners)
