"""The command line and environment that start dockerd, built as lists from
a settings snapshot (pure): rootless under rootlesskit as on the camera, or
dockerd alone when the process runs as root (the legacy "rootful" releases)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from acap_http.supervisor.settings import Settings
from acap_http.tls import TLS_FILES

ROOTLESSKIT_FLAGS = (
    "--subid-source=static",
    "--net=slirp4netns",
    "--disable-host-loopback",
    "--copy-up=/etc",
    "--copy-up=/run",
    "--propagation=rslave",
    "--port-driver",
    "slirp4netns",
    "--cidr=10.0.3.0/24",
)
# /run is copied up, so a /run/docker, /run/containerd or /run/xtables.lock
# left by a root dockerd on this host shows through as root's and dockerd
# cannot create its own; rootlesskit's child removes them first, as Docker's
# dockerd-rootless.sh does.
ROOTLESS_CHILD = ("sh", "-c", 'rm -rf /run/docker /run/containerd /run/xtables.lock; exec "$@"', "dockerd")
XTABLES_LOCKFILE = "/tmp/dockerdwrapper_xtables.lock"
# dockerd lives in sbin, which a non-root PATH often lacks.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def runtime_dir_of(uid: int) -> Path:
    return Path(f"/var/run/user/{uid}")


@dataclass(frozen=True)
class Host:
    """How this process runs dockerd: facts and options, not settings."""

    rootless: bool
    app_dir: Path
    runtime_dir: Path  # XDG_RUNTIME_DIR: /var/run/user/<uid>
    address: str  # rootless: the host side of -p; rootful: where dockerd's TCP socket listens
    path: str  # the PATH this process has

    @property
    def localdata(self) -> Path:
        return self.app_dir / "localdata"

    @property
    def ipc_socket(self) -> Path:
        return self.runtime_dir / "docker.sock"

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "docker.pid"

    @property
    def daemon_json(self) -> Path:
        return self.localdata / "daemon.json"


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: Mapping[str, str]


def build(settings: Settings, host: Host, data_root: Path) -> Command:
    port = settings.port
    dockerd = ["dockerd", "--config-file", str(host.daemon_json), f"--log-level={settings.dockerd_log_level}"]
    if settings.ipc_socket:
        dockerd += ["--group", "0", "-H", f"unix://{host.ipc_socket}"]
    if settings.tcp_socket:
        # Under rootlesskit dockerd listens inside its network namespace and
        # rootlesskit publishes the port on the host address.
        dockerd += ["-H", f"tcp://{'0.0.0.0' if host.rootless else host.address}:{port}"]
        if settings.use_tls:
            dockerd.append("--tlsverify=true")
            for tls_file in TLS_FILES.values():
                dockerd += [tls_file.dockerd_flag, str(host.localdata / tls_file.name)]
        else:
            dockerd.append("--tls=false")
    dockerd += ["--data-root", str(data_root)]
    if host.rootless:
        argv = ["rootlesskit", *ROOTLESSKIT_FLAGS]
        if settings.dockerd_log_level == "debug":
            argv.append("--debug")
        if settings.tcp_socket:
            argv += ["-p", f"{host.address}:{port}:{port}/tcp"]
        argv += [*ROOTLESS_CHILD, *dockerd]
    else:
        # Keep a rootful dockerd's state beside the rootless one's, off the
        # paths a system dockerd on the same host would use.
        argv = [*dockerd, "--exec-root", str(host.runtime_dir / "docker"), "--pidfile", str(host.pid_file)]
    return Command(tuple(argv), MappingProxyType(environment(host)))


def environment(host: Host) -> dict[str, str]:
    parts = host.path.split(":") if host.path else []
    path = ":".join([*parts, *(d for d in SBIN_DIRS if d not in parts)])
    return {
        "PATH": path,
        "HOME": str(host.app_dir),
        "XDG_RUNTIME_DIR": str(host.runtime_dir),
        "XTABLES_LOCKFILE": XTABLES_LOCKFILE,
    }
