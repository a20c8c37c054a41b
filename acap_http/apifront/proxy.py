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

import collections
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
from typing import Any

from acap_http.escape import printable

logger = logging.getLogger(__name__)

BUFFER = 256 * 1024  # per direction and connection
CHUNK = 64 * 1024
RECORD = 16 * 1024  # TLS's largest record: a read that filled one may have more behind it
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
HANDSHAKE_TIMEOUT = 10.0
MAX_CONNECTIONS = 1000
LOOPS = min(4, os.cpu_count() or 1)  # a handshake's work is OpenSSL's, out of the GIL: one per core
# A connection cut off by one end, in the log's words (one line per connection, as for any other end).
_CUT_OFF: dict[type[OSError], str] = {
    ConnectionResetError: "reset by its other end",
    BrokenPipeError: "its other end stopped reading",
    ConnectionAbortedError: "aborted",
    TimeoutError: "timed out",
}


@dataclass(frozen=True)
class Listen:
    """Where the front listens, and with what: ``context`` None is plain TCP (UseTLS=no)."""

    address: str
    port: int
    context: ssl.SSLContext | None


class Front:
    """The listener and its loops: the first loop accepts and deals the connections out, one
    each in turn, so that handshakes (OpenSSL works without the GIL) use every core."""

    def __init__(
        self,
        backend: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        loops: int = LOOPS,
        on_failure: Callable[[], None] = lambda: None,
        clients: frozenset[str] = frozenset(),
    ) -> None:
        self.backend = backend
        # The client certificates let in (common name or SAN, in any case); none: all of the CA's.
        self.clients = frozenset(name.casefold() for name in clients)
        self._clock = clock
        self._handshake_timeout = handshake_timeout
        self._max = max_connections
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._wanted: Listen | None = None  # what to listen with, set from any thread
        self._handover: socket.socket | None = None  # bound for it, not taken by the first loop yet
        self._stopping = False
        self._started = False
        self._loops = [_Loop(self, index) for index in range(max(1, loops))]
        self._dealt = 0
        self._open = 0  # connections counted against max_connections: changed under _lock

    # --- from any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._started = True
            loops = list(self._loops)
        for loop in loops:
            loop.thread.start()

    def use(self, listen: Listen | None) -> None:
        """Listen as ``listen`` says from now on (None: not at all); a new context alone is a
        rotation: the listener stays, open connections keep theirs. Raises OSError when the
        address cannot be bound, ValueError for plain TCP when only some clients may connect
        (their certificates are the only way to tell them); nothing changes then."""
        if listen is not None and listen.context is None and self.clients:
            raise ValueError("--api-client lets in named clients only, and plain TCP (UseTLS=no) names none")
        with self._lock:
            current = self._wanted
            same_place = None not in (current, listen) and _place(current) == _place(listen)
            bound = None if listen is None or same_place else _bind(listen)  # here: the caller hears a refusal
            self._wanted = listen
            if not same_place:
                left, self._handover = self._handover, bound
                if left is not None:
                    left.close()  # asked for, and replaced before the loop took it
            first = self._loops[0]
        first.wake()

    def stop(self) -> None:
        """Close the listener and every connection; returns when the loops have ended."""
        with self._lock:
            self._stopping = True
            loops = list(self._loops)
        for loop in loops:
            if loop.thread.ident is None:  # never started: what it holds is closed here
                loop.close_all()
            else:
                loop.wake()
                loop.thread.join()
        self._take_handover()

    def revive(self) -> None:
        """Start a new loop for each that ended by a fault of its own: their connections are
        gone, dockerd and its containers untouched. If the first one died, the listener went
        with it: it is bound again as it was (the certificates it served, not the store's,
        which may hold half of a rotation). Raises OSError when a loop cannot be made (nothing
        changed then) or the port cannot be bound again (the front listens nowhere)."""
        with self._lock:
            dead = [index for index, loop in enumerate(self._loops) if loop.failed]
        if self._stopping or not dead:
            return
        fresh = {index: _Loop(self, index) for index in dead}  # made before any is replaced
        with self._lock:
            for index, loop in fresh.items():
                _close_dealt(self._loops[index])  # dealt to it as it died
                self._loops[index] = loop
            wanted = None
            if 0 in fresh:
                wanted, self._wanted = self._wanted, None
                if self._handover is not None:
                    self._handover.close()
                    self._handover = None
            started = self._started
        if started:
            for loop in fresh.values():
                loop.thread.start()
        if wanted is not None:
            self.use(wanted)

    @property
    def connections(self) -> int:
        """The connections open: accepted, and not closed yet (dealt to a loop or served by one)."""
        return self._open

    @property
    def failed(self) -> bool:
        """Whether a loop ended by a fault of its own (``revive`` brings it back)."""
        return any(loop.failed for loop in self._loops)

    @property
    def reachable(self) -> bool:
        """Whether new clients are served: the first loop (the listener's) runs; the others' new
        connections go to the loops left."""
        return not self._loops[0].failed

    # --- from the loops ----------------------------------------------------------------------------

    def _wanted_now(self) -> tuple[Listen | None, socket.socket | None]:
        """What to listen with, and the socket bound for it if it is new (the first loop's)."""
        with self._lock:
            wanted, handover, self._handover = self._wanted, self._handover, None
            if self._stopping:
                wanted = None
        return wanted, handover

    def _take_handover(self) -> None:
        with self._lock:
            handover, self._handover = self._handover, None
        if handover is not None:
            handover.close()  # bound for a listener no loop took

    def _take_place(self) -> bool:
        """Count a connection about to be accepted in, if there is room for it."""
        with self._lock:
            if self._open >= self._max:
                return False
            self._open += 1
            return True

    def _give_place(self) -> None:
        with self._lock:
            self._open -= 1

    def _deal(self) -> _Loop:
        """The loop the next connection goes to (asked by the first loop alone): each in turn,
        but not one that failed."""
        for _ in self._loops:
            self._dealt += 1
            loop = self._loops[self._dealt % len(self._loops)]
            if not loop.failed:
                return loop
        return self._loops[0]

    def _failed(self) -> None:
        if not self._stopping:
            self._on_failure()


class _Loop:
    """One thread and its selector: the connections dealt to it, and for the first loop the
    listener."""

    def __init__(self, front: Front, index: int) -> None:
        self.front = front
        self.index = index
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, READ, None)
        self.incoming: collections.deque[tuple[socket.socket, str, ssl.SSLContext | None]] = collections.deque()
        self.again: set[_Pipe] = set()  # stepped as far as one turn goes: the next turn goes on
        self.pipes: set[_Pipe] = set()
        self.handshaking: collections.deque[_Pipe] = collections.deque()  # in their deadlines' order
        self.listener: socket.socket | None = None
        self.listening: Listen | None = None
        self.failed = False
        self.thread = threading.Thread(target=self._run, name=f"api-front-{index}", daemon=True)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # a wake pending already; a loop closed
            self._wake_w.send(b"x")

    def _run(self) -> None:
        try:
            self._turns()
        except Exception:
            self.failed = True
            logger.exception("The Docker API's front failed: its connections are closed")
        finally:
            self.close_all()
        if self.failed:
            self.front._failed()

    def _turns(self) -> None:
        while True:
            if self.index == 0:
                self._apply()
            if self.front._stopping:
                return
            while self.incoming:
                dealt = self.incoming.popleft()
                self._guarded(lambda dealt=dealt: self._adopt(*dealt))  # type: ignore[misc]
            again, self.again = self.again, set()
            for key, events in self.selector.select(0 if again else self._timeout()):
                if key.data is None:
                    self._drain_wake()
                elif key.data is self:
                    self._guarded(self._accept)
                else:
                    self._step(key.data, key.fileobj, events)  # type: ignore[arg-type]
            for pipe in again:
                self._step(pipe, pipe.client, READ)
            if self.handshaking:
                self._expire()

    def _step(self, pipe: _Pipe, sock: socket.socket, events: int) -> None:
        """One connection's turn; a fault of its own (a bug) closes it, not the front."""
        if not self._guarded(lambda: pipe.ready(sock, events)):
            pipe.close()

    def _guarded(self, work: Callable[[], None]) -> bool:
        try:
            work()
        except Exception:
            logger.exception("The Docker API's front failed serving a connection; it is closed, the others go on")
            return False
        return True

    def _apply(self) -> None:
        wanted, handover = self.front._wanted_now()
        if wanted is self.listening and handover is None:
            return
        if handover is not None or wanted is None:
            self._close_listener()
        if wanted is None and handover is not None:
            handover.close()  # bound, and no longer wanted (a stop)
        elif wanted is not None and handover is not None:
            self.listener = handover
            self.selector.register(handover, READ, self)
            logger.info("The Docker API's front listens on %s:%d (%s)", wanted.address, wanted.port,
                        "TLS" if wanted.context else "plain TCP")  # fmt: skip
        elif wanted is not None and self.listening is not None and wanted.context is not self.listening.context:
            logger.info("The Docker API's front serves new connections with the new certificates")
        self.listening = wanted

    def _close_listener(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            logger.info("The Docker API's front no longer listens")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        assert self.listener is not None and self.listening is not None
        for _ in range(64):  # a burst at once, then the others' turn
            try:
                connection, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of descriptors, say: the listener stays, the client waits
                logger.warning("The Docker API's front cannot accept a connection: %s", err)
                return
            if not self.front._take_place():
                logger.warning("Refused a connection from %s: %d are open already", _peer(peer), self.front._max)
                connection.close()
                continue
            connection.setblocking(False)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = self.front._deal()
            if loop is self:
                self._adopt(connection, _peer(peer), self.listening.context)
            else:
                loop.incoming.append((connection, _peer(peer), self.listening.context))
                loop.wake()
                if loop.failed:  # it died meanwhile, after its last look at what it was dealt
                    _close_dealt(loop)

    def _adopt(self, connection: socket.socket, peer: str, context: ssl.SSLContext | None) -> None:
        try:
            pipe = _Pipe(self, connection, peer, context, self.front._clock() + self.front._handshake_timeout)
        except Exception as err:
            connection.close()
            self.front._give_place()
            if not isinstance(err, OSError):
                raise  # a bug: logged as one by the guard
            logger.info("Closed a connection from %s: %s", peer, printable(str(err)))
            return
        self.pipes.add(pipe)
        if pipe.deadline is not None:
            self.handshaking.append(pipe)
        self._step(pipe, pipe.client, READ)

    def _first_handshake(self) -> _Pipe | None:
        """The connection whose handshake ends first (they are kept in the order of their
        deadlines, which is the order of their accepts); those done are dropped on the way."""
        while self.handshaking and (self.handshaking[0].deadline is None or self.handshaking[0].closed):
            self.handshaking.popleft()
        return self.handshaking[0] if self.handshaking else None

    def _timeout(self) -> float | None:
        first = self._first_handshake()
        return None if first is None else max(0.0, first.deadline - self.front._clock())  # type: ignore[operator]

    def _expire(self) -> None:
        now = self.front._clock()
        while (first := self._first_handshake()) is not None and first.deadline <= now:  # type: ignore[operator]
            logger.info(
                "Closed a connection from %s: no TLS handshake in %.0f s", first.peer, self.front._handshake_timeout
            )
            first.close()

    def close_all(self) -> None:
        for pipe in list(self.pipes):
            pipe.close()
        _close_dealt(self)
        self._close_listener()
        self.listening = None
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # what pipes ask of their loop
    def watch(self, sock: socket.socket, events: int, pipe: _Pipe) -> None:
        try:
            key = self.selector.get_key(sock)
        except KeyError:
            if events:
                self.selector.register(sock, events, pipe)
            return
        if not events:
            self.selector.unregister(sock)
        elif key.events != events:
            self.selector.modify(sock, events, pipe)

    def forget(self, pipe: _Pipe, *socks: socket.socket | None) -> None:
        for sock in socks:
            if sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(sock)
        self.pipes.discard(pipe)


class _Pipe:
    """One client's connection and its connection to dockerd."""

    def __init__(
        self, loop: _Loop, client: socket.socket, peer: str, context: ssl.SSLContext | None, deadline: float
    ) -> None:
        self.loop, self.peer = loop, peer
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
        self.read_wants, self.write_wants = READ, WRITE
        self.closed = False
        if not self.tls:
            self._connect()

    def ready(self, sock: socket.socket, events: int) -> None:
        """``sock`` (either end) is ready for ``events``: move what that lets move, straight on to
        the other end, then say what to wait for. Only the end that is ready is tried: a turn
        costs the calls that move bytes, hardly any more."""
        if self.closed:
            return
        try:
            if self.deadline is not None:
                self._handshake()
            elif sock is self.client:
                if events & self.read_wants:
                    self._from_client()
                if events & self.write_wants:
                    self._to_client()
            else:
                if events & READ:
                    self._from_server()
                if events & WRITE:
                    self._to_server()
            self._ends()
        except tuple(_CUT_OFF) as err:
            said = next(words for kind, words in _CUT_OFF.items() if isinstance(err, kind))
            logger.info("Closed a connection from %s: %s", self.peer, said)
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
            self.read_wants = READ
            return
        except ssl.SSLWantWriteError:
            self.read_wants = WRITE
            return
        self.read_wants = READ
        self.deadline = None
        clients = self.loop.front.clients
        if clients and not (names := _names(self.client.getpeercert())) & clients:
            logger.info("Refused a client certificate from %s: %s is not among those let in", self.peer,
                        printable(", ".join(sorted(names)) or "no name"))  # fmt: skip
            self.close()
            return
        self._connect()
        self._from_client()  # what came with the handshake's last flight is held by TLS already

    def _connect(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.setblocking(False)
        try:
            server.connect(os.fspath(self.loop.front.backend))
        except BlockingIOError:
            pass  # a unix socket's backlog full: it connects when writable
        except OSError as err:
            server.close()
            raise OSError(f"dockerd does not answer ({errno.errorcode.get(err.errno or 0, err)})") from None
        self.server = server

    def _from_client(self) -> None:
        """Read what the client sent (record after record while they come full), then pass it on."""
        while not self.client_eof and len(self.to_server) < BUFFER:
            try:
                data = self.client.recv(CHUNK)
            except ssl.SSLWantReadError:
                self.read_wants = READ
                break
            except ssl.SSLWantWriteError:
                self.read_wants = WRITE
                break
            except BlockingIOError:
                break
            self.read_wants = READ
            if not data:
                self.client_eof = True
            self.to_server += data
            if len(data) < (RECORD if self.tls else CHUNK):
                break  # the socket is likely empty: asking again would cost a failed call
        self._to_server()

    def _to_server(self) -> None:
        if not self.to_server:
            return
        assert self.server is not None
        try:
            sent = self.server.send(self.to_server)
        except BlockingIOError:
            return
        del self.to_server[:sent]

    def _from_server(self) -> None:
        assert self.server is not None
        while not self.server_eof and len(self.to_client) < BUFFER:
            try:
                data = self.server.recv(CHUNK)
            except BlockingIOError:
                break
            if not data:
                self.server_eof = True
            self.to_client += data
            if len(data) < CHUNK:
                break
        self._to_client()

    def _to_client(self) -> None:
        while self.in_flight is not None or self.to_client:
            chunk = self.in_flight if self.in_flight is not None else bytes(self.to_client[:CHUNK])
            try:
                sent = self.client.send(chunk)
            except ssl.SSLWantWriteError:
                self.in_flight, self.write_wants = chunk, WRITE
                return
            except ssl.SSLWantReadError:
                self.in_flight, self.write_wants = chunk, READ
                return
            except BlockingIOError:
                return
            self.in_flight, self.write_wants = None, WRITE
            del self.to_client[:sent]
            if sent < len(chunk):
                return  # the kernel's buffer is full

    def _ends(self) -> None:
        """Pass an end of writing on, once all before it has gone; and what a turn left held."""
        if self.server is None:
            return
        if self.client_eof and not self.to_server and not self.server_shut:
            self.server.shutdown(socket.SHUT_WR)  # the client is done writing: so is its request
            self.server_shut = True
        if self.server_eof and not self.to_client and self.in_flight is None:
            self._finish()
        elif self.tls and not self.client_eof and len(self.to_server) < BUFFER and self.client.pending():  # type: ignore[attr-defined]
            self.loop.again.add(self)  # read from the socket already, held by TLS: no event would come

    def _finish(self) -> None:
        """dockerd is done and all it said has gone: say so to the client, and close."""
        if isinstance(self.client, ssl.SSLSocket):
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self.client.unwrap()  # close_notify, once; its answer is not waited for
        self.close()

    def _watch(self) -> None:
        if self.deadline is not None:
            self.loop.watch(self.client, self.read_wants, self)
            return
        client = 0
        if not self.client_eof and len(self.to_server) < BUFFER:
            client |= self.read_wants
        if self.to_client or self.in_flight is not None:
            client |= self.write_wants
        server = 0
        if not self.server_eof and len(self.to_client) < BUFFER:
            server |= READ
        if self.to_server:
            server |= WRITE
        self.loop.watch(self.client, client, self)
        if self.server is not None:
            self.loop.watch(self.server, server, self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.forget(self, self.client, self.server)
        self.loop.front._give_place()
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


def _names(certificate: dict[str, Any] | None) -> set[str]:
    """A verified peer certificate's subject common names and its DNS, IP, email and URI subject
    alternative names, in lower case (the allowed names are compared so too)."""
    if not certificate:
        return set()
    names = {value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in certificate.get("subjectAltName", ()) if kind in _SAN_KINDS}
    return {name.casefold() for name in names if isinstance(name, str)}


_SAN_KINDS = frozenset({"DNS", "IP Address", "email", "URI"})


def _close_dealt(loop: _Loop) -> None:
    """Close the connections dealt to a loop that will not take them."""
    while True:
        try:
            connection = loop.incoming.popleft()[0]
        except IndexError:
            return
        connection.close()
        loop.front._give_place()


def _place(listen: Listen | None) -> tuple[str, int] | None:
    return None if listen is None else (listen.address, listen.port)


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return printable(f"{address[0]}:{address[1]}")
    return printable(str(address))
