"""``acap-http install``: ``serve`` as a systemd service on this host, and ``--uninstall``.

As root: the program into a prefix (a virtual environment with acap-http built from the
source given; none when this program already runs from the prefix), the app's user, a
users file with generated passwords and the front's TLS pair in the configuration
directory (root's alone), the unit, and, where systemd runs, enabled and started.
``--uninstall`` removes all of that and says what it leaves: the data, the app user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from acap_http import config, identity
from acap_http.errors import SetupError
from acap_http.servers import app_user
from acap_http.servers.users import USERS, users_file
from acap_http.supervisor.command import runtime_dir_of

UNIT = "acap-http.service"
SYSTEMD_RUNNING = Path("/run/systemd/system")
# What install leaves in the directories it makes, and uninstall looks for before it removes one:
# a --prefix or --config-dir given by mistake (/usr/local, /etc) is never install's to remove.
MARK = ".acap-http-install"
# What a virtual environment holds (make install makes the prefix's before install runs; Python 3.13
# writes a .gitignore into it).
VENV_ENTRIES = frozenset({"bin", "include", "lib", "lib64", "share", "pyvenv.cfg", ".gitignore", MARK})

# The hardening that rootless dockerd and its containers tolerate, each tried on its own and then
# together under a real systemd (the README's "Run it as a service" lists what was tried and what
# failed). ProtectSystem=strict leaves the data and dockerd's runtime directory writable, nothing
# else: install has made the app's user and the configuration, so serve writes nothing under /etc.
# Left out on purpose: what the containers inherit and would lose (a syscall filter, address
# families, W^X memory, setuid files, a capability bounding set: user namespaces do not lift it),
# ProtectHostname (their sethostname fails), ProtectHome (hides /run/user), NoNewPrivileges and
# RestrictNamespaces (newuidmap, rootlesskit), PrivateDevices (/dev/net/tun, /dev/fuse).
HARDENING = (
    "PrivateTmp=yes",
    "ProtectSystem=strict",
    "ProtectClock=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "UMask=0022",
)


@dataclass(frozen=True)
class Places:
    prefix: Path  # the program: a virtual environment
    app_dir: Path  # the data: localdata, dockerd's data-root, params.json
    config_dir: Path  # users, the front's TLS pair, the admin's password
    unit_dir: Path  # where systemd reads units

    @property
    def unit(self) -> Path:
        return self.unit_dir / UNIT


def command(places: Places, listen: str, docker_address: str) -> list[str]:
    """What the unit runs."""
    return [
        str(places.prefix / "bin" / "acap-http"), "serve", "--stdout",
        "--listen", listen, "--app-dir", str(places.app_dir), "--docker-address", docker_address,
        "--users", str(places.config_dir / "users"),
        "--cert", str(places.config_dir / "tls-cert.pem"), "--key", str(places.config_dir / "tls-key.pem"),
    ]  # fmt: skip


def writable(places: Places) -> str:
    """What ProtectSystem=strict leaves writable: the data, and dockerd's runtime directory."""
    return f"ReadWritePaths={places.app_dir} /run/user"


def unit(places: Places, listen: str, docker_address: str) -> str:
    """The systemd unit of the service."""
    lines = [
        "[Unit]",
        f"Description=acap-http: {identity.FRIENDLY_NAME} ({identity.NAME}) managed over HTTPS",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        # Ready once the front accepts and Status is known; STATUS= mirrors Status. The worker tells.
        "Type=notify",
        "NotifyAccess=all",
        f"ExecStart={shlex.join(command(places, listen, docker_address))}",
        "TimeoutStartSec=120",
        # gunicorn gives the application's stop (containers, dockerd, containerd, the holder) and
        # the requests in flight SERVE_GRACEFUL_STOP, then kills the worker: more than that.
        f"TimeoutStopSec={config.SERVE_GRACEFUL_STOP + 15}",
        "KillMode=mixed",
        "Restart=on-failure",
        "RestartSec=2",
        *HARDENING,
        writable(places),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def install(places: Places, *, source: Path | None, listen: str, docker_address: str, enable: bool = True) -> int:
    """``source`` None: the program is the one running, from ``places.prefix``."""
    if os.geteuid() != 0:
        raise SetupError("acap-http install writes a unit and makes a user: run it as root")
    _claim(places.prefix, "--prefix", allowed=VENV_ENTRIES)
    _claim(places.config_dir, "--config-dir", allowed=frozenset({MARK}))
    if places.unit.exists() and not _ours(places.unit):
        raise SetupError(f"{places.unit} exists and is not acap-http's unit: remove it, or give another --unit-dir")
    if source is not None:
        if not (source / "setup.cfg").is_file():
            raise SetupError(f"{source} is not an acap-http source tree (no setup.cfg): pass --source")
        _program(places.prefix, source)
    elif not (places.prefix / "bin" / "acap-http").is_file():
        raise SetupError(f"no acap-http in {places.prefix}: pass --source, a checkout to install from")
    _mark(places.prefix)
    user = app_user.ensure()
    password = _configuration(places.config_dir, listen)
    places.app_dir.mkdir(parents=True, exist_ok=True)
    places.unit_dir.mkdir(parents=True, exist_ok=True)
    places.unit.write_text(unit(places, listen, docker_address))
    print(f"installed {identity.NAME} {identity.VERSION}: program in {places.prefix}, data in {places.app_dir},")
    print(f"  users and TLS in {places.config_dir}, unit {places.unit}; the app and dockerd run as {user.name}")
    if password:
        print(f"  the admin's password is in {places.config_dir / 'admin.password'} (root only)")
    if enable and SYSTEMD_RUNNING.is_dir():
        _systemctl("daemon-reload")
        _systemctl("enable", UNIT)
        _systemctl("restart", UNIT)  # a reinstall runs the program just installed
        print(f"  enabled and (re)started: systemctl status {UNIT}")
        _note_debians_docker()
    elif enable:
        print("  systemd is not running here; start the service by hand with")
        print(f"    {shlex.join(command(places, listen, docker_address))}")
    return 0


def uninstall(places: Places) -> int:
    if os.geteuid() != 0:
        raise SetupError("acap-http install --uninstall removes a unit: run it as root")
    if SYSTEMD_RUNNING.is_dir() and places.unit.exists():
        _systemctl("disable", "--now", UNIT)
    removed, foreign = [], []
    if places.unit.is_file() and not places.unit.is_symlink() and _ours(places.unit):
        places.unit.unlink()
        removed.append(places.unit)
    elif places.unit.exists() or places.unit.is_symlink():
        foreign.append(places.unit)
    for path in (places.prefix, places.config_dir):
        if path.is_dir() and not path.is_symlink() and (path / MARK).is_file():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists() or path.is_symlink():
            foreign.append(path)
    if SYSTEMD_RUNNING.is_dir():
        _systemctl("daemon-reload")
    print("removed " + (", ".join(map(str, removed)) or "nothing (nothing was installed)"))
    for path in foreign:
        print(f"not removed: {path} (acap-http install did not make it)")
    print(f"left: {places.app_dir} (dockerd's data, the TLS files and the settings; remove it to start afresh)")
    print(f"      the user {app_user.NAME} and its /etc/subuid and /etc/subgid lines (userdel to remove)")
    try:
        runtime_dir = runtime_dir_of(pwd.getpwnam(app_user.NAME).pw_uid)
        print(f"      dockerd's runtime files in {runtime_dir} (gone at the next boot)")
    except KeyError:
        pass
    return 0


def _note_debians_docker() -> None:
    """docker.io enables Debian's own (root) dockerd: say so, it is not this one."""
    active = subprocess.run(["systemctl", "is-active", "--quiet", "docker.service"], check=False).returncode == 0
    if active:
        print("  note: Debian's own dockerd (docker.service, as root) runs too; `docker` without -H talks to it.")
        print("  If you do not use it: systemctl disable --now docker.service docker.socket containerd.service")


def _program(prefix: Path, source: Path) -> None:
    """A virtual environment with acap-http built from ``source``."""
    if not (prefix / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    done = subprocess.run(
        [str(prefix / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SetupError(f"pip could not install acap-http into {prefix}: {done.stderr.strip()[-2000:]}")


def _configuration(directory: Path, listen: str) -> str | None:
    """The users file (generated passwords; the admin's kept beside it) and the front's TLS pair,
    each made when missing: a reinstall keeps what is there. The admin's password when made."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _mark(directory)
    made = None
    if not (directory / "users").exists():
        passwords = {name: secrets.token_urlsafe(18) for name, _, _ in USERS}
        _write(directory / "users", users_file(passwords))
        for name, password in passwords.items():
            _write(directory / f"{name}.password", password + "\n")
        made = passwords["admin"]
    if not ((directory / "tls-cert.pem").exists() and (directory / "tls-key.pem").exists()):
        from acap_http.servers.serve import self_signed  # noqa: PLC0415  (cryptography only here)

        cert, key = self_signed(listen.rpartition(":")[0].strip("[]"))
        _write(directory / "tls-key.pem", key.decode())
        _write(directory / "tls-cert.pem", cert.decode(), 0o644)
    return made


def _claim(directory: Path, option: str, *, allowed: frozenset[str]) -> None:
    """Install writes into ``directory`` (and uninstall will remove it) only if it is new, or
    install's own, or holds nothing else than ``allowed``."""
    if directory.is_symlink():
        raise SetupError(f"{option} {directory} is a symbolic link: give the directory itself")
    if not directory.exists() or (directory / MARK).is_file():
        return
    if not directory.is_dir():
        raise SetupError(f"{option} {directory} is not a directory")
    others = sorted(entry.name for entry in directory.iterdir() if entry.name not in allowed)
    if others:
        shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
        raise SetupError(f"{option} {directory} holds what acap-http install did not make ({shown}): give a "
                         "directory of its own")  # fmt: skip


def _mark(directory: Path) -> None:
    _write(
        directory / MARK,
        f"made by acap-http install {identity.VERSION}; acap-http install --uninstall removes it\n",
        0o644,
    )


def _ours(unit_file: Path) -> bool:
    try:
        return "Description=acap-http: " in unit_file.read_text()
    except (OSError, UnicodeError):
        return False


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")
