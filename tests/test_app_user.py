"""Handing the app directory to the app's user never follows what that user planted.

Needs root (chown); ``make test`` runs as root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from acap_http.safedir import LinkRefused
from acap_http.servers import app_user
from acap_http.servers.app_user import AppUser

NOBODY = AppUser("nobody", 65534, 65534)


def _owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture
def victims(tmp_path: Path) -> dict[str, Path]:
    """Root's files outside the app directory, like /etc/shadow."""
    outside = tmp_path / "outside"
    outside.mkdir()
    made = {}
    for name in ("shadow", "other", "linked", "secrets"):
        path = outside / name
        path.write_text(f"root's {name}\n")
        path.chmod(0o600)
        made[name] = path
    (outside / "secrets").unlink()
    (outside / "secrets").mkdir(mode=0o700)
    made["secrets"] = outside / "secrets"
    return made


def test_regular_files_and_directories_are_handed_over(tmp_path: Path) -> None:
    """The app directory, localdata, params.json and the TLS files become the user's; data/ is left."""
    app = tmp_path / "app"
    (app / "localdata" / "data").mkdir(parents=True)
    for path in (app / "params.json", app / "localdata" / "ca.pem", app / "localdata" / "daemon.json"):
        path.write_text("x\n")
    assert app_user.hand_over(NOBODY, app) == []
    for path in (app, app / "localdata", app / "params.json", app / "localdata" / "ca.pem"):
        assert path.stat().st_uid == NOBODY.uid, path
        assert path.stat().st_gid == NOBODY.gid, path
    assert (app / "localdata" / "data").stat().st_uid == 0


def test_planted_links_are_refused_and_their_targets_untouched(tmp_path: Path, victims: dict[str, Path]) -> None:
    """A symlink to /etc/shadow under a file's name, in localdata or as a kept params.json,
    leaves the target with root's owner and mode; each refusal is reported."""
    app = tmp_path / "app"
    (app / "localdata").mkdir(parents=True)
    (app / "localdata" / "a.pem").symlink_to(victims["shadow"])
    (app / "params.json.corrupt-1").symlink_to(victims["other"])
    os.link(victims["linked"], app / "localdata" / "server-key.pem")  # a hard link
    os.mkfifo(app / "localdata" / "fifo.pem")
    before = {name: _owner_and_mode(path) for name, path in victims.items()}
    refused = app_user.hand_over(NOBODY, app)
    assert {name: _owner_and_mode(path) for name, path in victims.items()} == before
    assert sorted(refused) == sorted(
        [
            f"{app}/localdata/a.pem is a symbolic link to {str(victims['shadow'])!r}",
            f"{app}/params.json.corrupt-1 is a symbolic link to {str(victims['other'])!r}",
            f"{app}/localdata/server-key.pem has 2 hard links",
            f"{app}/localdata/fifo.pem is not a plain file",
        ]
    )


@pytest.mark.parametrize("linked", ["localdata", "."])
def test_a_linked_directory_is_refused(tmp_path: Path, victims: dict[str, Path], linked: str) -> None:
    """localdata (or the app directory itself) as a link to root's directory: refused, target untouched."""
    secrets = victims["secrets"]
    (secrets / "key").write_text("k\n")
    app = tmp_path / "app"
    if linked == ".":
        app.symlink_to(secrets)
    else:
        app.mkdir()
        (app / "localdata").symlink_to(secrets)
    before = (_owner_and_mode(secrets), _owner_and_mode(secrets / "key"))
    with pytest.raises(LinkRefused, match="is a symbolic link to"):
        app_user.hand_over(NOBODY, app)
    assert (_owner_and_mode(secrets), _owner_and_mode(secrets / "key")) == before
