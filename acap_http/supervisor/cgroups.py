"""Why rootless containers get no cgroups here, said once at the start: what ``docker top``,
``--memory``, ``--cpus`` and ``--pids-limit`` need.

Rootless dockerd has cgroups only through the systemd driver (with cgroupfs it runs its
"none" driver): runc asks the systemd user manager of dockerd's user, over its D-Bus
session bus, for a scope per container and names the container's process by its pid. The
product runs dockerd inside the namespace holder's PID namespace, so that nothing dockerd
starts outlives the application; a pid named from in there means another process to
systemd, which refuses it. Tried on Debian 13 with a lingering user manager: ``docker info``
said ``Cgroup Driver: systemd``, and every container failed with ``unable to start unit
"runc-….scope" …: Permission denied``. So rootless dockerd keeps cgroupfs on every host, and
says at its start why its containers have no cgroups. Rootful dockerd uses cgroupfs and has them.
"""

from __future__ import annotations

from pathlib import Path

SYSTEMD_RUNNING = Path("/run/systemd/system")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def why_rootless_has_none(systemd: Path = SYSTEMD_RUNNING, root: Path = CGROUP_ROOT) -> str:
    """Why rootless containers get no cgroups on this host."""
    if not systemd.is_dir():
        return "systemd is not PID 1 on this host, and rootless dockerd has cgroups only through systemd"
    if not (root / "cgroup.controllers").is_file():
        return "the host keeps its cgroup controllers on cgroup v1, and rootless cgroups need cgroup v2"
    return (
        "rootless dockerd has cgroups only through systemd, which cannot place the processes runc names "
        "from inside the namespace holder's PID namespace"
    )


def describe(why: str) -> str:
    """The line the application logs at its start, rootless."""
    return (
        f"Rootless containers get no cgroups ({why}): they run, but docker top fails and --memory, --cpus and "
        "--pids-limit are accepted and not applied; run rootful (--rootful) where limits matter"
    )
