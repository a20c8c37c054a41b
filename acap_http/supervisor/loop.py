"""One thread that takes events and timers one at a time: the supervisor's frame.

Other threads only ``post``. The thread sleeps until an event arrives or the
next timer is due, then ``pump``s: every queued event, then every due timer,
in order, without waiting. Tests call ``pump`` themselves with a fake clock,
so that time passes only when they say so.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

E = TypeVar("E")


class EventLoop(Generic[E]):
    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._events: queue.SimpleQueue[E] = queue.SimpleQueue()
        self._timers: dict[str, float] = {}  # name -> when it is due
        self._now = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # what the loop's owner defines
    @property
    def finished(self) -> bool:
        raise NotImplementedError

    def _handle(self, event: E) -> None:
        raise NotImplementedError

    def _timer(self, name: str) -> None:
        raise NotImplementedError

    def _failed(self) -> None:
        """After a handler raised: bring the state back to something safe."""

    # from any thread
    def post(self, event: E) -> None:
        self._events.put(event)

    # the loop's thread
    def _run(self) -> None:
        while not self.finished:
            due = min(self._timers.values(), default=None)
            try:
                event: E | None = self._events.get(timeout=None if due is None else max(0.0, due - self._now()))
            except queue.Empty:
                event = None
            self.pump(event)

    def pump(self, event: E | None = None) -> None:
        """Take ``event``, every event queued and every timer due now; never waits. Events come
        first: a timer acts on what was decided before it, and news queued meanwhile (a change
        posted while dockerd stopped) may change what it should do."""
        if event is not None:
            self._guarded(self._handle, event)
        while True:
            try:
                self._guarded(self._handle, self._events.get_nowait())
                continue
            except queue.Empty:
                pass
            due = sorted((when, name) for name, when in self._timers.items() if when <= self._now())
            if not due:
                return
            name = due[0][1]
            del self._timers[name]
            self._guarded(self._timer, name)

    def _guarded(self, handler: Callable[[E], None] | Callable[[str], None], what: object) -> None:
        try:
            handler(what)  # type: ignore[arg-type]
        except Exception:
            logger.exception("%s failed handling %s", self._thread.name, what)
            self._failed()

    def _set_timer(self, name: str, delay: float) -> None:
        """Due ``delay`` seconds from now (an earlier due time of the same name is kept)."""
        due = self._now() + delay
        self._timers[name] = min(self._timers.get(name, due), due)
