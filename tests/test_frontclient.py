"""The front's client (``certs push``) gives the password only to whom it may: Digest anywhere,
Basic only over verified HTTPS; never credentials from ~/.netrc, and no redirect followed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acap_http.errors import AcapHttpError
from acap_http.frontclient import Front


class Recorder(http.server.BaseHTTPRequestHandler):
    challenge = 'Basic realm="x"'
    location = ""
    seen: list[tuple[str, str]] = []  # noqa: RUF012  (one test at a time)

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.location:
            self.send_response(302)
            self.send_header("Location", self.location)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", self.challenge)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen, Recorder.challenge, Recorder.location = [], 'Basic realm="x"', ""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_basic_over_plain_http_is_refused_before_the_password_goes(server: str) -> None:
    with pytest.raises(AcapHttpError, match="would send the password in clear"):
        Front(server, "admin", "secret").status()
    assert all(authorization == "" for _, authorization in Recorder.seen)


def test_no_credentials_from_netrc(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login admin password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    Recorder.challenge = 'Digest realm="x", nonce="n", qop="auth"'
    with pytest.raises(AcapHttpError):
        Front(server, "admin", "secret").status()
    assert Recorder.seen and all("from-netrc" not in authorization for _, authorization in Recorder.seen)
    assert not any(authorization.startswith("Basic") for _, authorization in Recorder.seen)


def test_no_redirect_is_followed(server: str) -> None:
    Recorder.location = server + "/elsewhere"
    with pytest.raises(AcapHttpError):
        Front(server, "admin", "secret").status()
    assert [path for path, _ in Recorder.seen if path == "/elsewhere"] == []
