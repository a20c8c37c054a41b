"""A front's children run on the supervisor's process wrapper: they stay in the front's process
group, write to their log, end with a reason the front can wait for, and are stopped with grace
(SIGTERM, then SIGKILL); waiting until one is ready reads an injected clock."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from acap_http.errors import SetupError
from acap_http.servers.children import Child, file_says
from acap_http.servers.lifecycle import Stop


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += 1


def _shell(script: str, **kwargs: Any) -> Child:
    return Child("sh", ["sh", "-c", script], **kwargs)


def test_a_child_never_ready_is_stopped_when_the_time_is_up() -> None:
    time = FakeTime()
    child = _shell("sleep 30", clock=time.clock, sleep=time.sleep)
    with pytest.raises(SetupError, match="sh was not listening in 5 s"):
        child.start(lambda: False, timeout=5, what="listening")
    assert 90 <= time.slept <= 110  # 5 s of 0.05 s polls, on the fake clock: no real wait
    assert child.process.exit is not None and child.process.exit.signal == signal.SIGTERM


def test_a_child_that_ends_before_it_is_ready_is_an_error_naming_how() -> None:
    with pytest.raises(SetupError, match=r"sh exited with code 3; its messages are above"):
        _shell("exit 3").start(lambda: False, timeout=30)


def test_the_end_is_posted_to_whoever_watches_even_after_it() -> None:
    child = _shell("exit 4")
    child.spawn()
    early = Stop(lambda signum, handler: None)
    child.watch(early.post)
    assert early.wait() == "sh exited with code 4"
    late = Stop(lambda signum, handler: None)
    child.watch(late.post)
    assert late.wait() == "sh exited with code 4"


def test_it_stays_in_our_process_group_and_writes_to_its_log(tmp_path: Path) -> None:
    """Ctrl-C at the front's terminal reaches it; its output and errors are appended to the log."""
    log = tmp_path / "child.log"
    log.write_text("before\n")
    child = _shell('echo "group $(ps -o pgid= $$)"; echo oops >&2; exec sleep 30', log=log)
    child.start(file_says(log, "oops", offset=len("before\n")))
    assert os.getpgid(child.process.pid) == os.getpgrp()
    lines = log.read_text().splitlines()
    assert lines[0] == "before" and lines[1].split() == ["group", str(os.getpgrp())] and lines[2] == "oops"
    child.stop(5)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    child = _shell("trap '' TERM; echo ready; while :; do sleep 0.05; done", log=log)
    child.start(file_says(log, "ready"))
    how = child.stop(0.3)
    assert how is not None and how.signal == signal.SIGKILL
    assert child.stop() == how  # stopping again says the same, sends nothing


def test_the_environment_is_ours_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACAP_TEST_MARK", "inherited")
    log = tmp_path / "env.log"
    for env, expected in ((None, "inherited"), ({"ACAP_TEST_MARK": "given"}, "given")):
        child = _shell('echo "$ACAP_TEST_MARK"', env=env, log=log)
        child.spawn()
        child.process.wait(10)
        assert log.read_text().splitlines()[-1] == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_it_runs_as_the_user_given_without_our_groups(tmp_path: Path) -> None:
    log = tmp_path / "id.log"
    child = Child("id", [sys.executable, "-c", "import os; print(os.getuid(), os.getgid(), os.getgroups())"],
                  user=(65534, 65534), log=log)  # fmt: skip
    child.spawn()
    child.process.wait(10)
    assert log.read_text().split(None, 2) == ["65534", "65534", "[]\n"]
