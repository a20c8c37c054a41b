"""The parts of the rotation the collection does on the controller, without a device: the PKI the
pki module keeps (what it issues again, and why), the wait for Status after an upload, and the
proof over mutual TLS that dockerd serves the certificate just pushed."""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils import docker_tls, pki, vapix
from cryptography import x509

from acap_http.config import CHECKOUT_DIR

MODULE = CHECKOUT_DIR / "ansible/ansible_collections/acap_http/dockerdwrapper/plugins/modules/pki.py"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def run_pki(tmp_path: Path, **args: Any) -> dict[str, Any]:
    """The pki module as Ansible runs it (its arguments in a file), in a process of its own."""
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"path": str(tmp_path / "pki"), **args}}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True, check=False)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_pki_is_made_once_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    """A CA, the client pair and each host's pair, its addresses as IP names and the rest as DNS names;
    run again, everything is kept."""
    servers = {"acap1": ["127.0.0.2", "edge1.example"], "acap2": []}
    made = run_pki(tmp_path, servers=servers)
    assert made["changed"] and made["ca_made"] and sorted(made["issued"]) == ["acap1", "acap2", "client"]
    directory = tmp_path / "pki"
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert oct((directory / "acap1-key.pem").stat().st_mode & 0o777) == "0o600"
    certificate = x509.load_pem_x509_certificate((directory / "acap1-cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    certificate.verify_directly_issued_by(ca)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(name.value) for name in names] == ["127.0.0.2", "edge1.example"]
    assert isinstance(next(iter(names)), x509.IPAddress)
    again = run_pki(tmp_path, servers=servers)
    assert (again["changed"], again["ca_made"], again["issued"]) == (False, False, {})
    assert again["kept"] == ["client", "acap1", "acap2"]


def test_renew_before_reissues_with_the_same_key_and_check_mode_writes_nothing(tmp_path: Path) -> None:
    run_pki(tmp_path, servers={"acap1": ["127.0.0.2"]})
    directory = tmp_path / "pki"
    key, certificate = (directory / "acap1-key.pem").read_bytes(), (directory / "acap1-cert.pem").read_bytes()
    would = run_pki(tmp_path, servers={"acap1": ["127.0.0.2"]}, renew_before=100, _ansible_check_mode=True)
    assert would["changed"] and would["issued"]["acap1"].startswith("expires ")
    assert (directory / "acap1-cert.pem").read_bytes() == certificate
    renewed = run_pki(tmp_path, servers={"acap1": ["127.0.0.2"]}, renew_before=100)
    assert sorted(renewed["issued"]) == ["acap1", "client"] and not renewed["ca_made"]
    assert (directory / "acap1-cert.pem").read_bytes() != certificate
    assert (directory / "acap1-key.pem").read_bytes() == key


def test_a_host_may_not_take_the_clients_name(tmp_path: Path) -> None:
    failed = run_pki(tmp_path, servers={"client": []})
    assert failed["failed"] and "may not be called" in failed["msg"]


@pytest.fixture(scope="module")
def authority() -> tuple[Any, Any]:
    key = pki.new_key()
    return pki.make_ca(key, "test CA", 3650, NOW), key


def _pair(authority: tuple[Any, Any], sans: list[str], days: int = 90) -> tuple[Any, Any]:
    key = pki.new_key()
    return pki.issue(authority[0], authority[1], key, "acap1", sans, True, days, NOW), key


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("nothing", None),
        ("missing", "missing"),
        ("expiring", "expires 2026-01-21, within 30 days"),
        ("other CA", "not issued by this CA"),
        ("other key", "the key is not the certificate's"),
        ("other names", "its names are not 127.0.0.2"),
    ],
)
def test_why_a_pair_is_issued_again(authority: tuple[Any, Any], change: str, reason: str | None) -> None:
    certificate, key = _pair(authority, ["127.0.0.2"], days=20 if change == "expiring" else 90)
    if change == "missing":
        certificate = None
    elif change == "other CA":
        other_key = pki.new_key()
        certificate = pki.issue(pki.make_ca(other_key, "test CA", 10, NOW), other_key, key, "a", ["127.0.0.2"], True,
                                90, NOW)  # fmt: skip
    elif change == "other key":
        key = pki.new_key()
    elif change == "other names":
        certificate, key = _pair(authority, ["127.0.0.3"])
    assert pki.reason_to_issue(certificate, key, authority[0], ["127.0.0.2"], 30, NOW) == reason


class Device:
    """A front whose Status follows ``codes`` (the last one stays), read by wait_for_status on a clock
    that moves only when it sleeps."""

    def __init__(self, codes: list[int], application: str = "Running") -> None:
        self.codes, self.application_state, self.now = codes, application, 0.0

    def status(self) -> tuple[int, str]:
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        return code, "RUNNING" if code == 0 else "SOMETHING"

    def application(self) -> str:
        return self.application_state

    def wait(self, codes: list[int], timeout: float, restart_due: bool = False) -> tuple[dict[str, Any], str | None]:
        def sleep(seconds: float) -> None:
            self.now += seconds

        found: tuple[dict[str, Any], str | None] = vapix.wait_for_status(
            self, codes, timeout, restart_due, clock=lambda: self.now, sleep=sleep
        )
        return found


def test_after_a_restarting_upload_the_old_dockerds_status_does_not_count() -> None:
    """The front answers the upload before its supervisor stops the old dockerd: 0 counts once another
    Status was seen; with no restart due, at once."""
    found, failure = Device([0, 0, 1, 1, 0]).wait([0], 60, restart_due=True)
    assert failure is None and found["waited"] == pytest.approx(4 * vapix.STATUS_INTERVAL)
    assert Device([0, 1, 0]).wait([0], 60)[0]["waited"] == 0


def test_a_restart_not_seen_is_trusted_after_a_while() -> None:
    found, failure = Device([0]).wait([0], 60, restart_due=True)
    assert failure is None and found["waited"] >= vapix.RESTART_SEEN_WITHIN


def test_the_wait_fails_at_once_on_a_stopped_application_and_at_its_time_otherwise() -> None:
    assert "the application is stopped" in str(Device([-1], "Stopped").wait([0], 60)[1])
    found, failure = Device([2]).wait([0], 3)
    assert failure is not None and failure.startswith("Status is 2 SOMETHING after 3 s, not one of [0]: dockerd exited")
    assert found["waited"] >= 3


# --- the proof over mutual TLS --------------------------------------------------------------------


class Dockerd(http.server.BaseHTTPRequestHandler):
    """dockerd's GET /version, behind mutual TLS."""

    answer: ClassVar[bytes] = json.dumps({"Version": "27.5.1", "ApiVersion": "1.47"}).encode()

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/version" else 404)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fleet_pki(tmp_path: Path) -> Path:
    run_pki(tmp_path, servers={"acap1": ["127.0.0.1"]})
    return tmp_path / "pki"


@pytest.fixture
def dockerd(fleet_pki: Path) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(fleet_pki / "acap1-cert.pem", fleet_pki / "acap1-key.pem")
    context.load_verify_locations(fleet_pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dockerd)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _served_fingerprint(fleet_pki: Path) -> str:
    return str(vapix.certificate_fingerprints((fleet_pki / "acap1-cert.pem").read_bytes())[0])


def _context(fleet_pki: Path) -> ssl.SSLContext:
    ca = (fleet_pki / "ca.pem").read_bytes()
    context: ssl.SSLContext = docker_tls.client_context(
        ca, str(fleet_pki / "client-cert.pem"), str(fleet_pki / "client-key.pem")
    )
    return context


def test_the_proof_is_the_certificate_served_and_the_docker_api(fleet_pki: Path, dockerd: str) -> None:
    version, failure = docker_tls.wait_until_served(_served_fingerprint(fleet_pki), 5, dockerd, _context(fleet_pki))
    assert failure is None and version == {"Version": "27.5.1", "ApiVersion": "1.47"}


def test_another_certificate_served_fails_the_proof_once_its_time_is_up(fleet_pki: Path, dockerd: str) -> None:
    slept: list[float] = []
    version, failure = docker_tls.wait_until_served(
        "00:11", 1, dockerd, _context(fleet_pki), clock=lambda: len(slept) * 0.5, sleep=slept.append
    )
    assert version is None and failure is not None and "serves another certificate" in failure
    assert len(slept) == 2


def test_a_name_the_certificate_does_not_have_fails_the_proof(fleet_pki: Path, dockerd: str) -> None:
    _, failure = docker_tls.wait_until_served(
        _served_fingerprint(fleet_pki), 0, dockerd, _context(fleet_pki), tls_hostname="edge9.example"
    )
    assert failure is not None and "certificate verify failed" in failure


def test_a_client_without_the_pair_is_refused(fleet_pki: Path, dockerd: str) -> None:
    bare = ssl.create_default_context(cadata=(fleet_pki / "ca.pem").read_text())
    _, failure = docker_tls.wait_until_served(_served_fingerprint(fleet_pki), 0, dockerd, bare)
    assert failure is not None and "over mutual TLS" in failure
