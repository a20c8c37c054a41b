"""Why rootless containers get no cgroups, read off the host, said in one line at the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from acap_http.supervisor import cgroups


@pytest.mark.parametrize(
    ("systemd", "unified", "why"),
    [
        (False, False, "systemd is not PID 1 on this host"),
        (False, True, "systemd is not PID 1 on this host"),
        (True, False, "the host keeps its cgroup controllers on cgroup v1"),
        (True, True, "systemd, which cannot place the processes runc names from inside the namespace holder's"),
    ],
)
def test_the_reason_follows_the_host(tmp_path: Path, systemd: bool, unified: bool, why: str) -> None:
    """No systemd (these build machines), a cgroup v1 host, or a systemd host on cgroup v2 (Debian 12 and
    13 as installed): each has its own reason, and the line says what containers lack."""
    running, root = tmp_path / "run/systemd/system", tmp_path / "sys/fs/cgroup"
    root.mkdir(parents=True)
    if systemd:
        running.mkdir(parents=True)
    if unified:
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    reason = cgroups.why_rootless_has_none(running, root)
    assert why in reason
    line = cgroups.describe(reason)
    assert line.startswith(f"Rootless containers get no cgroups ({reason})")
    assert "docker top fails and --memory, --cpus and --pids-limit are accepted and not applied" in line
