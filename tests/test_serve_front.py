"""serve's users file (scrypt hashes, ``acap-http password``) and its front (``servers.auth``):
basic authentication, the manifest's levels, 404 elsewhere, the body limit, a body that stops
coming (408), an address refused for a while after failures (429)
The app behind is a recorder; tests/e2e/test_serve.py drives the real one through gunicorn."""

from __future__ import annotations

import base64
import io
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.wrappers import Request, Response

from acap_http import config, manifest
from acap_http.errors import SetupError
from acap_http.manifest import ACCESS_ENV, Access
from acap_http.servers import auth
from acap_http.servers.users import hash_password, password_matches, read_users_file, set_password, users_file

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PASSWORDS = {"admin": "admin-pw", "operator": "operator-pw", "viewer": "viewer-pw"}
MANIFEST = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")


def test_a_hash_is_salted_and_checks_only_its_password() -> None:
    first, second = hash_password("secret"), hash_password("secret")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert password_matches("secret", first) and password_matches("secret", second)
    assert not password_matches("Secret", first)
    assert not password_matches("secret", "md5$whatever") and not password_matches("secret", "scrypt$1$2")


def test_the_users_file_has_one_line_per_level() -> None:
    users = read_users_file(users_file(PASSWORDS))
    assert {name: user.access for name, user in users.items()} == {
        "admin": Access.ADMIN, "operator": Access.OPERATOR, "viewer": Access.VIEWER,
    }  # fmt: skip
    assert all(password_matches(PASSWORDS[name], user.hashed) for name, user in users.items())


def test_password_sets_one_user_and_the_kept_password(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(users_file(PASSWORDS))
    (tmp_path / "admin.password").write_text("admin-pw\n")
    assert set_password(users, "admin", "new-pw") == [users, tmp_path / "admin.password"]
    table = read_users_file(users.read_text())
    assert password_matches("new-pw", table["admin"].hashed) and table["admin"].access is Access.ADMIN
    assert password_matches("viewer-pw", table["viewer"].hashed)
    assert (tmp_path / "admin.password").read_text() == "new-pw\n"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert set_password(users, "viewer", "v2") == [users]  # no viewer.password kept: none made
    with pytest.raises(SetupError, match="no user root"):
        set_password(users, "root", "x")
    with pytest.raises(SetupError, match="cannot read the users file"):
        set_password(tmp_path / "missing", "admin", "x")


class Recorder:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app\r\n"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def front() -> tuple[auth.Front, Recorder, Clock]:
    recorder, clock = Recorder(), Clock()
    return auth.Front(recorder, MANIFEST, read_users_file(users_file(PASSWORDS)), clock), recorder, clock


def _call(
    front: auth.Front, path: str, user: str | None = None, password: str | None = None, *, query: str = "",
    method: str = "GET", length: str = "", address: str = "192.0.2.7", body: Any = None,
) -> tuple[str, dict[str, str], bytes]:  # fmt: skip
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method,
                               "REMOTE_ADDR": address, "CONTENT_LENGTH": length,
                               "wsgi.input": body or io.BytesIO(b"")}  # fmt: skip
    if user is not None:
        secret = password if password is not None else PASSWORDS[user]
        environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        answered.update(status=status, headers=dict(headers))

    body = b"".join(front(environ, start_response))
    return answered["status"], answered["headers"], body


TLS = "/local/dockerdwrapper/ca.pem"
PARAM = "/axis-cgi/param.cgi"


def test_no_credentials_is_a_basic_challenge(front: tuple[auth.Front, Recorder, Clock]) -> None:
    app, recorder, _ = front
    status, headers, _ = _call(app, TLS, method="POST")
    assert status.startswith("401") and headers["WWW-Authenticate"] == 'Basic realm="acap-http", charset="UTF-8"'
    assert recorder.seen == [] and app._failures == {}  # asking without credentials is not a failed attempt
    assert _call(app, TLS, "admin")[0] == "200 OK"


def test_an_admin_reaches_the_app_as_itself(front: tuple[auth.Front, Recorder, Clock]) -> None:
    app, recorder, _ = front
    assert _call(app, TLS, "admin", method="POST", length="10")[0] == "200 OK"
    (seen,) = recorder.seen
    assert (seen["REMOTE_USER"], seen[ACCESS_ENV], seen["REQUEST_URI"]) == ("admin", "admin", TLS)


@pytest.mark.parametrize(
    ("user", "path", "query", "expected"),
    [
        ("viewer", PARAM, "action=list", "200"),
        ("viewer", PARAM, "action=update&root.dockerdwrapper.UseTLS=no", "401"),
        ("operator", TLS, "", "401"),
        ("admin", PARAM, "action=update&root.dockerdwrapper.UseTLS=no", "200"),
        ("admin", "/index.html", "", "404"),
        ("admin", "/local/dockerdwrapper/../../etc/passwd", "", "404"),
        (None, "/local/dockerdwrapper/other.pem", "", "404"),
    ],
)
def test_levels_follow_the_manifest(
    front: tuple[auth.Front, Recorder, Clock], user: str | None, path: str, query: str, expected: str
) -> None:
    assert _call(front[0], path, user, query=query)[0][:3] == expected


def test_a_body_over_the_limit_is_413(front: tuple[auth.Front, Recorder, Clock]) -> None:
    app, recorder, _ = front
    assert _call(app, TLS, "admin", method="POST", length=str(auth.MAX_BODY + 1))[0].startswith("413")
    assert _call(app, TLS, "admin", method="POST", length="-1")[0].startswith("413")
    assert recorder.seen == []


def test_after_failures_the_address_is_refused_for_a_while(
    front: tuple[auth.Front, Recorder, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """Each failure refuses its address (429, even the right password, no check) for 0.5 s, doubled
    up to 8 s; no thread waits; other addresses go on; the right password clears the count."""
    app, recorder, clock = front
    for refused in (0.5, 1.0, 2.0, 4.0, 8.0, 8.0):
        assert _call(app, TLS, "admin", "wrong")[0].startswith("401")
        clock.now += refused - 0.25
        status, headers, _ = _call(app, TLS, "admin")
        assert (status, headers["Retry-After"]) == ("429 Too Many Requests", "1")
        assert _call(app, TLS, "viewer", address="192.0.2.8")[0].startswith("401")  # another address goes on
        clock.now += 0.25
    assert "refusing it for 8.0 s" in caplog.text
    _call(app, TLS, "admin\r\nINFO forged", "wrong", address="192.0.2.9")
    assert "'admin\\r\\nINFO forged'" in caplog.text and "\r\nINFO forged" not in caplog.text
    assert _call(app, TLS, "admin")[0] == "200 OK"  # the right password, once allowed, clears the count
    assert _call(app, TLS, "admin", "wrong")[0].startswith("401")
    clock.now += 0.5
    assert _call(app, TLS, "admin")[0] == "200 OK" and len(recorder.seen) == 2


def test_endless_failures_stay_refusals(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """Thousands of failures in a row: still 401, then 429 for 8 s (the doubling stops, never overflows)."""
    app, _, clock = front
    for _ in range(1100):
        assert _call(app, TLS, "nobody", "guess")[0].startswith("401")
        assert _call(app, TLS, "nobody", "guess")[0].startswith("429")
        clock.now += 8.0


class _Body:
    """A body that comes, read() only, as gunicorn's."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


class _Stalled(io.RawIOBase):
    """A request body that stops coming: the socket's read times out."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise TimeoutError("timed out")


class _StalledBody:
    """The same, read as gunicorn's request body is: read() only."""

    def read(self, size: int = -1) -> bytes:
        raise TimeoutError("timed out")


@pytest.mark.parametrize("stalled", [_Stalled, _StalledBody])
def test_a_body_that_stops_coming_is_408(stalled: type) -> None:
    """werkzeug calls a timed-out body a disconnection (400); the front answers 408, as Apache does."""

    @Request.application
    def reads(request: Request) -> Response:
        return Response(f"read {len(request.get_data())}")

    app = auth.Front(reads, MANIFEST, read_users_file(users_file(PASSWORDS)))
    status, _, body = _call(app, TLS, "admin", method="POST", length="500", body=stalled())
    assert (status, body) == ("408 Request Timeout", b"The request body did not come in time\r\n")
    assert _call(app, TLS, "admin", method="POST", length="5", body=_Body(b"hello")) == (
        "200 OK", {"Content-Type": "text/plain; charset=utf-8", "Content-Length": "6"}, b"read 5")  # fmt: skip


def test_failures_remember_a_bounded_number_of_addresses(
    front: tuple[auth.Front, Recorder, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TRACKED_ADDRESSES", 8)
    app = front[0]
    for index in range(20):
        _call(app, TLS, "admin", "wrong", address=f"2001:db8::{index}")
    assert len(app._failures) <= 8
