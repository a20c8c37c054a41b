"""The parameter store: defaults, persistence, corrupt files, all-or-nothing
updates and observers told exactly what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acap_http import config, manifest
from acap_http.params import ParamStore, UpdateRefused

MANIFEST = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")


def _store(directory: Path) -> ParamStore:
    return ParamStore.from_manifest(MANIFEST, directory)


def test_defaults_without_a_file(tmp_path: Path) -> None:
    """A missing file means the manifest's defaults, in manifest order."""
    store = _store(tmp_path)
    assert store.values() == {decl.name: decl.default for decl in MANIFEST.params}
    assert list(store.values()) == [decl.name for decl in MANIFEST.params]
    assert not (tmp_path / "params.json").exists()


def test_values_persist_across_instances(tmp_path: Path) -> None:
    """What an update sets is there for the next store on the same directory, normalised."""
    _store(tmp_path).update({"UseTLS": "NO", "DockerdLogLevel": "debug"})
    again = _store(tmp_path)
    assert (again.get("UseTLS"), again.get("DockerdLogLevel")) == ("no", "debug")
    assert (tmp_path / "params.json").stat().st_mode & 0o777 == 0o600


def test_status_is_live_state_not_persisted(tmp_path: Path) -> None:
    """Status is written by the program only and starts at its default in every process."""
    store = _store(tmp_path)
    with pytest.raises(UpdateRefused, match="read-only"):
        store.update({"Status": "0 RUNNING"})
    store.update({"Status": "0 RUNNING"}, by_program=True)
    assert store.get("Status") == "0 RUNNING"
    assert _store(tmp_path).get("Status") == "-1 NOT STARTED"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"UseTLS": true}', b"\xff\xfe"])
def test_corrupt_file_is_kept_aside(tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt file is renamed, not deleted; defaults are used and the event is logged as an error."""
    (tmp_path / "params.json").write_bytes(content)
    store = _store(tmp_path)
    assert store.get("UseTLS") == "yes"
    kept = list(tmp_path.glob("params.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert not (tmp_path / "params.json").exists()
    assert any(record.levelname == "ERROR" and "corrupt" in record.message for record in caplog.records)


def test_bad_single_value_falls_back_to_its_default(tmp_path: Path) -> None:
    """One value its type refuses (or an unknown name) does not cost the others."""
    (tmp_path / "params.json").write_text(json.dumps({"UseTLS": "maybe", "IPCSocket": "yes", "Gone": "x"}))
    store = _store(tmp_path)
    assert (store.get("UseTLS"), store.get("IPCSocket")) == ("yes", "yes")


@pytest.mark.parametrize(
    "changes",
    [
        {"UseTLS": "no", "IPCSocket": "maybe"},
        {"UseTLS": "no", "NoSuchThing": "yes"},
        {"UseTLS": "no", "Status": "0 RUNNING"},
    ],
    ids=["invalid value", "unknown name", "Status"],
)
def test_update_is_all_or_nothing(tmp_path: Path, changes: dict[str, str]) -> None:
    """One refused pair means nothing of the update is applied, persisted or announced."""
    store = _store(tmp_path)
    heard: list[frozenset[str]] = []
    store.subscribe(heard.append)
    with pytest.raises(UpdateRefused) as refused:
        store.update(changes)
    assert len(refused.value.refused) == 1
    assert store.get("UseTLS") == "yes"
    assert heard == []
    assert not (tmp_path / "params.json").exists()


def test_observers_hear_exactly_what_changed(tmp_path: Path) -> None:
    """Observers are called once per applied update with the names whose value really changed."""
    store = _store(tmp_path)
    first: list[frozenset[str]] = []
    second: list[frozenset[str]] = []
    store.subscribe(first.append)
    store.subscribe(second.append)
    store.update({"UseTLS": "no", "IPCSocket": "no"})  # IPCSocket is already no
    store.update({"UseTLS": "no"})  # nothing changes: nobody is told
    store.update({"usetls": "yes", "TCPSocket": "no"})  # names match without regard to case
    assert first == second == [frozenset({"UseTLS"}), frozenset({"UseTLS", "TCPSocket"})]


def test_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the file cannot be written the update fails whole: old values stay, nobody is told."""
    store = _store(tmp_path)
    heard: list[frozenset[str]] = []
    store.subscribe(heard.append)

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store._files, "write", full_disk)
    with pytest.raises(OSError):
        store.update({"UseTLS": "no"})
    assert store.get("UseTLS") == "yes"
    assert heard == []
