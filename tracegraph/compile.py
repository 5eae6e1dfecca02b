"""`tg.compile(fn)`: define-by-run that becomes define-then-run, Python control flow kept.

The first call with a signature runs ``fn`` define-by-run (`frontend.guards.GuardTrace`):
every op runs and is recorded, and every Python decision taken on a tensor's value —
``if x.sum() > 0``, ``while float(err) > tol``, ``int(n)``, ``.item()`` — is recorded
as a ``guard`` node holding the value Python saw and the user's line. The recorded graph
is one *path* through ``fn``; its outputs are ``fn``'s results followed by its guards.

Later calls with the signature run a cached path compiled by ``jax.jit`` and check its
guards, computed next to the results. If all hold, the results are returned: they are
what define-by-run would give, since every decision came out the same. If one fails, the
paths that agree with it on every earlier decision and differ at the failed one are
tried; if none is cached, ``fn`` runs define-by-run again (``on_miss="record"``), and the
new path is cached too, up to ``max_paths`` per signature. ``on_miss="eager"`` runs
define-by-run without recording; ``"error"`` raises `GuardMiss`.

Each path is compiled as a ``jax.jit`` function of the call's own arguments: the path that
ran the last two calls is called first, directly, so JAX's C++ dispatch flattens the
arguments and checks their types (another signature is refused while JAX traces, before
anything runs: the traced function compares the argument tree and every leaf's shape,
dtype and weak flag with the path's), and only a refusal or a failed guard goes through
the lookup of the signature's paths.

A Python loop whose exit depends on a value is recorded unrolled, a guard per iteration;
before the path is compiled, its identical iterations are rolled back into one ``scan``
whose stacked output is their guards (`transforms.roll`), so the decisions checked are
unchanged and XLA runs a loop, not a straight-line program.

No rewrite of the user's code is needed: ``if``/``while`` on tensor values stay Python.
(`torch.compile` breaks the graph at such a line; JAX raises; TensorFlow's AutoGraph
rewrites the source.)

Example::

    @tg.compile
    def scale(x):
        if x.sum() > 0:        # a Python `if` on a value: a guard
            return x * 2
        return -x

    scale(np.ones(3)); scale(-np.ones(3))     # two paths, both cached
    scale(np.ones(3))                          # compiled; its guard holds
    for p in scale.graphs(): print(p)          # each path's graph with its guards
    print(scale.explain())
"""

from __future__ import annotations

import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax._src.array import ArrayImpl as _ArrayImpl  # the concrete array type: a direct signature

from .backends.jax_backend import as_jax_function, jitted
from .core import Tensor, at_bottom, function_name, type_of, using
from .errors import Error, user_location_long
from .frontend.guards import GuardTrace
from .frontend.tracing import flatten_args, leaf_type, tree_spec_of
from .ir.tree import default_out_tree
from .ir.types import TensorType
from .transforms.roll import roll_guarded_loops

ON_MISS = ("record", "eager", "error")


class GuardMiss(Error):
    """A guard of every cached path failed and ``on_miss="error"``."""


class _Mismatch(Exception):
    """Raised while JAX traces a path's executable for arguments of another signature
    than the path's (so JAX caches nothing for them)."""


class Path:
    """One recorded path: its graph (results, then one bool output per guard), the
    decisions Python took on it (kind, value, user line), the output tree, and how many
    calls used it."""

    def __init__(self, graph, decisions, num_outputs, out_treedef, state_in=(), state_out=(), key=None):
        self.graph = graph
        self.decisions = decisions
        self.num_outputs = num_outputs
        self.out_treedef = out_treedef
        self.key = key  # the signature it was recorded for: (argument tree, leaf types)
        self.hits = 0
        # the imperative tensors / Variables it reads (trailing inputs) and writes
        # (outputs after the results); their arrays are read and written at each call
        self.state_in = list(state_in)
        self.state_types = [v.type for v in graph.inputs[len(graph.inputs) - len(self.state_in):]]
        self.state_out = list(state_out)
        self.first_guard = num_outputs + len(self.state_out)  # where the guards' outputs start
        # the guards' vector's bytes when every guard holds: comparing them is cheaper
        # than a NumPy reduction, which runs on a cache the step has just used
        self.all_held = b"\x01" * sum(int(np.prod(v.type.shape)) for v in graph.outputs[self.first_guard:])
        self._call = None
        self._flat = None
        self.mismatches = 0  # calls its executable refused (another signature)

    def state_arrays(self):
        """The current arrays of the state it reads; None if one changed type."""
        arrays = []
        for t, ty in zip(self.state_in, self.state_types):
            a = t._data
            if tuple(np.shape(a)) != ty.shape or np.dtype(a.dtype) != ty.dtype:
                return None
            arrays.append(a)
        return arrays

    def _jax_function(self):
        """The path as a JAX function of its flat inputs: its results, the state it
        writes, then its guards' values stacked into one bool vector (read back in one
        transfer: a read per guard cost about 20 us each)."""
        evaluate = as_jax_function(self.graph)
        first_guard = self.first_guard

        def path(*flat):
            outs = list(evaluate(*flat))
            if self.decisions:  # a rolled loop's guards are one vector already
                outs[first_guard:] = [jnp.concatenate([jnp.reshape(g, (-1,)) for g in outs[first_guard:]])]
            return outs

        return path

    def _donated(self, offset: int) -> tuple:
        """Positions of the state it reads and writes, from ``offset``: donated on an
        accelerator (their old buffers are reused for the new values, which matters
        where memory is short). Not on CPU: donation deletes the old arrays, which a
        caller may still hold (``w.data`` before the step)."""
        if not self.state_in or jax.default_backend() == "cpu":
            return ()
        written = {id(t) for t in self.state_out}
        return tuple(offset + i for i, t in enumerate(self.state_in) if id(t) in written)

    def call(self, args, kwargs, state) -> tuple:
        """Run the path compiled by ``jax.jit`` on the call's own arguments: returns
        (result tree, the state it writes, the guards' vector or None). JAX's C++
        dispatch flattens the arguments and checks their types; arguments of another
        signature raise `_Mismatch` (before anything runs)."""
        if self._call is None:
            treedef, types = self.key
            path = self._jax_function()
            n, first_guard, out_treedef = self.num_outputs, self.first_guard, self.out_treedef

            def call(args, kwargs, *state):
                leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
                if tree != treedef or tuple([(x.shape, x.dtype, x.aval.weak_type) for x in leaves]) != types:
                    raise _Mismatch()
                outs = path(*leaves, *state)
                guards = outs[first_guard] if self.decisions else None
                return jax.tree_util.tree_unflatten(out_treedef, outs[:n]), outs[n:first_guard], guards

            call.__name__ = self.graph.name
            self._call = jax.jit(call, donate_argnums=self._donated(2))
        return self._call(args, kwargs, *state)

    def run(self, leaves, state) -> list:
        """The path compiled by ``jax.jit`` for flat inputs (its outputs as
        `_jax_function`'s); for a call whose leaves `call` refused though the signature
        matched (a Python scalar typed otherwise by JAX than by `signature_of`)."""
        if self._flat is None:
            path = self._jax_function()
            path.__name__ = self.graph.name
            self._flat = jax.jit(path, donate_argnums=self._donated(len(leaves)))
        outs = self._flat(*leaves, *state)
        guards = outs[self.first_guard] if self.decisions else None
        return (jax.tree_util.tree_unflatten(self.out_treedef, outs[: self.num_outputs]),
                outs[self.num_outputs: self.first_guard], guards)

    def write_back(self, written) -> None:
        for t, arr in zip(self.state_out, written):
            t._data = arr

    def __str__(self):
        lines = [f"path with {len(self.decisions)} guard(s), {self.hits} compiled call(s):"]
        if self.state_in or self.state_out:
            names = lambda ts: ", ".join(t._value.name or "(unnamed)" for t in ts) or "-"  # noqa: E731
            lines.append(f"  state read: {names(self.state_in)}; written: {names(self.state_out)}")
        for kind, value, where in self.decisions:
            lines.append(f"  {kind}() was {value!r} at {where or '?'}")
        return "\n".join(lines) + "\n" + str(self.graph)


class _Signature:
    """The paths of one signature, most recently used first."""

    def __init__(self):
        self.paths: list[Path] = []
        self.unguardable: str | None = None  # why this signature always runs eagerly
        self.log: list[str] = []  # why each path was recorded


class CompiledFunction:
    """What `compile` returns: call it like ``fn``; ``graphs()``, ``paths()`` and
    ``explain()`` show what it recorded."""

    def __init__(self, fn, max_paths: int = 8, on_miss: str = "record"):
        if on_miss not in ON_MISS:
            raise ValueError(f"on_miss must be one of {ON_MISS}, got {on_miss!r}")
        if int(max_paths) < 1:
            raise ValueError("max_paths must be at least 1")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.max_paths = int(max_paths)
        self.on_miss = on_miss
        self._sigs: dict = {}
        self._lock = threading.Lock()
        self.compiled_calls = 0
        self.eager_calls = 0
        self._fast: Path | None = None  # the path tried first, on the arguments as they are
        self._last: Path | None = None  # the path of the last call through the cache

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if not at_bottom():  # inside another trace: just run inline
            return self.fn(*args, **kwargs)
        # The path that ran the last calls is called at once on the arguments as they
        # are: JAX's C++ dispatch flattens them and checks their types, as for a
        # `tg.jit` function. What runs around the call is on the step's time (what
        # runs after the guards are read, on a cache the step has just used).
        path, tried = self._fast, []
        if path is not None:
            state = path.state_arrays() if path.state_in else ()
            try:
                if state is None:
                    raise _Mismatch()
                result, written, guards = path._call(args, kwargs, *state)  # made by `call`
            except _Mismatch:  # another signature (JAX cached nothing for it)
                path.mismatches += 1
                self._fast = None
            except (TypeError, ValueError):  # a Tensor or non-array argument: refused
                self._fast = None            # before anything ran; the full lookup below
            else:
                # the guards' values decide: reading them waits for the step (as a
                # Python `if` on a value does in PyTorch); no guard, no wait
                if guards is None or (held := np.asarray(guards)).tobytes() == path.all_held:
                    if path.state_out:
                        path.write_back(written)
                    path.hits += 1
                    self.compiled_calls += 1
                    return result
                self._fast = None
                tried.append((path, int(np.argmin(held))))  # the first decision that differs
        return self._lookup_call(args, kwargs, tried)

    def _lookup_call(self, args, kwargs, tried):
        """A call through the cache: the signature's paths, most recently used first
        (after those in ``tried``, whose guards failed on this call)."""
        # a Tensor is no pytree node, so it is a leaf as it is: no Python `is_leaf` call
        # per node (a `flatten_args` of the same arguments gives the same leaves)
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        tensors = any(isinstance(x, Tensor) for x in leaves)
        if tensors:  # imperative tensors: their arrays
            leaves = [x._data if isinstance(x, Tensor) and x._trace.free else x for x in leaves]
            args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
        try:
            key = (treedef, signature_of(leaves))
        except TypeError:  # a non-array leaf: the recording run names it in its error
            return self._record(args, kwargs, _Signature(), keep=False, why=None)
        # reads of the cache take no lock (a dict lookup and a list copy are atomic under
        # the GIL); every change to it does
        sig = self._sigs.get(key)
        if sig is None:
            with self._lock:
                sig = self._sigs.setdefault(key, _Signature())
        if sig.unguardable is not None:
            self.eager_calls += 1
            return self._record(args, kwargs, sig, keep=False, why=None)
        paths = sig.paths[:]
        path = _next_path(paths, tried) if tried else (paths[0] if paths else None)
        while path is not None:
            state = path.state_arrays() if path.state_in else ()
            if state is None:  # a state tensor changed type: this path is no use now
                with self._lock:
                    if path in sig.paths:
                        sig.paths.remove(path)
                paths.remove(path)
                path = _next_path(paths, tried) if tried else (paths[0] if paths else None)
                continue
            try:
                result, written, guards = path.call(args, kwargs, state)
            except _Mismatch:  # the signature matched, JAX typed a Python scalar otherwise
                path.mismatches += 1
                result, written, guards = path.run(leaves, state)
            if guards is None or (held := np.asarray(guards)).tobytes() == path.all_held:
                if path.state_out:
                    path.write_back(written)
                path.hits += 1
                self.compiled_calls += 1
                if path is not paths[0]:  # most recently used first
                    with self._lock:
                        if path in sig.paths:
                            sig.paths.remove(path)
                            sig.paths.insert(0, path)
                # the same path twice in a row, called with arrays: the next call tries
                # it first, through JAX's dispatch (a path JAX refused twice is not)
                if not tensors and path is self._last and path.mismatches < 2:
                    self._fast = path
                self._last = path
                return result
            tried.append((path, int(np.argmin(held))))  # the first decision that differs
            path = _next_path(paths, tried)
        self._last = None
        if paths:
            if self.on_miss == "error":
                raise GuardMiss(
                    f"compile({function_name(self.fn)}), on_miss='error': {self._miss_report(tried)} "
                    f"(at {user_location_long(3)})"
                )
            if self.on_miss == "eager" or len(paths) >= self.max_paths:
                self.eager_calls += 1
                return self._record(args, kwargs, sig, keep=False, why=self._miss_report(tried))
        return self._record(args, kwargs, sig, keep=True, why=self._miss_report(tried) if paths else "first call",
                            key=key)

    def _record(self, args, kwargs, sig, keep: bool, why, key=None):
        """Run ``fn`` define-by-run, recording a path (cached when ``keep``)."""
        trace = GuardTrace(function_name(self.fn))
        leaves, names, treedef = flatten_args(self.fn, args, kwargs)
        tensors = [trace.new_input(leaf_type(x, n), name=n, data=x) for x, n in zip(leaves, names)]
        targs, tkwargs = jax.tree_util.tree_unflatten(treedef, tensors)
        with using(trace):
            result = self.fn(*targs, **tkwargs)
            out_leaves, out_treedef = jax.tree_util.tree_flatten(result, is_leaf=lambda x: isinstance(x, Tensor))
            outs = [trace.lift(x) for x in out_leaves]
        values = [jnp.asarray(t._data) for t in outs]
        if keep and trace.unguardable is None:
            written = list(trace.state_out.values())
            results = outs + [new for _, new in written] + trace.guards
            # state inputs follow the arguments: the inputs are then flat
            in_tree = tree_spec_of(treedef) if not trace.state_in else None
            graph = trace.finish(results, default_out_tree(len(results)), in_tree)
            # a Python loop recorded unrolled runs as a scan, its guards as before
            graph = roll_guarded_loops(graph, first_guard=len(outs) + len(written))
            path = Path(graph, trace.decisions, len(outs), out_treedef,
                        [t for t, _ in trace.state_in], [t for t, _ in written], key)
            with self._lock:
                # another thread may have recorded the same path meanwhile: keep one
                if not any(p.decisions == path.decisions for p in sig.paths):
                    sig.paths.insert(0, path)
                    sig.log.append(why or "")
        elif keep:
            with self._lock:
                sig.unguardable = trace.unguardable
                sig.log.append(f"runs define-by-run: {trace.unguardable}")
        return jax.tree_util.tree_unflatten(out_treedef, values)

    # -- inspection ---------------------------------------------------------------------
    def paths(self) -> list[Path]:
        """Every cached path, over all signatures."""
        with self._lock:
            return [p for sig in self._sigs.values() for p in sig.paths]

    def graphs(self) -> list:
        """The graph of each cached path (results, then one ``guard`` output per
        decision; each guard node carries its value and user line)."""
        return [p.graph for p in self.paths()]

    def explain(self) -> str:
        """Why each path exists: the decision (kind, user line) a call took differently
        from the cached paths, with the old and new values."""
        lines = []
        with self._lock:
            sigs = list(self._sigs.items())
        for i, (key, sig) in enumerate(sigs):
            types = ", ".join(str(TensorType(*t)) for t in key[1])
            lines.append(f"signature {i} ({types}): {len(sig.paths)} path(s)")
            if sig.unguardable:
                lines.append(f"  runs define-by-run every call: {sig.unguardable}")
            for why in sig.log:
                lines.append(f"  recorded: {why}")
        return "\n".join(lines)

    def _miss_report(self, tried) -> str:
        parts = []
        for path, k in tried:
            kind, value, where = path.decisions[k]
            parts.append(f"guard {k} ({kind}() at {where or '?'}) was {value!r} on the cached path and differs now")
        return "; ".join(parts) or "no cached path"


def signature_of(leaves) -> tuple:
    """The call signature of flat argument leaves: shape, dtype and weak flag of each (a
    JAX array's read directly; other leaves typed as `type_of` does). TypeError for a
    leaf that is not an array."""
    return tuple([(x.shape, x.dtype, x.weak_type) if type(x) is _ArrayImpl else _as_key(type_of(x))
                  for x in leaves])


def _as_key(t) -> tuple:
    return (t.shape, t.dtype, t.weak)


def function(func=None, *, input_signature=None, autograph: bool = True, jit_compile=None,
             reduce_retracing: bool = False, max_paths: int = 8, on_miss: str = "record", **_ignored):
    """TensorFlow's ``tf.function``: the whole call — reads and assignments of
    Variables, a `GradientTape`, an optimizer's ``apply_gradients`` — recorded once as one
    IR graph and run compiled by ``jax.jit`` from then on (`tg.compile`, whose paths take
    the Variables and imperative tensors the function reads as inputs and return those it
    assigns, written back after each call; on an accelerator the written state is
    donated). Python decisions on values become guards, not a source rewrite, so
    ``autograph`` has nothing to do; ``input_signature``, ``jit_compile`` and
    ``reduce_retracing`` are accepted for TensorFlow code and change nothing (every call
    is compiled by XLA, one path per signature and decisions).

    Example::

        w = tg.Variable(tg.random.normal([3, 1])); opt = tg.optimizers.SGD(0.1)

        @tg.function
        def train_step(x, y):
            with tg.GradientTape() as tape:
                loss = tg.reduce_mean(tg.square(x @ w - y))
            opt.apply_gradients(zip(tape.gradient(loss, [w]), [w]))
            return loss

        train_step(x, y)                 # records the step, then runs it compiled
        print(train_step.graphs()[0])    # one graph: w in, new w out
    """

    def wrap(fn):
        return CompiledFunction(fn, max_paths=max_paths, on_miss=on_miss)

    return wrap if func is None else wrap(func)


def _next_path(paths, tried):
    """A cached path not tried yet that agrees with every tried path's decisions before
    its miss and differs at it (None if there is none)."""
    done = {id(p) for p, _ in tried}
    for cand in paths:
        if id(cand) in done:
            continue
        ok = True
        for p, k in tried:
            prefix = p.decisions[:k]
            if cand.decisions[:k] != prefix or (len(cand.decisions) > k and cand.decisions[k] == p.decisions[k]):
                ok = False
                break
        if ok:
            return cand
    return None


def compile(fn=None, *, max_paths: int = 8, on_miss: str = "record"):  # noqa: A001 - torch's name
    """Compile ``fn`` from its define-by-run runs, keeping its Python control flow: see the
    module doc. Usable as ``@tg.compile`` or ``tg.compile(fn, max_paths=..., on_miss=...)``."""
    if fn is None:
        return lambda f: CompiledFunction(f, max_paths, on_miss)
    return CompiledFunction(fn, max_paths, on_miss)


__all__ = ["CompiledFunction", "GuardMiss", "Path", "compile"]
