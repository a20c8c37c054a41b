"""The manifest is read whole and checked: what it declares is what is served."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from acap_http import config, manifest
from acap_http.errors import ManifestError
from acap_http.manifest import Access

MANIFEST = config.CHECKOUT_DIR / "manifest" / "manifest.json"


def test_shipped_manifest_declares_endpoints_and_parameters() -> None:
    """The shipped manifest names the app, its admin endpoints (TLS files, the set, daemon.json), its parameters."""
    loaded = manifest.load(MANIFEST)
    assert loaded.app_name == "dockerdwrapper"
    assert [(e.name, e.type, e.access) for e in loaded.endpoints] == [
        ("ca.pem", "fastCgi", Access.ADMIN),
        ("server-cert.pem", "fastCgi", Access.ADMIN),
        ("server-key.pem", "fastCgi", Access.ADMIN),
        ("tls", "fastCgi", Access.ADMIN),
        ("daemon.json", "fastCgi", Access.ADMIN),
        ("info", "fastCgi", Access.VIEWER),
        ("metrics", "fastCgi", Access.VIEWER),
        ("index.html", "fastCgi", Access.VIEWER),
        ("state", "fastCgi", Access.VIEWER),
        ("page.css", "fastCgi", Access.VIEWER),
        ("page.js", "fastCgi", Access.VIEWER),
        ("icon.svg", "fastCgi", Access.VIEWER),
    ]
    assert loaded.setting_page == "index.html"
    assert [(p.name, p.default) for p in loaded.params] == [
        ("SDCardSupport", "no"),
        ("UseTLS", "yes"),
        ("TCPSocket", "yes"),
        ("IPCSocket", "no"),
        ("ApplicationLogLevel", "info"),
        ("DockerdLogLevel", "warn"),
        ("Status", "-1 NOT STARTED"),
    ]
    assert loaded.endpoint_path(loaded.endpoints[0]) == "/local/dockerdwrapper/ca.pem"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(MANIFEST.read_text())
    return copy.deepcopy(document)


def _http(document: dict[str, Any]) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = document["acapPackageConf"]["configuration"]["httpConfig"]
    return entries


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: d["acapPackageConf"].pop("setup"), "missing 'setup'"),
        (lambda d: _http(d)[0].update(access="root"), "unknown access level 'root'"),
        (lambda d: _http(d).append(dict(_http(d)[0])), "declares ca.pem more than once"),
        (lambda d: _http(d)[0].update(name="../x"), "not a plain file name"),
        (lambda d: d["acapPackageConf"]["setup"].update(appName=7), "'appName' must be a str"),
    ],
    ids=["no setup", "unknown access", "duplicate endpoint", "path as name", "wrong type"],
)
def test_defects_are_named(tmp_path: Path, spoil: Any, message: str) -> None:
    """A defective manifest is refused with the file and the defect named."""
    document = _document()
    spoil(document)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=message) as refused:
        manifest.load(path)
    assert str(path) in str(refused.value)


def test_unreadable_manifest(tmp_path: Path) -> None:
    """A missing or non-JSON manifest is a ManifestError, not a traceback."""
    with pytest.raises(ManifestError, match="cannot read"):
        manifest.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ManifestError, match=r"bad\.json"):
        manifest.load(tmp_path / "bad.json")
