"""`tg.from_jax`: call JAX code (jax.numpy functions, Flax ``apply``, optax updates) from
tracegraph code. Its jaxpr becomes ordinary tracegraph IR nodes; and `tg.to_jax`, the
other direction: a `tg.Graph` as a JAX function.

How a call works inside tg.jit / tg.trace / tg.eager:

1. The arguments are flattened; tensors and arrays are the dynamic leaves, anything else
   (Python numbers, strings, flags such as ``train=False``) is static and closed over.
2. ``jax.make_jaxpr`` traces the JAX function on ``ShapeDtypeStruct`` stand-ins for the
   dynamic leaves (cached per abstract signature).
3. The whole jaxpr, nested jaxprs included, is checked against the primitive table
   (`rules.RULES`, keyed on JAX's primitive objects); anything missing is reported at
   once in one `tg.TracingError`, with the reason `rules.NOT_YET_SUPPORTED` gives.
4. Each equation is converted as tracegraph ops in the scope ``from_jax/<name>`` (plus
   JAX's own name stack, e.g. Flax module paths: ``from_jax/apply.CNN.Conv_0``). Nested
   ``jit``/``remat`` calls are inlined; ``custom_jvp``/``custom_vjp`` functions become
   ``custom_vjp`` nodes that keep their rules; ``cond``, ``while`` and ``scan`` become
   tracegraph control-flow nodes.

Outside any trace on plain arrays the JAX function simply runs.

Example::

    import flax.linen as nn
    model = nn.Dense(3)
    apply = tg.from_jax(model.apply)

    @tg.jit
    def f(params, x):
        return tg.sum(apply(params, x) ** 2)

    print(f.trace(params, x))        # dot_general, add, ... in scope from_jax/apply
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np

# NOTE: JAX's own dead-code elimination; jax.extend exports none. It prunes nested jaxprs
# too (scan, while, cond and jit have DCE rules), and keeps equations with effects.
from jax._src.interpreters.partial_eval import dce_jaxpr

from ..backends.jax_backend import as_jax_function
from ..errors import Error, TracingError, user_location, user_location_long
from ..core import Tensor, at_bottom, current_trace, function_name
from ..core.trace import bottom_scope, bottom_scope_as
from ..frontend.tape import TAPE, is_grad_enabled
from ..frontend.tracing import arrays_of_free
from ..ir.graph import Graph
from ..ir.types import is_key
from ..ops.defop import default_float, default_int
from .rules import NOT_YET_SUPPORTED, RULES

_CACHE_SIZE = 64
# True while jax.make_jaxpr traces a function for from_jax (per thread/task): a from_jax
# function called in there (an optimizer's schedule, say) sees JAX tracers and must
# simply run
_jax_tracing: contextvars.ContextVar[bool] = contextvars.ContextVar("tracegraph_jax_tracing", default=False)


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _is_dynamic(x) -> bool:
    """Leaves that become jaxpr inputs: tensors and arrays (not Python scalars)."""
    return isinstance(x, (Tensor, np.ndarray, np.generic, jax.Array, jax.core.Tracer))


def _only_jax_tracers(leaves) -> bool:
    return not any(_is_tensor(x) for x in leaves) and any(
        isinstance(x, jax.core.Tracer) for x in leaves
    )


def _aval(x) -> jax.ShapeDtypeStruct:
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    if isinstance(x, Tensor):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.type.weak)
    if is_key(x.dtype):  # typed PRNG keys
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype)
    dt = jax.dtypes.canonicalize_dtype(x.dtype)
    return jax.ShapeDtypeStruct(np.shape(x), dt, weak_type=bool(getattr(x, "weak_type", False)))


class _Traced:
    """One jaxpr of the function, for one abstract signature."""

    def __init__(self, closed, out_treedef):
        self.closed = closed
        self.out_treedef = out_treedef
        self.problems = missing_primitives(closed)
        self.blocks: dict = {}  # what a trace made of it (`Trace.call_block`), per scope and line


class JaxFunction:
    """A JAX function usable in tracegraph code. Create with `tg.from_jax`."""

    def __init__(self, fn, name: str | None = None):
        self.fn = fn
        self.name = name or function_name(fn)
        self.__name__ = self.name
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self._cache: dict = {}

    def __repr__(self):
        return f"tg.from_jax({self.name})"

    def __call__(self, *args, **kwargs):
        # a Tensor is no pytree node, so it is a leaf as it is: no Python `is_leaf` call
        # per node (an optax state flattens through many)
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        if _jax_tracing.get() or (not at_bottom() and _only_jax_tracers(leaves)):
            return self.fn(*args, **kwargs)
        b = current_trace()
        if at_bottom():
            if any(_is_tensor(x) and not x._trace.free for x in leaves):
                raise TracingError(
                    f"{self!r}: a traced tensor is used outside the trace that made it "
                    f"(at {user_location_long(2)})"
                )
            free = [x for x in leaves if _is_tensor(x)]
            if not (free and is_grad_enabled() and any(x.requires_grad for x in free)):
                # plain arrays, or imperative tensors with nothing to record: JAX itself
                args, kwargs = arrays_of_free((args, kwargs))
                return self.fn(*args, **kwargs)
            b = TAPE  # imperative tensors that require grad: record the converted ops
        dynamic = [i for i, x in enumerate(leaves) if _is_dynamic(x)]
        traced = self._jaxpr(leaves, treedef, dynamic)
        if traced.problems:
            raise TracingError(_problem_report(self, traced.problems, user_location_long(2)))
        ins = [b.lift(leaves[i]) for i in dynamic]
        scope = b.builder.scope if hasattr(b, "builder") else bottom_scope()
        base = ".".join(s for s in (scope, f"from_jax/{self.name}") if s)
        outs = b.call_block(lambda xs: _Emitter(base).run_closed(traced.closed, xs), ins,
                            traced.blocks, (base, user_location()))
        return jax.tree_util.tree_unflatten(traced.out_treedef, outs)

    def jaxpr(self, *args, **kwargs) -> jcore.ClosedJaxpr:
        """The closed jaxpr a call with these arguments (arrays, tensors or
        ShapeDtypeStructs) converts."""
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        dynamic = [
            i for i, x in enumerate(leaves) if _is_dynamic(x) or isinstance(x, jax.ShapeDtypeStruct)
        ]
        return self._jaxpr(leaves, treedef, dynamic).closed

    def _jaxpr(self, leaves, treedef, dynamic) -> _Traced:
        avals = [_aval(leaves[i]) for i in dynamic]
        statics = tuple(x for i, x in enumerate(leaves) if i not in set(dynamic))
        key = (treedef, tuple((a.shape, a.dtype, a.weak_type) for a in avals), tuple(dynamic),
               statics, jax.config.jax_enable_x64)
        try:
            hit = self._cache.get(key)
        except TypeError:  # an unhashable static argument: trace every time
            key, hit = None, None
        if hit is not None:
            return hit
        positions = set(dynamic)

        def flat_fn(*dyn):
            it = iter(dyn)
            full = [next(it) if i in positions else x for i, x in enumerate(leaves)]
            a, k = jax.tree_util.tree_unflatten(treedef, full)
            return self.fn(*a, **k)

        token = _jax_tracing.set(True)
        try:
            closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*avals)
        except Error:
            raise
        except Exception as e:
            sig = ", ".join(f"{a.dtype}{list(a.shape)}" for a in avals)
            raise TracingError(
                f"{self!r}: JAX could not trace the function for arguments ({sig}) "
                f"(at {user_location_long(3)}): {type(e).__name__}: {e}"
            ) from e
        finally:
            _jax_tracing.reset(token)
        traced = _Traced(_without_dead_code(closed), jax.tree_util.tree_structure(out_shape))
        if key is not None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = traced
        return traced


def _without_dead_code(closed):
    """``closed`` without the equations no output depends on (an unused random split, the
    key of a dropout at rate 0, dead equations in a scan body), so that a primitive only
    they use neither blocks the conversion nor becomes a node. Every input stays."""
    jaxpr, _ = dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars), instantiate=True)
    return closed.replace(jaxpr=jaxpr)


def from_jax(fn, *, name: str | None = None) -> JaxFunction:
    """Make a JAX function callable from tracegraph code: inside tg.jit, tg.trace and
    tg.eager its jaxpr is converted as ordinary tracegraph IR (scope ``from_jax/<name>``),
    which tracegraph can print, optimize, differentiate and interpret; on plain arrays
    outside any trace the function just runs.

    Arguments:
      fn: any function JAX can trace (``jax.make_jaxpr``), with pytrees in and out.
        Array arguments (and tensors) are traced; other leaves (Python numbers, bools,
        strings) are static.
      name: the name in the node scopes (default: ``fn.__name__``).

    Raises `tg.TracingError` naming every JAX primitive the function uses that has no
    tracegraph mapping, before converting anything.

    Example::

        softplus = tg.from_jax(jax.nn.softplus)
        tg.trace(lambda x: softplus(x) * 2, tg.spec((3,)))
    """
    return JaxFunction(fn, name)


# -- checking ---------------------------------------------------------------------------


def _walk(jaxpr, depth=0):
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in jcore.jaxprs_in_params(eqn.params):
            yield from _walk(sub, depth)
        r = RULES.get(eqn.primitive)
        if r is not None and r.jaxprs is not None:  # converted besides the nested ones
            for closed in r.jaxprs(eqn, depth):
                yield from _walk(closed.jaxpr, depth + 1)


def missing_primitives(closed) -> list[tuple[str, str | None, int]]:
    """Every use of a primitive tracegraph cannot express, in the whole jaxpr (nested
    jaxprs included): ``(primitive name, reason or None, count)``. The reason is the
    rule's check for a use it cannot express, or the primitive's `NOT_YET_SUPPORTED`
    entry; None for a primitive in neither table."""
    counts: Counter = Counter()
    for eqn in _walk(closed.jaxpr):
        prim = eqn.primitive
        r = RULES.get(prim)
        if r is None:
            counts[(prim.name, NOT_YET_SUPPORTED.get(prim))] += 1
        elif r.check is not None:
            why = r.check(eqn)
            if why:
                counts[(prim.name, why)] += 1
    return [(name, why, n) for (name, why), n in sorted(counts.items(), key=lambda kv: kv[0][0])]


def _problem_report(fn, problems, where) -> str:
    lines = [f"{fn!r} at {where}: the function uses JAX primitives tracegraph cannot express:"]
    for name, why, n in problems:
        uses = f"{n} use" + ("s" if n > 1 else "")
        lines.append(f"  {name} ({uses})" + (f": {why}" if why else ": no tracegraph mapping"))
    lines.append(
        "Call the function outside tracegraph code, or rewrite those parts with tg.* ops "
        "(see docs/interop.md for the supported primitives)."
    )
    return "\n".join(lines)


# -- converting ---------------------------------------------------------------------------


@contextlib.contextmanager
def _scope(path: str):
    """Give the nodes converted inside exactly this scope (on whichever builder is current:
    control-flow bodies have builders of their own)."""
    b = getattr(current_trace(), "builder", None)
    if b is None:  # imperative tensors at the bottom of the stack
        with bottom_scope_as(path):
            yield
        return
    saved = b.scopes
    b.scopes = [path] if path else []
    try:
        yield
    finally:
        b.scopes = saved


def _name_stack(eqn) -> str:
    stack = str(eqn.source_info.name_stack)
    return stack.replace("/", ".") if stack else ""


def _literal(lit) -> Tensor:
    aval = lit.aval
    dt = np.dtype(aval.dtype)
    arr = np.asarray(lit.val, dtype=dt)
    # weak only where a Python scalar would give this dtype (what the executors expect)
    weak = aval.weak_type and arr.ndim == 0 and dt in (bool, default_int(), default_float())
    return current_trace().constant(arr, weak=weak)


class _Emitter:
    """Walks jaxprs, converting tracegraph ops for each equation through `RULES`."""

    def __init__(self, scope: str):
        self.scope = scope

    def run_closed(self, closed, args) -> list[Tensor]:
        return self.run(closed.jaxpr, closed.consts, args)

    def run(self, jaxpr, consts, args) -> list[Tensor]:
        b = current_trace()
        env: dict = {}

        def read(v):
            if isinstance(v, jcore.Literal):
                return _literal(v)
            return env[v]

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = b.lift(c)
        for v, a in zip(jaxpr.invars, args):
            env[v] = b.lift(a)
        outer = self.scope
        for eqn in _live_eqns(jaxpr):
            stack = _name_stack(eqn)
            self.scope = ".".join(s for s in (outer, stack) if s)
            try:
                with _scope(self.scope):
                    ins = [read(v) for v in eqn.invars]
                    outs = RULES[eqn.primitive].convert(self, eqn, *ins)
            finally:
                self.scope = outer
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            _check_types(eqn, outs)
            for v, t in zip(eqn.outvars, outs):
                env[v] = t
        return [read(v) for v in jaxpr.outvars]


def _live_eqns(jaxpr):
    """The equations whose results are used (JAX leaves dead ones in, e.g. optax's
    unused conversions); effectful ones always count."""
    used = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    live = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in used for v in eqn.outvars):
            live.append(eqn)
            used.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    live.reverse()
    return live


def _check_types(eqn, outs):
    if len(outs) != len(eqn.outvars):
        raise TracingError(
            f"internal error in tg.from_jax: the rule of {eqn.primitive.name} gave "
            f"{len(outs)} results for {len(eqn.outvars)}"
        )
    for v, t in zip(eqn.outvars, outs):
        aval = v.aval
        want = aval.dtype if is_key(aval.dtype) else np.dtype(jax.dtypes.canonicalize_dtype(aval.dtype))
        if tuple(t.shape) != tuple(aval.shape) or t.dtype != want:
            raise TracingError(
                f"internal error in tg.from_jax: the rule of {eqn.primitive.name} gave "
                f"{t.type} where JAX has {want.name}{list(aval.shape)}"
            )


# -- the other direction ------------------------------------------------------------------


def to_jax(graph: Graph):
    """A JAX function computing ``graph`` on arrays: the graph's argument pytrees in, its
    output pytree out. It composes with jax.jit, jax.grad, jax.vmap (every op is its JAX
    implementation).

    Example::

        g = tg.trace(f, x)
        jax.jit(tg.to_jax(g))(x)
    """
    flat_fn = as_jax_function(graph)

    def call(*args, **kwargs):
        flat = graph.flatten_args(args, kwargs)
        coerced = []
        for v, a in zip(graph.inputs, flat):
            t = v.type
            if tuple(np.shape(a)) != tuple(t.shape):
                raise Error(
                    f"to_jax({graph.name}): input %{v.name or '?'} expects {t}, got shape "
                    f"{list(np.shape(a))}"
                )
            coerced.append(a if t.weak else jnp.asarray(a, t.dtype))
        return graph.unflatten_outputs(list(flat_fn(*coerced)))

    call.__name__ = graph.name
    return call


__all__ = ["JaxFunction", "from_jax", "missing_primitives", "to_jax"]
