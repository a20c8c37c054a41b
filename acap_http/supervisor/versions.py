"""The versions of the programs that run dockerd, asked of the programs themselves, once.

Debian 12 ships Docker 20.10 with containerd 1.6 and rootlesskit 1.x; Debian 13 ships
Docker 26 with containerd 1.7 and rootlesskit 2.x. Where the generations behave
differently (daemon.json's "proxies", containerd dropping shims it cannot see the
processes of), the supervisor asks here; each answer costs one run of the program,
the first time it is needed.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess

from acap_http.supervisor.command import SBIN_DIRS

logger = logging.getLogger(__name__)

Version = tuple[int, ...]
UNKNOWN: Version = ()

# daemon.json's "proxies" object arrived in Docker 23.0; before it, dockerd reads the
# proxies from HTTP_PROXY, HTTPS_PROXY and NO_PROXY in its environment.
PROXIES_IN_DAEMON_JSON: Version = (23,)
# containerd 1.7, when it starts again, deletes the shims whose processes it cannot list
# (runc lists them through the container's cgroup): rootless containers without cgroups are
# then reported exited while they run on. containerd 1.6 keeps them.
DROPS_SHIMS_WITHOUT_PIDS: Version = (1, 7)


def parse(text: str) -> Version:
    """The first dotted number in ``text`` (``Docker version 26.1.5+dfsg1, build …`` → (26, 1, 5))."""
    found = re.search(r"(?<![\w.])v?(\d+(?:\.\d+)+)", text)
    return tuple(int(part) for part in found.group(1).split(".")) if found else UNKNOWN


@functools.cache
def of(program: str, path: str) -> Version:
    """``program --version``, parsed; UNKNOWN when it cannot be run or read."""
    search = ":".join([*path.split(":"), *SBIN_DIRS]) if path else ":".join(SBIN_DIRS)
    try:
        done = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=10, check=False,
            env={"PATH": search},
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        logger.warning("Cannot ask %s its version: %s", program, err)
        return UNKNOWN
    version = parse(done.stdout or done.stderr)
    logger.debug("%s version %s", program, ".".join(map(str, version)) or "unknown")
    return version


def show(version: Version) -> str:
    return ".".join(map(str, version)) or "unknown"
