"""daemon.json over HTTP with the real dockerd, rootless and rootful, through Apache with curl: a
label is reloaded (SIGHUP, the same dockerd), proxies restart it, a running container keeps its pid
through both; what dockerd or the product refuses is a 400, nothing stored, dockerd untouched."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.front import Answer
from tests.e2e.running import IMAGE, TICKER, Mode, running_mode
from tests.waiting import until

URL = "/local/dockerdwrapper/daemon.json"


@pytest.fixture(scope="module", params=["rootful", "rootless"])
def mode(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Mode]:
    yield from running_mode(e2e_root / f"daemon-json-{request.param}", request.param, ("sh", "echo", "sleep"))


def _put(mode: Mode, document: object | bytes) -> Answer:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    body = mode.root / "put.json"
    body.write_bytes(data)
    return mode.front.curl("-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", f"@{body}", path=URL)


def _put_settled(mode: Mode, document: object) -> None:
    """Store ``document`` and wait for what it did to dockerd to be over."""
    mark = mode.front.mark()
    answer = _put(mode, document)
    assert answer.status == 204, answer.body
    if _restart_header(answer) == "restarted":
        mode.front.wait_status("0 RUNNING", since=mark)
    mode.wait_docker()


def _restart_header(answer: Answer) -> str:
    found = [line.split(":", 1)[1].strip() for line in answer.headers.splitlines()
             if line.lower().startswith("x-dockerd-restart:")]  # fmt: skip
    return found[0] if found else ""


def _info(mode: Mode, field: str) -> str:
    return mode.docker("info", "--format", "{{json ." + field + "}}").stdout.strip()


def _until(condition: Callable[[], object], timeout: float = 20) -> None:
    until(condition, timeout, 0.1)


def test_labels_reload_proxies_restart_and_the_container_runs_on(mode: Mode) -> None:
    _put_settled(mode, {})
    ticker = mode.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c", TICKER)
    assert ticker.returncode == 0, ticker.stderr
    container = ticker.stdout.strip()
    pid = mode.docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
    dockerd = mode.dockerd()

    answer = _put(mode, {"labels": ["site=lab", "rack=7"]})
    assert (answer.status, _restart_header(answer)) == (204, "reloaded")
    _until(lambda: "site=lab" in _info(mode, "Labels"))
    assert mode.dockerd() == dockerd
    assert "dockerd reloads its configuration (SIGHUP)" in mode.front.log()

    proxies = {"http-proxy": "http://proxy.example.com:3128", "no-proxy": "127.0.0.0/8"}
    mark = mode.front.mark()
    answer = _put(mode, {"labels": ["site=lab", "rack=7"], "proxies": proxies})
    assert (answer.status, _restart_header(answer)) == (204, "restarted")
    mode.front.wait_status("0 RUNNING", since=mark)
    mode.wait_docker()
    assert mode.dockerd() != dockerd
    assert _info(mode, "HTTPProxy") == '"http://proxy.example.com:3128"' and "rack=7" in _info(mode, "Labels")
    assert mode.docker("inspect", "-f", "{{.State.Pid}} {{.State.Status}}", container).stdout.split() == [
        pid,
        "running",
    ]
    mode.docker("rm", "-f", container)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"hosts": ["tcp://0.0.0.0:2375"]}, "may not set hosts"),
        ({"no-such-option": True}, "dockerd refuses it: "),
        ({"labels": "not a list"}, "dockerd refuses it: "),
        (b'{"labels": ["a"], "labels": ["b"]}', "sets 'labels' twice"),
    ],
)
def test_refused_documents_change_nothing(mode: Mode, document: object, reason: str) -> None:
    """A 400 naming the key or saying dockerd's words; the stored file and the running dockerd as they were."""
    _put_settled(mode, {"labels": ["kept=1"]})
    stored = (mode.front.localdata / "daemon.json").read_bytes()
    dockerd = mode.dockerd()
    answer = _put(mode, document)
    assert answer.status == 400 and reason in answer.body, answer.body
    assert (mode.front.localdata / "daemon.json").read_bytes() == stored
    assert mode.dockerd() == dockerd and mode.front.status() == "0 RUNNING"


def test_identical_is_unchanged_and_revert_puts_the_previous_back(mode: Mode) -> None:
    _put_settled(mode, {"labels": ["first=1"]})
    _put_settled(mode, {"labels": ["second=2"]})
    same = _put(mode, {"labels": ["second=2"]})
    assert (same.status, _restart_header(same)) == (204, "unchanged")
    reverted = mode.front.curl("-X", "POST", path=URL + "?action=revert")
    assert (reverted.status, _restart_header(reverted)) == (204, "reloaded")
    assert json.loads(mode.front.curl(path=URL).body) == {"labels": ["first=1"]}
    _until(lambda: "first=1" in _info(mode, "Labels"))


def test_the_file_as_curl_uploads_it_and_a_viewer_may_not(mode: Mode) -> None:
    upload = mode.root / "daemon.json"
    upload.write_text('{"labels": ["uploaded=yes"]}\n')
    assert mode.front.curl("-F", f"file=@{upload}", "-X", "POST", path=URL).status == 204
    assert json.loads(mode.front.curl(path=URL).body) == {"labels": ["uploaded=yes"]}
    assert mode.front.curl(path=URL, user="viewer").status == 401
    assert _put(mode, {}).status == 204
