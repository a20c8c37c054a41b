"""The decisions of the collection's modules (acap_http.dockerdwrapper), against answers recorded
from the product and a camera: what differs, and what is sent."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlsplit

import pytest
from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils import vapix
from werkzeug.wrappers import Request

from acap_http.tls.store import TlsStore
from tests import pki

LISTED = (
    "root.dockerdwrapper.SDCardSupport=no\r\nroot.dockerdwrapper.UseTLS=yes\r\nroot.dockerdwrapper.TCPSocket=yes\r\n"
    "root.dockerdwrapper.IPCSocket=no\r\nroot.dockerdwrapper.ApplicationLogLevel=info\r\n"
    "root.dockerdwrapper.DockerdLogLevel=warn\r\nroot.dockerdwrapper.Status=3 TLS CERT MISSING\r\n"
)


class Answer(io.BytesIO):
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status, self.headers = status, headers or {}

    def getcode(self) -> int:
        return self.status


class Recorded:
    """A stand-in for ansible's Request: answers by (method, path), and keeps what was sent."""

    def __init__(self, answers: dict[tuple[str, str], Answer]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str, bytes | None, dict[str, str]]] = []

    def open(self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        parts = urlsplit(url)
        self.sent.append((method, parts.path + ("?" + parts.query if parts.query else ""), data, headers or {}))
        answer = self.answers.get((method, parts.path))
        if answer is None:
            raise HTTPError(url, 404, "Not Found", {}, io.BytesIO(b"Not found\r\n"))  # type: ignore[arg-type]
        answer.seek(0)
        if answer.status >= 400:
            raise HTTPError(url, answer.status, "error", answer.headers, answer)  # type: ignore[arg-type]
        return answer


def _front(answers: dict[tuple[str, str], Answer]) -> tuple[vapix.Front, Recorded]:
    recorded = Recorded(answers)
    params = {"url": "http://192.0.2.10/", "user": "admin", "password": "pw", "validate_certs": True, "timeout": 5}
    return vapix.Front(params, request=recorded), recorded


def test_list_lines_become_settings() -> None:
    assert vapix.parse_list(LISTED.encode())["UseTLS"] == "yes"
    assert vapix.parse_list(LISTED.encode())["Status"] == "3 TLS CERT MISSING"
    with pytest.raises(vapix.FrontError, match="getting param"):
        vapix.parse_list(b"# Error: Error -1 getting param in group 'root.x'\r\n")


@pytest.mark.parametrize(
    ("wanted", "changes"),
    [
        ({"UseTLS": True, "TCPSocket": True}, {}),  # YAML booleans are the device's yes and no
        ({"UseTLS": False}, {"UseTLS": "no"}),
        ({"DockerdLogLevel": "debug", "IPCSocket": "no"}, {"DockerdLogLevel": "debug"}),
        ({"Nonsense": "x"}, {"Nonsense": "x"}),  # for the device to refuse, by name
    ],
)
def test_only_what_differs_is_updated(wanted: dict[str, object], changes: dict[str, str]) -> None:
    assert vapix.settings_to_change(vapix.parse_list(LISTED.encode()), wanted) == changes


def test_one_update_request_with_every_change() -> None:
    front, recorded = _front({("GET", "/axis-cgi/param.cgi"): Answer(200, b"OK\r\n")})
    front.update({"UseTLS": "no", "DockerdLogLevel": "debug"})
    ((method, path, _, _),) = recorded.sent
    assert method == "GET"
    assert parse_qsl(urlsplit(path).query) == [
        ("action", "update"),
        ("root.dockerdwrapper.DockerdLogLevel", "debug"),
        ("root.dockerdwrapper.UseTLS", "no"),
    ]


def test_a_refused_update_is_an_error() -> None:
    refused = b"# Error: Error setting 'root.dockerdwrapper.UseTLS' to 'maybe'!\r\n"
    front, _ = _front({("GET", "/axis-cgi/param.cgi"): Answer(200, refused)})
    with pytest.raises(vapix.FrontError, match="to 'maybe'"):
        front.update({"UseTLS": "maybe"})


@pytest.mark.parametrize(("text", "parsed"), [("0 RUNNING", (0, "RUNNING")), ("-1 NOT STARTED", (-1, "NOT STARTED"))])
def test_status_codes(text: str, parsed: tuple[int, str]) -> None:
    assert vapix.parse_status(text) == parsed


@pytest.fixture(scope="module")
def tls_set() -> dict[str, bytes]:
    return pki.server_set().by_name()


def _summary(files: dict[str, bytes], tmp_path: Path) -> dict[str, Any]:
    """What the product's GET /local/dockerdwrapper/tls says of these files (the real summary)."""
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    summary: dict[str, Any] = json.loads(json.dumps(TlsStore(tmp_path).summary()))
    return summary


def test_the_same_set_is_not_sent(tls_set: dict[str, bytes], tmp_path: Path) -> None:
    """Fingerprints of the local files equal the product's summary of the same files: nothing to send."""
    stored = vapix.stored_identity(_summary(tls_set, tmp_path))
    assert vapix.files_to_send(stored, vapix.local_identity(tls_set)) == []


def test_a_new_certificate_alone_differs(tls_set: dict[str, bytes], tmp_path: Path) -> None:
    stored = vapix.stored_identity(_summary(tls_set, tmp_path))
    other = dict(tls_set, **{"server-cert.pem": pki.server_set().server_cert})
    assert vapix.files_to_send(stored, vapix.local_identity(other)) == ["server-cert.pem"]


def test_a_camera_cannot_be_compared(tls_set: dict[str, bytes]) -> None:
    """No summary (a camera): every file is sent."""
    assert vapix.files_to_send(None, vapix.local_identity(tls_set)) == ["ca.pem", "server-cert.pem", "server-key.pem"]


def test_the_set_goes_in_one_request_as_it_is(tls_set: dict[str, bytes]) -> None:
    """One POST to …/tls, each file a part named after it, not base64-encoded (a camera would not decode it)."""
    front, recorded = _front({("POST", "/local/dockerdwrapper/tls"): Answer(204, b"")})
    front.upload(tls_set)
    ((method, path, body, headers),) = recorded.sent
    assert (method, path) == ("POST", "/local/dockerdwrapper/tls")
    assert body is not None and b"Content-Transfer-Encoding: base64" not in body
    request = Request.from_values(input_stream=io.BytesIO(body), content_length=len(body),
                                  content_type=headers["Content-Type"], method="POST")  # fmt: skip
    with request:
        assert sorted(request.files) == ["ca.pem", "server-cert.pem", "server-key.pem"]
        for name, part in request.files.items():
            # The MIME writer ends lines with CR LF; dockerd (Go's PEM reader) and the product read both.
            assert part.read().replace(b"\r\n", b"\n") == tls_set[name]


def test_on_a_camera_each_file_goes_to_its_own_url(tls_set: dict[str, bytes]) -> None:
    """The original's way: three POSTs, the file in a part called file."""
    answers = {("POST", f"/local/dockerdwrapper/{name}"): Answer(204, b"") for name in tls_set}
    front, recorded = _front(answers)
    assert front.tls_summary() is None  # 404: a camera
    front.upload_each(tls_set)
    assert [path for _, path, _, _ in recorded.sent[1:]] == [f"/local/dockerdwrapper/{n}" for n in tls_set]
    assert all(b'name="file"' in body for _, _, body, _ in recorded.sent[1:] if body)


def test_days_left_from_a_summary(tls_set: dict[str, bytes], tmp_path: Path) -> None:
    left = vapix.days_left(_summary(tls_set, tmp_path))
    assert set(left) == {"ca.pem", "server-cert.pem"} and 28 <= left["server-cert.pem"] <= 30


def test_an_unreachable_front_is_one_line() -> None:
    params = {"url": "http://127.0.0.1:1", "user": "admin", "password": "pw", "validate_certs": True, "timeout": 2}
    with pytest.raises(vapix.FrontError, match=r"cannot reach http://127.0.0.1:1: .*[Rr]efused"):
        vapix.Front(params).settings()


# --- authentication: digest anywhere, basic only over https --------------------------------------


class Asking(http.server.BaseHTTPRequestHandler):
    """A server that asks for the scheme its class says, and keeps every Authorization it receives."""

    scheme = "Basic"
    received: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        if header:
            type(self).received.append(header)
        if header and self._accepted(header):
            body = b"root.dockerdwrapper.Status=0 RUNNING\r\n"
            self.send_response(200)
        else:
            body = b"Authentication required\r\n"
            self.send_response(401)
            challenge = 'Basic realm="camera"' if self.scheme == "Basic" else (
                'Digest realm="acap-http", nonce="n0nce", algorithm=MD5, qop="auth"')  # fmt: skip
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _accepted(self, header: str) -> bool:
        if self.scheme == "Basic":
            return header == "Basic " + base64.b64encode(b"admin:s3cret").decode()
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest ") :]))
        ha1 = hashlib.md5(b"admin:acap-http:s3cret").hexdigest()
        ha2 = hashlib.md5(f"GET:{fields['uri']}".encode()).hexdigest()
        wanted = hashlib.md5(f"{ha1}:n0nce:{fields['nc']}:{fields['cnonce']}:auth:{ha2}".encode()).hexdigest()
        return fields.get("response") == wanted and fields.get("uri", "").startswith("/axis-cgi/param.cgi?")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def asking() -> Iterator[tuple[type[Asking], str]]:
    handler = type("Handler", (Asking,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _real_front(url: str, auth: str = "auto") -> vapix.Front:
    params = {"url": url, "user": "admin", "password": "s3cret", "auth": auth, "validate_certs": True,
              "ca_path": None, "timeout": 5}  # fmt: skip
    return vapix.Front(params)


def test_basic_asked_over_plain_http_gets_no_password(asking: tuple[type[Asking], str]) -> None:
    """A server (the device, or one pretending to be it) asking for Basic over http: the module refuses,
    and the password never leaves (urllib, left to itself, sent admin:<password> in clear)."""
    handler, url = asking
    with pytest.raises(vapix.FrontError, match="asks for Basic authentication; not sent: over plain http"):
        _real_front(url).settings()
    assert handler.received == []
    with pytest.raises(vapix.FrontError, match="auth=basic sends the password in clear"):
        _real_front(url, auth="basic")


def test_digest_is_answered_over_plain_http(asking: tuple[type[Asking], str]) -> None:
    """Digest, as a camera and acap-http up ask it: answered, the password never sent."""
    handler, url = asking
    handler.scheme = "Digest"
    assert _real_front(url, auth="digest").settings() == {"Status": "0 RUNNING"}
    assert len(handler.received) == 1 and handler.received[0].startswith("Digest ")
    assert "s3cret" not in handler.received[0]


def test_the_challenge_parser_and_the_digest_of_rfc_7616() -> None:
    """The example of RFC 7616 section 3.9.1 (MD5, qop auth): the same response."""
    offered = vapix.challenges('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
                               'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                               'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')  # fmt: skip
    header = vapix.digest_header(offered["digest"], "GET", "/dir/index.html", "Mufasa", "Circle of Life",
                                 cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")  # fmt: skip
    assert header is not None and 'response="8ca523f5e9506fed4657c9700eebdbec"' in header


def test_a_netrc_entry_is_never_sent(asking: tuple[type[Asking], str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """urllib sends a ~/.netrc login as Basic on the first request, over http too: not from here."""
    handler, url = asking
    handler.scheme = "Digest"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login admin password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert _real_front(url, auth="digest").settings() == {"Status": "0 RUNNING"}
    assert all(header.startswith("Digest ") for header in handler.received)


RECORDED_LIST = (Path(__file__).parent / "fixtures" / "vapix" / "applications-list.xml").read_bytes()


def test_the_application_state_from_list_cgi() -> None:
    """A camera's recorded list (other applications, no dockerdwrapper) and acap-http's."""
    assert vapix.application_state(RECORDED_LIST, "TrafficWiz") == "Stopped"
    assert vapix.application_state(RECORDED_LIST) is None
    ours = b'<reply result="ok">\n <application Name="dockerdwrapper" Status="Running" />\n</reply>'
    assert vapix.application_state(ours) == "Running"
    with pytest.raises(vapix.FrontError, match="no XML"):
        vapix.application_state(b"<html>")
    with pytest.raises(vapix.FrontError, match=r"list\.cgi answered"):
        vapix.application_state(b'<reply result="error"><error type="4"/></reply>')


def test_control_sends_the_action_and_names_the_cameras_error() -> None:
    front, recorded = _front({("GET", vapix.APPLICATIONS_CONTROL): Answer(200, b"OK\r\n")})
    front.control("stop")
    assert recorded.sent[0][1] == "/axis-cgi/applications/control.cgi?action=stop&package=dockerdwrapper"
    front, _ = _front({("GET", vapix.APPLICATIONS_CONTROL): Answer(200, b"Error: 8\r\n")})
    with pytest.raises(vapix.FrontError, match=r"Error: 8 \(the application could not start"):
        front.control("start")


def test_a_user_below_admin_reads_no_application_state() -> None:
    front, _ = _front({("GET", vapix.APPLICATIONS_LIST): Answer(403, b"no")})
    assert front.application() is None
