"""Atomic, durable files in one directory (``localdata`` and the like).

A write goes to a temporary file in the same directory, is flushed to disk,
renamed over the old file and the directory is flushed too: a reader or a
crash sees the old file or the new one, never a partial or empty one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class FileStore:
    """Files named by plain names (no directories) under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise ValueError(f"not a plain file name: {name!r}")
        return self.directory / name

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def write(self, name: str, data: bytes, mode: int) -> None:
        """Replace ``name`` with ``data`` at ``mode`` (whatever the umask), atomically."""
        target = self.path(name)
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as temp:
                os.fchmod(temp.fileno(), mode)
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        self._sync_directory()

    def remove(self, name: str) -> None:
        """Remove ``name``; FileNotFoundError if it is not there."""
        os.unlink(self.path(name))
        self._sync_directory()

    def _sync_directory(self) -> None:
        # The rename or unlink is durable only once the directory entry is on disk.
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
