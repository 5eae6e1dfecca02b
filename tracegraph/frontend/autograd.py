"""``tg.autograd``: PyTorch's ``torch.autograd`` on tracegraph's tape and IR.

- `Function`: a custom autograd function, written as in PyTorch (static ``forward(ctx,
  *args)`` and ``backward(ctx, *grad_outputs)``, ``ctx.save_for_backward``,
  ``ctx.saved_tensors``, ``ctx.needs_input_grad``; or the newer ``forward(*args)`` with
  ``setup_context(ctx, inputs, output)``), called with ``.apply``. A call is a
  ``custom_vjp`` node (`tg.custom_vjp`): ``forward`` traced as the primal and as the
  rule's forward (its saved tensors, and the tensors set as ``ctx`` attributes, are the
  residuals), ``backward`` traced as the rule's backward. So it runs, prints and
  differentiates in every mode: on imperative tensors (``loss.backward()``), under
  ``tg.jit`` / ``tg.grad``, in ``tg.eager`` and ``tg.compile``.
- `grad`: ``torch.autograd.grad(outputs, inputs, grad_outputs)``: the gradients, without
  touching ``.grad``.
- `backward`: ``torch.autograd.backward(tensors, grad_tensors)``.

Example (PyTorch's tutorial, ``torch`` -> ``tg``)::

    class LegendrePolynomial3(tg.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    y = LegendrePolynomial3.apply(x)     # a custom_vjp node
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Tensor
from ..errors import ShapeError, TracingError, user_location_long
from ..ir.types import is_inexact
from .custom_derivatives import custom_vjp
from .tape import (
    TapeTensor, _accumulate, _array_of, _Tape, enable_grad, is_grad_enabled, leaf, no_grad,
    set_grad_enabled,
)
from .tape import backward as _backward_one
from .fn_torch import inference_mode


def _is_tensorlike(x) -> bool:
    return isinstance(x, (Tensor, jax.Array, np.ndarray))


class FunctionCtx:
    """The ``ctx`` a `Function`'s ``forward`` and ``backward`` share: saved tensors,
    ``needs_input_grad``, and any attribute ``forward`` sets (tensors among them are
    carried to ``backward`` as residuals; other values as they are)."""

    def __init__(self, needs_input_grad=()):
        object.__setattr__(self, "_saved", ())
        object.__setattr__(self, "needs_input_grad", tuple(needs_input_grad))
        object.__setattr__(self, "materialize_grads", True)
        object.__setattr__(self, "_attrs", {})

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not _is_tensorlike(t):
                raise TypeError(f"save_for_backward can only save tensors, got {type(t).__name__}")
        object.__setattr__(self, "_saved", tuple(tensors))

    save_for_forward = save_for_backward

    @property
    def saved_tensors(self) -> tuple:
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        """Accepted: outputs marked so get zero cotangents here, as in PyTorch (an
        integer output has none anyway)."""

    def mark_dirty(self, *tensors) -> None:
        raise TracingError(
            "ctx.mark_dirty: a Function that modifies its inputs in place is not supported "
            "(arrays are immutable); return the new values instead"
        )

    def set_materialize_grads(self, value: bool) -> None:
        object.__setattr__(self, "materialize_grads", bool(value))

    def __setattr__(self, name, value):
        self._attrs[name] = value

    def __getattr__(self, name):
        attrs = self.__dict__.get("_attrs", {})
        if name in attrs:
            return attrs[name]
        raise AttributeError(f"ctx has no attribute {name!r}")


class _FunctionMeta(type):
    def __call__(cls, *args, **kwargs):
        if cls is Function:
            raise TypeError("tg.autograd.Function is a base class: subclass it and call .apply")
        return super().__call__(*args, **kwargs)


class Function(metaclass=_FunctionMeta):
    """Base class of custom autograd functions (see the module doc). Subclass it with
    static ``forward`` and ``backward`` and call ``MyFunction.apply(*args)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a tg.autograd.Function subclass must define forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a tg.autograd.Function subclass must define backward")

    @classmethod
    def _new_style(cls) -> bool:
        setup = cls.__dict__.get("setup_context") or next(
            (k.__dict__["setup_context"] for k in cls.__mro__ if "setup_context" in k.__dict__), None)
        return setup is not None and setup is not Function.__dict__.get("setup_context")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            raise TypeError(f"{cls.__name__}.apply takes positional arguments only, as in PyTorch")
        name = cls.__name__
        new_style = cls._new_style()
        # tensors (and arrays) are differentiated; anything else is a static argument
        nondiff = tuple(i for i, a in enumerate(args) if not _is_tensorlike(a))
        needs = tuple(
            (isinstance(a, TapeTensor) and a.requires_grad and is_grad_enabled())
            or (isinstance(a, Tensor) and not isinstance(a, TapeTensor) and is_inexact(a.dtype))
            for a in args
        )
        carried = {}  # the ctx's non-tensor attributes, from the rule's forward to its backward

        def run_forward(ctx, xs):
            if new_style:
                out = cls.forward(*xs)
                cls.setup_context(ctx, tuple(xs), out)
                return out
            return cls.forward(ctx, *xs)

        def primal(*xs):
            with no_grad():
                return run_forward(FunctionCtx(needs), xs)

        def fwd(*xs):
            ctx = FunctionCtx(needs)
            with no_grad():
                out = run_forward(ctx, xs)
            tensors = {k: v for k, v in ctx._attrs.items() if _is_tensorlike(v)}
            carried.clear()
            carried.update({k: v for k, v in ctx._attrs.items() if k not in tensors})
            carried["__materialize__"] = ctx.materialize_grads
            return out, (tuple(ctx._saved), tensors)

        def bwd(*rest):
            statics, (saved, tensors), ct = rest[:len(nondiff)], rest[len(nondiff)], rest[len(nondiff) + 1]
            ctx = FunctionCtx(needs)
            object.__setattr__(ctx, "_saved", tuple(saved))
            ctx._attrs.update({k: v for k, v in carried.items() if k != "__materialize__"})
            ctx._attrs.update(tensors)
            cts = tuple(ct) if isinstance(ct, (tuple, list)) else (ct,)
            with no_grad():
                grads = cls.backward(ctx, *cts)
            grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
            if len(grads) != len(args):
                # PyTorch allows trailing Nones to be left out only where there are none
                if len(grads) < len(args) and all(i in nondiff for i in range(len(grads), len(args))):
                    grads = grads + (None,) * (len(args) - len(grads))
                else:
                    raise ShapeError(
                        f"{name}.backward returned {len(grads)} gradient(s) for {len(args)} "
                        f"input(s) of forward (at {user_location_long(1)})"
                    )
            out = []
            for i, g in enumerate(grads):
                if i in nondiff:
                    if g is not None:
                        raise TracingError(
                            f"{name}.backward returned a gradient for input {i}, which is not "
                            "a tensor: return None there"
                        )
                    continue
                out.append(g)
            return tuple(out)

        primal.__name__ = primal.__qualname__ = name
        fwd.__name__, bwd.__name__ = f"{name}.forward", f"{name}.backward"
        f = custom_vjp(primal, nondiff_argnums=nondiff)
        f.defvjp(fwd, bwd)
        return f(*args)


# -- grad and backward ---------------------------------------------------------------------


def _as_list(x) -> list:
    return list(x) if isinstance(x, (tuple, list)) else [x]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """``torch.autograd.grad``: the gradients of ``outputs`` (weighted by
    ``grad_outputs``, ones for a scalar output) with respect to ``inputs``, as a tuple;
    ``.grad`` is left alone. ``create_graph=True`` records the backward too (for
    higher-order gradients); ``allow_unused`` gives None (zeros with
    ``materialize_grads``) for an input the outputs do not depend on."""
    if is_grads_batched:
        raise TracingError("tg.autograd.grad: is_grads_batched is not supported; use tg.vmap of tg.vjp")
    outs, ins = _as_list(outputs), _as_list(inputs)
    where = user_location_long(1)
    for t in outs + ins:
        if not isinstance(t, TapeTensor):
            raise TracingError(
                f"tg.autograd.grad of a {type(t).__name__} at {where}: it works on imperative "
                "tensors; inside traced code use tg.grad / tg.vjp"
            )
    cts = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    if len(cts) != len(outs):
        raise ShapeError(f"tg.autograd.grad: {len(cts)} grad_outputs for {len(outs)} outputs (at {where})")
    roots, root_cts = [], []
    for t, c in zip(outs, cts):
        if not t.requires_grad:
            raise TracingError(
                f"tg.autograd.grad: an output ({t.type}) does not require grad, so it has no "
                f"graph to differentiate (at {where})"
            )
        if c is None:
            if t.size != 1:
                raise TracingError(
                    f"tg.autograd.grad: grad can be implicitly created only for scalar outputs; "
                    f"pass grad_outputs for the {t.type} output (at {where})"
                )
            c = jnp.ones(t.shape, t.dtype)
        elif not (create_graph and isinstance(c, TapeTensor)):
            c = jnp.asarray(_array_of(c), t.dtype)
            if c.shape != t.shape:
                raise ShapeError(f"tg.autograd.grad: grad_output of shape {list(c.shape)} for {t.type} (at {where})")
        roots.append(t)
        root_cts.append(c)
    sources = list({id(s._value): s for s in ins}.values())
    tape = _Tape(roots, sources=sources)
    got = {}
    if tape.leaves:
        plan = tape.plan()
        if create_graph:
            with enable_grad():
                grads = plan.run_recorded(tape, root_cts)
        else:
            grads = [leaf(g) for g in plan.run(tape, [jnp.asarray(_array_of(c)) for c in root_cts])]
        got = {id(lf._value): g for lf, g in zip(tape.leaves, grads)}
    # an input that is itself an output: its own cotangent
    wanted = {id(s._value) for s in ins}
    for t, c in zip(roots, root_cts):
        if id(t._value) in wanted and id(t._value) not in got:
            got[id(t._value)] = c if isinstance(c, TapeTensor) else leaf(c)
    result = []
    for s in ins:
        g = got.get(id(s._value))
        if g is None:
            if not allow_unused and not materialize_grads:
                raise TracingError(
                    "tg.autograd.grad: one of the differentiated tensors appears to not have been "
                    f"used in the graph ({s.type}); set allow_unused=True if this is the desired "
                    f"behavior (at {where})"
                )
            if materialize_grads:
                g = leaf(jnp.zeros(s.shape, s.dtype))
        result.append(g)
    keep = create_graph if retain_graph is None else retain_graph
    if not keep:
        tape.free()
    return tuple(result)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """``torch.autograd.backward``: ``t.backward(g)`` for each tensor, accumulating into
    the leaves' ``.grad`` (only into ``inputs``' when given)."""
    ts = _as_list(tensors)
    gs = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(ts)
    if len(gs) != len(ts):
        raise ShapeError(f"tg.autograd.backward: {len(gs)} grad_tensors for {len(ts)} tensors")
    if inputs is not None:
        ins = _as_list(inputs)
        for g, s in zip(grad(ts, ins, [g for g in gs] if grad_tensors is not None else None,
                             retain_graph=retain_graph, create_graph=create_graph, allow_unused=True), ins):
            if g is not None:
                _accumulate(s, g._data)
        return
    keep = create_graph if retain_graph is None else retain_graph
    for i, (t, g) in enumerate(zip(ts, gs)):
        _backward_one(t, g, retain_graph=keep or i < len(ts) - 1, create_graph=create_graph)


__all__ = ["Function", "FunctionCtx", "backward", "enable_grad", "grad", "inference_mode", "no_grad",
           "set_grad_enabled"]
