"""The operator's daemon.json as dockerd is given it: the manual's proxies on every Docker generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acap_http.supervisor import daemon_json, versions

PROXIES = {
    "http-proxy": "http://proxy.example.com:3128",
    "https-proxy": "https://proxy.example.com:3129",
    "no-proxy": "*.test.example.com,.example.org,127.0.0.0/8",
}


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", (20, 10, 24)),
        ("Docker version 26.1.5+dfsg1, build a72d7cd", (26, 1, 5)),
        ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1", (1, 6, 20)),
        ("containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1", (1, 7, 24)),
        ("rootlesskit version 2.0.2", (2, 0, 2)),
        ("no version here", ()),
    ],
)
def test_versions_are_read_from_what_the_programs_print(text: str, version: versions.Version) -> None:
    """The first dotted number of --version's line, as the generations of Debian 12 and 13 print it."""
    assert versions.parse(text) == version


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "localdata" / "daemon.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_docker_20_gets_the_proxies_in_its_environment_and_a_file_without_them(tmp_path: Path) -> None:
    """dockerd 20.10 refuses "proxies": it reads a copy without the key, and the variables it knows."""
    path = _write(tmp_path, {"proxies": PROXIES, "labels": ["a=b"]})
    runtime = tmp_path / "run"
    given = daemon_json.effective(path, runtime, lambda: (20, 10, 24))
    assert given.config_file == runtime / "daemon.json"
    assert json.loads(given.config_file.read_text()) == {"labels": ["a=b"]}
    assert given.config_file.stat().st_mode & 0o777 == 0o600
    assert dict(given.env) == {
        "HTTP_PROXY": PROXIES["http-proxy"],
        "HTTPS_PROXY": PROXIES["https-proxy"],
        "NO_PROXY": PROXIES["no-proxy"],
    }
    assert json.loads(path.read_text())["proxies"] == PROXIES  # the operator's file is untouched


@pytest.mark.parametrize("version", [(23, 0, 0), (26, 1, 5), versions.UNKNOWN])
def test_docker_23_and_later_read_the_file_as_written(tmp_path: Path, version: versions.Version) -> None:
    path = _write(tmp_path, {"proxies": PROXIES})
    given = daemon_json.effective(path, tmp_path / "run", lambda: version)
    assert given.config_file == path
    assert dict(given.env) == {}


def test_the_version_is_asked_only_for_a_file_with_proxies(tmp_path: Path) -> None:
    """Asking costs a run of dockerd: a file without proxies goes as it is, unasked."""
    path = _write(tmp_path, {"labels": ["a=b"]})

    def never() -> versions.Version:
        raise AssertionError("dockerd's version was asked")

    assert daemon_json.effective(path, tmp_path / "run", never).config_file == path


@pytest.mark.parametrize("proxies", [["http://p:1"], {"ftp-proxy": "ftp://p:1"}, {"http-proxy": 3128}, "http://p:1"])
def test_proxies_dockerd_would_refuse_are_left_for_dockerd_to_refuse(tmp_path: Path, proxies: object) -> None:
    """Not the manual's object: the file goes as written, and dockerd says what is wrong (Status 2)."""
    path = _write(tmp_path, {"proxies": proxies})
    given = daemon_json.effective(path, tmp_path / "run", lambda: (20, 10, 24))
    assert given.config_file == path
    assert dict(given.env) == {}


@pytest.mark.parametrize(
    ("text", "on"),
    [("{}", True), ('{"live-restore": false}', False), ('{"live-restore": true}', True), ("[", True), ("[]", True)],
)
def test_live_restore_is_ours_unless_the_operator_says_otherwise(tmp_path: Path, text: str, on: bool) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    assert daemon_json.live_restore_on(path) is on
