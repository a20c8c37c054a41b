"""The unprivileged user that ``acap-http up``, started as root, runs the
application (and so dockerd, rootless) as, the way the camera runs its apps:
created when missing, with subordinate id ranges for rootlesskit, access to
/dev/net/tun for slirp4netns, and its runtime directory."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from acap_http.errors import SetupError
from acap_http.filestore import FileStore
from acap_http.supervisor.command import runtime_dir_of

NAME = "acap-dockerdwrapper"
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
SUBID_COUNT = 65536
SUBID_FIRST = 100000
TUN = Path("/dev/net/tun")


@dataclass(frozen=True)
class AppUser:
    name: str
    uid: int
    gid: int


def ensure(name: str = NAME) -> AppUser:
    """The user, made ready for rootless dockerd; needs root."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        entry = pwd.getpwnam(name)
    user = AppUser(name, entry.pw_uid, entry.pw_gid)
    for path in SUBID_FILES:
        _ensure_subids(path, user)
    _ensure_tun(user)
    runtime_dir = runtime_dir_of(user.uid)
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(runtime_dir, user.uid, user.gid)
    os.chmod(runtime_dir, 0o700)
    return user


def hand_over(user: AppUser, app_dir: Path) -> None:
    """Let ``user`` own what the app writes: the app directory, localdata and their files.

    dockerd's data-root is left alone (its files belong to the mapped ids), and
    so is the front's directory of passwords (root's business).
    """
    localdata = app_dir / "localdata"
    localdata.mkdir(parents=True, exist_ok=True)
    owned = [app_dir, localdata, *app_dir.glob("params.json*"), *(p for p in localdata.iterdir() if p.is_file())]
    for path in owned:
        os.chown(path, user.uid, user.gid)
    probe = [sys.executable, "-c", f"import acap_http, os; os.listdir({str(localdata)!r})"]
    done = subprocess.run(probe, user=user.uid, group=user.gid, extra_groups=[], capture_output=True, check=False)
    if done.returncode != 0:
        raise SetupError(
            f"user {user.name} cannot reach {app_dir} or this Python installation ({sys.executable}); "
            "every parent directory must be searchable by others (chmod o+x), or pass --app-dir elsewhere "
            "or --rootful"
        )


def give_area(user: AppUser, area: Path) -> None:
    """Create the app's area on a mounted card for ``user``, as the camera's storage service does.

    Only the area itself: what is inside (dockerd's data) is the app's to create or to refuse.
    """
    if area.parent.is_dir() and not area.exists():
        area.mkdir(mode=0o755)
        os.chown(area, user.uid, user.gid)


def _ensure_subids(path: Path, user: AppUser) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    ends = [SUBID_FIRST]
    for line in lines:
        owner, _, rest = line.partition(":")
        if owner in (user.name, str(user.uid)):
            return
        first, _, count = rest.partition(":")
        if first.isdigit() and count.isdigit():
            ends.append(int(first) + int(count))
    # A fresh range after every range already given out.
    content = "\n".join([*lines, f"{user.name}:{max(ends)}:{SUBID_COUNT}"]) + "\n"
    FileStore(path.parent).write(path.name, content.encode(), 0o644)


def _ensure_tun(user: AppUser) -> None:
    if not TUN.exists():
        raise SetupError(f"{TUN} is missing: slirp4netns needs the tun device (modprobe tun)")
    if _can_use_tun(user):
        return
    if shutil.which("setfacl"):
        _run(["setfacl", "-m", f"u:{user.name}:rw", str(TUN)])
    else:
        # Without ACLs, the group is the narrowest grant: the device joins the user's group.
        os.chown(TUN, -1, user.gid)
        os.chmod(TUN, 0o660)
    if not _can_use_tun(user):
        raise SetupError(f"could not give {user.name} access to {TUN}")


def _can_use_tun(user: AppUser) -> bool:
    probe = ["sh", "-c", f"test -r {TUN} && test -w {TUN}"]
    return subprocess.run(probe, user=user.uid, group=user.gid, extra_groups=[], check=False).returncode == 0


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command)} failed: {done.stderr.strip()}")
