"""Crash-safe file writes, shared by graph files (`tg.save`) and checkpoints.

The content goes to a temporary file in the target's directory, which is flushed and
fsync'ed and then renamed over the target with `os.replace`; finally the directory is
fsync'ed. A crash or kill at any moment leaves the target as it was or complete: never
half-written. A failed write removes its temporary file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable


def write_atomically(path: str, write: Callable) -> None:
    """Create or replace ``path`` with what ``write(binary_file)`` writes, atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); keep an existing target's mode, else 0644.
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


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
