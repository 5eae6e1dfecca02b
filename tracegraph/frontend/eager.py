"""Define-by-run: `tg.eager(fn)` runs ``fn`` op by op on concrete values, PyTorch-style,
and records the graph it builds as it goes (``run.last_graph``, the same IR that
`tg.jit` compiles). Python control flow on tensor values works, because every value is
concrete; the recorded graph is the path that actually ran.

Example::

    def f(x):
        return x * 2 if float(x.sum()) > 0 else -x   # Python `if` on a value

    run = tg.eager(f)
    run(np.ones(3))
    print(run.last_graph)                             # the branch that ran
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from . import builder as _builder
from .tracing import _trace, function_name


class EagerFunction:
    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.last_graph = None

    def __call__(self, *args, **kwargs):
        if _builder._STACK:  # inside another trace or eager run: just run inline
            return self.fn(*args, **kwargs)
        graph, outs = _trace(self.fn, args, kwargs, eager=True, name=function_name(self.fn))
        self.last_graph = graph
        return graph.unflatten_outputs([jnp.asarray(t._data) for t in outs])


def eager(fn):
    """Run ``fn`` define-by-run; ``.last_graph`` is the graph the last call recorded."""
    return EagerFunction(fn)
