"""A camera's flash fills up, turns read-only, or fails: the app directory (settings, TLS files,
daemon.json) lives on a small ext4 filesystem of its own, seen through a FUSE layer that can
fail every write with EIO. Each write through HTTP answers 507 with one line naming the fault,
stores nothing partial, keeps what was stored, and the front keeps serving; once the disk is
well again, the next write works."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import NO_DOCKERD, PREFIX, Answer, Front

DAEMON_JSON = PREFIX + "daemon.json"
PARAM_API = "/config/rest/param/v2beta/dockerdwrapper"
GROUP = "root.dockerdwrapper"
NO_SOCKET = "4 NO SOCKET"  # the Status of an app with both sockets off: no dockerd to disturb
FAULTS = {
    "full": "no space is left on the disk",
    "read-only": "the disk is read-only",
    "failing": "the disk fails (input/output error)",
}


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout.strip()


@dataclass
class Disk:
    """The app directory's filesystem: a 32 MiB ext4 on a loop device, under the FUSE layer."""

    root: Path
    device: str = ""
    layer: subprocess.Popen[bytes] | None = None

    @property
    def backing(self) -> Path:
        return self.root / "ext4"

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def switch(self) -> Path:
        return self.root / "switch"

    @property
    def filler(self) -> Path:
        return self.backing / "filler"

    def attach(self) -> None:
        image = self.root / "disk.img"
        with image.open("wb") as made:
            made.truncate(32 * 1024 * 1024)
        _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))  # -m 0: no blocks kept for root
        self.device = _run("losetup", "--find", "--show", str(image))
        self.backing.mkdir()
        _run("mount", self.device, str(self.backing))
        self.app_dir.mkdir()
        command = [sys.executable, "-m", "tests.e2e.faultyfs", str(self.backing), str(self.app_dir), str(self.switch)]
        self.layer = subprocess.Popen(command, cwd=Path(__file__).parents[2])
        deadline = time.monotonic() + 20
        while not self.app_dir.is_mount():
            assert self.layer.poll() is None and time.monotonic() < deadline, "the FUSE layer did not come up"
            time.sleep(0.05)

    def detach(self) -> None:
        if self.layer is not None:
            subprocess.run(["umount", "--lazy", str(self.app_dir)], check=False)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.layer.wait(10)
            if self.layer.poll() is None:
                self.layer.kill()
        subprocess.run(["umount", "--lazy", str(self.backing)], check=False)
        if self.device:
            subprocess.run(["losetup", "--detach", self.device], check=False)

    def fault(self, kind: str) -> None:
        if kind == "full":
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for size in (1 << 20, 4096, 1):  # big pieces, then the last blocks' bytes
                    with contextlib.suppress(OSError):
                        while True:
                            os.write(fd, b"\0" * size)
            finally:
                os.close(fd)
        elif kind == "read-only":
            _run("mount", "-o", "remount,ro", str(self.backing))
        else:
            self.switch.write_text("eio")

    def heal(self, kind: str) -> None:
        if kind == "full":
            self.filler.unlink()
        elif kind == "read-only":
            _run("mount", "-o", "remount,rw", str(self.backing))
        else:
            self.switch.unlink()

    def leftovers(self) -> list[str]:
        """Temporary files of writes that failed: none may stay."""
        return [str(path) for path in self.backing.rglob(".*.tmp")]


@pytest.fixture(scope="module")
def disk(e2e_root: Path) -> Iterator[tuple[Disk, Front]]:
    root = e2e_root / "disk-faults"
    root.mkdir(mode=0o755)
    disk = Disk(root)
    try:
        disk.attach()
        front = Front(app_dir=disk.app_dir, log_path=root / "up.log", settings=NO_DOCKERD)
        front.start()
        try:
            yield disk, front
        finally:
            assert front.stop() == 0, front.log()
    finally:
        disk.detach()


@dataclass(frozen=True)
class Write:
    """One write an operator makes, how to read back what it changes, and the line of its failure."""

    name: str
    send: Callable[[Front, Path, int], Answer]
    read: Callable[[Front], str]
    failed: str  # the answer's line up to the fault
    kept: str  # and after it


def _upload(front: Front, scratch: Path, turn: int) -> Answer:
    (scratch / "ca.pem").write_bytes(pki.server_set().ca)
    return front.upload("ca.pem", scratch / "ca.pem")


def _upload_set(front: Front, scratch: Path, turn: int) -> Answer:
    files = pki.server_set()
    args = []
    for name, data in files.by_name().items():
        (scratch / name).write_bytes(data)
        args += ["-F", f"{name}=@{scratch / name}"]
    return front.curl(*args, "-X", "POST", path=PREFIX + "tls")


def _set(front: Front, scratch: Path, turn: int) -> Answer:
    return front.curl(path=f"/axis-cgi/param.cgi?action=update&{GROUP}.DockerdLogLevel={LEVELS[turn % 2]}")


def _patch(front: Front, scratch: Path, turn: int) -> Answer:
    body = json.dumps({"data": LEVELS[turn % 2]})
    return front.curl("-X", "PATCH", "-H", "Content-Type: application/json", "--data", body,
                      path=f"{PARAM_API}/DockerdLogLevel")  # fmt: skip


def _put_daemon_json(front: Front, scratch: Path, turn: int) -> Answer:
    (scratch / "daemon.json").write_text(json.dumps({"labels": [f"turn={turn}"]}))
    return front.curl("-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                      f"@{scratch / 'daemon.json'}", path=DAEMON_JSON)  # fmt: skip


def _delete(front: Front, scratch: Path, turn: int) -> Answer:
    return front.curl("-X", "DELETE", path=PREFIX + "server-key.pem")


def _level(front: Front) -> str:
    return front.curl(path=f"/axis-cgi/param.cgi?action=list&group={GROUP}.DockerdLogLevel").body


LEVELS = ("debug", "info")
WRITES = [
    Write("upload", _upload, lambda front: front.curl(path=PREFIX + "tls").body,
          "Failed to copy file to localdata", "the stored files are kept"),
    Write("set", _upload_set, lambda front: front.curl(path=PREFIX + "tls").body,
          "Failed to copy file to localdata", "the stored files are kept"),
    Write("param.cgi", _set, _level, "# Error: Could not save the parameters", "the settings are unchanged"),
    Write("Param API", _patch, _level, "Could not save the parameters", "the settings are unchanged"),
    Write("daemon.json", _put_daemon_json, lambda front: front.curl(path=DAEMON_JSON).body,
          "Failed to store daemon.json", "the stored one is kept"),
    Write("delete", _delete, lambda front: front.curl(path=PREFIX + "tls").body,
          "Failed to remove file from localdata", "the file is kept"),
]  # fmt: skip


@pytest.mark.parametrize("kind", FAULTS)
def test_every_write_on_a_sick_disk_is_refused_and_changes_nothing(
    disk: tuple[Disk, Front], kind: str, tmp_path: Path
) -> None:
    """Full, read-only or failing: each write answers 507 with one line (what failed, the fault,
    what is kept); what was stored reads back unchanged, no temporary file stays, the front
    answers and Status holds; the disk well again, the same write works."""
    sick, front = disk
    tmp_path.chmod(0o755)
    for turn, write in enumerate(WRITES):
        if kind == "full" and write.name == "delete":
            continue  # a removal needs no space: it works on a full disk, and frees some
        if write.name == "delete":
            assert _upload_set(front, tmp_path, turn).status == 204
        else:
            assert write.send(front, tmp_path, turn).status in (200, 204), f"{write.name}: before the fault"
        front.wait_status(NO_SOCKET)  # settled after the write before the fault
        before = write.read(front)
        sick.fault(kind)
        try:
            answer = write.send(front, tmp_path, turn + 1)
            line = f"{write.failed}: {FAULTS[kind]}; {write.kept}"
            assert answer.status == 507, f"{write.name}: {answer.status} {answer.body}\n{front.app_log()}"
            if write.name == "Param API":
                assert json.loads(answer.body)["error"]["message"] == line, answer.body
            else:
                assert answer.body == line + "\r\n", f"{write.name}: {answer.body!r}"
            assert write.read(front) == before, write.name
            assert front.status() == NO_SOCKET  # and a refused write restarts nothing
        finally:
            sick.heal(kind)
        assert sick.leftovers() == [], write.name
        assert write.send(front, tmp_path, turn + 1).status in (200, 204), f"{write.name}: after the fault"
        assert write.read(front) != before, write.name
