"""``make soak``: ``acap-http up``, rootless, with three containers running (one publishing a
port), under a random stream of what operators do and what fails, for ``SOAK_MINUTES``
(default 10), checked after every step. ``SOAK_SEED`` repeats a run's stream (it prints its seed).

The operations: a new server certificate (same key), a new set, an identical re-upload (nothing
restarts), each setting but TCPSocket (UseTLS, IPCSocket, DockerdLogLevel, ApplicationLogLevel),
a ``daemon.json`` change (labels: a reload), a kill -9 of dockerd and of containerd, and a
hundred param.cgi readers at once. After each one: Status 0 again, the API answers, and every
container has the same pid, the ticker every line, the published port its page; a loss is
described with the operation after which it was seen. Where the README says containers stop
(containerd's death where a new containerd could not find them: containerd 1.7, rootless), they
are counted apart and started again; so are the ticker's lines a dockerd killed -9 had read and
not logged yet (nothing can log them). Every request must succeed (param.cgi answers during a
restart too).

It prints the operations done, containers lost, what was left after the stop (processes of the
app's user, mounts on the product's paths), the application's descriptors and RSS after a
first round of every operation and at the end, and failed requests; it exits non-zero naming
each target missed: containers lost 0, leftovers 0, descriptors grown 0, RSS grown at most
2 MiB, failed requests 0. Run as root.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from bench.probes import TlsClient, plain_ping, wait_until
from bench.restart import IMAGE, _http_ok, _workload
from bench.targets import Targets
from tests import pki
from tests.e2e.front import Front, docker, dockerd_pids, processes_mentioning

APP_USER = "acap-dockerdwrapper"
GROUP = "root.dockerdwrapper"
RSS_GROWTH = 2 * 1024 * 1024
READERS = 100
STOPPED_AS_THE_README_SAYS = "it would not find the running containers: restarting everything"
# What leaves dockerd running (the README's table): everything else restarts it.
RESTART_FREE = frozenset({"an identical re-upload", "daemon.json changed", "a hundred readers"})


@dataclass
class Soak:
    root: Path
    front: Front
    client: TlsClient
    authority: pki.Authority
    key: rsa.RSAPrivateKey
    rng: random.Random
    use_tls: bool = True
    ipc: bool = False
    level: str = "warn"
    app_level: str = "info"
    labels: int = 0
    ticker: str = ""
    port: int = 0
    sleeper: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    done: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    stopped_as_said: int = 0
    missing: set[int] = field(default_factory=set)  # the ticker's lines found missing so far
    killed_in_flight: list[str] = field(default_factory=list)  # lines a dockerd killed -9 had read, not logged
    failed: list[str] = field(default_factory=list)

    # The docker CLI, over whichever socket the settings give.
    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        if self.use_tls:
            return self.client.docker(self.root / "docker")(*args)
        return docker(*args, host="tcp://127.0.0.1:2375", config=self.root / "docker")

    def answers(self) -> bool:
        return self.client.ping() if self.use_tls else plain_ping()

    def request(self, what: str, *args: str, path: str, expect: tuple[int, ...] = (200, 204)) -> str:
        answer = self.front.curl(*args, path=path)
        if answer.status not in expect:
            self.failed.append(f"{what}: {answer.status} {answer.body.strip()[:200]}")
        return answer.headers

    # The containers.
    def start_workload(self) -> None:
        self.ticker, self.port = _workload(self.root / "docker", self.client)
        self.missing = set()
        sleeper = self.docker("run", "-d", "--stop-timeout", "1", "--network", "none", IMAGE, "sleep", "1000000")
        assert sleeper.returncode == 0, sleeper.stderr
        self.sleeper = sleeper.stdout.strip()
        self.pids = {name: self.pid(name) for name in (self.ticker, self.sleeper)} | {"web": self.web_pid()}

    def web_pid(self) -> int:
        running = self.docker("ps", "-q", "--no-trunc", "--filter", f"publish={self.port}").stdout.split()
        return self.pid(running[0]) if running else 0

    def pid(self, container: str) -> int:
        done = self.docker("inspect", "-f", "{{.State.Pid}}", container)
        return int(done.stdout.strip() or 0)

    def check(self, operation: str) -> None:
        """After ``operation``: the same pids, every line of the ticker, the published page."""
        now = {name: self.pid(name) for name in (self.ticker, self.sleeper)} | {"web": self.web_pid()}
        for name, pid in self.pids.items():
            if now[name] != pid:
                self.lost.append(f"{name[:12]}: pid {pid} became {now[name] or 'none'}, after {operation}")
        lines = [int(line) for line in self.docker("logs", self.ticker).stdout.split()]
        missing = sorted(set(range(1, max(lines, default=0) + 1)) - set(lines) - self.missing)
        if missing:  # each line once: the ones missed before are known
            shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
            # A dockerd killed -9 cannot log what it had read: the README says so; any other loss is one.
            losses = self.killed_in_flight if operation == "kill -9 of dockerd" else self.lost
            losses.append(f"ticker: line(s) {shown} of its output missing, after {operation}")
            self.missing |= set(missing)
        try:
            wait_until(lambda: _http_ok(self.port), timeout=10)
        except TimeoutError:
            self.lost.append(f"web: the published port {self.port} does not answer, after {operation}")
        self.pids = now  # a changed pid is said once; the next checks compare with the containers as they are

    # The operations.
    def settled(self, mark: int, operation: str) -> None:
        """Status 0 set after ``mark`` if the operation restarts dockerd, else Status 0 untouched;
        the API answering."""
        if operation in RESTART_FREE and "Parameters changed: Status=" in self.front.log()[mark:]:
            self.failed.append(f"{operation} restarted dockerd")
        self.front.wait_status("0 RUNNING", since=None if operation in RESTART_FREE else mark, timeout=120)
        wait_until(self.answers, timeout=120)
        if STOPPED_AS_THE_README_SAYS in self.front.log()[mark:]:
            self.stopped_as_said += 3
            for container in (self.ticker, self.sleeper):
                self.docker("rm", "-f", container)
            self.docker("rm", "-f", *self.docker("ps", "-aq", "--filter", f"publish={self.port}").stdout.split())
            if not self.use_tls:  # the workload is made over TLS
                self.use_tls, mark = True, self.front.mark()
                self.update(UseTLS="yes")
                self.front.wait_status("0 RUNNING", since=mark, timeout=120)
                wait_until(self.answers, timeout=120)
            self.start_workload()
            return
        self.check(operation)

    def upload(self, name: str, data: bytes) -> str:
        (self.root / "upload" / name).write_bytes(data)
        return self.request(f"upload {name}", "-F", f"file=@{self.root / 'upload' / name}", "-X", "POST",
                            path=f"/local/dockerdwrapper/{name}")  # fmt: skip

    def new_certificate(self) -> None:
        self.upload("server-cert.pem", self.authority.server_set(key=self.key).server_cert)

    def new_set(self) -> None:
        files = self.authority.server_set(key=self.key).by_name()
        args = []
        for name, data in files.items():
            (self.root / "upload" / name).write_bytes(data)
            args += ["-F", f"{name}=@{self.root / 'upload' / name}"]
        self.request("upload the set", *args, "-X", "POST", path="/local/dockerdwrapper/tls")

    def identical(self) -> None:
        stored = (self.front.localdata / "ca.pem").read_bytes()
        if "X-Dockerd-Restart: unchanged" not in self.upload("ca.pem", stored):
            self.failed.append("an identical ca.pem was not answered X-Dockerd-Restart: unchanged")

    def update(self, **settings: str) -> None:
        pairs = "&".join(f"{GROUP}.{name}={value}" for name, value in settings.items())
        self.request(f"update {pairs}", path=f"/axis-cgi/param.cgi?action=update&{pairs}")

    def use_tls_switch(self) -> None:
        self.use_tls = not self.use_tls
        self.update(UseTLS="yes" if self.use_tls else "no")

    def ipc_switch(self) -> None:
        self.ipc = not self.ipc
        self.update(IPCSocket="yes" if self.ipc else "no")

    def dockerd_level(self) -> None:
        self.level = self.rng.choice([level for level in ("debug", "info", "warn", "error") if level != self.level])
        self.update(DockerdLogLevel=self.level)

    def application_level(self) -> None:
        self.app_level = "debug" if self.app_level == "info" else "info"
        self.update(ApplicationLogLevel=self.app_level)

    def daemon_json(self) -> None:
        self.labels += 1
        document = self.root / "upload" / "daemon.json"
        document.write_text(json.dumps({"labels": [f"soak={self.labels}"]}))
        self.request("daemon.json", "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                     f"@{document}", path="/local/dockerdwrapper/daemon.json")  # fmt: skip

    def kill_dockerd(self) -> None:
        for pid in dockerd_pids(self.front.app_dir):
            os.kill(pid, signal.SIGKILL)

    def kill_containerd(self) -> None:
        os.kill(int(re.findall(r"containerd up \(pid (\d+)\)", self.front.log())[-1]), signal.SIGKILL)

    def readers(self) -> None:
        """A hundred param.cgi lists at once, each one answered."""
        failures: list[str] = []

        def read() -> None:
            answer = self.front.curl(path=f"/axis-cgi/param.cgi?action=list&group={GROUP}")
            if answer.status != 200 or f"{GROUP}.Status=" not in answer.body:
                failures.append(f"a reader: {answer.status}")

        threads = [threading.Thread(target=read) for _ in range(READERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.failed += failures

    def operations(self) -> dict[str, Callable[[], None]]:
        return {
            "a new server certificate": self.new_certificate,
            "a new set": self.new_set,
            "an identical re-upload": self.identical,
            "UseTLS switched": self.use_tls_switch,
            "IPCSocket switched": self.ipc_switch,
            "DockerdLogLevel changed": self.dockerd_level,
            "ApplicationLogLevel changed": self.application_level,
            "daemon.json changed": self.daemon_json,
            "kill -9 of dockerd": self.kill_dockerd,
            "kill -9 of containerd": self.kill_containerd,
            "a hundred readers": self.readers,
        }

    def step(self, name: str) -> None:
        mark = self.front.mark()
        self.operations()[name]()
        self.settled(mark, name)
        self.done[name] += 1


def application_pid(front: Front) -> int:
    (line,) = processes_mentioning(f"acap_http run --stdout --app-dir {front.app_dir}")
    return int(line.split(":")[0])


def rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.findall(r"VmRSS:\s+(\d+) kB", status)[0]) * 1024


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def leftovers(front: Front) -> list[str]:
    """What is left of the product after its stop: processes of the app's user or on its paths, mounts."""
    users = subprocess.run(["ps", "-u", APP_USER, "-o", "pid=,args="], capture_output=True, text=True, check=False)
    found = users.stdout.splitlines() + processes_mentioning(str(front.app_dir))
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return found + [line for line in mounts if str(front.app_dir) in line]


def quiet(pid: int) -> tuple[int, int]:
    """(descriptors, RSS) of the application once its requests are done: the lowest of a few looks."""
    looks = []
    for _ in range(10):
        time.sleep(0.2)
        looks.append((descriptors(pid), rss(pid)))
    return min(look[0] for look in looks), min(look[1] for look in looks)


def _print_losses(soak: Soak, targets: Targets) -> None:
    print(
        f"containers lost: {len(soak.lost)}  {targets.check('containers lost 0', not soak.lost)}"
        f"  (stopped as the README says, and started again: {soak.stopped_as_said})"
    )
    for what in soak.lost:
        print(f"  lost: {what}")
    print(
        f"ticker lines a dockerd killed -9 had read and not logged: {len(soak.killed_in_flight)} (the README's table)"
    )
    for what in soak.killed_in_flight:
        print(f"  in flight: {what}")


def main() -> int:
    if os.geteuid() != 0:
        print("make soak runs dockerd and creates users: run it as root", file=sys.stderr)
        return 2
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    seed = int(os.environ.get("SOAK_SEED") or random.randrange(10**6))
    print(f"soak: {minutes:g} minutes, rootless, seed {seed} (SOAK_SEED={seed} repeats the stream)")
    root = Path(tempfile.mkdtemp(prefix="acap-http-soak-"))
    root.chmod(0o755)
    (root / "upload").mkdir()
    authority, key = pki.Authority(), pki.rsa_key()
    client = TlsClient(authority.client_files(root / "client"))
    front = Front(app_dir=root / "product", log_path=root / "up.log", settings=None)
    targets = Targets()
    front.start()
    try:
        soak = Soak(root, front, client, authority, key, random.Random(seed))
        soak.new_set()
        wait_until(client.ping, timeout=120)
        soak.start_workload()
        pid = application_pid(front)
        first_rss = rss(pid)
        names = list(soak.operations())
        for name in names:  # a first round of each: what the code paths allocate once is allocated
            soak.step(name)
        fds_start, rss_start = quiet(pid)
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            soak.step(soak.rng.choice(names))
        fds_end, rss_end = quiet(pid)
        assert application_pid(front) == pid, "the application was replaced"
    finally:
        front.stop()
    deadline = time.monotonic() + 10
    while leftovers(front) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = leftovers(front)

    print(
        f"operations done: {sum(soak.done.values())} ("
        + ", ".join(f"{name} {count}" for name, count in sorted(soak.done.items()))
        + ")"
    )
    _print_losses(soak, targets)
    print(f"left after the stop: {len(left)}  {targets.check('nothing left after the stop', not left)}")
    for what in left[:10]:
        print(f"  left: {what}")
    print(
        f"application descriptors: {fds_start} after the first round, {fds_end} at the end  "
        f"{targets.check('no descriptor leaked', fds_end <= fds_start)}"
    )
    growth = rss_end - rss_start
    print(
        f"application RSS: {first_rss / 2**20:.1f} MiB at start, {rss_start / 2**20:.1f} MiB after the first round, "
        f"{rss_end / 2**20:.1f} MiB at the end: {growth / 2**20:+.2f} MiB  "
        f"{targets.check('RSS growth at most 2 MiB', growth <= RSS_GROWTH)}"
    )
    print(f"failed requests: {len(soak.failed)}  {targets.check('no failed request', not soak.failed)}")
    for what in soak.failed[:10]:
        print(f"  failed: {what}")
    verdict = targets.verdict()
    if verdict == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"(the run's files, the log among them: {root})")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
