"""The operator's ``localdata/daemon.json``: which directives it sets (ours to give as flags
only when it does not), whether containers live on across a dockerd restart, the file and
environment dockerd is started with, and the rules a new document must pass before it
replaces the stored one (``DaemonJson``: over HTTP, see ``handlers.daemon_json``).

The manual's "Proxy Setup" puts a ``"proxies"`` object in daemon.json. dockerd knows that
key from Docker 23 on; older ones (Debian 12's 20.10) refuse to start with it. For them
dockerd gets a copy of the file without the key, in its runtime directory, and the proxies
in its environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), which is where they read them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from acap_http.escape import printable
from acap_http.filestore import FileStore
from acap_http.supervisor import versions
from acap_http.supervisor.command import FLAG_DIRECTIVES

logger = logging.getLogger(__name__)

PROXIES = "proxies"
# daemon.json's names for the proxies, and the variables older dockerds read them from.
PROXY_VARIABLES = MappingProxyType({"http-proxy": "HTTP_PROXY", "https-proxy": "HTTPS_PROXY", "no-proxy": "NO_PROXY"})
DERIVED_NAME = "daemon.json"  # in dockerd's runtime directory, for dockerds before 23
# The directives the product gives dockerd as flags: dockerd would refuse them in the file too.
RESERVED = frozenset(FLAG_DIRECTIVES.values())
# What dockerd applies on SIGHUP, keeping its pid and its containers (moby's daemon/reload.go and
# reload_unix.go, the same in Docker 20.10 and 26: Reload's steps and reloadPlatform's keys).
# Any other change needs a restart.
RELOADABLE = frozenset(
    {
        "labels",
        "debug",  # reserved here anyway: DockerdLogLevel says it
        "max-concurrent-downloads",
        "max-concurrent-uploads",
        "max-download-attempts",
        "shutdown-timeout",
        "features",
        "allow-nondistributable-artifacts",
        "insecure-registries",
        "registry-mirrors",
        "live-restore",
        "network-diagnostic-port",
        "runtimes",
        "default-runtime",
        "default-shm-size",
        "default-ipc-mode",
    }
)
MAX_SIZE = 1024 * 1024
MAX_DEPTH = 32  # nesting of objects and arrays: dockerd's own options go three deep


class Refused(ValueError):
    """A document that may not replace the stored one; the message says why, in one line."""


def read(path: Path) -> dict[str, Any] | None:
    """The document when it is a JSON object, else None (missing, unreadable: dockerd will say)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def keys(path: Path) -> frozenset[str]:
    """The directives daemon.json sets (dockerd refuses one given both in the file and as a flag)."""
    return frozenset(read(path) or ())


def live_restore_on(path: Path) -> bool:
    """Whether dockerd keeps containers running when it stops: ours by default, the operator's say first."""
    document = read(path)
    return document is None or document.get("live-restore", True) is not False


@dataclass(frozen=True)
class Effective:
    """What dockerd is started with: its --config-file, and variables for its environment."""

    config_file: Path
    env: Mapping[str, str] = field(default_factory=dict)


def proxy_environment(proxies: object) -> dict[str, str] | None:
    """The environment that says what a ``"proxies"`` object says, or None when it is not one
    (not an object, an unknown name, a value not a string): dockerd is then left to refuse it."""
    if not isinstance(proxies, dict) or not all(
        name in PROXY_VARIABLES and isinstance(value, str) for name, value in proxies.items()
    ):
        return None
    return {PROXY_VARIABLES[name]: value for name, value in proxies.items()}


def effective(path: Path, runtime_dir: Path, dockerd_version: Callable[[], versions.Version]) -> Effective:
    """The operator's file as is, unless it has proxies this dockerd cannot read from it
    (``dockerd_version`` is asked only then)."""
    document = read(path)
    if document is None or PROXIES not in document:
        return Effective(path)
    version = dockerd_version()
    if _reads_proxies(version):
        return Effective(path)
    env = proxy_environment(document[PROXIES])
    if env is None:
        return Effective(path)
    rest = {key: value for key, value in document.items() if key != PROXIES}
    text = json.dumps(rest, indent=2) + "\n"
    FileStore(runtime_dir, directory_mode=0o700).write(DERIVED_NAME, text.encode(), 0o600)
    logger.info(
        "dockerd %s reads proxies from its environment, not daemon.json: giving it %s",
        versions.show(version),
        ", ".join(sorted(env)),
    )
    return Effective(runtime_dir / DERIVED_NAME, env)


def _reads_proxies(version: versions.Version) -> bool:
    # An unknown version is taken for a recent one: the file goes as the operator wrote it.
    return version == versions.UNKNOWN or version >= versions.PROXIES_IN_DAEMON_JSON


def parse(data: bytes) -> dict[str, Any]:
    """The document ``data`` holds, or Refused: not UTF-8, not a JSON object, a key twice, too
    deep or too large, or a directive that is the product's (given as a flag)."""
    if len(data) > MAX_SIZE:
        raise Refused(f"daemon.json is larger than {MAX_SIZE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Refused(f"daemon.json is not UTF-8 (byte {err.start})") from None
    if text.startswith("\ufeff"):
        raise Refused("daemon.json starts with a byte order mark, which dockerd cannot read")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as err:
        raise Refused(f"daemon.json sets {printable(str(err))!r} twice") from None
    except RecursionError:
        raise Refused(f"daemon.json nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:
        raise Refused(f"daemon.json is not JSON: {printable(str(err))}") from None
    if not isinstance(document, dict):
        raise Refused(f"daemon.json must hold a JSON object, not {type(document).__name__}")
    if _depth(document) > MAX_DEPTH:
        raise Refused(f"daemon.json nests deeper than {MAX_DEPTH} levels")
    reserved = sorted(RESERVED & set(document))
    if reserved:
        raise Refused(
            f"daemon.json may not set {', '.join(reserved)}: acap-http gives dockerd "
            f"{'this as a flag' if len(reserved) == 1 else 'these as flags'} (its settings say them)"
        )
    return document


def changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> frozenset[str]:
    """The directives whose value differs (set, changed or removed)."""
    old = old or {}
    return frozenset(key for key in set(old) | set(new) if old.get(key, _ABSENT) != new.get(key, _ABSENT))


def reloadable(changed: frozenset[str]) -> bool:
    """Whether dockerd can take these changes on SIGHUP (an empty change needs nothing at all)."""
    return changed <= RELOADABLE


_ABSENT = object()


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def _depth(value: object) -> int:
    """How deep objects and arrays nest (1: a flat object); counted without recursion, and no further
    than one past the bound (json reads up to about a thousand levels)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                pending += [(child, level + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


NAME = "daemon.json"
PREVIOUS = "daemon.json.previous"
EMPTY = b"{}\n"


@dataclass(frozen=True)
class Replaced:
    """What a replacement changed: nothing (the same bytes), or these directives."""

    written: bool
    changed: frozenset[str] = frozenset()


class NoPrevious(LookupError):
    """There is no daemon.json.previous to revert to."""


class DaemonJson:
    """The stored document and the one it replaced (``daemon.json.previous``), written as one set
    (crash-safe), mode 0600. ``judge`` says why dockerd would refuse a document (``dockerd_check``)."""

    def __init__(self, localdata: Path, judge: Callable[[bytes], str | None]) -> None:
        self.files = FileStore(localdata)
        self._judge = judge

    def read(self) -> bytes:
        """The stored document as it is, even one dockerd refuses (the operator fixes it from here)."""
        return self.files.read_if_present(NAME) or EMPTY

    def replace(self, data: bytes) -> Replaced:
        """Store ``data`` if it passes every rule and dockerd's own check; Refused otherwise, and
        nothing stored. The same bytes as stored: nothing written."""
        document = parse(data)
        current = self.files.read_if_present(NAME)
        if current == data:
            return Replaced(written=False)
        refusal = self._judge(data)
        if refusal is not None:
            raise Refused(f"dockerd refuses it: {refusal}")
        self.files.write_many({NAME: (data, 0o600), PREVIOUS: (current or EMPTY, 0o600)})
        try:
            before = parse(current or EMPTY)
        except Refused:
            before = None  # a document edited by hand that dockerd refused: everything changes
        changed = changed_keys(before, document) if before is not None else frozenset(document) | {"(all)"}
        logger.info("Stored daemon.json (%d bytes); changed: %s", len(data), ", ".join(sorted(changed)) or "nothing")
        return Replaced(written=True, changed=changed)

    def revert(self) -> Replaced:
        """Put the previous document back (it becomes the current one, and the current the previous)."""
        previous = self.files.read_if_present(PREVIOUS)
        if previous is None:
            raise NoPrevious("there is no daemon.json.previous to revert to")
        return self.replace(previous)
