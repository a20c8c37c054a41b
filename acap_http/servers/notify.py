"""Telling systemd how the service is (``sd_notify``): READY=1 once the application answers and
Status is known, STATUS= as Status changes, STOPPING=1 on the way out. A datagram to the unix
socket systemd names in ``$NOTIFY_SOCKET`` (``@`` for the abstract namespace); nothing without it.

A datagram that cannot go at once (the reader's queue is full) is dropped, with a warning: the
supervisor sends them, and must never wait on a reader that is not reading."""

from __future__ import annotations

import logging
import socket

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None) -> None:
        self.address = address

    def send(self, state: str) -> None:
        if not self.address:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.connect(target)
                sock.send(state.encode())
        except OSError as err:
            logger.warning("Could not tell systemd %r: %s", state.split("\n", maxsplit=1)[0], err)
