"""A directory held open by its descriptor, and file operations relative to it
that never follow a symbolic link.

Code that runs as root works in directories another user can write (the app
directory belongs to the app's user, whom any docker client controls when
dockerd runs rootless). A path there can be swapped for a link between a
check and its use, so nothing here goes by path twice: the directory is
opened once with O_NOFOLLOW, and every name inside it is opened, renamed,
changed or removed relative to that descriptor, again with O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from types import TracebackType

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a file's name must not hang the reader.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(OSError):
    """A path that should be a directory or a plain file is a link (or something else)."""

    def __init__(self, path: Path | str, what: str) -> None:
        super().__init__(errno.ELOOP, f"{path} {what}; refusing to follow or use it")
        self.path = str(path)
        self.what = what

    def __str__(self) -> str:
        return f"{self.path} {self.what}; refusing to follow or use it"


def describe_link(path: Path | str, dir_fd: int | None = None) -> str:
    """'is a symbolic link to X' (the target escaped), or what else is in the way."""
    try:
        target = os.readlink(path, dir_fd=dir_fd)
    except OSError:
        return "is not a directory"
    return f"is a symbolic link to {target!r}"


class SafeDir:
    """An open directory; use as a context manager, or ``close`` it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: Path, create_mode: int | None = None) -> SafeDir:
        """Open ``path`` (its last component must not be a link); create it first with ``create_mode``."""
        if create_mode is not None:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, create_mode)
        return cls(_open_directory(path, None, path), path)

    def subdir(self, name: str, create_mode: int | None = None) -> SafeDir:
        """The directory ``name`` in this one, created when missing with ``create_mode``."""
        if create_mode is not None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, create_mode, dir_fd=self.fd)
        return SafeDir(_open_directory(name, self.fd, self.path / name), self.path / name)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- looking --------------------------------------------------------------------------------

    def lstat(self, name: str) -> os.stat_result:
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def is_file(self, name: str) -> bool:
        """Whether ``name`` is a plain file here (a link to one is not)."""
        try:
            return stat.S_ISREG(self.lstat(name).st_mode)
        except FileNotFoundError:
            return False

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    # --- files ----------------------------------------------------------------------------------

    def open_file(self, name: str) -> int:
        """A read-only descriptor of the plain file ``name``; LinkRefused for anything else."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise LinkRefused(self.path / name, describe_link(name, self.fd)) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LinkRefused(self.path / name, "is not a plain file")
        return fd

    def read(self, name: str) -> bytes:
        fd = self.open_file(name)
        try:
            os.set_blocking(fd, True)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def stage(self, name: str, data: bytes, mode: int) -> str:
        """A new, flushed file holding ``data`` at ``mode`` beside ``name``; returns its name."""
        temp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, _CREATE_FLAGS, 0o600, dir_fd=self.fd)
        try:
            os.fchmod(fd, mode)  # exact, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.unlink_quietly(temp)
            raise
        os.close(fd)
        return temp

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target`` (a link named ``target`` is replaced, never followed)."""
        os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def write(self, name: str, data: bytes, mode: int) -> None:
        """Replace ``name`` with ``data`` atomically and durably."""
        temp = self.stage(name, data, mode)
        try:
            self.replace(temp, name)
        except BaseException:
            self.unlink_quietly(temp)
            raise
        self.sync()

    def chmod(self, name: str, mode: int) -> None:
        fd = self.open_file(name)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def unlink(self, name: str) -> None:
        os.unlink(name, dir_fd=self.fd)

    def unlink_quietly(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def sync(self) -> None:
        """Flush the directory: a rename or unlink is durable only once its entry is on disk."""
        os.fsync(self.fd)


def _open_directory(path: Path | str, dir_fd: int | None, shown: Path) -> int:
    try:
        return os.open(path, _DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkRefused(shown, describe_link(path, dir_fd)) from None
        raise
