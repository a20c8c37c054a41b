"""One ``acap-http up`` shared by the end-to-end tests of a session."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.front import Front, processes_mentioning


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _real_tools() -> None:
    missing = [tool for tool in ("curl", "apache2") if not shutil.which(tool, path="/usr/bin:/usr/sbin:/bin:/sbin")]
    if missing:
        pytest.fail(f"end-to-end tests need {', '.join(missing)}: run them through 'make test', which installs them")


@pytest.fixture
def make_front(tmp_path: Path) -> Iterator[Callable[..., Front]]:
    """Fronts a test starts itself; whatever the test's outcome, none outlives it."""
    made: list[Front] = []

    def make(**kwargs: Any) -> Front:
        made.append(Front(app_dir=tmp_path / "app", log_path=tmp_path / "up.log", **kwargs))
        return made[-1]

    yield make
    for leftover in made:
        if leftover.process is not None and leftover.process.poll() is None:
            leftover.stop()


@pytest.fixture(scope="session")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    base = tmp_path_factory.mktemp("front")
    running = Front(app_dir=base / "app", log_path=base / "up.log")
    running.start()
    runtime_dir = running.runtime_dir()
    yield running
    assert running.stop() == 0, running.log()
    assert not runtime_dir.exists()
    assert processes_mentioning(str(runtime_dir)) == []
    assert processes_mentioning(str(running.app_dir)) == []
