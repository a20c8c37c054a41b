"""Does dockerd answer? ``GET /_ping`` over the unix socket when there is one,
else over TCP: plain, or for TLS a completed handshake (dockerd then wants a
client certificate, which the app does not hold)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from pathlib import Path

from acap_http.supervisor.command import Host
from acap_http.supervisor.settings import Settings

# Short: under rootlesskit a connection is accepted before dockerd listens and then
# hangs, so a long wait would only delay the next, answered, try.
TIMEOUT = 0.25


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(str(self._path))


def tcp_address(host: Host) -> str:
    """Where to reach dockerd's TCP socket from this host."""
    return "127.0.0.1" if host.address in ("0.0.0.0", "") else host.address


def answers(settings: Settings, host: Host) -> bool:
    try:
        if settings.ipc_socket:
            return _ping(_UnixConnection(host.ipc_socket))
        if settings.use_tls:
            return _tls_handshake(tcp_address(host), settings.port)
        return _ping(http.client.HTTPConnection(tcp_address(host), settings.port, timeout=TIMEOUT))
    except (OSError, http.client.HTTPException):
        return False


def _ping(connection: http.client.HTTPConnection) -> bool:
    try:
        connection.request("GET", "/_ping")
        response = connection.getresponse()
        return response.status == 200 and response.read() == b"OK"
    finally:
        connection.close()


def _tls_handshake(address: str, port: int) -> bool:
    # Only liveness is asked here: whether the files make a set clients can
    # verify is a matter for the operator's docker CLI, not for Status.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), TIMEOUT) as raw,
        contextlib.closing(context.wrap_socket(raw)) as tls,
    ):
        return tls.version() is not None
