"""The front of ``serve``, as WSGI middleware: what Apache does for ``up``. HTTP basic
authentication (over TLS) against the scrypt users file, each location's access level from
the manifest (param.cgi: any user lists, an update in the URL needs admin), 404 for every
other path, the user and level passed on to the app, a body over 1 MiB refused (413) and
one that stops coming answered 408 (serve's sockets time out), failed attempts logged and
slowed: after a failure, the address is refused (429) for a while, without holding a thread."""

from __future__ import annotations

import base64
import ctypes
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from acap_http.escape import printable
from acap_http.handlers.param_cgi import PARAM_CGI_PATH
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.servers.users import HashedUser, password_matches

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

REALM = "acap-http"
MAX_BODY = 1024 * 1024  # as the Apache front's LimitRequestBody
# After a failure, the address is refused for 0.5 s, doubled for each further one, up to 8 s.
FAILURE_DELAY, FAILURE_DELAY_STEPS = 0.5, 5
FORGET_FAILURES = 300.0
TRACKED_ADDRESSES = 4096  # beyond that, the addresses that failed longest ago are forgotten


class Front:
    """Wraps the app: only authenticated requests that may reach a location reach it."""

    def __init__(
        self, app: WSGIApplication, manifest: Manifest, users: dict[str, HashedUser],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._app = app
        self._clock = clock
        self._users = users
        self._levels = {manifest.endpoint_path(endpoint): endpoint.access for endpoint in manifest.endpoints}
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, bytes], float] = {}  # (user, sha256 of password) -> when
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (count, last)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refusal = self._refusal(environ)
        if refusal is not None:
            return _answer(start_response, *refusal)
        body = _TimedInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        answered: list[tuple[str, list[tuple[str, str]]]] = []

        def held(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], object]:
            answered[:] = [(status, headers)]
            return lambda data: None  # the app's answers are returned, never written

        chunks = self._app(environ, held)
        try:
            content = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        if body.timed_out:  # werkzeug calls it a disconnection (400); it is a body that stopped coming
            return _answer(start_response, "408 Request Timeout", "The request body did not come in time")
        start_response(*answered[0])
        return [content]

    def _refusal(self, environ: WSGIEnvironment) -> tuple[str, str, list[tuple[str, str]]] | None:
        """Why the request does not reach the app (status, message, headers); None: it does, as its user."""
        path = environ.get("PATH_INFO", "")
        needed = self._needed(path, environ.get("QUERY_STRING", ""))
        if needed is None:
            return "404 Not Found", "Not found", []
        address = environ.get("REMOTE_ADDR", "")
        wait = self._refused_for(address)
        if wait > 0:
            return "429 Too Many Requests", "Too many failed logins from this address", [
                ("Retry-After", str(math.ceil(wait)))]  # fmt: skip
        challenge = [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]
        user = self._authenticate(environ, address)
        if user is None:
            return "401 Unauthorized", "Authentication required", challenge
        if user.access < needed:
            logger.warning("Refused %s %s to %s: needs %s", environ.get("REQUEST_METHOD"), printable(path),
                           printable(user.name), needed.word)  # fmt: skip
            return "401 Unauthorized", f"This needs the {needed.word} level", challenge
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return "413 Request Entity Too Large", "Request body too large", []
        environ["REMOTE_USER"], environ["AUTH_TYPE"] = user.name, "Basic"
        environ[ACCESS_ENV] = user.access.word
        query = environ.get("QUERY_STRING", "")
        environ["REQUEST_URI"] = path + (f"?{query}" if query else "")
        return None

    def _needed(self, path: str, query: str) -> Access | None:
        if path == PARAM_CGI_PATH:
            update = "action=update" in query.split("&")
            return Access.ADMIN if update else Access.VIEWER
        return self._levels.get(path)

    def _refused_for(self, address: str) -> float:
        """Seconds this address is still refused for after its last failure (0: not refused)."""
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
        return last + _delay(count) - self._clock() if count else 0.0

    def _authenticate(self, environ: WSGIEnvironment, address: str) -> HashedUser | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header[:6].lower() != "basic ":
            return None
        try:
            name, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except ValueError:
            name, password = "", ""
        user = self._users.get(name)
        token = (name, hashlib.sha256(password.encode()).digest())
        with self._lock:
            known = token in self._verified
        if user is not None and (known or _check(password, user.hashed)):
            with self._lock:
                self._verified[token] = self._clock()
                self._failures.pop(address, None)
            return user
        self._failed(address, name)
        return None

    def _failed(self, address: str, name: str) -> None:
        now = self._clock()
        with self._lock:
            count, last = self._failures.get(address, (0, now))
            count = 1 if now - last > FORGET_FAILURES else count + 1
            self._failures[address] = (count, now)
            if len(self._failures) > TRACKED_ADDRESSES:
                by_age = sorted(self._failures, key=lambda known: self._failures[known][1])
                for forgotten in by_age[: len(by_age) // 2]:
                    del self._failures[forgotten]
        logger.warning("Failed login as '%s' from %s (%d in a row); refusing it for %.1f s", printable(name),
                       printable(address), count, _delay(count))  # fmt: skip


def _delay(count: int) -> float:
    return float(FAILURE_DELAY * 2 ** (min(count, FAILURE_DELAY_STEPS) - 1))


# scrypt takes 16 MiB a check: two at a time (there are two cores to run them), and glibc is
# asked to give the memory back after each; kept, a burst of failures grew the worker by
# hundreds of MiB for good, as each thread left its 16 MiB in an arena of its own.
_CHECKS = threading.BoundedSemaphore(2)
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)


def _check(password: str, hashed: str) -> bool:
    with _CHECKS:
        try:
            return password_matches(password, hashed)
        finally:
            if _malloc_trim is not None:
                _malloc_trim(0)


class _TimedInput:
    """The request body, noting whether a read timed out (serve's sockets do after 10 s)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.timed_out = False

    def read(self, size: int = -1) -> bytes:
        return bytes(self._noted(self._stream.read, size))

    def readline(self, size: int = -1) -> bytes:
        return bytes(self._noted(self._stream.readline, size))

    def readinto(self, buffer: Any) -> Any:
        reader = getattr(self._stream, "readinto", None)  # gunicorn's body has none
        if reader is None:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        return self._noted(reader, buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _noted(self, method: Callable[[Any], Any], argument: Any) -> Any:
        try:
            return method(argument)
        except TimeoutError:
            self.timed_out = True
            raise


def _answer(
    start_response: StartResponse, status: str, message: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    body = (message + "\r\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            *(headers or [])])  # fmt: skip
    return [body]
