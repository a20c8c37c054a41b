"""param.cgi as an operator meets it: real curl --anyauth through real Apache."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import Front

URL = "/axis-cgi/param.cgi"
GROUP = "root.dockerdwrapper"


def _get(front: Front, query: str, user: str = "admin") -> tuple[int, str]:
    answer = front.curl(path=f"{URL}?{query}", user=user)
    return answer.status, answer.body


def test_list_whole_group_in_manifest_order(front: Front) -> None:
    """The whole group is seven lines in manifest order."""
    status, body = _get(front, f"action=list&group={GROUP}", user="viewer")
    assert status == 200
    names = [line.split("=", 1)[0] for line in body.splitlines()]
    assert names == [
        f"{GROUP}.{name}"
        for name in (
            "SDCardSupport",
            "UseTLS",
            "TCPSocket",
            "IPCSocket",
            "ApplicationLogLevel",
            "DockerdLogLevel",
            "Status",
        )
    ]
    assert f"{GROUP}.Status=4 NO SOCKET" in body.splitlines()  # this front runs without dockerd


def test_list_one_and_unknown(front: Front) -> None:
    """One name lists one line; an unknown group is the VAPIX error line."""
    assert _get(front, f"action=list&group={GROUP}.UseTLS") == (200, f"{GROUP}.UseTLS=yes\r\n")
    assert _get(front, "action=list&group=root.Network") == (
        200,
        "# Error: Error -1 getting param in group 'root.Network'\r\n",
    )


@pytest.mark.parametrize(
    "pairs",
    [
        f"{GROUP}.UseTLS=maybe",
        f"{GROUP}.NoSuchParam=yes",
        f"{GROUP}.Status=0%20RUNNING",
        f"{GROUP}.IPCSocket=yes&{GROUP}.UseTLS=maybe",
    ],
    ids=["invalid value", "unknown name", "Status", "valid pair beside a bad one"],
)
def test_refused_updates_change_nothing(front: Front, pairs: str) -> None:
    """Each refused update is an error line and changes nothing, not even its valid pairs."""
    before = _get(front, f"action=list&group={GROUP}")
    status, body = _get(front, f"action=update&{pairs}")
    assert status == 200
    assert body.startswith("# Error: Error setting '") and body.endswith("'!\r\n")
    assert _get(front, f"action=list&group={GROUP}") == before


def test_viewer_lists_but_cannot_update(front: Front) -> None:
    """A viewer gets the list; its updates are refused by GET (Apache) and by POST body (the app)."""
    assert _get(front, f"action=list&group={GROUP}.IPCSocket", user="viewer") == (200, f"{GROUP}.IPCSocket=no\r\n")
    assert _get(front, f"action=update&{GROUP}.IPCSocket=yes", user="viewer")[0] == 401
    posted = front.curl("-d", f"action=update&{GROUP}.IPCSocket=yes", path=URL, user="viewer")
    assert posted.status == 403
    assert _get(front, f"action=list&group={GROUP}.IPCSocket") == (200, f"{GROUP}.IPCSocket=no\r\n")


def test_no_credentials_is_401(front: Front) -> None:
    """Without credentials Apache answers 401 for list and update alike."""
    assert front.curl(path=f"{URL}?action=list&group={GROUP}", user=None).status == 401
    assert front.curl(path=f"{URL}?action=update&{GROUP}.UseTLS=no", user=None).status == 401


def test_updates_survive_a_restart_of_up(make_front: Callable[..., Front]) -> None:
    """Updates of one and of two names answer OK, are listed, and are still there after up restarts."""
    front = make_front()
    front.start()
    assert _get(front, f"action=update&{GROUP}.UseTLS=no") == (200, "OK\r\n")
    posted = front.curl("-d", f"action=update&{GROUP}.TCPSocket=no&{GROUP}.DockerdLogLevel=error", path=URL)
    assert (posted.status, posted.body) == (200, "OK\r\n")
    expected = f"{GROUP}.UseTLS=no\r\n{GROUP}.TCPSocket=no\r\n{GROUP}.DockerdLogLevel=error\r\n"
    query = f"action=list&group={GROUP}.UseTLS,{GROUP}.TCPSocket,{GROUP}.DockerdLogLevel"
    assert _get(front, query) == (200, expected)
    assert front.stop() == 0
    front.start()
    assert _get(front, query) == (200, expected)


def test_application_log_level_switches_live(make_front: Callable[..., Front]) -> None:
    """ApplicationLogLevel=debug turns the app's debug lines on at once; info turns them off."""
    front = make_front()
    front.start()
    loud_from = front.mark()
    assert _get(front, f"action=update&{GROUP}.ApplicationLogLevel=debug") == (200, "OK\r\n")
    _get(front, f"action=list&group={GROUP}.UseTLS")
    assert "DEBU[" in front.log()[loud_from:]
    assert _get(front, f"action=update&{GROUP}.ApplicationLogLevel=info") == (200, "OK\r\n")
    quiet_from = len(front.log())
    _get(front, f"action=list&group={GROUP}.UseTLS")
    assert "DEBU[" not in front.log()[quiet_from:]


def test_fifty_concurrent_updates(make_front: Callable[..., Front]) -> None:
    """50 concurrent updates leave a store file that parses and holds one of the written values,
    and the app still serving."""
    front = make_front()
    front.start()
    levels = ["debug", "info", "warn", "error", "fatal"]

    def update(i: int) -> tuple[int, str]:
        return _get(front, f"action=update&{GROUP}.DockerdLogLevel={levels[i % len(levels)]}&{GROUP}.UseTLS=no")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(update, range(50)))
    assert answers == [(200, "OK\r\n")] * 50
    stored = json.loads((front.app_dir / "params.json").read_text())
    assert stored["DockerdLogLevel"] in levels and stored["UseTLS"] == "no"
    assert _get(front, f"action=list&group={GROUP}.DockerdLogLevel") == (
        200,
        f"{GROUP}.DockerdLogLevel={stored['DockerdLogLevel']}\r\n",
    )


def test_operator_lists_but_changes_nothing(front: Front, tmp_path: Path) -> None:
    """The operator level lists; updates (in the URL: Apache's 401, in a body: the app's 403) and the
    admin's TLS endpoints (upload, delete, the set summary) are refused."""
    assert _get(front, f"action=list&group={GROUP}.IPCSocket", user="operator") == (200, f"{GROUP}.IPCSocket=no\r\n")
    assert _get(front, f"action=update&{GROUP}.IPCSocket=yes", user="operator")[0] == 401
    assert front.curl("-d", f"action=update&{GROUP}.IPCSocket=yes", path=URL, user="operator").status == 403
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.server_set().ca)
    assert front.upload("ca.pem", ca, user="operator").status == 401
    assert front.curl("-X", "DELETE", path="/local/dockerdwrapper/ca.pem", user="operator").status == 401
    assert _get(front, f"action=list&group={GROUP}.IPCSocket") == (200, f"{GROUP}.IPCSocket=no\r\n")


@pytest.mark.parametrize("user", ["viewer", "operator"])
def test_the_set_summary_is_admin_only(front: Front, user: str) -> None:
    """GET …/tls describes the key too (its public half): only an admin may read it."""
    assert front.curl(path="/local/dockerdwrapper/tls", user=user).status == 401
    assert front.curl(path="/local/dockerdwrapper/tls").status == 200
