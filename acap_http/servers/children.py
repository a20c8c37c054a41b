"""A child process a front runs (Apache, ``acap-http run``, an instance of ``up``): started,
waited for until it is ready, watched, and stopped with grace, all the same way.

It is a ``supervisor.runner.Process``, started by its ``Runner`` as dockerd's processes are, with
two differences a front wants: the child stays in the front's process group (a terminal's Ctrl-C
reaches it even when the front cannot pass it on), and the kernel does not signal it when the
front dies (the front stops it itself)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from acap_http.errors import SetupError
from acap_http.supervisor.command import Command
from acap_http.supervisor.runner import Exit, Process, Runner

POLL = 0.05  # how often readiness is asked while a child starts


class Child:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: tuple[int, int] | None = None,
        log: Path | None = None,
        runner: Runner | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._env = env  # None: ours, as it is when it starts
        self._argv, self._user, self._log = tuple(argv), user, log
        self._runner = runner or Runner()
        self._clock, self._sleep = clock, sleep
        self._process: Process | None = None
        self._lock = threading.Lock()  # between the waiter's report of the end and ``watch``
        self._ended: str | None = None
        self._watchers: list[Callable[[str], None]] = []

    @property
    def process(self) -> Process:
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._process

    def start(self, ready: Callable[[], bool], timeout: float = 15.0, what: str = "ready") -> None:
        """Start it and return once ``ready()`` holds; SetupError if it exits or the time is up first."""
        self.spawn()
        self.wait_ready(ready, timeout, what)

    def spawn(self) -> None:
        """Start it, without waiting (to start several at once, then ``wait_ready`` for each)."""
        command = Command(
            self._argv, dict(os.environ) if self._env is None else self._env,
            death_signal=None, own_group=False, user=self._user, log=self._log,
        )  # fmt: skip
        self._process = self._runner.start(command, self._exited, name=self.name, owns_tree=False)

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 15.0, what: str = "ready") -> None:
        process = self.process
        deadline = self._clock() + timeout
        while not ready():
            if process.exit is not None:
                raise SetupError(f"{_ended(self.name, process.exit)}; its messages are above")
            if self._clock() > deadline:
                self.stop()
                raise SetupError(f"{self.name} was not {what} in {timeout:.0f} s")
            self._sleep(POLL)

    def watch(self, post: Callable[[str], None]) -> None:
        """Post why, the moment it ends (at once, if it has)."""
        with self._lock:
            ended = self._ended
            if ended is None:
                self._watchers.append(post)
        if ended is not None:
            post(ended)

    def _exited(self, _process: Process, how: Exit) -> None:
        ended = _ended(self.name, how)
        with self._lock:
            self._ended = ended
            watchers = list(self._watchers)
        for post in watchers:
            post(ended)

    def terminate(self) -> None:
        """SIGTERM, without waiting (to stop several at once, then ``stop`` each)."""
        if self._process is not None and self._process.exit is None:
            self._process.terminate()

    def stop(self, grace: float = 30.0) -> Exit | None:
        """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds; how it ended."""
        process = self._process
        if process is None:
            return None
        if process.exit is None:
            return process.stop(grace)
        process.wait()
        return process.exit


def file_says(path: Path, text: str, offset: int = 0) -> Callable[[], bool]:
    """A readiness test: ``text`` appears in the file after ``offset``."""

    def check() -> bool:
        try:
            return text in path.read_text(errors="replace")[offset:]
        except OSError:
            return False

    return check


def _ended(name: str, how: Exit) -> str:
    """The words of the front's log for a child's end, as they always were."""
    return f"{name} exited with code {how.code}" if how.code is not None else f"{name} exited, {how}"
