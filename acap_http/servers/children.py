"""A child process a front runs (Apache, ``acap-http run``, an instance of ``up``): started,
waited for until it is ready, watched, and stopped with grace, all the same way."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from acap_http.errors import SetupError

logger = logging.getLogger(__name__)


class Child:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: tuple[int, int] | None = None,
        output: IO[bytes] | None = None,
    ) -> None:
        self.name = name
        self._argv, self._env, self._user, self._output = list(argv), env, user, output
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, ready: Callable[[], bool], timeout: float = 15.0, what: str = "ready") -> None:
        """Start it and return once ``ready()`` holds; SetupError if it exits or the time is up first."""
        self.spawn()
        self.wait_ready(ready, timeout, what)

    def spawn(self) -> None:
        """Start it, without waiting (to start several at once, then ``wait_ready`` for each)."""
        uid, gid = self._user or (None, None)
        self._process = subprocess.Popen(
            self._argv, env=self._env, stdout=self._output, stderr=subprocess.STDOUT if self._output else None,
            user=uid, group=gid, extra_groups=[] if self._user else None,
        )  # fmt: skip

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 15.0, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while not ready():
            if self._process.poll() is not None:
                raise SetupError(f"{self.name} exited with code {self._process.returncode}; its messages are above")
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"{self.name} was not {what} in {timeout:.0f} s")
            time.sleep(0.05)

    def watch(self, post: Callable[[str], None]) -> None:
        """Post why, the moment it ends."""
        process = self.process

        def wait() -> None:
            post(f"{self.name} exited with code {process.wait()}")

        threading.Thread(target=wait, name=f"watch-{self.name}", daemon=True).start()

    def terminate(self) -> None:
        """SIGTERM, without waiting (to stop several at once, then ``stop`` each)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds; its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                logger.error("%s did not stop in %.0f s; killing it", self.name, grace)
                process.kill()
                process.wait()
        return process.returncode


def file_says(path: Path, text: str, offset: int = 0) -> Callable[[], bool]:
    """A readiness test: ``text`` appears in the file after ``offset``."""

    def check() -> bool:
        try:
            return text in path.read_text(errors="replace")[offset:]
        except OSError:
            return False

    return check
