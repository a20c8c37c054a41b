"""Fixtures of the end-to-end tests: running ``acap-http up`` instances.

Started as root, up runs the app rootless as an unprivileged user, which must
reach the app directory: it lives under a directory others may enter.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.front import NO_DOCKERD, Front, processes_mentioning


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    """Where the instances keep their app directories and logs; removed after the run, unless
    ACAP_HTTP_KEEP_E2E names a directory to keep them in (to read a failure's logs afterwards)."""
    kept = os.environ.get("ACAP_HTTP_KEEP_E2E")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="acap-http-e2e-", dir=kept or None))
    root.chmod(0o755)
    yield root
    if not kept:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_front(e2e_root: Path) -> Iterator[Callable[..., Front]]:
    """Fronts a test starts itself (without dockerd unless it says otherwise); none outlives the test."""
    base = Path(tempfile.mkdtemp(dir=e2e_root))
    base.chmod(0o755)
    made: list[Front] = []

    def make(**kwargs: Any) -> Front:
        kwargs.setdefault("settings", NO_DOCKERD)
        made.append(Front(app_dir=base / "app", log_path=base / "up.log", **kwargs))
        return made[-1]

    yield make
    for leftover in made:
        if leftover.process is not None and leftover.process.poll() is None:
            leftover.stop()


@pytest.fixture(scope="session")
def front(e2e_root: Path) -> Iterator[Front]:
    """One up for the tests of the endpoints, with both sockets off so that no dockerd runs."""
    base = e2e_root / "front"
    base.mkdir(mode=0o755)
    running = Front(app_dir=base / "app", log_path=base / "up.log", settings=NO_DOCKERD)
    running.start()
    runtime_dir = running.runtime_dir()
    yield running
    assert running.stop() == 0, running.log()
    assert not runtime_dir.exists()
    assert processes_mentioning(str(runtime_dir)) == []
    assert processes_mentioning(str(running.app_dir)) == []
