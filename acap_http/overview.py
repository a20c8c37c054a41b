"""What the settings page shows and ``GET /local/<app>/state`` answers, as one JSON object: the
application, Status in words and since when, the settings with the control each type wants, the
TLS files' summary (never key material), dockerd as it runs, the last restart asked for, and the
last lines of the application's log. Any user may read it (viewer level): nothing in it is a
secret, and nothing of daemon.json (which may hold a proxy's password) is in it."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acap_http.manifest import Access, Manifest
from acap_http.params import ParamStore
from acap_http.paramtypes import Choice, Integer, ParamSpec
from acap_http.status import Status
from acap_http.tls.store import TlsStore

EXPIRY_WARNING_DAYS = 30  # a certificate that expires sooner is pointed out


@dataclass(frozen=True)
class Event:
    """Something that happened at a time: a Status set, a restart asked for."""

    what: str
    at: float  # time.time()

    def shown(self) -> dict[str, str]:
        return {"what": self.what, "at": _iso(self.at)}


@dataclass(frozen=True)
class Sources:
    """Where each part comes from (the application's parts, or fakes in the unit tests)."""

    manifest: Manifest
    params: ParamStore
    tls: TlsStore
    running: Callable[[], bool]
    status_since: Callable[[], float]
    last_restart: Callable[[], Event | None]
    dockerd: Callable[[], dict[str, object]]
    log: Callable[[], list[str]]


class Overview:
    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def state(self, user: str | None, level: Access | None) -> dict[str, Any]:
        """Everything the page shows, as ``user`` (None: anonymous) at ``level`` (None: the front
        did not say, as the camera's own web server does not: the page then offers every control,
        and the application refuses what the user may not do)."""
        src = self._sources
        manifest = src.manifest
        last_restart = src.last_restart()
        return {
            "application": {
                "name": manifest.app_name,
                "friendly_name": manifest.friendly_name,
                "version": manifest.version,
                "running": src.running(),
            },
            "user": {
                "name": user,
                "level": level.word if level is not None else None,
                "may_change": level is None or level >= Access.ADMIN,
            },
            "status": status(src.params.get("Status"), src.status_since()),
            "settings": [
                setting(spec, src.params.get(spec.name)) for spec in src.params.specs.values() if not spec.hidden
            ],
            "tls": tls(src.tls.summary()),
            "dockerd": src.dockerd(),
            "last_restart": last_restart.shown() if last_restart is not None else None,
            "log": src.log(),
        }


def status(value: str, since: float) -> dict[str, object]:
    """A Status value with its meaning and fix in words (none for a value not of this program)."""
    known = next((entry for entry in Status if entry.value == value), None)
    code, _, name = value.partition(" ")
    return {
        "value": value,
        "code": known.code if known is not None else code,
        "name": name,
        "meaning": known.meaning if known is not None else "",
        "fix": known.fix if known is not None else "",
        "since": _iso(since),
    }


def setting(spec: ParamSpec, value: str) -> dict[str, object]:
    """One parameter and the control a form shows it with: a switch for bool, a select for enum, a
    number or text field, or read-only."""
    entry: dict[str, object] = {"name": spec.name, "value": value, "default": spec.default}
    kind = spec.type
    if spec.readonly:
        entry["control"] = "readonly"
    elif isinstance(kind, Choice) and kind.boolean:
        entry["control"] = "switch"
        entry["off"], entry["on"] = kind.values
    elif isinstance(kind, Choice):
        entry["control"] = "select"
        entry["choices"] = [{"value": v, "label": label} for v, label in zip(kind.values, kind.labels, strict=True)]
    elif isinstance(kind, Integer):
        entry |= {"control": "number", "min": kind.minimum, "max": kind.maximum}
    else:
        entry |= {"control": "text", "maxlength": kind.maxlen}
    return entry


def tls(summary: dict[str, object]) -> dict[str, object]:
    """The TLS store's summary, and the certificates that expire within ``EXPIRY_WARNING_DAYS``."""
    expiring = []
    for name, entry in summary.items():
        if not isinstance(entry, dict):
            continue
        for certificate in entry.get("certificates", []):
            if certificate["days_left"] < EXPIRY_WARNING_DAYS:
                expiring.append(
                    {"file": name, "subject": certificate["subject"], "days_left": certificate["days_left"]}
                )
    return {**summary, "expiring": expiring}


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
