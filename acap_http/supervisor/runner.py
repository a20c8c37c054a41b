"""Starting a command and stopping it: dockerd's processes, and the fronts' children
(``servers.children``), the one process wrapper of both.

A waiter thread blocks in waitpid on the one child it owns, so an exit is
noticed the moment it happens; nothing else reaps. ``terminate`` sends
SIGTERM (to the program itself when ``nsenter`` forked it into a PID
namespace, since nsenter passes no signal on), ``kill`` SIGKILLs the group
(each command leads one unless it asks to stay in ours; then the process
alone) and, for a process that asks for it, every descendant remembered,
including those that moved to sessions of their own. The caller keeps the
deadline between the two (``stop`` does both, blocking, for callers that may
block).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

import psutil

from acap_http.config import STOP_GRACE
from acap_http.supervisor.command import Command

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exit:
    code: int | None  # set when the process exited by itself
    signal: int | None  # set when a signal ended it (0: one we cannot name)

    @classmethod
    def from_returncode(cls, returncode: int) -> Exit:
        return cls(None, -returncode) if returncode < 0 else cls(returncode, None)

    @property
    def failed(self) -> bool:
        """dockerd reported an error: only an operator's change can help."""
        return self.code is not None and self.code > 0

    def __str__(self) -> str:
        if self.signal:
            try:
                return f"killed by {signal.Signals(self.signal).name}"
            except ValueError:
                return f"killed by signal {self.signal}"
        if self.signal is not None:
            return "killed by a signal"
        return f"exit code {self.code}"


class Process:
    """One started child and its waiter."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        on_exit: Callable[[Process, Exit], None],
        *,
        name: str = "process",
        forks: bool = False,
        owns_tree: bool = True,
        own_group: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._popen = popen
        self._clock = clock
        self.pid = popen.pid
        self.name = name
        self._forks = forks  # the program is the child of the started one (nsenter -p)
        self._own_group = own_group  # it leads a process group of its own (else it is in ours)
        self._owns_tree = owns_tree  # what it starts dies with it (not so containerd's shims)
        self._exited = threading.Event()
        self.exit: Exit | None = None
        self._on_exit = on_exit
        self._tree_lock = threading.Lock()
        self._tree: frozenset[ProcessId] = frozenset()
        threading.Thread(target=self._wait, name=f"wait-{self.pid}", daemon=True).start()

    def __repr__(self) -> str:
        return f"{self.name} (pid {self.program_pid})"

    def _wait(self) -> None:
        self.exit = Exit.from_returncode(self._popen.wait())
        try:
            # Children that moved to sessions of their own outlive a killed parent: they go too.
            if self._owns_tree:
                _kill_and_wait(self.tree(), clock=self._clock)
        finally:
            self._exited.set()
            self._on_exit(self, self.exit)

    def remember_descendants(self) -> None:
        """Note the processes the child has started by now, to stop them with it even if it dies first."""
        if not self._owns_tree:
            return
        found = descendants(self.pid)
        with self._tree_lock:
            self._tree = self._tree | found

    def tree(self) -> frozenset[ProcessId]:
        with self._tree_lock:
            return self._tree

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the process has exited; waits up to ``timeout`` seconds."""
        return self._exited.wait(timeout)

    @property
    def program_pid(self) -> int:
        """The pid of the program itself: nsenter's child when nsenter forked it, else the child."""
        if self._forks:
            try:
                children = psutil.Process(self.pid).children()
            except psutil.Error:
                children = []
            if children:
                return int(children[0].pid)
        return self.pid

    def signal(self, signum: int) -> None:
        """``signum`` to the program itself (not nsenter, which passes nothing on)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.program_pid, signum)

    def terminate(self) -> None:
        """SIGTERM to the program; it stops as it sees fit."""
        self.remember_descendants()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.program_pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to its group (to itself alone when it is in ours) and every remembered descendant."""
        self.remember_descendants()
        _kill(self.tree())
        with contextlib.suppress(ProcessLookupError):
            if self._own_group:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)

    def stop(self, grace: float = STOP_GRACE) -> Exit:
        """SIGTERM, and SIGKILL at the deadline; blocks until it has ended and returns how."""
        self.terminate()
        if not self._exited.wait(grace):
            logger.warning("%r still running %.1f s after SIGTERM; sending SIGKILL", self, grace)
            self.kill()
            self.wait_after_kill()
        assert self.exit is not None
        return self.exit

    def wait_after_kill(self) -> None:
        # SIGKILL cannot be refused, but a process in uninterruptible I/O (a pulled
        # card) dies only when the I/O ends: wait for that, and say so meanwhile.
        while not self._exited.wait(STOP_GRACE):
            logger.error("%r still there after SIGKILL; waiting for it to die", self)


class Runner:
    """The OS seam for starting processes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def start(
        self, command: Command, on_exit: Callable[[Process, Exit], None], *, name: str = "", owns_tree: bool = True
    ) -> Process:
        uid, gid = command.user or (None, None)
        with _log(command) as output:
            popen = subprocess.Popen(
                [*_death_signal(command), *command.argv],
                env=dict(command.env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=command.own_group,
                user=uid,
                group=gid,
                extra_groups=[] if command.user else None,
            )
        return Process(
            popen, on_exit, name=name or command.argv[0], forks=command.forks, owns_tree=owns_tree,
            own_group=command.own_group, clock=self._clock,
        )  # fmt: skip


def _death_signal(command: Command) -> list[str]:
    """setpriv (util-linux) asks the kernel to signal the child should this process die without
    stopping it (SIGKILL, a crash): it then stops instead of living on orphaned."""
    return ["setpriv", "--pdeathsig", command.death_signal, "--"] if command.death_signal else []


def _log(command: Command) -> contextlib.AbstractContextManager[IO[bytes] | None]:
    """The command's log, open for appending while it starts (the child keeps its own copy)."""
    return command.log.open("ab") if command.log else contextlib.nullcontext()


ProcessId = tuple[int, float]  # pid and start time, so a reused pid is never mistaken


def descendants(pid: int) -> set[ProcessId]:
    """Every live descendant of ``pid``."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return set()
    found = set()
    for child in children:
        try:
            found.add((child.pid, child.create_time()))
        except psutil.Error:
            continue  # gone meanwhile
    return found


def _alive(entry: ProcessId) -> bool:
    try:
        process = psutil.Process(entry[0])
        return bool(process.create_time() == entry[1] and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _kill(entries: Iterable[ProcessId]) -> None:
    for pid, started in entries:
        if _alive((pid, started)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _kill_and_wait(
    entries: frozenset[ProcessId], timeout: float = 5.0, clock: Callable[[], float] = time.monotonic
) -> None:
    """SIGKILL ``entries`` and wait (a while) until they are gone; they are not our children, so look."""
    _kill(entries)
    deadline = clock() + timeout
    while any(_alive(entry) for entry in entries) and clock() < deadline:
        time.sleep(0.01)
