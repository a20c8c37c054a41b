"""The dockerd command line for every combination of the settings that shape it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from acap_http.supervisor.command import ROOTLESS_CHILD, ROOTLESSKIT_FLAGS, Host, build
from acap_http.supervisor.settings import Settings

APP = Path("/usr/local/packages/dockerdwrapper")
LOCAL = APP / "localdata"
RUN = Path("/var/run/user/1001")
DATA = LOCAL / "data"


def _host(rootless: bool) -> Host:
    return Host(rootless=rootless, app_dir=APP, runtime_dir=RUN, address="192.0.2.7", path="/usr/bin:/bin")


def _expected_dockerd(use_tls: bool, tcp: bool, ipc: bool, level: str, rootless: bool) -> list[str]:
    port = 2376 if use_tls else 2375
    argv = ["dockerd", "--config-file", f"{LOCAL}/daemon.json", f"--log-level={level}"]
    if ipc:
        argv += ["--group", "0", "-H", f"unix://{RUN}/docker.sock"]
    if tcp:
        argv += ["-H", f"tcp://{'0.0.0.0' if rootless else '192.0.2.7'}:{port}"]
        if use_tls:
            argv += [
                "--tlsverify=true",
                "--tlscacert",
                f"{LOCAL}/ca.pem",
                "--tlscert",
                f"{LOCAL}/server-cert.pem",
                "--tlskey",
                f"{LOCAL}/server-key.pem",
            ]
        else:
            argv += ["--tls=false"]
    return [*argv, "--data-root", str(DATA)]


COMBINATIONS = list(
    itertools.product(
        [True, False], [True, False], [True, False], ["debug", "info", "warn", "error", "fatal"], [True, False]
    )
)


@pytest.mark.parametrize(("use_tls", "tcp", "ipc", "level", "rootless"), COMBINATIONS)
def test_command_line(use_tls: bool, tcp: bool, ipc: bool, level: str, rootless: bool) -> None:
    """rootlesskit's flags, the published port, --debug and dockerd's flags follow the settings exactly."""
    settings = Settings(use_tls=use_tls, tcp_socket=tcp, ipc_socket=ipc, dockerd_log_level=level, sd_card=False)
    command = build(settings, _host(rootless), DATA)
    dockerd = _expected_dockerd(use_tls, tcp, ipc, level, rootless)
    if rootless:
        port = 2376 if use_tls else 2375
        expected = ["rootlesskit", *ROOTLESSKIT_FLAGS]
        expected += ["--debug"] if level == "debug" else []
        expected += ["-p", f"192.0.2.7:{port}:{port}/tcp"] if tcp else []
        expected += [*ROOTLESS_CHILD, *dockerd]
    else:
        expected = [*dockerd, "--exec-root", f"{RUN}/docker", "--pidfile", f"{RUN}/docker.pid"]
    assert list(command.argv) == expected


def test_rootlesskit_flags_are_the_originals() -> None:
    """The rootless command line is the original application's."""
    assert ROOTLESSKIT_FLAGS == (
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


@pytest.mark.parametrize("rootless", [True, False])
def test_environment(rootless: bool) -> None:
    """PATH (with sbin), HOME at the app directory, XDG_RUNTIME_DIR and the xtables lock, nothing else."""
    settings = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)
    env = build(settings, _host(rootless), DATA).env
    assert dict(env) == {
        "PATH": "/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "HOME": str(APP),
        "XDG_RUNTIME_DIR": str(RUN),
        "XTABLES_LOCKFILE": "/tmp/dockerdwrapper_xtables.lock",
    }


def test_camera_defaults_spelled_out() -> None:
    """With the defaults (TLS on TCP, no IPC, warn) the camera runs exactly this."""
    settings = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)
    command = build(settings, _host(rootless=True), DATA)
    assert " ".join(command.argv) == (
        "rootlesskit --subid-source=static --net=slirp4netns --disable-host-loopback --copy-up=/etc --copy-up=/run "
        "--propagation=rslave --port-driver slirp4netns --cidr=10.0.3.0/24 -p 192.0.2.7:2376:2376/tcp "
        'sh -c rm -rf /run/docker /run/containerd /run/xtables.lock; exec "$@" dockerd '
        "dockerd --config-file /usr/local/packages/dockerdwrapper/localdata/daemon.json --log-level=warn "
        "-H tcp://0.0.0.0:2376 --tlsverify=true "
        "--tlscacert /usr/local/packages/dockerdwrapper/localdata/ca.pem "
        "--tlscert /usr/local/packages/dockerdwrapper/localdata/server-cert.pem "
        "--tlskey /usr/local/packages/dockerdwrapper/localdata/server-key.pem "
        "--data-root /usr/local/packages/dockerdwrapper/localdata/data"
    )
