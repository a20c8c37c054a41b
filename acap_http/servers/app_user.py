"""The unprivileged user that ``acap-http up``, started as root, runs the
application (and so dockerd, rootless) as, the way the camera runs its apps:
created when missing, with subordinate id ranges for rootlesskit, access to
/dev/net/tun for slirp4netns, and its runtime directory."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from acap_http import hostgroups
from acap_http.config import APP_USER, PARAMS_FILE
from acap_http.errors import SetupError
from acap_http.filestore import FileStore
from acap_http.manifest import Manifest
from acap_http.options import HostOptions
from acap_http.safedir import LinkRefused, SafeDir, describe_link
from acap_http.supervisor.command import runtime_dir_of

logger = logging.getLogger(__name__)

NAME = APP_USER
SUBUID, SUBGID = Path("/etc/subuid"), hostgroups.SUBGID
TUN = Path("/dev/net/tun")
LOCALDATA = "localdata"


@dataclass(frozen=True)
class AppUser:
    name: str
    uid: int
    gid: int


def system_user(name: str) -> AppUser:
    """A system user of its own group, no home and no shell, made when missing; needs root."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        try:
            _run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        except SetupError:
            if not _exists(name):  # another instance (make fleet) made it meanwhile: fine
                raise
        entry = pwd.getpwnam(name)
    return AppUser(name, entry.pw_uid, entry.pw_gid)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure(name: str = NAME, groups: tuple[str, ...] = ()) -> AppUser:
    """The user, made ready for rootless dockerd, the host ``groups`` mapped into its containers
    (``hostgroups``); needs root."""
    user = system_user(name)
    _ensure_subuids(user)
    mapped = hostgroups.ensure(user.name, user.uid, hostgroups.checked_names(groups), SUBGID)
    logger.info("%s: %s", user.name, hostgroups.describe(mapped))
    _ensure_tun(user)
    with SafeDir.open(runtime_dir_of(user.uid), create_mode=0o700) as runtime_dir:
        os.fchown(runtime_dir.fd, user.uid, user.gid)
        os.fchmod(runtime_dir.fd, 0o700)
    return user


def for_front(options: HostOptions, manifest: Manifest) -> AppUser | None:
    """Who the app of a front (``up``, ``serve``) runs as: started as root and not ``--rootful``,
    the app user, taken over; else the front's own user (None), and ``--group`` has no use."""
    if os.geteuid() == 0 and not options.rootful:
        groups = (*manifest.groups, *options.groups)
        return take_over(options.app_user, options.app_dir, options.card_area(manifest.app_name), groups)
    if options.groups and options.rootful:
        logger.info("Rootful: containers run as root, host groups need no mapping (--group ignored)")
    elif options.groups:
        logger.info("Not started as root: host groups are mapped for the app user only (--group ignored)")
    return None


def take_over(name: str, app_dir: Path, sd_card_area: Path | None, groups: tuple[str, ...] = ()) -> AppUser:
    """What a front started as root does before the app runs rootless as ``name``: the user made
    (``groups`` mapped into its containers), the app directory handed over (what it refuses to
    give, said), the area on the card given."""
    user = ensure(name, groups)
    try:
        refused = hand_over(user, app_dir)
    except LinkRefused as err:
        raise SetupError(f"cannot give the app directory to {user.name}: {err}") from None
    for what in refused:
        logger.warning("Not giving to %s: %s; left it and anything it points to as they are", user.name, what)
    check_reach(user, app_dir)
    if sd_card_area is not None:
        give_area(user, sd_card_area)
    logger.info("The app and dockerd run as %s (uid %d), rootless", user.name, user.uid)
    return user


def hand_over(user: AppUser, app_dir: Path) -> list[str]:
    """Let ``user`` own what the app writes: the app directory, localdata and their plain files.

    dockerd's data-root is left alone (its files belong to the mapped ids), and
    so is the front's directory of passwords (root's business). ``user`` may
    have planted links here (any docker client can, when dockerd runs rootless):
    nothing is followed, a linked directory is refused with LinkRefused, and a
    linked or multiply linked file is left as it is; returns what was left, and why.
    """
    refused: list[str] = []
    with SafeDir.open(app_dir, create_mode=0o755) as top, top.subdir(LOCALDATA, create_mode=0o755) as localdata:
        for directory in (top, localdata):
            os.fchown(directory.fd, user.uid, user.gid)
        for name in top.names():
            if name.startswith(PARAMS_FILE):
                refused += _give(top, name, user)
        for name in localdata.names():
            refused += _give(localdata, name, user)
    return refused


def check_reach(user: AppUser, app_dir: Path) -> None:
    """SetupError unless ``user`` can run this Python and reach the app directory."""
    probe = [sys.executable, "-c", f"import acap_http, os; os.listdir({str(app_dir / LOCALDATA)!r})"]
    done = subprocess.run(probe, user=user.uid, group=user.gid, extra_groups=[], capture_output=True, check=False)
    if done.returncode != 0:
        raise SetupError(
            f"user {user.name} cannot reach {app_dir} or this Python installation ({sys.executable}); "
            "every parent directory must be searchable by others (chmod o+x), or pass --app-dir elsewhere "
            "or --rootful"
        )


def _give(directory: SafeDir, name: str, user: AppUser) -> list[str]:
    """Give the plain file ``name`` to ``user``; a directory is skipped, anything else refused."""
    before = directory.lstat(name)
    if stat.S_ISDIR(before.st_mode):
        return []  # dockerd's data-root, or the front's own directory
    if stat.S_ISLNK(before.st_mode):
        return [f"{directory.path / name} {describe_link(name, directory.fd)}"]
    if not stat.S_ISREG(before.st_mode):
        return [f"{directory.path / name} is not a plain file"]  # never opened: a device could answer
    try:
        fd = directory.open_file(name)  # not a plain file: LinkRefused
    except OSError as err:
        return [str(err)]
    try:
        now = os.fstat(fd)
        why = None
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            why = "was replaced while being handed over"
        elif now.st_nlink != 1:
            # A hard link to another file (say /etc/shadow) would hand that file over.
            why = f"has {now.st_nlink} hard links"
        elif (now.st_uid, now.st_gid) != (user.uid, user.gid):
            os.fchown(fd, user.uid, user.gid)
    finally:
        os.close(fd)
    return [f"{directory.path / name} {why}"] if why else []


def give_area(user: AppUser, area: Path) -> None:
    """Create the app's area on a mounted card for ``user``, as the camera's storage service does.

    Only the area itself: what is inside (dockerd's data) is the app's to create or to refuse.
    """
    if area.parent.is_dir() and not area.exists():
        with SafeDir.open(area.parent) as card, card.subdir(area.name, create_mode=0o755) as made:
            os.fchown(made.fd, user.uid, user.gid)


def _ensure_subuids(user: AppUser) -> None:
    """A range of subordinate uids (a fresh one after every range already given out, when it has none)."""
    text = SUBUID.read_text() if SUBUID.exists() else ""
    new = hostgroups.rewritten(text, user.name, user.uid, [])
    if new != text:
        FileStore(SUBUID.parent).write(SUBUID.name, new.encode(), 0o644)


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
