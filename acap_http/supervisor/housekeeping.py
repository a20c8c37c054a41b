"""What dockerd needs on the host before a start, and what it may leave behind after."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from acap_http import mounts
from acap_http.supervisor.command import Host

logger = logging.getLogger(__name__)


def release_mounts(host: Host, data_root: Path | None) -> None:
    """A root dockerd that did not stop cleanly leaves its data-root and overlay mounts behind."""
    if host.rootless or data_root is None:
        return  # rootless mounts live in rootlesskit's mount namespace and went with it
    for mount_point in left_mounts(data_root):
        logger.warning("dockerd left %s mounted; unmounting it", mount_point)
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def left_mounts(data_root: Path) -> list[Path]:
    """Mount points at or under ``data_root``, deepest first."""
    found = {m.mount_point for m in mounts.read() if m.mount_point == data_root or data_root in m.mount_point.parents}
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def prepare(host: Host, data_root: Path) -> None:
    """What dockerd expects before it starts: its runtime directory, a daemon.json, no stale pid files."""
    host.localdata.mkdir(parents=True, exist_ok=True)
    host.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(host.runtime_dir, 0o700)
    if not host.daemon_json.exists():
        fd = os.open(host.daemon_json, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as daemon_json:
            json.dump({}, daemon_json)
    # dockerd refuses to start while its pid file names a live process. The pid in it is one of
    # the holder's PID namespace, meaningless here and reused by the next holder; and the
    # supervisor starts dockerd only when none of its own runs: whatever the file says is stale.
    host.pid_file.unlink(missing_ok=True)
    data_root.mkdir(parents=True, exist_ok=True)
