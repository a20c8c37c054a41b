"""The Docker API's front: a listener where dockerd's TCP socket would be, TLS ended here (or
none: UseTLS=no), and the bytes passed both ways to a unix socket of dockerd's.

No HTTP is read: after the handshake a connection is a byte stream, which is also what an
attach or an exec (HTTP upgraded to a raw stream) needs. One thread, one selector, non-blocking
sockets: a client that stalls holds a buffer, not a thread. Each direction holds at most
``BUFFER`` bytes and stops reading while the other side does not take them (back pressure).
Half-closes pass through: a client's end of writing (docker's CloseWrite after stdin ended, a TLS
close_notify) becomes the end of writing towards dockerd, whose answer still flows back.

The TLS context is taken when a connection is accepted, so that a new one (``use``) serves every
connection from then on while those open keep theirs: a rotation no client notices. dockerd is
reached only after the handshake: a client without a certificate of the CA never touches it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acap_http.escape import printable

logger = logging.getLogger(__name__)

BUFFER = 256 * 1024  # per direction and connection
CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0
MAX_CONNECTIONS = 1000
_CLOSED_QUIETLY = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class Listen:
    """Where the front listens, and with what: ``context`` None is plain TCP (UseTLS=no)."""

    address: str
    port: int
    context: ssl.SSLContext | None


class Front:
    def __init__(
        self,
        backend: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._handshake_timeout = handshake_timeout
        self._max = max_connections
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._wanted: Listen | None = None  # what the loop is to listen with, set from any thread
        self._handover: socket.socket | None = None  # bound for it, not taken by the loop yet
        self._stopping = False
        self._again: set[_Pipe] = set()  # stepped as far as one turn goes: the next turn goes on
        self._listener: socket.socket | None = None
        self._listening: Listen | None = None
        self._pipes: set[_Pipe] = set()
        self._thread = threading.Thread(target=self._run, name="api-front", daemon=True)

    # --- from any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def use(self, listen: Listen | None) -> None:
        """Listen as ``listen`` says from now on (None: not at all); a new context alone is a
        rotation: the listener stays, open connections keep theirs. Raises OSError when the
        address cannot be bound, and nothing changes then."""
        with self._lock:
            current = self._wanted
            same_place = None not in (current, listen) and _place(current) == _place(listen)
            bound = None if listen is None or same_place else _bind(listen)  # here: the caller hears a refusal
            self._wanted = listen
            if not same_place:
                left, self._handover = self._handover, bound
                if left is not None:
                    left.close()  # asked for, and replaced before the loop took it
        self._wake()

    def stop(self) -> None:
        """Close the listener and every connection; returns when the loop has ended."""
        with self._lock:
            self._stopping = True
        if self._thread.ident is None:  # never started: what it holds is closed here
            self._close_all()
            return
        self._wake()
        self._thread.join()

    @property
    def connections(self) -> int:
        return len(self._pipes)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake is pending already
            self._wake_w.send(b"x")

    # --- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._apply()
                if self._stopping:
                    return
                again, self._again = self._again, set()
                for key, _ in self._selector.select(0 if again else self._timeout()):
                    if key.data is None:
                        self._drain_wake()
                    elif key.data is self:
                        self._guarded(self._accept)
                    else:
                        again.discard(key.data)
                        self._step(key.data)
                for pipe in again:
                    self._step(pipe)
                self._expire()
        finally:
            self._close_all()

    def _step(self, pipe: _Pipe) -> None:
        """One connection's turn; a fault of its own (a bug) closes it, not the front."""
        if not self._guarded(pipe.step):
            pipe.close()

    def _guarded(self, work: Callable[[], None]) -> bool:
        try:
            work()
        except Exception:
            logger.exception("The Docker API's front failed serving a connection; it is closed, the others go on")
            return False
        return True

    def _apply(self) -> None:
        with self._lock:
            wanted, handover, self._handover = self._wanted, self._handover, None
            stopping = self._stopping
        if stopping:
            wanted = None
        if wanted is self._listening and handover is None:
            return
        if handover is not None or wanted is None:
            self._close_listener()
        if wanted is not None and handover is not None:
            self._listener = handover
            self._selector.register(handover, selectors.EVENT_READ, self)
            logger.info("The Docker API's front listens on %s:%d (%s)", wanted.address, wanted.port,
                        "TLS" if wanted.context else "plain TCP")  # fmt: skip
        elif wanted is not None and self._listening is not None and wanted.context is not self._listening.context:
            logger.info("The Docker API's front serves new connections with the new certificates")
        self._listening = wanted

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            logger.info("The Docker API's front no longer listens")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        assert self._listener is not None and self._listening is not None
        for _ in range(64):  # a burst at once, then the others' turn
            try:
                connection, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of descriptors, say: the listener stays, the client waits
                logger.warning("The Docker API's front cannot accept a connection: %s", err)
                return
            if len(self._pipes) >= self._max:
                logger.warning("Refused a connection from %s: %d are open already", _peer(peer), self._max)
                connection.close()
                continue
            connection.setblocking(False)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipe = _Pipe(
                self, connection, _peer(peer), self._listening.context, self._clock() + self._handshake_timeout
            )
            self._pipes.add(pipe)
            pipe.step()

    def _timeout(self) -> float | None:
        deadlines = [pipe.deadline for pipe in self._pipes if pipe.deadline is not None]
        return max(0.0, min(deadlines) - self._clock()) if deadlines else None

    def _expire(self) -> None:
        now = self._clock()
        for pipe in [p for p in self._pipes if p.deadline is not None and p.deadline <= now]:
            logger.info("Closed a connection from %s: no TLS handshake in %.0f s", pipe.peer, self._handshake_timeout)
            pipe.close()

    def _close_all(self) -> None:
        for pipe in list(self._pipes):
            pipe.close()
        self._close_listener()
        with self._lock:
            handover, self._handover = self._handover, None
        if handover is not None:
            handover.close()  # bound for a listener the loop never took
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # what pipes ask of the loop
    def _watch(self, sock: socket.socket, events: int, pipe: _Pipe) -> None:
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            if events:
                self._selector.register(sock, events, pipe)
            return
        if not events:
            self._selector.unregister(sock)
        elif key.events != events:
            self._selector.modify(sock, events, pipe)

    def _forget(self, pipe: _Pipe, *socks: socket.socket | None) -> None:
        for sock in socks:
            if sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
        self._pipes.discard(pipe)


class _Pipe:
    """One client's connection and its connection to dockerd."""

    def __init__(
        self, front: Front, client: socket.socket, peer: str, context: ssl.SSLContext | None, deadline: float
    ) -> None:
        self.front, self.peer = front, peer
        self.tls = context is not None
        self.client: socket.socket = (
            context.wrap_socket(client, server_side=True, do_handshake_on_connect=False) if context else client
        )
        self.deadline: float | None = deadline if self.tls else None
        self.server: socket.socket | None = None
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.in_flight: bytes | None = None  # a TLS write to retry with the same bytes
        self.client_eof = self.server_eof = False
        self.server_shut = False
        # What a read (or the handshake) and a write of the TLS layer wait for before they can go on
        # (a TLS read may need to write, and a write to read).
        self.read_wants, self.write_wants = selectors.EVENT_READ, selectors.EVENT_WRITE
        self.closed = False
        if not self.tls:
            self._connect()

    def step(self) -> None:
        """Everything that can be done now without waiting; then what to wait for."""
        if self.closed:
            return
        try:
            if self.deadline is not None:
                self._handshake()
            if self.deadline is None and self.server is not None:
                self._pump()
        except _CLOSED_QUIETLY:
            self.close()
        except ssl.SSLError as err:
            logger.info("Closed a connection from %s: %s", self.peer, printable(str(err.reason or err)))
            self.close()
        except OSError as err:
            logger.info("Closed a connection from %s: %s", self.peer, printable(str(err)))
            self.close()
        if not self.closed:
            self._watch()

    def _handshake(self) -> None:
        assert isinstance(self.client, ssl.SSLSocket)
        try:
            self.client.do_handshake()
        except ssl.SSLWantReadError:
            self.read_wants = selectors.EVENT_READ
            return
        except ssl.SSLWantWriteError:
            self.read_wants = selectors.EVENT_WRITE
            return
        self.read_wants = selectors.EVENT_READ
        self.deadline = None
        self._connect()

    def _connect(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.setblocking(False)
        try:
            server.connect(os.fspath(self.front.backend))
        except BlockingIOError:
            pass  # a unix socket's backlog full: it connects when writable
        except OSError as err:
            server.close()
            raise OSError(f"dockerd does not answer ({errno.errorcode.get(err.errno or 0, err)})") from None
        self.server = server

    def _pump(self) -> None:
        assert self.server is not None
        for _ in range(16):  # until nothing moves, or the others' turn
            moved = self._read_client() | self._write_server() | self._read_server() | self._write_client()
            if not moved:
                break
        else:
            self.front._again.add(self)
        if isinstance(self.client, ssl.SSLSocket) and self.client.pending() and len(self.to_server) < BUFFER:
            self.front._again.add(self)  # read from the socket already, held by TLS: no event would come
        if self.client_eof and not self.to_server and not self.server_shut:
            self.server.shutdown(socket.SHUT_WR)  # the client is done writing: so is its request
            self.server_shut = True
        if self.server_eof and not self.to_client and self.in_flight is None:
            self._finish()

    def _read_client(self) -> bool:
        if self.client_eof or len(self.to_server) >= BUFFER:
            return False
        try:
            data = self.client.recv(CHUNK)
        except ssl.SSLWantReadError:
            self.read_wants = selectors.EVENT_READ
            return False
        except ssl.SSLWantWriteError:
            self.read_wants = selectors.EVENT_WRITE
            return False
        except BlockingIOError:
            return False
        self.read_wants = selectors.EVENT_READ
        if not data:
            self.client_eof = True
        self.to_server += data
        return True

    def _write_server(self) -> bool:
        if not self.to_server:
            return False
        assert self.server is not None
        try:
            sent = self.server.send(self.to_server[:CHUNK])
        except BlockingIOError:
            return False
        del self.to_server[:sent]
        return sent > 0

    def _read_server(self) -> bool:
        if self.server_eof or len(self.to_client) >= BUFFER:
            return False
        assert self.server is not None
        try:
            data = self.server.recv(CHUNK)
        except BlockingIOError:
            return False
        if not data:
            self.server_eof = True
        self.to_client += data
        return True

    def _write_client(self) -> bool:
        if self.in_flight is None and not self.to_client:
            return False
        chunk = self.in_flight if self.in_flight is not None else bytes(self.to_client[:CHUNK])
        try:
            sent = self.client.send(chunk)
        except ssl.SSLWantWriteError:
            self.in_flight, self.write_wants = chunk, selectors.EVENT_WRITE
            return False
        except ssl.SSLWantReadError:
            self.in_flight, self.write_wants = chunk, selectors.EVENT_READ
            return False
        except BlockingIOError:
            return False
        self.in_flight, self.write_wants = None, selectors.EVENT_WRITE
        del self.to_client[:sent]
        return sent > 0

    def _finish(self) -> None:
        """dockerd is done and all it said has gone: say so to the client, and close."""
        if isinstance(self.client, ssl.SSLSocket):
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self.client.unwrap()  # close_notify, once; its answer is not waited for
        self.close()

    def _watch(self) -> None:
        if self.deadline is not None:
            self.front._watch(self.client, self.read_wants, self)
            return
        client = 0
        if not self.client_eof and len(self.to_server) < BUFFER:
            client |= self.read_wants
        if self.to_client or self.in_flight is not None:
            client |= self.write_wants
        server = 0
        if not self.server_eof and len(self.to_client) < BUFFER:
            server |= selectors.EVENT_READ
        if self.to_server:
            server |= selectors.EVENT_WRITE
        self.front._watch(self.client, client, self)
        if self.server is not None:
            self.front._watch(self.server, server, self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.front._forget(self, self.client, self.server)
        for sock in (self.client, self.server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def _bind(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.address, listen.port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _place(listen: Listen | None) -> tuple[str, int] | None:
    return None if listen is None else (listen.address, listen.port)


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return printable(f"{address[0]}:{address[1]}")
    return printable(str(address))
