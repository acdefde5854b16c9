"""Atomic file writes: a temporary file in the same folder, fsynced, then renamed over the target.

An interrupted write never leaves a half file. Used by the window cache, checkpoints, run folders,
exports and reports; it imports nothing heavier than the standard library.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from crosshar.errors import CrossharError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all. The file gets the mode an ordinary `open(path, "w")` would
    (0666 less the umask), not mkstemp's private 0600: an exported model copied to a board must be readable by
    the service that runs it. A write that fails (no space left, no permission) is a CrossharError naming `path`
    (one line from every command), and the file it would have replaced is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    except OSError as e:  # no permission, a file where a folder goes, a read-only file system
        raise CrossharError(f"{path}: cannot be written ({e.strerror or e})") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # the disk full (or a quota) halfway: the old file, if any, is untouched
            raise CrossharError(f"{path}: cannot be written ({e.strerror or e}); nothing was replaced") from None
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """`obj` as indented, key-sorted JSON (values JSON cannot hold are written as str)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


__all__ = ["atomic_write_bytes", "atomic_write_json"]
