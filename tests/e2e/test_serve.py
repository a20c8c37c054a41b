"""``acap-http serve`` as an operator meets it: real gunicorn over HTTPS, real curl --anyauth,
a real rootless dockerd and the docker CLI; systemd's notifications on a socket the test binds."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from acap_http.servers.serve import THREADS
from tests import pki
from tests.e2e.front import docker, dockerd_pids, free_port
from tests.e2e.served import PARAM_CGI, PREFIX, Served


@pytest.fixture(scope="module")
def served(e2e_root: Path) -> Iterator[Served]:
    root = e2e_root / "serve"
    root.mkdir(mode=0o755)
    made = Served(root, ("--metrics-listen", str(free_port())))
    made.start()
    made.notes_until("READY=1")
    yield made
    if made.process is not None and made.process.poll() is None:
        made.process.send_signal(signal.SIGTERM)
        made.process.wait(90)
    made.notify.close()


def test_ready_once_status_is_known(served: Served) -> None:
    """READY=1 comes with the first settled Status (no TLS files: 3), after STATUS=1 while it starts."""
    notes = served.notes_until("READY=1")
    assert "STATUS=1 DOCKERD STOPPED" in notes
    assert "READY=1\nSTATUS=3 TLS CERT MISSING" in notes


def test_the_readme_commands_over_https(served: Served, tmp_path: Path) -> None:
    """The three uploads with curl --anyauth, then Status 0 (notified too) and docker --tlsverify."""
    authority = pki.Authority()
    for name, data in authority.server_set().by_name().items():
        (tmp_path / name).write_bytes(data)
        code, _ = served.curl("-F", f"file=@{tmp_path / name}", "-X", "POST", path=PREFIX + name)
        assert code == 204
    served.wait_status("0 RUNNING")
    served.notes_until("STATUS=0 RUNNING")
    client = authority.client_files(tmp_path / "client")
    version = docker("version", "--format", "{{.Server.Version}}", host="tcp://127.0.0.1:2376",
                     config=tmp_path / "cfg", certs=client)  # fmt: skip
    assert version.returncode == 0, version.stderr


def test_levels_and_passwords(served: Served) -> None:
    """A viewer lists but may not update (401 for the URL's update, 403 in a body); a wrong password is 401,
    and the right one works at once after it; past 10 wrong guesses at a user, 429 unchecked; other paths 404."""
    assert served.curl(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.UseTLS", user="viewer") == (
        200, "root.dockerdwrapper.UseTLS=yes\r\n")  # fmt: skip
    assert served.curl(path=f"{PARAM_CGI}?action=update&root.dockerdwrapper.UseTLS=no", user="viewer")[0] == 401
    assert served.curl("-d", "action=update&root.dockerdwrapper.UseTLS=no", path=PARAM_CGI, user="viewer")[0] == 403
    assert served.curl(path=f"{PARAM_CGI}?action=list", password="wrong")[0] == 401
    assert served.curl(path=f"{PARAM_CGI}?action=list")[0] == 200
    guesses = [served.curl(path=f"{PARAM_CGI}?action=list", user="operator", password="wrong")[0] for _ in range(12)]
    assert guesses == [401] * 10 + [429] * 2  # the operator's bucket; the admin (logged in from here) goes on
    assert served.curl(path=f"{PARAM_CGI}?action=list")[0] == 200
    assert served.curl(path="/index.html")[0] == 404
    assert served.curl(path=PREFIX + "tls", user="viewer")[0] == 401  # its level is too low


def test_metrics_for_viewers_at_slash_metrics_and_on_the_listener(served: Served) -> None:
    """/metrics over HTTPS with Basic: a viewer reads them, a wrong password does not; the worker's
    --metrics-listen serves the same registry on loopback without authentication."""
    code, body = served.curl(path="/metrics", user="viewer")
    assert code == 200 and re.search(r"^acap_http_status -?\d", body, re.M), body
    assert served.curl(path="/metrics", user="viewer", password="wrong")[0] == 401
    port = served.extra_args[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        listened = answer.read().decode()
    assert 'acap_http_build_info{app="dockerdwrapper"' in listened and "acap_http_status" in listened


def test_a_killed_worker_leaves_no_dockerd_and_its_replacement_runs_again(served: Served, tmp_path: Path) -> None:
    """kill -9 of gunicorn's worker: its dockerd goes with it; the new worker starts the application anew."""
    if served.status() != "0 RUNNING":
        test_the_readme_commands_over_https(served, tmp_path)
    (old,) = dockerd_pids(served.app_dir)
    os.kill(served.worker(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while old in dockerd_pids(served.app_dir):
        assert time.monotonic() < deadline, "the old dockerd outlived its worker"
        time.sleep(0.05)
    served.wait_status("0 RUNNING")
    assert dockerd_pids(served.app_dir) not in ([], [old])


def test_the_largest_key_does_not_hold_the_worker(served: Served, tmp_path: Path) -> None:
    """A set with an 8,192-bit RSA server key (the largest Go takes; OpenSSL's own check of it held the
    GIL for seconds) while another client polls: every poll is answered and the worker is the same one;
    a 16,384-bit key is refused with the reason, unchecked."""
    authority = pki.Authority()
    files = authority.server_set(key=pki.largest_rsa_key()).by_name()
    args = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        args += ["-F", f"{name}=@{tmp_path / name}"]
    worker = served.worker()
    stop, polls, failures = threading.Event(), [0], []

    def poll() -> None:
        while not stop.is_set():
            code, body = served.curl(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.UseTLS")
            polls[0] += 1
            if code != 200:
                failures.append((code, body))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        assert served.curl(*args, "-X", "POST", path=PREFIX + "tls")[0] == 204
        (tmp_path / "big.pem").write_bytes(pki.fabricated_rsa_key_pem(16384))
        code, body = served.curl("-F", f"file=@{tmp_path / 'big.pem'}", "-X", "POST", path=PREFIX + "server-key.pem")
        assert code == 400 and "RSA key of 16384 bits" in body and "over 8192 bits" in body
    finally:
        stop.set()
        poller.join(60)
    assert polls[0] > 0 and failures == []
    assert served.worker() == worker


def test_clients_that_stop_sending_do_not_hold_the_front(served: Served) -> None:
    """More stalled clients than threads (half-way through the headers, or the TLS handshake): each is
    cut after 10 s of silence, with one log line, and an operator's request is answered meanwhile,
    before any of them is cut: they hold no thread."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    stalled = []
    for index in range(THREADS + 4):
        connection = socket.create_connection(("127.0.0.1", served.port), timeout=60)
        if index < 4:  # while threads are free to finish the handshake
            connection = context.wrap_socket(connection, server_hostname="localhost")
            connection.sendall(b"GET /axis-cgi/param.cgi?action=list HTTP/1.1\r\nHost: localhost\r\n")
        else:
            connection.sendall(b"\x16")  # the first byte of a ClientHello, and no more
        stalled.append(connection)
    try:
        assert served.status()
        for connection in stalled:  # answered while every stalled client still held its connection
            connection.setblocking(False)
            with pytest.raises((BlockingIOError, ssl.SSLWantReadError)):  # nothing to read: still open
                connection.recv(1024)
            connection.setblocking(True)
        for connection in stalled:
            assert connection.recv(1024) == b""  # closed by the server
    finally:
        for connection in stalled:
            connection.close()
    log = served.log.read_text()
    assert "Closed a connection: nothing came from the client for 10 s" in log
    assert "Traceback" not in log


def test_client_text_cannot_forge_a_log_line(served: Served) -> None:
    """A user name with a line break: the front's warning and gunicorn's access line both escape it."""
    done = subprocess.run(
        ["curl", "-sS", "--cacert", str(served.cert), "-u", "evil\nINFO[forged]:pw", "-o", "/dev/null",
         "-w", "%{http_code}", served.url + f"{PARAM_CGI}?action=list"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout == "401"
    time.sleep(1.0)  # the access line is written after the answer
    log = served.log.read_text()
    assert "evil\\nINFO[forged]" in log
    assert not re.search(r"^INFO\[forged\]", log, re.MULTILINE)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU],
                         ids=lambda signum: signal.Signals(signum).name)  # fmt: skip
def test_reload_and_worker_count_signals_are_ignored(served: Served, signum: int, tmp_path: Path) -> None:
    """SIGHUP (reload), SIGUSR2 (a new binary), SIGTTIN and SIGTTOU (a worker more or less) would start
    a second application beside the first, or stop the only one: ignored, said why; the same worker
    and the same dockerd run, and the front answers."""
    assert served.process is not None
    if served.status() != "0 RUNNING":  # settled, with a dockerd: none may start or stop meanwhile
        test_the_readme_commands_over_https(served, tmp_path)
    name = signal.Signals(signum).name
    before, worker = dockerd_pids(served.app_dir), served.worker()
    mark = len(served.log.read_text())
    served.process.send_signal(signum)
    deadline = time.monotonic() + 10
    while f"Ignored {name}" not in served.log.read_text()[mark:]:
        assert time.monotonic() < deadline, served.log.read_text()[-2000:]
        time.sleep(0.1)
    assert served.status()
    assert dockerd_pids(served.app_dir) == before and served.worker() == worker
    assert "Booting worker" not in served.log.read_text()[mark:]


def _raw_status(port: int, request: bytes) -> int:
    """The status code gunicorn answers one request written byte for byte over TLS."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname="x") as tls:
        tls.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_the_apache_fronts_request_limits_hold(served: Served) -> None:
    """As Apache's front: a request line of 8,190 bytes, 100 header fields and a field of 8,190 bytes
    (its CR LF aside) are read (401: no login); one byte more of the line is a 414, one field more or
    one byte more of a field a 431."""
    end = b"Connection: close\r\n\r\n"

    def line(length: int) -> bytes:
        head, tail = b"GET /axis-cgi/param.cgi?action=list&x=", b" HTTP/1.1"
        return head + b"a" * (length - len(head) - len(tail)) + tail + b"\r\n"

    def fields(count: int) -> bytes:  # Host and Connection among them
        return b"Host: x\r\n" + b"".join(b"X-F%d: a\r\n" % index for index in range(count - 2)) + end

    short = line(60)
    assert _raw_status(served.port, line(8190) + b"Host: x\r\n" + end) == 401
    assert _raw_status(served.port, line(8191) + b"Host: x\r\n" + end) == 414
    assert _raw_status(served.port, short + fields(100)) == 401
    assert _raw_status(served.port, short + fields(101)) == 431
    field = b"X-Long: " + b"a" * (8190 - len(b"X-Long: ")) + b"\r\n"
    assert _raw_status(served.port, short + b"Host: x\r\n" + field + end) == 401
    assert _raw_status(served.port, short + b"Host: x\r\n" + field[:-2] + b"a\r\n" + end) == 431


def _trickle(port: int, stop: threading.Event) -> None:
    """A client that sends a header line every second, never ending its request."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as tls:
        tls.sendall(b"GET /axis-cgi/param.cgi?action=list HTTP/1.1\r\nHost: localhost\r\n")
        with contextlib.suppress(OSError):
            while not stop.wait(1.0):
                tls.sendall(b"X-Still-Here: yes\r\n")


def test_sigterm_stops_dockerd_then_gunicorn(served: Served, tmp_path: Path) -> None:
    """SIGTERM to serve, a client trickling its request meanwhile: STOPPING=1, dockerd stopped at once,
    Status -1; the trickler gets a few seconds more, then the worker leaves (not killed after gunicorn's
    graceful timeout); gunicorn's master exits 0. Then serve starts again, for the tests after this one."""
    assert served.process is not None
    if served.status() != "0 RUNNING":
        test_the_readme_commands_over_https(served, tmp_path)
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(served.port, stop), daemon=True)
    trickler.start()
    time.sleep(1.5)
    before = len(served.log.read_text())
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(90) == 0
    stop.set()
    log = served.log.read_text()[before:]
    assert log.rindex("Status=-1 NOT STARTED") < log.rindex("Shutting down: Master")
    assert "Closing 1 connection(s) still open 5 s after the application stopped" in log
    assert "SIGKILL" not in log and "Traceback" not in log
    assert dockerd_pids(served.app_dir) == []
    served.notes_until("STOPPING=1")
    since = len(served.notes)
    served.start()
    served.notes_until("READY=1", since=since)


def _answers(tls: ssl.SSLSocket, count: int) -> list[bytes]:
    """The bodies of the next ``count`` answers on a connection (each must be a 200 with a length)."""
    buffer, bodies = b"", list[bytes]()
    while len(bodies) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = tls.recv(65536)
            assert chunk, f"closed after {len(bodies)} answers: {buffer!r}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(re.findall(rb"(?im)^content-length: *(\d+)", head)[0])
        while len(buffer) < length:
            buffer += tls.recv(65536)
        bodies.append(buffer[:length])
        buffer = buffer[length:]
    return bodies


def test_kept_alive_and_pipelined_requests_are_answered(served: Served) -> None:
    """The worker's poller reads each request's head: requests one after another on a kept-alive
    connection, a POST with its body, and two requests sent in one write are each answered."""
    context = ssl.create_default_context(cafile=str(served.cert))
    context.check_hostname = False
    credentials = base64.b64encode(f"admin:{served.passwords['admin']}".encode()).decode()
    head = f"Host: localhost\r\nAuthorization: Basic {credentials}\r\n"
    listing = f"GET {PARAM_CGI}?action=list&group=root.dockerdwrapper.UseTLS HTTP/1.1\r\n{head}\r\n"
    body = "action=list&group=root.dockerdwrapper.TCPSocket"
    posted = (f"POST {PARAM_CGI} HTTP/1.1\r\n{head}Content-Type: application/x-www-form-urlencoded\r\n"
              f"Content-Length: {len(body)}\r\n\r\n{body}")  # fmt: skip
    with context.wrap_socket(socket.create_connection(("127.0.0.1", served.port), timeout=30)) as tls:
        answers = []
        for request in (listing, posted, listing):  # one at a time, each answer read before the next
            tls.sendall(request.encode())
            answers += _answers(tls, 1)
        tls.sendall((listing + posted).encode())  # pipelined: both in one write
        answers += _answers(tls, 2)
    uses_tls, tcp_socket = b"root.dockerdwrapper.UseTLS=", b"root.dockerdwrapper.TCPSocket="
    assert [answer.partition(b"=")[0] + b"=" for answer in answers] == [uses_tls, tcp_socket, uses_tls, uses_tls,
                                                                      tcp_socket]  # fmt: skip
