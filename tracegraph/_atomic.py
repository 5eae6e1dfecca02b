"""Crash-safe file writes, shared by graph files (`tg.save`) and checkpoints.

The content goes to a temporary file ``.NAME.<8 random chars>.tmp`` in the target's
directory, which is flushed and fsync'ed and then renamed over the target with
`os.replace`; finally the directory is fsync'ed. A crash or kill at any moment leaves the
target as it was or complete: never half-written. A failed write removes its temporary
file; a killed one cannot, and `remove_stale_temps` (or ``remove_stale=True``) deletes
what killed writers left.

NOTE: a temp file is stale when its writer is dead, which its name and age cannot tell
(a live writer may stall for minutes between two writes). So the writer holds an
exclusive `flock` on its temp file until the rename, and the kernel drops that lock when
the process dies, however it dies: the cleaner deletes only files of the writer's own
name pattern, modified before the current save began, whose lock it can take. Where
there are no file locks (Windows) the name and age rules are all there is, but there an
open file cannot be deleted anyway.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# The token is 8 of [a-z0-9_]: what `_create_temp` makes (hex) and what earlier versions
# made with tempfile.mkstemp, so their leftovers are recognised too.
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")

_OPEN_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))


def write_atomically(path: str, write: Callable, *, remove_stale: bool = False) -> None:
    """Create or replace ``path`` with what ``write(binary_file)`` writes, atomically.

    With ``remove_stale``, temp files that killed writers left in the target's directory
    are deleted first (see `remove_stale_temps`). An error (an `OSError` from a full disk
    or a read-only folder, or whatever ``write`` raises) propagates unchanged, after the
    temp file is removed; the target is then untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if remove_stale:
        remove_stale_temps(directory, before=time.time())
    fd, tmp = _create_temp(directory, os.path.basename(path))
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename: "a live writer"
        with os.fdopen(fd, "wb", closefd=False) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # A new file is private (0600); keep an existing target's mode, else 0644.
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        if fcntl is None:  # Windows cannot rename an open file (and has no lock to keep)
            os.close(fd)
            fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
            fd = -1
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    _fsync_directory(directory)


def _create_temp(directory: str, base: str) -> tuple[int, str]:
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, _OPEN_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {base!r} in {directory}")


def remove_stale_temps(directory: str, *, before: float) -> list[str]:
    """Delete the temp files of killed writers in ``directory``; returns their names.

    Only regular files named like this module's temp files, last modified before
    ``before`` (a `time.time()`), and not locked by a live writer are deleted. Anything
    that cannot be checked or deleted is left alone: this never raises.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        if not TEMP_NAME.fullmatch(name):
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= before:
                continue
            if fcntl is None:
                os.unlink(full)
            else:
                fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_CLOEXEC", 0))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails: writer alive
                    if not os.path.samestat(os.fstat(fd), os.lstat(full)):
                        continue  # renamed or replaced since we looked
                    os.unlink(full)
                finally:
                    os.close(fd)
        except OSError:
            continue  # locked by its live writer, gone already, or not ours to delete
        removed.append(name)
    return removed


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable (POSIX); not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
