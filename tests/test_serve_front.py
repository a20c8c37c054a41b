"""serve's users file (scrypt hashes, ``acap-http password``) and its front (``servers.auth``):
basic authentication, the manifest's levels, 404 elsewhere, the body limit, a body that stops
coming (408), and failed guesses throttled per user and per source (429, unchecked)
The app behind is a recorder; tests/e2e/test_serve.py drives the real one through gunicorn."""

from __future__ import annotations

import base64
import contextlib
import io
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.wrappers import Request, Response

from acap_http import config, manifest
from acap_http.errors import SetupError
from acap_http.manifest import ACCESS_ENV, Access
from acap_http.servers import auth, throttle
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


LOCAL_UIDS: dict[int, int] = {}  # a local client's port -> the uid whose socket it is


@pytest.fixture
def front() -> tuple[auth.Front, Recorder, Clock]:
    recorder, clock = Recorder(), Clock()
    app = auth.Front(recorder, MANIFEST, read_users_file(users_file(PASSWORDS)), clock=clock,
                     own_addresses=frozenset({"127.0.0.1"}),
                     local_uid=lambda client, server: LOCAL_UIDS.get(client[1]))  # fmt: skip
    return app, recorder, clock


def _call(
    front: auth.Front, path: str, user: str | None = None, password: str | None = None, *, query: str = "",
    method: str = "GET", length: str = "", address: str = "192.0.2.7", body: Any = None, port: int = 40000,
) -> tuple[str, dict[str, str], bytes]:  # fmt: skip
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method,
                               "REMOTE_ADDR": address, "REMOTE_PORT": str(port), "SERVER_PORT": "8443",
                               "CONTENT_LENGTH": length, "wsgi.input": body or io.BytesIO(b"")}  # fmt: skip
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
    for _ in range(50):  # asking without credentials is no failed guess
        assert _call(app, TLS, method="POST")[0].startswith("401")
    assert recorder.seen == []
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


@pytest.mark.parametrize(
    ("user", "asked", "query", "expected"),
    [
        ("viewer", "GET /axis-cgi/applications/list.cgi", "", "401"),
        ("operator", "POST /axis-cgi/applications/list.cgi", "", "401"),
        ("admin", "POST /axis-cgi/applications/list.cgi", "", "200"),
        ("operator", "GET /axis-cgi/applications/control.cgi", "action=stop&package=dockerdwrapper", "401"),
        ("admin", "GET /axis-cgi/applications/control.cgi", "action=stop&package=dockerdwrapper", "200"),
        ("viewer", "POST /axis-cgi/apidiscovery.cgi", "", "200"),
        ("viewer", "POST /axis-cgi/basicdeviceinfo.cgi", "", "200"),
        ("viewer", "GET /config/rest/param/v2beta/dockerdwrapper", "", "200"),
        ("viewer", "GET /config/rest/param/v2beta", "", "200"),
        ("viewer", "PATCH /config/rest/param/v2beta/dockerdwrapper", "", "401"),
        ("operator", "PUT /config/rest/param/v2beta/dockerdwrapper/UseTLS", "", "401"),
        ("admin", "PATCH /config/rest/param/v2beta/dockerdwrapper", "", "200"),
        ("viewer", "GET /config/discover/apis", "", "200"),
        ("admin", "GET /config/rest/param/v2betaX", "", "404"),
        ("admin", "GET /config/rest/time/v2", "", "404"),
        ("admin", "GET /axis-cgi/systemready.cgi", "", "404"),
        # The query as the app reads it: escapes decoded, the first of a repeated name.
        ("viewer", "GET " + PARAM, "action=upd%61te&root.dockerdwrapper.UseTLS=no", "401"),
        ("viewer", "GET " + PARAM, "action=update&action=list&root.dockerdwrapper.UseTLS=no", "401"),
        ("viewer", "GET " + PARAM, "action=list&action=update", "200"),
    ],
)
def test_the_cameras_endpoints_follow_the_access_table(
    front: tuple[auth.Front, Recorder, Clock], user: str, asked: str, query: str, expected: str
) -> None:
    method, path = asked.split(" ", 1)
    assert _call(front[0], path, user, query=query, method=method)[0][:3] == expected


def test_a_body_over_the_limit_is_413(front: tuple[auth.Front, Recorder, Clock]) -> None:
    app, recorder, _ = front
    assert _call(app, TLS, "admin", method="POST", length=str(auth.MAX_BODY + 1))[0].startswith("413")
    assert _call(app, TLS, "admin", method="POST", length="-1")[0].startswith("413")
    assert recorder.seen == []


def test_guesses_at_one_user_are_bounded_whatever_the_sources(
    front: tuple[auth.Front, Recorder, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 guesses at the admin's password, each from another address of one IPv6 /64, then from
    10,000 other /64s: 10 are checked at once, then one a minute; the table of sources forgetting
    the first ones (it keeps 4,096) gives none back. Refused ones are 429 with Retry-After, unchecked."""
    app, _, clock = front
    checks = _counting_checks(monkeypatch)
    answers = [_call(app, TLS, "admin", "guess", address=f"2001:db8::{index:x}")[0][:3] for index in range(10_000)]
    assert answers.count("401") == 10 and answers.count("429") == 9_990 and len(checks) == 10
    answers = [_call(app, TLS, "admin", "guess", address=f"2001:db8:{index:x}::1")[0][:3] for index in range(10_000)]
    assert answers.count("401") == 0 and len(checks) == 10
    status, headers, _ = _call(app, TLS, "admin", "guess", address="198.51.100.1")
    assert (status, headers["Retry-After"]) == ("429 Too Many Requests", "60")
    clock.now += 3600
    checked = 0
    for _ in range(60):  # an hour later: the 10 again, then one a minute
        clock.now += 60
        checked += sum(
            _call(app, TLS, "admin", "guess", address="198.51.100.2")[0].startswith("401") for _ in range(20)
        )
    assert checked == 10 + 59 and throttle.USER.per_hour() == 70


def test_an_attacker_beside_the_admin_does_not_keep_him_out(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """A rootless container (the app's user, uid 997, reaching the host's 127.0.0.1 through slirp4netns)
    guessing the admin's password once a second for 10 minutes (the old front refused the admin 600 of
    600 s): the admin on the host (uid 0), and the admin at an address he logged in from before, get in
    at every try. Only the container's own guesses are refused."""
    app, _, clock = front
    LOCAL_UIDS.update({40001: 997, 40002: 0})
    assert _call(app, TLS, "admin", address="203.0.113.5")[0] == "200 OK"  # logged in from there once
    refused = {"container": 0, "admin on the host": 0, "admin elsewhere": 0}
    for second in range(600):
        clock.now += 1
        refused["container"] += _call(app, TLS, "admin", "guess", address="127.0.0.1", port=40001)[0][:3] == "429"
        if second % 10 == 0:
            refused["admin on the host"] += _call(app, TLS, "admin", address="127.0.0.1", port=40002)[0] != "200 OK"
            refused["admin elsewhere"] += _call(app, TLS, "admin", address="203.0.113.5")[0] != "200 OK"
    assert refused["admin on the host"] == 0 and refused["admin elsewhere"] == 0
    assert refused["container"] >= 600 - 20 - 10  # its source's bucket: 20, then one per 10 s


def test_another_users_success_lends_no_guesses(front: tuple[auth.Front, Recorder, Clock],
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A viewer's good login between guesses at the admin's password, from the same address: it cleared
    the address's failures, 120 guesses a minute; now the admin's bucket counts on: 10, then one a minute."""
    app, _, clock = front
    checks = _counting_checks(monkeypatch)
    for _ in range(120):
        clock.now += 0.5
        assert _call(app, PARAM, "viewer", query="action=list")[0] == "200 OK"
        _call(app, TLS, "admin", "guess")
    assert 10 <= checks.count("guess") <= 10 + 1  # 60 s: the burst of 10, and at most one refilled


def test_parallel_guesses_are_counted_before_they_are_checked(
    front: tuple[auth.Front, Recorder, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 wrong logins at once, each check slow: the token is taken before the check, so 10 are checked
    and 6 refused (the old front checked all 16, then recorded the failures)."""
    app = front[0]
    started, release, checks = threading.Barrier(11, timeout=10), threading.Event(), []

    def slow(password: str, hashed: str) -> bool:
        checks.append(password)
        with contextlib.suppress(threading.BrokenBarrierError):
            started.wait()
        release.wait(10)
        return False

    monkeypatch.setattr(auth, "_check", slow)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(_call(app, TLS, "admin", "guess")[0][:3]))
               for _ in range(16)]  # fmt: skip
    for thread in threads:
        thread.start()
    started.wait()  # ten checks are under way; the other six were refused meanwhile
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == ["401"] * 10 + ["429"] * 6 and len(checks) == 10


def test_an_unknown_user_costs_the_same_check(
    front: tuple[auth.Front, Recorder, Clock], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A name that is no user's is checked against a decoy hash with the same scrypt: one check, as for
    a known user with a wrong password (41 ms against 0.01 ms told the names apart). Names are escaped."""
    app = front[0]
    checks = _counting_checks(monkeypatch)
    assert _call(app, TLS, "admin", "wrong")[0].startswith("401")
    assert _call(app, TLS, "nosuchuser", "wrong")[0].startswith("401")
    assert len(checks) == 2
    _call(app, TLS, "admin\r\nINFO forged", "wrong", address="192.0.2.9")
    assert "'admin\\r\\nINFO forged'" in caplog.text and "\r\nINFO forged" not in caplog.text


def _counting_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The password of every scrypt check from now on."""
    checks: list[str] = []
    real = auth._check

    def counted(password: str, hashed: str) -> bool:
        checks.append(password)
        return real(password, hashed)

    monkeypatch.setattr(auth, "_check", counted)
    return checks


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


def test_names_are_not_told_apart_by_the_answers(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """A name that is no user's is throttled as a user's is, bucket for bucket: the same answers, in the
    same order (a shared bucket for unknown names answered 429 at once and told real names apart)."""
    app = front[0]
    answers = {name: [_call(app, TLS, name, "guess", address=f"198.51.100.{index}")[0][:3] for index in range(1, 14)]
               for name in ("operator", "nosuchuser", "other-nobody")}  # fmt: skip
    assert answers["operator"] == answers["nosuchuser"] == answers["other-nobody"] == ["401"] * 10 + ["429"] * 3


def test_root_on_the_host_is_never_locked_out_even_after_a_restart(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """Trust is kept in memory: a restart forgets where the admin logged in from. Root on the host has a
    bucket of its own regardless, which an attacker elsewhere keeping the admin's bucket empty cannot spend."""
    app, _, clock = front
    LOCAL_UIDS[40003] = 0
    for _ in range(30):
        clock.now += 1
        _call(app, TLS, "admin", "guess", address="203.0.113.77")
    assert _call(app, TLS, "admin", address="203.0.113.78")[0].startswith("429")  # a new source waits
    assert _call(app, TLS, "admin", address="127.0.0.1", port=40003)[0] == "200 OK"


def test_the_root_sends_a_browser_to_the_settings_page(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """``/`` answers a redirect to the manifest's settings page, without asking who it is; the page
    itself needs a user, as every other path."""
    app, recorder, _ = front
    status, headers, _ = _call(app, "/")
    assert (status, headers["Location"]) == ("302 Found", "/local/dockerdwrapper/")
    assert _call(app, "/local/dockerdwrapper")[1]["Location"] == "/local/dockerdwrapper/"
    assert _call(app, "/local/dockerdwrapper/")[0].startswith("401")
    assert _call(app, "/local/dockerdwrapper/", "viewer")[0] == "200 OK"
    assert _call(app, "/index.html", "admin")[0].startswith("404")
    assert [seen["PATH_INFO"] for seen in recorder.seen] == ["/local/dockerdwrapper/"]


def test_metrics_is_the_applications_metrics_at_the_viewer_level(front: tuple[auth.Front, Recorder, Clock]) -> None:
    """/metrics, where Prometheus looks by default, reaches the application's metrics endpoint as a viewer."""
    app, recorder, _ = front
    assert _call(app, "/metrics")[0].startswith("401")
    assert _call(app, "/metrics", "viewer")[0] == "200 OK"
    assert _call(app, "/local/dockerdwrapper/metrics", "viewer")[0] == "200 OK"
    assert [seen["REQUEST_URI"] for seen in recorder.seen] == ["/local/dockerdwrapper/metrics"] * 2
    assert _call(app, "/metrics/", "viewer")[0].startswith("404")
