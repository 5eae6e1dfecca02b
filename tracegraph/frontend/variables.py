"""TensorFlow 2's imperative style on the imperative tape: `Variable`, `constant`,
`GradientTape` — one mechanism with PyTorch's ``.backward()``, two spellings.

A `Variable` is an imperative tensor (`TapeTensor`) that can be re-assigned
(``assign``, ``assign_add``, ``assign_sub``) without losing its identity. A trainable
Variable is *watched* while a `GradientTape` is open (``watch_accessed_variables=True``,
the default): ops on it are then recorded as TapeNodes, exactly as ops on a tensor with
``requires_grad=True`` are; outside every tape nothing is recorded, as in TensorFlow.

A `GradientTape` keeps the nodes recorded while it is open (``TapeTrace.process`` hands
each new node to every open tape). ``tape.gradient(target, sources)`` walks back from the
target through *those* nodes only — a value computed before the tape opened is a constant
to it — stopping at the sources, builds the forward graph and its backward graph with the
same per-op VJP rules as ``tg.grad`` and ``.backward()`` (`tape._Tape`), and runs it
(compiled once the same structure came back, as ``.backward()`` does). When another tape
is open around the call, the backward runs op by op on tape tensors, so that the outer
tape records it and differentiates it again (second order), as TensorFlow's nested tapes.

Example::

    w = tg.Variable(tg.random.normal([1]), name="weight")
    b = tg.Variable(tg.zeros([1]), name="bias")
    with tg.GradientTape() as tape:
        loss = tg.reduce_mean(tg.square(w * x + b - y))
    dw, db = tape.gradient(loss, [w, b])
    w.assign_sub(0.01 * dw)

    x = tg.constant(3.0)
    with tg.GradientTape() as outer:
        outer.watch(x)
        with tg.GradientTape() as inner:
            inner.watch(x)
            y = x * x * x
        dy = inner.gradient(y, x)          # 3 x^2 = 27, recorded by `outer`
    d2y = outer.gradient(dy, x)            # 6 x = 18
"""

from __future__ import annotations

import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Linearized, Tensor, at_bottom, current_trace, using
from ..errors import ShapeError, TracingError, user_location_long
from ..ir.graph import Graph, Value
from ..ir.types import TensorType, is_inexact
from .tape import _RECORDERS, TapeTensor, _array_of, _Tape, is_grad_enabled, leaf

UNCONNECTED = ("none", "zero")


class Variable(TapeTensor):
    """A mutable tensor, TensorFlow's ``tf.Variable``: ``Variable(initial_value,
    trainable=True, name=None, dtype=None, shape=None)`` (``initial_value`` may be a
    callable). Reads are ordinary tensor ops; ``assign``/``assign_add``/``assign_sub``
    change its value in place (nodes recorded earlier keep the value they read)."""

    __slots__ = ("_trainable", "_watch_count")
    # mutable state: a compiled function must take it as an argument, never bake it in
    mutable = True

    def __init__(self, initial_value, trainable: bool = True, name: str | None = None, dtype=None,
                 shape=None):
        from .fn_creation import canonical_dtype

        if callable(initial_value) and not isinstance(initial_value, Tensor):
            initial_value = initial_value()
        arr = _array_of(initial_value)
        if not hasattr(arr, "dtype"):
            arr = np.asarray(arr)
        dt = canonical_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(arr.dtype)
        arr = leaf(jnp.asarray(arr, dt))._data  # strongly typed, as tf.Variable holds it
        if shape is not None and tuple(shape) != tuple(arr.shape):
            raise ShapeError(
                f"Variable: initial value has shape {list(arr.shape)}, shape={list(shape)} was "
                f"given (at {user_location_long(1)})"
            )
        self._trainable = bool(trainable)
        self._watch_count = 0
        TapeTensor.__init__(self, Value(TensorType(arr.shape, arr.dtype), name=name), arr)

    # recording: while a tape that watches accessed variables is open, or watched
    @property
    def _requires_grad(self) -> bool:
        if self._watch_count:
            return True
        if self._trainable and is_inexact(self._value.type.dtype):
            for tape in _RECORDERS.get():
                if tape._watch_accessed:
                    return True
        return False

    @_requires_grad.setter
    def _requires_grad(self, flag) -> None:
        pass  # a Variable records by its trainable flag and the open tapes, not by a flag

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def name(self) -> str | None:
        return self._value.name

    def assign(self, value, use_locking=None, name=None, read_value: bool = True):
        """Set the value (same shape; cast to the variable's dtype); returns the variable.
        Inside recorded code the trace decides (`tg.function` makes it a state output)."""
        if not at_bottom():
            current_trace().assign_state(self, value)
        else:
            self._data = self._checked(value, "assign")
        return self if read_value else None

    def assign_add(self, delta, use_locking=None, name=None, read_value: bool = True):
        if not at_bottom():
            current_trace().assign_state(self, self + delta)
        else:
            self._data = self._data + self._checked(delta, "assign_add")
        return self if read_value else None

    def assign_sub(self, delta, use_locking=None, name=None, read_value: bool = True):
        if not at_bottom():
            current_trace().assign_state(self, self - delta)
        else:
            self._data = self._data - self._checked(delta, "assign_sub")
        return self if read_value else None

    def _checked(self, value, what: str):
        arr = _array_of(value)
        if isinstance(arr, jax.Array) and arr.shape == self.shape and arr.dtype == self.dtype and not arr.weak_type:
            return arr  # the common case (an optimizer's result): as is
        if not hasattr(arr, "shape"):
            arr = np.asarray(arr)
        if tuple(arr.shape) != self.shape and arr.shape != ():
            raise ShapeError(
                f"Variable.{what}: a value of shape {list(arr.shape)} for a variable of type "
                f"{self.type} (at {user_location_long(1)})"
            )
        if np.dtype(self.dtype).kind in "biu" and np.dtype(arr.dtype).kind in "fc":
            raise ShapeError(
                f"Variable.{what}: a {np.dtype(arr.dtype).name} value for a variable of type "
                f"{self.type} (at {user_location_long(1)})"
            )
        return jnp.broadcast_to(jnp.asarray(arr, self.dtype), self.shape)

    def value(self):
        """The variable itself, read as a tensor (gradients flow through it)."""
        return self

    read_value = value

    def __repr__(self):
        return (f"<tg.Variable {self.name!r} shape={self.shape} dtype={np.dtype(self.dtype).name}, "
                f"numpy={np.asarray(self._data)!r}>")

    __str__ = __repr__


def constant(value, dtype=None, shape=None, name: str | None = None) -> TapeTensor:
    """A tensor holding ``value`` (TensorFlow's ``tf.constant``): with ``shape``, a scalar
    value fills it and a value with as many elements is reshaped to it."""
    from .fn_creation import canonical_dtype

    arr = _array_of(value)
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    dt = canonical_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(arr.dtype)
    arr = jnp.asarray(arr, dt)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if arr.size == 1:
            arr = jnp.broadcast_to(arr.reshape(()), shape)
        elif arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        else:
            raise ShapeError(
                f"constant: {arr.size} elements do not fill shape {list(shape)} (at {user_location_long(1)})"
            )
    return leaf(arr, False, name)


convert_to_tensor = constant


class GradientTape:
    """TensorFlow's ``tf.GradientTape(persistent=False, watch_accessed_variables=True)``
    (see the module doc): open it with ``with``; ``watch(tensor)``; ``gradient(target,
    sources, output_gradients=None, unconnected_gradients="none")``; ``jacobian``;
    ``stop_recording()``; ``reset()``; ``watched_variables()``."""

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._nodes: dict = {}  # id(TapeNode) -> node, in recording order
        self._watched: dict = {}  # id(Value) -> tensor
        self._raised: list = []  # tensors watch() made record, until the tape closes
        self._tokens: list = []
        self._used = False
        # opened inside recorded code (tg.function, tg.jit, tg.eager): that trace, and the
        # range of its nodes made while the tape was open
        self._trace = None
        self._span = (0, None)

    # -- recording ---------------------------------------------------------------------
    def __enter__(self) -> "GradientTape":
        trace = current_trace()
        if not at_bottom() and hasattr(trace, "builder"):
            self._trace = trace
            self._span = (len(trace.builder.nodes), None)
            if getattr(trace, "values", 0) is None:  # define-by-run: keep what gradient reads
                trace.values = {}
        self._tokens.append(_RECORDERS.set(_RECORDERS.get() + (self,)))
        for t in self._watched.values():  # watched before the tape opened
            if isinstance(t, TapeTensor):
                self._raise(t)
        return self

    def __exit__(self, *exc):
        _RECORDERS.reset(self._tokens.pop())
        if self._trace is not None:
            self._span = (self._span[0], len(self._trace.builder.nodes))
        for t in self._raised:
            if isinstance(t, Variable):
                t._watch_count -= 1
            else:
                TapeTensor._requires_grad.__set__(t, False)
        self._raised = []
        return False

    def _record(self, node) -> None:
        self._nodes[id(node)] = node

    def _open(self) -> bool:
        return any(t is self for t in _RECORDERS.get())

    def _raise(self, t) -> None:
        if isinstance(t, Variable):
            t._watch_count += 1
            self._raised.append(t)
        elif not t._requires_grad and t.is_leaf:
            TapeTensor._requires_grad.__set__(t, True)
            self._raised.append(t)

    def watch(self, tensor) -> None:
        """Record the ops on ``tensor`` (a tensor or a structure of them) from now on,
        and allow it as a source of ``gradient``."""
        for t in _leaves(tensor):
            if not isinstance(t, Tensor):
                raise TracingError(
                    f"GradientTape.watch: a {type(t).__name__} is not a tensor it can watch; "
                    f"make it one with tg.constant(...) or tg.Variable(...) (at {user_location_long(1)})"
                )
            if not is_inexact(t.dtype):
                warnings.warn(f"GradientTape.watch: {t.type} is not a float tensor; it has no gradient",
                              stacklevel=2)
                continue
            if id(t._value) in self._watched:
                continue
            self._watched[id(t._value)] = t
            if self._open() and isinstance(t, TapeTensor):
                self._raise(t)

    @contextlib.contextmanager
    def stop_recording(self):
        """Inside, this tape records nothing (values made there are constants to it)."""
        stack = _RECORDERS.get()
        token = _RECORDERS.set(tuple(t for t in stack if t is not self))
        try:
            yield
        finally:
            _RECORDERS.reset(token)

    def reset(self) -> None:
        """Forget everything recorded and watched so far."""
        self._nodes = {}
        self._watched = {}
        self._used = False

    def watched_variables(self) -> tuple:
        """The Variables this tape watches: watched explicitly, and (by default) every
        trainable Variable an op recorded here read."""
        found = {}
        for t in self._watched.values():
            if isinstance(t, Variable):
                found[id(t)] = t
        if self._watch_accessed:
            for node in self._nodes.values():
                for lf in node.leaves:
                    if isinstance(lf, Variable) and lf.trainable:
                        found.setdefault(id(lf), lf)
        return tuple(found.values())

    # -- gradients ---------------------------------------------------------------------
    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(sum of ``target``)/d``sources``, in the structure of ``sources``; None (or
        zeros with ``unconnected_gradients="zero"``) for a source the target does not
        depend on through ops this tape recorded, or that it does not watch."""
        self._check_use("gradient")
        targets, target_tree = jax.tree_util.tree_flatten(target, is_leaf=lambda x: isinstance(x, Tensor))
        cts = None
        if output_gradients is not None:  # one per target, in the target's structure
            try:
                cts = target_tree.flatten_up_to(output_gradients)
            except (ValueError, TypeError):
                cts = _leaves(output_gradients)
            if len(cts) != len(targets):
                raise ShapeError(
                    f"GradientTape.gradient: {len(cts)} output_gradients for {len(targets)} "
                    f"targets (at {user_location_long(1)})"
                )
        leaves, treedef = jax.tree_util.tree_flatten(sources, is_leaf=lambda x: isinstance(x, Tensor))
        grads = self._gradient(targets, leaves, cts, unconnected_gradients)
        if not self._persistent:
            self._used = True
            self._nodes = {}
        return jax.tree_util.tree_unflatten(treedef, grads)

    def jacobian(self, target, sources, unconnected_gradients="none", parallel_iterations=None,
                 experimental_use_pfor=True):
        """d``target``[i...]/d``source``[j...] for each source: shape ``target.shape +
        source.shape`` (one backward per element of the target)."""
        self._check_use("jacobian")
        if not isinstance(target, Tensor):
            raise TracingError(f"GradientTape.jacobian: the target must be a tensor (at {user_location_long(1)})")
        leaves, treedef = jax.tree_util.tree_flatten(sources, is_leaf=lambda x: isinstance(x, Tensor))
        rows = []
        for i in range(target.size):
            ct = jnp.zeros(target.size, target.dtype).at[i].set(1).reshape(target.shape)
            rows.append(self._gradient([target], leaves, [ct], "none"))
        zero = getattr(unconnected_gradients, "value", unconnected_gradients) == "zero"
        out = []
        for k, s in enumerate(leaves):
            got = [r[k] for r in rows]
            if all(g is None for g in got) and not zero:
                out.append(None)
                continue
            parts = [jnp.zeros(s.shape, s.dtype) if g is None else g._data for g in got]
            shape = tuple(target.shape) + tuple(s.shape)
            out.append(leaf(jnp.stack(parts).reshape(shape) if parts else jnp.zeros(shape, s.dtype)))
        if not self._persistent:
            self._used = True
            self._nodes = {}
        return jax.tree_util.tree_unflatten(treedef, out)

    def _check_use(self, what: str) -> None:
        if self._used and not self._persistent:
            raise TracingError(
                f"GradientTape.{what}: a non-persistent GradientTape can compute one set of "
                "gradients; create it with tg.GradientTape(persistent=True) to call it again "
                f"(at {user_location_long(1)})"
            )

    def _gradient(self, targets, sources, cts, unconnected) -> list:
        if unconnected not in UNCONNECTED and getattr(unconnected, "value", None) not in UNCONNECTED:
            raise ValueError(f"unconnected_gradients must be one of {UNCONNECTED}, got {unconnected!r}")
        zero = (getattr(unconnected, "value", unconnected) == "zero")
        if self._trace is not None:
            return self._graph_gradient(targets, sources, cts, zero)
        for s in sources:
            if not isinstance(s, TapeTensor):
                raise TracingError(
                    f"GradientTape.gradient: a source is a {type(s).__name__}; sources are "
                    f"Variables or watched tensors (at {user_location_long(1)})"
                )
        roots, root_cts = [], []
        for i, t in enumerate(targets):
            if not isinstance(t, TapeTensor):
                if isinstance(t, Tensor):
                    raise TracingError(
                        f"GradientTape.gradient: the target is a traced tensor ({t.type}); inside "
                        "tg.jit use tg.grad / tg.value_and_grad (at "
                        f"{user_location_long(1)})"
                    )
                continue  # a constant: no gradient
            if not is_inexact(t.dtype):
                raise TracingError(
                    f"GradientTape.gradient: the target {t.type} is not a float tensor (at "
                    f"{user_location_long(1)})"
                )
            ct = jnp.ones(t.shape, t.dtype) if cts is None else cts[i]
            if not isinstance(ct, TapeTensor):
                ct = jnp.asarray(_array_of(ct), t.dtype)
                if ct.shape != t.shape:
                    raise ShapeError(
                        f"GradientTape.gradient: output gradient of shape {list(ct.shape)} for "
                        f"a target {t.type} (at {user_location_long(1)})"
                    )
            roots.append(t)
            root_cts.append(ct)
        allowed = [s for s in sources if self._watches(s)]
        by_value: dict = {}
        if roots and allowed:
            tape = _Tape(roots, sources=list({id(s._value): s for s in allowed}.values()),
                         recorded=self._nodes)
            if tape.leaves:
                plan = tape.plan()
                # another tape open around this call: record the backward for it
                outer = is_grad_enabled() and any(t is not self for t in _RECORDERS.get())
                if outer:
                    grads = plan.run_recorded(tape, root_cts)
                else:
                    grads = [leaf(g) for g in plan.run(tape, [jnp.asarray(_array_of(c)) for c in root_cts])]
                for lf, g in zip(tape.leaves, grads):
                    by_value[id(lf._value)] = g
        out = []
        for s in sources:
            g = by_value.get(id(s._value))
            if g is None and zero:
                g = leaf(jnp.zeros(s.shape, s.dtype))
            out.append(g)
        return out

    def _graph_gradient(self, targets, sources, cts, zero) -> list:
        """The tape was open inside recorded code: differentiate the nodes that trace
        made meanwhile (`core.Linearized` over that stretch of its graph), binding the
        backward ops in the same trace, so they are part of the recorded graph."""
        trace = self._trace
        start, end = self._span
        nodes_here = trace.builder.nodes[start:end]
        recorded = {id(n) for n in nodes_here}
        for s in sources:
            if not isinstance(s, Tensor):
                raise TracingError(
                    f"GradientTape.gradient: a source is a {type(s).__name__}; sources are "
                    f"Variables or watched tensors (at {user_location_long(1)})"
                )
        with using(trace):
            srcs = [trace.lift(s) if self._watches(s) else None for s in sources]
            roots = [trace.lift(t) for t in targets]
        src_ids = {}
        for t in srcs:
            if t is not None:
                src_ids.setdefault(id(t._value), t)
        # the recorded nodes on a path from the sources to the targets, in order
        needed = {id(r._value) for r in roots}
        keep = []
        for node in reversed(nodes_here):
            if any(id(v) in needed for v in node.outputs) and not all(id(v) in src_ids for v in node.outputs):
                keep.append(node)
                needed.update(id(v) for v in node.inputs if id(v) not in src_ids)
        keep.reverse()
        made = {id(v) for n in keep for v in n.outputs}
        used = {id(v) for n in keep for v in n.inputs} | {id(r._value) for r in roots}
        primals = [t._value for t in src_ids.values()]
        externals, seen = [], set(src_ids)
        for n in keep:
            for v in n.inputs:
                if id(v) not in made and id(v) not in seen:
                    seen.add(id(v))
                    externals.append(v)
        outs = [r._value for r in roots]
        sub = Graph("gradient_tape", primals + externals, [], keep, outs)
        values = getattr(trace, "values", None)

        def tensor_of(v):
            data = None
            if values is not None:
                data = values.get(id(v))
                if data is None and v.data is not None:
                    data = v.data
            return Tensor(v, trace, data)

        env = {id(v): tensor_of(v) for v in sub.values()}
        for t in src_ids.values():
            env[id(t._value)] = t
        lin = Linearized.of_graph(trace, sub, env, len(primals))
        with using(trace):
            ct_list = []
            for i, r in enumerate(roots):
                c = jnp.ones(r.shape, r.dtype) if cts is None else cts[i]
                ct_list.append(trace.lift(c))
        grads = list(lin.pullback(lin.out_tree(ct_list))) if primals else []
        by_value = {id(v): g for v, g in zip(primals, grads)}
        out = []
        for s, t in zip(sources, srcs):
            g = None
            if t is not None and id(t._value) in used:
                g = by_value.get(id(t._value))
            if g is None and zero:
                with using(trace):
                    g = trace.lift(jnp.zeros(s.shape, s.dtype))
            out.append(g)
        return out

    def _watches(self, s) -> bool:
        if id(s._value) in self._watched:
            return True
        if isinstance(s, Variable):
            return self._watch_accessed and s.trainable
        # a PyTorch-style tensor that requires grad is recorded anyway
        return bool(getattr(s, "requires_grad", False))


def _leaves(tree) -> list:
    return jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, Tensor))


__all__ = ["GradientTape", "Variable", "constant", "convert_to_tensor"]
