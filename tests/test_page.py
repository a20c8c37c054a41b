"""The settings page and its state, in process: what ``state`` holds (and never: key material),
the first view rendered by the server (escaped, read-only for a viewer), the page's headers, and
the fronts' redirect of the site's root."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import Client, TestResponse

from acap_http import config, manifest
from acap_http.app import AcapApp, Endpoints
from acap_http.errors import ManifestError
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import ACCESS_ENV, Access
from acap_http.overview import Event, Kept, status
from acap_http.params import ParamStore
from acap_http.servers import apache
from acap_http.status import Status
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.tls.store import TlsStore
from tests import pages, pki

PREFIX = "/local/dockerdwrapper/"
LOADED = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")
HOSTILE = "<script>alert(1)</script>"
COMMAND = ["dockerd", "--config-file", "/x/daemon.json", "-H", "unix:///run/<b>.sock"]


class Page:
    def __init__(self, root: Path, **kwargs: Any) -> None:
        self.params = ParamStore.from_manifest(LOADED, root)
        self.tls = TlsStore(root / "localdata")
        endpoints = Endpoints(
            tls_files=TlsEndpoints(self.tls, lambda reason: None, tls_in_use=lambda: True),
            param_cgi=ParamCgi(ParamTree(self.params, LOADED.app_name, {})),
            daemon_json=DaemonJsonEndpoints(DaemonJson(root / "localdata", lambda data: None), print, bool),
            info=InfoEndpoint(dict),
            page=pages.page(LOADED, self.params, self.tls, **kwargs),
            metrics=pages.metrics(LOADED, self.params, self.tls).view,
        )
        self.client = Client(AcapApp(LOADED, endpoints))

    def get(self, path: str, level: str | None = "admin") -> TestResponse:
        environ = {"REQUEST_URI": path}
        if level is not None:
            environ |= {"REMOTE_USER": level, ACCESS_ENV: level}
        return self.client.get(path, environ_base=environ)

    def state(self, level: str | None = "admin") -> dict[str, Any]:
        answer = self.get(PREFIX + "state", level)
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        result: dict[str, Any] = json.loads(answer.get_data(as_text=True))
        return result


@pytest.fixture
def page(tmp_path: Path) -> Page:
    running = {"answers": True, "containers_running": 2, "containers": 3, "images": 1, "data_root": "/data"}
    return Page(
        tmp_path,
        dockerd={**pages.NO_DOCKERD, **running, "command": COMMAND},
        log=["INFO[now] <img src=x onerror=alert(1)>"],
        last_restart=Event("UseTLS changed", 1_800_000_000.0),
    )


def stored_set(page: Page, authority: pki.Authority) -> pki.ServerSet:
    files = authority.server_set()
    page.tls.put_set(files.by_name())
    return files


def test_state_says_status_in_words_and_each_setting_with_its_control(page: Page) -> None:
    page.params.update({"Status": Status.TLS_CERT_MISSING.value}, by_program=True)
    state = page.state()
    assert state["status"] | {"since": None} == {
        "value": "3 TLS CERT MISSING", "code": 3, "name": "TLS CERT MISSING", "since": None,
        "meaning": "UseTLS is selected but certificates are missing on the device. "
                   "The application is running but dockerd is stopped.",
        "fix": "Upload certificates and restart the application or de-select UseTLS.",
    }  # fmt: skip
    assert datetime.datetime.fromisoformat(state["status"]["since"]).tzinfo is not None
    controls = {entry["name"]: entry for entry in state["settings"]}
    assert controls["UseTLS"] == {"name": "UseTLS", "value": "yes", "default": "yes", "control": "switch",
                                  "off": "no", "on": "yes"}  # fmt: skip
    assert controls["DockerdLogLevel"]["control"] == "select"
    assert [c["value"] for c in controls["DockerdLogLevel"]["choices"]] == ["debug", "info", "warn", "error", "fatal"]
    assert controls["Status"]["control"] == "readonly"
    assert state["application"] == {"name": "dockerdwrapper", "friendly_name": "Docker Daemon",
                                    "version": LOADED.version, "running": True}  # fmt: skip
    assert state["dockerd"]["containers_running"] == 2 and state["dockerd"]["command"] == COMMAND
    assert state["last_restart"] == {"what": "UseTLS changed", "at": "2027-01-15T08:00:00.000+00:00"}
    assert state["log"] == ["INFO[now] <img src=x onerror=alert(1)>"]


def test_every_status_has_its_meaning() -> None:
    """Each Status the program sets has a meaning; the ones an operator must act on, a fix."""
    for code in Status:
        shown = status(code.value, 0.0)
        assert shown["meaning"] and shown["code"] == int(code.value.split()[0])
        assert bool(shown["fix"]) == (code not in (Status.RUNNING, Status.DOCKERD_STOPPED))
    assert status("9 SOMETHING NEW", 0.0)["meaning"] == ""


@pytest.mark.parametrize(
    ("level", "may_change"), [("admin", True), ("operator", False), ("viewer", False), (None, True)]
)
def test_the_user_and_whether_they_may_change(page: Page, level: str | None, may_change: bool) -> None:
    """The level the front passed; with none (the camera's own web server checks each endpoint), every
    control is offered and the application refuses what the user may not do."""
    user = page.state(level)["user"]
    assert user == {"name": level, "level": level, "may_change": may_change}


def test_state_carries_no_key_material(page: Page) -> None:
    """The key's type, size and public half's hash; nothing of the private key in any encoding."""
    files = stored_set(page, pki.Authority())
    text = page.get(PREFIX + "state").get_data(as_text=True)
    key = serialization.load_pem_private_key(files.server_key, password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    body_lines = [line for line in files.server_key.decode().splitlines() if not line.startswith("-----")]
    assert "PRIVATE" not in text
    assert not any(line in text for line in body_lines)
    assert base64.b64encode(der)[40:80].decode() not in text and der.hex()[100:160] not in text
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.private_numbers()
    assert str(numbers.d)[:30] not in text and format(numbers.d, "x")[:30] not in text
    summary = page.state()["tls"]["server-key.pem"]
    assert summary["key_type"] == "RSA" and len(summary["public_key_sha256"]) == 64


def test_certificates_that_expire_within_30_days_are_pointed_out(page: Page) -> None:
    stored_set(page, pki.Authority())  # pki's certificates are valid 30 days: both expire within 30
    expiring = page.state()["tls"]["expiring"]
    assert sorted(item["file"] for item in expiring) == ["ca.pem", "server-cert.pem"]
    assert all(item["days_left"] in (29, 30) for item in expiring)
    html = page.get(PREFIX).get_data(as_text=True)
    assert re.search(r'<ul class="warning" id="tls-expiring"><li>ca\.pem \(CN=test CA\) expires in \d+ days', html)


def test_the_first_view_escapes_every_value(page: Page) -> None:
    """A CA named with markup, markup in the log and in dockerd's command: all text, no element."""
    stored_set(page, pki.Authority(HOSTILE))
    html = page.get(PREFIX).get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="page.js" defer>']
    assert "<img" not in html and "<b>" not in html
    assert "CN=\\&lt;script\\&gt;alert(1)\\&lt;/script\\&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "unix:///run/&lt;b&gt;.sock" in html


def test_an_admins_page_offers_every_control(page: Page) -> None:
    html = page.get(PREFIX).get_data(as_text=True)
    assert 'data-may-change="true"' in html and 'id="daemon-json"' in html
    assert re.search(r'<input type="checkbox" role="switch" id="setting-UseTLS" name="UseTLS" data-on="yes" '
                     r'data-off="no" checked>', html)  # fmt: skip
    assert '<button type="button" data-control="start" disabled>' in html  # it runs: Start has nothing to do
    assert '<button type="button" data-control="stop">' in html


def test_a_viewers_page_shows_all_and_disables_every_control(page: Page) -> None:
    stored_set(page, pki.Authority("viewer's CA"))
    html = page.get(PREFIX, "viewer").get_data(as_text=True)
    controls = re.findall(r"<(?:input|select|button|textarea)\b[^>]*>", html)
    assert controls and [c for c in controls if " disabled" not in c] == []
    assert 'id="daemon-json"' not in html  # daemon.json may hold a proxy's password: admins only
    assert "CN=viewer&#x27;s CA" in html and "0 RUNNING" not in html.split('id="status-value">')[0]
    assert "Signed in as viewer (viewer): you may look, not change" in html


@pytest.mark.parametrize("path", [PREFIX, PREFIX + "index.html", PREFIX + "state", PREFIX + "page.js",
                                  PREFIX + "page.css", PREFIX + "icon.svg"])  # fmt: skip
def test_the_pages_answers_allow_only_their_own_scripts_and_no_framing(page: Page, path: str) -> None:
    answer = page.get(path, "viewer")
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_pages_files_and_what_is_not_one(page: Page) -> None:
    assert page.get(PREFIX + "page.js").mimetype == "text/javascript"
    assert page.get(PREFIX + "page.css").mimetype == "text/css"
    assert page.get(PREFIX + "icon.svg").mimetype == "image/svg+xml"
    assert page.get(PREFIX + "state").headers["Cache-Control"] == "no-store"
    for other in ("page.html", "../page.js", "page/page.js", "manifest.json"):
        assert page.get(PREFIX + other).status_code == 404
    assert page.client.post(PREFIX + "state", environ_base={"REQUEST_URI": PREFIX + "state"}).status_code == 405


def test_the_page_script_and_style_hold_no_inline_code_and_call_nothing_elsewhere(page: Page) -> None:
    """No inline handler or style in the first view (the policy would block it), and no address of
    another site in the page's files."""
    html = page.get(PREFIX).get_data(as_text=True)
    assert not re.search(r"\son\w+=", html.replace("onerror=alert(1)", "")) and " style=" not in html
    for name in ("page.js", "page.css"):
        assert not re.search(r"https?://", page.get(PREFIX + name).get_data(as_text=True))


def test_apache_sends_the_root_to_the_settings_page(tmp_path: Path) -> None:
    site = apache.Site("127.0.0.1", 8080, tmp_path, tmp_path / "app.sock", None)
    lines = apache.render_config(LOADED, site).splitlines()
    redirect = lines.index('RedirectMatch 302 "^/(?:local/dockerdwrapper)?$" "/local/dockerdwrapper/"')
    assert redirect < next(i for i, line in enumerate(lines) if line.startswith("RedirectMatch 404"))
    assert '<LocationMatch "^/local/dockerdwrapper/$">' in lines


def test_a_manifest_whose_setting_page_is_no_endpoint_is_refused() -> None:
    document = json.loads((config.CHECKOUT_DIR / "manifest" / "manifest.json").read_text())
    document["acapPackageConf"]["configuration"]["settingPage"] = "settings.html"
    with pytest.raises(ManifestError, match=r"settingPage 'settings\.html' is not one of the httpConfig"):
        manifest.parse(document)
    assert Access.VIEWER < Access.ADMIN


def test_every_control_has_a_label(page: Page) -> None:
    """Each input, list and text area is named by a label (or by the element its aria-labelledby
    names): a screen reader says what it is, and a click on the label reaches it."""
    html = page.get(PREFIX).get_data(as_text=True)
    controls = re.findall(r'<(input|select|textarea|output)\b[^>]*\bid="([^"]+)"[^>]*>', html)
    assert len(controls) >= 12
    for tag, ident in controls:
        named = f'<label for="{ident}"' in html or re.search(rf'id="{re.escape(ident)}" aria-labelledby="[^"]+"', html)
        assert named, f"<{tag} id={ident}> has no label"


def test_the_log_goes_to_admins_only(page: Page) -> None:
    """It names users who failed to sign in (and a name typed may be a password)."""
    assert page.state("admin")["log"] == ["INFO[now] <img src=x onerror=alert(1)>"]
    for level in ("operator", "viewer", None):
        assert page.state(level)["log"] is None
    assert "The log is shown to admins only" in page.get(PREFIX, "viewer").get_data(as_text=True)


def test_a_level_the_front_passed_that_is_no_level_is_a_viewers(page: Page) -> None:
    """Apache passes "none" for a user missing from its levels: the page offers that user nothing."""
    answer = page.client.get(PREFIX + "state", environ_base={"REQUEST_URI": PREFIX + "state", "REMOTE_USER": "ghost",
                                                             ACCESS_ENV: "none"})  # fmt: skip
    assert json.loads(answer.get_data(as_text=True))["user"] == {
        "name": "ghost",
        "level": "viewer",
        "may_change": False,
    }


@pytest.mark.parametrize("path", [PREFIX + "daemon.json/", PREFIX + "state/", PREFIX + "tls/", "/axis-cgi/param.cgi/"])
def test_a_paths_twin_with_a_slash_is_no_way_around_its_level(page: Page, path: str) -> None:
    """werkzeug's routing would take ``daemon.json/`` for ``daemon.json``; the access table does not
    know it: such a path is 404, before any view, whoever asks."""
    query = "action=update&root.dockerdwrapper.UseTLS=no"
    answer = page.client.get(path, query_string=query, environ_base={"REQUEST_URI": path, "REMOTE_USER": "viewer",
                                                                      ACCESS_ENV: "viewer"})  # fmt: skip
    assert answer.status_code == 404
    assert page.params.get("UseTLS") == "yes"


def test_a_part_that_cannot_be_read_leaves_the_page_standing(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TLS files unreadable: that part says so in its place, the rest shows, the page stands."""

    def failing() -> dict[str, bytes | None]:
        raise OSError("Input/output error")

    monkeypatch.setattr(page.tls, "read", failing)
    state = page.state()
    assert state["tls"] == {"error": "the TLS files could not be read: Input/output error"}
    assert state["status"]["value"] == "-1 NOT STARTED" and state["dockerd"]["answers"] is True
    html = page.get(PREFIX).get_data(as_text=True)
    assert '<p class="bad" id="tls-verdict">the TLS files could not be read: Input/output error</p>' in html


def test_dockerd_is_asked_once_for_every_page_that_polls() -> None:
    """``Kept``: within its time, the last answer again; a caller meanwhile never waits for another's."""
    calls: list[int] = []

    def fetch() -> dict[str, object]:
        calls.append(1)
        return {"n": len(calls)}

    status = ["1 DOCKERD STOPPED"]
    kept = Kept(fetch, 60, lambda: status[0])
    assert [kept()["n"] for _ in range(5)] == [1, 1, 1, 1, 1]
    status[0] = "0 RUNNING"  # a new Status: asked again at once
    assert [kept()["n"] for _ in range(3)] == [2, 2, 2]
    assert Kept(fetch, 0)()["n"] == 3


def test_callers_that_waited_for_a_new_answer_take_it_instead_of_asking_again() -> None:
    """After a new key, the callers that waited on the one asking get its answer: dockerd is asked once,
    however many scrapes and pages came together."""
    calls: list[int] = []

    def fetch() -> dict[str, object]:
        calls.append(1)
        time.sleep(0.05)
        return {"n": len(calls)}

    status = ["1 DOCKERD STOPPED"]
    kept = Kept(fetch, 60, lambda: status[0])
    kept()
    status[0] = "0 RUNNING"
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: kept()["n"], range(10)))
    assert answers == [2] * 10 and len(calls) == 2


def _luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(
    ("text", "background"),
    [("ink", "paper"), ("muted", "paper"), ("ok", "paper"), ("bad", "paper"), ("accent", "paper"),
     ("paper", "accent"), ("warn-ink", "warn-back"), ("ink", "back"), ("muted", "back"), ("paper", "ink"),
     ("ok", "ok-back"), ("bad", "bad-back"), ("log-ink", "ink"), ("alert", "ink"), ("ok", "back"), ("bad", "back")],
)  # fmt: skip
def test_text_keeps_a_contrast_of_4_5_to_1(text: str, background: str) -> None:
    """Each pair of the stylesheet's colours that text is set in: WCAG AA for normal text."""
    css = (config.CHECKOUT_DIR / "acap_http" / "page" / "page.css").read_text()
    colours = dict(re.findall(r"--([\w-]+): (#[0-9a-f]{6});", css))
    assert _contrast(colours[text], colours[background]) >= 4.5, (text, background)
