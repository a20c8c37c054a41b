"""The product with a real dockerd, rootful and rootless: settings and
uploads through Apache with curl, and the real docker CLI against dockerd.

The tests of a mode share one ``up``; each first puts it in the state it needs.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import Front, docker, dockerd_pids, processes_mentioning
from tests.e2e.running import busybox_image

APP_USER = "acap-dockerdwrapper"
TLS, PLAIN = "tcp://127.0.0.1:2376", "tcp://127.0.0.1:2375"


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

    def running(self) -> None:
        """The defaults (TLS on TCP 2376, no IPC), the server files stored, docker --tlsverify answering."""
        mark = self.front.mark()
        self.front.update(TCPSocket="yes", UseTLS="yes", IPCSocket="no")
        for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
            assert self.front.upload(name, self.server_files / name).status == 204
        if "Parameters changed: Status=" in self.front.log()[mark:] or self.front.status() != "0 RUNNING":
            self.front.wait_status("0 RUNNING", since=mark)
        assert self.tls_version().returncode == 0

    def tls_version(self, certs: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.docker("version", "--format", "{{.Server.Version}}", host=TLS, certs=certs or self.client)

    def without_files(self) -> None:
        """The defaults (TLS on TCP 2376, no IPC) and no TLS files: Status 3."""
        for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
            self.front.curl("-X", "DELETE", path=f"/local/dockerdwrapper/{name}")
        mark = self.front.restart_dockerd(TCPSocket="yes", UseTLS="yes", IPCSocket="no")
        self.front.wait_status("3 TLS CERT MISSING", since=mark)


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
    """With the defaults (TLS on TCP) and no files, Status is 3, the log names each file, and no dockerd runs."""
    daemon.running()
    mark = daemon.front.mark()
    daemon.without_files()
    assert daemon.dockerd_pids() == []
    for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
        assert (
            f"TLS file missing: {daemon.front.localdata / name} (upload it or set UseTLS=no)"
            in (daemon.front.log()[mark:])
        )


def test_upload_starts_tls_dockerd(daemon: Daemon) -> None:
    """After the three uploads, Status is 0 and docker --tlsverify works on 2376; a client of another CA is refused."""
    daemon.without_files()
    mark = daemon.front.mark()
    for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
        assert daemon.front.upload(name, daemon.server_files / name).status == 204
    daemon.front.wait_status("0 RUNNING", since=mark)
    version = daemon.tls_version()
    assert version.returncode == 0, version.stderr
    # The dockerd of this host (Debian 12: 20.10, Debian 13: 26), not another one on the port.
    installed = subprocess.run(["dockerd", "--version"], capture_output=True, text=True, check=True).stdout
    assert f"Docker version {version.stdout.strip()}," in installed
    refused = daemon.tls_version(daemon.stranger)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr or "tls" in refused.stderr.lower()


def test_a_container_runs_over_tls(daemon: Daemon) -> None:
    """A static busybox imported as an image runs, and its output comes back over TLS."""
    daemon.running()
    image = busybox_image(daemon.root / "busybox.tar")
    imported = daemon.docker("import", str(image), "acap-http-test/busybox:latest", host=TLS, certs=daemon.client)
    assert imported.returncode == 0, imported.stderr
    command = ["/bin/busybox", "echo", "hello from a container"]
    ran = daemon.docker(
        "run", "--rm", "--network", "none", "acap-http-test/busybox:latest", *command, host=TLS, certs=daemon.client
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello from a container\n"


def test_plain_tcp_when_tls_is_off(daemon: Daemon) -> None:
    """UseTLS=no: this product's dockerd answers plain on 2375, and 2376 refuses connections."""
    daemon.running()
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(UseTLS="no"))
    root_dir = daemon.docker("info", "--format", "{{.DockerRootDir}}", host=PLAIN)
    assert root_dir.returncode == 0, root_dir.stderr
    assert root_dir.stdout.strip() == str(daemon.front.localdata / "data")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", 2376), timeout=2).close()


def test_uploads_with_tls_off_restart_without_a_refusal(daemon: Daemon) -> None:
    """UseTLS=no: an upload is stored and restarts dockerd; its 204 has no X-Dockerd-Restart, even for a
    key that matches nothing (dockerd does not read the files)."""
    daemon.running()
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(UseTLS="no"))
    (pid,) = daemon.dockerd_pids()
    stray = daemon.root / "stray-key.pem"
    stray.write_bytes(pki.key_pem(pki.rsa_key()))
    mark = daemon.front.mark()
    answer = daemon.front.upload("server-key.pem", stray)
    assert answer.status == 204 and "X-Dockerd-Restart" not in answer.headers
    daemon.front.wait_status("0 RUNNING", since=mark)
    assert daemon.dockerd_pids() != [pid]


def test_no_socket_is_status_4(daemon: Daemon) -> None:
    """TCPSocket=no and IPCSocket=no: Status 4 and dockerd stopped."""
    daemon.running()
    daemon.front.wait_status("4 NO SOCKET", since=daemon.front.update(TCPSocket="no", IPCSocket="no"))
    assert daemon.dockerd_pids() == []


def test_ipc_socket(daemon: Daemon) -> None:
    """IPCSocket=yes: docker works over the unix socket in the runtime directory."""
    daemon.running()
    daemon.front.wait_status("0 RUNNING", since=daemon.front.update(IPCSocket="yes"))
    version = daemon.docker(
        "version", "--format", "{{.Server.Version}}", host=f"unix://{daemon.runtime_dir}/docker.sock"
    )
    assert version.returncode == 0, version.stderr


def test_kill_9_is_stopped_then_running(daemon: Daemon) -> None:
    """kill -9 of dockerd: Status 1, then 0 again with a new dockerd."""
    daemon.running()
    (old,) = daemon.dockerd_pids()
    mark = daemon.front.mark()
    os.kill(old, signal.SIGKILL)
    daemon.front.wait_status("0 RUNNING", since=mark)
    assert "Status=1 DOCKERD STOPPED" in daemon.front.log()[mark:]
    assert old not in daemon.dockerd_pids()


def test_rejected_daemon_json_latches_status_2(daemon: Daemon) -> None:
    """A daemon.json dockerd rejects: Status 2, and it stays 2 (the whole 3 s watched) until a parameter changes."""
    daemon.running()
    daemon_json = daemon.front.localdata / "daemon.json"
    daemon_json.write_text('{"no-such-option": true}\n')
    daemon.front.wait_status("2 DOCKERD RUNTIME ERROR", since=daemon.front.restart_dockerd())
    watched_until = time.monotonic() + 3
    while time.monotonic() < watched_until:
        assert daemon.front.status() == "2 DOCKERD RUNTIME ERROR"
        assert daemon.dockerd_pids() == []
        time.sleep(0.1)
    daemon_json.write_text("{}\n")
    daemon.front.wait_status("0 RUNNING", since=daemon.front.restart_dockerd())


def test_the_manuals_proxy_setup(daemon: Daemon) -> None:
    """daemon.json with "proxies" as the original's manual writes it: dockerd starts with those proxies,
    natively where it knows the key (Docker 23 and later), from its environment where it does not (20.10)."""
    daemon.running()
    daemon_json = daemon.front.localdata / "daemon.json"
    proxies = {
        "http-proxy": "http://proxy.example.com:3128",
        "https-proxy": "https://proxy.example.com:3129",
        "no-proxy": "*.test.example.com,.example.org,127.0.0.0/8",
    }
    daemon_json.write_text(json.dumps({"proxies": proxies}))
    try:
        daemon.front.wait_status("0 RUNNING", since=daemon.front.restart_dockerd())
        info = daemon.docker("info", "--format", "{{.HTTPProxy}}|{{.HTTPSProxy}}|{{.NoProxy}}", host=TLS,
                             certs=daemon.client)  # fmt: skip
        assert info.returncode == 0, info.stderr
        assert info.stdout.strip() == "|".join(proxies.values())
    finally:
        daemon_json.write_text("{}\n")
    daemon.front.wait_status("0 RUNNING", since=daemon.front.restart_dockerd())
    info = daemon.docker("info", "--format", "{{.HTTPProxy}}", host=TLS, certs=daemon.client)
    assert info.stdout.strip() == ""


def test_cgroups_where_the_mode_has_them(daemon: Daemon) -> None:
    """Rootful containers get cgroups: --memory 64m is enforced (read inside the container, cgroup v1
    or v2) and docker top lists the process. Rootless ones get none, and the log said so at the start."""
    daemon.running()
    image = busybox_image(daemon.root / "busybox-cgroups.tar")
    assert daemon.docker("import", str(image), "acap-http-test/cgroups", host=TLS, certs=daemon.client).returncode == 0
    driver = daemon.docker("info", "--format", "{{.CgroupDriver}}", host=TLS, certs=daemon.client).stdout.strip()
    if daemon.mode == "rootless":
        assert driver == "none"
        assert "Rootless containers get no cgroups (" in daemon.front.log()
        return
    assert driver in ("cgroupfs", "systemd")
    limit = daemon.docker(
        "run", "--rm", "--memory", "64m", "--network", "none", "acap-http-test/cgroups", "/bin/busybox", "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        host=TLS, certs=daemon.client,
    )  # fmt: skip
    assert limit.returncode == 0, limit.stderr
    assert limit.stdout.strip() == str(64 * 1024 * 1024)
    started = daemon.docker("run", "-d", "--network", "none", "acap-http-test/cgroups", "/bin/busybox", "sleep", "60",
                            host=TLS, certs=daemon.client)  # fmt: skip
    try:
        top = daemon.docker("top", started.stdout.strip(), host=TLS, certs=daemon.client)
        assert top.returncode == 0 and "sleep 60" in top.stdout, top.stderr
    finally:
        daemon.docker("rm", "-f", started.stdout.strip(), host=TLS, certs=daemon.client)


def test_sigterm_stops_everything(daemon: Daemon) -> None:
    """SIGTERM to up: dockerd and everything under it is gone, Status ends at -1, exit 0."""
    daemon.running()
    mark = daemon.front.mark()
    assert daemon.front.stop() == 0
    assert processes_mentioning(str(daemon.front.app_dir)) == []
    assert [p for p in processes_mentioning("rootlesskit") if "dockerdwrapper" in p] == []
    assert "Status=-1 NOT STARTED" in daemon.front.log()[mark:]
    daemon.front.start()  # as the other tests found it
