"""The file store: a write is all or nothing, at the mode asked for."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acap_http.filestore import FileStore


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "localdata")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_zero")
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_mode_is_exact_even_with_umask_zero(store: FileStore, mode: int) -> None:
    """Keys stay 0600 and certificates 0644 whatever the umask."""
    store.write("f.pem", b"data\n", mode)
    assert _mode(store.path("f.pem")) == mode
    store.write("f.pem", b"other\n", mode)  # replacing keeps the mode too
    assert _mode(store.path("f.pem")) == mode


def test_write_creates_directory_and_replaces(store: FileStore) -> None:
    """The first write creates localdata; later writes replace the content whole."""
    store.write("ca.pem", b"one\n", 0o644)
    store.write("ca.pem", b"two\n", 0o644)
    assert store.read("ca.pem") == b"two\n"
    assert sorted(os.listdir(store.directory)) == ["ca.pem"]


def test_failing_rename_keeps_old_file_and_leaves_no_temp(store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails at the rename leaves the old file intact and no temporary file."""
    store.write("server-key.pem", b"old key\n", 0o600)

    def failing_replace(src: str, dst: str, **_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        store.write("server-key.pem", b"new key\n", 0o600)
    monkeypatch.undo()
    assert store.read("server-key.pem") == b"old key\n"
    assert os.listdir(store.directory) == ["server-key.pem"]


def test_failing_write_leaves_no_temp(store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails before the rename (disk full at fsync) leaves nothing behind."""

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        store.write("ca.pem", b"x\n", 0o644)
    monkeypatch.undo()
    assert os.listdir(store.directory) == []


def test_concurrent_writers_leave_one_complete_version(store: FileStore) -> None:
    """Two writers racing on one name leave exactly one of their complete versions,
    and a reader meanwhile only ever sees complete versions."""
    versions = [bytes([ord("a") + i]) * 200_000 for i in range(2)]
    store.write("ca.pem", versions[0], 0o644)
    start = threading.Barrier(len(versions))
    seen: set[bytes] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.add(store.read("ca.pem"))

    def writer(data: bytes) -> None:
        start.wait()
        for _ in range(20):
            store.write("ca.pem", data, 0o644)

    threads = [threading.Thread(target=writer, args=(data,)) for data in versions]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert store.read("ca.pem") in versions
    assert seen <= set(versions)
    assert os.listdir(store.directory) == ["ca.pem"]


def test_remove(store: FileStore) -> None:
    """Removing a present file deletes it; removing an absent one says so."""
    store.write("ca.pem", b"x\n", 0o644)
    store.remove("ca.pem")
    assert not store.exists("ca.pem")
    with pytest.raises(FileNotFoundError):
        store.remove("ca.pem")


@pytest.mark.parametrize("name", ["", "../ca.pem", "a/b", ".hidden", "nul\0"])
def test_only_plain_names(store: FileStore, name: str) -> None:
    """Names cannot leave the directory or hit the store's temporary files."""
    with pytest.raises(ValueError, match="plain file name"):
        store.write(name, b"x", 0o644)


SET_STEPS = [
    "staged ca.pem",
    "staged server-cert.pem",
    "staged server-key.pem",
    "marked",
    "renamed ca.pem",
    "renamed server-cert.pem",
    "renamed server-key.pem",
    "done",
]
CRASH = """
import os, signal, sys
from pathlib import Path
from acap_http.filestore import FileStore

def step(name):
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)

names = ("ca.pem", "server-cert.pem", "server-key.pem")
FileStore(Path(sys.argv[1]), step=step).write_many({n: (b"new " + n.encode() + b"\\n", 0o644) for n in names})
"""


@pytest.mark.parametrize("step", SET_STEPS)
def test_a_set_write_killed_at_any_step_recovers_to_one_whole_set(store: FileStore, step: str) -> None:
    """SIGKILL at each step of a set write, then the next start's recovery: the set is all old
    (killed before the marker) or all new (after it), and no temporary file is left."""
    names = ("ca.pem", "server-cert.pem", "server-key.pem")
    for name in names:
        store.write(name, b"old " + name.encode() + b"\n", 0o644)
    killed = subprocess.run([sys.executable, "-c", CRASH, str(store.directory), step], check=False)
    assert killed.returncode == -signal.SIGKILL
    contents = {store.read(name).split()[0] for name in names}
    if step in ("renamed ca.pem", "renamed server-cert.pem"):
        assert contents == {b"old", b"new"}  # a mix on disk: what recovery is for
    store.recover()
    contents = {store.read(name).split()[0] for name in names}
    assert contents == ({b"old"} if SET_STEPS.index(step) < SET_STEPS.index("marked") else {b"new"})
    assert sorted(os.listdir(store.directory)) == sorted(names)


def test_recovery_with_nothing_to_do_says_nothing(store: FileStore) -> None:
    store.write("ca.pem", b"x\n", 0o644)
    assert store.recover() is None
