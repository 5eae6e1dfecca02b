"""Layer 1: the IR data structure. Knows nothing of JAX tracing."""

from .graph import Graph, Node, Value, constant, register_runner
from .registry import NOT_DIFFERENTIABLE, Attr, OpDef, Sample, all_ops, lookup, register
from .tree import TreeSpec
from .types import DTYPE_NAMES, TensorType, dtype_from_name, dtype_name

__all__ = [
    "Graph", "Node", "Value", "constant", "register_runner",
    "NOT_DIFFERENTIABLE", "Attr", "OpDef", "Sample", "all_ops", "lookup", "register",
    "TreeSpec", "DTYPE_NAMES", "TensorType", "dtype_from_name", "dtype_name",
]
