"""gunicorn's thread worker, with each request's head (and the TLS handshake) read by its poller.

gunicorn's gthread worker gives a connection to a thread as soon as a byte comes; the thread
then finishes the TLS handshake and reads the request line and headers, blocking. A client
that sends a byte and stops holds that thread until the read timeout, and as many such
clients as threads hold the whole front: an operator's request waited for the cuts. Here the
poller, which waits on every connection at once, does the handshake and gathers the head
without blocking; a thread gets the connection only once the head is all there. A stalled
client costs a descriptor, not a thread, and is cut after ``silence`` without a byte, or when
its head has taken ``head_deadline`` (Apache's RequestReadTimeout does the same).
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.workers.gthread import TConn, ThreadWorker

logger = logging.getLogger(__name__)

# The end of a request's head, whatever line ends the client uses (the parser judges them).
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")
_CHUNK = 65536


@dataclass(eq=False)
class _Head:
    """A connection whose TLS handshake and request head the poller is reading."""

    conn: TConn
    started: float
    heard: float
    handshaken: bool
    data: bytearray = field(default_factory=bytearray)
    events: int = 0  # what the poller waits for on it (0: not registered)

    def complete(self, limit: int) -> bool:
        """The head is all there (or past any head the parser accepts: it says so, as it would)."""
        return len(self.data) > limit or any(end in self.data for end in _HEAD_ENDS)


class HeadReadingWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with the handshake and the head read without a thread; ``silence`` and
    ``head_deadline`` are set by the service before the worker runs."""

    silence = 10.0
    head_deadline = 40.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: set[_Head] = set()

    @property
    def _head_limit(self) -> int:
        """The longest head the parser can accept: a request line, and each field with its CR LF."""
        cfg = self.cfg
        return int(cfg.limit_request_line) + 2 + int(cfg.limit_request_fields) * int(cfg.limit_request_field_size) + 2

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):  # taken by another, or gone already
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking from here
        if self.cfg.is_ssl:
            conn.sock = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
            )  # fmt: skip
        now = time.monotonic()
        self._wait(_Head(conn, now, now, handshaken=not self.cfg.is_ssl), selectors.EVENT_READ)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection's next request: its head is read here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        now = time.monotonic()
        self._advance(_Head(conn, now, now, handshaken=True))

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for head in [head for head in self._heads if now - head.heard > self.silence]:
            logger.warning("Closed a connection: nothing came from the client for %.0f s", self.silence)
            self._drop(head)
        for head in [head for head in self._heads if now - head.started > self.head_deadline]:
            logger.warning("Closed a connection: its request's head took over %.0f s", self.head_deadline)
            self._drop(head)

    def _advance(self, head: _Head, _fileobj: object = None) -> None:
        """What the connection has for us now: the handshake's next step, or more of the head."""
        sock = head.conn.sock
        try:
            if not head.handshaken:
                sock.do_handshake()
                head.handshaken = True
            while not head.complete(self._head_limit):
                chunk = sock.recv(_CHUNK)
                if not chunk:  # the client went
                    self._drop(head)
                    return
                head.data += chunk
                head.heard = time.monotonic()
        except ssl.SSLWantWriteError:
            self._wait(head, selectors.EVENT_WRITE)
            return
        except (ssl.SSLWantReadError, BlockingIOError):
            self._wait(head, selectors.EVENT_READ)
            return
        except OSError as err:  # a failed handshake, a reset: nothing to answer
            logger.debug("Connection from %s closed before its request: %s", head.conn.client, err)
            self._drop(head)
            return
        self._hand_over(head)

    def _wait(self, head: _Head, events: int) -> None:
        if head.events == events:
            return
        callback = partial(self._advance, head)
        if head.events:
            self.poller.modify(head.conn.sock, events, callback)
        else:
            self.poller.register(head.conn.sock, events, callback)
            self._heads.add(head)
        head.events = events

    def _forget(self, head: _Head) -> None:
        if head.events:
            self.poller.unregister(head.conn.sock)
            head.events = 0
        self._heads.discard(head)

    def _drop(self, head: _Head) -> None:
        self._forget(head)
        self.nr_conns -= 1
        head.conn.close()

    def _hand_over(self, head: _Head) -> None:
        """To a thread, with the head in hand: it reads no more than the body, if any."""
        self._forget(head)
        conn = head.conn
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(head.data))
        conn.initialized = conn.data_ready = True
        self.enqueue_req(conn)
