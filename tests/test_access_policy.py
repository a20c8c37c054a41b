"""One access policy: the access table (``access.rules``) built from the manifest is the only source
of every level, for Apache's configuration (``servers.apache``), serve's front (``servers.auth``)
and the application (``app``, ``handlers.param_cgi``). A level changed in a copy of the repository's
manifest is followed by all three; a query that changes something is a change to all three however
it is spelled (``action=%75pdate``)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client

from acap_http import access, config, manifest
from acap_http.app import AcapApp, Endpoints
from acap_http.errors import SetupError
from acap_http.filestore import FileStore
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.params import ParamStore
from acap_http.servers import apache, auth
from acap_http.servers.users import read_users_file, users_file
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.tls.store import TlsStore
from tests import pages

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MANIFEST = config.CHECKOUT_DIR / "manifest" / "manifest.json"
PASSWORDS = {"admin": "admin-pw", "operator": "operator-pw", "viewer": "viewer-pw"}
PREFIX = "/local/dockerdwrapper/"
CERT, SET, CA = PREFIX + "server-cert.pem", PREFIX + "tls", PREFIX + "ca.pem"
# The levels changed in the copy: a TLS file down to operator, the set (its GET) down to viewer.
CHANGED = {"server-cert.pem": "operator", "tls": "viewer"}
ESCAPED_UPDATE = "action=%75pdate&root.dockerdwrapper.UseTLS=no"


def _manifest(tmp_path: Path, levels: dict[str, str] | None = None) -> Manifest:
    """The repository's manifest, written to ``tmp_path`` with ``levels`` (name -> access) changed."""
    document = json.loads(MANIFEST.read_text(encoding="utf-8"))
    for entry in document["acapPackageConf"]["configuration"]["httpConfig"]:
        entry["access"] = (levels or {}).get(entry["name"], entry["access"])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return manifest.load(path)


# Apache: the generated configuration, read back.


@dataclass(frozen=True)
class Location:
    """One ``<Location>`` or ``<LocationMatch>`` of the generated configuration: the group it
    requires, and the group an ``<If>`` requires instead when its condition holds."""

    path: str
    group: str
    condition: str | None = None
    change_group: str | None = None
    pattern: bool = False  # a LocationMatch: ``path`` is a regular expression

    def applies(self, path: str) -> bool:
        if self.pattern:
            return re.search(self.path, path) is not None
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


def _locations(text: str) -> list[Location]:
    """The sections in the order Apache merges them (``<Location>`` and ``<LocationMatch>`` alike)."""
    found = []
    for kind, path, body in re.findall(r'<(Location|LocationMatch) "([^"]*)">\n(.*?)\n</\1>', text, re.S):
        outside = re.sub(r"<If .*?</If>", "", body, flags=re.S)
        groups = re.findall(r"Require (?:group (\w+)|valid-user)", outside)
        condition = re.search(r'<If "(.*)">\s*Require group (\w+)\s*</If>', body)
        found.append(Location(
            path, groups[-1] or "valid-user", condition and condition[1], condition and condition[2],
            pattern=kind == "LocationMatch",
        ))  # fmt: skip
    return found


def _holds(condition: str, method: str, query: str) -> bool:
    """An ``<If>`` expression of the two forms the generator writes, evaluated as Apache does (its
    variables raw: ``%{QUERY_STRING}`` undecoded)."""
    parsed = re.fullmatch(r"%\{(QUERY_STRING|REQUEST_METHOD)\} ([=!])~ /(.*)/", condition)
    assert parsed is not None, condition
    subject = query if parsed[1] == "QUERY_STRING" else method
    return (re.search(parsed[3], subject) is not None) == (parsed[2] == "=")


def _apache_needs(text: str, path: str, method: str = "GET", query: str = "") -> Access | None:
    """The level Apache's configuration asks of a request (its groups hold a level and those above);
    None: any valid user. The last section that applies decides, as Apache merges them in order."""
    location = [section for section in _locations(text) if section.applies(path)][-1]
    group = location.group
    if location.condition is not None and _holds(location.condition, method, query):
        group = location.change_group or group
    return None if group == "valid-user" else Access.parse(group)


def _config(loaded: Manifest, tmp_path: Path) -> str:
    site = apache.Site("127.0.0.1", 8080, tmp_path / "front", tmp_path / "front" / "app.sock", None)
    return apache.render_config(loaded, site)


# serve's front and the app.


class Recorder:
    """An app that answers 200 to whatever reaches it, and notes it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app\r\n"]


def _front(app: WSGIApplication, loaded: Manifest) -> auth.Front:
    return auth.Front(app, loaded, read_users_file(users_file(PASSWORDS)), own_addresses=frozenset())


def _through(front: auth.Front, user: str | None, path: str, method: str = "GET", query: str = "") -> int:
    """The status serve's front answers (its app's, where it lets the request through)."""
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method,
                               "REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "40000", "SERVER_PORT": "8443",
                               "SERVER_NAME": "localhost", "wsgi.url_scheme": "https", "CONTENT_LENGTH": "",
                               "wsgi.input": io.BytesIO(b"")}  # fmt: skip
    if user is not None:
        credentials = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        environ["HTTP_AUTHORIZATION"] = f"Basic {credentials}"
    answered: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        answered.append(status)

    b"".join(front(environ, start_response))
    return int(answered[0][:3])


class Camera:
    """The application of one manifest, its TLS files and parameters under ``root``."""

    def __init__(self, loaded: Manifest, root: Path) -> None:
        self.localdata = FileStore(root / "localdata").directory
        self.params = ParamStore.from_manifest(loaded, root)
        daemon_json = DaemonJson(self.localdata, lambda data: None)
        self.app = AcapApp(loaded, Endpoints(
            tls_files=TlsEndpoints(TlsStore(self.localdata), lambda why: None, tls_in_use=lambda: True),
            param_cgi=ParamCgi(ParamTree(self.params, loaded.app_name, {})),
            daemon_json=DaemonJsonEndpoints(daemon_json, lambda why: None, lambda why: True),
            info=InfoEndpoint(lambda: {"application": {"name": loaded.app_name}}),
            page=pages.page(loaded, self.params, TlsStore(self.localdata)),
            metrics=pages.metrics(loaded, self.params, TlsStore(self.localdata)).view,
        ))  # fmt: skip
        self.client = Client(self.app)

    def ask(self, level: str, path: str, method: str = "GET", query: str = "", **kwargs: Any) -> int:
        """The status the app answers a user of ``level``, as a front passes it (``ACCESS_ENV``)."""
        uri = path + (f"?{query}" if query else "")
        environ = {"REQUEST_URI": uri, "REMOTE_USER": level, ACCESS_ENV: level}
        return self.client.open(uri, method=method, environ_base=environ, **kwargs).status_code

    def stored_cert(self) -> Path:
        self.localdata.mkdir(parents=True, exist_ok=True)
        (self.localdata / "server-cert.pem").write_bytes(b"stand-in\n")
        return self.localdata / "server-cert.pem"


def test_apache_requires_the_level_the_manifest_names(tmp_path: Path) -> None:
    before = _config(_manifest(tmp_path), tmp_path)
    after = _config(_manifest(tmp_path, CHANGED), tmp_path)
    assert [_apache_needs(before, path) for path in (CERT, SET, CA)] == [Access.ADMIN] * 3
    assert [_apache_needs(after, path) for path in (CERT, SET, CA)] == [Access.OPERATOR, Access.VIEWER, Access.ADMIN]
    assert _apache_needs(after, CERT, "DELETE") is Access.OPERATOR  # a change there asks the same level


def test_serves_front_follows_the_manifest(tmp_path: Path) -> None:
    before, after = _front(Recorder(), _manifest(tmp_path)), _front(Recorder(), _manifest(tmp_path, CHANGED))
    assert _through(before, "operator", CERT, "DELETE") == 401 and _through(after, "operator", CERT, "DELETE") == 200
    assert _through(after, "viewer", CERT, "DELETE") == 401  # the level below is still refused
    assert _through(before, "viewer", SET) == 401 and _through(after, "viewer", SET) == 200
    assert _through(after, None, SET) == 401  # and anyone unauthenticated
    assert _through(after, "operator", CA, "DELETE") == 401  # the endpoints left alone stay where they were


def test_the_app_follows_the_manifest(tmp_path: Path) -> None:
    before = Camera(_manifest(tmp_path), tmp_path / "before")
    after = Camera(_manifest(tmp_path, CHANGED), tmp_path / "after")
    for camera in (before, after):
        camera.stored_cert()
    assert before.ask("operator", CERT, "DELETE") == 403 and before.stored_cert().exists()
    assert after.ask("viewer", CERT, "DELETE") == 403 and after.stored_cert().exists()
    assert after.ask("operator", CERT, "DELETE") == 204 and not (after.localdata / "server-cert.pem").exists()
    assert before.ask("viewer", SET) == 403 and after.ask("viewer", SET) == 200
    assert after.ask("operator", CA, "DELETE") == 403


def test_through_serves_front_the_app_sees_the_level_the_front_passes(tmp_path: Path) -> None:
    loaded = _manifest(tmp_path, CHANGED)
    camera = Camera(loaded, tmp_path)
    front = _front(camera.app, loaded)
    cert = camera.stored_cert()
    assert _through(front, "viewer", CERT, "DELETE") == 401 and cert.exists()
    assert _through(front, "operator", CERT, "DELETE") == 204 and not cert.exists()
    assert _through(front, "viewer", SET) == 200


# A change however the query spells it.


def test_an_escaped_update_is_a_change_to_serves_front_itself(tmp_path: Path) -> None:
    recorder = Recorder()
    front = _front(recorder, _manifest(tmp_path))
    assert _through(front, "viewer", access.PARAM_CGI, query=ESCAPED_UPDATE) == 401
    assert _through(front, "viewer", access.PARAM_CGI, query="%61ction=upd%61te") == 401
    assert recorder.seen == []  # refused before the app
    assert _through(front, "viewer", access.PARAM_CGI, query="action=list") == 200
    assert _through(front, "admin", access.PARAM_CGI, query=ESCAPED_UPDATE) == 200


@pytest.mark.parametrize(
    ("query", "needed"),
    [
        ("action=list", Access.VIEWER),
        ("action=update&root.dockerdwrapper.UseTLS=no", Access.ADMIN),
        (ESCAPED_UPDATE, Access.ADMIN),
        ("%61%63%74%69%6F%6e=%75%70%64%61%74%65", Access.ADMIN),
        ("group=x&action=upd%61te", Access.ADMIN),
        ("action=update&action=list", Access.ADMIN),
        ("action=list&action=update", Access.VIEWER),  # the first action decides, as in the app
        ("action&action=update", Access.VIEWER),
        ("action=updatex", Access.VIEWER),
        ("xaction=update", Access.VIEWER),
        ("action=update%26", Access.VIEWER),
        ("", Access.VIEWER),
    ],
)
def test_apache_tells_a_change_as_the_app_does(tmp_path: Path, query: str, needed: Access) -> None:
    text = _config(_manifest(tmp_path), tmp_path)
    rule = access.camera_rule(access.PARAM_CGI)
    assert rule.needed("GET", access.query_arguments(query)) is needed  # the app's judgment
    assert _apache_needs(text, access.PARAM_CGI, "GET", query) is needed


def test_the_app_refuses_an_escaped_update_and_one_in_a_body(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The escaped update by the app's table check, before param.cgi; the one in a body by param.cgi,
    the only one to read it, at the level of the same rule."""
    camera = Camera(_manifest(tmp_path), tmp_path)
    with caplog.at_level(logging.WARNING, logger="acap_http.app"):
        assert camera.ask("viewer", access.PARAM_CGI, query=ESCAPED_UPDATE) == 403
    assert [record.name for record in caplog.records] == ["acap_http.app"]
    body = {"data": "action=update&root.dockerdwrapper.UseTLS=no", "content_type": "text/plain"}
    assert camera.ask("viewer", access.PARAM_CGI, "POST", **body) == 403
    assert camera.params.get("UseTLS") == "yes"
    assert camera.ask("admin", access.PARAM_CGI, "POST", **body) == 200
    assert camera.params.get("UseTLS") == "no"


def test_a_level_changed_in_the_table_is_followed_by_all_three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera's rules, changed in the table: param.cgi's update down to operator (also in a POST
    body, which only param.cgi itself sees), control.cgi to operator for every request."""
    lowered = {
        access.PARAM_CGI: access.Rule(access.PARAM_CGI, Access.VIEWER, Access.OPERATOR, access.Writes.ACTION),
        access.APPLICATIONS_CONTROL: access.Rule(
            access.APPLICATIONS_CONTROL, Access.VIEWER, Access.OPERATOR, access.Writes.ALWAYS
        ),
    }  # fmt: skip
    monkeypatch.setattr(access, "CAMERA", tuple(lowered.get(rule.path, rule) for rule in access.CAMERA))
    loaded = _manifest(tmp_path)
    text, front, camera = _config(loaded, tmp_path), _front(Recorder(), loaded), Camera(loaded, tmp_path)
    assert _apache_needs(text, access.PARAM_CGI, query=ESCAPED_UPDATE) is Access.OPERATOR
    assert _apache_needs(text, access.APPLICATIONS_CONTROL) is Access.OPERATOR
    assert _through(front, "operator", access.PARAM_CGI, query=ESCAPED_UPDATE) == 200
    assert _through(front, "viewer", access.PARAM_CGI, query=ESCAPED_UPDATE) == 401
    assert _through(front, "viewer", access.APPLICATIONS_CONTROL) == 401
    assert _through(front, "operator", access.APPLICATIONS_CONTROL) == 200
    body = {"data": "action=update&root.dockerdwrapper.UseTLS=no", "content_type": "text/plain"}
    assert camera.ask("viewer", access.PARAM_CGI, "POST", **body) == 403
    assert camera.ask("operator", access.PARAM_CGI, "POST", **body) == 200 and camera.params.get("UseTLS") == "no"


def test_every_rule_asks_the_same_of_apache_and_serves_front(tmp_path: Path) -> None:
    """Each path of the table, each way to ask, each level: Apache's configuration and serve's front
    let through exactly whom the table names."""
    loaded = _manifest(tmp_path, CHANGED)
    text, front = _config(loaded, tmp_path), _front(Recorder(), loaded)
    asked = [("GET", ""), ("POST", ""), ("DELETE", ""), ("GET", "action=update"), ("GET", ESCAPED_UPDATE)]
    for rule in access.rules(loaded):
        for method, query in asked:
            needed = rule.needed(method, access.query_arguments(query))
            assert _apache_needs(text, rule.path, method, query) is needed, (rule.path, method, query)
            for user, level in (("viewer", Access.VIEWER), ("operator", Access.OPERATOR), ("admin", Access.ADMIN)):
                expected = 200 if level >= needed else 401
                assert _through(front, user, rule.path, method, query) == expected, (rule.path, method, query, user)


_NAMES = st.sampled_from(["action", "%61ction", "acti%6Fn", "%61%63%74%69%6f%6E", "actio", "xaction", "act+ion",
                          "group", "", "%26action", "action%3D", "action%00"])  # fmt: skip
_VALUES = st.sampled_from(["update", "%75pdate", "upd%61te", "%75%70%64%61%74%65", "list", "", "update=x",
                           "update%26", "upd+ate", "UPDATE", "%00", "updat%65%00"])  # fmt: skip
_COMPONENTS = st.one_of(_NAMES, st.builds(lambda name, value: f"{name}={value}", _NAMES, _VALUES))


@given(st.lists(_COMPONENTS, max_size=5))
def test_the_raw_query_pattern_decodes_as_the_app(components: list[str]) -> None:
    """The pattern Apache matches the raw query with is a change exactly when the app's reading of the
    query is (PCRE and Python's ``re`` read it alike: no construct of it differs)."""
    query = "&".join(components)
    pattern = access.first_argument_pattern(access.ACTION, access.UPDATE)
    expected = access.query_arguments(query).get(access.ACTION) == access.UPDATE
    assert (re.search(pattern, query) is not None) == expected


def test_apache_takes_the_generated_configuration(tmp_path: Path) -> None:
    """``apache2 -t``: the configuration parses and its patterns compile in Apache's own PCRE (a check
    of syntax; nothing is started, nothing bound)."""
    try:
        binary = apache.find_apache()
    except SetupError as err:
        pytest.skip(f"no Apache to check the configuration with: {err}")
    site = apache.Site("127.0.0.1", 8080, tmp_path, tmp_path / "app.sock", None)
    (tmp_path / "htdocs").mkdir()
    site.levels_path.write_text("")
    site.config_path.write_text(apache.render_config(_manifest(tmp_path, CHANGED), site))
    checked = subprocess.run([binary, "-t", "-f", site.config_path], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
