"""The supervisor with the API's front (--tls-by front), on the fake clock: the front listens
once dockerd answers and stops when dockerd goes; a change of UseTLS, TCPSocket or the TLS files
is the front's (dockerd keeps running); a change dockerd is started with still restarts it; a
front that cannot listen is an error the operator must see (Status 2); a front that fails is
started again, Status 1 meanwhile, dockerd untouched."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from acap_http.apifront.proxy import Listen
from acap_http.status import Status
from acap_http.supervisor.events import Cause
from acap_http.supervisor.phases import Phase
from acap_http.supervisor.runner import Exit
from tests import pki
from tests.test_supervisor_machine import PLAIN, Machine

TLS = dataclasses.replace(PLAIN, use_tls=True)


class FakeFront:
    def __init__(self) -> None:
        self.used: list[Listen | None] = []
        self.refuse = False
        self.failed = False
        self.revived = 0
        self.revive_refused = False
        self.named_clients = False  # --api-client: plain TCP is refused
        self.reachable = True  # its listener's loop runs: set False with ``failed`` for a whole failure

    def use(self, listen: Listen | None) -> None:
        if listen is not None and self.refuse:
            raise OSError(98, "Address already in use")
        if listen is not None and listen.context is None and self.named_clients:
            raise ValueError("--api-client lets in named clients only, and plain TCP (UseTLS=no) names none")
        self.used.append(listen)

    def revive(self) -> None:
        """As the front's: started again listening as it was."""
        if self.revive_refused:
            raise OSError(98, "Address already in use")
        if self.failed:
            self.failed, self.revived, self.reachable = False, self.revived + 1, True

    @property
    def serving(self) -> Listen | None:
        return self.used[-1] if self.used else None


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    made = Machine(tmp_path)
    made.front = FakeFront()  # type: ignore[attr-defined]
    made.supervisor._front = made.front  # type: ignore[attr-defined]
    made.supervisor.host.localdata.mkdir(parents=True)
    for name, data in pki.server_set().by_name().items():
        (made.supervisor.host.localdata / name).write_bytes(data)
    return made


def change(machine: Machine, **settings: object) -> None:
    machine.settings = dataclasses.replace(machine.settings, **settings)  # type: ignore[arg-type]
    machine.supervisor.request_restart("changed")
    machine.supervisor.pump()
    machine.at(1.0)


def test_the_front_listens_once_dockerd_answers_and_stops_with_it(machine: Machine) -> None:
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    assert machine.status() is Status.RUNNING
    assert front.serving is not None and (front.serving.port, front.serving.context is not None) == (2376, True)
    served = len(front.used)
    machine.dockerds()[0].end(Exit(None, 9))
    machine.supervisor.pump()
    assert front.used[served] is None  # dockerd died: nobody to pass the bytes to, until the next one answers
    assert len(machine.dockerds()) == 2 and front.serving is not None and machine.status() is Status.RUNNING


@pytest.mark.parametrize(
    ("settings", "port", "tls"),
    [({"use_tls": False}, 2375, False), ({"tcp_socket": False, "ipc_socket": True}, None, None)],
)
def test_use_tls_and_tcp_socket_are_the_fronts_dockerd_keeps_running(
    machine: Machine, settings: dict[str, object], port: int | None, tls: bool | None
) -> None:
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    machine.settings = dataclasses.replace(TLS, ipc_socket=True)
    machine.begin()
    machine.at(1.0)
    change(machine, **settings)
    assert len(machine.dockerds()) == 1 and machine.dockerds()[0].alive
    assert machine.status() is Status.RUNNING
    if port is None:
        assert front.serving is None
    else:
        assert front.serving is not None and (front.serving.port, front.serving.context is not None) == (port, tls)


def test_new_tls_files_are_a_reload(machine: Machine) -> None:
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    first = front.serving
    for name, data in pki.server_set().by_name().items():  # a new CA, certificate and key
        (machine.supervisor.host.localdata / name).write_bytes(data)
    machine.supervisor.request_restart("TLS set uploaded", Cause.UPLOAD)
    machine.supervisor.pump()
    machine.at(1.0)
    assert len(machine.dockerds()) == 1 and machine.status() is Status.RUNNING
    assert front.serving is not None and first is not None and front.serving.context is not first.context
    assert (machine.counted.reloads, machine.counted.restarts) == ([Cause.UPLOAD], [])


def test_a_dead_containerd_is_started_again_and_no_reload(machine: Machine) -> None:
    """containerd dies while the front serves: a new containerd and dockerd come up (the front's reload
    would leave the stack without containerd), counted as a crash and its restart."""
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    machine.stack.containerd.end(Exit(None, 9))  # type: ignore[union-attr]
    machine.supervisor.pump()
    machine.at(1.0)
    assert len(machine.runner.named("containerd")) == 2 and machine.runner.named("containerd")[1].alive
    assert len(machine.dockerds()) == 2 and machine.dockerds()[1].alive and machine.status() is Status.RUNNING
    assert (machine.counted.crashes, machine.counted.causes, machine.counted.reloads) == (1, [Cause.CRASH], [])


def test_a_change_dockerd_is_started_with_restarts_it(machine: Machine) -> None:
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    change(machine, dockerd_log_level="debug")
    machine.at(1.0)
    assert len(machine.dockerds()) == 2 and machine.status() is Status.RUNNING


def test_a_missing_file_stops_dockerd_as_before(machine: Machine) -> None:
    machine.settings = PLAIN
    machine.begin()
    machine.at(1.0)
    (machine.supervisor.host.localdata / "ca.pem").unlink()
    change(machine, use_tls=True)
    assert machine.status() is Status.TLS_CERT_MISSING and not machine.dockerds()[0].alive


def test_a_front_that_cannot_listen_is_status_2(machine: Machine) -> None:
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    front.refuse = True
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    assert machine.status() is Status.DOCKERD_RUNTIME_ERROR and machine.supervisor.phase is Phase.IDLE
    assert not machine.dockerds()[0].alive


def running(machine: Machine) -> FakeFront:
    """dockerd answering, with TLS through the (fake) front; the front."""
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    return machine.front  # type: ignore[attr-defined, no-any-return]


def fails(machine: Machine, front: FakeFront, *, reachable: bool = False) -> None:
    """The front fails (``reachable``: only a loop other than the listener's), and says so."""
    front.failed, front.reachable = True, reachable
    machine.supervisor.front_failed()
    machine.supervisor.pump()


def test_a_front_that_fails_is_started_again_and_status_says_so(machine: Machine) -> None:
    front = running(machine)
    fails(machine, front)
    assert machine.status() is Status.DOCKERD_STOPPED  # dockerd runs, but no client reaches it
    assert front.revived == 0  # not at once: a fault that comes back does not spin
    machine.at(1.0)
    assert front.revived == 1 and front.serving is not None and front.serving.port == 2376
    assert machine.statuses[-2:] == [Status.DOCKERD_STOPPED, Status.RUNNING]
    assert len(machine.dockerds()) == 1 and machine.dockerds()[0].alive  # nor dockerd, nor a container touched


def test_a_front_failed_before_the_start_is_started_again_after_it(machine: Machine) -> None:
    """It failed while no supervisor heard it (the application stopped by request, say)."""
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    front.failed, front.reachable = True, False
    machine.settings = TLS
    machine.begin()
    machine.at(0.1)
    assert machine.supervisor.phase is Phase.RUNNING and machine.status() is Status.DOCKERD_STOPPED
    machine.at(1.0)
    assert front.revived == 1 and front.serving is not None and machine.status() is Status.RUNNING


def test_a_change_while_the_front_is_down_is_served_once_it_is_back(machine: Machine) -> None:
    front = running(machine)
    fails(machine, front)
    machine.settings = dataclasses.replace(machine.settings, use_tls=False)
    machine.supervisor.request_restart("changed")
    machine.at(0.1)
    assert machine.status() is Status.DOCKERD_STOPPED and len(machine.dockerds()) == 1
    machine.at(1.0)
    assert front.serving is not None and (front.serving.port, front.serving.context) == (2375, None)
    assert machine.status() is Status.RUNNING and len(machine.dockerds()) == 1


def test_a_front_whose_revival_a_stop_called_off_is_revived_at_the_next_start(machine: Machine) -> None:
    front = running(machine)
    fails(machine, front)
    machine.supervisor._failed()  # a handler failed: everything stops, the timers with it
    machine.at(5.0)
    assert machine.supervisor.phase is Phase.IDLE and front.revived == 0
    change(machine, dockerd_log_level="debug")  # the operator acts: dockerd starts again
    machine.at(2.0)
    assert front.revived == 1 and front.serving is not None and machine.status() is Status.RUNNING


def test_a_revival_serves_what_was_served_not_half_of_a_rotation(machine: Machine) -> None:
    """The store holds a new certificate without its key (one file of a rotation uploaded so
    far): dockerd would refuse it, and so would the front; the revived front serves the set it
    served, and dockerd runs on."""
    front = running(machine)
    served = front.serving
    (machine.supervisor.host.localdata / "server-cert.pem").write_bytes(pki.server_set().server_cert)
    fails(machine, front)
    machine.at(1.0)
    assert front.revived == 1 and front.serving is served and machine.status() is Status.RUNNING
    assert len(machine.dockerds()) == 1 and machine.dockerds()[0].alive


def test_a_fault_that_comes_back_is_retried_later_each_time(machine: Machine) -> None:
    front = running(machine)
    for wait in (1.0, 2.0, 4.0):
        fails(machine, front)
        revived = front.revived
        machine.at(wait - 0.01)
        assert front.revived == revived
        machine.at(0.02)
        assert front.revived == revived + 1 and machine.status() is Status.RUNNING
    machine.at(61.0)  # a minute without a failure: the next one is retried after a second again
    fails(machine, front)
    machine.at(1.01)
    assert front.revived == 4


def test_a_front_that_cannot_be_started_again_is_status_2(machine: Machine) -> None:
    front = running(machine)
    front.revive_refused = True  # its port taken meanwhile, say
    fails(machine, front)
    machine.at(1.0)
    assert machine.status() is Status.DOCKERD_RUNTIME_ERROR and machine.supervisor.phase is Phase.IDLE


def test_plain_tcp_with_named_clients_is_status_2(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """--api-client and UseTLS=no: the API is not opened to all; the operator sees Status 2 and why."""
    front: FakeFront = machine.front  # type: ignore[attr-defined]
    front.named_clients = True
    machine.settings = TLS
    machine.begin()
    machine.at(1.0)
    change(machine, use_tls=False)
    machine.at(2.0)
    assert machine.status() is Status.DOCKERD_RUNTIME_ERROR and machine.supervisor.phase is Phase.IDLE
    assert front.serving is None or front.serving.context is not None
    assert "plain TCP (UseTLS=no) names none" in caplog.text


def test_a_loop_other_than_the_listeners_failing_keeps_status_0(machine: Machine) -> None:
    """The listener's loop runs and deals new connections to the loops left: clients reach dockerd."""
    front = running(machine)
    fails(machine, front, reachable=True)
    assert machine.status() is Status.RUNNING
    machine.at(1.0)
    assert front.revived == 1 and machine.status() is Status.RUNNING
