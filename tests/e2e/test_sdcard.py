"""SD card storage with real loop-mounted cards (ext4, vfat, exfat) made in
the test, a real rootless dockerd and the docker CLI.

The tests share one ``up --sd-card``; cards are swapped under it, and each test
first puts in (or pulls) the card it needs, with SDCardSupport on.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acap_http.supervisor.sdcard import CardPlace, CardWatcher
from tests.e2e.front import Front, docker, processes_mentioning
from tests.e2e.running import busybox_image

APP_USER = "acap-dockerdwrapper"
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "vfat": ["mkfs.vfat"], "exfat": ["mkfs.exfat"]}
# Where the kernel has no driver for a card's filesystem (this one may not have
# vfat or exfat), its FUSE driver mounts it, as a desktop would.
FUSE_MOUNT = {"vfat": ["fusefat", "-o", "rw+"], "exfat": ["mount.exfat-fuse"]}


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


class Card:
    """A disk image with a filesystem, attached to a loop device while mounted."""

    def __init__(self, directory: Path, fs_type: str) -> None:
        self.image = directory / f"{fs_type}.img"
        self.fs_type = fs_type
        self.device: str | None = None
        with self.image.open("wb") as image:
            image.truncate(256 * 1024 * 1024)
        _run(*MKFS[fs_type], str(self.image))

    def insert(self, mount_point: Path) -> None:
        self.device = _run("losetup", "--find", "--show", str(self.image))
        kernel = subprocess.run(["mount", self.device, str(mount_point)], capture_output=True, check=False)
        if kernel.returncode != 0 and self.fs_type in FUSE_MOUNT:
            _run(*FUSE_MOUNT[self.fs_type], self.device, str(mount_point))
        elif kernel.returncode != 0:
            raise OSError(f"cannot mount {self.fs_type}: {kernel.stderr.decode().strip()}")

    def pull(self, mount_point: Path) -> None:
        """As a card pulled out: gone from the mount table at once, busy or not."""
        _run("umount", "--lazy", str(mount_point))
        if self.device:
            subprocess.run(["losetup", "--detach", self.device], check=False)
            self.device = None


@pytest.fixture(scope="module")
def cards(e2e_root: Path) -> Iterator[dict[str, Card]]:
    directory = e2e_root / "cards"
    directory.mkdir(mode=0o755)
    made = {fs_type: Card(directory, fs_type) for fs_type in MKFS}  # the session checked the tools
    yield made
    for card in made.values():
        if card.device:
            subprocess.run(["umount", "--lazy", card.device], check=False)
            subprocess.run(["losetup", "--detach", card.device], check=False)


class Bay:
    """An up whose SD card is a mount point under the test's control."""

    def __init__(self, root: Path, cards: dict[str, Card]) -> None:
        self.root, self.cards = root, cards
        self.mount_point = root / "sdcard"
        self.mount_point.mkdir(mode=0o755)
        self.inserted: Card | None = None
        self.front = Front(
            app_dir=root / "app",
            log_path=root / "up.log",
            settings={"UseTLS": "no", "SDCardSupport": "yes"},
            extra_args=("--sd-card", str(self.mount_point)),
        )

    @property
    def area(self) -> Path:
        return self.mount_point / "dockerdwrapper"

    def insert(self, fs_type: str) -> int:
        mark = self.front.mark()
        self.cards[fs_type].insert(self.mount_point)
        self.inserted = self.cards[fs_type]
        return mark

    def pull(self) -> int:
        mark = self.front.mark()
        assert self.inserted is not None
        self.inserted.pull(self.mount_point)
        self.inserted = None
        return mark

    def ready(self, fs_type: str | None = "ext4") -> None:
        """The card ``fs_type`` in (None: no card), SDCardSupport on; with an ext4 card, Status 0."""
        if self.inserted is not None and self.inserted.fs_type != fs_type:
            self.pull()
        mark = self.front.mark()
        if fs_type is not None and self.inserted is None:
            self.insert(fs_type)
        self.front.update(SDCardSupport="yes", UseTLS="no")
        if fs_type == "ext4" and (self.front.status() != "0 RUNNING" or "Status=" in self.front.log()[mark:]):
            self.front.wait_status("0 RUNNING", since=mark)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return docker(*args, host="tcp://127.0.0.1:2375", config=self.root / "cfg")

    def data_root(self) -> str:
        done = self.docker("info", "--format", "{{.DockerRootDir}}")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def bay(e2e_root: Path, cards: dict[str, Card]) -> Iterator[Bay]:
    root = e2e_root / "bay"
    root.mkdir(mode=0o755)
    made = Bay(root, cards)
    made.insert("ext4")
    made.front.start()
    yield made
    if made.front.process is not None and made.front.process.poll() is None:
        made.front.stop()
    if made.inserted:
        made.pull()


def test_ext4_card_holds_dockerd_data(bay: Bay) -> None:
    """An ext4 card: Status 0, and docker info shows the data-root on the card."""
    bay.ready("ext4")
    assert bay.data_root() == str(bay.area / "data")


def test_pulled_card_stops_dockerd_then_returns(bay: Bay) -> None:
    """Card pulled while dockerd runs: dockerd stopped, then 5; card back: 0 again."""
    bay.ready("ext4")
    mark = bay.pull()
    bay.front.wait_status("5 NO SD CARD", since=mark)
    log = bay.front.log()[mark:]
    assert log.index("dockerd stopped") < log.index("Status=5 NO SD CARD")
    assert processes_mentioning(f"--data-root {bay.area}") == []
    bay.front.wait_status("0 RUNNING", since=bay.insert("ext4"))
    assert bay.data_root() == str(bay.area / "data")


def test_sd_card_off_uses_localdata(bay: Bay) -> None:
    """SDCardSupport=no: dockerd's data-root is back in localdata."""
    bay.ready("ext4")
    bay.front.wait_status("0 RUNNING", since=bay.front.update(SDCardSupport="no"))
    assert bay.data_root() == str(bay.front.localdata / "data")
    bay.front.wait_status("0 RUNNING", since=bay.front.update(SDCardSupport="yes"))
    assert bay.data_root() == str(bay.area / "data")


# The container answers its stop signal (USR1) in its log and in a file on the host, which outlives the card.
TRAP = "trap 'echo stopped by USR1 | tee /mark/stopped; exit 42' USR1; echo ready; while :; do sleep 0.1; done"


def _trapping_container(bay: Bay, name: str) -> tuple[str, Path]:
    """A container on the card's data-root that answers its stop signal by exiting 42; and its host file."""
    image = busybox_image(bay.root / "busybox.tar", ("sh", "echo", "sleep", "tee"))
    assert bay.docker("import", str(image), "acap-http-test/card").returncode == 0
    mark = bay.root / f"mark-{name}"
    mark.mkdir(mode=0o777)
    mark.chmod(0o777)  # the container's root may be an unprivileged user on the host
    started = bay.docker("run", "-d", "--stop-signal", "USR1", "--stop-timeout", "8", "--network", "none",
                         "-v", f"{mark}:/mark", "acap-http-test/card", "sh", "-c", TRAP)  # fmt: skip
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    deadline = time.monotonic() + 10
    while "ready" not in bay.docker("logs", container).stdout:
        assert time.monotonic() < deadline, "the container did not start"
        time.sleep(0.05)
    return container, mark / "stopped"


def test_containers_on_the_card_stop_when_it_is_switched_off_or_pulled(bay: Bay) -> None:
    """SDCardSupport switched off, or the card pulled: the running containers, which live on the
    card's data-root, are stopped as docker stop does (their own stop signal, answered), not killed
    and not left running on a data-root dockerd no longer uses."""
    bay.ready("ext4")
    container, stopped = _trapping_container(bay, "switched")
    bay.front.wait_status("0 RUNNING", since=bay.front.update(SDCardSupport="no"))
    assert stopped.read_text() == "stopped by USR1\n"
    assert processes_mentioning("stopped by USR1") == []
    bay.front.wait_status("0 RUNNING", since=bay.front.update(SDCardSupport="yes"))
    inspected = bay.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container)
    assert inspected.stdout.split() == ["exited", "42"], inspected.stdout + inspected.stderr
    assert bay.docker("logs", container).stdout.split() == ["ready", "stopped", "by", "USR1"]
    bay.docker("rm", "-f", container)

    container, stopped = _trapping_container(bay, "pulled")
    mark = bay.pull()
    bay.front.wait_status("5 NO SD CARD", since=mark)
    assert stopped.exists(), bay.front.log()[mark:]
    assert stopped.read_text() == "stopped by USR1\n"
    assert processes_mentioning("stopped by USR1") == []
    bay.front.wait_status("0 RUNNING", since=bay.insert("ext4"))
    # What dockerd wrote of the stop went nowhere: the card was gone. It was not running, and is not.
    inspected = bay.docker("inspect", "-f", "{{.State.Status}}", container)
    assert inspected.stdout.split() == ["exited"], inspected.stdout + inspected.stderr


@pytest.mark.parametrize("fs_type", ["vfat", "exfat"])
def test_vfat_and_exfat_are_wrong_fs(bay: Bay, fs_type: str) -> None:
    """A vfat or exfat card: Status 6 and no dockerd."""
    bay.ready(None)
    mark = bay.insert(fs_type)
    # Status may already be 6 from the card before: wait for this card's refusal.
    deadline = time.monotonic() + 30
    while f"is formatted {fs_type}" not in bay.front.log()[mark:]:
        assert time.monotonic() < deadline, bay.front.app_log()
        time.sleep(0.1)
    assert bay.front.status() == "6 SD CARD WRONG FS"
    assert processes_mentioning(f"--data-root {bay.area}") == []
    bay.pull()


def test_no_card_is_5_after_the_wait(bay: Bay) -> None:
    """No card when dockerd should start: Status 5, after waiting 5 s for one (and not before)."""
    bay.ready(None)
    began = time.monotonic()
    mark = bay.front.restart_dockerd()
    bay.front.wait_log("Waiting up to 5 s for the SD card", since=mark)
    assert bay.front.status() == "1 DOCKERD STOPPED"
    bay.front.wait_status("5 NO SD CARD", since=mark)
    assert time.monotonic() - began >= 5.0


def test_data_directory_of_another_user_is_7(bay: Bay) -> None:
    """A data directory owned by another user with mode 0700, dockerd unprivileged: Status 7 and
    a log line that names the directory; given back to the app's user, dockerd starts."""
    bay.ready("ext4")
    data = bay.area / "data"  # as left by a rootful release, or by root elsewhere
    os.chown(data, 0, 0)
    data.chmod(0o700)
    mark = bay.front.restart_dockerd()
    bay.front.wait_status("7 SD CARD WRONG PERMISSION", since=mark)
    assert f"cannot write dockerd's data directory {data}" in bay.front.log()[mark:]
    user = pwd.getpwnam(APP_USER)
    os.chown(data, user.pw_uid, user.pw_gid)
    bay.front.wait_status("0 RUNNING", since=bay.front.restart_dockerd())


def test_watcher_hears_mounts_come_and_go(e2e_root: Path) -> None:
    """The card watcher is told at once of a mount and an unmount at the card's place."""
    mount_point = e2e_root / "watched"
    mount_point.mkdir()
    seen: list[bool] = []
    changed = threading.Event()

    def record(present: bool) -> None:
        seen.append(present)
        changed.set()

    watcher = CardWatcher(CardPlace(mount_point, mount_point / "area"))
    watcher.start(record)
    try:
        _run("mount", "-t", "tmpfs", "tmpfs", str(mount_point))
        assert changed.wait(5)
        changed.clear()
        _run("umount", str(mount_point))
        assert changed.wait(5)
    finally:
        watcher.stop()
    assert seen == [True, False]
