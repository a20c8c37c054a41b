"""Who the application is, read from the one place that says so: the manifest's
``appName`` and ``version`` (``acap_http/manifest.json`` is the checkout's
``manifest/manifest.json``, shipped in the package). setup.cfg reads the version
from here too. Light on purpose: every command imports it."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "manifest.json"


def _setup() -> dict[str, str]:
    setup: dict[str, str] = json.loads(MANIFEST.read_text(encoding="utf-8"))["acapPackageConf"]["setup"]
    return setup


NAME: str = _setup()["appName"]  # dockerdwrapper: the camera's directories, the URL prefix, the syslog ident
VERSION: str = _setup()["version"]
FRIENDLY_NAME: str = _setup()["friendlyName"]
