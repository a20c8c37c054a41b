"""The front's passwords are kept where only root can reach them, and nothing planted
in the app directory (which the app's user owns) is followed to read or write them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from acap_http.config import AppPaths
from acap_http.errors import SetupError
from acap_http.servers.users import USERS, read_passwords


@pytest.fixture(autouse=True)
def _no_password_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for _, _, variable in USERS:
        monkeypatch.delenv(variable, raising=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_passwords_are_made_once_and_kept_private(tmp_path: Path) -> None:
    """First start: one password per user in front/, 0600 in a 0700 directory; the next start reads them."""
    paths = AppPaths(tmp_path / "app")
    first = read_passwords(paths)
    assert sorted(first) == ["admin", "operator", "viewer"]
    assert _mode(paths.front) == 0o700
    assert all(_mode(paths.front / f"{name}.password") == 0o600 for name in first)
    assert {name: p.value for name, p in read_passwords(paths).items()} == {n: p.value for n, p in first.items()}


def test_password_from_environment_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every variable set nothing is written at all."""
    for name, _, variable in USERS:
        monkeypatch.setenv(variable, f"pw-{name}")
    assert read_passwords(AppPaths(tmp_path / "app"))["admin"].value == "pw-admin"
    assert not (tmp_path / "app").exists()


def test_front_as_a_link_is_refused(tmp_path: Path) -> None:
    """front/ -> a directory of root's: refused with a clear error; the target keeps its mode and gets no file."""
    target = tmp_path / "roots"
    target.mkdir(mode=0o755)
    paths = AppPaths(tmp_path / "app")
    paths.app_dir.mkdir()
    paths.front.symlink_to(target)
    with pytest.raises(SetupError, match=r"front is a symbolic link to .*roots"):
        read_passwords(paths)
    assert _mode(target) == 0o755
    assert os.listdir(target) == []


def test_front_of_another_owner_is_refused(tmp_path: Path) -> None:
    """A front/ the app's user made itself would let it read the passwords: refused."""
    paths = AppPaths(tmp_path / "app")
    paths.front.mkdir(parents=True, mode=0o777)
    os.chown(paths.front, 65534, 65534)
    with pytest.raises(SetupError, match="belongs to uid 65534"):
        read_passwords(paths)
    assert os.listdir(paths.front) == []


def test_a_kept_password_that_is_a_link_is_not_read_or_written_through(tmp_path: Path) -> None:
    """admin.password -> another file: the link is replaced by a new password; the target is untouched."""
    secret = tmp_path / "shadow"
    secret.write_text("root's secret\n")
    secret.chmod(0o644)
    paths = AppPaths(tmp_path / "app")
    read_passwords(paths)
    (paths.front / "admin.password").unlink()
    (paths.front / "admin.password").symlink_to(secret)
    passwords = read_passwords(paths)
    assert passwords["admin"].value != "root's secret"
    assert secret.read_text() == "root's secret\n"
    assert _mode(secret) == 0o644
    assert not (paths.front / "admin.password").is_symlink()
