"""The front of ``serve``, as WSGI middleware: what Apache does for ``up``. HTTP basic
authentication (over TLS) against the scrypt users file, each location's access level from
the manifest (param.cgi: any user lists, an update in the URL needs admin), 404 for every
other path, the user and level passed on to the app, a body over 1 MiB refused (413) and
one that stops coming answered 408 (serve's sockets time out), failed attempts logged and
slowed."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from acap_http.escape import printable
from acap_http.handlers.param_cgi import PARAM_CGI_PATH
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.servers.users import HashedUser, password_matches

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

REALM = "acap-http"
MAX_BODY = 1024 * 1024  # as the Apache front's LimitRequestBody
FAILURE_DELAY, FAILURE_DELAY_CAP = 0.5, 8.0  # doubled for each recent failure from the same address
FORGET_FAILURES = 300.0
TRACKED_ADDRESSES = 4096  # beyond that, the addresses that failed longest ago are forgotten


class Front:
    """Wraps the app: only authenticated requests that may reach a location reach it."""

    def __init__(self, app: WSGIApplication, manifest: Manifest, users: dict[str, HashedUser]) -> None:
        self._app = app
        self._users = users
        self._levels = {manifest.endpoint_path(endpoint): endpoint.access for endpoint in manifest.endpoints}
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, bytes], float] = {}  # (user, sha256 of password) -> when
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (count, last)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        needed = self._needed(path, environ.get("QUERY_STRING", ""))
        if needed is None:
            return _answer(start_response, "404 Not Found", "Not found")
        user = self._authenticate(environ)
        if user is None:
            return _answer(
                start_response, "401 Unauthorized", "Authentication required",
                [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')],
            )  # fmt: skip
        if user.access < needed:
            logger.warning("Refused %s %s to %s: needs %s", environ.get("REQUEST_METHOD"), printable(path),
                           printable(user.name), needed.word)  # fmt: skip
            return _answer(start_response, "401 Unauthorized", f"This needs the {needed.word} level",
                           [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')])  # fmt: skip
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return _answer(start_response, "413 Request Entity Too Large", "Request body too large")
        environ["REMOTE_USER"], environ["AUTH_TYPE"] = user.name, "Basic"
        environ[ACCESS_ENV] = user.access.word
        query = environ.get("QUERY_STRING", "")
        environ["REQUEST_URI"] = path + (f"?{query}" if query else "")
        try:
            return self._app(environ, start_response)
        except TimeoutError:
            return _answer(start_response, "408 Request Timeout", "The request body did not come in time")

    def _needed(self, path: str, query: str) -> Access | None:
        if path == PARAM_CGI_PATH:
            update = "action=update" in query.split("&")
            return Access.ADMIN if update else Access.VIEWER
        return self._levels.get(path)

    def _authenticate(self, environ: WSGIEnvironment) -> HashedUser | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header[:6].lower() != "basic ":
            return None
        address = environ.get("REMOTE_ADDR", "")
        try:
            name, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except ValueError:
            name, password = "", ""
        user = self._users.get(name)
        token = (name, hashlib.sha256(password.encode()).digest())
        with self._lock:
            known = token in self._verified
        if user is not None and (known or password_matches(password, user.hashed)):
            with self._lock:
                self._verified[token] = time.monotonic()
                self._failures.pop(address, None)
            return user
        self._failed(address, name)
        return None

    def _failed(self, address: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            count, last = self._failures.get(address, (0, now))
            count = 1 if now - last > FORGET_FAILURES else count + 1
            self._failures[address] = (count, now)
            if len(self._failures) > TRACKED_ADDRESSES:
                by_age = sorted(self._failures, key=lambda known: self._failures[known][1])
                for forgotten in by_age[: len(by_age) // 2]:
                    del self._failures[forgotten]
        delay = min(FAILURE_DELAY * 2 ** (count - 1), FAILURE_DELAY_CAP)
        logger.warning("Failed login as '%s' from %s (%d in a row); answering in %.1f s", printable(name),
                       printable(address), count, delay)  # fmt: skip
        time.sleep(delay)


def _answer(
    start_response: StartResponse, status: str, message: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    body = (message + "\r\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            *(headers or [])])  # fmt: skip
    return [body]
