"""`defop` — how an op is declared — and the shape/dtype helpers shared by op blocks.

An op is one block::

    exp = defop(
        "exp",
        shape=float_unary,                 # (*types, **attrs) -> TensorType
        impl=jnp.exp,                      # (*arrays, **attrs) -> array
        vjp=lambda ct, x, out: [ct * out], # in tracegraph ops (autodiff transform)
        samples=lambda: unary_samples(FLOATS),
        reference=jnp.exp,
    )

Shape rules raise `ShapeError` with a plain message; the front end adds the op name,
operand types and the user's file:line.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ..errors import ShapeError
from ..ir.registry import NOT_DIFFERENTIABLE, Attr, OpDef, Sample, register
from ..ir.types import TensorType, is_bool, is_inexact, is_int

__all__ = [
    "defop", "emit", "hooks", "install_hooks", "unbroadcast", "Attr", "Sample", "NOT_DIFFERENTIABLE", "TensorType", "ShapeError",
    "promote", "broadcast_shapes", "same_type", "float_unary", "to_inexact",
    "default_int", "default_float", "normalize_axis", "normalize_axes",
]


def defop(
    name,
    *,
    shape,
    impl,
    attrs=None,
    arity=1,
    min_arity=0,
    vjp=None,
    samples=None,
    reference=None,
    random=False,
    multi_output=False,
    tolerances=None,
    doc="",
) -> OpDef:
    """Declare and register an op. See the module docstring for an example."""
    op = OpDef(
        name=name,
        shape_rule=shape,
        impl=impl,
        attrs=dict(attrs or {}),
        arity=arity,
        min_arity=min_arity,
        vjp=vjp,
        samples=samples,
        reference=reference,
        random=random,
        multi_output=multi_output,
        tolerances=dict(tolerances or {}),
        doc=doc,
    )
    return register(op)


# -- building IR from rules ----------------------------------------------------------
# VJP rules (and the rules of control-flow ops, which hold subgraphs) build IR. The
# layers above install what they need here when they are imported: the front end its
# `bind` (emit one node), graph tracing and graph inlining; the autodiff transform its
# Graph -> Graph VJP. A dependency handed down, so this layer never imports upward.


class _Hooks:
    emit = None  # (op_name, *args, **attrs) -> Tensor(s)
    trace = None  # (fn, in_types, name) -> Graph, a closed graph of fn
    call = None  # (graph, *args) -> list of Tensors: inline a graph where we are
    vjp_graph = None  # Graph -> Graph: (inputs..., output cotangents...) -> input cotangents

    def __getattribute__(self, name):
        fn = object.__getattribute__(self, name)
        if fn is None:
            raise RuntimeError(f"tracegraph hook {name!r} is not installed (import tracegraph)")
        return fn


hooks = _Hooks()


def install_hooks(**fns) -> None:
    for k, v in fns.items():
        if not hasattr(_Hooks, k):
            raise ValueError(f"unknown hook {k!r}")
        setattr(hooks, k, v)


def emit(op_name: str, *args, **attrs):
    """Add op ``op_name`` to the graph being built (for rules such as VJPs)."""
    return hooks.emit(op_name, *args, **attrs)


def unbroadcast(ct, shape):
    """Sum a cotangent over the axes that numpy broadcasting added to reach ``shape``."""
    shape = tuple(shape)
    if tuple(ct.shape) == shape:
        return ct
    lead = len(ct.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and ct.shape[i + lead] != 1
    )
    out = emit("sum", ct, axes=axes, keepdims=False) if axes else ct
    return out if tuple(out.shape) == shape else emit("reshape", out, shape=shape)


# -- dtypes -------------------------------------------------------------------------


def default_int() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def default_float() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _weak_stand_in(dtype):
    # A Python scalar of the dtype's kind: what jax promotes as a weak type.
    k = np.dtype(dtype).kind
    return {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}.get(k, 0.0) if k != "V" else 0.0


@functools.lru_cache(maxsize=4096)
def _promote_cached(key, x64):
    args = [_weak_stand_in(dt) if weak else dt for dt, weak in key]
    dt, weak = jax.dtypes.result_type(*args, return_weak_type_flag=True)
    return np.dtype(dt), bool(weak)


def promote(*types: TensorType) -> tuple[np.dtype, bool]:
    """Result dtype and weak flag of combining ``types``, by JAX's promotion lattice."""
    key = tuple((t.dtype, t.weak) for t in types)
    return _promote_cached(key, jax.config.jax_enable_x64)


def to_inexact(dtype) -> np.dtype:
    """The dtype a float-valued op gives for an input dtype (as jax.numpy does)."""
    if is_inexact(dtype):
        return np.dtype(dtype)
    return default_float() if np.dtype(dtype).itemsize == 8 else np.dtype(np.float32)


# -- shapes -------------------------------------------------------------------------


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            "shapes " + ", ".join(str(list(s)) for s in shapes) + " cannot be broadcast together"
        ) from None


def same_type(x: TensorType, **_) -> TensorType:
    return x


def float_unary(x: TensorType, **_) -> TensorType:
    return x.with_(dtype=to_inexact(x.dtype))


def normalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(f"axis {axis} is out of range for rank {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    """None -> all axes; ints -> sorted, non-negative, checked for range and repeats."""
    if axes is None:
        return tuple(range(ndim))
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for rank {ndim}")
        a %= ndim
        if a in out:
            raise ShapeError(f"axis {a} is repeated in {tuple(axes)}")
        out.append(a)
    return tuple(sorted(out))


def require_int_or_bool(op, *types):
    for t in types:
        if not (is_int(t.dtype) or is_bool(t.dtype)):
            raise ShapeError(f"{op} needs integer or bool operands, got {t}")
