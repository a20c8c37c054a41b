"""The API's front (--tls-by front) against dockerd's own TLS (--tls-by dockerd), side by side in
one run, rootful (both listen on the host itself):

- a rotation: 20 new server sets while a client polls /_ping every 10 ms over mutual TLS (every
  request on a new connection) and a ``docker logs -f`` stream is open; target: no failed
  request, the stream goes on, dockerd keeps its pid;
- latency: the median of 200 GET /_ping on one kept-alive mutual-TLS connection; target: the
  front at most 1.2 x dockerd's own;
- new connections: 8 clients, each a new mutual-TLS connection and a /_ping after another, for
  3 s; target: the front at least 0.8 x dockerd's own;
- throughput: ``docker load`` of a 256 MiB image, then ``docker save`` of it; target: at least
  0.9 x dockerd's own, each way;
- memory: the application's resident memory, idle with dockerd running; target: the front adds
  at most 5 MiB.

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


def main() -> int:
    if os.geteuid() != 0:
        print("the front's bench runs dockerd: run it as root", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-front-bench-"))
    root.chmod(0o755)
    targets = Targets()
    try:
        image = big_image(root / "big.tar")
        results = {tls_by: measure(root / tls_by, tls_by, image) for tls_by in ("dockerd", "front")}
        report(results, targets)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return targets.verdict()


def measure(root: Path, tls_by: str, image: Path) -> dict[str, float]:
    root.mkdir(mode=0o755)
    authority = pki.Authority()
    front = Front(app_dir=root / "app", log_path=root / "up.log", settings=None,
                  extra_args=("--rootful", "--tls-by", tls_by))  # fmt: skip
    front.start()
    try:
        upload(front, root, authority.server_set())
        client = TlsClient(authority.client_files(root / "client"))
        wait_until(client.ping, timeout=60)
        time.sleep(2)  # dockerd settled: the idle memory is not a start's
        found = {"memory (MiB)": resident_mib(front)}
        found["latency (ms)"] = kept_alive_latency(client) * 1000
        found["connections per s"] = connections_per_second(client)
        run = client.docker(root / "docker-config")
        loads, saves = [], []
        for _ in range(3):  # each load a new image for dockerd: the one before removed
            run("rmi", "-f", IMAGE)
            loads.append(timed(lambda: run("load", "-i", str(image))))
            saves.append(timed(lambda: run("save", "-o", str(root / "saved.tar"), IMAGE)))
            (root / "saved.tar").unlink(missing_ok=True)
        found["load (s)"], found["save (s)"] = statistics.median(loads), statistics.median(saves)
        if tls_by == "front":
            found |= rotations(front, root, authority, client)
        return found
    finally:
        front.stop()


def upload(front: Front, root: Path, server: pki.ServerSet) -> None:
    args = []
    for name, data in server.by_name().items():
        (root / name).write_bytes(data)
        args += ["-F", f"{name}=@{root / name}"]
    assert front.curl(*args, "-X", "POST", path="/local/dockerdwrapper/tls").status == 204


def resident_mib(front: Front) -> float:
    """The resident memory of ``acap-http run`` (the application) under this ``up``."""
    return rss(application_pid(front)) / 2**20


def kept_alive_latency(client: TlsClient, count: int = 200) -> float:
    connection = http.client.HTTPSConnection("127.0.0.1", TLS_PORT, context=client.context, timeout=10)
    times = []
    try:
        for _ in range(count + 10):
            began = time.perf_counter()
            connection.request("GET", "/_ping")
            assert connection.getresponse().read() == b"OK"
            times.append(time.perf_counter() - began)
    finally:
        connection.close()
    return statistics.median(times[10:])  # the first ones warm up


def connections_per_second(client: TlsClient, clients: int = 8, seconds: float = 3.0) -> float:
    done = [0] * clients
    until = time.monotonic() + seconds

    def one(index: int) -> None:
        while time.monotonic() < until:
            if client.ping():
                done[index] += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def rotations(
    front: Front, root: Path, authority: pki.Authority, client: TlsClient, count: int = 20
) -> dict[str, float]:
    """20 new server sets with a poller and a logs -f open; failures, stream lines, dockerd's pid."""
    run = client.docker(root / "docker-config")
    tools = busybox_image(root / "busybox.tar", ("sh", "echo", "sleep"))
    assert run("import", str(tools), "acap-http-bench/busybox").returncode == 0
    ticker = run("run", "-d", "--network", "none", "acap-http-bench/busybox", "sh", "-c", TICKER).stdout.strip()
    certs = client.directory
    follow = subprocess.Popen(
        ["docker", "--tlsverify", f"--tlscacert={certs}/ca.pem", f"--tlscert={certs}/cert.pem",
         f"--tlskey={certs}/key.pem", "-H", f"tcp://127.0.0.1:{TLS_PORT}", "logs", "-f", ticker],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, DOCKER_CONFIG=str(root / "docker-config")),
    )  # fmt: skip
    lines: list[str] = []
    assert follow.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    failures, polls = [0], [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.01):
            polls[0] += 1
            if not client.ping():
                failures[0] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    (pid,) = dockerd_pids(front.app_dir)
    try:
        for _ in range(count):
            upload(front, root, authority.server_set())
            time.sleep(0.1)
        seen = len(lines)
        wait_until(lambda: len(lines) > seen + 3, timeout=10)
    finally:
        stop.set()
        poller.join()
        follow.kill()
        follow.wait()
        reader.join(5)
        follow.stdout.close()
    return {
        "rotation: failed requests": float(failures[0]),
        "rotation: requests": float(polls[0]),
        "rotation: dockerd restarted": float(dockerd_pids(front.app_dir) != [pid]),
        "rotation: stream lines": float(len(lines)),
    }


def timed(action: object) -> float:
    began = time.monotonic()
    done = action()  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    return time.monotonic() - began


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


def report(results: dict[str, dict[str, float]], targets: Targets) -> None:
    own, front = results["dockerd"], results["front"]
    print("\nthe API's front against dockerd's own TLS, rootful   dockerd's   front   ratio")
    rows: list[tuple[str, str, str, Callable[[float], bool] | None]] = [
        ("latency, kept-alive /_ping (ms, median of 200)", "latency (ms)", "at most 1.2", lambda r: r <= 1.2),
        ("new connections per second (8 clients)", "connections per s", "at least 0.8", lambda r: r >= 0.8),
        ("docker load, 256 MiB (s, median of 3)", "load (s)", "", None),
        ("docker save, 256 MiB (s, median of 3)", "save (s)", "", None),
        ("idle memory (MiB)", "memory (MiB)", "", None),
    ]
    for label, key, wanted, ok in rows:
        ratio = front[key] / own[key]
        verdict = f"target {wanted}: {targets.check(label, ok(ratio))}" if ok is not None else ""
        print(f"  {label:<48} {own[key]:>9.2f} {front[key]:>7.2f} {ratio:>6.2f}  {verdict}")
    for key in ("load (s)", "save (s)"):
        speed = own[key] / front[key]  # the front's throughput against dockerd's own
        print(f"  throughput of {key[:4]}: {speed:.2f} x dockerd's own; target at least 0.9: "
              f"{targets.check(f'{key[:4]} throughput', speed >= 0.9)}")  # fmt: skip
    added = front["memory (MiB)"] - own["memory (MiB)"]
    print(f"  memory the front adds: {added:+.1f} MiB; target at most 5: {targets.check('front memory', added <= 5)}")
    failed, requests = front["rotation: failed requests"], front["rotation: requests"]
    print(f"  20 rotations: {failed:.0f} failed of {requests:.0f} requests polled every 10 ms; target 0: "
          f"{targets.check('rotation failures', failed == 0)}")  # fmt: skip
    restarted, streamed = front["rotation: dockerd restarted"], front["rotation: stream lines"]
    verdict = targets.check("rotation restarts nothing", not restarted)
    print(f"  dockerd restarted by them: {'yes' if restarted else 'no'} ({verdict}); logs -f lines: {streamed:.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
