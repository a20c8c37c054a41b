"""The product with a real dockerd, rootful and rootless: settings and
uploads through Apache with curl, and the real docker CLI against dockerd.

The tests of a mode run in order on one ``up``; each sets the settings it needs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import Front, docker, dockerd_pids, processes_mentioning

APP_USER = "acap-dockerdwrapper"


class Daemon:
    """One up in a mode, with the operator's files and a docker CLI."""

    def __init__(self, front: Front, mode: str, root: Path) -> None:
        self.front, self.mode, self.root = front, mode, root
        self.authority = pki.Authority()
        self.server_files = root / "server"
        self.server_files.mkdir()
        for name, data in self.authority.server_set("127.0.0.1").by_name().items():
            (self.server_files / name).write_bytes(data)
        self.client = self.authority.client_files(root / "client")
        self.stranger = pki.Authority("another CA").client_files(root / "stranger")

    @property
    def runtime_dir(self) -> Path:
        uid = pwd.getpwnam(APP_USER).pw_uid if self.mode == "rootless" else 0
        return Path(f"/var/run/user/{uid}")

    def docker(self, *args: str, host: str, certs: Path | None = None) -> subprocess.CompletedProcess[str]:
        return docker(*args, host=host, config=self.root / "docker-config", certs=certs)

    def dockerd_pids(self) -> list[int]:
        return dockerd_pids(self.front.app_dir)


@pytest.fixture(scope="module", params=["rootful", "rootless"])
def daemon(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Daemon]:
    root = e2e_root / request.param
    root.mkdir(mode=0o755)
    extra = ("--rootful",) if request.param == "rootful" else ()
    front = Front(app_dir=root / "app", log_path=root / "up.log", extra_args=extra)
    front.start()
    yield Daemon(front, request.param, root)
    if front.process is not None and front.process.poll() is None:
        front.stop()


def test_without_tls_files_status_is_3(daemon: Daemon) -> None:
    """With the defaults (TLS on TCP) and no files, Status is 3 and no dockerd runs."""
    daemon.front.wait_status("3 TLS CERT MISSING")
    assert daemon.dockerd_pids() == []


def test_upload_starts_tls_dockerd(daemon: Daemon) -> None:
    """After the three uploads, Status is 0 and docker --tlsverify works on 2376; a client of another CA is refused."""
    mark = daemon.front.mark()
    for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
        assert daemon.front.upload(name, daemon.server_files / name).status == 204
    daemon.front.wait_status("0 RUNNING", since=mark)
    version = daemon.docker(
        "version", "--format", "{{.Server.Version}}", host="tcp://127.0.0.1:2376", certs=daemon.client
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip()
    refused = daemon.docker("version", host="tcp://127.0.0.1:2376", certs=daemon.stranger)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr or "tls" in refused.stderr.lower()


def test_a_container_runs_over_tls(daemon: Daemon) -> None:
    """A static busybox imported as an image runs, and its output comes back over TLS."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    image = daemon.root / "busybox.tar"
    with tarfile.open(image, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
    tls_host, certs = "tcp://127.0.0.1:2376", daemon.client
    imported = daemon.docker("import", str(image), "acap-http-test/busybox:latest", host=tls_host, certs=certs)
    assert imported.returncode == 0, imported.stderr
    command = ["/bin/busybox", "echo", "hello from a container"]
    ran = daemon.docker(
        "run", "--rm", "--network", "none", "acap-http-test/busybox:latest", *command, host=tls_host, certs=certs
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello from a container\n"


def test_plain_tcp_when_tls_is_off(daemon: Daemon) -> None:
    """UseTLS=no: plain docker answers on 2375 and 2376 is closed."""
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(UseTLS="no"))
    version = daemon.docker("version", "--format", "{{.Server.Version}}", host="tcp://127.0.0.1:2375")
    assert version.returncode == 0, version.stderr
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", 2376), timeout=2) as tls_port:
        tls_port.recv(1)  # rootlesskit may accept and then drop: either way nothing answers


def test_no_socket_is_status_4(daemon: Daemon) -> None:
    """TCPSocket=no and IPCSocket=no: Status 4 and dockerd stopped."""
    daemon.front.wait_status("4 NO SOCKET", since=daemon.front.update(TCPSocket="no", IPCSocket="no"))
    assert daemon.dockerd_pids() == []


def test_ipc_socket(daemon: Daemon) -> None:
    """IPCSocket=yes: docker works over the unix socket in the runtime directory."""
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(IPCSocket="yes"))
    version = daemon.docker(
        "version", "--format", "{{.Server.Version}}", host=f"unix://{daemon.runtime_dir}/docker.sock"
    )
    assert version.returncode == 0, version.stderr


def test_kill_9_is_stopped_then_running(daemon: Daemon) -> None:
    """kill -9 of dockerd: Status 1, then 0 again with a new dockerd."""
    (old,) = daemon.dockerd_pids()
    mark = daemon.front.mark()
    os.kill(old, signal.SIGKILL)
    daemon.front.wait_status("0 RUNNING", since=mark)
    assert "Status=1 DOCKERD STOPPED" in daemon.front.log()[mark:]
    assert old not in daemon.dockerd_pids()


def test_rejected_daemon_json_latches_status_2(daemon: Daemon) -> None:
    """A daemon.json dockerd rejects: Status 2, and it stays 2 until a parameter changes."""
    daemon_json = daemon.front.localdata / "daemon.json"
    daemon_json.write_text('{"no-such-option": true}\n')
    daemon.front.wait_status("2 DOCKERD RUNTIME ERROR", since=daemon.front.update(DockerdLogLevel="info"))
    time.sleep(3)
    assert daemon.front.status() == "2 DOCKERD RUNTIME ERROR"
    assert daemon.dockerd_pids() == []
    daemon_json.write_text("{}\n")
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(DockerdLogLevel="warn"))


def test_sigterm_stops_everything(daemon: Daemon) -> None:
    """SIGTERM to up: dockerd and everything under it is gone, Status ends at -1, exit 0."""
    assert daemon.dockerd_pids()
    assert daemon.front.stop() == 0
    assert processes_mentioning(str(daemon.front.app_dir)) == []
    assert [p for p in processes_mentioning("rootlesskit") if "dockerdwrapper" in p] == []
    assert "Status=-1 NOT STARTED" in daemon.front.log()
