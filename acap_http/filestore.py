"""Atomic, durable files in one directory (``localdata`` and the like).

A write goes to a temporary file in the same directory, is flushed to disk,
renamed over the old file and the directory is flushed too: a reader or a
crash sees the old file or the new one, never a partial or empty one. A set
of files is written as one across a crash too: the new files are flushed,
then a marker naming their renames, then the renames; ``recover`` at the
next start completes a set whose marker is there and discards one whose
marker is not.
Every operation goes through the directory's descriptor and never follows a
link (see ``safedir``): a link planted under a file's name is not read,
written through or handed to anyone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from acap_http.safedir import LinkRefused, SafeDir

logger = logging.getLogger(__name__)

PENDING_SET = ".set-pending"  # the marker of a set being renamed into place
TEMP_SUFFIX = ".tmp"

Step = Callable[[str], None]
"""Called at each step of a set write, by name: the seam where tests crash the process."""


class FileStore:
    """Files named by plain names (no directories) under ``directory``."""

    def __init__(self, directory: Path, directory_mode: int = 0o755, step: Step = lambda name: None) -> None:
        self.directory = directory
        self._directory_mode = directory_mode
        self._step = step
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

    def read_if_present(self, name: str) -> bytes | None:
        """The plain file's bytes, or None when there is none (a link is none), in one step: a
        file removed between a look and a read is simply not there."""
        _plain(name)
        try:
            with SafeDir.open(self.directory) as directory:
                return directory.read(name)
        except (FileNotFoundError, LinkRefused):
            return None

    def write(self, name: str, data: bytes, mode: int) -> None:
        """Replace ``name`` with ``data`` at ``mode`` (whatever the umask), atomically."""
        _plain(name)
        with self._writing, self._open() as directory:
            directory.write(name, data, mode)

    def chmod(self, name: str, mode: int) -> None:
        with self._writing, SafeDir.open(self.directory) as directory:
            directory.chmod(_plain(name), mode)

    def write_many(self, files: Mapping[str, tuple[bytes, int]]) -> None:
        """Replace several files as one, also across a crash (see ``recover``); if a rename fails,
        the files already replaced are put back."""
        for name in files:
            _plain(name)
        with self._writing, self._open() as directory:
            _write_many(directory, files, self._step)

    def update(self, files: Mapping[str, tuple[bytes, int]]) -> list[str]:
        """Write those of ``files`` whose content differs from what is stored, as one; returns
        their names. A file with the same content only gets its mode put right."""
        with self._writing, self._open() as directory:
            changed = {}
            for name, (data, mode) in files.items():
                if directory.is_file(_plain(name)) and directory.read(name) == data:
                    if stat.S_IMODE(directory.lstat(name).st_mode) != mode:
                        directory.chmod(name, mode)
                else:
                    changed[name] = (data, mode)
            if len(changed) == 1:
                ((name, (data, mode)),) = changed.items()
                directory.write(name, data, mode)
            elif changed:
                _write_many(directory, changed, self._step)
            return list(changed)

    def recover(self) -> str | None:
        """After a crash: complete the set whose marker was written, remove temporary files;
        says what it did, or None when there was nothing to do."""
        if not self.directory.is_dir():
            return None
        with self._writing, SafeDir.open(self.directory) as directory:
            done = None
            if directory.is_file(PENDING_SET):
                renames = _pending_renames(directory)
                for temp, name in renames:
                    if directory.is_file(temp):
                        directory.replace(temp, name)
                directory.unlink(PENDING_SET)
                done = f"completed the set of {', '.join(name for _, name in renames)} interrupted by a crash"
            leftovers = [name for name in directory.names() if name.startswith(".") and name.endswith(TEMP_SUFFIX)]
            for name in leftovers:
                directory.unlink(name)
            if leftovers and not done:
                done = f"removed {len(leftovers)} temporary files of writes interrupted by a crash"
            if done:
                directory.sync()
            return done

    def remove(self, name: str) -> None:
        """Remove the plain file ``name``; FileNotFoundError if there is none (a link is none)."""
        _plain(name)
        with self._writing, SafeDir.open(self.directory) as directory:
            if not directory.is_file(name):
                raise FileNotFoundError(2, "No such file", str(self.path(name)))
            directory.unlink(name)
            directory.sync()


def _write_many(directory: SafeDir, files: Mapping[str, tuple[bytes, int]], step: Step) -> None:
    temps: list[str] = []
    try:
        staged = {}
        for name, (data, mode) in files.items():
            staged[name] = directory.stage(name, data, mode)
            temps.append(staged[name])
            step(f"staged {name}")
        backups = {
            name: directory.stage(name, directory.read(name), stat.S_IMODE(directory.lstat(name).st_mode))
            for name in files
            if directory.is_file(name)
        }
        temps += backups.values()
        marker = json.dumps([[temp, name] for name, temp in staged.items()])
        directory.write(PENDING_SET, marker.encode(), 0o600)  # from here on, a crash completes the set
        step("marked")
    except BaseException:
        _unlink_all(directory, temps)
        raise
    replaced: list[str] = []
    try:
        for name, temp in staged.items():
            directory.replace(temp, name)
            replaced.append(name)
            step(f"renamed {name}")
    except BaseException:
        for name in replaced:
            if name in backups:
                directory.replace(backups[name], name)
            else:
                directory.unlink(name)
        raise
    finally:
        _unlink_all(directory, [*temps, PENDING_SET])
        directory.sync()
    step("done")


def _pending_renames(directory: SafeDir) -> list[tuple[str, str]]:
    """The renames a marker names; only temporary files of this store onto plain names."""
    try:
        document = json.loads(directory.read(PENDING_SET))
        renames = [(str(temp), str(name)) for temp, name in document]
    except (ValueError, TypeError):
        logger.error("The marker %s is unreadable; the set it marked is discarded", directory.path / PENDING_SET)
        return []
    return [
        (temp, _plain(name))
        for temp, name in renames
        if temp.startswith(f".{name}.") and temp.endswith(TEMP_SUFFIX) and "/" not in temp
    ]


def _plain(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _unlink_all(directory: SafeDir, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            directory.unlink(name)
