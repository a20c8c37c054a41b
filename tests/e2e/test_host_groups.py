"""Host groups inside rootless containers, with the real rootlesskit, dockerd and docker CLI: the
manifest's sdk and storage are gids 1 and 2, a --group is 3; a file of group storage and a device
node of the --group's group are reached with --group-add and refused without."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.running import IMAGE, Mode, running_mode

DEVICE_GROUP = "acap-test-devices"


@pytest.fixture(scope="module")
def mode(e2e_root: Path) -> Iterator[Mode]:
    yield from running_mode(
        e2e_root / "host-groups", "rootless", ("sh", "cat", "echo", "id"), ("--group", DEVICE_GROUP)
    )


def _run(mode: Mode, *args: str) -> subprocess.CompletedProcess[str]:
    return mode.docker("run", "--rm", "--network", "none", *args)


def test_the_mapping_is_logged_and_shown(mode: Mode) -> None:
    assert f"host groups inside containers: sdk -> 1, storage -> 2, {DEVICE_GROUP} -> 3" in mode.front.log()
    info = json.loads(mode.front.curl(path="/local/dockerdwrapper/info", user="viewer").body)
    assert [(group["name"], group["container_gid"]) for group in info["groups"]] == [
        ("sdk", 1), ("storage", 2), (DEVICE_GROUP, 3)]  # fmt: skip
    assert all(group["host_gid"] == grp.getgrnam(group["name"]).gr_gid for group in info["groups"])
    assert "acap-dockerdwrapper" in grp.getgrnam("storage").gr_mem


def test_a_file_of_group_storage_is_read_with_group_add_2(mode: Mode) -> None:
    shared = mode.root / "shared"
    shared.mkdir(mode=0o755)
    secret = shared / "secret"
    secret.write_text("for storage only\n")
    os.chown(secret, 0, grp.getgrnam("storage").gr_gid)
    secret.chmod(0o640)
    mount = f"{shared}:/data:ro"
    refused = _run(mode, "-v", mount, IMAGE, "cat", "/data/secret")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    allowed = _run(mode, "-v", mount, "--group-add", "2", IMAGE, "cat", "/data/secret")
    assert (allowed.returncode, allowed.stdout) == (0, "for storage only\n"), allowed.stderr


def test_a_device_of_a_group_given_with_group_is_opened_with_its_gid(mode: Mode) -> None:
    """A character device node (the null device, made with mknod), mode 0660, of the --group's group:
    written to with --group-add 3, refused without. Rootless runc bind-mounts a device from the same
    path on the host as in the container (it cannot make nodes), so the node lives in the host's /dev."""
    node = Path("/dev/acap-http-test-null")
    node.unlink(missing_ok=True)
    os.mknod(node, 0o660 | stat.S_IFCHR, os.makedev(1, 3))
    try:
        os.chown(node, 0, grp.getgrnam(DEVICE_GROUP).gr_gid)
        node.chmod(0o660)
        refused = _run(mode, "--device", str(node), IMAGE, "sh", "-c", f"echo x > {node}")
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
        allowed = _run(mode, "--device", str(node), "--group-add", "3", IMAGE, "sh", "-c", f"echo x > {node} && id -G")
        assert allowed.returncode == 0, allowed.stderr
        assert "3" in allowed.stdout.split()
    finally:
        node.unlink(missing_ok=True)
