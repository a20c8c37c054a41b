"""The supervisor's state machine on a fake clock, with fake processes: backoff, deadlines,
the SD card's wait, and what happens to the stack (containerd, the namespace holder) when
one of its processes dies. No real time passes: the clock is moved, then ``pump`` runs."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from acap_http.status import Status
from acap_http.supervisor.command import Command, Host
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.events import Answering, Cause, Shutdown
from acap_http.supervisor.phases import (
    STATUS,
    STOPPING,
    TRANSITIONS,
    Backoff,
    IllegalTransition,
    Phase,
    check_transition,
)
from acap_http.supervisor.runner import Exit, Process, Runner
from acap_http.supervisor.sdcard import CardPlace
from acap_http.supervisor.settings import Settings
from acap_http.supervisor.stack import StackError
from tests.counted import Counted

PLAIN = Settings(use_tls=False, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)
CARD = Settings(use_tls=False, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=True)
CLEAN_EXIT, FAILED, KILLED = Exit(0, None), Exit(1, None), Exit(None, 9)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProcess(Process):
    """A process that runs until the test (or a SIGTERM, when it obeys) ends it."""

    def __init__(
        self, name: str, pid: int, on_exit: Callable[[Process, Exit], None], obeys_term: bool, journal: list[str]
    ) -> None:
        self.name, self.pid, self._on_exit, self.obeys_term = name, pid, on_exit, obeys_term
        self.exit: Exit | None = None
        self.signals: list[str] = []
        self.journal = journal  # every signal of every process, in the order sent

    @property
    def alive(self) -> bool:
        return self.exit is None

    @property
    def program_pid(self) -> int:
        return self.pid

    def wait(self, timeout: float | None = None) -> bool:
        return not self.alive

    def remember_descendants(self) -> None:
        pass

    def terminate(self) -> None:
        self.signals.append("TERM")
        self.journal.append(f"{self.name} TERM")
        if self.obeys_term:
            self.end(CLEAN_EXIT)

    def kill(self) -> None:
        self.signals.append("KILL")
        self.journal.append(f"{self.name} KILL")
        self.end(KILLED)

    def end(self, exit: Exit) -> None:
        if self.exit is None:
            self.exit = exit
            self._on_exit(self, exit)


class FakeRunner(Runner):
    def __init__(self) -> None:
        self.started: list[FakeProcess] = []
        self.journal: list[str] = []
        self.obeys_term = True
        self._pids = itertools.count(100)

    def start(
        self, command: Command, on_exit: Callable[[Process, Exit], None], *, name: str = "", owns_tree: bool = True
    ) -> Process:
        process = FakeProcess(name or command.argv[0], next(self._pids), on_exit, self.obeys_term, self.journal)
        self.started.append(process)
        return process

    def named(self, name: str) -> list[FakeProcess]:
        return [process for process in self.started if process.name == name]


class FakeStack:
    """A holder and a containerd made of fake processes, as ``stack.Stack`` keeps them."""

    def __init__(self, runner: FakeRunner, on_exit: Callable[[Process, Exit], None]) -> None:
        self.runner, self.on_exit = runner, on_exit
        self.holder: Process | None = None
        self.containerd: Process | None = None
        self.data_root: Path | None = None
        self.holder_pid = 0
        self.keeps_containers = True  # containerd 1.6, or cgroups: it finds the containers again
        self.namespaces_gone = False  # the holder on its way out: seen alive, nothing can enter it

    def containerd_keeps_containers(self) -> bool:
        return self.keeps_containers

    @property
    def processes(self) -> list[Process]:
        return [process for process in (self.containerd, self.holder) if process is not None]

    def up(self, data_root: Path, cancel: threading.Event) -> None:
        if self.namespaces_gone and self.containerd is None:
            self.namespaces_gone = False
            raise StackError("containerd did not come up (exit code 1)")
        self.holder = self.holder or self.runner.start(Command(("holder",), {}), self.on_exit, name="namespace holder")
        self.containerd = self.containerd or self.runner.start(Command(("c",), {}), self.on_exit, name="containerd")
        self.data_root = data_root

    def holder_alive(self) -> bool:
        return self.holder is not None and self.holder.alive

    def lost(self, process: Process) -> None:
        if process is self.holder:
            self.holder = self.containerd = None
        elif process is self.containerd:
            self.containerd = None

    def dockerd_command(self, settings: Settings) -> Command:
        return Command(("dockerd",), {})

    def before_dockerd(self, settings: Settings, cancel: threading.Event) -> None:
        pass

    def refresh_config(self) -> None:
        pass


class FakeHold:
    """The containers' output held at the shims while dockerd stops, written into the journal."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    def hold(self) -> bool:
        self.journal.append("output held")
        return True

    def release(self) -> None:
        self.journal.append("output released")


class Card:
    def __init__(self, root: Path) -> None:
        self.place = CardPlace(root / "card", root / "card" / "area")
        self.present = False


class Machine:
    def __init__(self, root: Path, card: bool = False) -> None:
        self.clock = Clock()
        self.runner = FakeRunner()
        self.statuses: list[Status] = []
        self.answering = True
        self.settings = PLAIN
        self.card = Card(root) if card else None
        self.counted = Counted()
        host = Host(rootless=True, app_dir=root, runtime_dir=root / "run", address="127.0.0.1", path="")
        self.supervisor = Supervisor(
            read_settings=lambda: self.settings,
            host=host,
            set_status=self.statuses.append,
            runner=self.runner,
            answers=lambda: self.answering,
            backoff=Backoff(base=1.0, cap=60.0, stable_after=60.0),
            coalesce=0.1,
            stop_grace=13.0,
            card=self.card,  # type: ignore[arg-type]
            clock=self.clock,
            watch_ready=lambda process, ready: ready() if self.answering else None,
            stop_containers=self._stop_containers,
            hold_output=lambda: FakeHold(self.runner.journal),
            in_background=lambda name, work: work(),  # its news is queued, and taken in the same pump
            counts=self.counted,
        )
        self.stack = FakeStack(self.runner, self.supervisor._post_exit)
        self.supervisor.stack = self.stack

    def _stop_containers(self, grace: float) -> int:
        self.runner.journal.append(f"containers stop ({grace:g} s)")
        return 1

    def begin(self) -> None:
        self.supervisor._post_restart("application started", at_once=True)
        self.supervisor.pump()

    def at(self, seconds: float) -> None:
        """Move the clock ``seconds`` on and let the supervisor act on what is due."""
        self.clock.now += seconds
        self.supervisor.pump()

    def dockerds(self) -> list[FakeProcess]:
        return self.runner.named("dockerd")

    def status(self) -> Status:
        return self.statuses[-1]


def eventually_pumped(machine: Machine, condition: Callable[[], bool]) -> None:
    """Pump the supervisor until ``condition`` (a step of it runs in a thread: the containers' stop)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        machine.supervisor.pump()
        time.sleep(0.005)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_the_transition_table_allows_what_the_machine_does_and_nothing_else() -> None:
    """Every phase can be left (but STOPPED), the application can end from any, every phase has its
    Status, and a transition outside the table is a bug that raises."""
    sources = {source for source, _ in TRANSITIONS}
    assert sources == set(Phase) - {Phase.STOPPED}
    assert all((phase, Phase.ENDING) in TRANSITIONS for phase in sources - {Phase.ENDING})
    assert set(STATUS) == set(Phase)
    with pytest.raises(IllegalTransition):
        check_transition(Phase.STOPPED, Phase.STARTING)
    with pytest.raises(IllegalTransition):
        check_transition(Phase.IDLE, Phase.RUNNING)


def test_start_brings_up_holder_containerd_then_dockerd(machine: Machine) -> None:
    """The first start starts the stack, then dockerd; Status 1 then 0."""
    machine.begin()
    assert [process.name for process in machine.runner.started] == ["namespace holder", "containerd", "dockerd"]
    assert machine.statuses == [Status.DOCKERD_STOPPED, Status.RUNNING]
    assert machine.supervisor.phase is Phase.RUNNING


def test_a_restart_replaces_dockerd_only(machine: Machine) -> None:
    """A settings change stops dockerd (TERM) and starts a new one; holder and containerd stay."""
    machine.begin()
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.05)
    assert machine.dockerds()[0].alive  # the burst window (0.1 s) is still open
    machine.at(0.06)
    first, second = machine.dockerds()
    assert first.signals == ["TERM"] and second.alive
    assert [p.name for p in machine.runner.started].count("containerd") == 1
    assert machine.statuses == [Status.DOCKERD_STOPPED, Status.RUNNING, Status.DOCKERD_STOPPED, Status.RUNNING]


def test_a_restart_holds_the_containers_output_while_dockerd_stops(machine: Machine) -> None:
    """With live-restore the containers run on through a restart: their output is held at the shims
    before dockerd's TERM (so that it logs all it took before it exits), and flows again once it has
    exited, before the next dockerd starts."""
    machine.begin()
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.2)
    assert machine.runner.journal == ["output held", "dockerd TERM", "output released"]
    assert machine.dockerds()[1].alive


def test_without_live_restore_nothing_is_held(machine: Machine, tmp_path: Path) -> None:
    """ "live-restore": false: dockerd stops the containers itself, logging their output to the end;
    holding it would keep them from stopping. What counts is what the running dockerd started with."""
    (tmp_path / "localdata").mkdir()
    (tmp_path / "localdata" / "daemon.json").write_text('{"live-restore": false}\n')
    machine.begin()
    (tmp_path / "localdata" / "daemon.json").write_text("{}\n")  # the next dockerd's, not this one's
    machine.supervisor.request_restart("daemon.json changed")
    machine.supervisor.pump()
    machine.at(0.2)
    assert machine.runner.journal == ["dockerd TERM"]
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.2)
    assert machine.runner.journal == ["dockerd TERM", "output held", "dockerd TERM", "output released"]


def test_output_held_is_released_when_dockerd_dies_meanwhile(machine: Machine) -> None:
    """dockerd dies while its output is held (a kill): the hold ends with it, and the late news of
    the hold starts no step of a later stop."""
    late: list[Callable[[], None]] = []
    # The hold's news comes later; the rest at once.
    machine.supervisor._in_background = lambda name, work: late.append(work) if name == "hold-output" else work()
    machine.begin()
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.2)
    dockerd = machine.dockerds()[0]
    assert machine.runner.journal == [] and dockerd.alive
    dockerd.end(KILLED)
    machine.supervisor.pump()
    assert machine.runner.journal == ["output released"]
    machine.at(0.2)
    assert machine.dockerds()[1].alive
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.2)  # the next stop waits for its own hold
    late[0]()  # the first hold's news, at last: not this stop's
    machine.supervisor.pump()
    assert machine.dockerds()[1].signals == []
    late[1]()
    machine.supervisor.pump()
    assert machine.dockerds()[1].signals == ["TERM"] and machine.dockerds()[2].alive


def test_a_change_made_while_dockerd_fails_starts_it_again(machine: Machine) -> None:
    """A file uploaded while a just-started dockerd fails (it read the files half-uploaded): the start
    the upload asked for still comes, with the new files, rather than Status 2 until the next change."""
    machine.begin()
    machine.supervisor.request_restart("server-key.pem uploaded")
    machine.supervisor.pump()
    machine.dockerds()[0].end(FAILED)
    machine.supervisor.pump()
    assert machine.supervisor.phase is Phase.WAITING
    machine.at(0.2)
    assert len(machine.dockerds()) == 2 and machine.dockerds()[1].alive
    assert machine.status() is Status.RUNNING


def test_a_burst_of_changes_is_one_restart(machine: Machine) -> None:
    """Five changes posted together (an upload, then settings): one restart, with all of them applied."""
    machine.begin()
    for change in range(5):
        machine.supervisor.request_restart(f"change {change}")
    machine.supervisor.pump()
    machine.at(0.1)
    machine.at(60)
    assert len(machine.dockerds()) == 2
    assert machine.statuses == [Status.DOCKERD_STOPPED, Status.RUNNING, Status.DOCKERD_STOPPED, Status.RUNNING]


def test_changes_while_stopping_are_taken_by_the_start_that_follows(machine: Machine) -> None:
    """A change that arrives while dockerd stops is read by the start after it: still one restart."""
    machine.runner.obeys_term = False
    machine.begin()
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(0.1)
    assert machine.supervisor.phase in STOPPING
    machine.supervisor.request_restart("ca.pem uploaded")
    machine.supervisor.pump()
    machine.dockerds()[0].end(CLEAN_EXIT)
    machine.supervisor.pump()
    machine.at(60)
    assert len(machine.dockerds()) == 2


def test_backoff_schedule_to_its_cap_and_forgotten_after_a_stable_run(machine: Machine) -> None:
    """Repeated stops restart at once, then after 1, 2, 4 … 60 s (the cap); a run of 60 s forgets them."""
    machine.begin()
    delays = []
    for _ in range(9):
        started = len(machine.dockerds())
        machine.dockerds()[-1].end(CLEAN_EXIT)
        machine.supervisor.pump()
        waited = 0.0
        while len(machine.dockerds()) == started:
            assert machine.status() is Status.DOCKERD_STOPPED
            machine.at(0.5)
            waited += 0.5
            assert waited <= 61
        delays.append(waited)
        assert machine.status() is Status.RUNNING
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    machine.at(60)  # a stable run
    machine.dockerds()[-1].end(KILLED)
    machine.supervisor.pump()
    assert machine.dockerds()[-1].alive  # at once again


def test_exit_with_an_error_waits_for_the_operator(machine: Machine) -> None:
    """Exit code 1: Status 2, no restart however long; a change starts it again."""
    machine.begin()
    machine.dockerds()[0].end(FAILED)
    machine.supervisor.pump()
    machine.at(3600)
    assert len(machine.dockerds()) == 1 and machine.status() is Status.DOCKERD_RUNTIME_ERROR
    machine.supervisor.request_restart("IPCSocket changed")
    machine.supervisor.pump()
    machine.at(0.1)
    assert len(machine.dockerds()) == 2 and machine.status() is Status.RUNNING


def test_a_burst_is_one_restart_even_when_dockerd_stops_at_once(machine: Machine) -> None:
    """Changes of one burst reach the supervisor over a few tens of ms; dockerd 26 stops in 13 ms. The
    start waits for 20 ms without a change, so what comes meanwhile is in it: one restart, with the
    last settings (without the wait: a start, then a second restart for the rest of the burst)."""
    machine.runner.obeys_term = False
    machine.begin()
    machine.supervisor.request_restart("DockerdLogLevel changed")
    machine.supervisor.pump()
    machine.at(0.1)  # gathered: the stop begins
    first = machine.dockerds()[0]
    assert first.signals == ["TERM"]
    for index in range(4):  # the rest of the burst, 5 to 10 ms apart
        machine.settings = Settings(use_tls=False, tcp_socket=True, ipc_socket=False,
                                    dockerd_log_level=f"level{index}", sd_card=False)  # fmt: skip
        machine.supervisor.request_restart("DockerdLogLevel changed")
        machine.at(0.005)
        if index == 0:
            first.end(CLEAN_EXIT)  # stopped 5 ms after its SIGTERM
        machine.at(0.005)
    machine.at(1.0)
    assert len(machine.dockerds()) == 2 and machine.dockerds()[1].alive
    assert machine.supervisor._running_settings == machine.settings


def test_a_change_saved_while_the_settings_are_read_is_not_lost(machine: Machine) -> None:
    """A change saved (and posted) just after the start read the settings is not in that dockerd: it
    is not counted as applied, so a restart follows and dockerd ends with it."""
    machine.begin()
    old, new = machine.settings, Settings(use_tls=False, tcp_socket=True, ipc_socket=False,
                                          dockerd_log_level="debug", sd_card=False)  # fmt: skip
    reads: list[Settings] = []

    def read() -> Settings:
        reads.append(machine.settings)
        if len(reads) == 2:  # the read before the spawn: the other change lands right after it
            machine.settings = new
            machine.supervisor.request_restart("DockerdLogLevel changed")
            return old
        return machine.settings

    machine.supervisor._read_settings = read
    machine.supervisor.request_restart("TCPSocket changed")
    machine.supervisor.pump()
    for _ in range(5):
        machine.at(1.0)
    assert machine.supervisor._running_settings == new and machine.dockerds()[-1].alive


def test_sigkill_exactly_at_the_grace_deadline(machine: Machine) -> None:
    """A dockerd that ignores SIGTERM gets SIGKILL when the 13 s end, not a moment before."""
    machine.runner.obeys_term = False
    machine.begin()
    machine.supervisor.request_restart("DockerdLogLevel changed")
    machine.supervisor.pump()
    machine.at(0.1)
    dockerd = machine.dockerds()[0]
    assert dockerd.signals == ["TERM"]
    machine.at(12.9)
    assert dockerd.signals == ["TERM"] and machine.supervisor.phase in STOPPING
    machine.at(0.1)
    assert dockerd.signals == ["TERM", "KILL"]
    assert machine.dockerds()[1].alive  # and the new one started


def test_shutdown_stops_dockerd_then_containerd_then_the_holder(machine: Machine) -> None:
    """The application's stop ends everything, in order, and Status is -1."""
    machine.begin()
    machine.supervisor._events.put(Shutdown())
    machine.supervisor.pump()
    eventually_pumped(machine, lambda: not any(process.alive for process in machine.runner.started))
    assert machine.runner.journal == [
        "containers stop (11 s)",
        "dockerd TERM",
        "containerd TERM",
        "namespace holder TERM",
    ]
    assert machine.status() is Status.NOT_STARTED and machine.supervisor.stopped


def test_a_dead_containerd_is_started_again_then_dockerd(machine: Machine) -> None:
    """containerd dies: a new one at once, then a new dockerd onto it; the holder stays."""
    machine.begin()
    machine.stack.containerd.end(KILLED)  # type: ignore[union-attr]
    machine.supervisor.pump()
    assert len(machine.runner.named("containerd")) == 2 and machine.runner.named("containerd")[1].alive
    assert len(machine.dockerds()) == 2 and machine.dockerds()[1].alive
    assert len(machine.runner.named("namespace holder")) == 1
    assert machine.statuses == [Status.DOCKERD_STOPPED, Status.RUNNING, Status.DOCKERD_STOPPED, Status.RUNNING]


def test_a_dead_containerd_is_a_crash_and_its_restart_a_crashs(machine: Machine) -> None:
    machine.begin()
    machine.stack.containerd.end(KILLED)  # type: ignore[union-attr]
    machine.supervisor.pump()
    assert (machine.counted.crashes, machine.counted.causes) == (1, [Cause.CRASH])


def test_a_change_made_while_dockerd_starts_is_counted_with_the_restart_it_makes(machine: Machine) -> None:
    """A crash's dockerd is starting when a file is uploaded: that dockerd answers for the crash, and
    the upload's restart, which follows, for the upload (with the time from the upload on)."""
    machine.begin()
    machine.answering = False
    machine.dockerds()[0].end(KILLED)
    machine.supervisor.pump()  # the first crash's start is at once
    starting = machine.dockerds()[1]
    assert machine.supervisor.phase is Phase.STARTING
    machine.supervisor.request_restart("ca.pem uploaded", Cause.UPLOAD)
    machine.supervisor.post(Answering(starting))
    machine.supervisor.pump()
    assert machine.counted.causes == [Cause.CRASH]
    machine.at(0.5)
    machine.supervisor.post(Answering(machine.dockerds()[2]))
    machine.supervisor.pump()
    assert machine.counted.causes == [Cause.CRASH, Cause.UPLOAD] and machine.counted.crashes == 1
    assert machine.counted.restarts[1][1] == pytest.approx(0.5)


def test_a_dead_containerd_that_would_lose_the_containers_is_a_full_restart(machine: Machine) -> None:
    """Rootless without cgroups, containerd 1.7 would drop the running containers when started again,
    while they run on unseen: everything restarts instead (the holder killed, a new one), Status 1 then 0."""
    machine.stack.keeps_containers = False
    machine.begin()
    first_holder, first_dockerd = machine.stack.holder, machine.dockerds()[0]
    machine.stack.containerd.end(KILLED)  # type: ignore[union-attr]
    machine.supervisor.pump()
    assert isinstance(first_holder, FakeProcess) and first_holder.signals == ["KILL"]
    assert not first_dockerd.alive
    assert len(machine.runner.named("namespace holder")) == 2
    assert [p.name for p in machine.runner.started if p.alive] == ["namespace holder", "containerd", "dockerd"]
    assert machine.statuses[-2:] == [Status.DOCKERD_STOPPED, Status.RUNNING]


def test_containerd_dying_with_the_holder_is_a_full_restart(machine: Machine) -> None:
    """When the holder dies, containerd's exit may be heard first: no restart of containerd into dead
    namespaces, a full restart instead."""
    machine.begin()
    holder, containerd = machine.stack.holder, machine.stack.containerd
    assert isinstance(holder, FakeProcess) and isinstance(containerd, FakeProcess)
    holder.exit = KILLED  # dead, its exit not posted yet
    containerd.end(KILLED)
    machine.supervisor.pump()
    holder._on_exit(holder, KILLED)
    machine.supervisor.pump()
    assert len(machine.runner.named("namespace holder")) == 2
    assert [p.name for p in machine.runner.started if p.alive] == ["namespace holder", "containerd", "dockerd"]
    assert machine.status() is Status.RUNNING


def test_containerd_that_cannot_come_up_again_is_a_full_restart(machine: Machine) -> None:
    """A kill of the holder heard first as containerd's death, while the holder still looks alive: the
    new containerd cannot enter the namespaces; everything restarts, as for a dead holder (no Status 2)."""
    machine.begin()
    holder = machine.stack.holder
    assert isinstance(holder, FakeProcess)
    machine.stack.namespaces_gone = True
    machine.stack.containerd.end(KILLED)  # type: ignore[union-attr]
    machine.supervisor.pump()
    assert holder.signals == ["TERM"]  # the start's bring-up failed: what it had of the stack stops
    machine.at(2.0)
    assert len(machine.runner.named("namespace holder")) == 2
    assert [p.name for p in machine.runner.started if p.alive] == ["namespace holder", "containerd", "dockerd"]
    assert Status.DOCKERD_RUNTIME_ERROR not in machine.statuses
    assert machine.status() is Status.RUNNING


def test_a_dead_holder_is_a_full_restart(machine: Machine) -> None:
    """The holder dies (and all inside with it): Status 1, then a new holder, containerd and dockerd: 0."""
    machine.begin()
    containerd = machine.stack.containerd
    machine.stack.holder.end(KILLED)  # type: ignore[union-attr]
    containerd.end(KILLED)  # type: ignore[union-attr]  # the kernel ends the PID namespace with it
    machine.supervisor.pump()
    assert machine.statuses[-2:] == [Status.DOCKERD_STOPPED, Status.RUNNING]
    assert [p.name for p in machine.runner.started if p.alive] == ["namespace holder", "containerd", "dockerd"]
    assert len(machine.runner.named("namespace holder")) == 2


def test_shutdown_during_the_cards_wait_is_immediate(tmp_path: Path) -> None:
    """Waiting for the card blocks nothing: a shutdown 1 s into the 5 s wait ends at once."""
    machine = Machine(tmp_path, card=True)
    machine.settings = Settings(
        use_tls=False, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=True
    )
    machine.begin()
    assert machine.supervisor.phase is Phase.CARD_WAIT
    machine.at(1)
    machine.supervisor._events.put(Shutdown())
    machine.supervisor.pump()
    assert machine.supervisor.stopped and machine.runner.started == []


def test_no_card_after_five_seconds_is_status_5(tmp_path: Path) -> None:
    """Status 5 once the 5 s are over, not before."""
    machine = Machine(tmp_path, card=True)
    machine.settings = Settings(
        use_tls=False, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=True
    )
    machine.begin()
    machine.at(4.9)
    assert machine.status() is Status.DOCKERD_STOPPED
    machine.at(0.1)
    assert machine.status() is Status.NO_SD_CARD and machine.runner.started == []


def test_a_pulled_card_stops_the_containers_as_docker_stop_does_then_the_stack(tmp_path: Path) -> None:
    """The card goes: its containers are stopped as docker stop does (dockerd still knows them),
    then dockerd, containerd and the holder; Status 5."""
    machine = Machine(tmp_path, card=True)
    machine.settings = CARD
    assert machine.card is not None
    machine.card.place = CardPlace(Path("/"), tmp_path / "area")  # a mount point the check finds in the table
    machine.card.present = True
    machine.begin()
    machine.at(0.1)
    assert machine.status() is Status.RUNNING
    machine.card.present = False
    machine.supervisor.card_changed(False)
    machine.supervisor.pump()
    eventually_pumped(machine, lambda: not any(process.alive for process in machine.runner.started))
    assert machine.runner.journal == [
        "containers stop (11 s)",
        "dockerd TERM",
        "containerd TERM",
        "namespace holder TERM",
    ]
    assert machine.status() is Status.NO_SD_CARD
