"""The error types of tracegraph. Every error a user can get derives from `Error`.

Errors raised while tracing name the op and the user's ``file:line`` (the first stack
frame outside the tracegraph package), so a failure points at the user's code rather
than at a deep JAX traceback. Public functions are wrapped with `public`, which names
the function the user called (``layer_norm``, ``grad``, ``graph``) in the message and
turns a raw Python error of the call (``tg.reshape(x, (2.0, 3))``) into a `tg.Error`.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types

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


# file name -> its basename, or None for tracegraph's own files (every op asks)
_USER_FILES: dict[str, str | None] = {}


def _user_basename(filename: str) -> str | None:
    name = _USER_FILES.get(filename, 0)
    if name == 0:
        name = None if filename.startswith(_PACKAGE_DIR) else os.path.basename(filename)
        if len(_USER_FILES) < 1 << 14:
            _USER_FILES[filename] = name
    return name


def user_frame(depth: int = 1):
    """The innermost stack frame outside the tracegraph package (or None)."""
    frame = sys._getframe(depth)
    while frame is not None:
        if _user_basename(frame.f_code.co_filename) is not None:
            return frame
        frame = frame.f_back
    return None


def user_location(depth: int = 1) -> str | None:
    """``basename:line`` of the first frame outside tracegraph, as nodes record it."""
    frame = sys._getframe(depth + 1)
    files = _USER_FILES
    while frame is not None:  # every op asks: the cache read inline, no call per frame
        filename = frame.f_code.co_filename
        name = files.get(filename, 0)
        if name == 0:
            name = _user_basename(filename)
        if name is not None:
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def user_location_long(depth: int = 1) -> str:
    """``path:line (in function)`` of the first frame outside tracegraph and the libraries
    it runs through (JAX's tracing, optax, numpy, Python's own modules), for messages."""
    frame = user_frame(depth + 1)
    while frame is not None and _is_library_frame(frame):
        frame = frame.f_back
    if frame is None:
        return "<unknown location>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name})"


# -- naming the user-facing op ----------------------------------------------------------

# Raw Python errors raised by library code (a float where a dimension goes, a zero slice
# step ...) are the user's mistake when no user code ran below the public call.
_RAW_MISTAKES = (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError)
_LOCATION = re.compile(r":\d+ \(in ")


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    dirs = [_PACKAGE_DIR, os.path.dirname(os.__file__) + os.sep]
    for mod in ("jax", "jaxlib", "numpy", "optax", "ml_dtypes"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(m.__file__)) + os.sep)
    return tuple(dirs)


def _only_library_below(tb) -> bool:
    """Whether every frame of ``tb`` after the first (the public function's wrapper) is
    library code: then the error is about the call itself, not about user code it ran."""
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        if not _is_library_frame(tb.tb_frame):
            return False
        tb = tb.tb_next
    return True


_LIBRARY_MODULES = ("tracegraph", "jax", "jaxlib", "numpy", "optax", "ml_dtypes", "dataclasses", "functools")


def _is_library_frame(frame) -> bool:
    name = frame.f_code.co_filename
    if name.startswith(_library_dirs()):
        return True
    # code made by exec (a dataclass's __init__, "<frozen ...>" importlib): its module
    module = frame.f_globals.get("__name__") or ""
    return name.startswith("<") and (name.startswith("<frozen") or module.split(".")[0] in _LIBRARY_MODULES)


def locate(e: BaseException, op: str, caller, kind: type | None = None) -> BaseException | None:
    """The error to raise for ``e`` escaping the public function ``op`` called from frame
    ``caller``: when the caller is user code and the error comes from the call itself,
    the message names ``op`` and the caller's ``file:line``; raw Python errors become
    ``kind`` (default `ShapeError`). Returns None to re-raise ``e`` unchanged."""
    # the user's frame: outward through library frames; an enclosing public function
    # (another wrapper on the way) is the user-facing one instead
    while caller is not None and _is_library_frame(caller):
        if caller.f_code in _WRAPPER_CODES:
            return None
        caller = caller.f_back
    if caller is None:
        return None
    if getattr(e, "_tg_located", False) or not _only_library_below(e.__traceback__):
        return None
    where = f"{caller.f_code.co_filename}:{caller.f_lineno} (in {caller.f_code.co_name})"
    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
        return None  # the system refused (a full disk ...): not a mistake in the call
    if isinstance(e, Error):
        custom = type(e).__str__ not in (Exception.__str__, BaseException.__str__)
        if custom:  # a message kept apart from args (an OSError subclass)
            if not isinstance(getattr(e, "message", None), str):
                return None
            msg = e.message
        elif e.args and isinstance(e.args[0], str):
            msg = e.args[0]
        else:
            return None
        if not re.search(rf"(?<![\w.]){re.escape(op)}\b", msg):
            msg = f"{op}: {msg}"
        if not _LOCATION.search(msg):
            msg = f"{msg} (at {where})"
        if custom:
            e.message = msg
        else:
            e.args = (msg,) + e.args[1:]
        e._tg_located = True
        return e
    if isinstance(e, _RAW_MISTAKES):
        text = str(e.args[0]) if len(e.args) == 1 and isinstance(e, KeyError) else str(e)
        new = _mistake_class(kind or ShapeError, type(e))(f"{op}: {text} (at {where})")
        new._tg_located = True
        return new
    return None


_MISTAKE_CLASSES: dict = {}


def _mistake_class(kind: type, raw: type) -> type:
    """``kind`` (a tg.Error class) that is also the raw error's class (``except
    TypeError`` in existing user code keeps working)."""
    base = next(c for c in _RAW_MISTAKES if issubclass(raw, c))
    cls = _MISTAKE_CLASSES.get((kind, base))
    if cls is None:
        cls = type(kind.__name__, (kind, base), {"__module__": __name__, "__str__": Exception.__str__})
        _MISTAKE_CLASSES[kind, base] = cls
    return cls


def public(op: str | None = None, kind: type | None = None):
    """Decorator for a public function: a mistake in the call raises a `tg.Error` naming
    ``op`` (default: the function's name) and the user's ``file:line``; raw Python errors
    become ``kind`` (default `ShapeError`). Only the public function the user called
    acts (``layer_norm``, not the ``multiply`` inside it), and only on errors of the call
    itself, never on those of user code it runs (a control-flow body, a loss function).
    Costs one frame per call; the work happens only when an error escapes."""

    def deco(fn):
        name = op or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                new = locate(e, name, sys._getframe(1), kind)
                if new is None or new is e:
                    raise
                raise new from None

        wrapper._tg_public = name
        return wrapper

    return deco


# the code of every public wrapper: `public`'s, and that of functions that do its work
# themselves (`mark_public`)
_WRAPPER_CODES = {public()(lambda: None).__code__}
_SELF_PUBLIC_CODES: set = set()


def mark_public(fn, name: str):
    """Mark ``fn`` as a public function that does `public`'s work itself, for the hot
    paths where a second frame would cost (``tg.sin``: its body calls the op and, on an
    exception, raises what `locate` gives for ``name``)."""
    fn._tg_public = name
    _WRAPPER_CODES.add(fn.__code__)
    _SELF_PUBLIC_CODES.add(fn.__code__)
    return fn


def public_functions(namespace: dict, exclude=(), renames: dict | None = None, kind=None) -> None:
    """Wrap with `public` every public function defined in a module's ``namespace``
    (modules call this at their end, before anything imports their names)."""
    renames = renames or {}
    module = namespace.get("__name__")
    for n, f in list(namespace.items()):
        if n.startswith("_") or n in exclude or not isinstance(f, types.FunctionType):
            continue
        if f.__module__ == module and f.__code__ in _SELF_PUBLIC_CODES:  # its own wrapper
            f._tg_public = renames.get(n, n)
            continue
        if f.__module__ != module or hasattr(f, "_tg_public"):
            continue
        namespace[n] = public(renames.get(n, n), kind)(f)
