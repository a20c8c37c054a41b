"""Atomic, durable files in one directory (``localdata`` and the like).

A write goes to a temporary file in the same directory, is flushed to disk,
renamed over the old file and the directory is flushed too: a reader or a
crash sees the old file or the new one, never a partial or empty one.
Every operation goes through the directory's descriptor and never follows a
link (see ``safedir``): a link planted under a file's name is not read,
written through or handed to anyone.
"""

from __future__ import annotations

import contextlib
import stat
import threading
from pathlib import Path

from acap_http.safedir import SafeDir


class FileStore:
    """Files named by plain names (no directories) under ``directory``."""

    def __init__(self, directory: Path, directory_mode: int = 0o755) -> None:
        self.directory = directory
        self._directory_mode = directory_mode
        # Writers take turns, so that a set written as one is never interleaved with another write.
        self._writing = threading.RLock()

    def path(self, name: str) -> Path:
        return self.directory / _plain(name)

    def _open(self) -> SafeDir:
        return SafeDir.open(self.directory, create_mode=self._directory_mode)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a plain file here; a link or anything else is not one."""
        _plain(name)
        try:
            with SafeDir.open(self.directory) as directory:
                return directory.is_file(name)
        except FileNotFoundError:
            return False

    def mode(self, name: str) -> int:
        with SafeDir.open(self.directory) as directory:
            return stat.S_IMODE(directory.lstat(_plain(name)).st_mode)

    def read(self, name: str) -> bytes:
        with SafeDir.open(self.directory) as directory:
            return directory.read(_plain(name))

    def write(self, name: str, data: bytes, mode: int) -> None:
        """Replace ``name`` with ``data`` at ``mode`` (whatever the umask), atomically."""
        _plain(name)
        with self._writing, self._open() as directory:
            directory.write(name, data, mode)

    def chmod(self, name: str, mode: int) -> None:
        with self._writing, SafeDir.open(self.directory) as directory:
            directory.chmod(_plain(name), mode)

    def write_many(self, files: dict[str, tuple[bytes, int]]) -> None:
        """Replace several files as one: every new file is written and flushed before any is
        renamed into place, and if a rename fails the files already replaced are put back. (A crash
        between two renames can still leave a mix: the renames are atomic one by one only.)"""
        for name in files:
            _plain(name)
        with self._writing, self._open() as directory:
            _write_many(directory, files)

    def remove(self, name: str) -> None:
        """Remove the plain file ``name``; FileNotFoundError if there is none (a link is none)."""
        _plain(name)
        with self._writing, SafeDir.open(self.directory) as directory:
            if not directory.is_file(name):
                raise FileNotFoundError(2, "No such file", str(self.path(name)))
            directory.unlink(name)
            directory.sync()


def _write_many(directory: SafeDir, files: dict[str, tuple[bytes, int]]) -> None:
    temps: list[str] = []
    try:
        staged = {name: directory.stage(name, data, mode) for name, (data, mode) in files.items()}
        temps += staged.values()
        backups = {
            name: directory.stage(name, directory.read(name), stat.S_IMODE(directory.lstat(name).st_mode))
            for name in files
            if directory.is_file(name)
        }
        temps += backups.values()
    except BaseException:
        _unlink_all(directory, temps)
        raise
    replaced: list[str] = []
    try:
        for name, temp in staged.items():
            directory.replace(temp, name)
            replaced.append(name)
    except BaseException:
        for name in replaced:
            if name in backups:
                directory.replace(backups[name], name)
            else:
                directory.unlink(name)
        raise
    finally:
        _unlink_all(directory, temps)
        directory.sync()


def _plain(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _unlink_all(directory: SafeDir, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            directory.unlink(name)
