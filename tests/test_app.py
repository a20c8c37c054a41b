"""The TLS file endpoint served in-process: answers, side effects and limits."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.test import Client, TestResponse

from acap_http import config, manifest
from acap_http.app import AcapApp, Endpoints
from acap_http.filestore import FileStore
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.params import ParamStore
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.tls.store import TlsStore
from tests import multipart, pages, pki

PREFIX = "/local/dockerdwrapper/"


@pytest.fixture(scope="module")
def files() -> pki.ServerSet:
    return pki.server_set()


class Harness:
    def __init__(self, root: Path) -> None:
        self.store = FileStore(root / "localdata")
        self.restarts: list[str] = []
        self.reloads: list[str] = []
        self.dockerd_runs = True  # whether a reload is answered as one (else it is a restart)
        self.dockerd_refuses: str | None = None  # what the stand-in for dockerd's own check says
        self.front_serves = False  # --tls-by front with dockerd running: a new file is a reload
        loaded = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")
        params = ParamStore.from_manifest(loaded, root)
        self.daemon_json = DaemonJson(self.store.directory, lambda data: self.dockerd_refuses)
        self.client = Client(
            AcapApp(
                loaded,
                Endpoints(
                    tls_files=TlsEndpoints(
                        TlsStore(self.store.directory),
                        self.restarts.append,
                        tls_in_use=lambda: True,
                        reloads=lambda: self.front_serves,
                    ),
                    param_cgi=ParamCgi(ParamTree(params, loaded.app_name, {})),
                    daemon_json=DaemonJsonEndpoints(self.daemon_json, self.restarts.append, self._reload),
                    info=InfoEndpoint(lambda: {"application": {"name": loaded.app_name}}),
                    page=pages.page(loaded, params, TlsStore(self.store.directory)),
                    metrics=pages.metrics(loaded, params, TlsStore(self.store.directory)).view,
                ),
            )
        )

    def _reload(self, reason: str) -> bool:
        self.reloads.append(reason)
        return self.dockerd_runs

    def upload(self, name: str, data: bytes, field: str = "file") -> TestResponse:
        body = multipart.body(multipart.part(field, data, name))
        return self.post(name, body)

    def post(self, name: str, body: bytes, content_type: str = multipart.content_type()) -> TestResponse:
        return self.client.post(
            PREFIX + name, data=body, content_type=content_type, environ_base={"REQUEST_URI": PREFIX + name}
        )

    def listing(self) -> list[str]:
        return sorted(os.listdir(self.store.directory)) if self.store.directory.exists() else []


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.parametrize("name", ["ca.pem", "server-cert.pem", "server-key.pem"])
def test_post_stores_file_and_asks_for_restart(harness: Harness, files: pki.ServerSet, name: str) -> None:
    """A valid upload answers 204, lands with its mode, and asks for one dockerd restart."""
    data = files.by_name()[name]
    response = harness.upload(name, data.replace(b"\n", b"\r\n"))
    assert response.status_code == 204
    assert response.data == b""
    assert harness.store.read(name) == data
    mode = stat.S_IMODE(harness.store.path(name).stat().st_mode)
    assert mode == (0o600 if name == "server-key.pem" else 0o644)
    assert harness.restarts == [f"{name} uploaded"]


def test_delete_then_delete_again(harness: Harness, files: pki.ServerSet) -> None:
    """DELETE removes the file without a restart; a second DELETE is 404 with the original sentence."""
    harness.upload("ca.pem", files.ca)
    first = harness.client.delete(PREFIX + "ca.pem")
    second = harness.client.delete(PREFIX + "ca.pem")
    assert first.status_code == 204
    assert (second.status_code, second.text) == (404, "File not found in localdata\r\n")
    assert harness.listing() == []
    assert harness.restarts == ["ca.pem uploaded"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
def test_other_methods_are_405(harness: Harness, method: str) -> None:
    """Methods other than POST and DELETE get the original sentence and an Allow header."""
    response = harness.client.open(PREFIX + "ca.pem", method=method)
    assert (response.status_code, response.text) == (405, "Unsupported request method\r\n")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST", "DELETE"}
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "path",
    [
        PREFIX + "params.json",
        PREFIX + "..%2Fparams.json",
        PREFIX + "..%2F..%2Fetc%2Fpasswd",
        PREFIX + "data",
        PREFIX + "ca.pem%00",
        "/local/other/ca.pem",
    ],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_other_names_are_404_and_touch_nothing(harness: Harness, files: pki.ServerSet, path: str, method: str) -> None:
    """Only the endpoints of the manifest exist; any other name is 404 and nothing on disk changes."""
    harness.store.write("daemon.json", b"{}\n", 0o600)
    body = multipart.body(multipart.part("file", files.ca, "ca.pem"))
    response = harness.client.open(
        path, method=method, data=body, content_type=multipart.content_type(), environ_base={"REQUEST_URI": path}
    )
    assert response.status_code == 404
    assert harness.listing() == ["daemon.json"]
    assert harness.store.read("daemon.json") == b"{}\n"
    assert harness.restarts == []


def test_bad_pem_is_400_with_sentence_and_reason(harness: Harness, files: pki.ServerSet) -> None:
    """A key posted as the CA is refused with the original sentence plus the reason."""
    response = harness.upload("ca.pem", files.server_key)
    assert response.status_code == 400
    assert (
        response.text
        == "File is not a valid CA certificate. The block on line 1 is a private key, not a certificate.\r\n"
    )
    assert harness.listing() == []
    assert harness.restarts == []


def test_refused_upload_keeps_previous_file(harness: Harness, files: pki.ServerSet) -> None:
    """A bad upload changes nothing: the stored key stays as it was."""
    harness.upload("server-key.pem", files.server_key)
    response = harness.upload("server-key.pem", files.server_cert)
    assert response.status_code == 400
    assert response.text.startswith("File is not a valid server key. ")
    assert harness.store.read("server-key.pem") == files.server_key


@pytest.mark.parametrize(
    "case",
    [
        (OSError(28, "No space left on device"), 507, ": no space is left on the disk; the stored files are kept"),
        (OSError(30, "Read-only file system"), 507, ": the disk is read-only; the stored files are kept"),
        (OSError(5, "Input/output error"), 507, ": the disk fails (input/output error); the stored files are kept"),
        (OSError(13, "Permission denied"), 500, "; the stored files are kept"),
    ],
    ids=["full", "read-only", "failing", "other"],
)
def test_a_store_that_fails_answers_why_and_keeps_the_file(
    harness: Harness, files: pki.ServerSet, monkeypatch: pytest.MonkeyPatch, case: tuple[OSError, int, str]
) -> None:
    """When the file cannot be written: the original sentence, the disk's fault (507) if it is one,
    what is kept; the stored file unchanged and no restart asked."""
    error, status, said = case
    harness.upload("ca.pem", files.ca)
    before, restarts = harness.store.read("ca.pem"), len(harness.restarts)

    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(os, "replace", failing)
    response = harness.upload("ca.pem", pki.server_set().ca)
    assert (response.status_code, response.text) == (status, f"Failed to copy file to localdata{said}\r\n")
    assert harness.store.read("ca.pem") == before and len(harness.restarts) == restarts


def test_over_the_cap_is_413(harness: Harness) -> None:
    """A body over 64 KiB is refused before it is parsed."""
    response = harness.upload("ca.pem", b"A" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert "65536 bytes" in response.text


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/x-www-form-urlencoded", 415),
        ("application/x-pem-file", 415),
        ("multipart/form-data", 400),
        (multipart.content_type("b" * 71), 400),
    ],
    ids=["urlencoded", "raw pem", "no boundary", "71-character boundary"],
)
def test_not_a_multipart_upload(harness: Harness, files: pki.ServerSet, content_type: str, status: int) -> None:
    """Bodies that are not a well-formed multipart upload are refused with a 4xx and a reason."""
    response = harness.post("ca.pem", files.ca, content_type=content_type)
    assert response.status_code == status
    assert response.text.startswith("Upload to temporary file failed. ")
    assert harness.listing() == []


@pytest.mark.parametrize(
    ("parts", "count"),
    [
        ((), 0),
        ((multipart.part("file", b"text only, no filename"),), 0),
        ((multipart.part("file", b"a", "ca.pem"), multipart.part("other", b"b", "ca.pem")), 2),
    ],
    ids=["no parts", "a field but no file", "two files"],
)
def test_exactly_one_file_part(harness: Harness, parts: tuple[bytes, ...], count: int) -> None:
    """Zero or two file parts are 400, saying how many came."""
    response = harness.post("ca.pem", multipart.body(*parts))
    assert response.status_code == 400
    assert f"got {count}" in response.text
    assert harness.listing() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (multipart.many_tiny_parts(), 413),
        (multipart.body(multipart.part("file", b"x", "ca.pem"), close=False), 422),
        (multipart.long_line_part(megabytes=1), 413),
    ],
    ids=["5000 tiny parts", "no closing boundary", "CR LF then a megabyte without newline"],
)
def test_hostile_bodies(harness: Harness, body: bytes, status: int) -> None:
    """Hostile bodies get a 4xx and leave nothing on disk."""
    response = harness.post("ca.pem", body)
    assert response.status_code == status
    assert harness.listing() == []


def _set_body(files: dict[str, bytes]) -> bytes:
    return multipart.body(*(multipart.part(name, data, name) for name, data in files.items()))


def test_with_the_api_front_a_new_set_is_said_to_be_reloaded(harness: Harness, files: pki.ServerSet) -> None:
    """--tls-by front, dockerd running: the front takes the new set in place; the answer says so."""
    harness.front_serves = True
    response = harness.post("tls", _set_body(files.by_name()))
    assert (response.status_code, response.headers["X-Dockerd-Restart"]) == (204, "reloaded")
    assert harness.restarts == ["TLS set uploaded"]  # the supervisor decides, as for any change


def test_set_upload_stores_all_and_restarts_once(harness: Harness, files: pki.ServerSet) -> None:
    """POST …/tls with the three parts stores all three and asks for one restart."""
    response = harness.post("tls", _set_body(files.by_name()))
    assert response.status_code == 204
    assert "X-Dockerd-Restart" not in response.headers
    assert {name: harness.store.read(name) for name in files.by_name()} == files.by_name()
    assert harness.restarts == ["TLS set uploaded"]


@pytest.mark.parametrize(
    ("spoil", "phrase"),
    [
        (lambda f: f.pop("ca.pem"), "this one has missing ca.pem."),
        (lambda f: f.update({"daemon.json": b"{}"}), "this one has unexpected daemon.json."),
        (lambda f: f.update({"server-key.pem": f["server-cert.pem"]}), "File is not a valid server key."),
    ],
    ids=["a part missing", "an extra part", "a bad part"],
)
def test_set_upload_is_all_or_nothing(
    harness: Harness, files: pki.ServerSet, spoil: Callable[[dict[str, bytes]], object], phrase: str
) -> None:
    """A set with a part missing, extra or invalid is 400 and changes none of the stored files."""
    harness.post("tls", _set_body(files.by_name()))
    other = pki.server_set().by_name()
    spoil(other)
    response = harness.post("tls", _set_body(other))
    assert response.status_code == 400
    assert phrase in response.text
    assert {name: harness.store.read(name) for name in files.by_name()} == files.by_name()
    assert harness.restarts == ["TLS set uploaded"]


def test_upload_into_a_set_dockerd_refuses_says_why(harness: Harness, files: pki.ServerSet) -> None:
    """A single upload that leaves a mismatched set is stored, and its 204 says dockerd will not take it."""
    harness.post("tls", _set_body(files.by_name()))
    response = harness.upload("server-key.pem", pki.key_pem(pki.rsa_key()))
    assert response.status_code == 204
    assert response.headers["X-Dockerd-Restart"].startswith("refused: server-key.pem does not match server-cert.pem")


def test_set_summary_has_no_key_material(harness: Harness, files: pki.ServerSet) -> None:
    """GET …/tls describes the stored files as JSON and never returns key material."""
    harness.post("tls", _set_body(files.by_name()))
    response = harness.client.get(PREFIX + "tls", environ_base={"REQUEST_URI": PREFIX + "tls"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "PRIVATE KEY" not in response.text
    assert response.json is not None and response.json["dockerd_would_start"] is True
