"""A Shutdown during any step of a start is taken at once: the bring-up (the namespace holder,
containerd, the API's port forward, dockerd's version, dockerd) and the TLS verdict run in
workers, and the supervisor thread goes on taking events meanwhile.

On the fake clock: no time passes while the Shutdown is taken. Each step blocks in a real
thread until it is cancelled (the waits that honour it) or let go (those that cannot be cut
short: a child asked for a version or a verdict); what it had started stops after its report."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from acap_http.status import Status
from acap_http.supervisor import unixhttp
from acap_http.supervisor.command import Command, PortForward
from acap_http.supervisor.events import Shutdown
from acap_http.supervisor.phases import Phase
from acap_http.supervisor.ports import Forwards
from acap_http.supervisor.runner import Exit, Process
from acap_http.supervisor.settings import Settings
from acap_http.supervisor.stack import Stack, StackError
from acap_http.tls.verdicts import NotJudged
from tests.test_supervisor_machine import PLAIN, Clock, FakeRunner, FakeStack, Machine, eventually_pumped

TLS = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


class Gate:
    """Where a step waits: it says it is inside, then waits to be let go or cancelled."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.released = threading.Event()

    def wait(self, cancel: threading.Event | None = None) -> None:
        self.inside.set()
        while not self.released.wait(0.005):
            if cancel is not None and cancel.is_set():
                raise StackError("cancelled")


class SlowStack(FakeStack):
    """The machine's stack, slow at one step."""

    def __init__(self, runner: FakeRunner, on_exit: Callable[[Process, Exit], None], slow_at: str, gate: Gate) -> None:
        super().__init__(runner, on_exit)
        self.slow_at, self.gate = slow_at, gate

    def up(self, data_root: Path, cancel: threading.Event) -> None:
        self.holder = self.runner.start(Command(("holder",), {}), self.on_exit, name="namespace holder")
        if self.slow_at == "holder":
            self.gate.wait()  # rootlesskit stopped before it is up would leave its children: not cut short
        self.containerd = self.runner.start(Command(("c",), {}), self.on_exit, name="containerd")
        if self.slow_at == "containerd":
            self.gate.wait(cancel)
        self.data_root = data_root

    fail_forward = False  # the port forward fails once let go

    def before_dockerd(self, settings: Settings, cancel: threading.Event) -> None:
        if self.slow_at == "port forward":
            self.gate.wait(cancel)
            if self.fail_forward:
                self.fail_forward, self.slow_at = False, ""
                raise StackError("cannot forward dockerd's port: conflict")

    def dockerd_command(self, settings: Settings) -> Command:
        if self.slow_at == "dockerd's version":
            self.gate.wait()  # a child's answer: not cut short
        return Command(("dockerd",), {})


class SlowVerdict:
    """A TLS store whose files have no verdict yet, and whose judge takes its time."""

    def __init__(self, gate: Gate, directory: Path) -> None:
        self.gate, self.directory = gate, directory

    def read(self) -> dict[str, bytes | None]:
        return {"ca.pem": b"ca", "server-cert.pem": b"cert", "server-key.pem": b"key"}

    def refusal(self, files: Mapping[str, bytes | None] | None = None, *, judge: bool = True) -> str | None:
        if not judge:
            raise NotJudged
        self.gate.wait()
        return None


def in_threads(name: str, work: Callable[[], None]) -> None:
    threading.Thread(target=work, name=name, daemon=True).start()


def slow_at(root: Path, step: str) -> tuple[Machine, Gate]:
    """A machine whose stack is slow at ``step``, its background work in real threads."""
    machine, gate = Machine(root), Gate()
    machine.supervisor._in_background = in_threads
    machine.stack = SlowStack(machine.runner, machine.supervisor._post_exit, step, gate)
    machine.supervisor.stack = machine.stack
    return machine, gate


def slow_stack(machine: Machine) -> SlowStack:
    assert isinstance(machine.stack, SlowStack)
    return machine.stack


@pytest.mark.parametrize(
    "step", ["holder", "containerd", "port forward", "dockerd's version", "the TLS verdict"]
)  # fmt: skip
def test_a_shutdown_during_each_step_of_a_start_is_taken_at_once(tmp_path: Path, step: str) -> None:
    machine, gate = slow_at(tmp_path, step)
    supervisor = machine.supervisor
    if step == "the TLS verdict":
        machine.settings = TLS
        supervisor._tls = SlowVerdict(gate, tmp_path)  # type: ignore[assignment]
    machine.begin()
    assert gate.inside.wait(10), f"the start never reached {step}"

    supervisor.post(Shutdown())
    supervisor.pump()  # returns at once, the step still under way: the clock has not moved
    assert supervisor.phase in (Phase.ENDING, Phase.STOPPED)
    assert not gate.released.is_set() and machine.statuses[-1] is not Status.RUNNING

    gate.released.set()  # a step that honours the cancel has ended already; the others end now
    eventually_pumped(machine, lambda: supervisor.stopped)
    assert not any(process.alive for process in machine.runner.started)
    assert machine.runner.named("dockerd") == []  # nothing after the step ran
    assert machine.statuses[-1] is Status.NOT_STARTED


def test_a_change_during_the_bring_up_restarts_dockerd_once_it_is_up(tmp_path: Path) -> None:
    """A start that comes due while the stack comes up waits for it, then replaces dockerd."""
    machine, gate = slow_at(tmp_path, "containerd")
    machine.begin()
    assert gate.inside.wait(10)
    machine.settings = Settings(
        use_tls=False, tcp_socket=True, ipc_socket=True, dockerd_log_level="warn", sd_card=False
    )
    machine.supervisor.request_restart("IPCSocket changed")
    machine.supervisor.pump()
    machine.at(1.0)  # its start is due: it waits for the bring-up
    assert machine.supervisor.phase is Phase.BRINGING_UP and machine.supervisor._start_due
    gate.released.set()
    eventually_pumped(machine, lambda: len(machine.dockerds()) == 2 and machine.status() is Status.RUNNING)
    assert not machine.dockerds()[0].alive and machine.dockerds()[1].alive
    assert machine.supervisor._running_settings == machine.settings


@pytest.mark.parametrize("then", ["shutdown", "failed bring-up"])
def test_a_change_during_a_bring_up_that_ends_in_a_stop_starts_nothing_in_the_stop(tmp_path: Path, then: str) -> None:
    """A start come due during a bring-up, then a Shutdown (or the bring-up fails): the stop runs its
    plan to its end, and no start cuts into it (no illegal transition, no plan replaced)."""
    machine, gate = slow_at(tmp_path, "port forward")
    machine.runner.obeys_term = then == "shutdown"  # a failed bring-up's stop takes its time
    machine.begin()
    assert gate.inside.wait(10)
    machine.supervisor.request_restart("UseTLS changed")
    machine.supervisor.pump()
    machine.at(1.0)
    assert machine.supervisor._start_due
    failed: list[str] = []
    machine.supervisor._failed = lambda: failed.append("handler failed")  # type: ignore[method-assign]
    if then == "shutdown":
        machine.supervisor.post(Shutdown())
        machine.supervisor.pump()
        gate.released.set()
        eventually_pumped(machine, lambda: machine.supervisor.stopped)
        assert not any(process.alive for process in machine.runner.started)
    else:
        slow_stack(machine).fail_forward = True
        gate.released.set()
        eventually_pumped(machine, lambda: machine.supervisor.phase is Phase.STOPPING_TO_RETRY)
        for process in machine.runner.started:
            process.end(Exit(0, None))  # containerd, then the holder, stop when asked
        eventually_pumped(machine, lambda: machine.supervisor.phase is not Phase.STOPPING_TO_RETRY)
        machine.at(1.0)
        eventually_pumped(machine, lambda: machine.status() is Status.RUNNING)
    assert failed == []


def test_a_process_of_the_stack_dying_during_the_bring_up_is_heard_after_its_report(tmp_path: Path) -> None:
    """The holder dies while containerd comes up: its exit is taken once the bring-up has reported,
    and everything starts again."""
    machine, gate = slow_at(tmp_path, "containerd")
    machine.begin()
    assert gate.inside.wait(10)
    first = machine.runner.named("namespace holder")[0]
    first.end(Exit(None, 9))
    machine.runner.named("containerd")[0].end(Exit(None, 9))  # the kernel ends the PID namespace with it
    machine.supervisor.pump()
    assert machine.supervisor.phase is Phase.BRINGING_UP  # the exit waits for the report
    slow_stack(machine).slow_at = ""
    gate.released.set()
    eventually_pumped(machine, lambda: machine.status() is Status.RUNNING or machine.supervisor._timers != {})
    machine.at(1.0)
    eventually_pumped(machine, lambda: machine.status() is Status.RUNNING)
    assert [p.name for p in machine.runner.started if p.alive] == ["namespace holder", "containerd", "dockerd"]
    assert machine.stack.holder is not first


class HolderUp(FakeRunner):
    """A holder that is up at once (rootlesskit's child pid and API socket written), and a
    containerd that never answers."""

    def __init__(self, state: Path) -> None:
        super().__init__()
        self.state = state
        self.api: socket.socket | None = None

    def start(
        self, command: Command, on_exit: Callable[[Process, Exit], None], *, name: str = "", owns_tree: bool = True
    ) -> Process:
        process = super().start(command, on_exit, name=name, owns_tree=owns_tree)
        if name == "namespace holder":
            self.state.mkdir(parents=True)
            (self.state / "child_pid").write_text("4242\n")
            self.api = socket.socket(socket.AF_UNIX)
            self.api.bind(str(self.state / "api.sock"))
        return process


def test_the_stacks_wait_for_containerd_ends_when_cancelled(tmp_path: Path) -> None:
    """The real stack's wait for containerd (one that never answers) ends at the cancel, not at the
    timeout (the fake clock never gets there); the holder's was not cut short."""
    machine = Machine(tmp_path)
    host = machine.supervisor.host
    runner = HolderUp(host.rootlesskit_dir)
    stack = Stack(host, runner, lambda process, exit: None, clock=Clock())
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(StackError, match="containerd: the start was cancelled"):
        stack.up(tmp_path / "data", cancel)
    assert stack.holder_pid == 4242 and [p.name for p in runner.started] == ["namespace holder", "containerd"]
    assert runner.api is not None
    runner.api.close()


def test_a_port_still_taken_is_tried_again_until_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()

    class Taken(Forwards):
        def add(self, forward: PortForward) -> None:
            threading.Timer(0.02, cancel.set).start()
            raise unixhttp.ApiError("conflict")

    forwards = Taken(tmp_path / "api.sock", clock=Clock(), cancel=cancel)
    with pytest.raises(InterruptedError):
        forwards._add_when_free(PortForward("0.0.0.0", 2375, 2375, "tcp"))


def test_plain_settings_need_no_verdict(tmp_path: Path) -> None:
    """Without TLS nothing is judged: the start goes straight to the bring-up."""
    machine = Machine(tmp_path)
    machine.settings = PLAIN
    machine.begin()
    assert machine.supervisor._judging is None and machine.status() is Status.RUNNING
