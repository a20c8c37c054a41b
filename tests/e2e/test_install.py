"""``acap-http install`` into temporary places (systemd is not PID 1 here: the unit is checked with
systemd-analyze and its command run by hand, with a notify socket the test binds), then
``--uninstall``, which leaves nothing but what it says it leaves."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psutil

from acap_http.config import CHECKOUT_DIR
from tests.e2e.front import free_port

CLI = (sys.executable, "-m", "acap_http")
# The hardening options the README's service section lists, as it writes them.
README_HARDENING = [
    "PrivateTmp=yes", "ProtectSystem=strict", "ProtectClock=yes", "ProtectKernelLogs=yes",
    "ProtectKernelModules=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes",
    "ProtectProc=invisible", "LockPersonality=yes", "RestrictRealtime=yes", "UMask=0022",
]  # fmt: skip


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _install(places: dict[str, Path], port: int) -> subprocess.CompletedProcess[str]:
    installed = subprocess.run(
        [*CLI, "install", "--prefix", str(places["prefix"]), "--app-dir", str(places["data"]),
         "--config-dir", str(places["etc"]), "--unit-dir", str(places["units"]), "--listen", f"127.0.0.1:{port}",
         "--docker-address", "127.0.0.1", "--source", str(CHECKOUT_DIR), "--no-enable"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return installed


def _check_unit(unit: Path, places: dict[str, Path]) -> None:
    """systemd-analyze verifies it, and it holds each hardening option the README lists, as written."""
    assert shutil.which("systemd-analyze"), "tools/setup-host installs systemd, which has systemd-analyze"
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    lines = unit.read_text().splitlines()
    assert not [line for line in lines if line.startswith("ExecStartPre")]
    for option in [*README_HARDENING, "Type=notify", "Restart=on-failure", "TimeoutStopSec=75"]:
        assert option in lines, f"{option} is not in the unit"
    assert f"ReadWritePaths={places['data']} /run/user" in lines


def _status(places: dict[str, Path], port: int) -> str:
    password = (places["etc"] / "admin.password").read_text().strip()
    listed = subprocess.run(
        ["curl", "-sS", "--cacert", str(places["etc"] / "tls-cert.pem"), "--anyauth", "-u", f"admin:{password}",
         f"https://127.0.0.1:{port}/axis-cgi/param.cgi?action=list&group=root.dockerdwrapper.Status"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.strip()


def _run_the_units_command(unit: Path, places: dict[str, Path], port: int, notify_path: Path) -> None:
    """The unit's command, as systemd would run it: READY=1 once, answering over HTTPS, gunicorn's
    reload and worker-count signals ignored (the same worker, still answering), SIGTERM a clean end."""
    (command,) = [line.removeprefix("ExecStart=") for line in unit.read_text().splitlines()
                  if line.startswith("ExecStart=")]  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify_path.chmod(0o777)
        notify.settimeout(60)
        service = subprocess.Popen(shlex.split(command), env=dict(os.environ, NOTIFY_SOCKET=str(notify_path)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            notes: list[str] = []
            while not any("READY=1" in note.split("\n") for note in notes):
                notes.append(notify.recv(4096).decode())
            assert any("STATUS=3 TLS CERT MISSING" in note for note in notes)
            assert _status(places, port) == "root.dockerdwrapper.Status=3 TLS CERT MISSING"
            master = psutil.Process(service.pid)
            workers = {child.pid for child in master.children()}
            for signum in (signal.SIGHUP, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU):
                service.send_signal(signum)
            assert _status(places, port) == "root.dockerdwrapper.Status=3 TLS CERT MISSING"
            assert {child.pid for child in master.children()} == workers and service.poll() is None
            notify.settimeout(1.0)  # what else it said meanwhile: never READY=1 again
            try:
                while True:
                    notes.append(notify.recv(4096).decode())
            except TimeoutError:
                pass
            assert sum(note.split("\n").count("READY=1") for note in notes) == 1, notes
        finally:
            service.send_signal(signal.SIGTERM)
            assert service.wait(90) == 0


def test_install_run_uninstall(e2e_root: Path) -> None:
    """Install, install again (users and TLS pair kept), run the unit's command, uninstall: only the
    data stay."""
    tmp_path = e2e_root / "install"  # the app's user must reach the data: under a directory others may enter
    tmp_path.mkdir(mode=0o755)
    places = {name: tmp_path / name for name in ("prefix", "data", "etc", "units")}
    port = free_port()
    installed = _install(places, port)
    unit = places["units"] / "acap-http.service"
    assert f"the admin's password is in {places['etc'] / 'admin.password'}" in installed.stdout
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in places["etc"].iterdir()} == {
        "users": 0o600, "admin.password": 0o600, "operator.password": 0o600, "viewer.password": 0o600,
        "tls-key.pem": 0o600, "tls-cert.pem": 0o644, "installed.json": 0o600,
    }  # fmt: skip
    assert stat.S_IMODE(places["etc"].stat().st_mode) == 0o700
    _check_unit(unit, places)
    kept = {name: (places["etc"] / name).read_bytes() for name in ("users", "admin.password", "tls-key.pem",
                                                                    "tls-cert.pem")}  # fmt: skip
    _install(places, port)
    assert {name: (places["etc"] / name).read_bytes() for name in kept} == kept
    _run_the_units_command(unit, places, port, tmp_path / "notify.sock")

    before = _tree(tmp_path)
    removed = subprocess.run(
        [*CLI, "install", "--uninstall", "--prefix", str(places["prefix"]), "--app-dir", str(places["data"]),
         "--config-dir", str(places["etc"]), "--unit-dir", str(places["units"])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert f"left: {places['data']}" in removed.stdout
    left = _tree(tmp_path)
    assert not places["prefix"].exists() and not places["etc"].exists() and not unit.exists()
    assert {path for path in left if not path.startswith("data")} <= {"units", "notify.sock"}
    assert left <= before


def test_directories_install_did_not_make_are_refused_and_never_removed(e2e_root: Path) -> None:
    """A --prefix or --config-dir given by mistake (a /usr/local, an /etc): install refuses it and
    changes nothing there; uninstall leaves it, and says so."""
    tmp_path = e2e_root / "foreign"
    tmp_path.mkdir(mode=0o755)
    usr_local, etc = tmp_path / "usr-local", tmp_path / "etc"
    for directory, entry in ((usr_local, "sbin"), (etc, "passwd")):
        directory.mkdir(mode=0o755)
        (directory / entry).write_text("theirs\n")
    common = ["--app-dir", str(tmp_path / "data"), "--unit-dir", str(tmp_path / "units")]
    for prefix, config_dir, refused in (
        (usr_local, tmp_path / "etc-new", "--prefix"),
        (tmp_path / "p", etc, "--config-dir"),
    ):
        done = subprocess.run(
            [*CLI, "install", "--prefix", str(prefix), "--config-dir", str(config_dir), *common,
             "--source", str(CHECKOUT_DIR), "--no-enable"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 1 and f"{refused} " in done.stderr and "did not make" in done.stderr, done.stderr
    assert stat.S_IMODE(etc.stat().st_mode) == 0o755 and _tree(etc) == {"passwd"} and _tree(usr_local) == {"sbin"}
    removed = subprocess.run(
        [*CLI, "install", "--uninstall", "--prefix", str(usr_local), "--config-dir", str(etc), *common],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert f"not removed: {usr_local} (acap-http install did not make it)" in removed.stdout
    assert f"not removed: {etc} (acap-http install did not make it)" in removed.stdout
    assert _tree(etc) == {"passwd"} and _tree(usr_local) == {"sbin"}
