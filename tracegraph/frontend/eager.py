"""Define-by-run: `tg.eager(fn)` runs ``fn`` op by op on concrete values, PyTorch-style,
and records the graph it builds as it goes (``run.last_graph``, the same IR that
`tg.jit` compiles). Python control flow on tensor values works, because every value is
concrete; the recorded graph is the path that actually ran.

`EagerTrace` is the policy: a `GraphTrace` (every op becomes a node) that also runs each
op's implementation at once. The arrays live only on the Tensors user code holds, so an
activation is freed when the program drops its last reference, as in PyTorch.

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
from jax._src.array import ArrayImpl as _ArrayImpl  # a concrete JAX array: used as is

from ..core import GraphTrace, Tensor, at_bottom, run_compiled
from ..errors import TracingError
from .tracing import function_name, trace_with


class EagerTrace(GraphTrace):
    """Records like `GraphTrace` and computes every value as it goes. ``keep_values``:
    also remember each value's array (``self.values``, by id of its IR Value), for a
    caller that needs them after the program dropped its Tensors (autodiff)."""

    verify_graphs = False  # each node was type-checked when made and its outputs when run

    def __init__(self, name: str = "eager", parent=None, keep_values: bool = False):
        super().__init__(name, parent)
        self.values: dict | None = {} if keep_values else None

    def child(self, name: str, keep_values: bool = False) -> "EagerTrace":
        return EagerTrace(name, parent=self, keep_values=keep_values)

    def box(self, v, data=None) -> Tensor:
        if self.values is not None:
            self.values[id(v)] = data
        return Tensor(v, self, data)

    def new_input(self, type, name=None, data=None) -> Tensor:
        # weak values (Python scalars) stay weak; a JAX array of the type is used as is
        if data is not None and not type.weak and not (data.__class__ is _ArrayImpl and data.dtype == type.dtype):
            data = jnp.asarray(data, dtype=type.dtype)
        return self.box(self.builder.add_input(type, name), data)

    def lift_tracer(self, x):
        raise TracingError(
            "a JAX tracer reached a define-by-run tg.eager function; call tg.eager code "
            "outside jax transformations, or use tg.jit / tg.from_jax"
        )

    def outputs_of(self, op, node, operands) -> list:
        datas = run_compiled(op, node, [t._data for t in operands])
        return [self.box(v, d) for v, d in zip(node.outputs, datas)]

    def to_bool(self, t) -> bool:
        return bool(t._data)

    def concrete(self, t, what: str):
        return t._data

    def known_value(self, x):
        return x._data if isinstance(x, Tensor) else x


class EagerFunction:
    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.last_graph = None

    def __call__(self, *args, **kwargs):
        if not at_bottom():  # inside another trace or eager run: just run inline
            return self.fn(*args, **kwargs)
        graph, outs = trace_with(EagerTrace(function_name(self.fn)), self.fn, args, kwargs)
        self.last_graph = graph
        return graph.unflatten_outputs([jnp.asarray(t._data) for t in outs])


def eager(fn):
    """Run ``fn`` define-by-run; ``.last_graph`` is the graph the last call recorded."""
    return EagerFunction(fn)
