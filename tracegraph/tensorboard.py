"""``tg.tensorboard``: the IR graph, scalars and histograms for TensorBoard, written with
TensorBoard's own protobufs and event-file writer (the ``tensorboard`` package; install
it with ``pip install tensorboard`` or the ``tensorboard`` extra).

- `write_graph(graph_or_fn, log_dir, *args)`: the IR graph on TensorBoard's Graphs
  dashboard. Module scopes become TensorBoard's collapsible name scopes (``enc.0.attn``
  is ``enc/0/attn``), each node is named after its op and printed result
  (``enc/0/matmul_3`` for ``%3 = matmul``), edges carry the tensor shapes (``_output_shapes``), and each node
  lists its attributes, its output types and the user's ``file:line`` (``location``).
  Graph inputs are ``Placeholder`` nodes, constants ``Const`` nodes; a control-flow node's
  bodies are written as their own scopes under the node (``while_loop_4/body/...``).
- `SummaryWriter(log_dir)`: ``add_scalar``, ``add_histogram``, ``add_graph``, ``flush``,
  ``close`` — what the Keras-style `tg.callbacks.TensorBoard` writes through.

Example::

    tg.tensorboard.write_graph(step, "logs/run1", params, batch)
    # then: tensorboard --logdir logs
"""

from __future__ import annotations

import os
import time

import numpy as np

from .errors import Error, public
from .frontend.tracing import trace_function
from .ir.graph import Graph
from .ir.printer import Namer, format_attr
from .ir.types import is_key

__all__ = ["SummaryWriter", "TensorBoardError", "graph_def", "write_graph"]


class TensorBoardError(Error):
    """The ``tensorboard`` package is missing, or a value cannot be written."""


def _tb():
    try:
        from tensorboard.compat.proto import (  # noqa: PLC0415 - an optional dependency
            attr_value_pb2, event_pb2, graph_pb2, node_def_pb2, summary_pb2, tensor_shape_pb2,
            versions_pb2,
        )
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415
    except ImportError as e:
        raise TensorBoardError(
            f"tg.tensorboard needs the tensorboard package (pip install tensorboard): {e}"
        ) from None
    return (attr_value_pb2, event_pb2, graph_pb2, node_def_pb2, summary_pb2, tensor_shape_pb2,
            versions_pb2, EventFileWriter)


# -- the graph ---------------------------------------------------------------------------


def graph_def(graph: Graph):
    """TensorBoard's ``GraphDef`` of an IR graph (see the module docstring)."""
    attr_pb, _, graph_pb, node_pb, _, shape_pb, versions_pb, _ = _tb()
    out = graph_pb.GraphDef(versions=versions_pb.VersionDef(producer=1))
    _add_graph(out, graph, "", attr_pb, node_pb, shape_pb)
    return out


def _add_graph(out, graph, prefix, attr_pb, node_pb, shape_pb):
    namer = Namer(graph)
    names: dict[int, str] = {}

    def shapes(values):
        return attr_pb.AttrValue(list=attr_pb.AttrValue.ListValue(shape=[
            shape_pb.TensorShapeProto(dim=[shape_pb.TensorShapeProto.Dim(size=d) for d in v.type.shape])
            for v in values
        ]))

    def text(s):
        return attr_pb.AttrValue(s=str(s).encode())

    def add(name, op, inputs, outputs, attrs):
        node = out.node.add(name=name, op=op, input=inputs)
        node.attr["_output_shapes"].CopyFrom(shapes(outputs))
        node.attr["types"].CopyFrom(text(", ".join(str(v.type) for v in outputs)))
        for k, v in attrs.items():
            node.attr[k].CopyFrom(text(v))
        return node

    for v in graph.inputs:
        name = prefix + "inputs/" + namer(v)[1:]
        names[id(v)] = name
        add(name, "Placeholder", [], [v], {})
    for v in graph.constants:
        name = prefix + "constants/" + namer(v)[1:]
        names[id(v)] = name
        value = v.data if v.data.size <= 8 else f"<{v.data.size} elements>"
        add(name, "Const", [], [v], {"value": value})
    for node in graph.nodes:
        first = namer(node.outputs[0])[1:] if node.outputs else ""
        scope = "/".join(node.scope.split(".")) + "/" if node.scope else ""
        name = f"{prefix}{scope}{node.op}_{first}"
        attrs = {"location": node.location or "?"}
        bodies = []
        for k, a in node.attrs.items():
            if isinstance(a, Graph):
                bodies.append((k, a))
            elif isinstance(a, tuple) and a and all(isinstance(g, Graph) for g in a):
                bodies += [(f"{k}_{i}", g) for i, g in enumerate(a)]
            else:
                attrs[k] = format_attr(a)
        add(name, node.op, [names[id(v)] for v in node.inputs], node.outputs, attrs)
        for i, v in enumerate(node.outputs):
            names[id(v)] = name if i == 0 else f"{name}:{i}"
        for k, body in bodies:
            _add_graph(out, body, f"{name}/{k}/", attr_pb, node_pb, shape_pb)
    for i, v in enumerate(graph.outputs):
        add(f"{prefix}outputs/{i}", "Identity", [names[id(v)]], [v], {})


@public("tensorboard.write_graph")
def write_graph(fn, log_dir, *args, **kwargs) -> str:
    """Write the IR graph of ``fn`` (a `tg.Graph`, or a function traced on ``args``) to
    a new event file in ``log_dir`` for TensorBoard's Graphs dashboard; returns
    ``log_dir``."""
    graph = fn if isinstance(fn, Graph) else trace_function(fn, args, kwargs)
    with SummaryWriter(log_dir) as w:
        w.add_graph(graph)
    return os.fspath(log_dir)


# -- scalars and histograms ------------------------------------------------------------------


class SummaryWriter:
    """An event file in ``log_dir`` (created if needed), written with TensorBoard's own
    ``EventFileWriter``: ``add_scalar(tag, value, step)``, ``add_histogram(tag, values,
    step, bins=30)``, ``add_graph(graph)``, ``flush()``, ``close()``; a context manager.

    Example::

        with tg.tensorboard.SummaryWriter("logs/run1/train") as w:
            w.add_scalar("loss", 0.25, step=10)
    """

    def __init__(self, log_dir):
        tb = _tb()
        self._attr, self._event, _, _, self._summary, _, _, writer = tb
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        self._writer = writer(self.log_dir)

    def _add(self, step, **fields):
        event = self._event.Event(wall_time=time.time(), step=int(step or 0), **fields)
        self._writer.add_event(event)

    def add_scalar(self, tag: str, value, step: int | None = None) -> None:
        value = float(np.asarray(value))
        summary = self._summary.Summary(value=[self._summary.Summary.Value(tag=tag, simple_value=value)])
        self._add(step, summary=summary)

    def add_histogram(self, tag: str, values, step: int | None = None, bins: int = 30) -> None:
        if is_key(getattr(values, "dtype", None)):
            raise TensorBoardError(f"add_histogram({tag!r}): PRNG keys have no histogram")
        a = np.asarray(values, np.float64).ravel()
        a = a[np.isfinite(a)]
        if a.size == 0:
            lo = hi = 0.0
            counts, edges = np.zeros(1), np.array([0.0, 0.0])
        else:
            lo, hi = float(a.min()), float(a.max())
            counts, edges = np.histogram(a, bins=bins, range=(lo, hi if hi > lo else lo + 1))
        hist = self._summary.HistogramProto(
            min=lo, max=hi, num=float(a.size), sum=float(a.sum()),
            sum_squares=float(np.dot(a, a)), bucket_limit=[float(e) for e in edges[1:]],
            bucket=[float(c) for c in counts])
        summary = self._summary.Summary(value=[self._summary.Summary.Value(tag=tag, histo=hist)])
        self._add(step, summary=summary)

    def add_graph(self, graph: Graph) -> None:
        self._add(0, graph_def=graph_def(graph).SerializeToString())

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
