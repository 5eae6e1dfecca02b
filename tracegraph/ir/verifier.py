"""The IR verifier: structure (SSA, topological order, pytree sizes), ops and their
arities and attributes, and types re-derived through each op's shape rule.

`verify(graph)` raises `tg.IRError` naming the first bad node, its op and user line.
"""

from __future__ import annotations

from .._caches import cache
from ..errors import IRError
from . import registry
from .types import TensorType, checked_num_elements

MAX_NESTING = 64


def verify(graph, _depth: int = 0, *, nested: bool = True) -> None:
    """Check ``graph``; ``nested=False`` takes its subgraphs as already verified (graph
    builders verify each body when it is finished, so building stays linear)."""
    if _depth > MAX_NESTING:
        raise IRError(f"graphs nested more than {MAX_NESTING} deep")
    defined: set[int] = set()

    def define(v, what):
        if id(v) in defined:
            raise IRError(f"graph {graph.name}: {what} {v!r} is defined twice (not SSA)")
        _check_type(v.type, what)
        defined.add(id(v))

    for i, v in enumerate(graph.inputs):
        if v.data is not None or v.producer is not None:
            raise IRError(f"graph {graph.name}: input {i} is not a plain input value")
        define(v, f"input {i}")
    for i, v in enumerate(graph.constants):
        if v.data is None:
            raise IRError(f"graph {graph.name}: constant {i} has no data")
        if tuple(v.data.shape) != v.type.shape or v.data.dtype != v.type.dtype:
            raise IRError(
                f"graph {graph.name}: constant {i} holds {v.data.dtype}{list(v.data.shape)} "
                f"but is typed {v.type}"
            )
        define(v, f"constant {i}")

    for index, node in enumerate(graph.nodes):
        try:
            op = registry.lookup(node.op)
            op.check_arity(len(node.inputs))
            attrs = op.check_attrs(node.attrs)
        except IRError as e:
            raise IRError(f"{_where(graph, index, node)}: {e}") from None
        except Exception as e:  # noqa: BLE001 - an attribute check failing on foreign values
            raise IRError(f"{_where(graph, index, node)}: bad attributes ({type(e).__name__}: {e})") from None
        if len(attrs) != len(node.attrs) or set(attrs) != set(node.attrs):
            raise IRError(f"{_where(graph, index, node)}: attributes {sorted(node.attrs)} != {sorted(attrs)}")
        for k, v in attrs.items() if nested else ():
            for g in _nested_graphs(v, op.attrs[k].kind):
                try:
                    verify(g, _depth + 1)
                except IRError as e:
                    raise IRError(f"{_where(graph, index, node)}, subgraph {k!r}: {e}") from None
        for j, v in enumerate(node.inputs):
            if id(v) not in defined:
                raise IRError(f"{_where(graph, index, node)}: input {j} is used before it is defined (or dangling)")
        try:
            expected = _infer(op, [v.type for v in node.inputs], attrs)
        except Exception as e:  # noqa: BLE001 - tg.Error from a rule, or a rule failing on foreign types
            raise IRError(f"{_where(graph, index, node)}: shape rule rejects the inputs: {e}") from None
        if len(expected) != len(node.outputs):
            raise IRError(f"{_where(graph, index, node)}: has {len(node.outputs)} outputs, op gives {len(expected)}")
        for j, (v, t) in enumerate(zip(node.outputs, expected)):
            if v.producer is not node:
                raise IRError(f"{_where(graph, index, node)}: output {j} does not point back to its node")
            if v.type != t:
                raise IRError(f"{_where(graph, index, node)}: output {j} is typed {v.type}, the op gives {t}")
            define(v, f"output {j} of node {index}")

    for i, v in enumerate(graph.outputs):
        if id(v) not in defined:
            raise IRError(f"graph {graph.name}: output {i} is not defined in the graph")
    if graph.in_tree.num_leaves != len(graph.inputs):
        raise IRError(
            f"graph {graph.name}: input structure has {graph.in_tree.num_leaves} leaves "
            f"for {len(graph.inputs)} inputs"
        )
    if graph.out_tree.num_leaves != len(graph.outputs):
        raise IRError(
            f"graph {graph.name}: output structure has {graph.out_tree.num_leaves} leaves "
            f"for {len(graph.outputs)} outputs"
        )


def _where(graph, index, node) -> str:
    """The place of a bad node, for its error (formatted only when there is one)."""
    return f"graph {graph.name}, node {index} ({node.op}) at {node.location or '?'}"


# Output types by (op, input types, attributes, x64 mode): shape rules are pure, and a
# graph repeats the same few signatures (each layer of a model, each step of a chain), so
# verifying after every pass re-derives few types. Attributes are keyed as the eager
# trace keys them (1, 1.0 and True apart; floats by their bits). Nodes holding graphs
# (control flow) are not cached: the key would keep their bodies alive.
_INFERRED: dict = cache({})
_INFERRED_MAX = 1 << 16


def _infer(op, in_types, attrs):
    try:
        key = (op.name, tuple(in_types), _attrs_key(attrs), _x64())
        hit = _INFERRED.get(key)
    except TypeError:  # an unhashable attribute: derived every time
        return op.infer(in_types, attrs)
    if hit is None:
        hit = op.infer(in_types, attrs)
        if len(_INFERRED) >= _INFERRED_MAX:
            _INFERRED.clear()
        _INFERRED[key] = hit
    return hit


def _attrs_key(attrs) -> tuple:
    return tuple((k, _value_key(v)) for k, v in sorted(attrs.items())) if attrs else ()


def _value_key(v):
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, (tuple, list)):
        return (type(v).__name__,) + tuple(_value_key(x) for x in v)
    if hasattr(v, "nodes"):
        raise TypeError("a graph attribute is not cached")
    return (type(v), v)


def _x64() -> bool:
    import jax  # noqa: PLC0415 - the IR layer reads JAX's mode only here, lazily

    return bool(jax.config.jax_enable_x64)


def _nested_graphs(value, kind):
    if kind == "graph":
        return (value,)
    if kind == "graphs":
        return value
    return ()


def _check_type(t, what):
    if not isinstance(t, TensorType):
        raise IRError(f"{what} has no TensorType")
    checked_num_elements(t.shape)
