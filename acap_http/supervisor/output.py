"""The containers' output, held back at their shims while a restart stops dockerd.

What a container prints goes from its shim, through a FIFO, into dockerd, which copies it
through buffers of its own into the container's log. With live-restore a stopping dockerd
leaves the containers running and exits without writing those buffers out: a line it had
read and not yet logged is lost. A container printing lines without pause lost some at
most restarts. So before a restart stops dockerd, its shims are stopped (SIGSTOP): the
containers run on, and what they print waits in the pipe to the shim. dockerd is left to
log all it has taken (every FIFO it reads empty, the logs unchanged for a moment), and is
stopped only then. The shims go on (SIGCONT) as soon as dockerd has exited; what they
write meanwhile waits in the FIFO for the next dockerd.

A shim is containerd's, not the container's: stopping it is invisible inside the container
(no job control sees it), except that a container printing more than a pipe holds in that
moment waits for it, as it waits for a slow dockerd. Should the application die while the
shims are stopped, the namespace holder dies with it, and the shims with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import psutil

logger = logging.getLogger(__name__)

SHIM = "containerd-shim"  # containerd-shim-runc-v2 and its kind
SETTLED = 0.02  # every FIFO empty and the logs unchanged this long: dockerd has logged what it took
LIMIT = 2.0  # dockerd stops after this even if it is still logging (a backlog it cannot catch up)
POLL = 0.005
# Where dockerd's json-file and local log drivers write a container's log, under <data-root>/containers/<id>/.
LOG_FILES = ("{id}-json.log", "local-logs/container.log")


class Hold(Protocol):
    def hold(self) -> bool: ...
    def release(self) -> None: ...


class OutputHold:
    """One restart's hold: ``hold`` (may block up to LIMIT), then ``release`` once dockerd is gone.

    ``release`` may come first (dockerd died meanwhile); the hold then stops nothing."""

    def __init__(
        self,
        holder_pid: int,
        data_root: Path | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        find_shims: Callable[[int], list[psutil.Process]] | None = None,
    ) -> None:
        self._holder_pid = holder_pid
        self._find_shims = find_shims or _shims
        self._data_root = data_root
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._held: list[psutil.Process] = []
        self._released = False

    def hold(self) -> bool:
        """Stop the shims, then wait until dockerd has logged all it took from them; whether it
        had by the limit (nothing to hold counts as done)."""
        with self._lock:
            if self._released:
                return True
            self._held = _suspended(self._find_shims(self._holder_pid))
            shims = list(self._held)
        if not shims:
            return True
        with contextlib.ExitStack() as stack:
            fifos = [stack.enter_context(_reader(path)) for shim in shims for path in _fifos(shim)]
            return self._settle([fd for fd in fifos if fd is not None])

    def _settle(self, fifos: list[int]) -> bool:
        deadline = self._clock() + LIMIT
        quiet_since: float | None = None
        previous = None
        while True:
            sizes = _log_sizes(self._data_root)
            busy = sizes != previous or any(_pending(fd) for fd in fifos)
            previous, now = sizes, self._clock()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= SETTLED:
                return True
            if now >= deadline:
                return False
            self._sleep(POLL)

    def release(self) -> None:
        """The shims go on; later holds of this object stop nothing."""
        with self._lock:
            self._released = True
            held, self._held = self._held, []
        for shim in held:
            with contextlib.suppress(psutil.Error):
                shim.resume()


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _shims(holder_pid: int) -> list[psutil.Process]:
    """containerd's shims in the holder's PID namespace: ours, not another dockerd's on the host."""
    namespace = _pid_namespace(holder_pid) if holder_pid else None
    if namespace is None:
        return []
    found = []
    for process in psutil.process_iter(["name"]):
        if (
            (process.info["name"] or "").startswith(SHIM)
            and _pid_namespace(process.pid) == namespace
            and _runs_the_installed_shim(process.pid)
        ):
            found.append(process)
    return found


def _runs_the_installed_shim(pid: int) -> bool:
    """Whether the process runs the host's shim program itself, not a look-alike: a container that
    shares the holder's PID namespace (--pid=host) may name a process of its own after a shim, and
    its descriptors are then no FIFOs of ours to open."""
    try:
        name = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        running = os.stat(f"/proc/{pid}/exe")  # the program's file, in whatever mount namespace
    except OSError:
        return False
    installed = shutil.which(name)
    if installed is None:
        return False
    try:
        program = os.stat(installed)
    except OSError:
        return False
    return (running.st_dev, running.st_ino) == (program.st_dev, program.st_ino)


def _suspended(shims: list[psutil.Process]) -> list[psutil.Process]:
    stopped = []
    for shim in shims:
        with contextlib.suppress(psutil.Error):
            shim.suspend()  # psutil checks it is still the process found (not a reused pid)
            stopped.append(shim)
    return stopped


def _fifos(shim: psutil.Process) -> list[str]:
    """The named FIFOs the shim writes the containers' output to (dockerd reads their other end),
    as paths through the shim's descriptors: they open the same FIFO in any mount namespace."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{shim.pid}/fd"):
            with contextlib.suppress(OSError):
                if not os.readlink(entry.path).startswith("pipe:") and stat.S_ISFIFO(os.stat(entry.path).st_mode):
                    found.append(entry.path)
    return found


@contextlib.contextmanager
def _reader(path: str) -> Iterator[int | None]:
    """A read end of the FIFO, never read: only asked how much waits in it. None if it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _pending(fd: int) -> int:
    """Bytes waiting in the FIFO (FIONREAD)."""
    try:
        answer = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])


def _log_sizes(data_root: Path | None) -> tuple[tuple[str, int], ...]:
    """The size of each container's log, as dockerd's json-file and local drivers write them."""
    if data_root is None:
        return ()
    sizes = []
    with contextlib.suppress(OSError):
        for container in os.scandir(data_root / "containers"):
            for pattern in LOG_FILES:
                path = os.path.join(container.path, pattern.format(id=container.name))
                with contextlib.suppress(OSError):
                    sizes.append((path, os.stat(path, follow_symlinks=False).st_size))
    return tuple(sorted(sizes))
