"""The TLS lifecycle with real Apache, a real rootless dockerd and the real
docker CLI: certs init, push, rotation one file at a time and as a set.

The tests run in order on one ``up``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from tests import pki
from tests.e2e.front import PREFIX, Front, docker, dockerd_pids

CLI = (sys.executable, "-m", "acap_http")


class Lifecycle:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.front = Front(app_dir=root / "app", log_path=root / "up.log")

    def certs(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, ACAP_HTTP_PASSWORD=self.front.password or "")
        return subprocess.run([*CLI, "certs", *args], env=env, capture_output=True, text=True, timeout=120, check=False)

    def client_works(self, certs: Path) -> bool:
        done = docker(
            "version",
            "--format",
            "{{.Server.Version}}",
            host="tcp://127.0.0.1:2376",
            config=self.root / "cfg",
            certs=certs,
        )
        return done.returncode == 0

    def dockerd_pids(self) -> list[int]:
        return dockerd_pids(self.front.app_dir)

    def restarts_since(self, mark: int) -> int:
        return self.front.log()[mark:].count("Stopping dockerd (pid")

    def sibling(self, authority: Path, name: str) -> Path:
        """A new server pair and client pair signed by the CA that `certs init` made in ``authority``."""
        ca_cert = x509.load_pem_x509_certificate((authority / "ca.pem").read_bytes())
        loaded = serialization.load_pem_private_key((authority / "ca-key.pem").read_bytes(), password=None)
        ca_key: CertificateIssuerPrivateKeyTypes = loaded  # type: ignore[assignment]
        out = self.root / name
        out.mkdir()
        server_key, client_key = pki.ec_key(), pki.ec_key()
        server = pki.certificate("server", server_key, (ca_cert, ca_key), hosts=("127.0.0.1",), server=True)
        client = pki.certificate("client", client_key, (ca_cert, ca_key), client=True)
        (out / "ca.pem").write_bytes(pki.cert_pem(ca_cert))
        (out / "server-cert.pem").write_bytes(pki.cert_pem(server))
        (out / "server-key.pem").write_bytes(pki.key_pem(server_key))
        (out / "cert.pem").write_bytes(pki.cert_pem(client))
        (out / "key.pem").write_bytes(pki.key_pem(client_key))
        return out


@pytest.fixture(scope="module")
def life(e2e_root: Path) -> Iterator[Lifecycle]:
    root = e2e_root / "lifecycle"
    root.mkdir(mode=0o755)
    made = Lifecycle(root)
    made.front.start()
    yield made
    if made.front.process is not None and made.front.process.poll() is None:
        made.front.stop()


def test_init_push_and_docker(life: Lifecycle) -> None:
    """certs init --host 127.0.0.1, certs push: Status 0, and docker --tlsverify with the client files answers."""
    made = life.certs("init", "--host", "127.0.0.1", "--out", str(life.root / "A"))
    assert made.returncode == 0, made.stderr
    assert "docker context create" in made.stdout
    mark = life.front.mark()
    pushed = life.certs("push", "--url", life.front.url, "--user", "admin", "--dir", str(life.root / "A"))
    assert pushed.returncode == 0 and pushed.stdout.startswith("204"), pushed.stdout + pushed.stderr
    life.front.wait_status("0 RUNNING", since=mark)
    assert life.client_works(life.root / "A")


def test_rotation_one_file_at_a_time(life: Lifecycle) -> None:
    """B's certificate alone: same dockerd, still 0, A's client works, the 204 says why. B's key: one restart."""
    b = life.sibling(life.root / "A", "B")
    (pid,) = life.dockerd_pids()
    mark = life.front.mark()
    answer = life.front.upload("server-cert.pem", b / "server-cert.pem")
    assert answer.status == 204
    assert "X-Dockerd-Restart: refused: server-key.pem does not match server-cert.pem" in answer.headers
    time.sleep(1.5)
    assert life.dockerd_pids() == [pid]
    assert life.front.status() == "0 RUNNING"
    assert life.client_works(life.root / "A")
    assert life.restarts_since(mark) == 0

    mark = life.front.mark()
    answer = life.front.upload("server-key.pem", b / "server-key.pem")
    assert answer.status == 204 and "X-Dockerd-Restart" not in answer.headers
    life.front.wait_status("0 RUNNING", since=mark)
    time.sleep(0.5)
    assert life.restarts_since(mark) == 1
    assert life.dockerd_pids() != [pid]
    assert life.client_works(b)


def test_set_upload_is_one_restart(life: Lifecycle) -> None:
    """A set upload of C (another CA altogether) restarts dockerd exactly once; C's client works."""
    made = life.certs("init", "--host", "127.0.0.1", "--key-type", "ec", "--out", str(life.root / "C"))
    assert made.returncode == 0, made.stderr
    c = life.root / "C"
    mark = life.front.mark()
    parts = [arg for name in ("ca.pem", "server-cert.pem", "server-key.pem") for arg in ("-F", f"{name}=@{c / name}")]
    answer = life.front.curl(*parts, "-X", "POST", path=PREFIX + "tls")
    assert answer.status == 204, answer
    life.front.wait_status("0 RUNNING", since=mark)
    time.sleep(0.5)
    assert life.restarts_since(mark) == 1
    assert life.client_works(c)
    assert not life.client_works(life.root / "A")  # its CA is no longer dockerd's


def test_stopped_dockerd_is_not_started_into_a_bad_set(life: Lifecycle) -> None:
    """With dockerd stopped, a mismatched set is Status 8 and no dockerd; fixing it gives 0."""
    life.front.wait_status("4 NO SOCKET", since=life.front.update(TCPSocket="no"))
    c, b = life.root / "C", life.root / "B"
    mismatched = ["-F", f"ca.pem=@{c / 'ca.pem'}", "-F", f"server-cert.pem=@{c / 'server-cert.pem'}"]
    mismatched += ["-F", f"server-key.pem=@{b / 'server-key.pem'}"]
    assert life.front.curl(*mismatched, "-X", "POST", path=PREFIX + "tls").status == 204
    life.front.wait_status("8 TLS CERT INVALID", since=life.front.update(TCPSocket="yes"))
    assert life.dockerd_pids() == []
    mark = life.front.mark()
    assert life.front.upload("server-key.pem", c / "server-key.pem").status == 204
    life.front.wait_status("0 RUNNING", since=mark)
    assert life.client_works(c)


def test_summary_never_contains_a_private_key(life: Lifecycle) -> None:
    """GET …/tls describes the set and never contains the string PRIVATE KEY."""
    answer = life.front.curl(path=PREFIX + "tls")
    assert answer.status == 200
    assert "PRIVATE KEY" not in answer.body
    assert '"dockerd_would_start": true' in answer.body
