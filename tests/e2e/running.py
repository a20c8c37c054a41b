"""An ``up`` with dockerd running in a mode, its TLS set uploaded, a busybox image imported, and
the operator's docker CLI: what the tests of containers, daemon.json, host groups and the
application's control start from."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests import pki
from tests.e2e.front import Front, docker, dockerd_pids

APP_USER = "acap-dockerdwrapper"
IMAGE = "acap-http-test/busybox:latest"
TLS_HOST, PLAIN_HOST = "tcp://127.0.0.1:2376", "tcp://127.0.0.1:2375"
TICKER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"


class Mode:
    """One ``up`` in a mode, with its TLS set uploaded, an image, and the operator's docker CLI."""

    def __init__(self, front: Front, mode: str, root: Path) -> None:
        self.front, self.mode, self.root = front, mode, root
        self.authority = pki.Authority()
        self.key = pki.rsa_key()
        self.client = self.authority.client_files(root / "client")
        self.host = TLS_HOST

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        certs = self.client if self.host == TLS_HOST else None
        return docker(*args, host=self.host, config=self.root / "docker-config", certs=certs)

    def upload_set(self, server: pki.ServerSet) -> None:
        files = {}
        for name, data in server.by_name().items():
            files[name] = self.root / f"upload-{name}"
            files[name].write_bytes(data)
        args = [arg for name, path in files.items() for arg in ("-F", f"{name}=@{path}")]
        assert self.front.curl(*args, "-X", "POST", path="/local/dockerdwrapper/tls").status == 204

    def wait_docker(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.docker("version", "--format", "{{.Server.Version}}").returncode != 0:
            assert time.monotonic() < deadline, self.front.app_log()
            time.sleep(0.1)

    def dockerd(self) -> int:
        deadline = time.monotonic() + 30
        while len(pids := dockerd_pids(self.front.app_dir)) != 1:
            assert time.monotonic() < deadline, pids
            time.sleep(0.05)
        return pids[0]

    def restarted(self, action: Callable[[], object], *, host: str | None = None) -> None:
        """Run ``action``, which must restart dockerd (a new pid), and wait for it to answer (on ``host``)."""
        old = self.dockerd()
        mark = self.front.mark()
        action()
        self.host = host or self.host
        self.front.wait_status("0 RUNNING", since=mark)
        assert self.dockerd() != old
        self.wait_docker()


def busybox_image(path: Path, tools: tuple[str, ...] = ()) -> Path:
    """A tar of the host's static busybox as /bin/busybox, with ``tools`` linked to it, for docker import."""
    with tarfile.open(path, "w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        for tool in tools:
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return path


def running_mode(root: Path, mode: str, tools: tuple[str, ...], extra_args: tuple[str, ...] = ()) -> Iterator[Mode]:
    """A module fixture's body: ``up`` in ``mode`` (rootful or rootless) under ``root``, Status
    0 RUNNING with the TLS set, IMAGE imported with ``tools``; stopped after."""
    root.mkdir(mode=0o755)
    rootful = ("--rootful",) if mode == "rootful" else ()
    front = Front(app_dir=root / "app", log_path=root / "up.log", extra_args=(*rootful, *extra_args))
    front.start()
    made = Mode(front, mode, root)
    mark = front.mark()
    made.upload_set(made.authority.server_set(key=made.key))
    front.wait_status("0 RUNNING", since=mark)
    imported = made.docker("import", str(busybox_image(root / "busybox.tar", tools)), IMAGE)
    assert imported.returncode == 0, imported.stderr
    yield made
    if front.process is not None and front.process.poll() is None:
        front.stop()
