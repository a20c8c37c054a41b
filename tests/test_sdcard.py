"""The SD card checks, from mount tables written out as the kernel writes them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from acap_http import mounts
from acap_http.status import Status
from acap_http.supervisor import sdcard
from acap_http.supervisor.sdcard import CardPlace

# A camera-like table: the card (vfat here) at SD_DISK, its areas directory
# bound onto /var/spool/storage/areas/SD_DISK, a tmpfs nested under a
# mounted disk, a path with a space, and a later mount hiding an earlier one.
MOUNTINFO = """\
22 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw
30 22 0:25 / /var/volatile rw,nosuid shared:8 - tmpfs tmpfs rw
41 22 179:33 / /var/spool/storage/SD_DISK rw,relatime shared:20 - vfat /dev/mmcblk1p1 rw,uid=0
42 22 179:33 /areas /var/spool/storage/areas/SD_DISK rw,relatime shared:20 - vfat /dev/mmcblk1p1 rw,uid=0
50 22 7:0 / /mnt/usb\\040disk rw,relatime - ext4 /dev/loop0 rw
51 50 0:40 / /mnt/usb\\040disk/cache rw - tmpfs tmpfs rw
60 22 7:1 / /mnt/card rw,relatime - ext4 /dev/loop1 rw
61 22 7:2 / /mnt/card rw,relatime - exfat /dev/loop2 rw
"""
TABLE = mounts.parse(MOUNTINFO)


def test_parse_fields_and_escapes() -> None:
    """Mount point, root, type and device come out of each line; octal escapes are undone."""
    usb = TABLE[4]
    assert (usb.mount_point, usb.root, usb.fs_type, usb.source) == (
        Path("/mnt/usb disk"),
        Path("/"),
        "ext4",
        "/dev/loop0",
    )
    assert TABLE[3].root == Path("/areas")  # a bind mount of a directory of the card


@pytest.mark.parametrize(
    ("path", "fs_type", "mount_point"),
    [
        ("/var/spool/storage/areas/SD_DISK/dockerdwrapper/data", "vfat", "/var/spool/storage/areas/SD_DISK"),
        ("/var/spool/storage/SD_DISK/x", "vfat", "/var/spool/storage/SD_DISK"),
        ("/var/spool/storage", "ext4", "/"),
        ("/var/volatile/tmp", "tmpfs", "/var/volatile"),
        ("/mnt/usb disk/dockerdwrapper", "ext4", "/mnt/usb disk"),
        ("/mnt/usb disk/cache/x", "tmpfs", "/mnt/usb disk/cache"),
        ("/mnt/usb diskette", "ext4", "/"),  # a name that starts the same is not inside
        ("/mnt/card/dockerdwrapper", "exfat", "/mnt/card"),  # the mount made last hides the first
    ],
)
def test_filesystem_holding_a_path(path: str, fs_type: str, mount_point: str) -> None:
    """A path lives on the deepest mount above it, through bind and nested mounts."""
    mount = sdcard.holder(Path(path), TABLE)
    assert mount is not None
    assert (mount.fs_type, mount.mount_point) == (fs_type, Path(mount_point))


def _place(root: Path) -> CardPlace:
    return CardPlace(mount_point=root / "card", area=root / "card" / "dockerdwrapper")


def _table(root: Path, fs_type: str) -> list[mounts.Mount]:
    return [
        mounts.Mount(Path("/"), Path("/"), "ext4", "/dev/vda"),
        mounts.Mount(root / "card", Path("/"), fs_type, "/dev/loop0"),
    ]


def test_no_card_is_5(tmp_path: Path) -> None:
    """Nothing mounted at the card's mount point: 5."""
    assert sdcard.check(_place(tmp_path), _table(tmp_path, "ext4")[:1]) is Status.NO_SD_CARD


@pytest.mark.parametrize(
    "fs_type", ["vfat", "exfat", "msdos", "fuse.fusefat", "fuseblk", "fuseblk.exfat", "fuse.exfat"]
)
def test_wrong_filesystem_is_6(tmp_path: Path, fs_type: str) -> None:
    """A card whose filesystem keeps no Unix permissions: 6, and nothing is created on it."""
    place = _place(tmp_path)
    assert sdcard.check(place, _table(tmp_path, fs_type)) is Status.SD_CARD_WRONG_FS
    assert not place.area.exists()


def test_usable_card_creates_data_directory(tmp_path: Path) -> None:
    """An ext4 card: no Status, and the data directory is there for dockerd."""
    place = _place(tmp_path)
    assert sdcard.check(place, _table(tmp_path, "ext4")) is None
    assert place.data_root.is_dir()


def test_data_directory_not_writable_is_7(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A data directory the user cannot write: 7, with a log line naming it and the repair."""
    place = _place(tmp_path)
    place.data_root.mkdir(parents=True)
    place.data_root.chmod(0o700)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as an unprivileged user would find it
    assert sdcard.check(place, _table(tmp_path, "ext4")) is Status.SD_CARD_WRONG_PERMISSION
    message = caplog.records[-1].getMessage()
    assert str(place.data_root) in message and "chown -R" in message and "mode 0700" in message


def test_data_directory_not_creatable_is_7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An area where the data directory cannot be made: 7."""

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert sdcard.check(_place(tmp_path), _table(tmp_path, "ext4")) is Status.SD_CARD_WRONG_PERMISSION
