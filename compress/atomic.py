"""Files written whole or not at all: a temporary file in the same folder, fsync, then rename.

``os.replace`` is atomic on POSIX, so a reader (or a rerun after a kill, a full disk or a crash)
sees either the previous complete file or the new complete one, never a truncated one.  The previous
file is untouched until the new one is complete.  A write error (a full disk, a read-only folder) is
raised as ``WriteError`` (a ``compress.UserError``: one line naming the file), after the temporary
file is removed.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import UserError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "WriteError"]


class WriteError(UserError):
    """A file could not be written (the previous version, if any, is untouched)."""

    def __init__(self, path: Path, exc: OSError):
        super().__init__(f"cannot write {path}: {exc.strerror or exc}")
        self.path, self.errno = path, exc.errno


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the file open() would make
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise WriteError(path, exc) from exc
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` into memory first (a serialisation error writes nothing), then atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())
