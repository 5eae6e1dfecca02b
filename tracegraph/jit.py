"""`tg.jit`: define-then-run. Trace a function to tracegraph IR once per abstract
signature, lower the IR through ``jax.jit`` to XLA, and run the compiled executable.

NOTE (dispatch speed): the IR is built *while jax.jit traces*. The function handed to
``jax.jit`` traces the user function to a Graph (or reuses the Graph already made for
this signature) and evaluates that Graph on JAX's tracers; so the IR is exactly what XLA
compiles, and a call on a cached signature is a plain call of the ``jax.jit`` object:
JAX's C++ dispatch does the cache lookup, and tracegraph adds one Python frame.

NOTE (the cache, as JAX's ``pjit.py`` and ``stages.py``): the options of ``tg.jit`` are
one frozen `JitOptions`, checked once when the function is wrapped. Everything tracegraph
knows about one signature is one `_Entry` (the `Signature`, the graph as traced, the
optimized graph with its pass records, the dump index), in one dict keyed by the
signature. A new entry is claimed under the function's lock, then traced and optimized
*outside* it, so threads with different signatures trace side by side; threads (or
``jax.jit`` itself, which may run the traced function in several threads at once) that
arrive with a signature already being traced wait on that entry's event instead of
tracing it again: the user function runs once per signature. A failed trace removes its
entry, and whoever waited on it tries again. Every inspection method (``trace``,
``interpret``, ``profile``, ``lower``, ``pass_records``) is one line over ``f.stage(...)``,
a `Traced` stage object wrapping the entry.

Each new signature is traced, then optimized by a pipeline of passes (by default
`DEFAULT_PIPELINE`: fold, simplify, fold, cse, dce; ``passes=`` chooses), and the optimized
graph is what XLA compiles. Options that need work around each call (``dump=``,
``debug_nans=True``) make an instrumented `JitFunction` subclass, so the plain one's
``__call__`` stays a direct call of the ``jax.jit`` object.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import operator
import os
import threading
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from .backends.interpreter import Interpreter, NaNError, Profile, profile_leaves
from .backends.jax_backend import evaluate
from .dump import Dumper, dump_dir_from
from .errors import TracingError, public, user_location
from .core import GraphTrace, at_bottom
from .frontend.placement import constrain_outputs, input_specs
from .frontend.tracing import arg_names, arrays_of_free, flatten_args, function_name, leaf_type, trace_with
from .ir.types import TensorType
from .transforms.pass_manager import DEFAULT_PIPELINE, PassManager

log = logging.getLogger("tracegraph.jit")


def _inside_trace() -> bool:
    """Whether this call comes from inside a tracegraph trace (then a `tg.jit` function
    is inlined, as a nested ``jax.jit`` is). The one place that asks."""
    return not at_bottom()


class RetraceWarning(UserWarning):
    """A `tg.jit` function traced again for a new signature more often than expected."""


@dataclasses.dataclass(frozen=True)
class JitOptions:
    """Every option of one `tg.jit` function (see `jit`), normalized and checked once when
    the function is wrapped; ``f.options``. Argument numbers and names are tuples, ``dump``
    is resolved to ``dump_dir`` (a folder or None), and the keywords passed through to
    ``jax.jit`` are ``jax_jit_kwargs``, a tuple of (name, value) items.

    Example::

        f = tg.jit(fn, static_argnums=1, passes="cse,dce")
        f.options.static_argnums   # (1,)
        f.options.passes           # ('cse', 'dce')
    """

    static_argnums: tuple[int, ...] = ()
    static_argnames: tuple[str, ...] = ()
    donate_argnums: tuple[int, ...] = ()
    on_retrace: str = "warn"
    retrace_warn_after: int = 3
    passes: tuple | None = None  # None: DEFAULT_PIPELINE
    dump_dir: str | None = None
    debug_nans: bool = False
    verify_passes: bool | None = None  # None: $TRACEGRAPH_VERIFY_PASSES
    jax_jit_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        put = functools.partial(object.__setattr__, self)  # frozen: set once, here
        put("static_argnums", _ints(self.static_argnums, "static_argnums"))
        put("static_argnames", _names(self.static_argnames, "static_argnames"))
        put("donate_argnums", _ints(self.donate_argnums, "donate_argnums"))
        if self.on_retrace not in ("warn", "error", "ignore"):
            raise ValueError(f"on_retrace must be 'warn', 'error' or 'ignore', not {self.on_retrace!r}")
        put("retrace_warn_after", _int(self.retrace_warn_after, "retrace_warn_after"))
        if self.retrace_warn_after < 0:
            raise ValueError(f"retrace_warn_after must be >= 0, not {self.retrace_warn_after}")
        passes = self.passes
        if isinstance(passes, str):  # "fold,cse" or "fold cse", as PassManager reads it
            passes = [p for p in passes.replace(",", " ").split() if p]
        put("passes", None if passes is None else tuple(passes))
        put("dump_dir", None if self.dump_dir is None else os.fspath(self.dump_dir))
        put("debug_nans", bool(self.debug_nans))
        put("verify_passes", None if self.verify_passes is None else bool(self.verify_passes))
        items = self.jax_jit_kwargs
        items = tuple(items.items() if isinstance(items, dict) else items)
        own = {f.name for f in dataclasses.fields(self)} | {"dump"}
        for name, _ in items:
            if not isinstance(name, str) or name in own:
                raise ValueError(f"jax_jit_kwargs: {name!r} is not a jax.jit keyword left to pass through")
        put("jax_jit_kwargs", items)


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
            lines.extend(structure_changes(other.treedef, self.treedef, other.names))
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


_CHANGES_SHOWN = 3  # structure changes listed in a retrace explanation


def structure_changes(old, new, old_names=()) -> list[str]:
    """Where two argument tree definitions differ, node by node: the first
    `_CHANGES_SHOWN` nodes whose kind, static data or number of children changed, each
    named by its path (from ``old_names``, the old side's dotted leaf names: each level
    below the arguments adds one part) and shown as the part of the static data that
    differs rather than the whole tree."""
    out: list[str] = []

    def walk(a, b, first: int, depth: int, parent: str):
        if len(out) >= _CHANGES_SHOWN:
            return
        path = parent
        if depth >= 2 and a.num_leaves and first < len(old_names):
            path = ".".join(old_names[first].split(".")[:depth - 1])
        da, db = a.node_data(), b.node_data()
        if da != db or len(a.children()) != len(b.children()):
            was, now = _node_texts(a, da, b, db)
            out.append(f"argument structure at {path or 'the arguments'}: {was} -> {now}")
            return
        top = depth == 0 and len(a.children()) == 2  # the (args, kwargs) pair
        for k, (ca, cb) in enumerate(zip(a.children(), b.children())):
            walk(ca, cb, first, depth + 1, _SIDES[k] if top else path)
            first += ca.num_leaves

    walk(old, new, 0, 0, "")
    return out or [f"argument structure: {_clip(str(old))} -> {_clip(str(new))}"]


def _node_texts(a, da, b, db) -> tuple[str, str]:
    """Two differing nodes of tree definitions as text: an array leaf, or a type and its
    static data; static data too long to read whole is cut to the items around the first
    place the two differ."""
    if da is None or db is None or da[0] is not db[0]:
        return _node_text(a, da), _node_text(b, db)
    name = da[0].__name__
    if da[1] == db[1]:  # same type and data: the number of children changed
        return _items(name, len(a.children())), _items(name, len(b.children()))
    x, y = repr(da[1]), repr(db[1])
    if max(len(x), len(y)) <= _TEXT_SHOWN:
        return f"{name} {x}", f"{name} {y}"
    k = next((n for n, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    start = x.rfind(", ", 0, k) + 2 if x.rfind(", ", 0, k) >= 0 else 0

    def window(text):
        end = text.find(", ", k)
        cut = text[start:] if end < 0 else text[start:end] + ", ..."
        return f"{name} {'..., ' if start else ''}{_clip(cut)}"

    return window(x), window(y)


def _node_text(tree, data) -> str:
    if data is None:
        return "an array" if tree.num_leaves == 1 else "nothing"
    kind, aux = data
    return kind.__name__ if aux is None else f"{kind.__name__} {_clip(repr(aux))}"


def _items(name: str, n: int) -> str:
    return f"{name} of {n} item{'' if n == 1 else 's'}"


_SIDES = ("the positional arguments", "the keyword arguments")


_TEXT_SHOWN = 120


def _clip(text: str, n: int = _TEXT_SHOWN) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


class _Entry:
    """The cache entry of one signature. Claimed (in the cache, not yet ``done``) by the
    thread that traces it; the graphs and records are set once, before ``done``, and never
    change after, so ``done`` entries are read without the lock."""

    __slots__ = ("signature", "owner", "ready", "done", "traced_graph", "graph", "pipeline",
                 "dump_index", "hlo_pending")

    def __init__(self, signature: Signature):
        self.signature = signature
        self.owner = threading.get_ident()  # the thread tracing it
        self.ready = threading.Event()  # set when done, or when the trace failed
        self.done = False
        self.traced_graph = None  # the Graph as traced, before the passes
        self.graph = None  # the optimized Graph: what XLA compiles
        self.pipeline = None  # the PipelineResult: one PassRecord per pass
        self.dump_index = None  # its folder number under the dump folder (with dump=)
        self.hlo_pending = False  # StableHLO/HLO not dumped yet (written after a compile)


class Traced:
    """One signature of a `tg.jit` function, traced and optimized: the stage before
    lowering, as ``jax.stages.Traced``. Made by ``f.stage(*args, **kwargs)``; it holds
    that call's arguments, so its methods take none.

    Attributes: ``signature`` (`Signature`), ``graph`` (the optimized Graph, what XLA
    compiles), ``traced_graph`` (the Graph before the passes), ``pass_records`` (a
    `PassRecord` per pass).

    Example::

        s = f.stage(x)
        print(s.graph); s.lower().as_text(); s.interpret(check_nans=True)
    """

    def __init__(self, jit_fn: "JitFunction", entry: _Entry, leaves, args, kwargs):
        self._jit_fn = jit_fn
        self._entry = entry
        self._leaves = leaves
        self._args = args
        self._kwargs = kwargs

    @property
    def signature(self) -> Signature:
        return self._entry.signature

    @property
    def graph(self):
        return self._entry.graph

    @property
    def traced_graph(self):
        return self._entry.traced_graph

    @property
    def pass_records(self) -> list:
        """What each pass did; ``tg.transforms.format_records(...)`` prints them as a table."""
        return list(self._entry.pipeline.records)

    def graph_of(self, optimized: bool = True):
        """``graph`` (optimized) or ``traced_graph``."""
        return self._entry.graph if optimized else self._entry.traced_graph

    def lower(self):
        """``jax.stages.Lowered`` for this signature; ``.as_text()`` is StableHLO."""
        return self._jit_fn._jitted.lower(*self._args, **self._kwargs)

    def interpret(self, *, check_nans: bool = False, hooks=(), profile: Profile | None = None,
                  optimized: bool = True):
        """Run the Graph with the eager interpreter, node by node (see `tg.Interpreter`
        for ``check_nans``, ``hooks`` and ``profile``); ``optimized=False`` runs the graph
        as traced. Returns the outputs in the function's structure."""
        graph = self.graph_of(optimized)
        outs = Interpreter(graph, hooks=hooks, check_nans=check_nans, profile=profile).run(*self._leaves)
        if profile is not None:
            profile.runs += 1
            if profile.root is None:
                profile.root = graph
        return graph.unflatten_outputs(outs)

    def profile(self, *, warmup: int = 1, repeat: int = 1, optimized: bool = True) -> Profile:
        """Time every node of the Graph in the interpreter (`tg.profile`)."""
        return profile_leaves(self.graph_of(optimized), self._leaves, warmup=warmup, repeat=repeat)

    def __repr__(self):
        return f"<Traced {self._jit_fn._name}({self.signature.describe()})>"


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
        options = JitOptions(
            static_argnums=static_argnums,
            static_argnames=static_argnames,
            donate_argnums=donate_argnums,
            on_retrace=on_retrace,
            retrace_warn_after=retrace_warn_after,
            passes=passes,
            dump_dir=dump_dir_from(dump),
            debug_nans=debug_nans,
            verify_passes=verify_passes,
            jax_jit_kwargs=tuple(jax_jit_kwargs.items()),
        )
        pass_manager = PassManager(  # checks the pass names
            options.passes, verify=options.verify_passes, keep_stages=options.dump_dir is not None
        )
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._options = options
        self._pass_manager = pass_manager
        self._name = function_name(fn)
        self.trace_count = 0
        self._unwraps_tensors = False  # called with imperative tensors: unwrap them first
        self._lock = threading.Lock()  # guards _entries, trace_count and the dump counters
        self._entries: dict = {}  # Signature.key -> _Entry, in the order they were claimed
        self._dumper = Dumper(options.dump_dir, self._name) if options.dump_dir else None
        self._dumped = 0  # signatures dumped so far: the next dump folder number
        self._pending_hlo = 0  # entries whose StableHLO/HLO is not dumped yet
        # jax.jit's placements, also shown in each traced graph (frontend/placement.py)
        passed = dict(options.jax_jit_kwargs)
        self._in_shardings = passed.get("in_shardings")
        self._out_shardings = passed.get("out_shardings")
        # where they were given: the location of the result constraints' nodes
        self._where = None if self._out_shardings is None else user_location(1)
        # The body carries the user function's name and signature (jax.jit resolves
        # static_argnames with it, and names the XLA module after it).
        body = functools.wraps(fn)(lambda *a, **k: self._jax_body(*a, **k))
        self._jitted = jax.jit(
            body,
            static_argnums=options.static_argnums,
            static_argnames=options.static_argnames,
            donate_argnums=options.donate_argnums,
            **dict(options.jax_jit_kwargs),
        )

    @property
    def options(self) -> JitOptions:
        """The frozen `JitOptions` this function was made with."""
        return self._options

    # -- calling --------------------------------------------------------------------
    @public("jit", TracingError)
    def __call__(self, *args, **kwargs):
        if _inside_trace():  # called from inside another trace: inline, as nested jit does
            return self.fn(*args, **kwargs)
        return self._call_jitted(args, kwargs)

    def _call_jitted(self, args, kwargs):
        # NOTE: finding PyTorch-style tensors among the arguments flattens the pytrees in
        # Python, which costs as much as jax.jit's whole dispatch on a model with many
        # leaves (a third of an Equinox ViT's small train step). So the arguments go to
        # jax.jit as they are; JAX refuses a free Tensor among them before anything runs
        # (its __jax_array__ is not used during abstractification), and from then on this
        # function unwraps them first.
        if self._unwraps_tensors:
            args, kwargs = arrays_of_free((args, kwargs))
        try:
            return self._jitted(*args, **kwargs)
        except (TracingError, TypeError, ValueError) as e:
            if not self._unwraps_tensors:
                tree = (args, kwargs)
                unwrapped = arrays_of_free(tree)
                if unwrapped is not tree:  # PyTorch-style tensors: call with their arrays
                    self._unwraps_tensors = True
                    return self._jitted(*unwrapped[0], **unwrapped[1])
            if isinstance(e, TracingError):
                raise
            text = str(e)
            if ("Error interpreting argument" in text or "Non-hashable static" in text
                    or (self._in_shardings is not None and "Sharding" in text)):
                self._lookup(args, kwargs)  # raises tracegraph's own error for the arguments
            raise

    def _jax_body(self, *args, **kwargs):
        entry, leaves = self._lookup(args, kwargs)
        outs = evaluate(entry.graph, leaves)
        return entry.graph.unflatten_outputs(outs)

    # -- inspection: one line each over the stage -------------------------------------
    @public("jit", TracingError)
    def stage(self, *args, **kwargs) -> Traced:
        """The `Traced` stage of this signature (arrays or `tg.spec`s as arguments): its
        graphs and pass records, and ``.lower()``, ``.interpret()``, ``.profile()``.
        Traces and optimizes the signature if it is new; compiles nothing.

        Example::

            s = f.stage(tg.spec((4, 784)))
            print(s.graph); print(tg.transforms.format_records(s.pass_records))
        """
        entry, leaves = self._lookup(args, kwargs)
        return Traced(self, entry, leaves, args, kwargs)

    @public("jit", TracingError)
    def trace(self, *args, optimized: bool = True, **kwargs):
        """The Graph lowered for this signature (arrays or `tg.spec`s as arguments): the
        optimized one; ``optimized=False`` gives the graph as traced, before the passes."""
        return self.stage(*args, **kwargs).graph_of(optimized)

    def pass_records(self, *args, **kwargs) -> list:
        """What each pass did for this signature: `PassRecord`s (name, time, nodes);
        ``tg.transforms.format_records(...)`` prints them as a table."""
        return self.stage(*args, **kwargs).pass_records

    @public("jit", TracingError)
    def lower(self, *args, **kwargs):
        """``jax.stages.Lowered`` for this signature; ``.as_text()`` is StableHLO."""
        return self.stage(*args, **kwargs).lower()

    @public("jit", TracingError)
    def interpret(self, *args, check_nans: bool = False, hooks=(), profile: Profile | None = None,
                  optimized: bool = True, **kwargs):
        """Run this signature's Graph with the eager interpreter, node by node (see
        `tg.Interpreter` for ``check_nans``, ``hooks`` and ``profile``); ``optimized=False``
        runs the graph as traced."""
        return self.stage(*args, **kwargs).interpret(
            check_nans=check_nans, hooks=hooks, profile=profile, optimized=optimized
        )

    def profile(self, *args, warmup: int = 1, repeat: int = 1, optimized: bool = True, **kwargs) -> Profile:
        """Time every node of this signature's graph in the interpreter (`tg.profile`);
        ``print(f.profile(x))`` shows the table."""
        return self.stage(*args, **kwargs).profile(warmup=warmup, repeat=repeat, optimized=optimized)

    def profile_compiled(self, *args, repeat: int = 10, **kwargs):
        """Profile ``repeat`` compiled calls with `jax.profiler` and fold XLA's op times
        onto the IR nodes each XLA op computes (`tracegraph.profiling`): ``print`` it
        for the table by node and by module scope."""
        from .profiling import profile_compiled  # noqa: PLC0415 - the profiler, on demand

        return profile_compiled(self, *args, repeat=repeat, **kwargs)

    @property
    def graphs(self) -> list:
        """Every Graph traced so far (optimized), one per signature, oldest first."""
        with self._lock:
            entries = list(self._entries.values())
        return [e.graph for e in entries if e.done]

    # -- the cache ------------------------------------------------------------------
    def _split(self, args, kwargs):
        opts = self._options
        nums = {i % len(args) if args else i for i in opts.static_argnums if -len(args) <= i < len(args)}
        dyn_args = tuple(a for i, a in enumerate(args) if i not in nums)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in opts.static_argnames}
        statics = [(i, args[i]) for i in sorted(nums)]
        statics += [(k, kwargs[k]) for k in sorted(kwargs) if k in opts.static_argnames]
        return dyn_args, dyn_kwargs, statics, nums

    def _lookup(self, args, kwargs):
        """(cache entry, flat dynamic leaves) of this call; a new signature is traced and
        optimized here, once however many threads ask for it at the same time."""
        dyn_args, dyn_kwargs, statics, nums = self._split(args, kwargs)
        pos_names = [n for i, n in enumerate(arg_names(self.fn, len(args))) if i not in nums]
        leaves, names, treedef = flatten_args(_Named(self.fn, pos_names), dyn_args, dyn_kwargs)
        types = [leaf_type(x, n) for x, n in zip(leaves, names)]
        sig = Signature(treedef, names, types, statics)
        try:
            entry = self._entries.get(sig.key)
        except TypeError:
            raise TracingError(
                f"{self._name}: static arguments must be hashable, got {statics!r:.200}"
            ) from None
        if entry is None or not entry.done:
            make = functools.partial(self._make_graph, args, kwargs, nums, dyn_args, dyn_kwargs, pos_names)
            entry = self._create(sig, make)
        return entry, leaves

    def _create(self, sig: Signature, make_graph) -> _Entry:
        """The done entry of ``sig``: claim it and trace it, or wait for the thread that
        claimed it. Only the claim holds the lock, so other signatures trace meanwhile."""
        while True:
            with self._lock:
                entry = self._entries.get(sig.key)
                if entry is None:
                    reason = self._note_trace(sig)  # may raise (on_retrace="error")
                    entry = self._entries[sig.key] = _Entry(sig)
                    break
            if entry.done:
                return entry
            if entry.owner == threading.get_ident():
                raise TracingError(
                    f"tg.jit function {self._name!r} asked for its own signature while tracing "
                    f"it ({sig.describe()}); call the function, not f.trace/f.stage, inside it"
                )
            entry.ready.wait()
            if entry.done:
                return entry
            # its trace failed and the entry is gone: claim it again (and meet the error)
        try:
            traced = make_graph()
            result = self._pass_manager.run(traced)
            entry.traced_graph, entry.graph, entry.pipeline = traced, result.graph, result
            if self._dumper is not None:
                with self._lock:
                    entry.dump_index, self._dumped = self._dumped, self._dumped + 1
                self._dumper.write_ir(entry.dump_index, sig.describe(), reason, traced, result)
                with self._lock:
                    entry.hlo_pending = True
                    self._pending_hlo += 1
        except BaseException:
            with self._lock:
                del self._entries[sig.key]
            entry.ready.set()  # wake the waiters: they find no entry and claim it anew
            raise
        entry.done = True
        entry.ready.set()
        return entry

    def _make_graph(self, args, kwargs, nums, dyn_args, dyn_kwargs, pos_names):
        fn = self.fn
        static_kwargs = {k: v for k, v in kwargs.items() if k in self._options.static_argnames}
        out_shardings = self._out_shardings

        def body(*dargs, **dkwargs):
            it = iter(dargs)
            full = [args[i] if i in nums else next(it) for i in range(len(args))]
            out = fn(*full, **dkwargs, **static_kwargs)
            return out if out_shardings is None else constrain_outputs(out, out_shardings, self._where)

        trace = GraphTrace(self._name)
        trace.refuse_trainable = True
        named = _Named(body, pos_names)
        graph, _ = trace_with(trace, named, dyn_args, dyn_kwargs,
                              in_specs=self._input_specs(named, dyn_args, dyn_kwargs))
        return graph

    def _input_specs(self, named, dyn_args, dyn_kwargs):
        """The partition spec ``in_shardings`` gives each array leaf (None: none), for
        the graph inputs' types; keyword arguments get none (jax.jit takes no
        ``in_shardings`` with them)."""
        if self._in_shardings is None:
            return None
        leaves, names, _ = flatten_args(named, dyn_args, dyn_kwargs)
        n_pos = len(flatten_args(named, dyn_args, {})[0])
        types = [leaf_type(x, n) for x, n in zip(leaves[:n_pos], names[:n_pos])]
        specs = input_specs(self._in_shardings, tuple(dyn_args), names[:n_pos], types)
        return specs + [None] * (len(leaves) - n_pos)

    def _note_trace(self, sig: Signature) -> str:
        """Count a trace; warn, log or refuse a retrace. Returns why it traces. Called
        with the lock held, so counts and "the last trace" agree across threads."""
        last = next(reversed(self._entries.values()), None)  # the latest claimed signature
        if last is None:
            self.trace_count += 1
            return "first call"
        diff = sig.explain(last.signature)
        msg = (
            f"tg.jit function {self._name!r} is tracing again (trace #{self.trace_count + 1}) "
            f"for a new signature; what changed since the last trace:\n{diff}"
        )
        log.info("%s", msg)  # opt-in: logging.getLogger("tracegraph.jit").setLevel(INFO)
        if self._options.on_retrace == "error":
            raise TracingError(msg + "\n(on_retrace='error' forbids retracing)")
        self.trace_count += 1
        if self._options.on_retrace == "warn" and self.trace_count > self._options.retrace_warn_after:
            warnings.warn(RetraceWarning(msg), stacklevel=5)
        return "new signature; changed since the last trace:\n" + diff


class _InstrumentedJitFunction(JitFunction):
    """`JitFunction` with per-call work: dumping StableHLO/HLO once per new signature
    (``dump=``), and checking results for NaN/Inf (``debug_nans=True``)."""

    @public("jit", TracingError)
    def __call__(self, *args, **kwargs):
        if _inside_trace():
            return self.fn(*args, **kwargs)
        out = self._call_jitted(args, kwargs)
        if self._pending_hlo:
            self._dump_compiled(args, kwargs)
        if self._options.debug_nans:
            self._check_result(out, args, kwargs)
        return out

    def _dump_compiled(self, args, kwargs):
        stage = self.stage(*args, **kwargs)
        entry = stage._entry
        with self._lock:  # one thread writes each entry's compiled dump
            claimed, entry.hlo_pending = entry.hlo_pending, False
            if claimed:
                self._pending_hlo -= 1
        if claimed:
            self._dumper.write_compiled(entry.dump_index, stage.lower())

    def _check_result(self, out, args, kwargs):
        bad = [
            x for x in jax.tree_util.tree_leaves(out)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact) and not bool(jnp.all(jnp.isfinite(x)))
        ]
        if not bad:
            return
        # As JAX's debug_nans: run again op by op to find the first node that makes one.
        # The graph as traced (before the passes) keeps every node the user wrote.
        self.stage(*args, **kwargs).interpret(check_nans=True, optimized=False)
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


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, (int, str)):
        return (x,)
    return tuple(x)


def _int(x, what: str) -> int:
    if isinstance(x, bool):
        raise TypeError(f"{what}: expected an int, got {x!r}")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{what}: expected an int, got {x!r}") from None


def _ints(x, what: str) -> tuple[int, ...]:
    return tuple(_int(i, what) for i in _as_tuple(x))


def _names(x, what: str) -> tuple[str, ...]:
    names = _as_tuple(x)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{what}: expected argument names (str), got {n!r}")
    return names


@public("jit", TracingError)
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
      Other keywords pass through to ``jax.jit``. ``in_shardings`` / ``out_shardings``
        also show in each traced graph: an input given a ``NamedSharding`` (or a
        ``PartitionSpec`` over the mesh set around the call) has its spec in its type,
        ``%x: f32[8,3]{"data", none}``, and a result given one ends in a
        ``sharding_constraint`` (docs/scaling.md).

    Returns a `JitFunction`: call it; ``.trace(*args)`` gives the optimized Graph
    (``.trace(*args, optimized=False)`` the graph as traced), ``.pass_records(*args)``
    what each pass did, ``.lower(*args)`` the JAX ``Lowered``, ``.interpret(*args)`` runs
    the Graph node by node, ``.profile(*args)`` times each node; ``.stage(*args)`` is the
    `Traced` stage all of these read. ``.options`` is the frozen `JitOptions`. Calling
    from several threads at once is safe: each signature is traced once.

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


__all__ = [
    "jit", "JitFunction", "JitOptions", "Traced", "RetraceWarning", "Signature", "TensorType",
    "DEFAULT_PIPELINE",
]
