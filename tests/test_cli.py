"""The command line fails with one line and exit code 1, never a traceback."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from tests import pki
from tests.e2e.front import free_port

CLI = (sys.executable, "-m", "acap_http")


def _run(*args: str, env: dict[str, str] | None = None, user: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [*CLI, *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)


def _one_line_error(done: subprocess.CompletedProcess[str], phrase: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acap-http: ") and phrase in lines[0], done.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    assert _run("certs", "init", "--host", "127.0.0.1", "--out", str(out), "--key-type", "ec").returncode == 0
    return out


def test_push_to_an_unreachable_url(certs: Path) -> None:
    """Nothing listens there: one line naming the URL and the reason."""
    url = f"http://127.0.0.1:{free_port()}"
    done = _run("certs", "push", "--url", url, "--user", "admin", "--dir", str(certs), env={"ACAP_HTTP_PASSWORD": "x"})
    _one_line_error(done, f"cannot reach {url}: ")


def test_push_of_a_directory_without_the_files(tmp_path: Path) -> None:
    done = _run("certs", "push", "--url", "http://127.0.0.1:1", "--user", "admin", "--dir", str(tmp_path))
    _one_line_error(done, "lacks ca.pem, server-cert.pem, server-key.pem")


def test_push_without_a_password_or_a_terminal(certs: Path) -> None:
    done = _run("certs", "push", "--url", "http://127.0.0.1:1", "--user", "admin", "--dir", str(certs), env={})
    _one_line_error(done, "no password: set ACAP_HTTP_PASSWORD")


def test_init_into_an_unwritable_directory(tmp_path: Path) -> None:
    """A directory the user may not write: one line, nothing half made."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    tmp_path.chmod(0o755)
    done = _run("certs", "init", "--host", "127.0.0.1", "--out", str(locked / "certs"), user=65534)
    _one_line_error(done, f"cannot write the certificates to {locked / 'certs'}: Permission denied")


def test_init_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = _run("certs", "init", "--host", "127.0.0.1", "--out", str(tmp_path / "file" / "certs"))
    _one_line_error(done, "cannot write the certificates to")


def _check(directory: Path, *hosts: str) -> subprocess.CompletedProcess[str]:
    return _run("certs", "check", str(directory), *(arg for host in hosts for arg in ("--host", host)))


def test_check_of_a_good_set_exits_0(certs: Path) -> None:
    """What certs init makes passes every check, the client pair's included, and the hosts asked for."""
    done = _check(certs, "127.0.0.1")
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert all(line.startswith("OK ") for line in lines), done.stdout
    assert "OK   server-cert.pem names 127.0.0.1" in lines
    assert "OK   cert.pem has extendedKeyUsage clientAuth" in lines


def test_check_names_a_host_the_certificate_does_not_cover(certs: Path) -> None:
    done = _check(certs, "camera.example")
    assert done.returncode == 1
    assert "FAIL server-cert.pem does not name camera.example (its SANs: 127.0.0.1)" in done.stdout.splitlines()


def test_check_finds_a_client_certificate_of_another_ca(certs: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(certs, mixed)
    stranger = pki.Authority("another CA").client_files(tmp_path / "stranger")
    for name in ("cert.pem", "key.pem"):
        (mixed / name).chmod(0o600)
        shutil.copy(stranger / name, mixed / name)
    done = _check(mixed)
    assert done.returncode == 1
    assert "FAIL cert.pem is not issued by any certificate in ca.pem" in done.stdout.splitlines()


def test_check_finds_a_certificate_not_valid_yet(tmp_path: Path) -> None:
    authority = pki.Authority()
    key = pki.rsa_key()
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "early")]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(later)
        .not_valid_after(later + datetime.timedelta(days=30))
    )
    files = {
        "ca.pem": pki.cert_pem(authority.cert),
        "server-cert.pem": pki.cert_pem(cert.sign(authority.key, hashes.SHA256())),
        "server-key.pem": pki.key_pem(key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    done = _check(tmp_path)
    assert done.returncode == 1
    assert f"FAIL server-cert.pem is not valid before {later:%Y-%m-%d %H:%M} UTC" in done.stdout.splitlines()


def test_check_of_a_missing_directory(tmp_path: Path) -> None:
    _one_line_error(_check(tmp_path / "nothing"), "cannot read")


def test_ups_parent_loads_neither_werkzeug_nor_the_parameter_store() -> None:
    """``up``'s own process starts Apache and the application, nothing more: what it needs of
    names and paths comes from light modules, so it does not carry the application's weight."""
    script = (
        "import sys\n"
        "import acap_http.cli\n"
        "from acap_http.options import HostOptions\n"
        "from acap_http.servers.local_front import up\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('werkzeug', 'flup', 'cryptography')"
        " or m in ('acap_http.params', 'acap_http.application')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
