"""Host groups inside rootless containers, as the camera does it: the app's user is a member of the
groups its manifest lists (``resources.linux.user.groups``, and those named with ``--group``), and
its lines of ``/etc/subgid`` put those groups first, in that order, then its usual range. rootlesskit
maps the user's primary group to the containers' gid 0 and the subordinate ids after it in the
order of the file: so gid 1 in a container is the first group, 2 the second, … and
``docker run --group-add 1`` reaches the files and devices of that group.

Rootful containers run as root and need none of this.
"""

from __future__ import annotations

import grp
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from acap_http.errors import SetupError
from acap_http.filestore import FileStore

logger = logging.getLogger(__name__)

SUBGID = Path("/etc/subgid")
SUBID_COUNT = 65536
SUBID_FIRST = 100000
GROUP_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Mapped:
    name: str
    host_gid: int
    container_gid: int


@dataclass(frozen=True)
class Line:
    owner: str
    first: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Line | None:
        owner, _, rest = text.partition(":")
        first, _, count = rest.partition(":")
        if not owner or not first.isdigit() or not count.isdigit():
            return None
        return cls(owner, int(first), int(count))

    def __str__(self) -> str:
        return f"{self.owner}:{self.first}:{self.count}"

    def holds(self, gid: int) -> bool:
        return self.first <= gid < self.first + self.count


def checked_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The group names, each once, in order; SetupError for one that cannot be a group's name."""
    for name in names:
        if not GROUP_NAME.fullmatch(name):
            raise SetupError(f"{name!r} cannot be a group's name (lower case letters, digits, _ and -)")
    return tuple(dict.fromkeys(names))


def rewritten(text: str, user: str, uid: int, gids: list[tuple[str, int]]) -> str:
    """``/etc/subgid`` with ``user``'s lines: one per group (in order, count 1), then the user's usual
    range (a new one after every range given out, if it has none); every other line as it was.
    SetupError when a group's gid lies in a range of another user (or in the user's own range); another
    user's line for that very group (``owner:gid:1``: several app users, each a member) is no range."""
    lines = text.splitlines()
    parsed = [(line, Line.parse(line)) for line in lines]
    mine = [entry for _, entry in parsed if entry is not None and entry.owner in (user, str(uid))]
    ranges = list({(entry.first, entry.count): entry for entry in reversed(mine) if entry.count > 1}.values())[::-1]
    others = [entry for _, entry in parsed if entry is not None and entry not in mine]
    for name, gid in gids:
        holders = [entry for entry in [*others, *ranges] if entry.holds(gid) and entry != Line(entry.owner, gid, 1)]
        holder = holders[0] if holders else None
        if holder is not None:
            raise SetupError(f"the group {name} (gid {gid}) lies in the subordinate gids of {holder.owner} "
                             f"({holder} in {SUBGID}): it cannot be mapped into {user}'s containers")  # fmt: skip
    if not ranges:
        start = max([SUBID_FIRST, *(entry.first + entry.count for entry in others)])
        ranges = [Line(user, start, SUBID_COUNT)]
    wanted = [*(str(Line(user, gid, 1)) for _, gid in gids), *map(str, ranges)]
    kept = [line for line, entry in parsed if entry is None or entry not in mine]
    at = next((index for index, (_, entry) in enumerate(parsed) if entry in mine), len(lines))
    before = sum(1 for line, entry in parsed[:at] if entry is None or entry not in mine)
    return "\n".join([*kept[:before], *wanted, *kept[before:]]) + "\n"


def mapping(text: str, user: str, uid: int) -> list[Mapped]:
    """The groups ``user``'s containers see, from its lines of ``/etc/subgid``: single gids, in order."""
    found, container_gid = [], 1
    for line in text.splitlines():
        entry = Line.parse(line)
        if entry is None or entry.owner not in (user, str(uid)):
            continue
        if entry.count == 1:
            try:
                name = grp.getgrgid(entry.first).gr_name
            except KeyError:
                name = str(entry.first)
            found.append(Mapped(name, entry.first, container_gid))
        container_gid += entry.count
    return found


def ensure(user: str, uid: int, names: tuple[str, ...], subgid: Path = SUBGID) -> list[Mapped]:
    """Each group made (a system group) when missing, ``user`` a member, and ``subgid`` rewritten
    (atomically, only when it changes); returns the mapping. Needs root."""
    gids = [(name, _group(name, user)) for name in names]
    text = subgid.read_text() if subgid.exists() else ""
    new = rewritten(text, user, uid, gids)
    if new != text:
        FileStore(subgid.parent).write(subgid.name, new.encode(), 0o644)
        logger.info("Rewrote %s for %s: %s first", subgid, user, ", ".join(name for name, _ in gids) or "no groups")
    return mapping(new, user, uid)


def describe(mapped: list[Mapped]) -> str:
    if not mapped:
        return "no host groups are mapped into containers"
    shown = ", ".join(f"{entry.name} -> {entry.container_gid}" for entry in mapped)
    return f"host groups inside containers: {shown} (docker run --group-add N)"


def _group(name: str, user: str) -> int:
    """The gid of ``name`` (made when missing), with ``user`` a member of it."""
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        done = subprocess.run(["groupadd", "--system", name], capture_output=True, text=True, check=False)
        try:
            entry = grp.getgrnam(name)  # made, or made meanwhile by another instance (make fleet)
        except KeyError:
            raise SetupError(f"the group {name} does not exist and cannot be made: {done.stderr.strip()}") from None
    if user not in entry.gr_mem:
        done = subprocess.run(["usermod", "--append", "--groups", name, user], capture_output=True, text=True,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise SetupError(f"cannot make {user} a member of {name}: {done.stderr.strip()}")
    return entry.gr_gid
