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
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T", bound=Hashable)  # the owner's names for its timers


class EventLoop(Generic[E, T]):
    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._events: queue.SimpleQueue[E] = queue.SimpleQueue()
        self._timers: dict[T, float] = {}  # timer -> when it is due
        self._now = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # what the loop's owner defines
    @property
    def finished(self) -> bool:
        raise NotImplementedError

    def _handle(self, event: E) -> None:
        raise NotImplementedError

    def _timer(self, timer: T) -> None:
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
            due = [
                timer for timer, when in sorted(self._timers.items(), key=lambda item: item[1]) if when <= self._now()
            ]
            if not due:
                return
            del self._timers[due[0]]
            self._guarded(self._timer, due[0])

    def _guarded(self, handler: Callable[[E], None] | Callable[[T], None], what: object) -> None:
        try:
            handler(what)  # type: ignore[arg-type]
        except Exception:
            logger.exception("%s failed handling %s", self._thread.name, what)
            self._failed()

    def _set_timer(self, timer: T, delay: float | None, *, keep_earlier: bool = False) -> None:
        """The one way timers change: due ``delay`` seconds from now (None: not at all); with
        ``keep_earlier``, an earlier due time already set stays."""
        if delay is None:
            self._timers.pop(timer, None)
            return
        due = self._now() + delay
        self._timers[timer] = min(self._timers.get(timer, due), due) if keep_earlier else due

    def _timer_set(self, timer: T) -> bool:
        return timer in self._timers
