"""``/local/dockerdwrapper/daemon.json`` in-process: what is refused (nothing stored), what is stored,
and what dockerd is asked to do (reload for what it reloads, restart otherwise); the rules and the
reload table themselves. tests/e2e/test_daemon_json.py drives the real dockerd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import TestResponse

from acap_http.manifest import ACCESS_ENV
from acap_http.supervisor import command, daemon_json
from acap_http.supervisor.settings import Settings
from tests import multipart
from tests.test_app import PREFIX, Harness

URL = PREFIX + "daemon.json"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _put(harness: Harness, body: bytes, level: str = "admin", query: str = "") -> TestResponse:
    return harness.client.put(URL, data=body, content_type="application/json", query_string=query,
                              environ_base={"REQUEST_URI": URL, "REMOTE_USER": level, ACCESS_ENV: level})  # fmt: skip


def _stored(harness: Harness) -> bytes | None:
    return harness.store.read_if_present("daemon.json")


def test_get_is_the_empty_document_until_one_is_stored(harness: Harness) -> None:
    answer = harness.client.get(URL, environ_base={"REQUEST_URI": URL})
    assert (answer.status_code, answer.mimetype, answer.data) == (200, "application/json", b"{}\n")


def test_a_label_is_a_reload_and_a_proxy_a_restart(harness: Harness) -> None:
    """labels: dockerd reloads them on SIGHUP; proxies: only a restart takes them. Each answer says which."""
    answer = _put(harness, b'{"labels": ["a=b"]}')
    assert (answer.status_code, answer.headers["X-Dockerd-Restart"]) == (204, "reloaded")
    assert harness.reloads == ["daemon.json changed (labels)"] and harness.restarts == []
    proxies = {"labels": ["a=b"], "proxies": {"http-proxy": "http://proxy.example:3128"}}
    answer = _put(harness, json.dumps(proxies).encode())
    assert answer.headers["X-Dockerd-Restart"] == "restarted" and harness.restarts == ["daemon.json changed (proxies)"]
    assert json.loads(_stored(harness) or b"") == proxies
    assert json.loads(harness.store.read("daemon.json.previous")) == {"labels": ["a=b"]}


def test_a_reload_while_dockerd_does_not_run_is_a_restart(harness: Harness) -> None:
    harness.dockerd_runs = False
    assert _put(harness, b'{"labels": ["a=b"]}').headers["X-Dockerd-Restart"] == "restarted"


def test_the_same_bytes_change_nothing(harness: Harness) -> None:
    _put(harness, b'{"labels": ["a=b"]}')
    before = (harness.store.read("daemon.json.previous"), len(harness.reloads))
    answer = _put(harness, b'{"labels": ["a=b"]}')
    assert (answer.status_code, answer.headers["X-Dockerd-Restart"]) == (204, "unchanged")
    assert (harness.store.read("daemon.json.previous"), len(harness.reloads)) == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "must hold a JSON object, not list"),
        (b'{"labels": ["a"], "labels": ["b"]}', "sets 'labels' twice"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"\xef\xbb\xbf{}", "starts with a byte order mark"),
        (b"{", "is not JSON"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "nests deeper than 32 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 32 levels"),
        (b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}", "nests deeper than 32 levels"),  # json reads it; a 500 before
        (b'{"hosts": ["tcp://0.0.0.0:2375"]}', "may not set hosts: acap-http gives dockerd this as a flag"),
        (b'{"data-root": "/", "tlsverify": false}', "may not set data-root, tlsverify"),
    ],
)
def test_refused_with_one_line_and_nothing_stored(harness: Harness, body: bytes, reason: str) -> None:
    _put(harness, b'{"labels": ["kept"]}')
    answer = _put(harness, body)
    assert answer.status_code == 400 and reason in answer.text and answer.text.count("\r\n") == 1, answer.text
    assert _stored(harness) == b'{"labels": ["kept"]}'


def test_what_dockerd_itself_refuses_is_not_stored(harness: Harness) -> None:
    harness.dockerd_refuses = "the following directives don't match any configuration option: no-such"
    answer = _put(harness, b'{"no-such": 1}')
    assert answer.status_code == 400
    assert answer.text == ("Refused: dockerd refuses it: the following directives don't match any configuration "
                           "option: no-such\r\n")  # fmt: skip
    assert _stored(harness) is None and harness.restarts == [] and harness.reloads == []


def test_a_multipart_file_as_curl_sends_it_and_revert(harness: Harness) -> None:
    body = multipart.body(multipart.part("file", b'{"labels": ["x=y"]}', "daemon.json"))
    answer = harness.client.post(URL, data=body, content_type=multipart.content_type(),
                                 environ_base={"REQUEST_URI": URL})  # fmt: skip
    assert answer.status_code == 204 and json.loads(_stored(harness) or b"") == {"labels": ["x=y"]}
    reverted = harness.client.post(URL, query_string="action=revert",
                                   environ_base={"REQUEST_URI": URL + "?action=revert"})  # fmt: skip
    assert reverted.status_code == 204 and _stored(harness) == b"{}\n"
    assert json.loads(harness.store.read("daemon.json.previous")) == {"labels": ["x=y"]}


def test_revert_without_a_previous_one_is_404(harness: Harness) -> None:
    answer = harness.client.post(URL, query_string="action=revert", environ_base={"REQUEST_URI": URL})
    assert answer.status_code == 404 and "no daemon.json.previous" in answer.text


def test_a_hand_edited_document_dockerd_refuses_is_still_read(harness: Harness) -> None:
    """Status 2 from a file edited on disk: GET gives it as it is, and a good PUT replaces it (a restart)."""
    harness.store.write("daemon.json", b'{"no-such": true,\n', 0o600)
    assert harness.client.get(URL, environ_base={"REQUEST_URI": URL}).data == b'{"no-such": true,\n'
    assert _put(harness, b"{}").headers["X-Dockerd-Restart"] == "restarted"


def test_cross_site_and_levels_are_refused(harness: Harness) -> None:
    answer = harness.client.put(URL, data=b"{}", headers={"Origin": "http://evil.example"},
                                environ_base={"REQUEST_URI": URL, "HTTP_HOST": "127.0.0.1:8080"})  # fmt: skip
    assert answer.status_code == 403 and _stored(harness) is None


# --- the tables -------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [True, False])
@pytest.mark.parametrize("ipc", [True, False])
@pytest.mark.parametrize("level", ["debug", "warn"])
def test_every_flag_of_the_command_line_is_in_the_table(tmp_path: Path, tls: bool, ipc: bool, level: str) -> None:
    """The reserved directives come from one table of the product's flags: a flag added to the command line
    without its directive in the table fails here, whatever the settings."""
    settings = Settings(use_tls=tls, tcp_socket=True, ipc_socket=ipc, dockerd_log_level=level, sd_card=False)
    host = command.Host(rootless=True, app_dir=tmp_path, runtime_dir=tmp_path / "run", address="127.0.0.1", path="")
    built = command.dockerd(settings, host, tmp_path / "data", 1, daemon_json_sets=frozenset())
    flags = {arg.split("=")[0] for arg in built.argv[built.argv.index("--") + 1 :] if arg.startswith("-")}
    known = set(command.FLAG_DIRECTIVES) | set(command.OPTIONAL_FLAG_DIRECTIVES)
    assert flags <= known, flags - known
    assert frozenset(command.FLAG_DIRECTIVES.values()) == daemon_json.RESERVED


@pytest.mark.parametrize(
    ("old", "new", "reload"),
    [
        ({}, {"labels": ["a=b"]}, True),
        ({"labels": ["a=b"]}, {}, True),
        ({}, {"registry-mirrors": ["https://m.example"], "insecure-registries": ["r.example:5000"]}, True),
        ({}, {"live-restore": False}, True),
        ({}, {"proxies": {"http-proxy": "http://p:1"}}, False),
        ({"labels": ["a=b"]}, {"labels": ["a=b"], "log-driver": "local"}, False),
        ({}, {"default-address-pools": [{"base": "10.9.0.0/16", "size": 24}]}, False),
    ],
)
def test_reload_or_restart(old: dict[str, object], new: dict[str, object], reload: bool) -> None:
    assert daemon_json.reloadable(daemon_json.changed_keys(old, new)) is reload
