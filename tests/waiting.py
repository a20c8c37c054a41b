"""Waiting in tests for what happens elsewhere (another thread, a process, a daemon)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    """Return once ``condition()`` is true, asking every ``interval`` seconds; an AssertionError
    once ``timeout`` seconds have passed without."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(interval)
