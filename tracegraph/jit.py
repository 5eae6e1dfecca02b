"""`tg.jit`: define-then-run. Trace a function to tracegraph IR once per abstract
signature, lower the IR through ``jax.jit`` to XLA, and run the compiled executable.

NOTE (dispatch speed): the IR is built *while jax.jit traces*. The function handed to
``jax.jit`` traces the user function to a Graph (or reuses the Graph already made for
this signature) and evaluates that Graph on JAX's tracers; so the IR is exactly what XLA
compiles, and a call on a cached signature is a plain call of the ``jax.jit`` object:
JAX's C++ dispatch does the cache lookup, and tracegraph adds one Python frame.
"""

from __future__ import annotations

import functools
import inspect
import warnings

import jax

from .backends.interpreter import Interpreter
from .backends.jax_backend import evaluate
from .errors import TracingError
from .frontend import builder as _builder
from .frontend.tracing import _trace, arg_names, flatten_args, function_name, leaf_type
from .ir.types import TensorType


class RetraceWarning(UserWarning):
    """A `tg.jit` function traced again for a new signature more often than expected."""


class Signature:
    """The abstract signature of one call: argument structure, leaf types, static values."""

    def __init__(self, treedef, names, types, statics):
        self.treedef = treedef
        self.names = names
        self.types = tuple(types)
        self.statics = tuple(statics)
        self.key = (treedef, self.types, self.statics)

    def explain(self, other: "Signature") -> str:
        """What changed from ``other`` to this signature, one change per line."""
        lines = []
        if other.treedef != self.treedef:
            lines.append(f"argument structure: {other.treedef} -> {self.treedef}")
        else:
            for name, old, new in zip(self.names, other.types, self.types):
                if old != new:
                    lines.append(f"{name}: {old} -> {new}")
        old_st, new_st = dict(other.statics), dict(self.statics)
        for k in sorted(set(old_st) | set(new_st), key=str):
            if old_st.get(k, "<absent>") != new_st.get(k, "<absent>"):
                lines.append(
                    f"static argument {k}: {old_st.get(k, '<absent>')!r} -> "
                    f"{new_st.get(k, '<absent>')!r}"
                )
        return "\n".join("  " + s for s in lines) or "  (no difference in the abstract signature)"


class JitFunction:
    """A function compiled through tracegraph IR. Create with `tg.jit`."""

    def __init__(
        self,
        fn,
        *,
        static_argnums=(),
        static_argnames=(),
        donate_argnums=(),
        on_retrace: str = "warn",
        retrace_warn_after: int = 3,
        **jax_jit_kwargs,
    ):
        if on_retrace not in ("warn", "error", "ignore"):
            raise ValueError(f"on_retrace must be 'warn', 'error' or 'ignore', not {on_retrace!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.static_argnums = _as_tuple(static_argnums)
        self.static_argnames = _as_tuple(static_argnames)
        self.on_retrace = on_retrace
        self.retrace_warn_after = retrace_warn_after
        self.trace_count = 0
        self._graphs: dict = {}
        self._signatures: list[Signature] = []
        self._name = function_name(fn)
        # The body carries the user function's name and signature (jax.jit resolves
        # static_argnames with it, and names the XLA module after it).
        body = functools.wraps(fn)(lambda *a, **k: self._jax_body(*a, **k))
        self._jitted = jax.jit(
            body,
            static_argnums=self.static_argnums,
            static_argnames=self.static_argnames,
            donate_argnums=donate_argnums,
            **jax_jit_kwargs,
        )

    # -- calling --------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _builder._STACK:  # called from inside another trace: inline, as nested jit does
            return self.fn(*args, **kwargs)
        return self._jitted(*args, **kwargs)

    def _jax_body(self, *args, **kwargs):
        graph, leaves = self._graph_for(args, kwargs)
        outs = evaluate(graph, leaves)
        return graph.unflatten_outputs(outs)

    # -- inspection -----------------------------------------------------------------
    def trace(self, *args, **kwargs):
        """The Graph lowered for this signature (arrays or `tg.spec`s as arguments)."""
        return self._graph_for(args, kwargs)[0]

    def lower(self, *args, **kwargs):
        """``jax.stages.Lowered`` for this signature; ``.as_text()`` is StableHLO."""
        return self._jitted.lower(*args, **kwargs)

    def interpret(self, *args, check_nans: bool = False, hooks=(), **kwargs):
        """Run this signature's Graph with the eager interpreter, node by node."""
        graph, leaves = self._graph_for(args, kwargs)
        outs = Interpreter(graph, hooks=hooks, check_nans=check_nans).run(*leaves)
        return graph.unflatten_outputs(outs)

    @property
    def graphs(self) -> list:
        """Every Graph traced so far, one per signature, oldest first."""
        return list(self._graphs.values())

    # -- tracing --------------------------------------------------------------------
    def _split(self, args, kwargs):
        nums = {i % len(args) if args else i for i in self.static_argnums if -len(args) <= i < len(args)}
        dyn_args = tuple(a for i, a in enumerate(args) if i not in nums)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        statics = [(i, args[i]) for i in sorted(nums)]
        statics += [(k, kwargs[k]) for k in sorted(kwargs) if k in self.static_argnames]
        return dyn_args, dyn_kwargs, statics, nums

    def _graph_for(self, args, kwargs):
        dyn_args, dyn_kwargs, statics, nums = self._split(args, kwargs)
        pos_names = [n for i, n in enumerate(arg_names(self.fn, len(args))) if i not in nums]
        leaves, names, treedef = flatten_args(_Named(self.fn, pos_names), dyn_args, dyn_kwargs)
        types = [leaf_type(x, n) for x, n in zip(leaves, names)]
        sig = Signature(treedef, names, types, statics)
        try:
            graph = self._graphs.get(sig.key)
        except TypeError:
            raise TracingError(
                f"{self._name}: static arguments must be hashable, got {statics!r:.200}"
            ) from None
        if graph is None:
            self._note_trace(sig)
            graph = self._make_graph(args, kwargs, nums, dyn_args, dyn_kwargs, pos_names)
            self._graphs[sig.key] = graph
            self._signatures.append(sig)
        return graph, leaves

    def _make_graph(self, args, kwargs, nums, dyn_args, dyn_kwargs, pos_names):
        fn = self.fn
        static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}

        def body(*dargs, **dkwargs):
            it = iter(dargs)
            full = [args[i] if i in nums else next(it) for i in range(len(args))]
            return fn(*full, **dkwargs, **static_kwargs)

        graph, _ = _trace(_Named(body, pos_names), dyn_args, dyn_kwargs, eager=False, name=self._name)
        return graph

    def _note_trace(self, sig: Signature):
        self.trace_count += 1
        if not self._signatures or self.on_retrace == "ignore":
            return
        msg = (
            f"tg.jit function {self._name!r} is tracing again (trace #{self.trace_count}) "
            f"for a new signature; what changed since the last trace:\n"
            f"{sig.explain(self._signatures[-1])}"
        )
        if self.on_retrace == "error":
            raise TracingError(msg + "\n(on_retrace='error' forbids retracing)")
        if self.trace_count > self.retrace_warn_after:
            warnings.warn(RetraceWarning(msg), stacklevel=4)


class _Named:
    """Gives a wrapper the parameter names of the user function (for input names)."""

    def __init__(self, fn, names):
        self.fn = fn
        self.__name__ = function_name(getattr(fn, "fn", fn))
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in names]
        self.__signature__ = inspect.Signature(params)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def _as_tuple(x):
    if x is None:
        return ()
    if isinstance(x, (int, str)):
        return (x,)
    return tuple(x)


def jit(fn=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), **kwargs):
    """Compile ``fn`` through tracegraph IR and XLA. Usable as ``@tg.jit`` or
    ``tg.jit(fn, static_argnums=...)``.

    Arguments:
      fn: a function of pytrees of arrays.
      static_argnums / static_argnames: arguments that are Python values baked into the
        graph (hashable; a new value retraces).
      donate_argnums: argument buffers XLA may reuse for outputs (as in ``jax.jit``).
      on_retrace: ``"warn"`` (default; warns once a function has traced more than
        ``retrace_warn_after`` signatures, naming what changed), ``"error"`` or ``"ignore"``.
      Other keywords (e.g. ``in_shardings``) pass through to ``jax.jit``.

    Returns a `JitFunction`: call it; ``.trace(*args)`` gives the Graph, ``.lower(*args)``
    the JAX ``Lowered``, ``.interpret(*args)`` runs the Graph node by node.

    Example::

        @tg.jit
        def f(x, w):
            return tg.tanh(x @ w)

        f(x, w); print(f.trace(x, w))
    """
    if fn is None:
        return functools.partial(
            jit,
            static_argnums=static_argnums,
            static_argnames=static_argnames,
            donate_argnums=donate_argnums,
            **kwargs,
        )
    return JitFunction(
        fn,
        static_argnums=static_argnums,
        static_argnames=static_argnames,
        donate_argnums=donate_argnums,
        **kwargs,
    )


__all__ = ["jit", "JitFunction", "RetraceWarning", "Signature", "TensorType"]
