"""The Docker API's front on loopback, in front of a stand-in for dockerd's unix socket: mutual
TLS as dockerd's --tlsverify has it, bytes both ways, half-closes, a rotation that open
connections do not notice, and the clients it must refuse or survive."""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acap_http.apifront import proxy
from acap_http.apifront.context import server_context
from acap_http.apifront.proxy import Front, Listen
from tests import pki
from tests.e2e.front import free_port
from tests.waiting import until


class Backend:
    """dockerd's socket, played: each connection's bytes are kept; it answers ``answer(data)``
    once the client has ended its writing, then closes (as dockerd ends an attach)."""

    def __init__(self, path: Path, answer: Callable[[bytes], bytes] = lambda data: b"got " + data) -> None:
        self.path, self.answer = path, answer
        self.received: list[bytes] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(connection,), daemon=True).start()

    def _one(self, connection: socket.socket) -> None:
        with connection:
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
            self.received.append(data)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the front closed it meanwhile
                connection.sendall(self.answer(data))


class Pki:
    def __init__(self, root: Path) -> None:
        self.authority = pki.Authority()
        self.files = self.authority.server_set().by_name()
        self.client_dir = self.authority.client_files(root / "client")

    def client_context(self, directory: Path | None = None) -> ssl.SSLContext:
        directory = directory or self.client_dir
        context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))
        return context


@pytest.fixture
def keys(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend(tmp_path / "docker.sock")


@pytest.fixture
def front(tmp_path: Path, backend: Backend, keys: Pki) -> Iterator[tuple[Front, int]]:
    made = Front(backend.path, handshake_timeout=1.0, max_connections=50)
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    made.start()
    yield made, port
    made.stop()


def tls_client(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


class Client:
    """A mutual-TLS client that can end its writing and still read (as docker's CloseWrite does):
    TLS done by hand over memory buffers, where a half-close can be said (ssl.SSLSocket cannot)."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            self._drive(self.tls.do_handshake)
        except BaseException:
            self.raw.close()
            raise

    def _drive(self, operation: Callable[[], object]) -> object:
        while True:
            try:
                result = operation()
            except ssl.SSLWantReadError:
                self.raw.sendall(self.outgoing.read())
                chunk = self.raw.recv(65536)
                if chunk:
                    self.incoming.write(chunk)
                else:
                    self.incoming.write_eof()
                continue
            self.raw.sendall(self.outgoing.read())
            return result

    def certificate(self) -> bytes:
        cert = self.tls.getpeercert(binary_form=True)
        assert cert is not None
        return cert

    def send(self, data: bytes) -> None:
        self._drive(lambda: self.tls.write(data))

    def end_writing(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.unwrap()  # close_notify
        self.raw.sendall(self.outgoing.read())

    def read_all(self) -> bytes:
        answer = b""
        while True:
            try:
                chunk = self._drive(lambda: self.tls.read(65536))
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return answer
            assert isinstance(chunk, bytes)
            if not chunk:
                return answer
            answer += chunk

    def close(self) -> None:
        self.raw.close()


def half_close_exchange(port: int, context: ssl.SSLContext, data: bytes) -> bytes:
    """Send ``data``, end writing, read the answer that still comes."""
    client = Client(port, context)
    try:
        client.send(data)
        client.end_writing()
        return client.read_all()
    finally:
        client.close()


def test_bytes_pass_both_ways_and_a_half_close_reaches_dockerd(
    front: tuple[Front, int], keys: Pki, backend: Backend
) -> None:
    _, port = front
    payload = os.urandom(3 * 1024 * 1024)  # more than the buffers: back pressure both ways
    answer = half_close_exchange(port, keys.client_context(), payload)
    assert backend.received == [payload]
    assert answer == b"got " + payload


def test_a_rotation_serves_new_connections_and_leaves_open_ones_alone(
    front: tuple[Front, int], keys: Pki, tmp_path: Path
) -> None:
    made, port = front
    open_one = Client(port, keys.client_context())
    first = open_one.certificate()
    new = Pki(tmp_path / "new")  # a new CA: the old clients are refused from now on
    made.use(Listen("127.0.0.1", port, server_context(new.files)))
    _until(lambda: _served(port, new.client_context()) is not None)
    assert _served(port, new.client_context()) != first
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _served(port, keys.client_context(), strict=True)
    open_one.send(b"still here")  # the connection of before goes on, with its certificate
    open_one.end_writing()
    assert open_one.read_all() == b"got still here"
    open_one.close()


def test_clients_dockerd_would_refuse_are_refused(front: tuple[Front, int], keys: Pki, tmp_path: Path) -> None:
    _, port = front
    no_cert = ssl.create_default_context(cafile=str(keys.client_dir / "ca.pem"))
    other_ca = Pki(tmp_path / "other").client_context()
    other_ca.load_verify_locations(str(keys.client_dir / "ca.pem"))
    now, day = datetime.datetime.now(datetime.UTC), datetime.timedelta(days=1)
    expired = keys.client_context(keys.authority.client_files(tmp_path / "expired", valid=(now - 10 * day, now - day)))
    for refused in (no_cert, other_ca, expired):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError)):
            _served(port, refused, strict=True)
    assert _served(port, keys.client_context()) is not None


@pytest.mark.parametrize("dockerd", [(20, 10, 24), (26, 1, 5), (28, 0)])
def test_only_the_versions_and_suites_dockerd_takes(
    tmp_path: Path, backend: Backend, keys: Pki, dockerd: tuple[int, ...]
) -> None:
    """TLS 1.2 with ECDHE and AES-GCM, and AES-CBC for a dockerd before 28, and TLS 1.3; no
    ChaCha20, no RSA key exchange, nothing older than 1.2 (asked with openssl s_client)."""
    made = Front(backend.path)
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files, dockerd)))
    made.start()
    older = dockerd < (28,)
    try:
        for flags, taken in (
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], True),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], True),
            (["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], False),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"], older),
            (["-tls1_3"], True),
            (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], False),
            (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], False),
        ):
            done = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *flags,
                 "-cert", str(keys.client_dir / "cert.pem"), "-key", str(keys.client_dir / "key.pem")],
                input="", capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            agreed = "Cipher is (NONE)" not in done.stdout and "Cipher is " in done.stdout
            assert agreed is taken, (flags, done.stdout[-600:])
    finally:
        made.stop()


def test_garbage_a_stalled_handshake_and_a_flood_leave_others_served(front: tuple[Front, int], keys: Pki) -> None:
    """Garbage instead of a hello is closed; 60 clients that never say hello fill the 50 places (the
    rest are closed at once) and are closed after the handshake timeout (1 s here); a client with a
    certificate is served before, meanwhile and after."""
    made, port = front
    with socket.create_connection(("127.0.0.1", port), timeout=10) as garbage:
        garbage.sendall(b"GET /_ping HTTP/1.1\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            assert garbage.recv(100) == b""  # an alert at most would be bytes: nothing of dockerd's
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
    try:
        _until(lambda: made.connections == 50)
        for extra in stalled[50:]:  # closed at once: no place left
            extra.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert extra.recv(10) == b""
        _until(lambda: made.connections == 0, 5)  # their handshakes time out
        assert _served(port, keys.client_context()) is not None
    finally:
        for sock in stalled:
            sock.close()


def test_a_client_gone_mid_stream_ends_its_stream_at_dockerd(
    tmp_path: Path, keys: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that resets its connection while dockerd streams to it (a ``logs -f`` whose
    terminal was closed): the front closes its end towards dockerd, whose stream then ends; the
    front holds nothing of it, and serves the next client."""
    streaming = tmp_path / "streaming.sock"
    ended = threading.Event()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(streaming))
    server.listen()

    def stream() -> None:
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            while True:
                connection.sendall(b"line\n" * 1000)
        ended.set()

    threading.Thread(target=stream, daemon=True).start()
    made = Front(streaming)
    caplog.set_level(logging.INFO, logger=proxy.__name__)
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    made.start()
    try:
        client = tls_client(port, keys.client_context())
        client.sendall(b"GET /containers/x/logs?follow=1 HTTP/1.1\r\n\r\n")
        assert client.recv(100).startswith(b"line")
        raw = socket.socket(fileno=os.dup(client.fileno()))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        client.close()  # a reset, mid-stream
        assert ended.wait(10)
        _until(lambda: made.connections == 0)
    finally:
        made.stop()
        server.close()
    said = [record.getMessage() for record in caplog.records if "Closed a connection" in record.getMessage()]
    assert len(said) == 1, said  # once (a reset, or TLS that ended without its close_notify)


def test_a_fault_in_one_connection_closes_it_and_no_other(
    front: tuple[Front, int], keys: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met serving one connection (here: its reading of dockerd's answer raises) closes that
    connection, logged; the front goes on serving the others."""
    _, port = front
    original = proxy._Pipe._from_server
    calls = [0]

    def faulty(self: proxy._Pipe) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug")
        original(self)

    monkeypatch.setattr(proxy._Pipe, "_from_server", faulty)
    with pytest.raises((ssl.SSLError, OSError, AssertionError)):
        assert half_close_exchange(port, keys.client_context(), b"x") == b"got x"
    assert half_close_exchange(port, keys.client_context(), b"y") == b"got y"


def test_no_descriptor_is_left_behind(front: tuple[Front, int], keys: Pki) -> None:
    made, port = front
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        assert half_close_exchange(port, keys.client_context(), b"x") == b"got x"
        socket.create_connection(("127.0.0.1", port)).close()
    _until(lambda: made.connections == 0)
    _until(lambda: len(os.listdir("/proc/self/fd")) <= before)  # the stand-in's threads close theirs too


def test_plain_tcp_when_tls_is_off(tmp_path: Path, backend: Backend) -> None:
    made = Front(backend.path)
    port = free_port()
    made.use(Listen("127.0.0.1", port, None))
    made.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(b"ping")
            plain.shutdown(socket.SHUT_WR)
            assert plain.recv(100) == b"got ping"
        made.use(None)
        _until(lambda: _refused(port))
    finally:
        made.stop()


def test_a_front_never_started_stops_and_closes_its_port(tmp_path: Path, keys: Pki) -> None:
    made = Front(tmp_path / "docker.sock")
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))  # bound, never served
    made.stop()
    assert _refused(port)


def test_dockerd_not_there_closes_the_client(tmp_path: Path, keys: Pki) -> None:
    made = Front(tmp_path / "nobody.sock")
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    made.start()
    try:
        client = tls_client(port, keys.client_context())
        assert client.recv(10) == b""
        client.close()
    finally:
        made.stop()


def test_a_port_in_use_is_refused_and_nothing_changes(front: tuple[Front, int], keys: Pki) -> None:
    made, port = front
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            made.use(Listen("127.0.0.1", taken.getsockname()[1], server_context(keys.files)))
    assert _served(port, keys.client_context()) is not None


def test_only_the_clients_let_in_reach_dockerd(tmp_path: Path, backend: Backend, keys: Pki) -> None:
    """--api-client: a certificate of the CA whose common name or SAN is not listed is closed after
    its handshake, and dockerd never hears of it; one listed by either is served."""
    made = Front(backend.path, clients=frozenset({"ops", "ci.example.com"}))
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    made.start()
    try:
        by_name = keys.authority.client_files(tmp_path / "ops", name="ops")
        by_san = keys.authority.client_files(tmp_path / "ci", name="runner 7", hosts=("ci.example.com",))
        for directory in (by_name, by_san):
            assert half_close_exchange(port, keys.client_context(directory), b"let in") == b"got let in"
        stranger = keys.authority.client_files(tmp_path / "stranger", name="<script>", hosts=("other.example.com",))
        with pytest.raises((ssl.SSLError, OSError, AssertionError)):
            assert half_close_exchange(port, keys.client_context(stranger), b"kept out") == b"got kept out"
        time.sleep(0.2)
        assert b"kept out" not in b"".join(backend.received)
    finally:
        made.stop()


def test_a_failed_loop_other_than_the_listeners_leaves_the_front_reachable(
    tmp_path: Path, backend: Backend, keys: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = threading.Event()
    made = Front(backend.path, loops=2, on_failure=failures.set)
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    original = proxy._Loop._drain_wake

    def faulty(self: proxy._Loop) -> None:
        if self.index == 1:
            raise RuntimeError("a bug")
        original(self)

    monkeypatch.setattr(proxy._Loop, "_drain_wake", faulty)
    made.start()
    try:
        for _ in range(2):  # the second is dealt to loop 1, whose wake fails
            with contextlib.suppress(ssl.SSLError, OSError, AssertionError):
                half_close_exchange(port, keys.client_context(), b"x")
        assert failures.wait(10) and made.failed and made.reachable
        for _ in range(3):  # all dealt to the loop left
            assert half_close_exchange(port, keys.client_context(), b"y") == b"got y"
    finally:
        made.stop()


def test_named_clients_only_is_no_plain_tcp(tmp_path: Path, backend: Backend, keys: Pki) -> None:
    """Plain TCP (UseTLS=no) names no client: with --api-client it is refused, not opened to all."""
    made = Front(backend.path, clients=frozenset({"ops"}))
    try:
        with pytest.raises(ValueError, match="plain TCP"):
            made.use(Listen("127.0.0.1", free_port(), None))
    finally:
        made.stop()


def test_the_names_a_client_certificate_is_let_in_by() -> None:
    """Its common name and its DNS, IP, email and URI alternative names, in any case; a
    directory name (a nested value) is no name."""
    certificate = {
        "subject": ((("countryName", "SE"),), (("commonName", "Ops"),)),
        "subjectAltName": (
            ("DNS", "CI.Example.com"),
            ("IP Address", "192.0.2.7"),
            ("email", "ops@example.com"),
            ("URI", "spiffe://example.com/ci"),
            ("DirName", ((("commonName", "nested"),),)),
        ),
    }
    assert proxy._names(certificate) == {
        "ops",
        "ci.example.com",
        "192.0.2.7",
        "ops@example.com",
        "spiffe://example.com/ci",
    }
    assert proxy._names({}) == set() and proxy._names(None) == set()


def test_connections_are_dealt_to_every_loop(tmp_path: Path, backend: Backend, keys: Pki) -> None:
    made = Front(backend.path, loops=3)
    port = free_port()
    made.use(Listen("127.0.0.1", port, server_context(keys.files)))
    made.start()
    try:
        clients = [Client(port, keys.client_context()) for _ in range(6)]
        _until(lambda: made.connections == 6)
        assert [len(loop.pipes) for loop in made._loops] == [2, 2, 2]
        for client in clients:
            client.send(b"x")
            client.end_writing()
            assert client.read_all() == b"got x"
            client.close()
    finally:
        made.stop()


def test_no_session_ticket_is_given(front: tuple[Front, int], keys: Pki) -> None:
    """docker's clients never resume a session: the front makes no tickets for them."""
    _, port = front
    client = Client(port, keys.client_context())
    try:
        client.send(b"x")
        client.end_writing()
        assert client.read_all() == b"got x"  # what came after the handshake (tickets too) is read
        assert client.tls.session is not None and not client.tls.session.has_ticket
    finally:
        client.close()


def test_a_failed_loop_is_told_and_revived(
    tmp_path: Path, backend: Backend, keys: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of the loop's own (not a connection's) ends it: its connections and the listener
    close, the front says so; revived and told where to listen, it serves again, leaking nothing."""
    failures = threading.Event()
    made = Front(backend.path, loops=1, on_failure=failures.set)
    port = free_port()
    listen = Listen("127.0.0.1", port, server_context(keys.files))
    made.use(listen)
    made.start()
    try:
        open_one = Client(port, keys.client_context())
        _until(lambda: made.connections == 1)
        before = len(os.listdir("/proc/self/fd"))
        original = proxy._Loop._drain_wake
        monkeypatch.setattr(proxy._Loop, "_drain_wake", lambda self: (_ for _ in ()).throw(RuntimeError("a bug")))
        made.use(listen)  # wakes the loop: its wake's reading fails
        assert failures.wait(10) and made.failed
        assert _refused(port) and made.connections == 0
        assert open_one.raw.recv(10) == b""  # closed
        open_one.close()
        monkeypatch.setattr(proxy._Loop, "_drain_wake", original)
        made.revive()  # listening again as it was
        assert not made.failed
        assert half_close_exchange(port, keys.client_context(), b"y") == b"got y"
        _until(lambda: made.connections == 0)
        _until(lambda: len(os.listdir("/proc/self/fd")) <= before)
    finally:
        made.stop()


# --- helpers ---------------------------------------------------------------------------------------


def _served(port: int, context: ssl.SSLContext, strict: bool = False) -> bytes | None:
    """The server certificate a new connection is given (after a request answered), or None."""
    try:
        client = Client(port, context)
        try:
            client.send(b"hello")
            client.end_writing()
            if client.read_all() != b"got hello":
                raise ConnectionResetError("no answer")
            return client.certificate()
        finally:
            client.close()
    except (ssl.SSLError, OSError):
        if strict:
            raise
        return None


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # taken into the backlog of a listener that was closing: not refused yet
    return False


def _until(condition: Callable[[], object], timeout: float = 10) -> None:
    until(condition, timeout, 0.02)
