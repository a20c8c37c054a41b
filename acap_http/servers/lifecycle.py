"""How a serving mode that waits in its main thread ends (``run``, ``up``, ``fleet``): at the first
of SIGTERM, SIGINT, SIGHUP, or the end of something it cannot serve without (a child, the
FastCGI server). Written once, so that every mode stops for the same reasons and says why alike.

``serve`` is not one of them: gunicorn's master owns the signals there, and its worker stops the
application from gunicorn's own SIGTERM handler."""

from __future__ import annotations

import logging
import queue
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

# SIGHUP too: a closed terminal must not leave dockerd behind.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

Handler = Callable[[int, FrameType | None], None]
Install = Callable[[signal.Signals, Handler], Any]  # signal.signal, or a test's stand-in


class Stop:
    """The reasons to stop, first come first served. The handlers only post (the main thread
    owns the signals and may be anywhere when one comes); ``wait`` is where the mode acts."""

    def __init__(self, install: Install = signal.signal) -> None:
        self._reasons: queue.SimpleQueue[str] = queue.SimpleQueue()
        for signum in STOP_SIGNALS:
            install(signum, self._signalled)

    def _signalled(self, signum: int, _frame: FrameType | None) -> None:
        self.post(signal.Signals(signum).name)

    def post(self, reason: str) -> None:
        """A reason to stop (safe from any thread, and from a signal handler)."""
        self._reasons.put(reason)

    def wait(self, what: str = "Stopping") -> str:
        """Block until the first reason, say it, and return it (a signal's name, or what ended)."""
        reason = self._reasons.get()
        logger.info("%s (%s)", what, reason)
        return reason
