"""The operator's ``localdata/daemon.json``, as the supervisor reads it: which directives it
sets (ours to give as flags only when it does not), whether containers live on across a
dockerd restart, and the file and environment dockerd is started with.

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

from acap_http.filestore import FileStore
from acap_http.supervisor import versions

logger = logging.getLogger(__name__)

PROXIES = "proxies"
# daemon.json's names for the proxies, and the variables older dockerds read them from.
PROXY_VARIABLES = MappingProxyType({"http-proxy": "HTTP_PROXY", "https-proxy": "HTTPS_PROXY", "no-proxy": "NO_PROXY"})
DERIVED_NAME = "daemon.json"  # in dockerd's runtime directory, for dockerds before 23


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
