"""Plain-text answers as the camera gives them (message, then CR LF) and the
exception handlers raise to end a request with one."""

from __future__ import annotations

import errno
from collections.abc import Iterable
from types import MappingProxyType

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

TEXT_PLAIN = "text/plain; charset=utf-8"

# A write that failed for the disk's sake (a camera's flash fills up, or fails): 507 Insufficient
# Storage, and the fault in words; any other failure to write stays a 500.
DISK_FAULTS = MappingProxyType(
    {
        errno.ENOSPC: "no space is left on the disk",
        errno.EDQUOT: "the app user's disk quota is used up",
        errno.EROFS: "the disk is read-only",
        errno.EIO: "the disk fails (input/output error)",
    }
)


def write_failure(err: OSError, failed: str, kept: str) -> tuple[int, str]:
    """The status and the one line that answer a write that failed with ``err``: what failed,
    the disk's fault if it is one, and what is kept (a failed write changes nothing)."""
    fault = DISK_FAULTS.get(err.errno) if err.errno is not None else None
    if fault is None:
        return 500, f"{failed}; {kept}"
    return 507, f"{failed}: {fault}; {kept}"


def text_response(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(message + "\r\n", status=status, headers=list(headers), content_type=TEXT_PLAIN)


class HttpError(HTTPException):
    """Ends a request with ``status`` and a one-line plain-text ``message``.

    The app's error boundary turns it into the answer (see ``text_response``).
    """

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(description=message)
        self.status = status
        self.code = status
        self.message = message
        self.extra_headers = list(headers)
