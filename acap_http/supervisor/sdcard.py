"""The SD card as dockerd's storage: where its area is, whether the card is
there and usable, and a watcher that hears the card come and go.

The kernel marks /proc/self/mountinfo for poll() whenever the mount table
changes, so the watcher sleeps in poll() and reads the table only then.
"""

from __future__ import annotations

import logging
import os
import pwd
import select
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from acap_http import mounts
from acap_http.mounts import Mount
from acap_http.status import Status

logger = logging.getLogger(__name__)

# dockerd needs Unix ownership and modes, which these filesystems do not keep.
UNSUITABLE_FILESYSTEMS = frozenset({"vfat", "msdos", "exfat"})
# Without the kernel's drivers the same cards are mounted through FUSE, which
# the mount table names by its driver: fusefat is vfat; a bare fuseblk is
# exfat-fuse (or ntfs-3g, no better for dockerd).
FUSE_NAMES = {"fusefat": "vfat", "fuseblk": "exfat or another FUSE filesystem"}
WAIT_FOR_CARD = 5.0  # seconds, as the original waits for a card being mounted


@dataclass(frozen=True)
class CardPlace:
    mount_point: Path  # where the card is mounted
    area: Path  # the application's directory on it

    @property
    def data_root(self) -> Path:
        return self.area / "data"


def present(place: CardPlace, table: Sequence[Mount]) -> bool:
    return any(mount.mount_point == place.mount_point for mount in table)


def holder(path: Path, table: Sequence[Mount]) -> Mount | None:
    """The mount a path lives on: the deepest mount point above it, the last one mounted there."""
    above = [mount for mount in table if mount.mount_point == path or mount.mount_point in path.parents]
    # max() keeps the first of equals; reversed, that is the one mounted last.
    return max(reversed(above), key=lambda mount: len(mount.mount_point.parts), default=None)


def filesystem(mount: Mount) -> str:
    """The filesystem a mount holds, seeing through FUSE's names (``fuse.exfat`` is exfat)."""
    kind = mount.fs_type
    for prefix in ("fuseblk.", "fuse."):
        if kind.startswith(prefix):
            kind = kind.removeprefix(prefix)
    return FUSE_NAMES.get(kind, kind)


def check(place: CardPlace, table: Sequence[Mount]) -> Status | None:
    """The Status that keeps dockerd off the card, or None when its data can go there."""
    if not present(place, table):
        logger.warning("No SD card mounted at %s", place.mount_point)
        return Status.NO_SD_CARD
    mount = holder(place.area, table)
    kind = filesystem(mount) if mount else ""
    if kind in UNSUITABLE_FILESYSTEMS or kind in FUSE_NAMES.values():
        logger.warning(
            "The SD card at %s is formatted %s, which keeps no Unix permissions; dockerd needs a filesystem that does "
            "(ext4, ext3, xfs): reformat the card",
            place.mount_point,
            kind,
        )
        return Status.SD_CARD_WRONG_FS
    return _check_writable(place.data_root)


def _check_writable(data: Path) -> Status | None:
    user = pwd.getpwuid(os.geteuid()).pw_name
    try:
        data.mkdir(parents=True, exist_ok=True)
        writable = os.access(data, os.W_OK | os.X_OK)
    except OSError as err:
        blocked, writable = Path(err.filename or data), False
    else:
        blocked = data
    if writable:
        return None
    where = _existing(blocked)
    info = where.stat()
    logger.error(
        "User %s cannot write dockerd's data directory %s: %s belongs to uid %d with mode %04o. "
        "Remove %s (it may be left by a rootful release), or give it to %s (chown -R %s %s), then change a setting",
        user,
        data,
        where,
        info.st_uid,
        stat.S_IMODE(info.st_mode),
        where,
        user,
        user,
        where,
    )
    return Status.SD_CARD_WRONG_PERMISSION


def _existing(path: Path) -> Path:
    """The nearest ancestor of ``path`` this user can see (an unsearchable one hides the rest)."""
    while path != path.parent:
        try:
            path.stat()
            return path
        except OSError:
            path = path.parent
    return path


class CardWatcher:
    """Follows the mount table and calls ``on_change(present)`` when the card comes or goes."""

    def __init__(self, place: CardPlace) -> None:
        self.place = place
        self._on_change: Callable[[bool], None] = lambda present: None
        self._changed = threading.Condition()
        self._present = present(place, mounts.read())
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="sd-card", daemon=True)

    @property
    def present(self) -> bool:
        with self._changed:
            return self._present

    def wait_present(self, timeout: float) -> bool:
        """True once the card is mounted; waits up to ``timeout`` seconds for it."""
        with self._changed:
            return self._changed.wait_for(lambda: self._present, timeout)

    def start(self, on_change: Callable[[bool], None]) -> None:
        self._on_change = on_change
        self._thread.start()

    def stop(self) -> None:
        os.write(self._wake_write, b"x")
        self._thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _watch(self) -> None:
        fd = os.open(mounts.MOUNTINFO, os.O_RDONLY)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            poller.register(self._wake_read, select.POLLIN)
            self._update(mounts.parse(self._read(fd)))  # arms the notification; catches a change since __init__
            while True:
                ready = {descriptor for descriptor, _ in poller.poll()}
                if self._wake_read in ready:
                    return
                self._update(mounts.parse(self._read(fd)))
        finally:
            os.close(fd)

    @staticmethod
    def _read(fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def _update(self, table: Sequence[Mount]) -> None:
        now = present(self.place, table)
        with self._changed:
            if now == self._present:
                return
            self._present = now
            self._changed.notify_all()
        logger.info("SD card %s %s", "mounted at" if now else "gone from", self.place.mount_point)
        self._on_change(now)
