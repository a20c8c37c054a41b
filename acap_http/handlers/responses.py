"""Plain-text answers as the camera gives them (message, then CR LF) and the
exception handlers raise to end a request with one."""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

TEXT_PLAIN = "text/plain; charset=utf-8"


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
