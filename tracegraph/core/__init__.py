"""Layer 2: the trace machinery between the IR and the op library (see README.md here).

`Trace` (the policy of one way of running code), the per-thread trace stack, `bind`
(the one interception point of every op), the thin `Tensor`, the evaluation trace at the
bottom of the stack, the graph-recording trace, THE evaluation loop `eval_graph`, and
reverse mode over them (`Linearized`, `vjp_graph`).
"""

from .autodiff import Linearized, function_name, grad_scope, provenance, vjp_graph
from .evaluate import Program, eval_graph, evaluate_named, live_nodes, node_scope, program_of
from .execute import check_outputs, run_compiled, run_impl, weak_of, weak_value
from .graph_trace import GraphBuilder, GraphTrace, call_graph, trace_graph
from .tensor import Tensor
from .trace import (
    EVAL, EvalTrace, Trace, at_bottom, bind, check_and_infer, current_trace, is_python_scalar,
    python_scalar_dtype, scope, type_of, using,
)

__all__ = [
    "EVAL", "EvalTrace", "GraphBuilder", "GraphTrace", "Linearized", "Program", "Tensor", "Trace",
    "at_bottom", "bind", "call_graph", "check_and_infer", "check_outputs", "current_trace",
    "eval_graph", "evaluate_named", "function_name", "live_nodes", "grad_scope", "node_scope", "is_python_scalar", "program_of", "provenance",
    "python_scalar_dtype", "run_compiled", "run_impl", "scope", "trace_graph", "type_of", "using", "vjp_graph",
    "weak_of", "weak_value",
]
