"""Atomic, durable files in one directory (``localdata`` and the like).

A write goes to a temporary file in the same directory, is flushed to disk,
renamed over the old file and the directory is flushed too: a reader or a
crash sees the old file or the new one, never a partial or empty one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path


class FileStore:
    """Files named by plain names (no directories) under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Writers take turns, so that a set written as one is never interleaved with another write.
        self._writing = threading.RLock()

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
        with self._writing:
            self._write(name, data, mode)

    def _write(self, name: str, data: bytes, mode: int) -> None:
        target = self.path(name)
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        temp_name = self._stage(name, data, mode)
        try:
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        self._sync_directory()

    def write_many(self, files: dict[str, tuple[bytes, int]]) -> None:
        """Replace several files as one: every new file is written and flushed before any is
        renamed into place, and if a rename fails the files already replaced are put back. (A crash
        between two renames can still leave a mix: the renames are atomic one by one only.)"""
        with self._writing:
            self._write_many(files)

    def _write_many(self, files: dict[str, tuple[bytes, int]]) -> None:
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        temps: list[str] = []
        try:
            staged = {name: self._stage(name, data, mode) for name, (data, mode) in files.items()}
            temps += staged.values()
            backups = {
                name: self._stage(name, self.read(name), os.stat(self.path(name)).st_mode & 0o7777)
                for name in files
                if self.exists(name)
            }
            temps += backups.values()
        except BaseException:
            _unlink_all(temps)
            raise
        replaced: list[str] = []
        try:
            for name, temp in staged.items():
                os.replace(temp, self.path(name))
                replaced.append(name)
        except BaseException:
            for name in replaced:
                if name in backups:
                    os.replace(backups[name], self.path(name))
                else:
                    os.unlink(self.path(name))
            raise
        finally:
            _unlink_all(temps)
            self._sync_directory()

    def _stage(self, name: str, data: bytes, mode: int) -> str:
        """A flushed temporary file holding ``data`` at ``mode``, beside ``name``."""
        self.path(name)
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as temp:
                os.fchmod(temp.fileno(), mode)
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
        except BaseException:
            os.unlink(temp_name)
            raise
        return temp_name

    def remove(self, name: str) -> None:
        """Remove ``name``; FileNotFoundError if it is not there."""
        with self._writing:
            os.unlink(self.path(name))
        self._sync_directory()

    def _sync_directory(self) -> None:
        # The rename or unlink is durable only once the directory entry is on disk.
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
