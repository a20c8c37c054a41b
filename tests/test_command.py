"""The command lines of the namespace holder, containerd and dockerd, for every combination of
the settings that shape them; the original's pieces are pinned as literals here."""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path

import pytest

from acap_http.supervisor import command
from acap_http.supervisor.command import Host, PortForward
from acap_http.supervisor.daemon_json import keys as daemon_json_keys
from acap_http.supervisor.settings import Settings

APP = Path("/usr/local/packages/dockerdwrapper")
LOCAL = APP / "localdata"
RUN = Path("/var/run/user/1001")
DATA = LOCAL / "data"
HOLDER_PID = 4242
ENTER_ROOTLESS = ["nsenter", "-U", "--preserve-credentials", "-m", "-n", "-p", "-t", "4242", "--"]
ENTER_ROOTFUL = ["nsenter", "-m", "-p", "-t", "4242", "--"]
DEFAULTS = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


def _host(rootless: bool) -> Host:
    return Host(
        rootless=rootless, app_dir=APP, runtime_dir=RUN, address="192.0.2.7", path="/usr/bin:/bin", uid=1001, gid=1002
    )


def _expected_dockerd(
    use_tls: bool, tcp: bool, ipc: bool, level: str, *, rootless: bool, operators: frozenset[str]
) -> list[str]:
    port = 2376 if use_tls else 2375
    argv = ["dockerd", "--config-file", f"{LOCAL}/daemon.json", f"--log-level={level}"]
    argv += ["--debug"] if level == "debug" else []
    if ipc:
        argv += ["--group", "0", "-H", f"unix://{RUN}/docker.sock"]
    argv += ["-H", f"unix://{RUN}/dockerd-control.sock"]
    if tcp:
        argv += ["-H", f"tcp://{'0.0.0.0' if rootless else '192.0.2.7'}:{port}"]
        if use_tls:
            argv += [
                "--tlsverify=true",
                "--tlscacert", f"{LOCAL}/ca.pem",
                "--tlscert", f"{LOCAL}/server-cert.pem",
                "--tlskey", f"{LOCAL}/server-key.pem",
            ]  # fmt: skip
        else:
            argv += ["--tls=false"]
    argv += ["--data-root", str(DATA), "--containerd", f"{RUN}/containerd/containerd.sock"]
    argv += ["--exec-root", f"{RUN}/docker", "--pidfile", f"{RUN}/docker.pid"]
    argv += [] if "live-restore" in operators else ["--live-restore"]
    return argv + (["--exec-opt", "native.cgroupdriver=cgroupfs"] if rootless and "exec-opts" not in operators else [])


# What the operator's daemon.json may set among the directives dockerd also gets as our flags.
DAEMON_JSONS = [
    frozenset(),
    frozenset({"live-restore"}),
    frozenset({"exec-opts"}),
    frozenset({"live-restore", "exec-opts", "debug"}),
]


COMBINATIONS = list(
    itertools.product(
        [True, False], [True, False], [True, False], ["debug", "info", "warn", "error", "fatal"], [True, False],
        DAEMON_JSONS,
    )
)  # fmt: skip


@pytest.mark.parametrize(("use_tls", "tcp", "ipc", "level", "rootless", "operators"), COMBINATIONS)
def test_dockerd_command_line(
    use_tls: bool, tcp: bool, ipc: bool, level: str, rootless: bool, operators: frozenset[str]
) -> None:
    """dockerd's flags follow the settings exactly, inside the holder's namespaces, on the separate containerd;
    ours that daemon.json may also set only when it does not."""
    settings = Settings(use_tls=use_tls, tcp_socket=tcp, ipc_socket=ipc, dockerd_log_level=level, sd_card=False)
    built = command.dockerd(settings, _host(rootless), DATA, HOLDER_PID, daemon_json_sets=operators)
    enter = ENTER_ROOTLESS if rootless else ENTER_ROOTFUL
    expected = _expected_dockerd(use_tls, tcp, ipc, level, rootless=rootless, operators=operators)
    assert list(built.argv) == [*enter, *expected]
    assert built.forks  # nsenter -p forks: signals go to dockerd itself


def test_rootless_holder_is_the_originals_rootlesskit_holding_a_sleep() -> None:
    """The original's rootlesskit flags, a state directory, a PID namespace, and a child that only sleeps."""
    built = command.holder(_host(rootless=True))
    assert " ".join(built.argv) == (
        "rootlesskit --state-dir=/var/run/user/1001/rootlesskit --subid-source=static --net=slirp4netns "
        "--disable-host-loopback --copy-up=/etc --copy-up=/run --propagation=rslave --port-driver slirp4netns "
        "--cidr=10.0.3.0/24 --pidns --mtu=65520 "
        "sh -c rm -rf /run/docker /run/containerd /run/xtables.lock; trap 'exit 0' TERM; sleep infinity & wait"
    )
    assert not built.forks and built.death_signal == "TERM"


def test_rootful_holder() -> None:
    """Rootful: mount and PID namespaces with tini as init; unshare's death kills all inside."""
    built = command.holder(_host(rootless=False))
    assert " ".join(built.argv) == (
        "unshare --pid --fork --kill-child=SIGKILL --mount --propagation slave --mount-proc -- sh -c "
        "for d in /run/containerd /run/docker; do mkdir -p $d && mount -t tmpfs -o mode=0711 tmpfs $d || exit 1; done; "
        "exec docker-init -s -- sleep infinity"
    )
    # unshare blocks SIGTERM: a stop goes to tini inside, and the application's death SIGKILLs unshare.
    assert built.forks and built.death_signal == "KILL"


@pytest.mark.parametrize("rootless", [True, False])
def test_containerd_runs_inside_with_fixed_paths(rootless: bool) -> None:
    """containerd in the holder, its configuration, root, state and socket at fixed places."""
    built = command.containerd(_host(rootless), HOLDER_PID)
    enter = ENTER_ROOTLESS if rootless else ENTER_ROOTFUL
    assert list(built.argv) == [*enter, "containerd", "--config", f"{RUN}/containerd/config.toml"]
    assert tomllib.loads(command.containerd_config(_host(rootless), DATA)) == {
        "version": 2,
        "root": f"{DATA}/containerd/daemon",
        "state": f"{RUN}/containerd/state",
        "disabled_plugins": ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                             "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                             "io.containerd.snapshotter.v1.devmapper"],
        "oom_score": 0,
        "grpc": {"address": f"{RUN}/containerd/containerd.sock"},
        "ttrpc": {"address": ""},
        "debug": {"address": "", "level": "warn"},
        "metrics": {"address": ""},
        "plugins": {"io.containerd.internal.v1.opt": {"path": f"{DATA}/containerd/opt"}},
    }  # fmt: skip


def test_containerd_config_holds_any_path() -> None:
    """A path with a quote, a backslash or a newline is written as TOML means it, not as broken TOML."""
    odd = Path('/srv/a "quoted"\\dir\nnext')
    assert tomllib.loads(command.containerd_config(_host(True), odd))["root"] == f"{odd}/containerd/daemon"


@pytest.mark.parametrize(
    ("rootless", "tcp", "use_tls", "forward"),
    [
        (True, True, True, PortForward("192.0.2.7", 2376, 2376)),
        (True, True, False, PortForward("192.0.2.7", 2375, 2375)),
        (True, False, True, None),
        (False, True, True, None),  # rootful dockerd listens on the host itself
    ],
)
def test_api_port_forward(rootless: bool, tcp: bool, use_tls: bool, forward: PortForward | None) -> None:
    settings = Settings(use_tls=use_tls, tcp_socket=tcp, ipc_socket=False, dockerd_log_level="warn", sd_card=False)
    assert command.api_forward(settings, _host(rootless)) == forward


@pytest.mark.parametrize("rootless", [True, False])
def test_environment(rootless: bool) -> None:
    """PATH (with sbin), HOME at the app directory, XDG_RUNTIME_DIR, the xtables lock; and for a rootless
    dockerd what rootlesskit tells its child, so that it runs as rootless Docker does."""
    base = {
        "PATH": "/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "HOME": str(APP),
        "XDG_RUNTIME_DIR": str(RUN),
        "XTABLES_LOCKFILE": "/tmp/dockerdwrapper_xtables.lock",
    }
    rootlesskit = {
        "ROOTLESSKIT_STATE_DIR": f"{RUN}/rootlesskit",
        "ROOTLESSKIT_PARENT_EUID": "1001",
        "ROOTLESSKIT_PARENT_EGID": "1002",
    }
    host = _host(rootless)
    assert dict(command.holder(host).env) == base
    assert dict(command.containerd(host, HOLDER_PID).env) == base
    dockerd_env = command.dockerd(DEFAULTS, host, DATA, HOLDER_PID, daemon_json_sets=frozenset()).env
    assert dict(dockerd_env) == (base | rootlesskit if rootless else base)


def test_camera_defaults_spelled_out() -> None:
    """With the defaults (TLS on TCP, no IPC, warn) the camera runs exactly this dockerd."""
    built = command.dockerd(DEFAULTS, _host(rootless=True), DATA, HOLDER_PID, daemon_json_sets=frozenset())
    assert " ".join(built.argv) == (
        "nsenter -U --preserve-credentials -m -n -p -t 4242 -- "
        "dockerd --config-file /usr/local/packages/dockerdwrapper/localdata/daemon.json --log-level=warn "
        "-H unix:///var/run/user/1001/dockerd-control.sock "
        "-H tcp://0.0.0.0:2376 --tlsverify=true "
        "--tlscacert /usr/local/packages/dockerdwrapper/localdata/ca.pem "
        "--tlscert /usr/local/packages/dockerdwrapper/localdata/server-cert.pem "
        "--tlskey /usr/local/packages/dockerdwrapper/localdata/server-key.pem "
        "--data-root /usr/local/packages/dockerdwrapper/localdata/data "
        "--containerd /var/run/user/1001/containerd/containerd.sock "
        "--exec-root /var/run/user/1001/docker --pidfile /var/run/user/1001/docker.pid --live-restore "
        "--exec-opt native.cgroupdriver=cgroupfs"
    )


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("{}", set()),
        ('{"live-restore": false, "exec-opts": ["native.cgroupdriver=systemd"]}', {"live-restore", "exec-opts"}),
        ('["not", "an", "object"]', set()),
        ("{not json", set()),
    ],
)
def test_daemon_json_keys(tmp_path: Path, text: str, keys: set[str]) -> None:
    """The directives the operator set in daemon.json; a file dockerd will refuse anyway sets none."""
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(text)
    assert daemon_json_keys(daemon_json) == keys
    assert daemon_json_keys(tmp_path / "missing.json") == frozenset()


@pytest.mark.parametrize("rootless", [True, False])
def test_with_the_api_front_dockerd_has_unix_sockets_only(rootless: bool) -> None:
    """--tls-by front: no TCP socket and no TLS flags for dockerd, and no port forward (rootless):
    the application listens on the host and passes the bytes to the control socket."""
    host = dataclasses.replace(_host(rootless), api_front=True)
    settings = Settings(use_tls=True, tcp_socket=True, ipc_socket=True, dockerd_log_level="warn", sd_card=False)
    argv = command.dockerd(settings, host, APP / "localdata" / "data", 4242, daemon_json_sets=frozenset()).argv
    assert not [arg for arg in argv if arg.startswith("tcp://") or arg.startswith("--tls")]
    assert f"unix://{host.control_socket}" in argv and f"unix://{host.ipc_socket}" in argv
    assert command.api_forward(settings, host) is None
