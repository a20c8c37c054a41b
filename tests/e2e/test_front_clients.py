"""Browsers, VAPIX libraries and the like against the real front (Apache, curl): cross-site
changes refused, text/plain lists and transfer-encoded parts understood, answers unforgeable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import GROUP, PREFIX, Front

PARAM_CGI = "/axis-cgi/param.cgi"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("client") / "ca.pem"
    path.write_bytes(pki.server_set().ca)
    return path


@pytest.mark.parametrize("header", ["Origin: http://evil.example", "Sec-Fetch-Site: cross-site"])
def test_cross_site_changes_are_403(front: Front, ca_file: Path, header: str) -> None:
    """A browser's request from another site, with the admin's credentials, changes nothing."""
    front.upload("ca.pem", ca_file)
    before = (front.localdata / "ca.pem").read_bytes()
    other = ca_file.with_name("other.pem")
    other.write_bytes(pki.server_set().ca)
    answers = [
        front.curl("-H", header, "-F", f"file=@{other}", "-X", "POST", path=PREFIX + "ca.pem"),
        front.curl("-H", header, "-X", "DELETE", path=PREFIX + "ca.pem"),
        front.curl("-H", header, path=f"{PARAM_CGI}?action=update&{GROUP}.DockerdLogLevel=debug"),
    ]
    assert [answer.status for answer in answers] == [403, 403, 403]
    assert all("Refused: a change requested by a page of another site" in answer.body for answer in answers)
    assert (front.localdata / "ca.pem").read_bytes() == before
    assert front.curl(path=f"{PARAM_CGI}?action=list&group={GROUP}.DockerdLogLevel").body == (
        f"{GROUP}.DockerdLogLevel=warn\r\n"
    )


def test_the_fronts_own_origin_may_change(front: Front, ca_file: Path) -> None:
    """A page of the front itself (its own Origin) is no stranger; nor is curl without one."""
    answer = front.curl("-H", f"Origin: {front.url}", "-F", f"file=@{ca_file}", "-X", "POST", path=PREFIX + "ca.pem")
    assert answer.status == 204


def test_a_text_plain_list_as_vapix_libraries_send_it(front: Front) -> None:
    """Home Assistant's axis library: POST, Content-Type text/plain, action=list in the body."""
    answer = front.curl(
        "-H", "Content-Type: text/plain", "--data", f"action=list&group={GROUP}.TCPSocket", path=PARAM_CGI,
        user="viewer",
    )  # fmt: skip
    assert (answer.status, answer.body) == (200, f"{GROUP}.TCPSocket=no\r\n")


def test_a_base64_part_as_ansible_sends_it(front: Front, ca_file: Path) -> None:
    """curl's encoder=base64 sends Content-Transfer-Encoding: base64, as Ansible's uri module does."""
    fresh = ca_file.with_name("fresh.pem")
    fresh.write_bytes(pki.server_set().ca)
    answer = front.curl("-F", f"file=@{fresh};encoder=base64", "-X", "POST", path=PREFIX + "ca.pem")
    assert answer.status == 204, answer.body
    assert (front.localdata / "ca.pem").read_bytes() == fresh.read_bytes()


def test_a_viewer_cannot_forge_a_setting_line(front: Front) -> None:
    """CR LF in group= would have put a forged UseTLS=no line in a viewer's answer."""
    answer = front.curl(path=f"{PARAM_CGI}?action=list&group={GROUP}.Status%0d%0a{GROUP}.UseTLS=no", user="viewer")
    assert answer.status == 200
    assert answer.body.count("\r\n") == 1
    assert f"{GROUP}.UseTLS=no" not in answer.body.split("\r\n")


def test_the_same_upload_again_is_unchanged(front: Front, ca_file: Path) -> None:
    """A re-run of an upload: 204 with X-Dockerd-Restart: unchanged."""
    front.upload("ca.pem", ca_file)
    again = front.upload("ca.pem", ca_file)
    assert again.status == 204
    assert "X-Dockerd-Restart: unchanged" in again.headers
