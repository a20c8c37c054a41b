"""``up`` started as root gives the app directory to the rootless app's user, whom
any docker client controls: links that user planted are never followed."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.front import Front

APP_USER = "acap-dockerdwrapper"


def _owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture
def shadow(tmp_path: Path) -> Path:
    """A file of root's, 0600, standing for /etc/shadow."""
    path = tmp_path / "shadow"
    path.write_text("root:secret\n")
    path.chmod(0o600)
    return path


def test_up_refuses_planted_file_links_and_says_so(
    make_front: Callable[..., Front], shadow: Path, tmp_path: Path
) -> None:
    """localdata/a.pem and params.json.corrupt-1 linked to root's files: up starts, says what it
    refused, and the targets keep root as owner and their mode."""
    other = tmp_path / "other"
    other.write_text("root's other file\n")
    other.chmod(0o640)
    front = make_front()
    (front.localdata).mkdir(parents=True)
    (front.localdata / "a.pem").symlink_to(shadow)
    (front.app_dir / "params.json.corrupt-1").symlink_to(other)
    before = _owner_and_mode(shadow), _owner_and_mode(other)
    front.start()
    assert (_owner_and_mode(shadow), _owner_and_mode(other)) == before
    log = front.log()
    assert f"Not giving to {APP_USER}: {front.localdata}/a.pem is a symbolic link to '{shadow}'" in log
    assert f"{front.app_dir}/params.json.corrupt-1 is a symbolic link to '{other}'" in log
    # The app works as usual: the directory itself is the app user's.
    assert front.localdata.stat().st_uid != 0
    assert front.stop() == 0


@pytest.mark.parametrize("planted", ["localdata", "front"])
def test_up_refuses_a_linked_directory(make_front: Callable[..., Front], tmp_path: Path, planted: str) -> None:
    """localdata or front/ as a link to a directory of root's: up stops with one clear line,
    changes nothing there, and leaves nothing running."""
    target = tmp_path / "roots"
    target.mkdir(mode=0o750)
    (target / "keep").write_text("k\n")
    (target / "keep").chmod(0o600)
    front = make_front(password=None)  # front/ is used only for kept passwords
    front.app_dir.mkdir(parents=True)
    (front.app_dir / planted).symlink_to(target)
    before = _owner_and_mode(target), _owner_and_mode(target / "keep")
    front.settings = None
    with pytest.raises(AssertionError, match="exited with 1"):
        front.start(timeout=20)
    assert (_owner_and_mode(target), _owner_and_mode(target / "keep")) == before
    assert sorted(os.listdir(target)) == ["keep"]
    assert f"{front.app_dir}/{planted} is a symbolic link to '{target}'; refusing to follow or use it" in front.log()
    lines = [line for line in front.log().splitlines() if line.startswith("acap-http:")]
    assert len(lines) == 1, front.log()
    assert subprocess.run(["pgrep", "-f", str(front.app_dir)], check=False).returncode == 1
