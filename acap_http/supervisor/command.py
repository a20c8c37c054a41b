"""The command lines and environment of what runs dockerd, built as lists from a
settings snapshot (pure).

Three processes, so that a dockerd restart leaves containers running:

- the namespace holder, for the application's lifetime: rootless, rootlesskit
  (user, mount, network and PID namespaces, slirp4netns, the port driver)
  whose child only sleeps; rootful, unshare (mount and PID namespaces) with
  tini as their init. Killing it kills everything inside, so nothing outlives
  the application;
- containerd, started once inside the holder, with fixed paths, so the shims
  of running containers stay reachable;
- dockerd, started and restarted inside the holder with ``nsenter``, with
  live-restore, pointed at that containerd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import tomli_w

from acap_http.supervisor.settings import Settings
from acap_http.tls.files import TLS_FILES

# The rootlesskit flags the original Docker ACAP application starts dockerd with, less the -p of the API port,
# which is now added and removed at run time through rootlesskit's API.
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
# Ours: a PID namespace (its death kills everything inside, shims and containers included;
# rootlesskit's child reaps in it), and the MTU Docker's dockerd-rootless.sh uses.
HOLDER_FLAGS = ("--pidns", "--mtu=65520")
# /run is copied up, so a /run/docker, /run/containerd or /run/xtables.lock left by a
# root dockerd on this host shows through as root's; the holder removes them first, as
# Docker's dockerd-rootless.sh does, then only keeps the namespaces. Stopped (rootlesskit passes
# SIGTERM on), it exits 0: a stop is no error in the log (a killed sleep was, twice, each stop).
HOLDER_CHILD = (
    "sh", "-c", "rm -rf /run/docker /run/containerd /run/xtables.lock; trap 'exit 0' TERM; sleep infinity & wait"
)  # fmt: skip
# Rootful: a mount namespace (dockerd's mounts go with it, and a tmpfs on /run/containerd and
# /run/docker, where containerd puts its shims' sockets whatever its state directory, keeps
# those private and gone with it) and a PID namespace whose init, tini (Docker's docker-init),
# reaps; unshare's death kills it and all inside. Host mounts made later (an SD card) show
# inside: propagation slave.
ROOTFUL_RUN_DIRS = "/run/containerd /run/docker"
ROOTFUL_HOLDER = (
    "unshare",
    "--pid",
    "--fork",
    "--kill-child=SIGKILL",
    "--mount",
    "--propagation",
    "slave",
    "--mount-proc",
    "--",
    "sh",
    "-c",
    f"for d in {ROOTFUL_RUN_DIRS}; do mkdir -p $d && mount -t tmpfs -o mode=0711 tmpfs $d || exit 1; done; "
    "exec docker-init -s -- sleep infinity",
)
XTABLES_LOCKFILE = "/tmp/dockerdwrapper_xtables.lock"
# dockerd lives in sbin, which a non-root PATH often lacks.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# What containerd would not use here, and would only slow its start.
CONTAINERD_DISABLED = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
)


# Each flag of the product's dockerd command line, and the daemon.json directive of the same
# setting. dockerd refuses a directive given both as a flag and in the file, so these may not be
# in daemon.json (``daemon_json.RESERVED``): they are the product's to set.
FLAG_DIRECTIVES: Mapping[str, str] = MappingProxyType(
    {
        "--config-file": "config-file",
        "--log-level": "log-level",
        "--debug": "debug",
        "--group": "group",
        "-H": "hosts",
        "--tlsverify": "tlsverify",
        "--tls": "tls",
        "--tlscacert": "tlscacert",
        "--tlscert": "tlscert",
        "--tlskey": "tlskey",
        "--data-root": "data-root",
        "--containerd": "containerd",
        "--exec-root": "exec-root",
        "--pidfile": "pidfile",
    }
)
# The flags of ours given only when daemon.json does not set the directive: the operator's say first.
OPTIONAL_FLAG_DIRECTIVES: Mapping[str, str] = MappingProxyType(
    {"--live-restore": "live-restore", "--exec-opt": "exec-opts"}
)


def runtime_dir_of(uid: int) -> Path:
    return Path(f"/var/run/user/{uid}")


@dataclass(frozen=True)
class Host:
    """How this process runs dockerd: facts and options, not settings."""

    rootless: bool
    app_dir: Path
    runtime_dir: Path  # XDG_RUNTIME_DIR: /var/run/user/<uid>
    address: str  # host address of dockerd's TCP port (rootless: the host side of the forward)
    path: str  # the PATH this process has
    uid: int = 0  # this process's effective ids: rootlesskit tells its child the parent's
    gid: int = 0
    api_front: bool = False  # the product ends TLS on the API's port (apifront): dockerd has unix sockets only

    @property
    def localdata(self) -> Path:
        return self.app_dir / "localdata"

    @property
    def ipc_socket(self) -> Path:
        return self.runtime_dir / "docker.sock"

    @property
    def control_socket(self) -> Path:
        """dockerd's socket for the application alone: /_ping, and stopping containers at the end."""
        return self.runtime_dir / "dockerd-control.sock"

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "docker.pid"

    @property
    def exec_root(self) -> Path:
        return self.runtime_dir / "docker"

    @property
    def daemon_json(self) -> Path:
        return self.localdata / "daemon.json"

    @property
    def rootlesskit_dir(self) -> Path:
        """rootlesskit's state: child_pid, api.sock."""
        return self.runtime_dir / "rootlesskit"

    @property
    def containerd_dir(self) -> Path:
        return self.runtime_dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.containerd_dir / "config.toml"


@dataclass(frozen=True)
class Command:
    """What to start, and how (``runner.Runner.start``). The defaults are dockerd's processes'; a
    front's children (``servers.children``) stay in its process group and are its to stop."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    forks: bool = False  # nsenter -p, unshare --fork: the program runs as the started process's child
    # What the kernel sends it should the application die without stopping it (see runner); None: nothing.
    death_signal: str | None = "TERM"
    own_group: bool = True  # a session and process group of its own, out of reach of a terminal's Ctrl-C
    user: tuple[int, int] | None = None  # uid and gid to run as, without supplementary groups
    log: Path | None = None  # where its output and errors go (appended); None: where ours go


@dataclass(frozen=True)
class PortForward:
    """A port rootlesskit forwards from the host into the holder's network namespace."""

    parent_ip: str
    parent_port: int
    child_port: int
    proto: str = "tcp"


def holder(host: Host) -> Command:
    env = MappingProxyType(environment(host))
    if host.rootless:
        # rootlesskit passes SIGTERM on to its child; the PID namespace ends with it.
        argv = ("rootlesskit", f"--state-dir={host.rootlesskit_dir}", *ROOTLESSKIT_FLAGS, *HOLDER_FLAGS, *HOLDER_CHILD)
        return Command(argv, env)
    # unshare blocks SIGTERM while it waits for its child: a stop goes to tini, the namespace's
    # init, and the death of the application SIGKILLs unshare, which SIGKILLs tini (--kill-child).
    return Command(ROOTFUL_HOLDER, env, forks=True, death_signal="KILL")


def enter(host: Host, holder_pid: int) -> tuple[str, ...]:
    """The nsenter prefix that runs a program inside the holder's namespaces."""
    namespaces = ("-U", "--preserve-credentials", "-m", "-n", "-p") if host.rootless else ("-m", "-p")
    return ("nsenter", *namespaces, "-t", str(holder_pid), "--")


def containerd(host: Host, holder_pid: int) -> Command:
    argv = (*enter(host, holder_pid), "containerd", "--config", str(host.containerd_config))
    return Command(argv, MappingProxyType(environment(host)), forks=True)


def containerd_config(host: Host, data_root: Path) -> str:
    """containerd's configuration: fixed paths, so that a restarted containerd finds the shims
    of running containers (they call back to the address they started with)."""
    return tomli_w.dumps(
        {
            "version": 2,
            "root": str(data_root / "containerd" / "daemon"),
            "state": str(host.containerd_dir / "state"),
            "disabled_plugins": list(CONTAINERD_DISABLED),
            "oom_score": 0,
            "grpc": {"address": str(host.containerd_socket)},
            "ttrpc": {"address": ""},
            "debug": {"address": "", "level": "warn"},
            "metrics": {"address": ""},
            "plugins": {"io.containerd.internal.v1.opt": {"path": str(data_root / "containerd" / "opt")}},
        }
    )


def dockerd(
    settings: Settings,
    host: Host,
    data_root: Path,
    holder_pid: int,
    *,
    daemon_json_sets: frozenset[str],
    config_file: Path | None = None,
    extra_env: Mapping[str, str] = MappingProxyType({}),
) -> Command:
    """dockerd with the original's flags, inside the holder, on the separate containerd.

    Two flags of ours, each only when daemon.json does not set the directive (``daemon_json_sets``;
    dockerd refuses one given both ways): --live-restore, so that its restarts leave the
    containers running; rootless, cgroupfs as the cgroup driver (rootless dockerd's "none":
    see ``cgroups``). Left to choose, rootless dockerd would pick the systemd driver on a host
    where systemd runs with cgroup v2, and every container would fail to start (``open
    /sys/fs/cgroup/user.slice/user-<uid>.slice/cgroup.controllers``, or with a user manager,
    ``unable to start unit "runc-….scope"``).

    ``config_file`` is the daemon.json dockerd reads (the operator's, unless a copy was made
    for this dockerd) and ``extra_env`` what its environment must carry besides (proxies).
    """
    port = settings.port
    config = config_file or host.daemon_json
    argv = ["dockerd", "--config-file", str(config), f"--log-level={settings.dockerd_log_level}"]
    if settings.dockerd_log_level == "debug":
        argv.append("--debug")
    if settings.ipc_socket:
        argv += ["--group", "0", "-H", f"unix://{host.ipc_socket}"]
    argv += ["-H", f"unix://{host.control_socket}"]  # the front's way in too, with --tls-by front
    if settings.tcp_socket and not host.api_front:
        # Rootless, dockerd listens inside the holder's network namespace and
        # rootlesskit forwards the port from the host address.
        argv += ["-H", f"tcp://{'0.0.0.0' if host.rootless else host.address}:{port}"]
        if settings.use_tls:
            argv.append("--tlsverify=true")
            for tls_file in TLS_FILES.values():
                argv += [tls_file.dockerd_flag, str(host.localdata / tls_file.name)]
        else:
            argv.append("--tls=false")
    argv += ["--data-root", str(data_root)]
    argv += ["--containerd", str(host.containerd_socket), "--exec-root", str(host.exec_root)]
    argv += ["--pidfile", str(host.pid_file)]
    if OPTIONAL_FLAG_DIRECTIVES["--live-restore"] not in daemon_json_sets:
        argv.append("--live-restore")
    if host.rootless and OPTIONAL_FLAG_DIRECTIVES["--exec-opt"] not in daemon_json_sets:
        argv += ["--exec-opt", "native.cgroupdriver=cgroupfs"]
    env = environment(host) | dict(extra_env)
    if host.rootless:
        # What rootlesskit gives its child: dockerd then runs as rootless Docker does, and
        # publishes containers' ports through rootlesskit-docker-proxy and the holder's API.
        env |= {
            "ROOTLESSKIT_STATE_DIR": str(host.rootlesskit_dir),
            "ROOTLESSKIT_PARENT_EUID": str(host.uid),
            "ROOTLESSKIT_PARENT_EGID": str(host.gid),
        }
    return Command((*enter(host, holder_pid), *argv), MappingProxyType(env), forks=True)


def api_forward(settings: Settings, host: Host) -> PortForward | None:
    """The forward of dockerd's TCP port from the host (rootless only; rootful dockerd listens there,
    and with the API's front the application does)."""
    if not host.rootless or not settings.tcp_socket or host.api_front:
        return None
    return PortForward(host.address, settings.port, settings.port)


def environment(host: Host) -> dict[str, str]:
    parts = host.path.split(":") if host.path else []
    path = ":".join([*parts, *(d for d in SBIN_DIRS if d not in parts)])
    return {
        "PATH": path,
        "HOME": str(host.app_dir),
        "XDG_RUNTIME_DIR": str(host.runtime_dir),
        "XTABLES_LOCKFILE": XTABLES_LOCKFILE,
    }
