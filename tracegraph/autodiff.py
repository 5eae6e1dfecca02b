"""Reverse-mode autodiff, the user's function transforms: `vjp`, `grad`, `value_and_grad`.

How it works (one mechanism for tg.jit, tg.eager and plain arrays; the machinery is
`core.autodiff`, and plain arrays get a define-by-run trace of their own):

1. The function is traced into a child graph whose inputs are the primals (closures over
   outer tensors become extra inputs, treated as constants, as in JAX).
2. That forward graph is inlined into the graph being built, unchanged (define-by-run
   reuses the values it already computed: nothing runs twice).
3. The pullback walks the forward nodes in reverse and calls each op's VJP rule — rules
   written in tracegraph ops — to build a *backward graph*: ordinary IR whose nodes carry
   the user line of the forward op they differentiate and the scope
   ``grad/<scope>/<op>``. Only nodes on a path from the requested inputs are visited, and
   nodes computing cotangents nobody asked for are skipped.
4. The backward graph is inlined too: inside tg.jit it is part of the one compiled graph;
   under tg.eager its nodes execute one by one as they are appended (PyTorch's model).

Because backward nodes are ordinary ops with VJP rules of their own, `grad(grad(f))`
differentiates the first backward graph like any other code.

Example::

    loss = lambda w, x: tg.sum(tg.tanh(x @ w) ** 2)
    print(tg.trace(tg.grad(loss), tg.spec((3, 2)), tg.spec((4, 3))))
"""

from __future__ import annotations

import contextlib
import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np

from .core import Linearized, Tensor, at_bottom, current_trace, function_name, using, vjp_graph
from .errors import Error, public, user_location_long
from .frontend.eager import EagerTrace
from .ir.types import is_inexact


def _is_tensor(x):
    return isinstance(x, Tensor)


# -- public API -------------------------------------------------------------------


def _unwrap(tree):
    """Tensors -> jax arrays (for results handed back outside any trace)."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x._trace.known_value(x)) if isinstance(x, Tensor) else x, tree,
        is_leaf=_is_tensor,
    )


@contextlib.contextmanager
def _recording_trace():
    """The trace to record into: the current one, or — called on plain arrays — a
    define-by-run trace of its own (then results are unwrapped to jax arrays)."""
    if not at_bottom():
        yield current_trace(), False
        return
    top = EagerTrace("autodiff")
    with using(top):
        yield top, True


@public("vjp")
def vjp(fn, *primals, has_aux: bool = False):
    """Reverse-mode: ``out, vjp_fn = tg.vjp(fn, *primals)``; ``vjp_fn(ct)`` returns a tuple
    of cotangents, one per primal (JAX's meaning). With ``has_aux=True`` returns
    ``(out, vjp_fn, aux)``.

    Example::

        out, pull = tg.vjp(lambda x: tg.sin(x) * 2, x)
        (dx,) = pull(tg.ones_like(out))
    """
    with _recording_trace() as (b, top):
        lin = Linearized(b, fn, primals, has_aux)
        out = lin.out_tree(lin.outputs)
        aux = lin.aux_tree() if has_aux else None

    @public("vjp")
    def vjp_fn(ct):
        grads = lin.pullback(ct)
        return _unwrap(grads) if top else grads

    if top:
        out, aux = _unwrap(out), _unwrap(aux)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def value_and_grad(fn, argnums=0, has_aux: bool = False):
    """``f(*args) -> (value, grad)`` (or ``((value, aux), grad)`` with ``has_aux``);
    ``argnums`` an int or a tuple of ints (then grad is a tuple), as in JAX."""
    return _value_and_grad(fn, argnums, has_aux, "value_and_grad")


def _value_and_grad(fn, argnums, has_aux, what):
    try:
        nums = (operator.index(argnums),) if not isinstance(argnums, (tuple, list)) else tuple(
            operator.index(i) for i in argnums)
    except TypeError:
        raise Error(f"{what}: argnums must be an int or a tuple of ints, got {argnums!r} "
                    f"(at {user_location_long(3)})") from None

    @public(what)
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        for i in nums:
            if not -len(args) <= i < len(args):
                raise Error(
                    f"{what}: argnums {argnums} out of range for {len(args)} positional arguments"
                )
        idx = [i % len(args) for i in nums]

        def partial(*dargs):
            full = list(args)
            for i, d in zip(idx, dargs):
                full[i] = d
            return fn(*full, **kwargs)

        partial.__name__ = function_name(fn)
        with _recording_trace() as (b, top):
            lin = Linearized(b, partial, [args[i] for i in idx], has_aux)
            if len(lin.outputs) != 1 or lin.outputs[0].shape != () or not is_inexact(lin.outputs[0].dtype):
                types = ", ".join(str(t.type) for t in lin.outputs)
                raise Error(
                    f"{what} of {function_name(fn)} needs a scalar float output, got ({types}); "
                    "use tg.vjp for non-scalar outputs"
                )
            value = lin.outputs[0]
            one = b.constant(np.ones((), value.dtype))
            grads = lin.pullback(lin.out_tree([one]))
            g = grads[0] if isinstance(argnums, int) else tuple(grads)
            result = ((value, lin.aux_tree()), g) if has_aux else (value, g)
            return _unwrap(result) if top else result

    return wrapped


def grad(fn, argnums=0, has_aux: bool = False):
    """The gradient of a scalar function, with JAX's meaning of ``argnums`` and
    ``has_aux``. Works inside tg.jit (one compiled graph), under tg.eager (backward runs
    op by op), on plain arrays, and composed (``tg.grad(tg.grad(f))``).

    Example::

        df = tg.grad(lambda x: tg.sum(tg.sin(x)))
        df(np.zeros(3))   # -> [1., 1., 1.]
    """
    vg = _value_and_grad(fn, argnums, has_aux, "grad")

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        res, g = vg(*args, **kwargs)
        return (g, res[1]) if has_aux else g

    return wrapped


__all__ = ["grad", "value_and_grad", "vjp", "vjp_graph"]
