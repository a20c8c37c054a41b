"""The API's front (--tls-by front) against dockerd's own TLS (--tls-by dockerd), side by side in
one run: two instances at once (dockerd's own on 127.0.0.1, the front on 127.0.0.2), measured in
turns so that the machine's moods fall on both alike; rootful, where both listen on the host
itself, then rootless, where dockerd's own TLS is reached through rootlesskit's port driver (the
old path) and the front's is not.

- a rotation: 20 new server sets while a client polls /_ping every 10 ms over mutual TLS (every
  request on a new connection), a ``docker logs -f`` and a ``docker events`` stream are open, and
  an image is tagged at each rotation; target: no failed request, both streams go on (every tag
  seen), dockerd keeps its pid;
- latency: the median of 200 GET /_ping on one kept-alive mutual-TLS connection to each, in turns;
  target: the front at most 1.2 x dockerd's own;
- new connections: 8 clients, each a new mutual-TLS connection and a /_ping after another, for
  6 x 0.5 s to each in turns; target: the front at least 0.8 x dockerd's own;
- throughput: ``docker load`` of a 256 MiB image, then ``docker save`` of it, 3 times each in turns;
  target: at least 0.9 x dockerd's own, each way;
- memory: the application's resident memory, both idle with dockerd running; target: the front
  adds at most 5 MiB.

``python -m bench.apifront`` (part of ``make bench``); exits non-zero on a miss.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.probes import TLS_PORT, TlsClient, wait_until
from bench.soak import application_pid, rss
from bench.targets import Targets
from tests import pki
from tests.e2e.front import Front, dockerd_pids
from tests.e2e.running import busybox_image

IMAGE = "acap-http-bench/big:latest"
IMAGE_MIB = 256
TICKER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"
ADDRESSES = {"dockerd": "127.0.0.1", "front": "127.0.0.2"}
# Two dockerds at once: neither makes a bridge or touches iptables (the bench's containers have no network).
DAEMON_JSON = {"bridge": "none", "iptables": False}


def main() -> int:
    if os.geteuid() != 0:
        print("the front's bench runs dockerd: run it as root", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-front-bench-"))
    root.chmod(0o755)
    targets = Targets()
    try:
        image = big_image(root / "big.tar")
        for mode, flags in (("rootful", ("--rootful",)), ("rootless", ())):
            report(mode, measure(root / mode, flags, image), targets)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return targets.verdict()


@dataclass
class Side:
    """One instance: ``up`` with its dockerd, and an operator's client of its API."""

    root: Path
    tls_by: str
    flags: tuple[str, ...]
    authority: pki.Authority = field(default_factory=pki.Authority)
    found: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.root.mkdir(mode=0o755, parents=True)
        address = ADDRESSES[self.tls_by]
        self.front = Front(app_dir=self.root / "app", log_path=self.root / "up.log", settings=None,
                           extra_args=(*self.flags, "--tls-by", self.tls_by, "--docker-address", address))  # fmt: skip
        self.front.start()
        (self.root / "daemon.json").write_text(json.dumps(DAEMON_JSON))
        put = self.front.curl("-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                              f"@{self.root / 'daemon.json'}", path="/local/dockerdwrapper/daemon.json")  # fmt: skip
        assert put.status in (200, 204), put
        upload(self.front, self.root, self.authority.server_set(address))
        self.client = TlsClient(self.authority.client_files(self.root / "client"), address)
        self.run = self.client.docker(self.root / "docker-config")

    def stop(self) -> None:
        self.front.stop()


def measure(root: Path, flags: tuple[str, ...], image: Path) -> dict[str, dict[str, float]]:
    sides = [Side(root / tls_by, tls_by, flags) for tls_by in ADDRESSES]
    try:
        for side in sides:
            side.start()
        for side in sides:
            wait_until(side.client.ping, timeout=60)
        time.sleep(2)  # dockerd settled: the idle memory is not a start's
        for side in sides:
            side.found["memory (MiB)"] = resident_mib(side.front)
        latencies = kept_alive_latencies([side.client for side in sides])
        rates = connections_per_second([side.client for side in sides])
        for side, latency, rate in zip(sides, latencies, rates, strict=True):
            side.found["latency (ms)"], side.found["connections per s"] = latency * 1000, rate
        loads: dict[str, list[float]] = {side.tls_by: [] for side in sides}
        saves: dict[str, list[float]] = {side.tls_by: [] for side in sides}
        for _ in range(3):  # each load a new image for dockerd: the one before removed
            for side in sides:
                side.run("rmi", "-f", IMAGE)
                loads[side.tls_by].append(timed(side.run, "load", "-i", str(image)))
                saves[side.tls_by].append(timed(side.run, "save", "-o", str(root / "saved.tar"), IMAGE))
                (root / "saved.tar").unlink(missing_ok=True)
        for side in sides:
            side.found["load (s)"] = statistics.median(loads[side.tls_by])
            side.found["save (s)"] = statistics.median(saves[side.tls_by])
        front = sides[1]
        front.found |= rotations(front)
        return {side.tls_by: side.found for side in sides}
    finally:
        for side in sides:
            if hasattr(side, "front"):
                side.stop()


def upload(front: Front, root: Path, server: pki.ServerSet) -> None:
    args = []
    for name, data in server.by_name().items():
        (root / name).write_bytes(data)
        args += ["-F", f"{name}=@{root / name}"]
    assert front.curl(*args, "-X", "POST", path="/local/dockerdwrapper/tls").status == 204


def resident_mib(front: Front) -> float:
    """The resident memory of ``acap-http run`` (the application) under this ``up``."""
    return rss(application_pid(front)) / 2**20


def kept_alive_latencies(clients: list[TlsClient], count: int = 200) -> list[float]:
    """The median time of a GET /_ping on one kept-alive connection to each, asked in turns."""
    connections = [
        http.client.HTTPSConnection(client.address, TLS_PORT, context=client.context, timeout=10) for client in clients
    ]
    times: list[list[float]] = [[] for _ in clients]
    try:
        for _ in range(count + 10):
            for connection, took in zip(connections, times, strict=True):
                began = time.perf_counter()
                connection.request("GET", "/_ping")
                assert connection.getresponse().read() == b"OK"
                took.append(time.perf_counter() - began)
    finally:
        for connection in connections:
            connection.close()
    return [statistics.median(took[10:]) for took in times]  # the first ones warm up


def connections_per_second(
    clients: list[TlsClient], threads: int = 8, turns: int = 6, seconds: float = 0.5
) -> list[float]:
    """New connections a second, ``threads`` at once, to each in turns of ``seconds``."""
    done = [0] * len(clients)
    for _ in range(turns):
        for index, client in enumerate(clients):
            until = time.monotonic() + seconds

            def one(client: TlsClient = client, index: int = index, until: float = until) -> None:
                while time.monotonic() < until:
                    if client.ping():
                        done[index] += 1

            workers = [threading.Thread(target=one) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    return [count / (turns * seconds) for count in done]


def rotations(side: Side, count: int = 20) -> dict[str, float]:
    """20 new server sets with a poller, a logs -f and an events stream open; failures, stream
    lines, the tags each rotation made that the events stream showed, dockerd's pid."""
    run, certs, root = side.run, side.client.directory, side.root
    tools = busybox_image(root / "busybox.tar", ("sh", "echo", "sleep"))
    assert run("import", str(tools), "acap-http-bench/busybox").returncode == 0
    ticker = run("run", "-d", "--network", "none", "acap-http-bench/busybox", "sh", "-c", TICKER).stdout.strip()
    docker = ["docker", "--tlsverify", f"--tlscacert={certs}/ca.pem", f"--tlscert={certs}/cert.pem",
              f"--tlskey={certs}/key.pem", "-H", f"tcp://{side.client.address}:{TLS_PORT}"]  # fmt: skip
    env = dict(os.environ, DOCKER_CONFIG=str(root / "docker-config"))
    streams = {
        "logs": [*docker, "logs", "-f", ticker],
        "events": [*docker, "events", "--filter", "type=image", "--filter", "event=tag", "--format", "{{.Actor.ID}}"],
    }
    followers = {
        name: subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) for name, argv in streams.items()
    }
    lines: dict[str, list[str]] = {name: [] for name in streams}
    readers = [
        threading.Thread(target=follow, args=(follower, lines[name]), daemon=True)
        for name, follower in followers.items()
    ]
    for reader in readers:
        reader.start()
    failures, polls = [0], [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.01):
            polls[0] += 1
            if not side.client.ping():
                failures[0] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    (pid,) = dockerd_pids(side.front.app_dir)
    try:
        time.sleep(0.5)  # the events stream subscribed
        for turn in range(count):
            upload(side.front, root, side.authority.server_set(side.client.address))
            assert run("tag", "acap-http-bench/busybox", f"acap-http-bench/busybox:rotation-{turn}").returncode == 0
            time.sleep(0.1)
        seen = len(lines["logs"])
        wait_until(lambda: len(lines["logs"]) > seen + 3 and len(lines["events"]) >= count, timeout=10)
    finally:
        stop.set()
        poller.join()
        for follower in followers.values():
            follower.kill()
            follower.wait()
        for reader in readers:
            reader.join(5)
        for follower in followers.values():
            follower.stdout.close()  # type: ignore[union-attr]
    return {
        "rotation: failed requests": float(failures[0]),
        "rotation: requests": float(polls[0]),
        "rotation: dockerd restarted": float(dockerd_pids(side.front.app_dir) != [pid]),
        "rotation: stream lines": float(len(lines["logs"])),
        "rotation: tags seen": float(len(lines["events"])),
    }


def timed(run: Callable[..., subprocess.CompletedProcess[str]], *args: str) -> float:
    began = time.monotonic()
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - began


def follow(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    lines.extend(iter(process.stdout.readline, ""))


def big_image(path: Path) -> Path:
    """A docker-archive of one layer: a file of IMAGE_MIB random MiB."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        data = os.urandom(IMAGE_MIB * 2**20)
        info = tarfile.TarInfo("data")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [IMAGE], "Layers": [f"{diff}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((f"{diff}/layer.tar", layer_bytes), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def report(mode: str, results: dict[str, dict[str, float]], targets: Targets) -> None:
    own, front = results["dockerd"], results["front"]
    path = "rootlesskit's port driver" if mode == "rootless" else "dockerd's own"
    print(f"\nthe API's front against dockerd's own TLS, {mode} ({path})   dockerd's   front   ratio")
    rows: list[tuple[str, str, str, Callable[[float], bool] | None]] = [
        ("latency, kept-alive /_ping (ms, median of 200)", "latency (ms)", "at most 1.2", lambda r: r <= 1.2),
        ("new connections per second (8 clients)", "connections per s", "at least 0.8", lambda r: r >= 0.8),
        ("docker load, 256 MiB (s, median of 3)", "load (s)", "", None),
        ("docker save, 256 MiB (s, median of 3)", "save (s)", "", None),
        ("idle memory (MiB)", "memory (MiB)", "", None),
    ]
    for label, key, wanted, ok in rows:
        ratio = front[key] / own[key]
        verdict = f"target {wanted}: {targets.check(f'{mode} {key}', ok(ratio))}" if ok is not None else ""
        print(f"  {label:<48} {own[key]:>9.2f} {front[key]:>7.2f} {ratio:>6.2f}  {verdict}")
    for key in ("load (s)", "save (s)"):
        speed = own[key] / front[key]  # the front's throughput against dockerd's own
        print(f"  throughput of {key[:4]}: {speed:.2f} x dockerd's own; target at least 0.9: "
              f"{targets.check(f'{mode} {key[:4]} throughput', speed >= 0.9)}")  # fmt: skip
    added = front["memory (MiB)"] - own["memory (MiB)"]
    print(f"  memory the front adds: {added:+.1f} MiB; target at most 5: "
          f"{targets.check(f'{mode} front memory', added <= 5)}")  # fmt: skip
    failed, requests = front["rotation: failed requests"], front["rotation: requests"]
    print(f"  20 rotations: {failed:.0f} failed of {requests:.0f} requests polled every 10 ms; target 0: "
          f"{targets.check(f'{mode} rotation failures', failed == 0)}")  # fmt: skip
    restarted, streamed, tags = (
        front[f"rotation: {key}"] for key in ("dockerd restarted", "stream lines", "tags seen")
    )
    verdict = targets.check(f"{mode} rotation restarts nothing", not restarted)
    events = targets.check(f"{mode} events stream", tags == 20)
    print(f"  dockerd restarted by them: {'yes' if restarted else 'no'} ({verdict}); logs -f lines: {streamed:.0f}; "
          f"tags seen by docker events: {tags:.0f} of 20 ({events})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
