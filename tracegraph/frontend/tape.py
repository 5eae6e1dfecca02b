"""Imperative autograd, as PyTorch users know it: ``requires_grad``, ``.backward()``,
``.grad``, ``tg.no_grad()`` — on the same IR and the same VJP rules as `tg.grad`.

Outside any trace, an op on an imperative tensor (`tg.tensor`, a module parameter) runs
at once (`bind` hands it to the tensor's own trace, `TAPE`). When grad mode is on and an
operand requires grad, the op is also *recorded*: its node (a `TapeNode`, an ordinary IR
`Node` that keeps the arrays its VJP rule may read) becomes the ``producer`` of its
outputs' Values. The forward graph therefore hangs off the tensors, as PyTorch's
``grad_fn`` chain does, and is freed by garbage collection with the last tensor that
reaches it. Ops under `no_grad`, or on tensors that do not require grad, record nothing.

``loss.backward()`` walks the producers back to the leaves, builds the forward graph
(`Tensor.tape`), and runs its backward graph (`Tensor.backward_graph`: made by
`core.Linearized` from the per-op VJP rules, so ``tg.grad`` and ``.backward()`` agree by
construction), accumulating ``.grad`` on the leaves. Backward graphs are cached by the
tape's structure (ops, attributes, types, wiring): a training loop builds its backward
graph once, interprets it on the first two steps, and runs it compiled by ``jax.jit``
from the third on (a structure seen once or twice is not worth an XLA compilation).

In-place updates (``w -= lr * w.grad`` under `no_grad`) keep the leaf and its
``requires_grad``: the tensor takes the new array; nodes recorded earlier keep the arrays
they saved, so a later ``.backward()`` through them is still right.

Example::

    w = tg.tensor([0.5], requires_grad=True)
    loss = ((w * x - y) ** 2).mean()
    loss.backward()                  # w.grad
    with tg.no_grad():
        w -= 0.1 * w.grad
    w.grad.zero_()
    print(loss.tape())               # the forward graph, with user lines
"""

from __future__ import annotations

import contextvars
import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import cache
from ..core import GraphTrace, Linearized, Tensor, Trace, check_and_infer, eval_graph, live_nodes, run_compiled, type_of, weak_value
from ..core.execute import attrs_key
from ..core.trace import EVAL, at_bottom, bottom_scope, canonical_array, current_trace, is_python_scalar
from ..errors import Error, TracingError, user_location, user_location_long
from ..ir import registry
from ..ir.graph import Graph, Node, Value
from ..ir.registry import NOT_DIFFERENTIABLE
from ..ir.tree import default_out_tree
from ..ir.types import TensorType, is_inexact

# -- grad mode ---------------------------------------------------------------------------

_GRAD_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("tracegraph_grad_enabled", default=True)


# the GradientTapes recording in this thread/task (innermost last): each keeps the nodes
# recorded while it is open (`variables.GradientTape`)
_RECORDERS: contextvars.ContextVar[tuple] = contextvars.ContextVar("tracegraph_gradient_tapes", default=())


def is_grad_enabled() -> bool:
    """Whether ops on tensors that require grad are recorded (per thread and task)."""
    return _GRAD_ENABLED.get()


class _GradMode:
    """Base of `no_grad`, `enable_grad`, `set_grad_enabled`: a context manager that is
    also a function decorator, as in PyTorch."""

    _mode: bool

    def __init__(self):
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_GRAD_ENABLED.set(self._mode))
        return self

    def __exit__(self, *exc):
        _GRAD_ENABLED.reset(self._tokens.pop())
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            token = _GRAD_ENABLED.set(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _GRAD_ENABLED.reset(token)

        return wrapped


class no_grad(_GradMode):
    """Ops inside record nothing (``with tg.no_grad(): w -= lr * w.grad``); also a
    decorator (``@tg.no_grad()``)."""

    _mode = False


class enable_grad(_GradMode):
    """Record again inside a `no_grad` block."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``tg.set_grad_enabled(False)`` switches recording off at once (for this thread);
    as a context manager it restores the previous mode on exit."""

    def __init__(self, mode: bool):
        super().__init__()
        self._mode = bool(mode)
        self._tokens.append(_GRAD_ENABLED.set(self._mode))

    def __enter__(self):
        return self


# -- the tape's node and tensor -------------------------------------------------------------


class TapeNode(Node):
    """A recorded op: an IR node that also keeps what backward needs. ``saved``: the
    arrays of its inputs then its outputs (None once a backward freed them);
    ``leaves``: per input, the leaf tensor that requires grad, or None."""

    __slots__ = ("saved", "leaves")


class TapeTensor(Tensor):
    """A tensor of the imperative tape (what `tg.tensor` and module parameters are):
    concrete, usable outside any trace, with PyTorch's autograd attributes."""

    __slots__ = ("_requires_grad", "_grad")

    def __init__(self, value, data, requires_grad: bool = False):
        Tensor.__init__(self, value, TAPE, data)
        self._requires_grad = requires_grad
        self._grad = None

    # -- autograd attributes ----------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "TapeTensor":
        flag = bool(requires_grad)
        if not self.is_leaf:
            if flag:
                return self
            raise TracingError(
                "requires_grad can only be changed on leaf tensors; use .detach() for a "
                f"tensor without history (at {user_location_long(1)})"
            )
        if flag and not is_inexact(self.dtype):
            raise TracingError(
                f"only floating point tensors can require gradients, not {self.type} "
                f"(at {user_location_long(1)})"
            )
        self._requires_grad = flag
        return self

    @property
    def is_leaf(self) -> bool:
        """True unless the tensor was computed by a recorded op."""
        return self._value.producer is None

    @property
    def grad_fn(self):
        """The recorded node that made this tensor (None for a leaf)."""
        return self._value.producer

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, g):
        if g is None:
            self._grad = None
            return
        arr = _array_of(g)
        if tuple(np.shape(arr)) != self.shape:
            raise TracingError(f"assigned grad has shape {list(np.shape(arr))}, the tensor {self.type}")
        self._grad = TapeTensor(Value(self.type.with_(weak=False)), jnp.asarray(arr, self.dtype))

    @property
    def data(self) -> "TapeTensor":
        """The same array without history; in-place updates of it update this tensor
        (PyTorch's ``.data``)."""
        return _DataView(self)

    @data.setter
    def data(self, new):
        arr = _array_of(new)
        self._data = jnp.asarray(arr)
        self._value = Value(type_of(self._data), name=self._value.name) if self.is_leaf else self._value

    def detach(self) -> "TapeTensor":
        """The same values, without history, not requiring grad."""
        return TapeTensor(Value(self.type), self._data)

    def detach_(self) -> "TapeTensor":
        self._value = Value(self.type, name=self._value.name)
        self._requires_grad = False
        return self

    def zero_(self) -> "TapeTensor":
        """Set every element to zero, in place (``w.grad.zero_()``)."""
        return self._update(jnp.zeros(self.shape, self.dtype))

    def fill_(self, value) -> "TapeTensor":
        return self._update(jnp.full(self.shape, value, self.dtype))

    def copy_(self, src) -> "TapeTensor":
        return self._update(jnp.broadcast_to(jnp.asarray(_array_of(src), self.dtype), self.shape))

    def _update(self, arr) -> "TapeTensor":
        if not at_bottom():  # inside code being recorded: that trace decides
            current_trace().assign_state(self, arr)
            return self
        _check_inplace(self)
        self._data = arr
        return self

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad
        (``gradient``: the cotangent, needed unless self has one element)."""
        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def tape(self) -> Graph:
        """The forward graph of the recorded ops that made this tensor: the leaves that
        require grad are its inputs, other operands its constants."""
        return _Tape(self).graph()

    def backward_graph(self) -> Graph:
        """The backward graph ``.backward()`` runs for this tensor: inputs are the output
        cotangent and the forward values the VJP rules read; one output per leaf."""
        return _Tape(self).plan().graph

    def __repr__(self):
        base = Tensor.__repr__(self)
        if self._requires_grad:
            base = base[:-1] + (", requires_grad=True)" if self.is_leaf else f", grad_fn={self._value.producer.op})")
        return base

    __str__ = __repr__


class _DataView(TapeTensor):
    """``t.data``: shares ``t``'s array (reads and in-place writes go to ``t``)."""

    __slots__ = ("_base",)

    def __init__(self, base):
        self._base = base
        self._value, self._trace = Value(base.type), TAPE
        self._requires_grad, self._grad = False, None

    @property
    def _data(self):
        return self._base._data

    @_data.setter
    def _data(self, arr):
        self._base._data = arr


def _array_of(x):
    if isinstance(x, Tensor):
        value = x._trace.known_value(x)
        if value is None:
            raise TracingError(f"a traced tensor ({x.type}) cannot be used here (at {user_location_long(1)})")
        return value
    return x


def _check_inplace(t) -> None:
    if is_grad_enabled() and t._requires_grad:
        if t.is_leaf:
            raise TracingError(
                f"in-place update of a leaf tensor that requires grad ({t.type}) at "
                f"{user_location_long(1)}: it would not be recorded. Update parameters "
                "under `with tg.no_grad():` (w -= lr * w.grad), as in PyTorch"
            )
        raise TracingError(
            f"in-place update of a tensor that requires grad and has history ({t.type}, "
            f"made by {t._value.producer.op}) at {user_location_long(1)}: write "
            "`y = y + ...` (a new tensor) instead, or .detach() it first"
        )


# -- the trace ------------------------------------------------------------------------------


class TapeTrace(Trace):
    """The policy of imperative tensors: run every op at once; record it (a `TapeNode`
    producing the outputs' Values) when grad mode is on and an operand requires grad.
    One stateless instance, `TAPE`, serves every thread."""

    free = True

    def lift(self, x):
        if isinstance(x, Tensor):
            if x._trace is self:
                return x
            raise TracingError(
                f"a traced tensor ({x.type}) is used outside the trace that made it "
                f"(at {user_location_long(1)})"
            )
        return constant_tensor(x)

    def process(self, op, operands, attrs) -> list:
        attrs, out_types = check_and_infer(op, [t._value.type for t in operands], attrs)
        record = (
            op.vjp is not NOT_DIFFERENTIABLE
            and _GRAD_ENABLED.get()
            and any(t._requires_grad for t in operands)
        )
        outs = [Value(t) for t in out_types]
        ins = [t._value for t in operands]
        location, scope = user_location(1), bottom_scope()
        if record:
            node = TapeNode(op.name, ins, attrs, outs, location, scope)
            datas = run_compiled(op, node, [t._data for t in operands])
            node.saved = [t._data for t in operands] + datas
            node.leaves = [t if t._requires_grad and t._value.producer is None else None for t in operands]
            for recorder in _RECORDERS.get():  # GradientTapes open here keep the node
                recorder._record(node)
            return [TapeTensor(v, d, is_inexact(v.type.dtype)) for v, d in zip(outs, datas)]
        node = Node(op.name, ins, attrs, outs, location, scope)
        datas = run_compiled(op, node, [t._data for t in operands])
        for v in outs:
            v.producer = None  # no history: nothing to keep alive
        return [TapeTensor(v, d) for v, d in zip(outs, datas)]

    def process_node(self, node, operands, data=None) -> list:
        return self.process(registry.lookup(node.op), [self.lift(x) for x in operands], node.attrs)

    def lift_constant(self, value):
        return self.constant(value.data, weak=value.type.weak)

    def constant(self, array, weak: bool = False):
        if weak:
            data = weak_value(array, np.asarray(array).dtype)
            return TapeTensor(Value(TensorType(np.shape(data), np.asarray(array).dtype, True)), data)
        return constant_tensor(array)

    def to_bool(self, t) -> bool:
        return bool(t._data)

    def concrete(self, t, what: str):
        return t._data

    def known_value(self, x):
        return x._data if isinstance(x, Tensor) else x

    def inplace(self, t, fn, other):
        if not at_bottom():  # inside code being recorded: that trace decides
            return current_trace().assign_state(t, fn(t, other))
        _check_inplace(t)
        res = fn(t, other)
        if not isinstance(res, Tensor):
            res = constant_tensor(res)
        if res.shape != t.shape:
            raise TracingError(
                f"in-place update of {t.type} with a result of shape {list(res.shape)} "
                f"(at {user_location_long(1)}): the shapes must match"
            )
        if res._requires_grad:  # acc += w * x: acc now has history (it had none)
            t._value, t._data, t._requires_grad = res._value, res._data, True
            return t
        data = res._data
        if data.dtype != t.dtype:
            if np.dtype(t.dtype).kind in "biu" and np.dtype(data.dtype).kind in "fc":
                raise TracingError(
                    f"in-place update of {t.type} with a {res.type} result (at "
                    f"{user_location_long(1)}): a float result cannot be stored in an "
                    "integer tensor"
                )
            data = data.astype(t.dtype)
        t._data = data
        return t

    def foreign_call(self, t):
        if _GRAD_ENABLED.get() and t._requires_grad:
            return Trace.foreign_call(self, t)
        data = t._data
        return lambda: data


TAPE = TapeTrace()


def constant_tensor(x) -> TapeTensor:
    """An operand that is not a tape tensor (a Python scalar, a numpy or JAX array) as
    a tape tensor without history; Python scalars stay weakly typed, as in JAX."""
    if is_python_scalar(x):
        data = np.asarray(x) if isinstance(x, bool) else x
        return TapeTensor(Value(type_of(x)), data)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        if isinstance(x, jax.core.Tracer):
            raise TracingError(
                "a JAX tracer met an imperative tracegraph tensor; call tracegraph code under "
                f"tg.jit, or use tg.from_jax (at {user_location_long(1)})"
            )
        arr = canonical_array(x)
        return TapeTensor(Value(type_of(x)), arr)
    if isinstance(x, (list, tuple)):
        return constant_tensor(np.asarray(x))
    raise TracingError(f"cannot use a {type(x).__name__} as an array operand (at {user_location_long(1)})")


# -- creating tensors ---------------------------------------------------------------------


def tensor(data, dtype=None, requires_grad: bool = False, device=None, pin_memory=False) -> TapeTensor:
    """An imperative tensor holding a copy of ``data`` (nested lists, numbers, numpy or
    JAX arrays, tensors), PyTorch's ``torch.tensor``. Python floats give float32 (float64
    with x64), ints int32 (int64 with x64), as JAX canonicalizes them."""
    from .fn_creation import canonical_dtype

    if isinstance(data, Tensor):
        data = _array_of(data)
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    dt = canonical_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(data.dtype)
    # a copy, as torch.tensor makes: JAX may share an aligned numpy buffer on CPU
    return leaf(_placed(jnp.array(data, dt, copy=True), device), requires_grad)


def _placed(array, device):
    if device is None:
        return array
    from .devices import place

    return place(array, device)


def leaf(array, requires_grad: bool = False, name: str | None = None) -> TapeTensor:
    """A leaf tape tensor holding ``array`` (strongly typed)."""
    arr = jnp.asarray(array)
    if getattr(arr, "weak_type", False):
        arr = _strong(arr)
    t = TapeTensor(Value(TensorType(arr.shape, arr.dtype), name=name), arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _strong(arr):
    from jax._src.lax.lax import _convert_element_type  # as core.execute: drops the weak flag

    return _convert_element_type(arr, arr.dtype, weak_type=False)


def as_leaf(x, requires_grad, name=None):
    """``x`` (an array a creation function made) as a leaf when ``requires_grad`` was
    given; unchanged otherwise."""
    if requires_grad is None:
        return x
    return leaf(_array_of(x), bool(requires_grad), name)


def _move(t, array) -> "TapeTensor":
    """``t`` with its values in ``array`` (the same values on another device): a tensor
    without history. One that requires grad under grad mode cannot move: the tape
    records ops of one device (values spread over devices through shardings)."""
    from .devices import DeviceError, device_of

    if isinstance(t, TapeTensor) and t._requires_grad and is_grad_enabled():
        raise DeviceError(
            f"moving a tensor that requires grad ({t.type}) to {device_of(array)} at "
            f"{user_location_long(2)}: the tape records one device's ops; move the model "
            "(model.to(device)) and its inputs before the forward pass"
        )
    return leaf(array)


# -- backward -------------------------------------------------------------------------------


def backward(t, gradient=None, retain_graph: bool = False, create_graph: bool = False) -> None:
    """``t.backward(gradient)``: accumulate the gradient of ``t`` into the ``.grad`` of
    every leaf that requires grad (see the module doc)."""
    if not isinstance(t, TapeTensor):
        raise TracingError(
            f"backward() of a {type(t).__name__} at {user_location_long(1)}: .backward() "
            "works on imperative tensors (tg.tensor(..., requires_grad=True), module "
            "parameters) outside tg.jit; inside traced code use tg.grad / tg.value_and_grad"
        )
    if not t._requires_grad:
        raise TracingError(
            f"backward() of a tensor that does not require grad ({t.type}) at "
            f"{user_location_long(1)}: none of the tensors it was computed from has "
            "requires_grad=True, or it was computed under tg.no_grad()"
        )
    if gradient is None:
        if t.size != 1:
            raise TracingError(
                f"backward() of a non-scalar tensor ({t.type}) at {user_location_long(1)} "
                "needs a gradient argument of the same shape (grad can be implicitly "
                "created only for one-element outputs)"
            )
        ct = jnp.ones(t.shape, t.dtype)
    else:
        ct = jnp.asarray(_array_of(gradient), t.dtype)
        if ct.shape != t.shape:
            raise TracingError(
                f"backward(): gradient has shape {list(ct.shape)}, the tensor is {t.type} "
                f"(at {user_location_long(1)})"
            )
    if t.is_leaf:
        _accumulate(t, ct)
        return
    tape = _Tape(t)
    if create_graph:  # the backward is recorded too: .grad keeps its history
        if isinstance(gradient, TapeTensor):
            ct = gradient
        with enable_grad():
            grads = tape.plan().run_recorded(tape, [ct])
            for lf, g in zip(tape.leaves, grads):
                lf._grad = g if lf._grad is None else lf._grad + g
        return
    grads = tape.plan().run(tape, [ct])
    for lf, g in zip(tape.leaves, grads):
        _accumulate(lf, g)
    if not retain_graph:
        tape.free()


def _accumulate(lf, g) -> None:
    if lf._grad is None:
        lf._grad = TapeTensor(Value(lf.type.with_(weak=False)), g)
    else:
        lf._grad._data = lf._grad._data + g


class _Tape:
    """The recorded ops that made the ``roots``, in order: the walk backward from their
    producers to the leaves and constants.

    By default (``.backward()``) the leaves are the tensors that require grad and have no
    history, and every recorded node is followed. With ``sources`` (`GradientTape`,
    ``tg.autograd.grad``) the leaves are those tensors, wherever they were computed, and
    the walk stops at them; ``recorded`` (ids of nodes) limits the walk to the nodes a
    `GradientTape` recorded: a value made outside it is a constant."""

    def __init__(self, roots, sources=None, recorded=None):
        roots = list(roots) if isinstance(roots, (list, tuple)) else [roots]
        self.roots = roots
        src = None if sources is None else {id(t._value): t for t in sources}

        def follow(v) -> bool:
            p = v.producer
            return (isinstance(p, TapeNode) and (src is None or id(v) not in src)
                    and (recorded is None or id(p) in recorded))

        nodes, seen = [], set()
        stack = [(r._value.producer, False) for r in reversed(roots) if follow(r._value)]
        while stack:  # iterative post-order: deep tapes (RNN unrolls) do not recurse
            node, done = stack.pop()
            if done:
                nodes.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.saved is None:
                raise TracingError(
                    "the recorded graph was freed by a backward() (its saved arrays are "
                    "gone): to backward through it again, or to print its tape after "
                    "backward, pass retain_graph=True to the first backward() (at "
                    f"{user_location_long(1)})"
                )
            stack.append((node, True))
            for v in reversed(node.inputs):
                if follow(v) and id(v.producer) not in seen:
                    stack.append((v.producer, False))
        self.nodes = nodes
        # wiring: every input of a recorded node is a node output, a leaf or a constant
        where: dict[int, tuple] = {}
        for k, node in enumerate(nodes):
            for j, v in enumerate(node.outputs):
                where[id(v)] = ("n", k, j)
        self.leaves: list[TapeTensor] = []
        # each leaf's array as the recording node saved it (an in-place update after the
        # forward must not change the gradient)
        self.leaf_arrays: list = []
        self.consts: list[tuple] = []  # (Value, array)

        def ref_of(v, lf, array):
            ref = where.get(id(v))
            if ref is None:
                if lf is not None:
                    ref = ("l", len(self.leaves), v.type)
                    self.leaves.append(lf)
                    self.leaf_arrays.append(array)
                else:
                    ref = ("c", len(self.consts), v.type)
                    self.consts.append((v, array))
                where[id(v)] = ref
            return ref

        key = []
        for node in nodes:
            refs = []
            for i, v in enumerate(node.inputs):
                lf = node.leaves[i] if src is None else src.get(id(v))
                refs.append(ref_of(v, lf, node.saved[i]))
            # the user line and scope are part of the key: a cached backward graph prints
            # the lines of the program that runs it, not of the first one with its shape
            key.append((node.op, attrs_key(node.attrs), tuple(refs), tuple(v.type for v in node.outputs),
                        node.location, node.scope))
        self.root_refs = []
        for r in roots:
            if src is None:
                lf = r if r._requires_grad and r.is_leaf else None
            else:
                lf = src.get(id(r._value))
            self.root_refs.append(ref_of(r._value, lf, r._data))
        self.key = (tuple(key), tuple(self.root_refs))

    def graph(self) -> Graph:
        """The forward graph (fresh Values; the leaves its inputs, named as the tensors)."""
        new: dict[int, Value] = {}
        inputs = []
        for lf in self.leaves:
            v = Value(lf.type, name=lf._value.name)
            inputs.append(v)
        consts = []
        for v, arr in self.consts:
            c = Value(v.type, name=v.name, data=arr if not v.type.weak else np.asarray(arr, v.type.dtype))
            consts.append(c)
        nodes = []
        for (op, _, refs, *_), node in zip(self.key[0], self.nodes):
            ins = [self._resolve(r, new, inputs, consts) for r in refs]
            outs = [Value(v.type, name=v.name) for v in node.outputs]
            for v, o in zip(node.outputs, outs):
                new[id(v)] = o
            nodes.append(Node(node.op, ins, node.attrs, outs, node.location, node.scope))
        outs = [self._resolve(r, new, inputs, consts) for r in self.root_refs]
        return Graph("tape", inputs, consts, nodes, outs, None, default_out_tree(len(outs)))

    def _resolve(self, ref, new, inputs, consts):
        if ref[0] == "n":
            return new[id(self.nodes[ref[1]].outputs[ref[2]])]
        if ref[0] == "l":
            return inputs[ref[1]]
        return consts[ref[1]]

    def array(self, ref):
        """The array of a forward value, from what the recorded nodes saved."""
        kind = ref[0]
        if kind == "l":
            return self.leaf_arrays[ref[1]]
        if kind == "c":
            return self.consts[ref[1]][1]
        node = self.nodes[ref[1]]
        return node.saved[len(node.inputs) + ref[2]]

    def tensor(self, ref):
        """A forward value as a tape tensor that keeps its history (a backward that is
        itself recorded, for higher-order gradients, differentiates through it)."""
        kind = ref[0]
        if kind == "l":
            return self.leaves[ref[1]]
        if kind == "c":
            v, arr = self.consts[ref[1]]
            return TapeTensor(v, arr)
        node = self.nodes[ref[1]]
        v = node.outputs[ref[2]]
        return TapeTensor(v, node.saved[len(node.inputs) + ref[2]], is_inexact(v.type.dtype))

    def plan(self) -> "_Backward":
        return _backward_plan(self)

    def free(self) -> None:
        for node in self.nodes:
            node.saved = None
            node.leaves = None


class _Backward:
    """A cached backward: its graph, the forward values (refs) its trailing inputs
    read, and its compiled form once the same tape structure came back."""

    def __init__(self, graph: Graph, refs: list, num_cts: int = 1):
        self.graph = graph
        self.refs = refs
        self.num_cts = num_cts
        self.calls = 0
        self.compiled = None

    def run_recorded(self, tape: _Tape, cts: list) -> list:
        """The backward run op by op on tape tensors, so that grad mode records it: the
        gradients keep their history (``create_graph=True``, nested GradientTapes)."""
        args = [c if isinstance(c, TapeTensor) else constant_tensor(c) for c in cts]
        args += [tape.tensor(r) for r in self.refs]
        return eval_graph(self.graph, args, trace=TAPE)

    def run(self, tape: _Tape, cts: list) -> list:
        args = list(cts) + [tape.array(r) for r in self.refs]
        self.calls += 1
        if self.compiled is not None:
            return list(self.compiled(*args))
        if self.calls >= 3:  # the same structure a third time: a training loop; compile it
            graph = self.graph
            self.compiled = jax.jit(lambda *a: eval_graph(graph, list(a), trace=EVAL))
            return list(self.compiled(*args))
        return eval_graph(self.graph, args, trace=EVAL)


_CACHE: dict = cache({})
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 256


def _backward_plan(tape: _Tape) -> _Backward:
    try:
        hash(tape.key)
        key = tape.key
    except TypeError:
        key = None
    if key is not None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
    graph = tape.graph()
    outer = GraphTrace("tape")
    env = {}
    for v in graph.values():
        env[id(v)] = outer.new_input(v.type, name=v.name)
    lin = Linearized.of_graph(outer, graph, env, len(graph.inputs))
    n = len(graph.outputs)
    g_bwd, captured = lin.backward_graph([out.type.with_(weak=False) for out in graph.outputs])
    # which forward value each captured tensor stands for
    ref_of = {}
    for k, v in enumerate(graph.inputs):
        ref_of[id(v)] = ("l", k, v.type)
    for k, v in enumerate(graph.constants):
        ref_of[id(v)] = ("c", k)
    for k, node in enumerate(graph.nodes):
        for j, v in enumerate(node.outputs):
            ref_of[id(v)] = ("n", k, j)
    by_outer = {id(env[id(v)]._value): v for v in graph.values()}
    refs = [ref_of[id(by_outer[id(t._value)])] for t in captured]
    # only what the leaves' gradients need (VJP rules also build the cotangents of
    # constants, which nobody asked for)
    live, needed = live_nodes(g_bwd)
    keep = [i for i, v in enumerate(g_bwd.inputs) if i < n or id(v) in needed]
    g_bwd = Graph(
        "backward", [g_bwd.inputs[i] for i in keep], [c for c in g_bwd.constants if id(c) in needed],
        [n for n, alive in zip(g_bwd.nodes, live) if alive], g_bwd.outputs, None, g_bwd.out_tree,
    )
    plan = _Backward(g_bwd, [refs[i - n] for i in keep[n:]], n)
    if key is not None:
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            plan = _CACHE.setdefault(key, plan)
    return plan


# -- PyTorch-style random creation ------------------------------------------------------------


def randn(*shape, dtype=None, requires_grad: bool = False, key=None, device=None) -> TapeTensor:
    """Standard normal samples of ``shape`` (``tg.randn(2, 3)``), from the global key
    stream (`tg.manual_seed`) unless ``key=`` is given."""
    from .fn_creation import canonical_dtype
    from .fn_random import next_key

    shape = _varargs_shape(shape)
    k = next_key() if key is None else key
    arr = jax.random.normal(jnp.asarray(_array_of(k)), shape, canonical_dtype(dtype))
    return leaf(_placed(arr, device), requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, key=None, device=None) -> TapeTensor:
    """Uniform [0, 1) samples of ``shape``, from the global key stream unless ``key=``."""
    from .fn_creation import canonical_dtype
    from .fn_random import next_key

    shape = _varargs_shape(shape)
    k = next_key() if key is None else key
    arr = jax.random.uniform(jnp.asarray(_array_of(k)), shape, canonical_dtype(dtype))
    return leaf(_placed(arr, device), requires_grad)


def _varargs_shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(d) for d in shape)


__all__ = [
    "TAPE", "TapeNode", "TapeTensor", "TapeTrace", "backward", "constant_tensor", "enable_grad",
    "is_grad_enabled", "leaf", "no_grad", "rand", "randn", "set_grad_enabled", "tensor",
]
