"""What every test shares: the hypothesis profiles, and a check at the start of the session
that the machine has what the collected tests need, so that nothing is skipped in silence
and nothing fails obscurely half way.

The tests run in a random order (``tests/order.py``, loaded below), its seed in the header:
``--seed N`` repeats an order, ``--seed none`` keeps the written one.

``ci`` (the default, inside ``make test``) keeps the property tests to a few seconds each;
``make fuzz`` runs them again and again with new seeds and more examples
(``HYPOTHESIS_PROFILE=fuzz``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.order"]

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "fuzz", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The programs the end-to-end tests run, as 'make test' installs them (tools/setup-host).
E2E_TOOLS = (
    "curl", "apache2", "dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker", "docker-init",
    "rootlesskit", "slirp4netns", "newuidmap", "nsenter", "unshare", "setpriv", "setfacl", "busybox", "openssl",
    "losetup", "mkfs.ext4", "mkfs.vfat", "mkfs.exfat", "fusefat", "mount.exfat-fuse", "chromium", "chromedriver",
    "promtool",
)  # fmt: skip
# dockerd's API ports, which the end-to-end tests' dockerd takes, and make run's front.
PORTS = (2375, 2376, 8080)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop before the first test, in one line, when the machine lacks what the collected tests need."""
    if not session.items:
        return
    problems = []
    if os.geteuid() != 0:
        problems.append("root (the tests create users, change owners and run dockerd both ways)")
    if any(item.get_closest_marker("e2e") for item in session.items):
        missing = [tool for tool in E2E_TOOLS if shutil.which(tool, path=SBIN) is None]
        if missing:
            problems.append(f"the programs {', '.join(missing)}")
        loop = subprocess.run(["losetup", "--find"], capture_output=True, text=True, check=False)
        if loop.returncode != 0:
            problems.append(f"a free loop device for the SD card tests ({loop.stderr.strip() or 'losetup failed'})")
        taken = [str(port) for port in PORTS if _taken(port)]
        if taken:
            problems.append(f"the ports {', '.join(taken)} free on 127.0.0.1 (stop the dockerd or make run using them)")
    if problems:
        pytest.exit(f"make test needs {'; '.join(problems)}. Run it as root through 'make test', which installs "
                    "the programs (tools/setup-host).", returncode=2)  # fmt: skip


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False
