"""`tg.custom_vjp`: a function with its own reverse-mode rule, with JAX's API
(``jax.custom_vjp``): ``f.defvjp(fwd, bwd)``, ``fwd(*args) -> (out, residuals)``,
``bwd(residuals, out_cotangent) -> one cotangent per argument``, ``nondiff_argnums``.

A call traces ``f``, ``fwd`` and ``bwd`` into three closed graphs held by one
``custom_vjp`` node (`tracegraph.ops.custom_vjp`): the node computes ``f``, and its VJP
rule inlines ``fwd`` and ``bwd``, so every way of differentiating (tg.grad in tg.jit,
tg.trace, tg.eager and on plain arrays; ``.backward()``; tg.GradientTape) uses the
custom rule, and the backward graph shows its ops. Tensors the three functions use from
outside become extra operands of the node and get no cotangent (a custom rule
differentiates only the explicit arguments, as in JAX). On plain arrays outside any
trace (nothing to differentiate) ``f`` simply runs.

Example::

    @tg.custom_vjp
    def clip_gradient(x):
        return x

    def fwd(x):
        return x, None                       # no residuals

    def bwd(_, g):
        return (tg.clip(g, -1.0, 1.0),)      # one cotangent per argument

    clip_gradient.defvjp(fwd, bwd)
    tg.grad(lambda x: tg.sum(clip_gradient(x) * 10.0))(np.ones(3))   # [1., 1., 1.]

NOTE: JAX traces ``fwd`` and ``bwd`` only when a call is differentiated; here the node
needs all three graphs when it is made (they are IR, printed and saved with it), so
``fwd`` and ``bwd`` are traced at every call (in define-by-run too: on abstract values,
as in tg.jit) and a mistake in them is reported at the call, differentiated or not. A
call of ``f`` inside its own ``fwd`` or ``bwd`` (``fwd`` commonly computes ``f(x)``) is
the plain primal: a node there would need the graphs being traced. So a second-order
gradient through a residual computed by ``f`` differentiates ``f``'s primal.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import operator
import threading

import jax
import numpy as np

from .._caches import cache
from ..core import Tensor, at_bottom, bind, current_trace
from ..core.execute import attrs_key
from ..errors import Error, ShapeError, TracingError, user_location_long
from ..ir.types import is_inexact
from .control_flow import _Body, _close
from .tape import TAPE
from .tracing import function_name


def _is_tensor(x):
    return isinstance(x, Tensor)


def _flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_tensor)


def _is_array_like(x) -> bool:
    return isinstance(x, (Tensor, bool, int, float, complex)) or hasattr(x, "dtype")


class custom_vjp:
    """Give ``fun`` a custom VJP rule (`jax.custom_vjp`'s API; see the module doc).

    Arguments:
      fun: the primal function: array pytrees in, an array pytree out.
      nondiff_argnums: positions of arguments that are not differentiated (functions,
        flags, static numbers); ``bwd`` receives them first, before the residuals.
      nondiff_argnames: the same, by parameter name.

    Example::

        @functools.partial(tg.custom_vjp, nondiff_argnums=(0,))
        def scale(k, x):
            return x * k

        scale.defvjp(lambda k, x: (x * k, None), lambda k, _, g: (g * k * 2,))
    """

    def __init__(self, fun, nondiff_argnums=(), nondiff_argnames=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        nums = {operator.index(i) for i in nondiff_argnums}
        if nondiff_argnames:
            params = list(inspect.signature(fun).parameters)
            for n in nondiff_argnames:
                if n not in params:
                    raise Error(f"custom_vjp: {function_name(fun)} has no parameter {n!r} (nondiff_argnames)")
                nums.add(params.index(n))
        self.nondiff_argnums = tuple(sorted(nums))
        self.fwd = None
        self.bwd = None

    def defvjp(self, fwd, bwd) -> None:
        """Set the rule: ``fwd`` takes ``fun``'s arguments and returns ``(out,
        residuals)`` (any pytree of arrays); ``bwd(*nondiff_args, residuals, ct)``
        returns a tuple with one cotangent per differentiable argument, shaped like it
        (None: zero)."""
        self.fwd, self.bwd = fwd, bwd

    def __repr__(self):
        return f"tg.custom_vjp({function_name(self.fun)})"

    def __call__(self, *args, **kwargs):
        name = function_name(self.fun)
        if self.fwd is None or self.bwd is None:
            raise TracingError(
                f"custom_vjp function {name} has no VJP rule: define it with "
                f"{name}.defvjp(fwd, bwd) (at {user_location_long(1)})"
            )
        args = _positional(self.fun, args, kwargs, name)
        for i in self.nondiff_argnums:
            if not -len(args) <= i < len(args):
                raise TracingError(
                    f"custom_vjp {name}: nondiff_argnums {self.nondiff_argnums} out of range "
                    f"for {len(args)} arguments (at {user_location_long(1)})"
                )
        if id(self) in _IN_RULE.get():
            return self.fun(*args)  # called by its own fwd or bwd: the primal (module NOTE)
        if at_bottom():
            if not any(_is_tensor(x) and x._trace.free for x in _flatten(args)[0]):
                return self.fun(*args)  # plain arrays: nothing can differentiate this call
            return _Call(self, name, TAPE, args).outputs  # imperative tensors: the tape records
        return _Call(self, name, current_trace(), args).outputs


# the custom_vjp functions whose fwd or bwd is being traced (in this thread/task)
_IN_RULE: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "tracegraph_custom_vjp_rules", default=frozenset()
)


def _positional(fun, args, kwargs, name) -> tuple:
    """``(args, kwargs)`` as positional arguments, defaults filled in (JAX's
    ``resolve_kwargs``: the rule functions take the arguments by position)."""
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except TypeError as e:
        raise TracingError(f"custom_vjp {name}: {e} (at {user_location_long(2)})") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TracingError(
            f"custom_vjp {name}: keyword-only arguments {sorted(bound.kwargs)} cannot be "
            f"passed by position to the rule (at {user_location_long(2)})"
        )
    return tuple(bound.args)


class _Call:
    """One call of a custom_vjp function under ``trace``: the three functions traced
    into graphs, then the node bound. ``outputs`` is the result pytree."""

    def __init__(self, f: custom_vjp, name: str, trace, args):
        self.f, self.name = f, name
        nondiff = set(i % len(args) for i in f.nondiff_argnums)
        self.static = [args[i] for i in sorted(nondiff)]
        self.positions = [i for i in range(len(args)) if i not in nondiff]
        self.num_args = len(args)
        leaves, self.in_treedef = _flatten(tuple(args[i] for i in self.positions))
        ins = [trace.lift(x) for x in leaves]
        self.in_types = [t.type for t in ins]

        primal = _Body(lambda *xs: f.fun(*self._args(xs)), self.in_types, trace, name)
        self.out_treedef, out_types = primal.out_treedef, primal.out_types
        token = _IN_RULE.set(_IN_RULE.get() | {id(f)})
        try:
            fwd = _Body(self._fwd, self.in_types, trace, "fwd")
            n = len(out_types)
            if _strong(fwd.out_types[:n]) != _strong(out_types):  # weak typing may differ
                raise ShapeError(
                    f"custom_vjp {name}: fwd rule {function_name(f.fwd)} returns primal outputs of "
                    f"types {_types_str(fwd.out_types[:n])}, {name} returns "
                    f"{_types_str(out_types)} (at {user_location_long(1)})"
                )
            cts = [t.with_(weak=False) for t in out_types]
            bwd = _Body(self._bwd, fwd.out_types[n:] + cts, trace, "bwd")
        finally:
            _IN_RULE.reset(token)
        graphs, consts = _close([primal, fwd, bwd])
        gf, gw, gb = _interned(graphs)
        outs = bind("custom_vjp", *ins, *consts, fn=gf, fwd=gw, bwd=gb)
        self.outputs = jax.tree_util.tree_unflatten(self.out_treedef, list(outs))

    def _args(self, xs) -> list:
        """The full argument list from the tensors of the differentiable leaves."""
        dyn = iter(jax.tree_util.tree_unflatten(self.in_treedef, list(xs)))
        static = iter(self.static)
        return [next(dyn) if i in self.positions else next(static) for i in range(self.num_args)]

    def _fwd(self, *xs):
        f, name = self.f, self.name
        res = f.fwd(*self._args(xs))
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TracingError(
                f"custom_vjp {name}: fwd rule {function_name(f.fwd)} must return a pair (output, "
                f"residuals), got a {type(res).__name__} (at {user_location_long(1)})"
            )
        out, residuals = res
        out_leaves, out_treedef = _flatten(out)
        if out_treedef != self.out_treedef:
            raise TracingError(
                f"custom_vjp {name}: fwd rule {function_name(f.fwd)} returns an output of "
                f"structure {out_treedef}, {name} returns {self.out_treedef} (at "
                f"{user_location_long(1)})"
            )
        paths, self.res_treedef = jax.tree_util.tree_flatten_with_path(residuals, is_leaf=_is_tensor)
        for path, r in paths:
            if not _is_array_like(r):
                raise TracingError(
                    f"custom_vjp {name}: residual{jax.tree_util.keystr(path)} of fwd rule "
                    f"{function_name(f.fwd)} is a {type(r).__name__}; residuals are arrays "
                    f"(pass other values through nondiff_argnums) (at {user_location_long(1)})"
                )
        return (*out_leaves, *[r for _, r in paths])

    def _bwd(self, *xs):
        f, name = self.f, self.name
        nr = self.res_treedef.num_leaves
        res = jax.tree_util.tree_unflatten(self.res_treedef, list(xs[:nr]))
        ct = jax.tree_util.tree_unflatten(self.out_treedef, list(xs[nr:]))
        got = f.bwd(*self.static, res, ct)
        return self._cotangents(got)

    def _cotangents(self, got) -> list:
        """``bwd``'s result as one strong cotangent per float leaf of the arguments,
        checked as JAX checks it: a tuple with one entry per argument, each shaped like
        it or None (zeros); a float cotangent of another width is converted; what the
        rule says for integer, bool and key leaves is ignored."""
        f, name = self.f, self.name
        n_dyn = len(self.positions)
        if isinstance(got, list) and len(got) == n_dyn:
            got = tuple(got)
        dummy = jax.tree_util.tree_unflatten(self.in_treedef, [object()] * self.in_treedef.num_leaves)
        flat: list = []

        def append(c, d):
            k = len(jax.tree_util.tree_leaves(d))
            flat.extend([c] * k)

        try:
            if not isinstance(got, tuple):
                raise ValueError
            jax.tree_util.tree_map(append, got, dummy, is_leaf=lambda x: x is None or _is_tensor(x))
        except ValueError:
            what = (f"a tuple of {len(got)}" if isinstance(got, tuple) else f"a {type(got).__name__}")
            raise TracingError(
                f"custom_vjp {name}: bwd rule {function_name(f.bwd)} must return a tuple of "
                f"{n_dyn} cotangent(s), one per differentiable argument, shaped like "
                f"{self.in_treedef}; it returned {what} (at {user_location_long(1)})"
            ) from None
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(dummy)[0]]
        out = []
        for c, t, path in zip(flat, self.in_types, paths):
            want = t.with_(weak=False)
            if not is_inexact(t.dtype):
                continue
            if c is None:
                out.append(bind("full", shape=t.shape, value=0, dtype=t.dtype))
                continue
            c = current_trace().lift(c)
            if tuple(c.shape) != tuple(t.shape):
                raise ShapeError(
                    f"custom_vjp {name}: bwd rule {function_name(f.bwd)} returns a cotangent of "
                    f"type {c.type} at output{path} for an argument of type {want} (at "
                    f"{user_location_long(1)})"
                )
            out.append(c if c.type == want else bind("astype", c, dtype=t.dtype))
        return out


def _strong(types) -> list:
    return [t.with_(weak=False) for t in types]


def _types_str(types) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"


# -- reusing graphs ---------------------------------------------------------------------------

# NOTE: each call traces the three functions again (a closure may read other values now),
# but a call that makes the same graphs as an earlier one gets that call's Graph objects:
# define-by-run then reuses the compiled implementation of the node (compiled per
# attribute values, so per Graph object) instead of compiling it on every call.
_INTERNED: dict = cache({})
_INTERNED_MAX = 256
_INTERN_LOCK = threading.Lock()


def _interned(graphs) -> list:
    try:
        key = tuple(_graph_key(g) for g in graphs)
        hash(key)
    except TypeError:  # an unhashable attribute, a constant that is a JAX tracer
        return graphs
    with _INTERN_LOCK:
        hit = _INTERNED.get(key)
        if hit is not None:
            return hit
        if len(_INTERNED) >= _INTERNED_MAX:
            _INTERNED.pop(next(iter(_INTERNED)))
        _INTERNED[key] = graphs
    return graphs


def _graph_key(graph) -> tuple:
    """Everything a graph prints and computes: its name, input names and types,
    constants (by value), and each node's op, attributes, wiring, output types, line
    and scope."""
    values = list(graph.values())
    index = {id(v): i for i, v in enumerate(values)}
    consts = []
    for v in graph.constants:
        if isinstance(v.data, jax.core.Tracer):
            raise TypeError("a traced constant")
        a = np.asarray(v.data)
        consts.append((v.type, a.tobytes()))
    nodes = tuple(
        (n.op, attrs_key(n.attrs), tuple(index[id(v)] for v in n.inputs), tuple(v.type for v in n.outputs),
         n.location, n.scope)
        for n in graph.nodes
    )
    return (graph.name, tuple((v.name, v.type) for v in graph.inputs), tuple(consts), nodes,
            tuple(index[id(v)] for v in graph.outputs), jax.config.jax_enable_x64)


__all__ = ["custom_vjp"]
