"""A FastCGI client of the smallest kind, to talk to ``acap-http run``'s socket as a web
server does, when a test has no web server in front of it."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

VERSION, BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 1, 3, 4, 5, 6
RESPONDER, REQUEST_ID = 1, 1


def _record(kind: int, content: bytes) -> bytes:
    return struct.pack(">BBHHBx", VERSION, kind, REQUEST_ID, len(content), 0) + content


def _pair(name: str, value: str) -> bytes:
    def length(text: bytes) -> bytes:
        return bytes([len(text)]) if len(text) < 128 else struct.pack(">I", len(text) | 0x80000000)

    key, data = name.encode(), value.encode()
    return length(key) + length(data) + key + data


def fastcgi_request(path: Path, environ: dict[str, str], body: bytes = b"", timeout: float = 30) -> bytes:
    """One request; returns what the application wrote (headers and body)."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(timeout)
        connection.connect(str(path))
        params = b"".join(_pair(name, value) for name, value in environ.items())
        connection.sendall(
            _record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0))
            + _record(PARAMS, params)
            + _record(PARAMS, b"")
            + (_record(STDIN, body) if body else b"")
            + _record(STDIN, b"")
        )
        output = b""
        buffered = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return output
            buffered += chunk
            while len(buffered) >= 8:
                _, kind, _, length, padding = struct.unpack(">BBHHB", buffered[:7])
                if len(buffered) < 8 + length + padding:
                    break
                content, buffered = buffered[8 : 8 + length], buffered[8 + length + padding :]
                if kind == STDOUT:
                    output += content
                elif kind == END_REQUEST:
                    return output
