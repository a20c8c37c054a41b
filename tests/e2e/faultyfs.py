"""A FUSE layer over a directory that can be told to fail every write with EIO, as a failing
flash card does: ``python -m tests.e2e.faultyfs BACKING MOUNTPOINT SWITCH``.

Everything passes through to BACKING (a full or read-only BACKING says so itself: ENOSPC,
EROFS); while the file SWITCH holds ``eio``, every call that would change something fails
with EIO instead, and reads still work. Files and directories a caller makes are its own, as
on a real filesystem (the layer runs as root). Runs until unmounted.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from mfusepy import FUSE, FuseOSError, Operations, fuse_get_context

_STAT_FIELDS = (
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks", "st_rdev",
)  # fmt: skip


class Faulty(Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: Path, switch: Path) -> None:
        self._backing, self._switch = backing, switch

    def _path(self, path: str) -> str:
        return str(self._backing / path.lstrip("/"))

    def _changing(self) -> None:
        """A call that changes something: EIO while the switch says so."""
        try:
            failing = self._switch.read_text().strip() == "eio"
        except FileNotFoundError:
            failing = False
        if failing:
            raise FuseOSError(errno.EIO)

    def _own(self, path: str) -> None:
        uid, gid, _ = fuse_get_context()
        os.lchown(path, uid, gid)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._path(path))
        found = {name: getattr(st, name) for name in _STAT_FIELDS}
        for name in ("st_atime", "st_mtime", "st_ctime"):
            found[name] = found.pop(f"{name}_ns")
        return found

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def readlink(self, path: str) -> str:
        return os.readlink(self._path(path))

    def statfs(self, path: str) -> dict[str, int]:
        found = os.statvfs(self._path(path))
        names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
                 "f_flag", "f_namemax")  # fmt: skip
        return {name: getattr(found, name) for name in names}

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
            self._changing()
        return os.open(self._path(path), flags & ~os.O_CREAT)

    def create(self, path: str, mode: int, flags: int) -> int:
        self._changing()
        full = self._path(path)
        fd = os.open(full, flags | os.O_CREAT, mode)
        self._own(full)
        return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self._changing()
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self._changing()
        if fh is None:
            os.truncate(self._path(path), length)
        else:
            os.ftruncate(fh, length)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self._changing()
        os.fsync(fh)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self._changing()
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self._changing()
        full = self._path(path)
        os.mkdir(full, mode)
        self._own(full)
        return 0

    def rmdir(self, path: str) -> int:
        self._changing()
        os.rmdir(self._path(path))
        return 0

    def unlink(self, path: str) -> int:
        self._changing()
        os.unlink(self._path(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        self._changing()
        os.rename(self._path(old), self._path(new))
        return 0

    def symlink(self, target: str, source: str) -> int:
        self._changing()
        full = self._path(target)
        os.symlink(source, full)
        self._own(full)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self._changing()
        os.chmod(self._path(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self._changing()
        os.lchown(self._path(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._changing()
        if times is None:
            os.utime(self._path(path), follow_symlinks=False)
        else:
            os.utime(self._path(path), ns=times, follow_symlinks=False)
        return 0


def main(argv: list[str]) -> None:
    backing, mount_point, switch = (Path(arg) for arg in argv)
    # allow_other: the app's unprivileged user works in it; default_permissions: the kernel checks
    # modes and owners as on any filesystem.
    FUSE(Faulty(backing, switch), str(mount_point), foreground=True, allow_other=True, default_permissions=True)


if __name__ == "__main__":
    main(sys.argv[1:])
