"""The supervisor's state machine and the runner, driven with a fake dockerd
(tests/fixtures/fake-dockerd): real processes, real signals, no dockerd."""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acap_http.status import Status
from acap_http.supervisor.command import Command, Host
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.events import Cause
from acap_http.supervisor.phases import Backoff, Phase
from acap_http.supervisor.runner import Exit, Process, Runner
from acap_http.supervisor.settings import Settings
from tests import pki
from tests.counted import Counted

FAKE = Path(__file__).parent / "fixtures" / "fake-dockerd"
PLAIN_TCP = Settings(use_tls=False, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class NoStack:
    """No holder and no containerd: fake-dockerd runs alone."""

    def __init__(self, build: Callable[[Settings], Command]) -> None:
        self.data_root: Path | None = None
        self.holder_pid = 0  # nothing to hold the containers' output of
        self.dockerd_command = build

    @property
    def processes(self) -> list[Process]:
        return []

    def up(self, data_root: Path, cancel: threading.Event) -> None:
        self.data_root = data_root

    def lost(self, process: Process) -> None:
        pass

    def holder_alive(self) -> bool:
        return True

    def containerd_keeps_containers(self) -> bool:
        return True

    def before_dockerd(self, settings: Settings, cancel: threading.Event) -> None:
        pass

    def refresh_config(self) -> None:
        pass


class Fake:
    """A supervisor around fake-dockerd, with what it did recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mode = "serve"
        self.program: str | None = None  # replaces fake-dockerd when set
        self.settings = PLAIN_TCP
        self.statuses: list[Status] = []
        self.log = root / "fake.log"
        self.ready = root / "ready"
        self.host = Host(rootless=False, app_dir=root, runtime_dir=root / "run", address="127.0.0.1", path="")
        self.counted = Counted()
        self.supervisor = Supervisor(
            read_settings=lambda: self.settings,
            host=self.host,
            set_status=self.statuses.append,
            stack=NoStack(self._build),
            answers=self.ready.exists,
            backoff=Backoff(base=0.2, cap=10.0, stable_after=60.0),
            coalesce=0.1,
            stop_grace=0.5,
            stop_containers=lambda grace: 0,
            counts=self.counted,
        )

    def _build(self, settings: Settings) -> Command:
        self.ready.unlink(missing_ok=True)
        env = {"FAKE_LOG": str(self.log), "FAKE_READY": str(self.ready), "PATH": os.environ["PATH"]}
        return Command((self.program,) if self.program else (str(FAKE), self.mode), env)

    def lines(self, word: str) -> list[list[str]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split() for line in text.splitlines() if line.startswith(word + " ")]

    @property
    def starts(self) -> int:
        return len(self.lines("start"))

    def changes(self) -> list[Status]:
        """The Status values as the parameter store keeps them: a repeated value is no change."""
        return [status for i, status in enumerate(self.statuses) if i == 0 or self.statuses[i - 1] is not status]

    def last(self) -> Status | None:
        return self.statuses[-1] if self.statuses else None


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    made = Fake(tmp_path)
    yield made
    if made.supervisor.phase is not Phase.STOPPED and made.supervisor._thread.is_alive():
        made.supervisor.shutdown()


def test_serving_dockerd_is_running_then_stopped(fake: Fake) -> None:
    """A dockerd that answers is Status 0; shutdown stops it with SIGTERM."""
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    fake.supervisor.shutdown()
    assert fake.changes() == [Status.DOCKERD_STOPPED, Status.RUNNING, Status.DOCKERD_STOPPED, Status.NOT_STARTED]
    assert len(fake.lines("term")) == 1
    pid = int(fake.lines("start")[0][2])
    assert not Path(f"/proc/{pid}").exists()


def test_exit_1_latches_until_a_change(fake: Fake) -> None:
    """Exit > 0 is Status 2 with no restart; a parameter change or upload starts it again."""
    fake.mode = "exit1"
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.DOCKERD_RUNTIME_ERROR)
    time.sleep(0.6)  # longer than the coalescing window and the first backoff
    assert fake.starts == 1
    assert fake.changes() == [Status.DOCKERD_STOPPED, Status.DOCKERD_RUNTIME_ERROR]
    fake.mode = "serve"
    fake.supervisor.request_restart("UseTLS changed")
    eventually(lambda: fake.last() is Status.RUNNING)
    assert fake.starts == 2


def test_exit_0_restarts_with_growing_delays(fake: Fake) -> None:
    """Exit 0 is Status 1 and a restart; repeated stops space out instead of spinning."""
    fake.mode = "exit0"
    fake.supervisor.start()
    eventually(lambda: fake.starts >= 5)
    fake.supervisor.shutdown()
    assert set(fake.statuses) == {Status.DOCKERD_STOPPED, Status.NOT_STARTED}
    times = [float(line[1]) for line in fake.lines("start")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Backoff(base=0.2): at once, then 0.2, 0.4, 0.8 s.
    assert gaps[1] >= 0.2 and gaps[2] >= 0.4 and gaps[3] >= 0.8
    assert gaps[3] > gaps[1]


def test_death_by_signal_is_stopped_then_restarted(fake: Fake) -> None:
    """A dockerd killed by a signal is Status 1, then 0 again after the restart."""
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    os.kill(int(fake.lines("start")[0][2]), 9)
    eventually(lambda: fake.starts == 2 and fake.last() is Status.RUNNING)
    assert fake.changes() == [Status.DOCKERD_STOPPED, Status.RUNNING, Status.DOCKERD_STOPPED, Status.RUNNING]


def test_restarts_are_counted_by_cause_once_dockerd_answers(fake: Fake) -> None:
    """The first start is no restart; a change's restart is counted as its cause, with the time from the
    change to dockerd answering; a kill is a crash, and the restart after it a crash's; a burst of changes
    is one restart, counted as its first; a dockerd that fails is a crash, and its idle wait no restart."""
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    assert (fake.counted.restarts, fake.counted.crashes) == ([], 0)
    began = time.monotonic()
    fake.supervisor.request_restart("server-cert.pem uploaded", Cause.UPLOAD)
    fake.supervisor.request_restart("UseTLS changed", Cause.SETTING)
    eventually(lambda: fake.starts == 2 and fake.last() is Status.RUNNING)
    ((cause, seconds),) = fake.counted.restarts
    assert cause is Cause.UPLOAD and 0 < seconds <= time.monotonic() - began
    os.kill(int(fake.lines("start")[1][2]), 9)
    eventually(lambda: fake.starts == 3 and fake.last() is Status.RUNNING)
    assert [cause for cause, _ in fake.counted.restarts] == [Cause.UPLOAD, Cause.CRASH]
    assert fake.counted.crashes == 1
    fake.mode = "exit1"
    fake.supervisor.request_restart("DockerdLogLevel changed", Cause.SETTING)
    eventually(lambda: fake.last() is Status.DOCKERD_RUNTIME_ERROR)
    assert fake.counted.crashes == 2
    fake.mode = "serve"
    fake.supervisor.request_restart("DockerdLogLevel changed", Cause.SETTING)
    eventually(lambda: fake.last() is Status.RUNNING)
    assert [cause for cause, _ in fake.counted.restarts] == [Cause.UPLOAD, Cause.CRASH, Cause.SETTING]
    assert fake.counted.reloads == []


def test_sigkill_at_the_deadline_never_before(fake: Fake) -> None:
    """A dockerd that ignores SIGTERM is killed when the grace period ends, not earlier."""
    fake.mode = "ignore-term"
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    began = time.monotonic()
    fake.supervisor.shutdown()
    took = time.monotonic() - began
    assert took >= 0.5
    assert len(fake.lines("term")) == 1  # it did get the SIGTERM first
    assert not Path(f"/proc/{fake.lines('start')[0][2]}").exists()


def test_grandchild_is_gone_after_stop(fake: Fake) -> None:
    """What dockerd started goes with it, even when it ignores SIGTERM."""
    fake.mode = "grandchild"
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING and bool(fake.lines("grandchild")))
    grandchild = int(fake.lines("grandchild")[0][1])
    assert Path(f"/proc/{grandchild}").exists()
    fake.supervisor.shutdown()
    eventually(lambda: not Path(f"/proc/{grandchild}").exists() or _zombie(grandchild), timeout=3)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        (
            Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False),
            Status.TLS_CERT_MISSING,
        ),
        (
            Settings(use_tls=True, tcp_socket=False, ipc_socket=False, dockerd_log_level="warn", sd_card=False),
            Status.NO_SOCKET,
        ),
    ],
    ids=["TLS files missing", "no socket"],
)
def test_failed_checks_keep_dockerd_stopped(fake: Fake, settings: Settings, status: Status) -> None:
    """A failed pre-start check sets its Status and starts nothing."""
    fake.settings = settings
    fake.supervisor.start()
    eventually(lambda: fake.last() is status)
    time.sleep(0.3)
    assert fake.starts == 0


def test_prepare_creates_daemon_json_and_removes_stale_pid(fake: Fake) -> None:
    """Before a start: the runtime directory is 0700, daemon.json is {} (0600), a stale pid file is gone."""
    fake.host.runtime_dir.mkdir()
    fake.host.pid_file.write_text("12345\n")
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    assert not fake.host.pid_file.exists()
    assert fake.host.daemon_json.read_text() == "{}"
    assert fake.host.daemon_json.stat().st_mode & 0o777 == 0o600
    assert fake.host.runtime_dir.stat().st_mode & 0o777 == 0o700


def test_exit_is_noticed_and_decoded(tmp_path: Path) -> None:
    """The runner reports an exit code or the signal that ended the child."""
    seen: list[Exit] = []

    def record(process: Process, exit: Exit) -> None:
        seen.append(exit)

    env = {"FAKE_LOG": str(tmp_path / "log"), "FAKE_READY": str(tmp_path / "ready"), "PATH": os.environ["PATH"]}
    runner = Runner()
    runner.start(Command((str(FAKE), "exit1"), env), record).wait(5)
    serving = runner.start(Command((str(FAKE), "serve"), env), record)
    eventually((tmp_path / "ready").exists)
    os.kill(serving.pid, 9)
    serving.wait(5)
    eventually(lambda: len(seen) == 2)
    assert [str(exit) for exit in seen] == ["exit code 1", "killed by SIGKILL"]
    assert seen[0].failed and not seen[1].failed


def test_missing_program_is_runtime_error(fake: Fake) -> None:
    """When dockerd (or rootlesskit) cannot be executed at all, Status is 2 and the app lives on."""
    fake.program = "/nonexistent/dockerd"
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.DOCKERD_RUNTIME_ERROR)
    fake.program = None
    fake.supervisor.request_restart("IPCSocket changed")
    eventually(lambda: fake.last() is Status.RUNNING)


TLS_TCP = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


def _store_set(root: Path, mismatched: bool = False) -> None:
    localdata = root / "localdata"
    localdata.mkdir(exist_ok=True)
    files = pki.server_set().by_name()
    if mismatched:
        files["server-key.pem"] = pki.key_pem(pki.rsa_key())
    for name, data in files.items():
        (localdata / name).write_bytes(data)


def test_a_serving_dockerd_is_not_traded_for_a_refused_set(fake: Fake) -> None:
    """With dockerd running, a restart into TLS files dockerd would refuse does not happen."""
    fake.settings = TLS_TCP
    _store_set(fake.root)
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    _store_set(fake.root, mismatched=True)
    fake.supervisor.request_restart("server-key.pem uploaded")
    time.sleep(0.5)
    assert fake.starts == 1 and not fake.lines("term")
    assert fake.changes() == [Status.DOCKERD_STOPPED, Status.RUNNING]


def test_a_stopped_dockerd_is_not_started_into_a_refused_set(fake: Fake) -> None:
    """With no dockerd running, a set it would refuse is Status 8 and nothing starts; a fix starts it."""
    fake.settings = TLS_TCP
    _store_set(fake.root, mismatched=True)
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.TLS_CERT_INVALID)
    assert fake.starts == 0
    _store_set(fake.root)
    fake.supervisor.request_restart("server-key.pem uploaded")
    eventually(lambda: fake.last() is Status.RUNNING)


def test_a_settings_change_is_applied_even_with_a_refused_set(fake: Fake) -> None:
    """Only a TLS upload leaves dockerd serving: a changed setting stops it, and the refused set is 8."""
    fake.settings = TLS_TCP
    _store_set(fake.root)
    fake.supervisor.start()
    eventually(lambda: fake.last() is Status.RUNNING)
    _store_set(fake.root, mismatched=True)
    fake.settings = dataclasses.replace(TLS_TCP, dockerd_log_level="debug")
    fake.supervisor.request_restart("DockerdLogLevel changed")
    eventually(lambda: fake.last() is Status.TLS_CERT_INVALID)
    assert len(fake.lines("term")) == 1


def test_child_is_stopped_when_the_app_is_killed(tmp_path: Path) -> None:
    """If the app dies without stopping dockerd (SIGKILL), the kernel sends the child SIGTERM."""
    script = (
        "import os, sys, time\n"
        "from acap_http.supervisor.command import Command\n"
        "from acap_http.supervisor.runner import Runner\n"
        "p = Runner().start(Command(('sleep', '300'), {'PATH': os.environ['PATH']}), lambda p, e: None)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert app.stdout is not None
    child = int(app.stdout.readline())
    started = _start_time(child)
    # setpriv asks for the signal before it execs sleep: until then, a parent's death goes unnoticed.
    eventually(lambda: Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"sleep\0"))
    app.kill()
    app.wait()
    app.stdout.close()
    # pids wrap around quickly here (pid_max 32768): a live process with another start time is not it.
    eventually(lambda: _zombie(child) or _start_time(child) != started, timeout=15)


def _start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except OSError:
        return None
