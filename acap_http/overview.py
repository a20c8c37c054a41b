"""What the settings page shows and ``GET /local/<app>/state`` answers, as one JSON object: the
application, Status in words and since when, the settings with the control each type wants, the
TLS files' summary (never key material), dockerd as it runs, the last restart asked for, and the
last lines of the application's log (to admins only). Any user may read the rest (viewer level):
nothing in it is a secret, and nothing of daemon.json (which may hold a proxy's password) is in it."""

from __future__ import annotations

import datetime
import hashlib
import logging
import pwd
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acap_http.escape import printable
from acap_http.manifest import Access, Manifest
from acap_http.params import ParamStore
from acap_http.paramtypes import Choice, Integer, ParamSpec
from acap_http.status import Status
from acap_http.supervisor import docker_api, versions
from acap_http.supervisor.command import Host
from acap_http.tls.store import TlsStore

logger = logging.getLogger(__name__)

EXPIRY_WARNING_DAYS = 30  # a certificate that expires sooner is pointed out
SUMMARY_KEPT = 60  # seconds a summary of unchanged files is shown again (its days left stay right)


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
        # The summary made again when the files change, or a minute on (its days left).
        self._tls = Kept(lambda: tls(sources.tls.summary()), SUMMARY_KEPT, lambda: _digest(sources.tls.read()))

    def tls_summary(self) -> dict[str, object]:
        """The TLS store's summary, kept while the files and the minute are the same (the metrics')."""
        return self._tls()

    def state(self, user: str | None, level: Access | None) -> dict[str, Any]:
        """Everything the page shows, as ``user`` (None: anonymous) at ``level`` (None: the front
        did not say, as the camera's own web server does not: the page then offers every control,
        and the application refuses what the user may not do). The log's lines go to admins only:
        they name users who failed to log in, and what they typed as a name may be a password."""
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
            "tls": _or_error("the TLS files", self._tls),
            "dockerd": _or_error("dockerd", src.dockerd),
            "last_restart": last_restart.shown() if last_restart is not None else None,
            "log": src.log() if level is Access.ADMIN else None,
        }


def status(value: str, since: float) -> dict[str, object]:
    """A Status value with its meaning and fix in words (none for a value not of this program)."""
    try:
        known: Status | None = Status(value)
    except ValueError:
        known = None
    code, _, name = value.partition(" ")
    return {
        "value": value,
        "code": known.code if known is not None else (int(code) if code.lstrip("-").isdigit() else None),
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


class Kept:
    """``fetch``'s answer, fetched again once it is ``seconds`` old or ``key`` has changed (Status: a
    page that shows 0 RUNNING shows the dockerd that answers), by one caller at a time: the others
    meanwhile get the last one (every open page polls; dockerd is asked once for all)."""

    def __init__(
        self, fetch: Callable[[], dict[str, object]], seconds: float, key: Callable[[], object] = lambda: None
    ) -> None:
        self._fetch, self._seconds, self._key = fetch, seconds, key
        self._lock = threading.Lock()
        self._last: tuple[float, object, dict[str, object]] | None = None

    def _kept(self, key: object) -> dict[str, object] | None:
        """The last answer while it is fresh for ``key``."""
        last = self._last
        if last is not None and time.monotonic() - last[0] < self._seconds and last[1] == key:
            return last[2]
        return None

    def __call__(self) -> dict[str, object]:
        last, key = self._last, self._key()
        if (kept := self._kept(key)) is not None:
            return kept
        if not self._lock.acquire(blocking=last is None or last[1] != key):
            return last[2] if last is not None else {}
        try:
            if (kept := self._kept(key)) is not None:  # fetched by the caller this one waited for
                return kept
            fetched = self._fetch()
            self._last = (time.monotonic(), key, fetched)
            return fetched
        finally:
            self._lock.release()


def dockerd_runs(host: Host) -> dict[str, str]:
    """How dockerd runs here: its mode, its user, its program's version (``GET …/info`` says it too)."""
    try:
        user = pwd.getpwuid(host.uid).pw_name
    except KeyError:
        user = str(host.uid)
    mode = "rootless" if host.rootless else "rootful"
    return {"mode": mode, "user": user, "version": versions.show(versions.of("dockerd", host.path))}


def dockerd_facts(host: Host, argv: list[str] | None) -> dict[str, object]:
    """How dockerd runs, and, while one runs (``argv``) and answers, its own account of itself."""
    answer = docker_api.info(host.control_socket) if argv is not None else None
    return {
        **dockerd_runs(host),
        **({"version": answer.get("ServerVersion")} if answer else {}),
        "answers": answer is not None,
        "containers_running": answer.get("ContainersRunning") if answer else None,
        "containers": answer.get("Containers") if answer else None,
        "images": answer.get("Images") if answer else None,
        "data_root": answer.get("DockerRootDir") if answer else None,
        "command": argv,
    }


def _digest(files: dict[str, bytes | None]) -> bytes:
    return hashlib.sha256(repr(sorted(files.items())).encode()).digest()


def _or_error(what: str, part: Callable[[], dict[str, object]]) -> dict[str, object]:
    """One part of the state, or what kept it from being read: a part that fails takes neither the
    others nor the page (where the application is started again) with it."""
    try:
        return part()
    except Exception as err:
        logger.exception("The settings page could not read %s", what)
        return {"error": f"{what} could not be read: {printable(str(err))}"}


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
