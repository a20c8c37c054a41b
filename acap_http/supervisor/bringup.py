"""Bringing dockerd up, in a worker: what is missing of the stack (the namespace holder,
containerd, the API's port forward), then dockerd itself.

Every step may wait: the holder and containerd are polled until they answer (up to 10 s
each), a port still held by a holder on its way out is retried (up to 5 s), dockerd's
version is asked of the program. The supervisor thread waits for none of it: it starts a
``BringUp`` in the background, goes on taking events, and hears how it ended as
``StackUp`` or ``StackFailed``. A stop meanwhile (a Shutdown, the card pulled) ``cancel``s
it: every wait ends at its next tick, no step starts after it, and the worker's report says
what was started, so that it is stopped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from acap_http.supervisor import housekeeping, versions
from acap_http.supervisor.command import Host
from acap_http.supervisor.events import StackFailed, StackUp
from acap_http.supervisor.runner import Runner
from acap_http.supervisor.settings import Settings
from acap_http.supervisor.stack import OnExit, StackError, StackLike

logger = logging.getLogger(__name__)


@dataclass(eq=False)  # one bring-up is itself, not any with the same fields
class BringUp:
    host: Host
    stack: StackLike
    runner: Runner
    on_exit: OnExit
    settings: Settings
    data_root: Path

    def __post_init__(self) -> None:
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """From the supervisor thread: stop as soon as possible; the report follows."""
        self._cancel.set()

    def run(self) -> StackUp | StackFailed:
        """The steps in order, in the calling (worker) thread; the outcome, to be posted."""
        try:
            housekeeping.prepare(self.host, self.data_root)
            self.stack.up(self.data_root, self._cancel)
            self.stack.before_dockerd(self.settings, self._cancel)
            command = self.stack.dockerd_command(self.settings)
            if self.host.api_front:
                versions.of("dockerd", self.host.path)  # the front serves the suites of this dockerd: asked here, kept
            self._go_on()
            logger.debug("Starting %s", " ".join(command.argv))
            process = self.runner.start(command, self.on_exit, name="dockerd")
        except StackError as err:
            # The namespaces or containerd did not come up (a holder of before still on its way
            # out, say): try again, later and later, as after a crash.
            return StackFailed(self, err, retry=True)
        except OSError as err:
            # dockerd could not even be started (a program or a directory missing): like an
            # error dockerd reports, it needs the operator.
            return StackFailed(self, err, retry=self._cancel.is_set())
        except Exception as err:  # a bug: still a report, or the supervisor would wait for it for good
            logger.exception("The bring-up failed")
            return StackFailed(self, OSError(f"the bring-up failed: {err}"), retry=False)
        return StackUp(self, process)

    def _go_on(self) -> None:
        if self._cancel.is_set():
            raise StackError("the start was cancelled")
