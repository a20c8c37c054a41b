"""The clients ``make bench`` measures with: a mutual-TLS client of dockerd's API that can tell
which certificate it was served, and pollers that record how long something did not answer."""

from __future__ import annotations

import hashlib
import http.client
import json
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.e2e.front import docker

TLS_PORT, PLAIN_PORT = 2376, 2375
TIMEOUT = 0.25  # rootless, a connection may be accepted before dockerd listens, then hang


def wait_until(condition: Callable[[], bool], timeout: float = 120) -> float:
    """Seconds until ``condition`` holds, asking as fast as it answers."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise TimeoutError("condition not met")
    return time.monotonic() - began


class TlsClient:
    """The operator's client: mutual TLS on 2376 with cert.pem and key.pem of ``directory``."""

    def __init__(self, directory: Path, address: str = "127.0.0.1") -> None:
        self.directory = directory
        self.address = address
        self.context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        self.context.check_hostname = False
        self.context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))

    def _get(self, path: str) -> tuple[bytes, bytes] | None:
        """(body, the server certificate's DER) of a GET, or None if nothing answered."""
        connection = http.client.HTTPSConnection(self.address, TLS_PORT, context=self.context, timeout=TIMEOUT)
        try:
            connection.connect()  # the certificate is read now: a closing answer takes the socket with it
            assert isinstance(connection.sock, ssl.SSLSocket)
            served = connection.sock.getpeercert(binary_form=True) or b""
            connection.request("GET", path)
            return connection.getresponse().read(), served
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def ping(self) -> bool:
        answer = self._get("/_ping")
        return answer is not None and answer[0] == b"OK"

    def kept_ping(self, idle: float = 0.09) -> Callable[[], bool]:
        """A ping for a Poller that costs little while dockerd is up. It keeps one connection open and,
        up to ``idle`` s between pings, waits on it for the close dockerd's shutdown makes, so that an
        outage is seen the moment it begins (or, if dockerd hangs instead, at the next ping); once a
        ping fails, each look opens a connection, every 10 ms as before, until one answers. Ten hosts
        polled with a handshake every 10 ms took 1.75 of this machine's two cores, which slowed the
        very restarts they timed. The request and its short answer are written and read as bytes."""
        kept: list[ssl.SSLSocket] = []
        request = f"GET /_ping HTTP/1.1\r\nHost: {self.address}\r\n\r\n".encode()

        def ping() -> bool:
            try:
                if kept and select.select([kept[0]], [], [], idle)[0]:
                    raise OSError("closed by dockerd")  # nothing else comes unasked on a kept connection
                if not kept:
                    raw = socket.create_connection((self.address, TLS_PORT), TIMEOUT)
                    kept.append(self.context.wrap_socket(raw, server_hostname=self.address))
                kept[0].sendall(request)
                answer = b""
                while not answer.endswith(b"\r\n\r\nOK"):
                    chunk = kept[0].recv(4096)
                    if not chunk or len(answer) > 4096:
                        raise OSError("no answer to /_ping")
                    answer += chunk
                if answer.startswith(b"HTTP/1.1 200"):
                    return True
            except OSError:
                pass
            if kept:
                kept.pop().close()
            return False

        return ping

    def served(self, certificate_pem: bytes) -> bool:
        """Whether dockerd answers with this server certificate (so: the dockerd started after its upload)."""
        answer = self._get("/_ping")
        wanted = x509.load_pem_x509_certificate(certificate_pem).fingerprint(hashes.SHA256())
        return answer is not None and hashlib.sha256(answer[1]).digest() == wanted

    def info(self) -> dict[str, object] | None:
        answer = self._get("/info")
        return json.loads(answer[0]) if answer is not None else None

    def docker(self, config: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return docker(*args, host=f"tcp://{self.address}:{TLS_PORT}", config=config, certs=self.directory)

        return run


def docker_info_debug(client: TlsClient) -> bool | None:
    info = client.info()
    return None if info is None else bool(info.get("Debug"))


def plain_ping() -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", PLAIN_PORT, timeout=TIMEOUT)
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().read() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Poller:
    """Asks ``check`` every 10 ms in a thread and keeps, since the last ``mark``, the longest
    stretch during which it did not answer (and when it was, for outages of several hosts put
    side by side)."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self._check = check
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._longest = 0.0
        self._span = (0.0, 0.0)
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while self._running:
            ok, now = self._check(), time.monotonic()
            with self._lock:
                if ok and self._down_since is not None:
                    if now - self._down_since > self._longest:
                        self._longest, self._span = now - self._down_since, (self._down_since, now)
                    self._down_since = None
                elif not ok and self._down_since is None:
                    self._down_since = now
            time.sleep(0.01)

    def mark(self) -> None:
        with self._lock:
            self._longest, self._span = 0.0, (0.0, 0.0)

    def longest_gap(self) -> float:
        with self._lock:
            pending = 0.0 if self._down_since is None else time.monotonic() - self._down_since
            return max(self._longest, pending)

    def longest_span(self) -> tuple[float, float]:
        """When the longest stretch began and ended (time.monotonic), once it has ended."""
        with self._lock:
            return self._span

    def stop(self) -> None:
        self._running = False
        self._thread.join()
