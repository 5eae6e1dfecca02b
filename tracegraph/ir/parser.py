"""Parser of the IR text form (placeholder: being written)."""

from ..errors import IRError


def parse_graph(text, graph_cls, constants=None):
    raise IRError("the IR parser is not written yet")
