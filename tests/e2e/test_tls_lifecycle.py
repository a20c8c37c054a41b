"""The TLS lifecycle with real Apache, a real rootless dockerd and the real
docker CLI: certs init, push, rotation one file at a time and as a set.

The tests share one ``up``; each first puts it in the state it needs (``Lifecycle.use``).
"""

from __future__ import annotations

import os
import subprocess
import sys
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

    def init(self, name: str, *args: str) -> Path:
        """``certs init`` into a new directory ``name``: a CA, a server and a client pair."""
        out = self.root / name
        made = self.certs("init", "--host", "127.0.0.1", "--out", str(out), *args)
        assert made.returncode == 0, made.stderr
        return out

    def use(self, files: Path) -> None:
        """dockerd serving the set in ``files`` on 2376 (TLS, TCP on), Status 0."""
        mark = self.front.mark()
        self.front.update(TCPSocket="yes", UseTLS="yes", IPCSocket="no")
        parts = [
            a for name in ("ca.pem", "server-cert.pem", "server-key.pem") for a in ("-F", f"{name}=@{files / name}")
        ]
        answer = self.front.curl(*parts, "-X", "POST", path=PREFIX + "tls")
        assert answer.status == 204
        # A set that was stored already restarts nothing; any other restarts dockerd, maybe not yet.
        restarting = "x-dockerd-restart: unchanged" not in answer.headers.lower()
        if restarting or "Parameters changed: Status=" in self.front.log()[mark:] or self.front.status() != "0 RUNNING":
            self.front.wait_status("0 RUNNING", since=mark)
        assert self.client_works(files)

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


@pytest.fixture(scope="module")
def a(life: Lifecycle) -> Path:
    """Set A, made once by certs init."""
    return life.init("A")


@pytest.mark.parametrize("before", ["no files", "another set running"])
def test_init_push_and_docker(life: Lifecycle, a: Path, before: str) -> None:
    """certs init --host 127.0.0.1, certs push: it prints the Status this push led to (not the one
    before it, 3 or the old dockerd's 0), and docker --tlsverify with the client files answers."""
    if before == "no files":
        for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
            life.front.curl("-X", "DELETE", path=PREFIX + name)
        life.front.wait_status("3 TLS CERT MISSING", since=life.front.restart_dockerd())
    else:
        life.use(a)
    fresh = life.init(f"push-{before.replace(' ', '-')}")
    pushed = life.certs("push", "--url", life.front.url, "--user", "admin", "--dir", str(fresh))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert pushed.stdout.splitlines() == ["204", "Status: 0 RUNNING"]
    assert life.client_works(fresh)
    again = life.certs("push", "--url", life.front.url, "--user", "admin", "--dir", str(fresh))
    assert again.stdout.splitlines() == ["204", "dockerd: unchanged", "Status: 0 RUNNING"]


def test_init_prints_the_next_commands(life: Lifecycle) -> None:
    made = life.certs("init", "--host", "127.0.0.1", "--out", str(life.root / "next"))
    assert "docker context create" in made.stdout and "certs push" in made.stdout


def test_rotation_one_file_at_a_time(life: Lifecycle, a: Path) -> None:
    """B's certificate alone: same dockerd, still 0, A's client works, the 204 says why. B's key: one restart."""
    life.use(a)
    b = life.sibling(a, "B")
    (pid,) = life.dockerd_pids()
    mark = life.front.mark()
    answer = life.front.upload("server-cert.pem", b / "server-cert.pem")
    assert answer.status == 204
    assert "X-Dockerd-Restart: refused: server-key.pem does not match server-cert.pem" in answer.headers
    life.front.wait_log("Not restarting dockerd; it keeps serving", since=mark)
    assert life.dockerd_pids() == [pid]
    assert life.front.status() == "0 RUNNING"
    assert life.client_works(a)
    assert life.restarts_since(mark) == 0

    mark = life.front.mark()
    answer = life.front.upload("server-key.pem", b / "server-key.pem")
    assert answer.status == 204 and "X-Dockerd-Restart" not in answer.headers
    life.front.wait_status("0 RUNNING", since=mark)
    assert life.restarts_since(mark) == 1
    assert life.dockerd_pids() != [pid]
    assert life.client_works(b)


def test_set_upload_is_one_restart(life: Lifecycle, a: Path) -> None:
    """A set upload of C (another CA altogether) restarts dockerd exactly once; C's client works."""
    life.use(a)
    c = life.init("C", "--key-type", "ec")
    mark = life.front.mark()
    parts = [arg for name in ("ca.pem", "server-cert.pem", "server-key.pem") for arg in ("-F", f"{name}=@{c / name}")]
    answer = life.front.curl(*parts, "-X", "POST", path=PREFIX + "tls")
    assert answer.status == 204, answer
    life.front.wait_status("0 RUNNING", since=mark)
    assert life.restarts_since(mark) == 1
    assert life.client_works(c)
    assert not life.client_works(a)  # its CA is no longer dockerd's


def test_stopped_dockerd_is_not_started_into_a_bad_set(life: Lifecycle, a: Path) -> None:
    """With dockerd stopped, a mismatched set is Status 8 and no dockerd; fixing it gives 0."""
    life.use(a)
    life.front.wait_status("4 NO SOCKET", since=life.front.update(TCPSocket="no"))
    c, b = life.init("D"), life.init("E")
    mismatched = ["-F", f"ca.pem=@{c / 'ca.pem'}", "-F", f"server-cert.pem=@{c / 'server-cert.pem'}"]
    mismatched += ["-F", f"server-key.pem=@{b / 'server-key.pem'}"]
    assert life.front.curl(*mismatched, "-X", "POST", path=PREFIX + "tls").status == 204
    life.front.wait_status("8 TLS CERT INVALID", since=life.front.update(TCPSocket="yes"))
    assert life.dockerd_pids() == []
    mark = life.front.mark()
    assert life.front.upload("server-key.pem", c / "server-key.pem").status == 204
    life.front.wait_status("0 RUNNING", since=mark)
    assert life.client_works(c)


def test_summary_never_contains_a_private_key(life: Lifecycle, a: Path) -> None:
    """GET …/tls describes the set and never contains the string PRIVATE KEY."""
    life.use(a)
    answer = life.front.curl(path=PREFIX + "tls")
    assert answer.status == 200
    assert "PRIVATE KEY" not in answer.body
    assert '"dockerd_would_start": true' in answer.body
