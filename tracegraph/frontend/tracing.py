"""Tracing a Python function into a `Graph`, and the helpers around argument pytrees.

`trace_with(trace, fn, args, kwargs)` is shared by `tg.trace`, `tg.jit` and `tg.eager`:
it flattens the arguments, makes one graph input per array leaf (named after the
argument and its path, e.g. ``%params.fc1.w``), runs the function under the given trace
with `Tensor`s, and finishes the graph.
"""

from __future__ import annotations

import inspect
import numbers
import re
import sys
import types

import jax
import numpy as np

from .._caches import cache
from ..errors import TracingError, locate, public
from ..ir.graph import Graph
from ..ir.tree import CUSTOM, DICT, LIST, NONE, TUPLE, TreeSpec
from ..ir.types import DTYPE_NAMES, TensorType
from ..core import GraphTrace, Tensor, function_name, type_of, using


@public("spec")
def spec(shape, dtype="f32") -> jax.ShapeDtypeStruct:
    """An abstract argument for `tg.trace` / ``f.trace``: ``tg.spec((128, 784), "f32")``."""
    dt = DTYPE_NAMES[dtype] if isinstance(dtype, str) and dtype in DTYPE_NAMES else np.dtype(dtype)
    return jax.ShapeDtypeStruct(tuple(shape), dt)


# PyTreeDef -> its TreeSpec (specs are never changed once made): define-by-run and
# tg.compile convert the same argument and result trees on every call
_SPECS: dict = cache({})
_SPECS_MAX = 1 << 12


def tree_spec_of(treedef) -> TreeSpec:
    """Portable `TreeSpec` of a jax PyTreeDef (keeps the live treedef for rebuilding)."""
    try:
        spec = _SPECS.get(treedef)
    except TypeError:  # a node's auxiliary data that does not hash
        spec = None
    else:
        if spec is not None:
            return spec
    spec = _convert(treedef)
    spec.py_treedef = treedef
    try:
        if len(_SPECS) < _SPECS_MAX:
            _SPECS[treedef] = spec
    except TypeError:
        pass
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
    try:
        return type_of(x)
    except TypeError:
        raise TracingError(
            f"argument {path or '?'} is a {type(x).__name__}, not an array; pass arrays (or "
            "tg.spec(shape, dtype)), or mark the argument static (static_argnums/static_argnames)"
        ) from None


def arg_names(fn, nargs: int) -> list[str]:
    """Names for positional arguments: the function's parameter names where known."""
    if type(fn) is types.FunctionType and not fn.__dict__:  # not functools.wraps'd: its code
        code = fn.__code__
        n = code.co_argcount
        positional = code.co_varnames[:n]
        star = code.co_varnames[n + code.co_kwonlyargcount] if code.co_flags & inspect.CO_VARARGS else "arg"
    else:
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


def _is_free(x) -> bool:
    return isinstance(x, Tensor) and x._trace.free


def arrays_of_free(tree):
    """``tree`` with each imperative (PyTorch-style) tensor replaced by its array: as an
    argument of a traced function it is the array it holds now."""
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=_is_free)
    if not any(_is_free(x) for x in leaves):
        return tree
    return jax.tree_util.tree_unflatten(treedef, [x._data if _is_free(x) else x for x in leaves])


def flatten_args(fn, args, kwargs):
    """Flatten ``(args, kwargs)``: returns (leaves, names, treedef). Imperative tensors
    (module parameters trained PyTorch-style) are leaves holding their current array."""
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(
        (tuple(args), dict(kwargs)), is_leaf=lambda x: isinstance(x, Tensor)
    )
    pos_names = arg_names(fn, len(args))
    leaves = [x._data if _is_free(x) else x for _, x in path_leaves]
    names = [_path_name(p, pos_names) for p, _ in path_leaves]
    return leaves, names, treedef


def trace_function(fn, args, kwargs=None, *, name=None) -> Graph:
    """Trace ``fn`` on Tensors standing for ``args``; return the recorded Graph."""
    graph, _ = trace_with(GraphTrace(name or function_name(fn)), fn, args, kwargs or {})
    return graph


def trace_with(trace, fn, args, kwargs=None, in_specs=None):
    """Run ``fn`` under ``trace`` (see `_trace_with`); a mistake in the call itself (an
    argument that is not an array, a result that is not one) names ``tg.eager`` or
    ``tg.trace`` and the caller's line."""
    try:
        return _trace_with(trace, fn, args, kwargs, in_specs)
    except Exception as e:
        mode = "eager" if type(trace).__name__ == "EagerTrace" else "trace"
        new = locate(e, mode, sys._getframe(1), TracingError)
        if new is None or new is e:
            raise
        raise new from None


def _trace_with(trace, fn, args, kwargs=None, in_specs=None):
    """Run ``fn`` under ``trace`` (a fresh `GraphTrace` or define-by-run trace) on
    Tensors standing for ``args``; returns (Graph, output Tensors). One graph input per
    array leaf, named after its argument path (``%params.fc1.w``); define-by-run traces
    get the leaves' values. ``in_specs``: a partition spec (or None) per leaf, given to
    that input's type (`tg.jit`'s ``in_shardings``)."""
    leaves, names, treedef = flatten_args(fn, args, kwargs or {})
    types = [leaf_type(x, nm) for x, nm in zip(leaves, names)]
    if in_specs is not None:
        types = [t if s is None else t.with_(sharding=s) for t, s in zip(types, in_specs)]
    tensors = [trace.new_input(t, name=nm, data=x) for t, x, nm in zip(types, leaves, names)]
    targs, tkwargs = jax.tree_util.tree_unflatten(treedef, tensors)
    with using(trace):
        result = fn(*targs, **tkwargs)
        out_leaves, out_treedef = jax.tree_util.tree_flatten(
            result, is_leaf=lambda x: isinstance(x, Tensor)
        )
        outs = []
        for i, x in enumerate(out_leaves):
            if not is_array_leaf(x):
                raise TracingError(
                    f"{trace.name} returned a {type(x).__name__} at output {i}; traced "
                    "functions return arrays (pytrees of tensors)"
                )
            outs.append(trace.lift(x))
    graph = trace.finish(outs, tree_spec_of(out_treedef), tree_spec_of(treedef))
    return graph, outs
