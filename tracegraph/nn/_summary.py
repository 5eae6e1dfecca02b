"""`summary`: a model's modules with their parameter counts and the number of IR nodes
each one makes, read from the traced graph's scopes."""

from __future__ import annotations

import math

import numpy as np

from ..frontend.tracing import trace_function
from ._module import Module


def _count_scopes(graph, counts, outer=""):
    for node in graph.nodes:
        s = node.scope or outer
        counts[s] = counts.get(s, 0) + 1
        for v in node.attrs.values():
            for g in v if isinstance(v, tuple) else (v,):
                if hasattr(g, "nodes") and hasattr(g, "inputs"):
                    _count_scopes(g, counts, s)


def _walk(module, path, depth):
    yield path, module, depth
    for sub in module.children():
        yield from _walk(sub, f"{path}.{sub.scope_name}" if path else sub.scope_name, depth + 1)


def _under(path, prefix):
    return not prefix or path == prefix or path.startswith(prefix + ".")


class Summary(str):
    """The table `summary` returns: a ``str`` whose ``repr`` is the table itself, so an
    interactive session shows it once, as it would be printed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def summary(model: Module, *args, print_fn=None, **kwargs) -> Summary:
    """Trace ``model(*args, **kwargs)`` and tabulate, for the model and each sub-module
    (by scope path): its class, the IR nodes recorded under its scope (nested modules
    included; nodes inside loop bodies count once), and its parameter count. Returns the
    table (a `Summary`: a ``str`` an interactive session shows as the table); prints it
    with ``print_fn`` only when one is given (``print_fn=print``), so it is never shown
    twice.

    Example::

        print(tg.nn.summary(model, tg.spec((32, 1, 28, 28))))
    """

    def forward(model, *args, **kwargs):
        return model(*args, **kwargs)

    graph = trace_function(forward, (model, *args), kwargs)
    counts: dict[str, int] = {}
    _count_scopes(graph, counts)
    params = [(path, math.prod(np.shape(x))) for path, x in model.named_parameters()]
    rows = [("module", "type", "nodes", "params")]
    for path, module, depth in _walk(model, "", 0):
        nodes = sum(n for s, n in counts.items() if _under(s, path))
        n_params = sum(n for p, n in params if _under(p, path))
        label = "  " * depth + (path or "(root)")
        rows.append((label, type(module).__name__, f"{nodes:,}", f"{n_params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                   r[2].rjust(widths[2]), r[3].rjust(widths[3])])
        for r in rows
    ]
    total = model.num_parameters()
    nbytes = sum(np.dtype(x.dtype).itemsize * math.prod(np.shape(x)) for x in model.parameters())
    lines.insert(1, "-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    lines.append(f"{len(graph.nodes)} top-level nodes, {sum(counts.values())} in all; "
                 f"{total:,} parameters ({nbytes / 1024:,.1f} KiB)")
    text = Summary("\n".join(lines))
    if print_fn is not None:
        print_fn(text)
    return text
