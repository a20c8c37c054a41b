"""The front of ``serve``, as WSGI middleware: what Apache does for ``up``. HTTP basic
authentication (over TLS) against the scrypt users file, each request's level from the access
table (``access.rules``: the manifest's endpoints and the camera's; the query read as the app
reads it, so that an escaped ``action=%75pdate`` is an update), 404 for every other path, the
user and level passed on to the app, a body over 1 MiB refused (413) and one that stops coming
answered 408 (serve's sockets time out). Failed logins are logged and throttled per user and
per source (``throttle``): a throttled attempt is refused (429) without its password being
checked, and without holding a thread."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import Authorization

from acap_http import access, config
from acap_http.escape import printable
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.metrics import METRICS
from acap_http.servers import peers
from acap_http.servers.throttle import LoginThrottle, Ticket, retry_after, source_key
from acap_http.servers.users import HashedUser, hash_password, password_matches

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

REALM, MAX_BODY = config.REALM, config.FRONT_MAX_BODY  # as the Apache front's
CHALLENGE = [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]
Refusal = tuple[str, str, list[tuple[str, str]]]  # status, message, headers
QUIET_FOR = 60.0  # seconds between two lines about refused logins from one source
VERIFIED_KEPT = 64  # credentials checked right, kept (hashed) so that each request costs no scrypt


class Front:
    """Wraps the app: only authenticated requests that may reach a location reach it."""

    def __init__(
        self, app: WSGIApplication, manifest: Manifest, users: dict[str, HashedUser], *,
        clock: Callable[[], float] = time.monotonic, own_addresses: frozenset[str] | None = None,
        local_uid: Callable[[peers.Endpoint, peers.Endpoint], int | None] = peers.local_uid,
    ) -> None:  # fmt: skip
        self._app = app
        self._users = users
        self._table = access.rules(manifest)
        self._home = manifest.local_prefix if manifest.setting_page else None  # where "/" sends a browser
        # /metrics, where Prometheus looks by default: the application's metrics endpoint, at its level.
        has_metrics = any(endpoint.name == METRICS for endpoint in manifest.endpoints)
        self._aliases = {"/metrics": manifest.local_prefix + METRICS} if has_metrics else {}
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()  # (user, sha256 of password)
        self._throttle = LoginThrottle(frozenset(users), clock)
        self._own = peers.own_addresses() if own_addresses is None else own_addresses
        self._local_uid = local_uid
        self._refusals_said: OrderedDict[str, tuple[float, int]] = OrderedDict()  # source -> (when said, held)
        # What an unknown user's password is checked against: the same scrypt, the same time.
        self._decoy = hash_password("no such user")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        alias = self._aliases.get(environ.get("PATH_INFO", ""))
        if alias is not None:
            environ["PATH_INFO"] = alias
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

    def _refusal(self, environ: WSGIEnvironment) -> Refusal | None:
        """Why the request does not reach the app (status, message, headers); None: it does, as its user."""
        path = environ.get("PATH_INFO", "")
        if self._home is not None and path in ("/", self._home.rstrip("/")):
            return "302 Found", f"The settings page is at {self._home}", [("Location", self._home)]
        needed = self._needed(path, environ)
        if needed is None:
            return "404 Not Found", "Not found", []
        user = self._login(environ)
        if not isinstance(user, HashedUser):
            return user
        if user.access < needed:
            logger.warning("Refused %s %s to %s: needs %s", environ.get("REQUEST_METHOD"), printable(path),
                           printable(user.name), needed.word)  # fmt: skip
            return "401 Unauthorized", f"This needs the {needed.word} level", CHALLENGE
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return "413 Request Entity Too Large", "Request body too large", []
        environ["REMOTE_USER"], environ["AUTH_TYPE"] = user.name, "Basic"
        environ[ACCESS_ENV] = user.access.word
        query = environ.get("QUERY_STRING", "")
        environ["REQUEST_URI"] = path + (f"?{query}" if query else "")
        return None

    def _login(self, environ: WSGIEnvironment) -> HashedUser | Refusal:
        """The user the request's credentials name, checked if the throttle admits it; else the refusal."""
        credentials = _basic(environ.get("HTTP_AUTHORIZATION", ""))
        if credentials is None:
            return "401 Unauthorized", "Authentication required", CHALLENGE
        name, password = credentials
        source = self._source(environ)
        admitted = self._throttle.admit(name, source)
        if not isinstance(admitted, Ticket):
            self._say_refused(name, source, admitted)
            return "429 Too Many Requests", "Too many failed logins; try again later", [
                ("Retry-After", retry_after(admitted))]  # fmt: skip
        user = self._authenticate(name, password)
        self._throttle.checked(admitted, right=user is not None)
        if user is None:
            logger.warning("Failed login as '%s' from %s", _shown(name), printable(source))
            return "401 Unauthorized", "Authentication required", CHALLENGE
        return user

    def _needed(self, path: str, environ: WSGIEnvironment) -> Access | None:
        """The level the access table asks of this request; None: no such path here."""
        rule = access.rule_for(self._table, path)
        if rule is None:
            return None
        return rule.needed(
            environ.get("REQUEST_METHOD", "GET"), access.query_arguments(environ.get("QUERY_STRING", ""))
        )

    def _source(self, environ: WSGIEnvironment) -> str:
        """Whom failures are counted against: the address (an IPv6 /64), or a local user of this host."""
        client, server = _endpoints(environ)
        uid = self._local_uid(client, server) if peers.is_local(client[0], self._own) else None
        return source_key(client[0], uid)

    def _say_refused(self, name: str, source: str, wait: float) -> None:
        """A refusal costs no check, so a client could write these as fast as it sends: one line a
        minute a source, with the count of those it stands for."""
        now = time.monotonic()
        with self._lock:
            last, held = self._refusals_said.get(source, (0.0, 0))
            if now - last < QUIET_FOR:
                self._refusals_said[source] = (last, held + 1)
                return
            self._refusals_said[source] = (now, 0)
            self._refusals_said.move_to_end(source)
            while len(self._refusals_said) > VERIFIED_KEPT * 64:
                self._refusals_said.popitem(last=False)
        more = f" ({held} more refusals from there in the last minute)" if held else ""
        logger.warning("Refused a login as '%s' from %s unchecked: too many failed guesses; retry in %s s%s",
                       _shown(name), printable(source), retry_after(wait), more)  # fmt: skip

    def _authenticate(self, name: str, password: str) -> HashedUser | None:
        """The user whose password this is, or None; as long for an unknown name as for a known one."""
        user = self._users.get(name)
        token = (name, hashlib.sha256(password.encode("utf-8", "surrogateescape")).digest())
        with self._lock:
            known = token in self._verified
        if user is None:
            _check(password, self._decoy)
            return None
        if not known and not _check(password, user.hashed):
            return None
        with self._lock:
            self._verified[token] = None
            self._verified.move_to_end(token)
            while len(self._verified) > VERIFIED_KEPT:
                self._verified.popitem(last=False)
        return user


def _endpoints(environ: WSGIEnvironment) -> tuple[peers.Endpoint, peers.Endpoint]:
    """(client, server) of the request's connection: its socket's own words under gunicorn."""
    connection: Any = environ.get("gunicorn.socket")
    try:
        client, server = connection.getpeername(), connection.getsockname()
        return (str(client[0]), int(client[1])), (str(server[0]), int(server[1]))
    except (AttributeError, OSError, IndexError, ValueError):
        try:
            port = int(environ.get("REMOTE_PORT", 0))
        except ValueError:
            port = 0
        return (str(environ.get("REMOTE_ADDR", "")), port), ("", int(environ.get("SERVER_PORT") or 0))


def _shown(name: str) -> str:
    """A client's user name for the log: escaped, and at most 64 characters of it."""
    return printable(name[:64]) + ("…" if len(name) > 64 else "")


def _basic(header: str) -> tuple[str, str] | None:
    """(name, password) of a Basic Authorization header (werkzeug's parser, as the application's),
    or None when there is none or it is unreadable."""
    parsed = Authorization.from_header(header)
    if parsed is None or parsed.type != "basic":
        return None
    return parsed.username or "", parsed.password or ""


# scrypt takes 16 MiB a check: two at a time (there are two cores to run them), and glibc is
# asked to give the memory back after each; kept, a burst of failures grew the worker by
# hundreds of MiB for good, as each thread left its 16 MiB in an arena of its own.
_CHECKS = threading.BoundedSemaphore(2)
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)


def _check(password: str, hashed: str) -> bool:
    """Whether ``password`` is the one of ``hashed`` (scrypt, about 40 ms)."""
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
