"""The HTTP surface against hostile and unusual clients, in-process: no injection through
answers or logs, no cross-site changes, idempotent uploads, VAPIX and Ansible clients."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.test import TestResponse

from acap_http.manifest import ACCESS_ENV
from acap_http.status import Status
from acap_http.supervisor.settings import Settings, check
from acap_http.tls.store import TlsStore
from tests import multipart, pki
from tests.test_app import PREFIX, Harness

PARAM_CGI = "/axis-cgi/param.cgi"


class Front(Harness):
    """The app as Apache hands it requests: REQUEST_URI, the user and the level."""

    def request(
        self, method: str, path: str, *, query: str = "", headers: dict[str, str] | None = None,
        body: bytes = b"", content_type: str | None = None, level: str = "admin",
    ) -> TestResponse:  # fmt: skip
        environ = {"REQUEST_URI": path + (f"?{query}" if query else ""), "REMOTE_USER": level, ACCESS_ENV: level}
        return self.client.open(
            path, method=method, query_string=query, headers=headers or {}, data=body,
            content_type=content_type, environ_base=environ,
        )  # fmt: skip

    def upload_with(self, name: str, data: bytes, headers: dict[str, str], part_headers: str = "") -> TestResponse:
        body = multipart.body(multipart.part("file", data, name, part_headers))
        return self.request("POST", PREFIX + name, body=body, content_type=multipart.content_type(), headers=headers)


@pytest.fixture
def front(tmp_path: Path) -> Front:
    return Front(tmp_path)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _unsafe(text: str) -> list[str]:
    """Control characters in ``text``, line ends of the answer's own lines aside."""
    return [c for c in text.replace("\r\n", "") if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def _formatted(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages as the handlers made them, before the formatter's own escaping (its safety net
    would hide a handler that forgot to escape)."""
    return [record.getMessage() for record in caplog.records]


# --- no injection ---------------------------------------------------------------------------


def test_control_characters_of_a_pem_label_are_escaped(front: Front, logged: pytest.LogCaptureFixture) -> None:
    """A label full of ESC, BEL, FF and CR comes back escaped in the 400 and in the log line."""
    label = "X\x1b[2J\x07\x0c\rY"
    data = f"-----BEGIN {label}-----\nMAIwAA==\n-----END {label}-----\n".encode()
    response = front.upload("ca.pem", data)
    assert response.status_code == 400
    assert response.text.count("\r\n") == 1 and _unsafe(response.text) == []
    assert "is a X\\x1b[2J\\x07\\x0c\\rY; expected" in response.text
    assert all(_unsafe(line) == [] and "\n" not in line for line in _formatted(logged))


@pytest.mark.parametrize(
    "query",
    [
        "action=list&group=root.dockerdwrapper.Status%0d%0aroot.dockerdwrapper.UseTLS=no",
        "action=list&group=root.Brand%0d%0aroot.dockerdwrapper.UseTLS=no",
        "action=li%0d%0aroot.dockerdwrapper.UseTLS=no",
        "action=update&root.dockerdwrapper.UseTLS=x%0d%0aroot.dockerdwrapper.UseTLS=no",
        "action=update&root.dockerdwrapper.Us%1b[2JeTLS=no",
    ],
)
def test_param_cgi_answers_cannot_be_forged(front: Front, logged: pytest.LogCaptureFixture, query: str) -> None:
    """CR LF or ESC in group=, action= or a name: one answer line, nothing forged, no raw control character."""
    response = front.request("GET", PARAM_CGI, query=query, level="viewer" if "list" in query else "admin")
    lines = response.text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 2, response.text
    assert "root.dockerdwrapper.UseTLS=no" not in lines
    assert _unsafe(response.text) == []
    assert all(_unsafe(line) == [] and "\n" not in line for line in _formatted(logged))


def test_a_path_with_cr_lf_does_not_forge_a_debug_line(front: Front, logged: pytest.LogCaptureFixture) -> None:
    """The debug line of each request escapes the path it logs."""
    path = "/local/dockerdwrapper/x\r\nINFO[2026-01-01T00:00:00] forged"
    front.request("GET", path)
    lines = _formatted(logged)
    assert any("x\\r\\nINFO" in line for line in lines)
    assert all("\n" not in line for line in lines)


# --- cross-site requests -----------------------------------------------------------------------


CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost:9999"},  # the front's host, another port: another origin
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_changes_are_refused(front: Front, headers: dict[str, str]) -> None:
    """Upload, delete, set upload and param.cgi update (GET or POST) from another origin: 403, nothing changed."""
    files = pki.server_set()
    front.store.write("ca.pem", files.ca, 0o644)
    answers = [
        front.upload_with("ca.pem", pki.server_set().ca, headers),
        front.request("DELETE", PREFIX + "ca.pem", headers=headers),
        front.request("GET", PARAM_CGI, query="action=update&root.dockerdwrapper.UseTLS=no", headers=headers),
        front.request(
            "POST",
            PARAM_CGI,
            body=b"action=update&root.dockerdwrapper.UseTLS=no",
            headers=headers,
            content_type="application/x-www-form-urlencoded",
        ),
    ]
    assert [answer.status_code for answer in answers] == [403] * 4
    assert all("Refused: a change requested by a page of another site" in answer.text for answer in answers)
    assert answers[2].text.startswith("# Error: ")
    assert front.store.read("ca.pem") == files.ca
    assert front.request("GET", PARAM_CGI, query="action=list&group=root.dockerdwrapper.UseTLS").text == (
        "root.dockerdwrapper.UseTLS=yes\r\n"
    )
    assert front.restarts == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost"}, {"Origin": "http://LOCALHOST:80"}, {"Sec-Fetch-Site": "same-origin"},
     {"Sec-Fetch-Site": "none"}],
)  # fmt: skip
def test_same_origin_and_non_browser_clients_are_unaffected(front: Front, headers: dict[str, str]) -> None:
    """curl, SDKs and Ansible send no Origin; the front's own page sends its own: both may change things."""
    assert front.upload_with("ca.pem", pki.server_set().ca, headers).status_code == 204
    answer = front.request("GET", PARAM_CGI, query="action=update&root.dockerdwrapper.UseTLS=no", headers=headers)
    assert answer.text == "OK\r\n"


def test_cross_site_reads_are_not_changes(front: Front) -> None:
    """A list is no change: answered whatever the origin (a browser keeps the answer from the other page)."""
    answer = front.request(
        "GET", PARAM_CGI, query="action=list&group=root.dockerdwrapper.UseTLS", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert (answer.status_code, answer.text) == (200, "root.dockerdwrapper.UseTLS=yes\r\n")


# --- idempotent uploads ----------------------------------------------------------------------------


def test_same_file_again_writes_nothing_and_restarts_nothing(front: Front) -> None:
    """The second upload of the same content: 204, X-Dockerd-Restart: unchanged, the file untouched."""
    files = pki.server_set()
    assert front.upload("ca.pem", files.ca).status_code == 204
    stored = front.store.path("ca.pem").stat()
    again = front.upload("ca.pem", files.ca.replace(b"\n", b"\r\n"))  # the same once normalised
    assert again.status_code == 204
    assert again.headers["X-Dockerd-Restart"] == "unchanged"
    assert front.store.path("ca.pem").stat().st_ino == stored.st_ino
    assert front.restarts == ["ca.pem uploaded"]


def test_same_set_again_writes_nothing_and_restarts_nothing(front: Front) -> None:
    """A re-run of a set upload changes nothing; a set with one new file stores it and restarts once."""
    files = pki.server_set().by_name()
    body = multipart.body(*(multipart.part(name, data, name) for name, data in files.items()))
    content_type = multipart.content_type()
    assert front.request("POST", PREFIX + "tls", body=body, content_type=content_type).status_code == 204
    again = front.request("POST", PREFIX + "tls", body=body, content_type=content_type)
    assert (again.status_code, again.headers.get("X-Dockerd-Restart")) == (204, "unchanged")
    assert front.restarts == ["TLS set uploaded"]
    files["ca.pem"] = files["ca.pem"] + pki.server_set().ca  # one file differs
    body = multipart.body(*(multipart.part(name, data, name) for name, data in files.items()))
    changed = front.request("POST", PREFIX + "tls", body=body, content_type=content_type)
    assert (changed.status_code, changed.headers.get("X-Dockerd-Restart")) == (204, None)
    assert front.restarts == ["TLS set uploaded", "TLS set uploaded"]


def test_same_content_with_a_wrong_mode_gets_its_mode_back(front: Front) -> None:
    """A key someone made world-readable is put back to 0600 by re-uploading it, still without a restart."""
    key = pki.server_set().server_key
    front.upload("server-key.pem", key)
    front.store.path("server-key.pem").chmod(0o644)
    assert front.upload("server-key.pem", key).headers["X-Dockerd-Restart"] == "unchanged"
    assert front.store.path("server-key.pem").stat().st_mode & 0o777 == 0o600


# --- real clients: VAPIX text/plain lists, Ansible's base64 parts ---------------------------------


def test_text_plain_post_lists_as_a_camera_does(front: Front) -> None:
    """Home Assistant's axis library posts the list request as text/plain."""
    answer = front.request(
        "POST",
        PARAM_CGI,
        body=b"action=list&group=root.dockerdwrapper.UseTLS",
        content_type="text/plain",
        level="viewer",
    )
    assert (answer.status_code, answer.text) == (200, "root.dockerdwrapper.UseTLS=yes\r\n")


def test_text_plain_post_update_by_a_viewer_is_refused(front: Front) -> None:
    """Reading any body as a form keeps the level check: a viewer's update in it is 403."""
    answer = front.request(
        "POST", PARAM_CGI, body=b"action=update&root.dockerdwrapper.UseTLS=no", content_type="text/plain",
        level="viewer",
    )  # fmt: skip
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("base64", base64.encodebytes),
        ("BASE64", base64.b64encode),  # one long line, and the name in capitals
        ("quoted-printable", binascii.b2a_qp),
        ("7bit", lambda data: data),
    ],
)
def test_transfer_encoded_parts_are_decoded(front: Front, encoding: str, encode: Callable[[bytes], bytes]) -> None:
    """Ansible's uri module sends file parts base64-encoded; RFC 2045 encodings are undone first."""
    key = pki.server_set().server_key
    response = front.upload_with("server-key.pem", encode(key), {}, f"Content-Transfer-Encoding: {encoding}\r\n")
    assert response.status_code == 204, response.text
    assert front.store.read("server-key.pem") == key


@pytest.mark.parametrize(
    ("encoding", "content", "phrase"),
    [
        ("base64", b"this is not base64!", "says base64 but its content is not base64"),
        ("x-uuencode", b"begin 644 x", "has Content-Transfer-Encoding 'x-uuencode'"),
    ],
)
def test_bad_transfer_encodings_are_400(front: Front, encoding: str, content: bytes, phrase: str) -> None:
    response = front.upload_with("ca.pem", content, {}, f"Content-Transfer-Encoding: {encoding}\r\n")
    assert response.status_code == 400
    assert phrase in response.text
    assert front.listing() == []


# --- messages ----------------------------------------------------------------------------------------


def test_a_repeated_part_is_named(front: Front) -> None:
    """A set with ca.pem twice says so, without a Python list in the message."""
    files = pki.server_set().by_name()
    parts = [multipart.part(name, data, name) for name, data in files.items()]
    body = multipart.body(*parts, multipart.part("ca.pem", files["ca.pem"], "ca.pem"))
    answer = front.request("POST", PREFIX + "tls", body=body, content_type=multipart.content_type())
    assert answer.status_code == 400
    assert answer.text.endswith("this one has more than one ca.pem.\r\n")
    assert "[" not in answer.text


# --- round two: what the second attack found ----------------------------------------------


def test_a_set_part_without_a_name_is_refused_with_a_reason(front: Front) -> None:
    """A part whose Content-Disposition has no name= (werkzeug gives it the name None): 400 saying
    what the set lacks, where it was a 500 (printable(None))."""
    files = pki.server_set().by_name()
    parts = [multipart.part(name, data, name) for name, data in files.items() if name != "ca.pem"]
    nameless = b'Content-Disposition: form-data; filename="ca.pem"\r\n\r\n' + files["ca.pem"] + b"\r\n"
    response = front.request("POST", PREFIX + "tls", body=multipart.body(*parts, nameless),
                             content_type=multipart.content_type())  # fmt: skip
    assert response.status_code == 400, response.text
    assert "missing ca.pem" in response.text and "unexpected (no name)" in response.text
    assert front.listing() == []


def test_reading_the_set_while_it_is_deleted_and_uploaded_again_never_fails(front: Front) -> None:
    """GET …/tls and the check before a start, while another thread deletes and uploads the files
    again and again: each answer is 200, each check a Status (3 while a file is gone), never an error."""
    files = pki.server_set().by_name()
    stop, errors = threading.Event(), []

    def churn() -> None:
        while not stop.is_set():
            for name, data in files.items():
                front.request("DELETE", PREFIX + name)
                front.upload(name, data)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    settings = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)
    try:
        for _ in range(300):
            response = front.request("GET", PREFIX + "tls")
            if response.status_code != 200:
                errors.append(response.text)
            try:
                assert check(settings, TlsStore(front.store.directory)) in (None, Status.TLS_CERT_MISSING)
            except Exception as err:  # what the supervisor turned into Status 2
                errors.append(repr(err))
    finally:
        stop.set()
        churner.join(10)
    assert errors == []


def test_a_password_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """ACAP_HTTP_PASSWORD holding bytes that are not UTF-8: a sentence, not a traceback, nothing written."""
    users = tmp_path / "users"
    users.write_text("admin:admin:scrypt$1$1$1$AA==$AA==\n")
    env = {**os.environb, b"ACAP_HTTP_PASSWORD": b"caf\xe9"}
    done = subprocess.run([sys.executable, "-m", "acap_http", "password", "admin", "--users", str(users)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "acap-http: the password in $ACAP_HTTP_PASSWORD is not valid UTF-8; use UTF-8 text\n"
    assert users.read_text() == "admin:admin:scrypt$1$1$1$AA==$AA==\n"
