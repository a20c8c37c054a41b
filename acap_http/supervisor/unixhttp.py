"""HTTP over a unix socket, the way dockerd's and rootlesskit's APIs are reached."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


class ApiError(OSError):
    """The API answered with an error status, or not at all."""


def call(path: Path, method: str, url: str, timeout: float, body: object = None) -> tuple[int, bytes]:
    """One request; (status, body). OSError (ApiError among them) when it cannot be had."""
    connection = UnixConnection(path, timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        connection.request(method, url, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as err:
        raise ApiError(f"{method} {url} on {path}: {err}") from err
    finally:
        connection.close()


def call_json(path: Path, method: str, url: str, timeout: float, body: object = None) -> object:
    """A request whose success answer is JSON (or empty); ApiError on a status of 300 or more."""
    status, data = call(path, method, url, timeout, body)
    if status >= 300:
        raise ApiError(f"{method} {url} on {path} answered {status}: {data[:200].decode(errors='replace')}")
    return json.loads(data) if data.strip() else None
