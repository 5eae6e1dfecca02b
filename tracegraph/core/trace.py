"""`Trace`, the trace stack and `bind`: the one point where every op is intercepted.

A `Trace` is the policy of one way of running code (autodidax's ``Trace``, torch.fx's
``TracerBase``). `bind(op_name, *args, **attrs)` hands the op to the current trace: the
trace ``lift``s each operand into its own kind of value and ``process``es the op —
the evaluation trace runs it, a graph trace appends a node, define-by-run does both.
A `Tensor` asks its trace every question about a concrete value (`to_bool`,
`concrete`), so each mode decides whether to answer, raise, or record a guard.

The stack of active traces is a `contextvars.ContextVar`: every thread (and every
asyncio task) has its own, so concurrent callers never see each other's traces. The
`EvalTrace` sits at the bottom: plain arrays in, plain arrays out.

Example::

    with using(GraphTrace("f")) as t:       # everything bound here becomes a node
        y = bind("sin", t.new_input(TensorType((3,), "float32"), "x"))
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import os
import sys

import jax
import numpy as np

from .._caches import cache
from ..errors import _PACKAGE_DIR, Error, ShapeError, TracingError, user_location, user_location_long
from ..ir import registry
from ..ir.registry import _OPS  # bind reads it directly: every op asks
from ..ir.graph import Node, Value
from ..ir.types import TensorType, is_key
from .execute import attrs_key, run_impl, weak_value
from .tensor import Tensor

_CONTROL_FLOW_HINT = (
    "Use tg.where(...) or tg.cond(pred, true_fn, false_fn, ...) for a data-dependent "
    "branch, tg.while_loop(cond_fn, body_fn, init) for a data-dependent loop, or pass "
    "the value as static (tg.jit(..., static_argnums=...)); tg.eager runs Python "
    "control flow on concrete values."
)
_STATIC_HINT = (
    "Keep it a tensor, or make the argument static (tg.jit(..., static_argnums=...)), "
    "or run define-by-run with tg.eager where values are concrete."
)
_HINTS = {
    "Python truth value (if/while/and/or)": _CONTROL_FLOW_HINT,
    "Conversion to a numpy array": "numpy functions cannot run on traced tensors; use the tg.* functions.",
}


class Trace:
    """The policy of one way of running code. Subclasses override what differs.

    - ``lift(x)``: an operand (a Tensor of this or an enclosing trace, a Python scalar,
      a numpy/JAX array) as a value of this trace;
    - ``process(op, operands, attrs)``: apply an op (an `OpDef`) to lifted operands;
      returns the list of outputs;
    - ``process_node(node, operands)``: the same for an existing IR node (keeping its
      attributes, location and scope) — what `eval_graph` calls;
    - ``lift_constant(value)``: a graph constant (an IR `Value` with data);
    - ``to_bool(t)`` / ``concrete(t, what)``: a concrete value, or a `TracingError`;
    - ``known_value(x)``: the concrete value if this trace has one, else None (never
      raises: control flow asks it to choose between running a branch and tracing both).
    """

    parent: "Trace | None" = None
    # A free trace's Tensors live outside any ``with`` block (imperative tensors, PyTorch
    # style): `bind` at the bottom of the stack hands ops on them to their own trace, and
    # a graph trace takes them in as the array they hold.
    free: bool = False

    def lift(self, x):
        raise NotImplementedError

    def process(self, op, operands, attrs) -> list:
        raise NotImplementedError

    def process_node(self, node, operands, data=None) -> list:
        raise NotImplementedError

    def lift_constant(self, value):
        raise NotImplementedError

    def constant(self, array, weak: bool = False):
        """A constant array as a value of this trace."""
        raise NotImplementedError

    def to_bool(self, t) -> bool:
        return bool(self.concrete(t, "Python truth value (if/while/and/or)"))

    def concrete(self, t, what: str):
        raise TracingError(
            f"{what} of a traced tensor ({t.type}) at {user_location_long(3)}: "
            f"its value is not known while tracing. {_HINTS.get(what, _STATIC_HINT)}"
        )

    def known_value(self, x):
        return None

    def call_block(self, build, ins: list, cache: dict, key) -> list:
        """A block of library code whose ops user code does not see one by one (a
        `tg.from_jax` function): ``build(ins)`` binds its ops under the current trace and
        returns its output Tensors. ``cache``/``key``: where a trace that runs such
        blocks whole keeps what it made of this one (define-by-run keeps its graph).
        By default the ops are bound one by one."""
        return build(ins)

    def inplace(self, t, fn, other):
        """``t op= other`` (``t += 1``): by default Python's meaning for immutable values,
        a new Tensor bound to the same name. Imperative tensors update in place."""
        return fn(t, other)

    def foreign_call(self, t):
        """A JAX function was called on ``t`` (``jnp.sin(t)``): it would run outside the
        graph, so every trace refuses, naming the JAX function and the user's line."""
        raise TracingError(foreign_call_message(t))

    # module paths for the nodes created under this trace (`tg.scope`)
    def push_scope(self, name: str) -> None:
        pass

    def pop_scope(self) -> None:
        pass


_JAX_DIR = os.path.dirname(os.path.abspath(jax.__file__)) + os.sep
_JAX_NUMPY_LAX = (os.path.join(_JAX_DIR, "_src", "numpy", ""), os.path.join(_JAX_DIR, "_src", "lax", ""))


def foreign_call_message(t) -> str:
    """``jax.numpy.sin was called on a tracegraph Tensor (f32[3]) at f.py:3 (in g) ...``"""
    frame, name = sys._getframe(1), None
    pjit_file = os.path.join(_JAX_DIR, "_src", "pjit.py")
    while frame is not None and (
        frame.f_code.co_filename.startswith(_JAX_DIR) or frame.f_code.co_filename.startswith(_PACKAGE_DIR)
    ):
        code = frame.f_code
        if code.co_filename.startswith(_JAX_NUMPY_LAX) and not code.co_name.startswith("_"):
            name = code.co_name  # the outermost public jax.numpy / lax function so far
        elif code.co_filename == pjit_file and callable(frame.f_locals.get("fun")):
            # a jitted jax.numpy function (jnp.tanh): pjit holds it as ``fun``
            fun_name = getattr(frame.f_locals["fun"], "__name__", "")
            if fun_name and not fun_name.startswith("_"):
                name = fun_name
        frame = frame.f_back
    where = "<unknown location>" if frame is None else (
        f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name})"
    )
    what = f"the JAX function {name}()" if name else "a JAX function"
    return (
        f"{what} was called on a tracegraph Tensor ({t.type}) at {where}: it would run "
        "outside the graph (no node, no gradient). Use the tg.* function of the same name "
        "(tg.sin, tg.matmul, ...: they mirror jax.numpy), or wrap the JAX code with "
        "tg.from_jax(fn), which turns its jaxpr into tracegraph IR."
    )


# -- the stack -------------------------------------------------------------------------

_TRACES: contextvars.ContextVar[tuple] = contextvars.ContextVar("tracegraph_traces", default=())


def current_trace() -> Trace:
    """The innermost active trace of this thread/task (`EVAL` when none is)."""
    stack = _TRACES.get()
    return stack[-1] if stack else EVAL


def at_bottom() -> bool:
    """True when no trace is active: plain arrays in, plain arrays out."""
    return not _TRACES.get()


@contextlib.contextmanager
def using(trace: Trace):
    """Make ``trace`` the current trace inside the ``with`` block."""
    token = _TRACES.set(_TRACES.get() + (trace,))
    try:
        yield trace
    finally:
        _TRACES.reset(token)


@contextlib.contextmanager
def scope(name: str):
    """Name scope for the nodes created inside: ``with tg.scope("encoder"): ...``.

    Scopes nest with dots (``encoder.layer0.attn``) and print after each node's location.
    """
    trace = current_trace()
    trace.push_scope(str(name))
    try:
        yield
    finally:
        trace.pop_scope()


def bind(op_name: str, *args, **attrs):
    """Apply op ``op_name`` to operands (arrays positional, static attributes keyword)
    under the current trace; returns one output, or a tuple for multi-output ops.

    With no trace active the op runs at once on plain arrays and JAX arrays come back.
    """
    stack = _TRACES.get()
    trace = stack[-1] if stack else _bottom_trace(args)
    op = _OPS.get(op_name) or registry.lookup(op_name)
    # a Tensor of this trace is its own operand (most operands, most often); the
    # elementwise functions bind through `bind1`/`bind2`
    outs = trace.process(op, [a if a.__class__ is Tensor and a._trace is trace else trace.lift(a)
                              for a in args], attrs)
    return tuple(outs) if op.multi_output or len(outs) != 1 else outs[0]


def bind1(op_name: str, a):
    """`bind` of an op with one operand and no attributes (``tg.sin``): the same, without
    packing arguments (define-by-run runs one per op)."""
    stack = _TRACES.get()
    trace = stack[-1] if stack else _bottom_trace((a,))
    op = _OPS.get(op_name) or registry.lookup(op_name)
    outs = trace.process(op, [a if a.__class__ is Tensor and a._trace is trace else trace.lift(a)], {})
    return tuple(outs) if op.multi_output or len(outs) != 1 else outs[0]


def bind2(op_name: str, a, b):
    """`bind` of an op with two operands and no attributes (``x * y``)."""
    stack = _TRACES.get()
    trace = stack[-1] if stack else _bottom_trace((a, b))
    op = _OPS.get(op_name) or registry.lookup(op_name)
    outs = trace.process(op, [a if a.__class__ is Tensor and a._trace is trace else trace.lift(a),
                              b if b.__class__ is Tensor and b._trace is trace else trace.lift(b)], {})
    return tuple(outs) if op.multi_output or len(outs) != 1 else outs[0]


def _bottom_trace(args) -> Trace:
    """With no trace active: the trace of an imperative (free) Tensor among the
    operands, else the evaluation trace."""
    for a in args:
        if isinstance(a, Tensor) and a._trace.free:
            return a._trace
    return EVAL


# (op, input types, attributes) -> (normalized attributes, output types): the shape rules
# run once per distinct application, not once per op executed (define-by-run, tracing)
_INFERRED: dict = cache({})
_INFERRED_MAX = 1 << 16


def check_and_infer(op, in_types, attrs) -> tuple[dict, tuple]:
    """Normalized attributes and output types of applying ``op``; a user's mistake
    raises `ShapeError`/`TracingError` naming the op, the operand types and the line.
    Cached per (op, input types, attributes); callers must not change the result."""
    try:
        # the rules read the x64 mode (canonical dtypes): part of the key
        key = (op.name, tuple(in_types), attrs_key(attrs), jax.config.jax_enable_x64)
        hit = _INFERRED.get(key)
    except TypeError:  # an unhashable attribute (a list): not cached
        key = hit = None
    if hit is not None:
        return hit
    try:
        attrs = op.check_attrs(attrs)
        op.check_arity(len(in_types))
        result = attrs, op.infer(in_types, attrs)
        if key is not None and len(_INFERRED) < _INFERRED_MAX:
            _INFERRED[key] = result
        return result
    except Error as e:
        operands = ", ".join(str(t) for t in in_types)
        # attribute and arity mistakes in user code are tracing errors, not malformed IR
        cls = ShapeError if isinstance(e, ShapeError) else TracingError
        raise cls(f"{op.name}({operands}): {e} (at {user_location_long(3)})") from None


# -- operand types ------------------------------------------------------------------------


def python_scalar_dtype(x) -> np.dtype:
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, numbers.Integral):
        return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))
    if isinstance(x, numbers.Real):
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    return np.dtype(jax.dtypes.canonicalize_dtype(np.complex128))


def is_python_scalar(x) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def type_of(x) -> TensorType:
    """The TensorType of an array-like operand, as JAX types it (Python int/float/
    complex weak, bool strong, arrays by their canonical dtype and weak flag)."""
    if isinstance(x, Tensor):
        return x._value.type
    if is_python_scalar(x):
        return TensorType((), python_scalar_dtype(x), not isinstance(x, bool))
    if isinstance(x, jax.core.Tracer):
        aval = x.aval
        return TensorType(aval.shape, aval.dtype, bool(getattr(aval, "weak_type", False)))
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        weak = bool(getattr(x, "weak_type", False))
        if is_key(x.dtype):  # a typed PRNG key array (jax.random.key)
            return TensorType(tuple(x.shape), x.dtype)
        return TensorType(tuple(x.shape), jax.dtypes.canonicalize_dtype(x.dtype), weak)
    raise TypeError(f"not an array: {type(x).__name__}")


def canonical_array(x):
    """A numpy or JAX array operand in JAX's canonical dtype (x64 off: 32 bits)."""
    if is_key(x.dtype):
        return x
    dt = jax.dtypes.canonicalize_dtype(x.dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x, dtype=dt)
    return x if x.dtype == dt else x.astype(dt)


# -- the evaluation trace -------------------------------------------------------------------

# scopes opened with no trace active (`tg.scope`, module calls): imperative ops record them
_BOTTOM_SCOPES: contextvars.ContextVar[tuple] = contextvars.ContextVar("tracegraph_bottom_scopes", default=())


def bottom_scope() -> str:
    """The dotted scope opened at the bottom of this thread's stack (``encoder.0``)."""
    return ".".join(_BOTTOM_SCOPES.get())


@contextlib.contextmanager
def bottom_scope_as(path: str):
    """Inside, the bottom scope is exactly ``path`` (converted JAX code names its own)."""
    token = _BOTTOM_SCOPES.set(tuple(path.split(".")) if path else ())
    try:
        yield
    finally:
        _BOTTOM_SCOPES.reset(token)



class EvalTrace(Trace):
    """The bottom of the stack: ops run at once on plain arrays (or JAX tracers, when
    JAX is tracing a graph's lowering). Stateless, so one instance serves all threads."""

    def lift(self, x):
        if isinstance(x, Tensor):
            if x._trace.free:  # an imperative tensor reaching control flow: its value
                return x
            raise TracingError(
                f"a traced tensor ({x.type}) is used outside the trace that made it "
                f"(at {user_location_long(3)})"
            )
        if is_python_scalar(x):
            # a Python int/float stays a Python scalar: JAX keeps it weakly typed
            return np.asarray(x) if isinstance(x, bool) else x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return x if isinstance(x, jax.core.Tracer) else canonical_array(x)
        if isinstance(x, (list, tuple)):
            return np.asarray(x)
        raise TracingError(
            f"cannot use a {type(x).__name__} as an array operand (at {user_location_long(3)})"
        )

    def process(self, op, operands, attrs) -> list:
        attrs, out_types = check_and_infer(op, [type_of(a) for a in operands], attrs)
        node = Node(op.name, (), attrs, [Value(t) for t in out_types], user_location(1))
        return run_impl(op, node, operands)

    def process_node(self, node, operands, data=None) -> list:
        return run_impl(registry.lookup(node.op), node, operands)

    def lift_constant(self, value):
        return weak_value(value.data, value.type.dtype) if value.type.weak else value.data

    def push_scope(self, name: str) -> None:
        _BOTTOM_SCOPES.set(_BOTTOM_SCOPES.get() + (name,))

    def pop_scope(self) -> None:
        _BOTTOM_SCOPES.set(_BOTTOM_SCOPES.get()[:-1])

    def constant(self, array, weak: bool = False):
        return weak_value(array, np.asarray(array).dtype) if weak else jax.numpy.asarray(array)

    def known_value(self, x):
        if isinstance(x, Tensor) and x._trace.free:
            return x._data
        if isinstance(x, jax.core.Tracer):
            raise TracingError(
                "a JAX tracer reached tracegraph control flow outside any tracegraph trace; "
                "call it inside tg.jit, or convert the JAX code with tg.from_jax "
                f"(at {user_location_long(3)})"
            )
        return x


EVAL = EvalTrace()
