"""Running one op on arrays: ``op.impl(*arrays, **attrs)``, its outputs checked against
the node's types, and a failure re-raised naming the op and the user's line.

Every way of computing values ends here: the evaluation trace at the bottom of the
stack, define-by-run, the interpreter, the JAX lowering and constant folding.
"""

from __future__ import annotations

import functools
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax._src.array import ArrayImpl  # the concrete array type: its shape/dtype read directly
from jax._src.lax.lax import _convert_element_type  # no public way makes a weak array

from .._caches import cache
from ..errors import Error
from ..ir.types import is_key


def weak_value(a, dtype):
    """A weakly typed value of ``a``: a Python scalar for a 0-d value (as JAX keeps
    Python scalars), a weak-typed JAX array otherwise (as ``jnp.arange(3) * 1.5``)."""
    if isinstance(a, (int, float, complex)) and not isinstance(a, bool):
        return a
    if weak_of(a) and a.dtype == dtype:
        return a
    if np.ndim(a) == 0 and not isinstance(a, jax.core.Tracer):
        return np.asarray(a).item()
    return weak_array(a, dtype)


def weak_array(a, dtype):
    """``a`` as a weakly typed JAX array of ``dtype`` (0-d too)."""
    return _convert_element_type(jnp.asarray(a), jnp.dtype(dtype), weak_type=True)


def weak_of(a) -> bool:
    """JAX's weak flag of a value: Python int/float/complex are weak, Python bools never."""
    if isinstance(a, bool):
        return False
    if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
        return True
    aval = getattr(a, "aval", None)
    if aval is not None:
        return bool(getattr(aval, "weak_type", False))
    return bool(getattr(a, "weak_type", False))


def run_impl(op, node, arrays, check: bool = True) -> list:
    """``op.impl(*arrays, **node.attrs)`` as a list of outputs, type-checked unless
    ``check=False`` (the caller checked this node's outputs once already)."""
    try:
        out = op.impl(*arrays, **node.attrs)
    except Error:
        raise
    except Exception as e:  # a JAX error: re-raise naming the op and the user line
        raise Error(
            f"{node.op} at {node.location or '?'} failed: {type(e).__name__}: {e}"
        ) from e
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if check:
        check_outputs(node, outs)
    return outs


# (op, attributes) -> the implementation compiled by jax.jit, for define-by-run and the
# interpreter: one C++ dispatch per op instead of jax.numpy's Python-level one
_COMPILED: dict = cache({})
_COMPILED_MAX = 1 << 14


def attrs_key(attrs) -> tuple:
    """A hashable key of an attribute dict that tells apart what ``==`` does not:
    ``1``, ``1.0`` and ``True``; ``0.0`` and ``-0.0`` (floats by their bits). Hashing it
    raises TypeError for unhashable values (a list)."""
    if not attrs:
        return ()
    return tuple((k, _value_key(v)) for k, v in sorted(attrs.items()))


def _value_key(v):
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, tuple):
        return ("tuple",) + tuple(_value_key(x) for x in v)
    return (type(v), v)


def compiled_impl(op, attrs):
    """``op.impl`` with ``attrs`` bound, compiled by ``jax.jit`` (cached per op and
    attributes); None where it cannot be cached (unhashable attributes, a full cache)."""
    try:
        key = (op.name, attrs_key(attrs))
        fn = _COMPILED.get(key)
    except TypeError:  # unhashable attributes: the plain implementation
        return None
    if fn is None and len(_COMPILED) < _COMPILED_MAX:
        fn = _COMPILED[key] = jax.jit(functools.partial(op.impl, **attrs))
    return fn


# (op, attributes, input types, x64 mode) -> the op compiled ahead of time for exactly
# those input types (a `jax.stages.Compiled`, called through JAX's C++ dispatch as fast as
# a `jax.jit` function). It holds the executable alone, about 0.2 MB; a `jax.jit` function
# keeps, for each signature it was called with, the traced jaxpr and the lowered MLIR
# module too, about 1.2 MB more, for as long as the function lives. Define-by-run, the
# imperative tape, the interpreter and constant folding run one op per call on every shape
# a program meets, so they use these (and so fold what the interpreter computes).
_EXECUTABLES: dict = cache({})
_EXECUTABLES_MAX = 1 << 14


def executable(op, attrs, in_types, donate: tuple = ()):
    """``op`` with ``attrs`` compiled for arguments of ``in_types`` (TensorTypes); the
    `compiled_impl` function where that cannot be done (placed inputs, whose shardings
    `jax.jit` follows; an unhashable attribute; a failure to lower, which the call then
    reports). A call with arguments on another device than the default raises
    ValueError: `call_executable` falls back to `compiled_impl`.

    ``donate``: positions of arguments whose buffers the executable may reuse for its
    outputs (``donate_argnums``); the caller must hold the only reference to each, which
    is dead after the call. None where no such executable can be made."""
    try:
        key = (op.name, attrs_key(attrs), tuple(in_types), jax.config.jax_enable_x64, donate)
        exe = _EXECUTABLES.get(key)
    except TypeError:  # unhashable attributes: the plain implementation
        return None
    if exe is not None:
        return exe
    fn = compiled_impl(op, attrs)
    if fn is None:
        return None
    if jax.config.jax_default_device is not None or any(t.sharding is not None for t in in_types):
        return None if donate else fn  # arrays placed by the user: jax.jit follows them
    try:
        specs = [jax.ShapeDtypeStruct(t.shape, t.dtype, weak_type=t.weak) for t in in_types]
        # a fresh jit function: JAX's staging caches are keyed on it and go with it
        with warnings.catch_warnings():  # a donation XLA could not use is no error
            warnings.filterwarnings("ignore", "Some donated buffers were not usable")
            exe = jax.jit(functools.partial(op.impl, **attrs), donate_argnums=donate).lower(*specs).compile()
    except Exception:  # noqa: BLE001 - the call through `fn` raises it, named
        return None if donate else fn
    if len(_EXECUTABLES) < _EXECUTABLES_MAX:
        _EXECUTABLES[key] = exe
    return exe


def call_executable(fn, op, attrs, arrays):
    """``fn(*arrays)``; an executable given arrays it was not compiled for (another
    device) runs through `compiled_impl` instead."""
    try:
        return fn(*arrays)
    except ValueError:
        if not isinstance(fn, jax.stages.Compiled):
            raise
        return compiled_impl(op, attrs)(*arrays)


def run_compiled(op, node, arrays, fn=None, check: bool = True) -> list:
    """`run_impl` through `executable` (concrete arrays only); ``fn``: that function
    when the caller has it already; ``check=False`` skips the output type check (the
    caller checked this op, attributes and input types once). Arrays the executable
    refuses (other types than the node's, as a hook's replacement or a Python int for a
    weak float can be) and a failure inside it go to the plain implementation, which
    computes them or names the op and the user's line."""
    if fn is None:
        fn = executable(op, node.attrs, [v.type for v in node.inputs])
        if fn is None:
            return run_impl(op, node, arrays)
    try:
        out = call_executable(fn, op, node.attrs, arrays)
    except Error:
        raise
    except Exception:  # noqa: BLE001 - run_impl raises it again, named, if it is one
        return run_impl(op, node, arrays, check)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if check:
        check_outputs(node, outs)
    return outs


def check_outputs(node, arrays) -> None:
    if len(arrays) == len(node.outputs) and all(
        type(a) is ArrayImpl and a.shape == v.type.shape and a.dtype == v.type.dtype and a.weak_type == v.type.weak
        for a, v in zip(arrays, node.outputs)
    ):
        return  # the common case, JAX arrays as typed: read directly
    if len(arrays) != len(node.outputs):
        raise Error(
            f"internal error in op {node.op!r}: implementation gave {len(arrays)} outputs, "
            f"the shape rule {len(node.outputs)}"
        )
    for a, v in zip(arrays, node.outputs):
        t = v.type
        if isinstance(a, numbers.Number) and not isinstance(a, np.generic):
            dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.asarray(a).dtype))  # weak scalar
        elif is_key(getattr(a, "dtype", None)):
            dtype = a.dtype  # a PRNG key array
        else:
            dtype = np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype)
        if tuple(np.shape(a)) != t.shape or dtype != t.dtype or weak_of(a) != t.weak:
            got = f"{dtype}{list(np.shape(a))}{'~' if weak_of(a) else ''}"
            raise Error(
                f"internal error in op {node.op!r} at {node.location or '?'}: the "
                f"implementation returned {got} but the shape rule says {t}"
            )
