"""Holding the containers' output at the shims (``supervisor.output``), with a real process
standing in for a shim: it holds a FIFO open for writing, as a shim holds the one dockerd reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from acap_http.supervisor import output


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def shim(tmp_path: Path) -> Iterator[tuple[psutil.Process, Path]]:
    """A process whose stdout is a named FIFO (read end kept open here, as dockerd keeps it)."""
    fifo = tmp_path / "init-stdout"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    with open(fifo, "wb") as writer:
        process = subprocess.Popen(["sleep", "60"], stdout=writer)
    try:
        yield psutil.Process(process.pid), fifo
    finally:
        process.kill()
        process.wait()
        os.close(reader)


def _hold(shim: psutil.Process, clock: Clock, data_root: Path | None = None) -> output.OutputHold:
    return output.OutputHold(1, data_root, clock=clock, sleep=clock.sleep, find_shims=lambda holder: [shim])


def test_the_shims_are_stopped_until_released(shim: tuple[psutil.Process, Path]) -> None:
    process, _ = shim
    clock = Clock()
    hold = _hold(process, clock)
    assert hold.hold() is True
    assert output.SETTLED <= clock.now < output.SETTLED + 0.05  # nothing was waiting: done once settled
    _becomes(process, stopped=True)  # a signal is taken when the process next runs
    hold.release()
    _becomes(process, stopped=False)


def _becomes(process: psutil.Process, *, stopped: bool) -> None:
    deadline = time.monotonic() + 10
    while (process.status() == psutil.STATUS_STOPPED) != stopped:
        assert time.monotonic() < deadline, process.status()
        time.sleep(0.01)


def test_output_waiting_in_a_fifo_is_waited_for_up_to_the_limit(shim: tuple[psutil.Process, Path]) -> None:
    """Bytes dockerd has not read yet: not settled; at the limit the hold says so (dockerd stops anyway)."""
    process, fifo = shim
    with open(fifo, "wb", buffering=0) as more:
        more.write(b"a line dockerd has not read\n")
        clock = Clock()
        hold = _hold(process, clock)
        assert hold.hold() is False
        assert clock.now >= output.LIMIT
        hold.release()


def test_a_log_still_growing_is_waited_for(shim: tuple[psutil.Process, Path], tmp_path: Path) -> None:
    """dockerd still writing a container's log: the hold ends only when the log has been still a while."""
    process, _ = shim
    log = tmp_path / "data" / "containers" / "abc" / "abc-json.log"
    log.parent.mkdir(parents=True)
    log.write_text("")
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now < 0.1:
            with log.open("a") as growing:
                growing.write("x")

    hold = output.OutputHold(1, tmp_path / "data", clock=clock, sleep=sleep, find_shims=lambda holder: [process])
    assert hold.hold() is True
    assert 0.1 + output.SETTLED <= clock.now < 0.1 + output.SETTLED + 0.05
    hold.release()


def test_released_first_nothing_is_stopped(shim: tuple[psutil.Process, Path]) -> None:
    """dockerd went before the hold began: the hold stops nothing, so nothing stays stopped."""
    process, _ = shim
    hold = _hold(process, Clock())
    hold.release()
    assert hold.hold() is True
    time.sleep(0.05)  # a SIGSTOP sent would have been taken by now
    assert process.status() != psutil.STATUS_STOPPED


def test_only_shims_in_the_holders_pid_namespace_are_ours(shim: tuple[psutil.Process, Path]) -> None:
    """No holder, no shims; a process not named as a shim is never one."""
    process, _ = shim
    assert output._shims(0) == []
    assert process.pid not in [found.pid for found in output._shims(os.getpid())]


def test_a_look_alike_of_a_program_is_not_it(tmp_path: Path) -> None:
    """A process whose program only bears the name of an installed one (a container's, say) is not
    taken for it; the installed program's own process is."""
    look_alike = tmp_path / "sleep"
    shutil.copy("/bin/sleep", look_alike)
    copied = subprocess.Popen([str(look_alike), "60"])
    real = subprocess.Popen(["sleep", "60"])
    try:
        assert output._runs_the_installed_shim(real.pid)
        assert not output._runs_the_installed_shim(copied.pid)
    finally:
        for process in (copied, real):
            process.kill()
            process.wait()
