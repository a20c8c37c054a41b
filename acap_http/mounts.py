"""The mount table (/proc/self/mountinfo), read as data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class Mount:
    mount_point: Path
    root: Path  # the part of the filesystem mounted here (not "/" for a bind mount)
    fs_type: str
    source: str  # the device, e.g. /dev/mmcblk0p1


def parse(text: str) -> list[Mount]:
    """Mounts in table order; later mounts on a path hide earlier ones."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        separator = fields.index("-")
        mounts.append(
            Mount(
                mount_point=Path(_unescape(fields[4])),
                root=Path(_unescape(fields[3])),
                fs_type=fields[separator + 1],
                source=_unescape(fields[separator + 2]),
            )
        )
    return mounts


def read() -> list[Mount]:
    return parse(MOUNTINFO.read_text())


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)
