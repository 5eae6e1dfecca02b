"""Interop with JAX: `from_jax` turns JAX code (jax.numpy, Flax, optax) into tracegraph
IR when called inside tracegraph code; `to_jax` turns a `tg.Graph` into a JAX function."""

from .from_jax import JaxFunction, from_jax, missing_primitives, to_jax

__all__ = ["JaxFunction", "from_jax", "missing_primitives", "to_jax"]
