"""Containers survive every restart the product makes, in both modes, with the real dockerd,
containerd and docker CLI: the same pid, every line of their output, docker exec, and a
published port that answers after each. What stops them on purpose (the application's stop,
its SIGKILL, live-restore off) stops them, and leaves nothing behind."""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import free_port, processes_mentioning
from tests.e2e.running import APP_USER, IMAGE, PLAIN_HOST, TICKER, TLS_HOST, Mode, running_mode


class Workload:
    """A ticker that counts every 0.1 s and a web server on a published port."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.port = free_port()
        ticker = mode.docker("run", "-d", "--stop-timeout", "1", "--network", "none", IMAGE, "sh", "-c", TICKER)
        assert ticker.returncode == 0, ticker.stderr
        self.ticker = ticker.stdout.strip()
        web = mode.docker(
            "run", "-d", "--stop-timeout", "1", "-p", f"127.0.0.1:{self.port}:80", IMAGE,
            "sh", "-c", "echo hello > /index.html && httpd -f -p 80 -h /",
        )  # fmt: skip
        assert web.returncode == 0, web.stderr
        self.web = web.stdout.strip()
        self.pid = self.state(self.ticker)[0]
        self.wait_port()

    def state(self, container: str) -> tuple[int, str]:
        inspected = self.mode.docker("inspect", "-f", "{{.State.Pid}} {{.State.Status}}", container)
        assert inspected.returncode == 0, inspected.stderr
        pid, status = inspected.stdout.split()
        return int(pid), status

    def wait_port(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/index.html", timeout=2) as answer:
                    assert answer.read() == b"hello\n"
                    return
            except OSError:
                assert time.monotonic() < deadline, f"127.0.0.1:{self.port} does not answer"
                time.sleep(0.05)

    def assert_alive(self) -> None:
        """Same pid, every line of output, exec works, the published port answers."""
        assert self.state(self.ticker) == (self.pid, "running")
        time.sleep(0.3)  # a few more lines
        logs = self.mode.docker("logs", self.ticker)
        counted = [int(line) for line in logs.stdout.split()]
        assert counted == list(range(1, len(counted) + 1)), "lines lost"
        executed = self.mode.docker("exec", self.ticker, "echo", "inside")
        assert (executed.returncode, executed.stdout) == (0, "inside\n"), executed.stderr
        self.wait_port()

    def remove(self) -> None:
        self.mode.docker("rm", "-f", self.ticker, self.web)


@pytest.fixture(scope="module", params=["rootful", "rootless"])
def mode(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Mode]:
    yield from running_mode(e2e_root / f"survive-{request.param}", request.param, ("sh", "echo", "sleep", "httpd"))


@pytest.fixture
def workload(mode: Mode) -> Iterator[Workload]:
    """A fresh workload on a dockerd with the defaults: TLS on 2376, live-restore from us; whatever
    the test before left (another daemon.json, TLS off, the application stopped)."""
    if mode.front.process is None or mode.front.process.poll() is not None:
        mode.front.start()
    daemon_json = mode.front.localdata / "daemon.json"
    changed = not daemon_json.exists() or daemon_json.read_text() != "{}\n"
    daemon_json.write_text("{}\n")
    if changed or mode.host != TLS_HOST or mode.front.status() != "0 RUNNING":
        mode.host = TLS_HOST
        mode.front.wait_status("0 RUNNING", since=mode.front.restart_dockerd(UseTLS="yes"))
    mode.wait_docker()
    made = Workload(mode)
    yield made
    made.remove()


def test_a_certificate_upload(mode: Mode, workload: Workload) -> None:
    """A new server certificate for the same key: dockerd restarts, the containers do not."""
    cert = mode.root / "rotated-cert.pem"
    cert.write_bytes(mode.authority.server_set(key=mode.key).server_cert)
    mode.restarted(lambda: mode.front.upload("server-cert.pem", cert))
    workload.assert_alive()


def test_a_set_upload(mode: Mode, workload: Workload) -> None:
    """A whole new set (new key): one restart, the containers run on."""
    mode.key = pki.rsa_key()
    mode.restarted(lambda: mode.upload_set(mode.authority.server_set(key=mode.key)))
    workload.assert_alive()


def test_use_tls_off_and_on_again(mode: Mode, workload: Workload) -> None:
    """2376 -> 2375 -> 2376: two restarts, the API port moves, the containers run on."""
    mode.restarted(lambda: mode.front.update(UseTLS="no"), host=PLAIN_HOST)
    workload.assert_alive()
    mode.restarted(lambda: mode.front.update(UseTLS="yes"), host=TLS_HOST)
    workload.assert_alive()


def test_the_socket_settings_and_the_application_log_level(mode: Mode, workload: Workload) -> None:
    """IPCSocket on, TCPSocket off (docker over the unix socket alone), both back, ApplicationLogLevel
    to debug and back: each a restart of dockerd, the containers run on through all six."""
    unix = f"unix://{_runtime_dir(mode)}/docker.sock"
    for settings, host in (
        ({"IPCSocket": "yes"}, TLS_HOST),
        ({"TCPSocket": "no"}, unix),
        ({"TCPSocket": "yes"}, TLS_HOST),
        ({"IPCSocket": "no"}, TLS_HOST),
        ({"ApplicationLogLevel": "debug"}, TLS_HOST),
        ({"ApplicationLogLevel": "info"}, TLS_HOST),
    ):
        mode.restarted(functools.partial(mode.front.update, **settings), host=host)
        workload.assert_alive()


def test_a_daemon_json_change(mode: Mode, workload: Workload) -> None:
    """daemon.json edited, then any setting: dockerd restarts with it, the containers run on."""
    (mode.front.localdata / "daemon.json").write_text(json.dumps({"debug": True}) + "\n")
    mode.restarted(mode.front.restart_dockerd)
    info = mode.docker("info", "--format", "{{.Debug}}")
    assert info.stdout.strip() == "true"
    workload.assert_alive()


CHATTY = "i=0; while :; do i=$((i+1)); echo $i; j=0; while [ $j -lt 8 ]; do j=$((j+1)); done; done"


def read_counting(logged: list[str]) -> tuple[int, int, list[str]]:
    """A counting container's log read: how far it counted, how many of its lines a restart split,
    and every line lost or wrong otherwise (none may be).

    A line is split when the shims stopped in the middle of it, after dockerd had taken its first
    part (the README's one known loss): that part dies with the stopping dockerd, the rest is
    logged as a line of its own right where the line was (an empty one if only its newline was
    left): a tail of the number that should be there, followed by the next number."""
    expected, split, wrong = 1, 0, []
    for index, line in enumerate(logged):
        following = logged[index + 1] if index + 1 < len(logged) else None
        if line == str(expected):
            expected += 1
        elif str(expected).endswith(line) and following in (str(expected + 1), None):
            split, expected = split + 1, expected + 1
        elif line.isdigit() and int(line) > expected:
            wrong += [f"{number} lost" for number in range(expected, int(line))]
            expected = int(line) + 1
        else:
            wrong.append(f"{line!r} where {expected} was due")
    return expected - 1, split, wrong


def test_reading_a_counting_log() -> None:
    """The reader above tells a split line from a lost or a wrong one."""
    upto = [str(number) for number in range(1, 11)]
    assert read_counting(["1", "2", "3"]) == (3, 0, [])
    assert read_counting([*upto, "1", "12"]) == (12, 1, [])  # 11 split: its tail "1" logged
    assert read_counting([*upto, "", "12"]) == (12, 1, [])  # only 11's newline was left
    assert read_counting([*upto, "12"]) == (12, 0, ["11 lost"])
    assert read_counting([*upto, "2", "12"]) == (12, 0, ["'2' where 11 was due", "11 lost"])  # "2" is no tail of 11
    assert read_counting(["1", "2", "2", "3"]) == (3, 0, ["'2' where 3 was due"])
    assert read_counting(["9", "10", "1", "12"]) == (12, 1, [f"{number} lost" for number in range(1, 9)])


def test_chatty_containers_keep_every_line_across_restarts(mode: Mode, workload: Workload) -> None:
    """Three containers printing tens of thousands of lines a second, through fifteen restarts. A
    stopping dockerd leaves the containers running and exits without logging what it has read of
    their output: the product holds the output back at the shims and stops dockerd only once it
    has logged all it took, so no line goes missing (without that, most runs here lost lines)."""
    started = [mode.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c", CHATTY) for _ in range(3)]
    assert all(each.returncode == 0 for each in started), [each.stderr for each in started]
    chatty = [each.stdout.strip() for each in started]
    try:
        for _ in range(15):
            mode.restarted(mode.front.restart_dockerd)
        for container in chatty:
            logged = mode.docker("logs", container).stdout.split("\n")[:-1]  # each line ends with one
            counted, split, wrong = read_counting(logged)
            assert counted > 10_000
            assert wrong == [], f"{len(wrong)} lines lost or wrong: {wrong[:20]}"
            assert split <= 15  # at most one per restart
        assert "still logging" not in mode.front.log()
        workload.assert_alive()
    finally:
        mode.docker("rm", "-f", *chatty)


def test_live_restore_false_stops_them_as_before(mode: Mode, workload: Workload) -> None:
    """ "live-restore": false in daemon.json keeps the old behaviour: a restart stops the containers."""
    (mode.front.localdata / "daemon.json").write_text('{"live-restore": false}\n')
    mode.restarted(mode.front.restart_dockerd)
    assert workload.state(workload.ticker)[1] == "exited"


def test_killed_dockerd_is_restarted_and_containers_run_on(mode: Mode, workload: Workload) -> None:
    """kill -9 of dockerd: Status 1, then 0 with a new dockerd; the containers never noticed."""
    mode.restarted(lambda: os.kill(mode.dockerd(), signal.SIGKILL))
    workload.assert_alive()


def _containerd_drops_unlisted_containers(mode: Mode) -> bool:
    """containerd 1.7 and later, started again, drop the containers whose processes runc cannot list:
    rootless containers without cgroups (dockerd's "none" driver). 1.6 keeps them."""
    printed = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=True).stdout
    version = tuple(int(part) for part in re.findall(r" v?(\d+)\.(\d+)\.", printed)[0])
    driver = mode.docker("info", "--format", "{{.CgroupDriver}}").stdout.strip()
    return version >= (1, 7) and driver == "none"


def test_killed_containerd(mode: Mode, workload: Workload) -> None:
    """kill -9 of containerd: a new one on the same paths, and dockerd restarted onto it; the containers
    run on. Where a new containerd could not find them again (containerd 1.7, rootless without cgroups),
    everything restarts instead, said in the log: the containers are killed, not shown exited while they run."""
    containerd = _logged_pid(mode, r"containerd up \(pid (\d+)\)")
    holder = _logged_pid(mode, r"Namespace holder up \(pid (\d+);")
    drops = _containerd_drops_unlisted_containers(mode)
    mark = mode.front.mark()
    mode.restarted(lambda: os.kill(containerd, signal.SIGKILL))
    assert "containerd up" in mode.front.log()[mark:]
    if not drops:
        assert "Namespace holder up" not in mode.front.log()[mark:]
        workload.assert_alive()
        return
    assert "it would not find the running containers: restarting everything" in mode.front.log()[mark:]
    assert not Path(f"/proc/{holder}").exists() or _logged_pid(mode, r"Namespace holder up \(pid (\d+);") != holder
    assert workload.state(workload.ticker)[1] == "exited"
    assert processes_mentioning(TICKER) == [], "the ticker runs on, unseen"
    ran = mode.docker("run", "--rm", "--network", "none", IMAGE, "echo", "after")
    assert ran.stdout == "after\n", ran.stderr


def test_killed_holder_is_a_full_restart(mode: Mode, workload: Workload) -> None:
    """kill -9 of the namespace holder: everything in it dies (on purpose: nothing may outlive it),
    Status 1, then a new holder, containerd and dockerd: 0, and new containers run."""
    holder = _logged_pid(mode, r"Namespace holder up \(pid (\d+);")
    mode.restarted(lambda: os.kill(holder, signal.SIGKILL))
    assert workload.state(workload.ticker)[1] == "exited"
    ran = mode.docker("run", "--rm", "--network", "none", IMAGE, "echo", "after")
    assert ran.stdout == "after\n", ran.stderr


def _logged_pid(mode: Mode, pattern: str) -> int:
    """The pid the app logged last for ``pattern``, still running."""
    pid = int(re.findall(pattern, mode.front.log())[-1])
    assert Path(f"/proc/{pid}").exists()
    return pid


def _runtime_dir(mode: Mode) -> Path:
    uid = pwd.getpwnam(APP_USER).pw_uid if mode.mode == "rootless" else 0
    return Path(f"/var/run/user/{uid}")


def _leftovers(mode: Mode) -> list[str]:
    """Processes of this product's dockerd left running: of the app user (rootless), or on its paths;
    not the application of another front of the session that runs as the same user (and no dockerd)."""
    found = processes_mentioning(str(mode.front.app_dir)) + processes_mentioning(str(_runtime_dir(mode)))
    if mode.mode == "rootless":
        users = subprocess.run(["ps", "-u", APP_USER, "-o", "pid=,args="], capture_output=True, text=True, check=False)
        found += [
            line
            for line in users.stdout.splitlines()
            if "acap_http run" not in line or f"--app-dir {mode.front.app_dir} " in f"{line} "
        ]
    return found


def test_the_applications_stop_is_docker_stop_first(mode: Mode, workload: Workload) -> None:
    """The application's stop stops the containers as docker stop does, their own stop signal
    first (a trap answers it and exits 42, where a SIGKILL would give 137), then dockerd, then
    containerd, then the holder, in that order in the log."""
    trapped = mode.docker(
        "run", "-d", "--stop-signal", "USR1", "--stop-timeout", "8", "--network", "none", IMAGE,
        "sh", "-c", "trap 'echo stopped by USR1; exit 42' USR1; echo ready; while :; do sleep 0.1; done",
    )  # fmt: skip
    assert trapped.returncode == 0, trapped.stderr
    container = trapped.stdout.strip()
    deadline = time.monotonic() + 10
    while "ready" not in mode.docker("logs", container).stdout:
        assert time.monotonic() < deadline, "the trapping container did not start"
        time.sleep(0.05)
    mark = mode.front.mark()
    assert mode.front.stop() == 0
    log = mode.front.log()[mark:]
    steps = ["Stopping 3 running containers", "Stopping dockerd (", "Stopping containerd (",
             "Stopping namespace holder ("]  # fmt: skip
    assert all(step in log for step in steps), log
    assert [log.index(step) for step in steps] == sorted(log.index(step) for step in steps), log
    mark = mode.front.mark()
    mode.front.start()
    mode.front.wait_status("0 RUNNING", since=mark)
    mode.wait_docker()
    try:
        assert mode.docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() == "42"
        assert mode.docker("logs", container).stdout.split() == ["ready", "stopped", "by", "USR1"]
    finally:
        mode.docker("rm", "-f", container)


@pytest.mark.parametrize("how", ["SIGTERM to up", "SIGKILL to the app"])
def test_the_application_stopping_leaves_nothing(mode: Mode, workload: Workload, how: str) -> None:
    """The application's stop ends the containers, dockerd, containerd and the holder: no process
    of the dockerd user remains, shims included; after a SIGKILL of the app too. (The next test's
    workload starts up again.)"""
    if how == "SIGTERM to up":
        mark = mode.front.mark()
        assert mode.front.stop() == 0
        assert "Status=-1 NOT STARTED" in mode.front.log()[mark:]
    else:
        running = processes_mentioning(f"acap_http run --stdout --app-dir {mode.front.app_dir}")
        (app,) = [int(line.split(":")[0]) for line in running]
        os.kill(app, signal.SIGKILL)
        assert mode.front.process is not None
        mode.front.process.wait(30)
    deadline = time.monotonic() + 10  # the kernel's work, after a SIGKILL
    while _leftovers(mode):
        assert time.monotonic() < deadline, _leftovers(mode)
        time.sleep(0.1)
