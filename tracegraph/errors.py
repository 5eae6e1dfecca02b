"""The error types of tracegraph. Every error a user can get derives from `Error`.

Errors raised while tracing name the op and the user's ``file:line`` (the first stack
frame outside the tracegraph package), so a failure points at the user's code rather
than at a deep JAX traceback.
"""

from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Error(Exception):
    """Base class of every tracegraph error."""


class TracingError(Error):
    """A traced value was used in a way that needs a concrete value (Python ``if``,
    ``int()``, ``len()``), or tracing otherwise cannot go on."""


class ShapeError(Error):
    """Operand shapes or dtypes do not fit an op, found at trace time."""


class IRError(Error):
    """Malformed or unsafe IR: on parse, load, or verification."""


def user_frame(depth: int = 1):
    """The innermost stack frame outside the tracegraph package (or None)."""
    frame = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR):
            return frame
        frame = frame.f_back
    return None


def user_location(depth: int = 1) -> str | None:
    """``basename:line`` of the first frame outside tracegraph, as nodes record it."""
    frame = user_frame(depth + 1)
    if frame is None:
        return None
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def user_location_long(depth: int = 1) -> str:
    """``path:line (in function)`` of the first frame outside tracegraph, for messages."""
    frame = user_frame(depth + 1)
    if frame is None:
        return "<unknown location>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name})"
