"""`defop` — how an op is declared — and the type rules and helpers shared by op blocks.

An op is one block (as ``sin_p`` in JAX's lax.py)::

    sin = defop(
        "sin",
        shape=same_shape,                  # (*types, **attrs) -> tuple[int, ...]
        dtype=inexact_dtype,               # (*types, **attrs) -> np.dtype
        impl=jnp.sin,                      # (*arrays, **attrs) -> array
        vjp=lambda ct, x, *, out: [ct * bind("cos", x)],  # written with bind: IR
        samples=lambda: unary_samples(FLOATS),
        reference=jnp.sin,
    )

The output type is assembled from four rules, as JAX's ``standard_primitive(shape_rule,
dtype_rule, weak_type_rule, sharding_rule)`` does: ``shape`` (required; it also checks
the operands and raises `ShapeError` with a plain message — the front end adds the op
name, operand types and the user's file:line), ``dtype``, ``weak`` and ``sharding``.
The last three default to the standard rules: `standard_dtype` and `standard_weak`
(JAX's promotion of the operands) and `standard_sharding` (the common sharding of the
operands shaped like the output). A ``multi_output`` op's rules give tuples, one entry
per output.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..core import bind, weak_of
from ..errors import ShapeError
from ..ir.registry import NOT_DIFFERENTIABLE, Attr, OpDef, Sample, register
from ..ir.types import TensorType, dtype_name, is_bool, is_inexact, is_int

__all__ = [
    "defop", "bind", "unbroadcast", "Attr", "Sample", "NOT_DIFFERENTIABLE", "TensorType", "ShapeError",
    "standard_dtype", "standard_weak", "standard_sharding", "promoted_dtype", "promoted_weak",
    "same_shape", "broadcast_shape", "inexact_dtype", "first_dtype", "first_weak", "first_sharding",
    "fixed_dtype", "lax_weak", "never_weak", "no_sharding", "inexact_weak", "numeric_dtype",
    "as_inexact",
    "promote", "result_type", "broadcast_shapes", "to_inexact",
    "default_int", "default_float", "normalize_axis", "normalize_axes",
]


def defop(
    name,
    *,
    shape,
    impl,
    dtype=None,
    weak=None,
    sharding=None,
    attrs=None,
    arity=1,
    min_arity=0,
    vjp=None,
    samples=None,
    reference=None,
    random=False,
    multi_output=False,
    keys=False,
    tolerances=None,
    interpret=None,
    doc="",
) -> OpDef:
    """Declare and register an op. See the module docstring for an example.

    ``shape``, ``dtype``, ``weak`` and ``sharding`` are the type rules, each
    ``(*input_types, **attrs) -> field`` (`OpDef.infer` assembles them); ``dtype``,
    ``weak`` and ``sharding`` default to `standard_dtype`, `standard_weak` and
    `standard_sharding`.
    """
    op = OpDef(
        name=name,
        shape_rule=shape,
        dtype_rule=standard_dtype if dtype is None else dtype,
        weak_rule=standard_weak if weak is None else weak,
        sharding_rule=standard_sharding(shape, multi_output) if sharding is None else sharding,
        impl=impl,
        attrs=dict(attrs or {}),
        arity=arity,
        min_arity=min_arity,
        vjp=vjp,
        samples=samples,
        reference=reference,
        random=random,
        multi_output=multi_output,
        keys=keys,
        tolerances=dict(tolerances or {}),
        interpret=interpret,
        doc=doc,
    )
    return register(op)


# -- helpers for VJP rules (written with `bind`, so backward graphs are IR) --------------


def unbroadcast(ct, shape):
    """Sum a cotangent over the axes that numpy broadcasting added to reach ``shape``."""
    shape = tuple(shape)
    if tuple(ct.shape) == shape:
        return ct
    lead = len(ct.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and ct.shape[i + lead] != 1
    )
    out = bind("sum", ct, axes=axes, keepdims=False) if axes else ct
    return out if tuple(out.shape) == shape else bind("reshape", out, shape=shape)


# -- dtypes -------------------------------------------------------------------------


def default_int() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def default_float() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _weak_stand_in(dtype):
    # A Python scalar of the dtype's kind: what jax promotes as a weak type.
    k = np.dtype(dtype).kind
    return {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}.get(k, 0.0) if k != "V" else 0.0


def _stand_in_result_type(key):
    args = [_weak_stand_in(dt) if weak else dt for dt, weak in key]
    dt, weak = jax.dtypes.result_type(*args, return_weak_type_flag=True)
    return np.dtype(dt), bool(weak)


@functools.lru_cache(maxsize=4096)
def _lattice_cached(key, x64):
    # NOTE: jax.numpy promotes operands with `lattice_result_type`, which differs from
    # `jax.dtypes.result_type` for weak operands: weak operands all of one dtype keep it
    # (weak bf16 + weak bf16 is weak bf16, not the default float), and a bool result is
    # never weak. This is that function, written with the public `result_type`.
    if not all(isinstance(dt, np.dtype) for dt, _ in key):  # PRNG keys: no promotion
        if len({dt for dt, _ in key}) != 1:
            raise ShapeError(
                "cannot combine " + " and ".join(sorted({dtype_name(dt) for dt, _ in key}))
                + ": keys combine only with keys of the same type"
            )
        return key[0][0], False
    dtypes = [np.dtype(dt) for dt, _ in key]
    weaks = [weak for _, weak in key]
    if len(key) == 1:
        dt, weak = dtypes[0], weaks[0]
    elif len(set(dtypes)) == 1 and not all(weaks):
        dt, weak = dtypes[0], False
    elif all(weaks):
        dt, weak = jax.dtypes.result_type(*dtypes), True
    else:  # a weak operand among others: the lattice gives the default of its kind
        dt, weak = _stand_in_result_type(key)
    dt = np.dtype(jax.dtypes.canonicalize_dtype(dt))
    return dt, bool(weak) and dt != np.bool_


@functools.lru_cache(maxsize=4096)
def _result_type_cached(key, x64):
    dt, weak = _lattice_cached(key, x64)
    if weak:  # jax.dtypes.result_type: a weak result takes the default of its kind
        kind = "f" if is_inexact(dt) and dt.kind != "c" else dt.kind
        wide = {"i": np.int64, "u": np.uint64, "f": np.float64, "c": np.complex128}[kind]
        dt = np.dtype(jax.dtypes.canonicalize_dtype(wide))
    return dt, weak


def promote(*types: TensorType) -> tuple[np.dtype, bool]:
    """Result dtype and weak flag of combining ``types``, by JAX's promotion lattice: the
    type jax.numpy converts the operands of its elementwise ops to."""
    key = tuple([(t.dtype, t.weak) for t in types])
    return _lattice_cached(key, jax.config.jax_enable_x64)


def result_type(*types: TensorType) -> tuple[np.dtype, bool]:
    """`jax.dtypes.result_type` of ``types`` with its weak flag: as `promote`, but a weak
    result takes the default dtype of its kind (what jnp.matmul and jnp.einsum give)."""
    key = tuple([(t.dtype, t.weak) for t in types])
    return _result_type_cached(key, jax.config.jax_enable_x64)


def to_inexact(dtype) -> np.dtype:
    """The dtype a float-valued op gives for an input dtype (as jax.numpy does)."""
    if is_inexact(dtype):
        return np.dtype(dtype)
    return default_float() if np.dtype(dtype).itemsize == 8 else np.dtype(np.float32)


# -- shapes -------------------------------------------------------------------------


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """numpy's broadcasting of ``shapes`` (in Python: numpy's takes microseconds)."""
    if len(shapes) == 2:  # the common cases: equal shapes, a scalar and a shape
        a, b = shapes
        if a == b or not b:
            return tuple(a)
        if not a:
            return tuple(b)
    elif shapes and all(s == shapes[0] for s in shapes):
        return tuple(shapes[0])
    ndim = max(map(len, shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        dims = {s[i] for s in shapes if len(s) >= -i}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(
                "shapes " + ", ".join(str(list(s)) for s in shapes) + " cannot be broadcast together"
            )
        out.append(int(dims.pop()) if dims else 1)
    return tuple(out)


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


# -- type rules ---------------------------------------------------------------------
# Rules are ``(*input_types, **attrs) -> field``; these are the standard ones and the
# small building blocks op blocks share.


def standard_dtype(*types: TensorType, **_) -> np.dtype:
    """The default dtype rule: JAX's promotion of the operands (one operand: its dtype)."""
    if len(types) == 1:
        return types[0].dtype
    if not types:
        raise TypeError("an op without operands needs a dtype rule")
    return promote(*types)[0]


def standard_weak(*types: TensorType, **_) -> bool:
    """The default weak rule: JAX's weak flag of the promotion (one operand: its flag)."""
    if len(types) == 1:
        return types[0].weak
    if not types:
        return False
    return promote(*types)[1]


def standard_sharding(shape_rule, multi_output=False):
    """The default sharding rule of an op with shape rule ``shape_rule``, for ops whose
    output dims line up with their operands' (elementwise, broadcasting): the output
    gets the sharding of the operands shaped like it when they all agree (None counts
    as one), else None. `defop` builds it for each op that gives no ``sharding=``.

    NOTE: a rule sees the operand types only, as in JAX; this one needs the output shape,
    so it runs the shape rule again — only when some operand has a sharding. Ops whose
    output can have an operand's shape with other dims (transpose, matmul, gathers)
    must not use it."""

    def common(out, types):
        specs = {t.sharding for t in types if t.shape == out}
        return specs.pop() if len(specs) == 1 else None

    def rule(*types, **attrs):
        if not multi_output:
            for t in types:
                if t.sharding is not None:
                    break
            else:
                return None  # the common case: no need for the output shape
        out = shape_rule(*types, **attrs)
        if multi_output:
            return tuple(common(tuple(s), types) for s in out)
        return common(tuple(out), types)

    return rule


def promoted_dtype(*types: TensorType, **_) -> np.dtype:
    """`result_type`'s dtype of every operand, also of a single one: a weak result takes
    the default dtype of its kind (jnp.einsum, jnp.matmul)."""
    return result_type(*types)[0]


def promoted_weak(*types: TensorType, **_) -> bool:
    return result_type(*types)[1]


def same_shape(x: TensorType, *_, **__) -> tuple[int, ...]:
    """The shape rule of ops that keep their (first) operand's shape."""
    return x.shape


def broadcast_shape(*types: TensorType, **_) -> tuple[int, ...]:
    """The shape rule of elementwise ops: numpy broadcasting of all operands."""
    return broadcast_shapes(*(t.shape for t in types))


def inexact_dtype(x: TensorType, *_, **__) -> np.dtype:
    """The dtype rule of float-valued ops: integers and bool become floats (`to_inexact`)."""
    return to_inexact(x.dtype)


def inexact_weak(x: TensorType, *_, **__) -> bool:
    """The weak rule of float-valued ops (as jax.numpy's): a weak operand gives a weak
    result, except a (weak) bool, which is never weak in JAX's promotion."""
    return x.weak and not is_bool(x.dtype)


def numeric_dtype(*types: TensorType, **_) -> np.dtype:
    """`standard_dtype`, with bool made the default int (jax.numpy's arithmetic that has
    no bool form: floor_divide, remainder, power)."""
    dt = standard_dtype(*types)
    return default_int() if is_bool(dt) else dt


def as_inexact(x):
    """An implementation's operand as the float jax.numpy would compute in: integers and
    bool become `to_inexact` of their dtype, a weak int stays weak (`inexact_weak`)."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    if weak_of(x) and not is_bool(x.dtype):
        return jnp.multiply(x, 1.0)  # weak int * weak float: the weak float of its width
    return jax.lax.convert_element_type(x, to_inexact(x.dtype))


def first_dtype(x: TensorType, *_, **__) -> np.dtype:
    """The dtype of the first operand (ops whose other operands are indices, keys, ...)."""
    return x.dtype


def first_weak(x: TensorType, *_, **__) -> bool:
    return x.weak


def first_sharding(x: TensorType, *_, **__):
    return x.sharding


def fixed_dtype(dtype):
    """A dtype rule giving ``dtype`` whatever the operands: ``fixed_dtype(np.bool_)``."""
    dt = np.dtype(dtype)
    return lambda *_, **__: dt


def lax_weak(x: TensorType, y: TensorType, *_, **__) -> bool:
    """The weak rule of lax contractions (dot_general, convolutions), whose implementations
    convert both operands to `promoted_dtype` (a strong conversion): weak only when both
    operands are weak and already of that dtype (no conversion happened)."""
    return x.weak and y.weak and x.dtype == y.dtype == promoted_dtype(x, y)


def never_weak(*_, **__) -> bool:
    """The weak rule of ops whose results are never weakly typed."""
    return False


def no_sharding(*_, **__) -> None:
    """The sharding rule of ops with no obvious one (the output dims do not line up with
    the operands': contractions, gathers, convolutions): none."""


def require_int_or_bool(op, *types):
    for t in types:
        if not (is_int(t.dtype) or is_bool(t.dtype)):
            raise ShapeError(f"{op} needs integer or bool operands, got {t}")
