"""`tg.jit`: define-then-run. Trace a function to tracegraph IR once per abstract
signature, lower the IR through ``jax.jit`` to XLA, and run the compiled executable.

NOTE (dispatch speed): the IR is built *while jax.jit traces*. The function handed to
``jax.jit`` traces the user function to a Graph (or reuses the Graph already made for
this signature) and evaluates that Graph on JAX's tracers; so the IR is exactly what XLA
compiles, and a call on a cached signature is a plain call of the ``jax.jit`` object:
JAX's C++ dispatch does the cache lookup, and tracegraph adds one Python frame.

Each new signature is traced, then optimized by a pipeline of passes (by default
`DEFAULT_PIPELINE`: fold, simplify, fold, cse, dce; ``passes=`` chooses), and the optimized
graph is what XLA compiles. Options that need work around each call (``dump=``,
``debug_nans=True``) make an instrumented `JitFunction` subclass, so the plain one's
``__call__`` stays a direct call of the ``jax.jit`` object.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings

import jax
import jax.numpy as jnp

from .backends.interpreter import Interpreter, NaNError, Profile, profile_leaves
from .backends.jax_backend import evaluate
from .dump import Dumper, dump_dir_from
from .errors import TracingError
from .frontend import builder as _builder
from .frontend.tracing import _trace, arg_names, flatten_args, function_name, leaf_type
from .ir.types import TensorType
from .transforms.pass_manager import DEFAULT_PIPELINE, PassManager

log = logging.getLogger("tracegraph.jit")


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

    def describe(self) -> str:
        """``x: f32[2,3], params.w: f32[3]; static n=2`` (for dumps and messages)."""
        text = ", ".join(f"{n}: {t}" for n, t in zip(self.names, self.types)) or "(no array arguments)"
        if self.statics:
            text += "; static " + ", ".join(f"{k}={v!r}" for k, v in self.statics)
        return text

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

    def __new__(cls, fn=None, *args, dump=None, debug_nans=False, **kwargs):
        # Dumps and NaN checks need work around each call: they get a subclass, so the
        # plain class keeps its one-line __call__.
        if cls is JitFunction and (debug_nans or dump_dir_from(dump)):
            cls = _InstrumentedJitFunction
        return super().__new__(cls)

    def __init__(
        self,
        fn,
        *,
        static_argnums=(),
        static_argnames=(),
        donate_argnums=(),
        on_retrace: str = "warn",
        retrace_warn_after: int = 3,
        passes=None,
        dump=None,
        debug_nans: bool = False,
        verify_passes: bool | None = None,
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
        self._graphs: dict = {}  # signature key -> optimized Graph (what XLA compiles)
        self._traced: dict = {}  # signature key -> Graph as traced, before the passes
        self._pipelines: dict = {}  # signature key -> PipelineResult (pass records)
        self._signatures: list[Signature] = []
        self._name = function_name(fn)
        self.debug_nans = bool(debug_nans)
        dump_dir = dump_dir_from(dump)
        self._dumper = Dumper(dump_dir, self._name) if dump_dir else None
        self._pending_hlo: dict = {}  # signature key -> index, HLO not yet dumped
        self._pass_manager = PassManager(
            passes, verify=verify_passes, keep_stages=self._dumper is not None
        )
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
    def trace(self, *args, optimized: bool = True, **kwargs):
        """The Graph lowered for this signature (arrays or `tg.spec`s as arguments): the
        optimized one; ``optimized=False`` gives the graph as traced, before the passes."""
        key, _ = self._entry(args, kwargs)
        return self._graphs[key] if optimized else self._traced[key]

    def pass_records(self, *args, **kwargs) -> list:
        """What each pass did for this signature: `PassRecord`s (name, time, nodes);
        ``tg.transforms.format_records(...)`` prints them as a table."""
        key, _ = self._entry(args, kwargs)
        return list(self._pipelines[key].records)

    def lower(self, *args, **kwargs):
        """``jax.stages.Lowered`` for this signature; ``.as_text()`` is StableHLO."""
        return self._jitted.lower(*args, **kwargs)

    def interpret(self, *args, check_nans: bool = False, hooks=(), profile: Profile | None = None,
                  optimized: bool = True, **kwargs):
        """Run this signature's Graph with the eager interpreter, node by node (see
        `tg.Interpreter` for ``check_nans``, ``hooks`` and ``profile``); ``optimized=False``
        runs the graph as traced."""
        key, leaves = self._entry(args, kwargs)
        graph = self._graphs[key] if optimized else self._traced[key]
        outs = Interpreter(graph, hooks=hooks, check_nans=check_nans, profile=profile).run(*leaves)
        if profile is not None:
            profile.runs += 1
            if profile.root is None:
                profile.root = graph
        return graph.unflatten_outputs(outs)

    def profile(self, *args, warmup: int = 1, repeat: int = 1, optimized: bool = True, **kwargs) -> Profile:
        """Time every node of this signature's graph in the interpreter (`tg.profile`);
        ``print(f.profile(x))`` shows the table."""
        key, leaves = self._entry(args, kwargs)
        graph = self._graphs[key] if optimized else self._traced[key]
        return profile_leaves(graph, leaves, warmup=warmup, repeat=repeat)

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
        key, leaves = self._entry(args, kwargs)
        return self._graphs[key], leaves

    def _entry(self, args, kwargs):
        """(signature key, flat dynamic leaves); traces and optimizes a new signature."""
        dyn_args, dyn_kwargs, statics, nums = self._split(args, kwargs)
        pos_names = [n for i, n in enumerate(arg_names(self.fn, len(args))) if i not in nums]
        leaves, names, treedef = flatten_args(_Named(self.fn, pos_names), dyn_args, dyn_kwargs)
        types = [leaf_type(x, n) for x, n in zip(leaves, names)]
        sig = Signature(treedef, names, types, statics)
        try:
            known = sig.key in self._graphs
        except TypeError:
            raise TracingError(
                f"{self._name}: static arguments must be hashable, got {statics!r:.200}"
            ) from None
        if not known:
            reason = self._note_trace(sig)
            traced = self._make_graph(args, kwargs, nums, dyn_args, dyn_kwargs, pos_names)
            result = self._pass_manager.run(traced)
            self._traced[sig.key] = traced
            self._pipelines[sig.key] = result
            self._graphs[sig.key] = result.graph
            self._signatures.append(sig)
            if self._dumper is not None:
                index = len(self._signatures) - 1
                self._dumper.write_ir(index, sig.describe(), reason, traced, result)
                self._pending_hlo[sig.key] = index
        return sig.key, leaves

    def _make_graph(self, args, kwargs, nums, dyn_args, dyn_kwargs, pos_names):
        fn = self.fn
        static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}

        def body(*dargs, **dkwargs):
            it = iter(dargs)
            full = [args[i] if i in nums else next(it) for i in range(len(args))]
            return fn(*full, **dkwargs, **static_kwargs)

        graph, _ = _trace(_Named(body, pos_names), dyn_args, dyn_kwargs, eager=False, name=self._name)
        return graph

    def _note_trace(self, sig: Signature) -> str:
        """Count a trace; warn, log or refuse a retrace. Returns why it traced."""
        self.trace_count += 1
        if not self._signatures:
            return "first call"
        diff = sig.explain(self._signatures[-1])
        msg = (
            f"tg.jit function {self._name!r} is tracing again (trace #{self.trace_count}) "
            f"for a new signature; what changed since the last trace:\n{diff}"
        )
        log.info("%s", msg)  # opt-in: logging.getLogger("tracegraph.jit").setLevel(INFO)
        if self.on_retrace == "error":
            raise TracingError(msg + "\n(on_retrace='error' forbids retracing)")
        if self.on_retrace == "warn" and self.trace_count > self.retrace_warn_after:
            warnings.warn(RetraceWarning(msg), stacklevel=5)
        return "new signature; changed since the last trace:\n" + diff


class _InstrumentedJitFunction(JitFunction):
    """`JitFunction` with per-call work: dumping StableHLO/HLO once per new signature
    (``dump=``), and checking results for NaN/Inf (``debug_nans=True``)."""

    def __call__(self, *args, **kwargs):
        if _builder._STACK:
            return self.fn(*args, **kwargs)
        out = self._jitted(*args, **kwargs)
        if self._pending_hlo:
            self._dump_compiled(args, kwargs)
        if self.debug_nans:
            self._check_result(out, args, kwargs)
        return out

    def _dump_compiled(self, args, kwargs):
        key, _ = self._entry(args, kwargs)
        index = self._pending_hlo.pop(key, None)
        if index is not None:
            self._dumper.write_compiled(index, self._jitted.lower(*args, **kwargs))

    def _check_result(self, out, args, kwargs):
        bad = [
            x for x in jax.tree_util.tree_leaves(out)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact) and not bool(jnp.all(jnp.isfinite(x)))
        ]
        if not bad:
            return
        # As JAX's debug_nans: run again op by op to find the first node that makes one.
        # The graph as traced (before the passes) keeps every node the user wrote.
        key, leaves = self._entry(args, kwargs)
        Interpreter(self._traced[key], check_nans=True).run(*leaves)
        raise NaNError(
            f"tg.jit function {self._name!r} returned NaN/Inf, but running its graph op by "
            "op did not produce one (XLA's fused code rounds differently); try "
            "f.interpret(..., check_nans=True, optimized=False)"
        )


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
        Every retrace is also logged (INFO) on the ``tracegraph.jit`` logger.
      passes: the optimization pipeline run on each traced signature: pass names
        (``"fold"``, ``"simplify"``, ``"cse"``, ``"dce"``) and/or functions Graph -> Graph;
        None (default) is `DEFAULT_PIPELINE`, ``()`` compiles the graph as traced.
      verify_passes: run the IR verifier after every pass (default: the
        ``TRACEGRAPH_VERIFY_PASSES`` environment variable).
      dump: a folder for compilation dumps (docs/observability.md); default
        ``$TRACEGRAPH_DUMP`` (read now); ``True``: that, else ``./tracegraph_dump``;
        ``False`` never dumps.
      debug_nans: check each result for NaN/Inf; when one has them, re-run the graph in
        the interpreter to raise `tg.NaNError` at the first node that made one (with its
        user file:line), as ``jax_debug_nans`` does. Costs a device sync per call.
      Other keywords (e.g. ``in_shardings``) pass through to ``jax.jit``.

    Returns a `JitFunction`: call it; ``.trace(*args)`` gives the optimized Graph
    (``.trace(*args, optimized=False)`` the graph as traced), ``.pass_records(*args)``
    what each pass did, ``.lower(*args)`` the JAX ``Lowered``, ``.interpret(*args)`` runs
    the Graph node by node, ``.profile(*args)`` times each node.

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


__all__ = ["jit", "JitFunction", "RetraceWarning", "Signature", "TensorType", "DEFAULT_PIPELINE"]
