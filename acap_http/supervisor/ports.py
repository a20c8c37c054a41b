"""The host ports rootlesskit forwards into the holder's network namespace, through
its API (``<state-dir>/api.sock``), as ``rootlessctl`` does.

dockerd's API port is added and removed here at run time (2375 or 2376, as
UseTLS says). The ports of containers are published by dockerd through
``rootlesskit-docker-proxy``, which dies with dockerd but leaves its entry:
the next dockerd could not publish that port again ("conflict with ID n"),
so every entry but the API's is cleared before dockerd starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from acap_http.supervisor import unixhttp
from acap_http.supervisor.command import PortForward

logger = logging.getLogger(__name__)

TIMEOUT = 5.0


class Forwards:
    def __init__(
        self, api_socket: Path, *, clock: Callable[[], float] = time.monotonic, cancel: threading.Event | None = None
    ) -> None:
        self.api_socket = api_socket
        self._clock = clock
        self._cancel = cancel or threading.Event()  # set: the retries below end at once

    def list(self) -> dict[int, PortForward]:
        """The forwards by their rootlesskit id."""
        entries = unixhttp.call_json(self.api_socket, "GET", "/v1/ports", TIMEOUT)
        found = {}
        for entry in entries if isinstance(entries, list) else []:
            spec = entry.get("spec", {})
            found[int(entry["id"])] = PortForward(
                spec.get("parentIP", ""), int(spec.get("parentPort", 0)), int(spec.get("childPort", 0)),
                spec.get("proto", "tcp"),
            )  # fmt: skip
        return found

    def add(self, forward: PortForward) -> None:
        spec = {
            "proto": forward.proto,
            "parentIP": forward.parent_ip,
            "parentPort": forward.parent_port,
            "childPort": forward.child_port,
        }
        unixhttp.call_json(self.api_socket, "POST", "/v1/ports", TIMEOUT, spec)

    def remove(self, forward_id: int) -> None:
        unixhttp.call_json(self.api_socket, "DELETE", f"/v1/ports/{forward_id}", TIMEOUT)

    def keep_only(self, wanted: PortForward | None) -> None:
        """Remove every forward but ``wanted``, and add ``wanted`` if it is missing."""
        present = False
        for forward_id, forward in self.list().items():
            if forward == wanted:
                present = True
                continue
            logger.debug("Removing the port forward %s:%d (id %d)", forward.parent_ip, forward.parent_port, forward_id)
            self.remove(forward_id)
        if wanted is not None and not present:
            logger.info("Forwarding %s:%d to dockerd", wanted.parent_ip, wanted.parent_port)
            self._add_when_free(wanted)

    def _add_when_free(self, wanted: PortForward, patience: float = 5.0) -> None:
        """Add ``wanted``; the port may still be held a moment by a holder on its way out (a
        replaced worker's, a crashed one's), so try again for a few seconds."""
        deadline = self._clock() + patience
        while True:
            try:
                self.add(wanted)
                return
            except unixhttp.ApiError:
                if self._clock() > deadline:
                    raise
                if self._cancel.wait(0.1):
                    raise InterruptedError("cancelled while the port was still taken") from None
