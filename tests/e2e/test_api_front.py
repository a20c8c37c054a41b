"""``up --tls-by front``, rootless and rootful: the application ends TLS on the API's port, and a
rotation (a file, a set, a new CA) or a UseTLS switch restarts nothing. The real docker CLI and the
Docker SDK for Python, a client polling /_ping every 10 ms over mutual TLS, and a ``docker logs
-f`` open across the rotations; dockerd killed with connections open through the front."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests import pki
from tests.e2e.running import IMAGE, PLAIN_HOST, TICKER, TLS_HOST, Mode, running_mode
from tests.waiting import until

PREFIX = "/local/dockerdwrapper/"


@pytest.fixture(scope="module", params=["rootless", "rootful"])
def mode(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Mode]:
    yield from running_mode(
        e2e_root / f"api-front-{request.param}", request.param, ("sh", "sleep", "cat", "echo"), ("--tls-by", "front")
    )


def context_of(client: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(client / "ca.pem"))
    context.load_cert_chain(str(client / "cert.pem"), str(client / "key.pem"))
    return context


def served_certificate(context: ssl.SSLContext) -> str:
    """The fingerprint of the server certificate a new connection is given, after /_ping answered."""
    connection = http.client.HTTPSConnection("127.0.0.1", 2376, context=context, timeout=10)
    try:
        connection.request("GET", "/_ping")
        assert connection.getresponse().read() == b"OK"
        assert connection.sock is not None
        der = connection.sock.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()
    finally:
        connection.close()


class Poller:
    """GET /_ping every 10 ms over mutual TLS, each on a new connection; every failure kept."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context, self.failures, self.done = context, list[str](), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                served_certificate(self.context)
                self.done += 1
            except (OSError, AssertionError) as err:
                self.failures.append(repr(err))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def upload_set(mode: Mode, server: pki.ServerSet) -> str:
    """The set uploaded; the X-Dockerd-Restart header of the answer."""
    args = []
    for name, data in server.by_name().items():
        (mode.root / f"rotate-{name}").write_bytes(data)
        args += ["-F", f"{name}=@{mode.root / f'rotate-{name}'}"]
    answer = mode.front.curl(*args, "-X", "POST", path=PREFIX + "tls")
    assert answer.status == 204, answer.body
    return _header(answer.headers, "X-Dockerd-Restart")


def _header(head: str, name: str) -> str:
    for line in head.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def _until(condition: Callable[[], object], timeout: float = 30) -> None:
    until(condition, timeout, 0.05)


def test_the_docker_cli_works_through_the_front(mode: Mode) -> None:
    """version, run, exec with stdin ended (a half-close through TLS), logs: as through dockerd's TLS."""
    mode.wait_docker()
    assert mode.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    container = mode.docker("run", "-d", "--network", "none", IMAGE, "sleep", "300").stdout.strip()
    try:
        echoed = subprocess.run(
            ["docker", "--tlsverify", f"--tlscacert={mode.client}/ca.pem", f"--tlscert={mode.client}/cert.pem",
             f"--tlskey={mode.client}/key.pem", "-H", TLS_HOST, "exec", "-i", container, "cat"],
            input="through the front\n", capture_output=True, text=True, timeout=60, check=False,
            env=_env(mode),
        )  # fmt: skip
        assert echoed.stdout == "through the front\n", echoed.stderr
        said = mode.docker("run", "--rm", "--network", "none", IMAGE, "echo", "hello")
        assert said.stdout == "hello\n", said.stderr
    finally:
        mode.docker("rm", "-f", container)


def test_docker_build_sends_its_context_through_the_front(mode: Mode) -> None:
    mode.wait_docker()
    context = mode.root / "build-context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY greeting /greeting\n")
    (context / "greeting").write_text("built through the front\n")
    built = mode.docker("build", "-t", "acap-http-test/built-by-cli", str(context))
    assert built.returncode == 0, built.stderr
    said = mode.docker("run", "--rm", "--network", "none", "acap-http-test/built-by-cli", "cat", "/greeting")
    assert said.stdout == "built through the front\n", said.stderr
    mode.docker("rmi", "acap-http-test/built-by-cli")


def test_the_docker_sdk_works_through_the_front(mode: Mode, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Docker SDK for Python over mutual TLS: version, run, an exec with a TTY on the raw
    socket (what ``exec -it`` is), a logs stream, a build with a small context."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would take them over the SDK's own CA
        monkeypatch.delenv(name, raising=False)
    mode.wait_docker()
    tls = docker.tls.TLSConfig(
        client_cert=(str(mode.client / "cert.pem"), str(mode.client / "key.pem")),
        ca_cert=str(mode.client / "ca.pem"),
        verify=True,
    )
    client = docker.DockerClient(base_url=TLS_HOST, tls=tls, version="auto", timeout=60)
    container = None
    try:
        assert client.version()["Version"]
        container = client.containers.run(IMAGE, ["sh", "-c", TICKER], detach=True, network_mode="none")
        exec_id = client.api.exec_create(container.id, ["cat"], stdin=True, tty=True)["Id"]
        raw = client.api.exec_start(exec_id, socket=True, tty=True)  # over TLS: the connection itself
        assert isinstance(raw, ssl.SSLSocket)
        raw.settimeout(30)
        raw.sendall(b"typed at a terminal\n")
        typed = b""
        while typed.count(b"typed at a terminal") < 2:  # the terminal's echo, then cat's
            chunk = raw.recv(4096)
            assert chunk, typed
            typed += chunk
        raw.sendall(b"\x04")  # ^D: cat ends, and so does the exec
        raw.close()
        vars(raw)["_response"].close()  # the SDK keeps its response on the socket: its last reference
        stream = container.logs(stream=True, follow=True)
        assert [next(stream) for _ in range(3)]  # lines keep coming
        stream.close()
        vars(stream)["_response"].close()
        context = mode.root / "sdk-context"
        context.mkdir(exist_ok=True)
        (context / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY greeting /greeting\n")
        (context / "greeting").write_text("built by the SDK\n")
        image, _ = client.images.build(path=str(context), tag="acap-http-test/built-by-sdk", rm=True)
        said = client.containers.run(image, ["cat", "/greeting"], remove=True, network_mode="none")
        assert said == b"built by the SDK\n"
        client.images.remove("acap-http-test/built-by-sdk", force=True)
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()


def test_dockerd_killed_closes_the_fronts_connections_and_status_comes_back(mode: Mode) -> None:
    """kill -9 of dockerd with a logs -f stream and a kept-alive connection open through the
    front: both are closed, Status goes 1 then 0, the container runs on, new connections answer."""
    mode.wait_docker()
    ticker = mode.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c", TICKER).stdout.strip()
    follow = subprocess.Popen(
        ["docker", "--tlsverify", f"--tlscacert={mode.client}/ca.pem", f"--tlscert={mode.client}/cert.pem",
         f"--tlskey={mode.client}/key.pem", "-H", TLS_HOST, "logs", "-f", ticker],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(mode),
    )  # fmt: skip
    kept = http.client.HTTPSConnection("127.0.0.1", 2376, context=context_of(mode.client), timeout=30)
    try:
        assert follow.stdout is not None and follow.stdout.readline()
        kept.request("GET", "/_ping")
        assert kept.getresponse().read() == b"OK"
        mark = mode.front.mark()
        os.kill(mode.dockerd(), signal.SIGKILL)
        follow.wait(30)  # its stream ended with dockerd
        assert kept.sock is not None
        kept.sock.settimeout(30)
        with pytest.raises((ConnectionError, ssl.SSLError, socket.timeout, http.client.HTTPException, OSError)):
            kept.request("GET", "/_ping")
            kept.getresponse().read()
        mode.front.wait_status("1 DOCKERD STOPPED", since=mark)
        mode.front.wait_status("0 RUNNING", since=mark)
        mode.wait_docker()
        assert mode.docker("inspect", "--format", "{{.State.Running}}", ticker).stdout.strip() == "true"
    finally:
        kept.close()
        follow.kill()
        follow.wait()
        assert follow.stdout is not None
        follow.stdout.close()
        mode.docker("rm", "-f", ticker)


def test_a_rotation_restarts_nothing_and_no_client_notices(mode: Mode) -> None:
    """A new server certificate, then a new CA: each answered 'reloaded'; dockerd keeps its pid; a
    client polling every 10 ms sees no failure; a logs -f stream goes on; new connections get the
    new certificate, and after the CA change a client of the old CA is refused. Back to the first set."""
    mode.wait_docker()
    pid = mode.dockerd()
    ticker = mode.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c", TICKER).stdout.strip()
    follow = subprocess.Popen(
        ["docker", "--tlsverify", f"--tlscacert={mode.client}/ca.pem", f"--tlscert={mode.client}/cert.pem",
         f"--tlskey={mode.client}/key.pem", "-H", TLS_HOST, "logs", "-f", ticker],
        stdout=subprocess.PIPE, text=True, env=_env(mode),
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    old = context_of(mode.client)
    poller = Poller(old)
    try:
        before = served_certificate(old)
        for _ in range(3):  # the same CA, a new server key and certificate each time
            assert upload_set(mode, mode.authority.server_set()) == "reloaded"
            _until(lambda: served_certificate(old) != before)  # noqa: B023  # called here, in this turn
            before = served_certificate(old)
        seen = len(lines)
        _until(lambda: len(lines) > seen + 5)  # the stream goes on
        poller.stop()
        assert poller.failures == [] and poller.done > 20
        assert mode.dockerd() == pid

        other = pki.Authority("another CA")
        assert upload_set(mode, other.server_set()) == "reloaded"
        new_client = other.client_files(mode.root / "other-client")
        _until(lambda: _answers(context_of(new_client)))
        with pytest.raises((ssl.SSLError, OSError)):
            served_certificate(old)  # a client of the old CA: refused, as dockerd refuses it
        assert mode.dockerd() == pid
    finally:
        poller.stop()
        assert upload_set(mode, mode.authority.server_set(key=mode.key)) == "reloaded"
        _until(lambda: _answers(old))
        follow.kill()
        follow.wait()
        reader.join(10)
        assert follow.stdout is not None
        follow.stdout.close()
        mode.docker("rm", "-f", ticker)


def test_use_tls_off_and_on_restarts_nothing(mode: Mode) -> None:
    mode.wait_docker()
    pid = mode.dockerd()
    try:
        mode.front.update(UseTLS="no")
        mode.host = PLAIN_HOST
        mode.wait_docker()
        assert mode.dockerd() == pid
    finally:
        mode.front.update(UseTLS="yes")
        mode.host = TLS_HOST
        mode.wait_docker()
    assert mode.dockerd() == pid
    assert mode.front.status() == "0 RUNNING"


def _env(mode: Mode) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(mode.root / "docker-config"), "PATH": "/usr/bin:/bin"}


def _answers(context: ssl.SSLContext) -> bool:
    try:
        served_certificate(context)
    except (ssl.SSLError, OSError, AssertionError):
        return False
    return True
