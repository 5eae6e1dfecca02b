"""Graphviz DOT export (placeholder: being written)."""


def to_dot(graph):
    raise NotImplementedError
