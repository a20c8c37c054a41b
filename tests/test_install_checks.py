"""What ``acap-http install`` refuses before it writes anything: directories it does not own, links,
values that would write lines of their own into the unit; and what uninstall removes (only what
install recorded having made). No package is installed here: each case stops before pip."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from acap_http.errors import SetupError
from acap_http.servers import install, unitfile
from acap_http.servers.unitfile import Places

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def _places(root: Path, **changed: Path) -> Places:
    paths = {
        "prefix": root / "prefix",
        "app_dir": root / "data",
        "config_dir": root / "etc",
        "unit_dir": root / "units",
    }
    return Places(**{**paths, **changed})


def _install(places: Places, *, listen: tuple[str, int] = ("127.0.0.1", 8443), address: str = "127.0.0.1") -> None:
    install.install(places, source=CHECKOUT / "no-such-checkout", listen=listen, docker_address=address, enable=False)


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def test_a_venv_looking_directory_of_before_is_not_taken_nor_removed(root: Path) -> None:
    """A --prefix holding bin, lib and pyvenv.cfg (a ~/.local, or /root/.local) was taken for a venv
    and removed whole by uninstall: now refused, and left as it is by uninstall."""
    local = root / "dot-local"
    for name in ("bin", "lib", "share"):
        (local / name).mkdir(parents=True)
    (local / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (local / "share" / "keyrings").mkdir()
    with pytest.raises(SetupError, match=r"--prefix .* holds what acap-http install did not make"):
        _install(_places(root, prefix=local))
    install.uninstall(_places(root, prefix=local))
    assert (local / "share" / "keyrings").is_dir()


def test_a_config_dir_of_another_user_is_refused_even_with_the_marker(root: Path) -> None:
    """Another user's directory with only install's old marker in it was filled with secrets and left
    that user's (who could then swap the users file root reads): refused."""
    theirs = root / "etc"
    theirs.mkdir()
    (theirs / install.LEGACY_MARK).write_text("made by acap-http install\n")
    os.chown(theirs, _nobody(), -1)
    with pytest.raises(SetupError, match=r"--config-dir .* belongs to uid"):
        _install(_places(root))
    assert sorted(path.name for path in theirs.iterdir()) == [install.LEGACY_MARK]


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_parent_others_may_write_is_refused(root: Path, mode: int) -> None:
    """Whoever may write a parent may put a link where the directory is, between the check and the write."""
    shared = root / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(SetupError, match=r"may be changed by another user than root"):
        _install(_places(root, config_dir=shared / "etc"))
    assert list(shared.iterdir()) == []


def test_a_link_in_the_path_is_refused(root: Path) -> None:
    (root / "real").mkdir()
    (root / "link").symlink_to(root / "real")
    with pytest.raises(SetupError, match=r"is a symbolic link"):
        _install(_places(root, prefix=root / "link" / "prefix"))
    assert list((root / "real").iterdir()) == []


@pytest.mark.parametrize(
    ("address", "listen", "message"),
    [
        ("127.0.0.1\nExecStartPre=/bin/touch /tmp/owned", ("127.0.0.1", 8443), "--docker-address .* is not an IP"),
        ("0.0.0.0 --rootful", ("127.0.0.1", 8443), "--docker-address .* is not an IP"),
        ("127.0.0.1", ("127.0.0.1\nExecStartPre=/bin/sh", 8443), "--listen .* neither an IP address nor a host name"),
        ("127.0.0.1", ("$(id)", 8443), "--listen .* neither an IP address nor a host name"),
    ],
)
def test_values_that_would_write_the_unit_are_refused(root: Path, address: str, listen: tuple[str, int],
                                                      message: str) -> None:  # fmt: skip
    with pytest.raises(SetupError, match=message):
        _install(_places(root), listen=listen, address=address)
    assert not (root / "units").exists() and not (root / "etc").exists()


@pytest.mark.parametrize("path", ["relative/data", "/var/lib/%h", "/var/lib/$HOME", "/var/lib/a b", "/var/../etc",
                                  "/var/lib/x\nExecStartPre=/bin/sh"])  # fmt: skip
def test_paths_that_are_not_plain_are_refused(root: Path, path: str) -> None:
    with pytest.raises(SetupError, match="give an absolute path"):
        _install(_places(root, app_dir=Path(path)))


def test_quoting_as_systemd_reads_it() -> None:
    """Specifiers and variables are doubled, anything else odd is quoted, and controls never pass."""
    assert unitfile.quote("/opt/acap-http/bin/acap-http") == "/opt/acap-http/bin/acap-http"
    assert unitfile.quote("[::]:8443") == "[::]:8443"
    assert unitfile.quote("50%") == "50%%"
    assert unitfile.quote("$HOME") == "$$HOME"
    assert unitfile.quote('a "b" c') == '"a \\"b\\" c"'
    with pytest.raises(SetupError):
        unitfile.quote("a\nb")
    assert unitfile.listen("::", 8443) == "[::]:8443"
    assert unitfile.listen("edge1.example", 8443) == "edge1.example:8443"


def test_a_link_planted_at_the_unit_is_replaced_never_followed(root: Path) -> None:
    """The unit is written beside and renamed over its name: a link there is replaced, its target
    untouched (here install stops at pip afterwards; the unit is written last, so test the writer)."""
    units = root / "units"
    units.mkdir()
    target = root / "target"
    (units / unitfile.UNIT).symlink_to(target)
    places = _places(root)
    from acap_http.safedir import SafeDir  # noqa: PLC0415

    with SafeDir.open(units) as directory:
        directory.write(unitfile.UNIT, unitfile.unit(places, "127.0.0.1:8443", "127.0.0.1").encode(), 0o644)
    assert not target.exists() and not (units / unitfile.UNIT).is_symlink()


def test_uninstall_removes_what_the_record_names_and_nothing_else(root: Path) -> None:
    """A --config-dir that was there, empty (its files only go), a prefix install made (it goes whole),
    and an empty --prefix that was there: what install put in it goes, what came later stays."""
    places = _places(root)
    for directory in (places.prefix, places.config_dir, places.unit_dir):
        directory.mkdir(mode=0o755)
    (places.prefix / "bin").mkdir()
    (places.config_dir / "users").write_text("x\n")
    (places.config_dir / "theirs").write_text("kept\n")
    (places.unit_dir / unitfile.UNIT).write_text(unitfile.unit(places, "127.0.0.1:8443", "127.0.0.1"))
    record = {"made": [str(places.prefix)], "filled": {str(places.config_dir): ["users", "installed.json"]},
              "unit": str(places.unit)}  # fmt: skip
    (places.config_dir / install.RECORD).write_text(json.dumps(record))
    install.uninstall(places)
    assert not places.prefix.exists() and not places.unit.exists()
    assert sorted(path.name for path in places.config_dir.iterdir()) == ["theirs"]

    opt = root / "opt"
    (opt / "bin").mkdir(parents=True)
    (opt / "pyvenv.cfg").write_text("")
    (opt / "later-software").mkdir()
    (places.config_dir / install.RECORD).write_text(json.dumps({"filled": {str(opt): ["bin", "pyvenv.cfg"]}}))
    install.uninstall(_places(root, prefix=opt))
    assert sorted(path.name for path in opt.iterdir()) == ["later-software"]


def test_a_new_directory_in_a_sticky_one_is_refused(root: Path) -> None:
    """In /tmp anyone may make the directory between install's look and its mkdir: a place there must
    exist already, root's (the tests' own temporary directories are)."""
    sticky = root / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    with pytest.raises(SetupError, match="may be changed by another user than root"):
        _install(_places(root, prefix=sticky / "prefix"))
    (sticky / "ours").mkdir(mode=0o755)
    with pytest.raises(SetupError, match="no-such-checkout is not an acap-http source tree"):
        _install(_places(root, prefix=sticky / "ours" / "prefix"))


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"app_dir": Path("/opt")}, "--app-dir /opt is a directory of the system"),
        ({"app_dir": Path("/var/lib")}, "is a directory of the system"),
        ({"prefix": Path("/srv/acap/data/venv"), "app_dir": Path("/srv/acap/data")}, "--prefix .* lie in one another"),
        ({"config_dir": Path("/srv/acap"), "app_dir": Path("/srv/acap/data")}, "--config-dir .* lie in one another"),
        ({"prefix": Path("/opt/acap"), "config_dir": Path("/opt/acap/etc")}, "lies in --prefix"),
    ],
)
def test_places_that_lie_in_one_another_are_refused(root: Path, changed: dict[str, Path], message: str) -> None:
    """serve gives the app directory to the app's user: the program or the configuration inside it
    would be that user's to change."""
    with pytest.raises(SetupError, match=message):
        _install(_places(root, **changed))
