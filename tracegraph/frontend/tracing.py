"""Tracing a Python function into a `Graph`, and the helpers around argument pytrees.

`trace_function` is shared by `tg.trace`, `tg.jit` and `tg.eager`: it flattens the
arguments, makes one graph input per array leaf (named after the argument and its path,
e.g. ``%params.fc1.w``), runs the function with `Tensor`s, and records the result.
"""

from __future__ import annotations

import inspect
import numbers
import re

import jax
import numpy as np

from ..errors import TracingError
from ..ir.graph import Graph
from ..ir.tree import CUSTOM, DICT, LIST, NONE, TUPLE, TreeSpec, default_out_tree
from ..ir.types import DTYPE_NAMES, TensorType
from ..ops.core import install_hooks
from .builder import Builder, as_tensor, building
from .tensor import Tensor


def spec(shape, dtype="f32") -> jax.ShapeDtypeStruct:
    """An abstract argument for `tg.trace` / ``f.trace``: ``tg.spec((128, 784), "f32")``."""
    dt = DTYPE_NAMES[dtype] if isinstance(dtype, str) and dtype in DTYPE_NAMES else np.dtype(dtype)
    return jax.ShapeDtypeStruct(tuple(shape), dt)


def tree_spec_of(treedef) -> TreeSpec:
    """Portable `TreeSpec` of a jax PyTreeDef (keeps the live treedef for rebuilding)."""
    spec = _convert(treedef)
    spec.py_treedef = treedef
    return spec


def _convert(treedef) -> TreeSpec:
    if jax.tree_util.treedef_is_leaf(treedef) and treedef.num_leaves == 1:
        return TreeSpec.leaf()
    node_type, data = treedef.node_data()
    kids = [_convert(c) for c in treedef.children()]
    if node_type is type(None):
        return TreeSpec(NONE)
    if node_type is tuple:
        return TreeSpec(TUPLE, kids)
    if node_type is list:
        return TreeSpec(LIST, kids)
    if node_type is dict:
        return TreeSpec(DICT, kids, keys=list(data))
    name = re.sub(r"\W", "_", getattr(node_type, "__name__", "node")) or "node"
    return TreeSpec(CUSTOM, kids, type_name=name)


def is_array_leaf(x) -> bool:
    return isinstance(x, (Tensor, jax.ShapeDtypeStruct, numbers.Number, np.generic)) or (
        hasattr(x, "shape") and hasattr(x, "dtype")
    )


def leaf_type(x, path: str = "") -> TensorType:
    """The TensorType an argument leaf gives a graph input (jax's canonical dtype)."""
    if isinstance(x, Tensor):
        return x._value.type
    if isinstance(x, bool):
        return TensorType((), np.bool_, False)  # bool is never weak in JAX
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        dt = np.asarray(x).dtype
        return TensorType((), jax.dtypes.canonicalize_dtype(dt), True)
    if isinstance(x, jax.core.Tracer):
        aval = x.aval
        return TensorType(aval.shape, aval.dtype, getattr(aval, "weak_type", False))
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        weak = bool(getattr(x, "weak_type", False))
        return TensorType(tuple(x.shape), jax.dtypes.canonicalize_dtype(x.dtype), weak)
    raise TracingError(
        f"argument {path or '?'} is a {type(x).__name__}, not an array; pass arrays (or "
        "tg.spec(shape, dtype)), or mark the argument static (static_argnums/static_argnames)"
    )


def arg_names(fn, nargs: int) -> list[str]:
    """Names for positional arguments: the function's parameter names where known."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "arg")
    return [positional[i] if i < len(positional) else f"{star}{i}" for i in range(nargs)]


def _path_name(path, pos_names) -> str:
    parts = []
    for i, k in enumerate(path):
        if i == 0:
            continue  # (args, kwargs) level
        if i == 1 and path[0].idx == 0:
            parts.append(pos_names[k.idx] if k.idx < len(pos_names) else f"arg{k.idx}")
            continue
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(re.sub(r"\W", "", str(k)) or "x")
    return ".".join(parts) or "x"


def flatten_args(fn, args, kwargs):
    """Flatten ``(args, kwargs)``: returns (leaves, names, treedef)."""
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(
        (tuple(args), dict(kwargs)), is_leaf=lambda x: isinstance(x, Tensor)
    )
    pos_names = arg_names(fn, len(args))
    leaves = [x for _, x in path_leaves]
    names = [_path_name(p, pos_names) for p, _ in path_leaves]
    return leaves, names, treedef


def function_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "lambda" if name == "<lambda>" else name


def trace_function(fn, args, kwargs=None, *, eager=False, name=None, input_data=None) -> Graph:
    """Run ``fn`` on Tensors standing for ``args``; return the recorded Graph.

    With ``eager=True`` the builder executes every op on the concrete leaves
    (``input_data``, default: the leaves themselves) and the returned graph's outputs
    carry data; see `run_eagerly` for that path.
    """
    graph, _ = _trace(fn, args, kwargs or {}, eager=eager, name=name, input_data=input_data)
    return graph


def _trace(fn, args, kwargs, *, eager, name, input_data=None, parent=None):
    leaves, names, treedef = flatten_args(fn, args, kwargs)
    builder = Builder(name or function_name(fn), eager=eager, parent=parent)
    tensors = []
    for i, (x, nm) in enumerate(zip(leaves, names)):
        t = leaf_type(x, nm)
        data = None
        if eager:
            data = input_data[i] if input_data is not None else x
            if not t.weak:  # weak values (Python scalars, weak arrays) must stay weak
                data = jax.numpy.asarray(data, dtype=t.dtype)
        tensors.append(builder.add_input(t, name=nm, data=data))
    targs, tkwargs = jax.tree_util.tree_unflatten(treedef, tensors)
    with building(builder):
        result = fn(*targs, **tkwargs)
        out_leaves, out_treedef = jax.tree_util.tree_flatten(
            result, is_leaf=lambda x: isinstance(x, Tensor)
        )
        outs = []
        for i, x in enumerate(out_leaves):
            if not is_array_leaf(x):
                raise TracingError(
                    f"{builder.name} returned a {type(x).__name__} at output {i}; traced "
                    "functions return arrays (pytrees of tensors)"
                )
            outs.append(as_tensor(builder, x))
    graph = builder.finish(outs, tree_spec_of(out_treedef), tree_spec_of(treedef))
    return graph, outs


def trace_types(fn, in_types, name: str = "subgraph", parent: Builder | None = None) -> Graph:
    """Trace ``fn(*tensors)`` for flat input types into a graph with flat outputs.

    With ``parent=None`` the graph is closed: using an outer tensor inside is an error.
    """
    b = Builder(name, eager=False, parent=parent)
    ins = [b.add_input(t, name=f"a{i}") for i, t in enumerate(in_types)]
    with building(b):
        res = fn(*ins)
        leaves, _ = jax.tree_util.tree_flatten(res, is_leaf=lambda x: isinstance(x, Tensor))
        outs = [as_tensor(b, x) for x in leaves]
    return b.finish(outs, default_out_tree(len(outs)))


install_hooks(trace=trace_types)
