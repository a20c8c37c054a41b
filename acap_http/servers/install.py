"""``acap-http install``: ``serve`` as a systemd service on this host, and ``--uninstall``.

As root: the program into a prefix (a virtual environment with acap-http built from the
source given; none when this program already runs from the prefix), the app's user, a
users file with generated passwords and the front's TLS pair in the configuration
directory (root's alone), the unit, and, where systemd runs, enabled and started.

It trusts ownership, not contents. Every directory it claims or makes must be reached
without a link, through directories only root may change (a sticky one, such as /tmp,
counts when what is inside is root's), and be root's and not writable by others. What it
makes it records, in the configuration directory (``installed.json``); ``--uninstall``
removes what the record names and nothing else, and says what it leaves.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from acap_http import hostgroups, identity, manifest
from acap_http.errors import SetupError
from acap_http.filestore import FileStore
from acap_http.safedir import LinkRefused, SafeDir
from acap_http.servers import app_user, unitfile
from acap_http.servers.unitfile import UNIT, Places
from acap_http.servers.users import USERS, users_file
from acap_http.supervisor.command import runtime_dir_of

__all__ = ["Places", "install", "uninstall"]

SYSTEMD_RUNNING = Path("/run/systemd/system")
RECORD = "installed.json"
# A configuration directory made by an install of before the record: its marker, root's.
LEGACY_MARK = ".acap-http-install"


@dataclass
class Record:
    """What install made, so that uninstall removes that and nothing else."""

    made: list[str] = field(default_factory=list)  # directories install created: removed whole
    # Directories that were there, empty, and the entries install made in them: those go, the directory stays.
    filled: dict[str, list[str]] = field(default_factory=dict)
    unit: str | None = None

    @classmethod
    def read(cls, config_dir: Path) -> Record | None:
        try:
            with SafeDir.open(config_dir) as directory:
                if not _root_only(directory.stat()) or not directory.is_file(RECORD):
                    return None
                document = json.loads(directory.read(RECORD))
        except (OSError, ValueError):
            return None
        if not isinstance(document, dict):
            return None
        filled = document.get("filled", {})
        return cls(
            made=[str(path) for path in document.get("made", [])],
            filled={str(path): _plain_names(names) for path, names in (filled.items() if isinstance(filled, dict)
                                                                       else [])},
            unit=str(document["unit"]) if document.get("unit") else None,
        )  # fmt: skip

    def fill(self, directory: Path, names: list[str]) -> None:
        """Note entries install made in ``directory`` (nothing to note when it made the directory)."""
        if str(directory) not in self.made:
            self.filled[str(directory)] = sorted({*self.filled.get(str(directory), []), *names})

    def write(self, config_dir: Path) -> None:
        document = {"made": self.made, "filled": self.filled, "unit": self.unit}
        FileStore(config_dir, directory_mode=0o700).write(RECORD, (json.dumps(document, indent=2) + "\n").encode(),
                                                          0o600)  # fmt: skip


def _plain_names(names: object) -> list[str]:
    return [str(name) for name in (names if isinstance(names, list) else [])
            if "/" not in str(name) and str(name) not in ("", ".", "..")]  # fmt: skip


def install(places: Places, *, source: Path | None, listen: tuple[str, int], docker_address: str,
            enable: bool = True, groups: tuple[str, ...] = ()) -> int:  # fmt: skip
    """``source`` None: the program is the one running, from ``places.prefix``."""
    if os.geteuid() != 0:
        raise SetupError("acap-http install writes a unit and makes a user: run it as root")
    places = _apart(places.checked())
    listen_on = unitfile.listen(*listen)
    docker_address = unitfile.address(docker_address, "--docker-address")
    record = Record.read(places.config_dir) or Record()
    for option, path in (("--prefix", places.prefix), ("--config-dir", places.config_dir),
                         ("--unit-dir", places.unit_dir)):  # fmt: skip
        trusted(path, option)
    trusted(places.app_dir, "--app-dir", itself=False)  # serve gives it to the app's user
    _claim(places.prefix, "--prefix", record)
    _claim(places.config_dir, "--config-dir", record)
    if places.unit.exists() and not _unit_is_ours(places.unit):
        raise SetupError(f"{places.unit} exists and is not acap-http's unit: remove it, or give another --unit-dir")
    _make(places.config_dir, 0o700, record)
    record.write(places.config_dir)  # from here on, uninstall knows what to remove
    if source is not None:
        if not (source / "setup.cfg").is_file():
            raise SetupError(f"{source} is not an acap-http source tree (no setup.cfg): pass --source")
        _make(places.prefix, 0o755, record)
        record.write(places.config_dir)
        before = set(os.listdir(places.prefix))
        _program(places.prefix, source)
        record.fill(places.prefix, sorted(set(os.listdir(places.prefix)) - before))
    elif not (places.prefix / "bin" / "acap-http").is_file():
        raise SetupError(f"no acap-http in {places.prefix}: pass --source, a checkout to install from")
    groups = hostgroups.checked_names(groups)
    user = app_user.ensure(groups=(*manifest.load(identity.MANIFEST).groups, *groups))
    password = _configuration(places, listen[0], record)
    places.app_dir.mkdir(parents=True, exist_ok=True)
    with SafeDir.open(places.unit_dir, create_mode=0o755) as units:
        units.write(UNIT, unitfile.unit(places, listen_on, docker_address, groups).encode(), 0o644)
    record.unit = str(places.unit)
    record.write(places.config_dir)
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
        print(f"    {shlex.join(unitfile.command(places, listen_on, docker_address, groups))}")
    return 0


def uninstall(places: Places) -> int:
    """Remove what the record in ``places.config_dir`` says install made; say what stays."""
    if os.geteuid() != 0:
        raise SetupError("acap-http install --uninstall removes a unit: run it as root")
    record = Record.read(places.config_dir) or _legacy_record(places)
    removed, foreign = _remove_unit(places, record)
    for directory in (places.prefix, places.config_dir):
        gone, kept = _remove_directory(directory, record)
        removed += gone
        foreign += kept
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


def _remove_unit(places: Places, record: Record) -> tuple[list[Path], list[Path]]:
    """(removed, not removed): the unit install wrote, stopped first."""
    unit = Path(record.unit) if record.unit else None
    if unit is not None and unit.is_file() and not unit.is_symlink() and _unit_is_ours(unit):
        if SYSTEMD_RUNNING.is_dir():
            _systemctl("disable", "--now", UNIT)
        unit.unlink()
        return [unit], []
    if places.unit.exists() or places.unit.is_symlink():
        return [], [places.unit]
    return [], []


def _remove_directory(directory: Path, record: Record) -> tuple[list[Path], list[Path]]:
    """(removed, not removed): ``directory`` whole if install made it, else the entries it made there."""
    if str(directory) in record.made and _removable(directory):
        shutil.rmtree(directory)
        return [directory], []
    names = record.filled.get(str(directory), [])
    if names and _removable(directory):
        with SafeDir.open(directory) as opened:
            for name in names:
                entry = opened.lstat(name) if name in opened.names() else None
                if entry is not None and stat.S_ISDIR(entry.st_mode):
                    shutil.rmtree(directory / name)  # a venv's bin, lib…: root's, in a directory of root's
                elif entry is not None:
                    opened.unlink(name)
        return [directory / name for name in names], [directory]
    if directory.exists() or directory.is_symlink():
        return [], [directory]
    return [], []


def trusted(path: Path, option: str, *, itself: bool = True) -> None:
    """SetupError unless ``path`` is reached without a link, through directories only root may
    change, and is, if it exists, a directory (``itself``: root's and not writable by others)."""
    current = Path("/")
    parts = path.parts[1:]
    for index, part in enumerate(parts):
        parent = os.lstat(current)
        current = current / part
        try:
            found = os.lstat(current)
        except FileNotFoundError:
            found = None
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise SetupError(f"{option} {path}: {current} is a symbolic link; give the directory itself")
        if found is not None and not stat.S_ISDIR(found.st_mode):
            raise SetupError(f"{option} {path}: {current} is not a directory")
        # Whoever may write a directory may put something else in the place of its entries; in a
        # sticky one (/tmp) only an entry that is there already, and root's, stays root's.
        sticky_and_ours = parent.st_mode & stat.S_ISVTX and found is not None and found.st_uid == 0
        if not (_root_only(parent) or sticky_and_ours):
            raise SetupError(f"{option} {path}: {current.parent} may be changed by another user than root "
                             f"(owner uid {parent.st_uid}, mode {stat.S_IMODE(parent.st_mode):o})")  # fmt: skip
        last = index == len(parts) - 1
        if found is not None and last and itself and not _root_only(found):
            raise SetupError(f"{option} {path} belongs to uid {found.st_uid} or may be written by others "
                             f"(mode {stat.S_IMODE(found.st_mode):o}): give a directory of root's")  # fmt: skip
        if found is None:
            return


def _root_only(status: os.stat_result) -> bool:
    return status.st_uid == 0 and not status.st_mode & 0o022


def _claim(directory: Path, option: str, record: Record) -> None:
    """Install writes into ``directory`` only if it is new, empty (then what it makes there is noted,
    and only that goes at uninstall), or install's before; SetupError otherwise."""
    if not directory.exists() or str(directory) in record.made or str(directory) in record.filled:
        return
    if (directory / LEGACY_MARK).is_file():
        record.made.append(str(directory))  # marked by an install of before the record (root's: checked)
        return
    if not any(directory.iterdir()):
        record.filled[str(directory)] = []
        return
    others = sorted(entry.name for entry in directory.iterdir())
    shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
    raise SetupError(f"{option} {directory} holds what acap-http install did not make ({shown}): give a "
                     "directory of its own, new or empty")  # fmt: skip


def _make(directory: Path, mode: int, record: Record) -> None:
    if directory.exists():
        return
    directory.mkdir(mode=mode)  # its parent is root's alone (checked): nobody else can have made it
    os.chmod(directory, mode)
    record.made.append(str(directory))


# What --app-dir may not be: serve gives the app directory to the app's user, whom docker clients
# control (rootless).
SYSTEM_DIRECTORIES = frozenset(
    Path(path) for path in ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc",
                            "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var",
                            "/var/lib", "/var/tmp")
)  # fmt: skip


def _apart(places: Places) -> Places:
    """SetupError when places lie in one another, or the app directory is the system's: the program,
    the configuration or the unit inside what the app's user is given would be that user's to change."""
    if places.app_dir in SYSTEM_DIRECTORIES:
        raise SetupError(f"--app-dir {places.app_dir} is a directory of the system; give one of its own")
    named = {"--prefix": places.prefix, "--config-dir": places.config_dir, "--unit-dir": places.unit_dir}
    for option, path in named.items():
        if path == places.app_dir or places.app_dir in path.parents or path in places.app_dir.parents:
            raise SetupError(f"{option} {path} and --app-dir {places.app_dir} lie in one another; keep them apart")
    if places.prefix == places.config_dir or places.prefix in places.config_dir.parents:
        raise SetupError(f"--config-dir {places.config_dir} lies in --prefix {places.prefix}; keep them apart")
    return places


def _removable(directory: Path) -> bool:
    try:
        return not directory.is_symlink() and directory.is_dir() and _root_only(directory.stat())
    except OSError:
        return False


def _legacy_record(places: Places) -> Record:
    """An install of before the record marked the directories it made; only root's count."""
    made = [str(path) for path in (places.prefix, places.config_dir)
            if (path / LEGACY_MARK).is_file() and _removable(path)]  # fmt: skip
    return Record(made=made, unit=str(places.unit))


def _unit_is_ours(unit: Path) -> bool:
    try:
        return unitfile.is_ours(unit.read_text())
    except (OSError, UnicodeError):
        return False


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


def _configuration(places: Places, host: str, record: Record) -> str | None:
    """The users file (generated passwords; the admin's kept beside it) and the front's TLS pair,
    each made when missing: a reinstall keeps what is there. The admin's password when made."""
    try:
        directory = SafeDir.open(places.config_dir)
    except LinkRefused as err:
        raise SetupError(str(err)) from None
    with directory:
        os.fchmod(directory.fd, 0o700)
        made = None
        if not directory.is_file("users"):
            passwords = {name: secrets.token_urlsafe(18) for name, _, _ in USERS}
            directory.write("users", users_file(passwords).encode(), 0o600)
            for name, password in passwords.items():
                directory.write(f"{name}.password", (password + "\n").encode(), 0o600)
            record.fill(places.config_dir, ["users", *(f"{name}.password" for name in passwords)])
            made = passwords["admin"]
        if not (directory.is_file("tls-cert.pem") and directory.is_file("tls-key.pem")):
            # cryptography is the installed program's, not this one's (install may run from the checkout).
            pair = [str(places.config_dir / "tls-cert.pem"), str(places.config_dir / "tls-key.pem")]
            done = subprocess.run([str(places.prefix / "bin" / "python"), "-I", "-m", "acap_http.tls.making",
                                   "front-pair", host, *pair], capture_output=True, text=True, check=False)  # fmt: skip
            if done.returncode != 0:
                raise SetupError(f"could not make the front's TLS pair: {done.stderr.strip()[-2000:]}")
            record.fill(places.config_dir, ["tls-cert.pem", "tls-key.pem"])
        record.fill(places.config_dir, [RECORD])
        return made


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")
