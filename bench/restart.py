"""``make bench``: what a restart made by the product costs the people using dockerd and its
containers, measured side by side in one run, in both modes, with containers running.

(a) a bare restart of the same layout (``bench/bare.py``: the product's holder, containerd
    and dockerd command line, no supervisor): SIGTERM to dockerd until the client's first
    answer from the new one;
(b) 10 restarts through the product, from the moment the operator asks (the upload or
    update is sent, as (a)'s clock starts when the restart is asked) to the first answer
    of the new dockerd to a client (the request's own time is shown apart): 5 server
    certificates of one CA in turn (proved by the certificate the client is served), 2
    UseTLS switches (the other port answers) and 3 log level changes (docker info's Debug
    flips); meanwhile, every 10 ms, the API and a container's published port are polled,
    for how long each did not answer. The ratio to (a) takes the certificate rounds: the
    others start a dockerd with other settings (plain TCP: dockerd 20.10 waits 1 s before
    it listens; debug: it logs much more);
(c) a ticker container that runs through all of it: the same pid, and every line, checked
    after each restart; a loss is described (the pid before and after, the missing line
    numbers) with the change after which it was first seen.

It prints medians and the ratio (b)/(a). Targets: restart at most 0.5 s rootless and 0.25 s
rootful, ratio at most 1.10, published-port gap at most 0.5 s, containers lost 0. Then
``acap-http run``'s weight against its targets (``bench/footprint.py``) and the key check
(``bench/keycheck.py``). It exits non-zero, naming them, when a target is missed. Run as root.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from acap_http.servers import app_user
from bench import footprint, keycheck
from bench.probes import PLAIN_PORT, Poller, TlsClient, docker_info_debug, plain_ping, wait_until
from bench.targets import Targets
from tests import pki
from tests.e2e.front import Front, docker, free_port

IMAGE = "bench/busybox:latest"
TICKER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"


def _files(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)


def bare(root: Path, authority: pki.Authority, client: TlsClient, rounds: int, rootless: bool) -> list[float]:
    """(a): restarts of dockerd in the same layout, without the product, the same containers running
    and the same pollers asking (they cost CPU on a small machine, so both sides have them)."""
    app_dir = root / "bare"
    _files(app_dir / "localdata", {**authority.server_set().by_name(), "daemon.json": b"{}\n"})
    command = [sys.executable, "-m", "bench.bare", str(app_dir)]
    user = None
    if rootless:
        user = app_user.ensure()
        app_user.hand_over(user, app_dir)
    driver = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL,
        user=user.uid if user else None, group=user.gid if user else None, extra_groups=[] if user else None,
    )  # fmt: skip
    assert driver.stdin is not None and driver.stdout is not None
    try:
        assert driver.stdout.readline().strip() == "ready"
        wait_until(client.ping)
        _, port = _workload(root / "bare-docker", client)
        pollers = [Poller(client.ping), Poller(lambda: _http_ok(port))]
        times = []
        for _ in range(rounds):
            began = time.monotonic()
            driver.stdin.write("restart\n")
            driver.stdin.flush()
            driver.stdout.readline()  # dockerd has exited
            wait_until(client.ping)
            times.append(time.monotonic() - began)
            time.sleep(0.5)
        for poller in pollers:
            poller.stop()
        return times
    finally:
        driver.stdin.close()
        driver.wait(60)


def _workload(config: Path, client: TlsClient) -> tuple[str, int]:
    """Import busybox, start the ticker and a web server on a published port; (ticker id, web port)."""
    image = config / "busybox.tar"
    config.mkdir(parents=True, exist_ok=True)
    with tarfile.open(image, "w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        for tool in ("sh", "echo", "sleep", "httpd"):
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    run = client.docker(config)
    assert run("import", str(image), IMAGE).returncode == 0
    ticker = run("run", "-d", "--stop-timeout", "1", "--network", "none", IMAGE, "sh", "-c", TICKER)
    port = free_port()
    web = run("run", "-d", "--stop-timeout", "1", "-p", f"127.0.0.1:{port}:80", IMAGE,
              "sh", "-c", "echo hello > /index.html && httpd -f -p 80 -h /")  # fmt: skip
    assert ticker.returncode == 0 and web.returncode == 0, ticker.stderr + web.stderr
    return ticker.stdout.strip(), port


def through_product(root: Path, rounds: int, rootless: bool) -> dict[str, list[float]]:
    """(b) and (c): the 10 restarts through the product, with the pollers running."""
    authority = pki.Authority()
    key = pki.rsa_key()
    certs = [authority.server_set(key=key) for _ in range(5)]
    client = TlsClient(authority.client_files(root / "client"))
    front = Front(app_dir=root / "product", log_path=root / "up.log", settings=None,
                  extra_args=() if rootless else ("--rootful",))  # fmt: skip
    front.start()
    results: dict[str, list[float]] = {"restart (b)": [], "of which the request": [], "restart (b), certificates": [],
                                       "API down": [], "published port gap": []}  # fmt: skip
    losses: dict[str, str] = {}
    try:
        _files(root / "set", certs[0].by_name())
        args = [a for name in certs[0].by_name() for a in ("-F", f"{name}=@{root / 'set' / name}")]
        assert front.curl(*args, "-X", "POST", path="/local/dockerdwrapper/tls").status == 204
        wait_until(client.ping, timeout=60)
        ticker, port = _workload(root / "docker", client)
        pid = _pid(client.docker(root / "docker"), ticker)
        api, web = Poller(lambda: client.ping() or plain_ping()), Poller(lambda: _http_ok(port))
        kinds = ["cert"] * 5 + ["tls"] * 2 + ["level"] * 3
        level, tls_on = "warn", True
        for round_ in range(rounds):
            kind = kinds[round_ % len(kinds)]
            value = "no" if round_ % len(kinds) == 5 else "yes"
            if kind == "level":  # each one a change: debug, info, debug, then info, debug, info …
                level = value = "info" if level == "debug" else "debug"
            api.mark()
            web.mark()
            began = time.monotonic()
            answered = _change(front, client, kind, value, cert=certs[(round_ + 1) % len(certs)].server_cert, root=root)
            tls_on = value == "yes" if kind == "tls" else tls_on
            results["restart (b)"].append(time.monotonic() - began)
            results["of which the request"].append(answered - began)
            if kind == "cert":  # the same settings as the bare restarts: the fair comparison
                results["restart (b), certificates"].append(results["restart (b)"][-1])
            time.sleep(0.5)  # let the pollers see the quiet after it
            results["API down"].append(api.longest_gap())
            results["published port gap"].append(web.longest_gap())
            lost = losses.get(ticker) or _lost(_docker(client, root, tls_on), ticker, pid)
            if lost and ticker not in losses:
                losses[ticker] = f"{lost}, first seen after restart {round_ + 1} ({kind} {value})"
        api.stop()
        web.stop()
        results["containers lost"] = [float(len(losses))]
        for container, what in losses.items():
            print(f"  lost: the ticker {container[:12]}: {what}")
    finally:
        front.stop()
    return results


def _change(front: Front, client: TlsClient, kind: str, value: str, *, cert: bytes, root: Path) -> float:
    """Make one change through the product and wait for the new dockerd; when the product answered
    the request (the upload's 204, the update's OK)."""
    if kind == "cert":
        (root / "cert.pem").write_bytes(cert)
        assert front.upload("server-cert.pem", root / "cert.pem").status == 204
        answered = time.monotonic()
        wait_until(lambda: client.served(cert))
    elif kind == "tls":
        front.update(UseTLS=value)
        answered = time.monotonic()
        wait_until(plain_ping if value == "no" else client.ping)
    else:
        front.update(DockerdLogLevel=value)
        answered = time.monotonic()
        wait_until(lambda: docker_info_debug(client) == (value == "debug"))
    return answered


Docker = Callable[..., subprocess.CompletedProcess[str]]


def _docker(client: TlsClient, root: Path, tls_on: bool) -> Docker:
    """The docker CLI against the API as it is served now: TLS, or plain TCP after UseTLS=no."""
    if tls_on:
        return client.docker(root / "docker")
    return lambda *args: docker(*args, host=f"tcp://127.0.0.1:{PLAIN_PORT}", config=root / "docker")


def _pid(run: Docker, container: str) -> int:
    done = run("inspect", "-f", "{{.State.Pid}}", container)
    return int(done.stdout.strip() or 0)


def _lost(run: Docker, container: str, pid: int) -> str | None:
    """What the ticker lost, if anything: its process (the pid now) or lines of its count."""
    now = _pid(run, container)
    if now != pid:
        return f"pid {pid} became {now or 'none'}"
    lines = [int(line) for line in run("logs", container).stdout.split()]
    missing = sorted(set(range(1, max(lines, default=0) + 1)) - set(lines))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
        return f"{len(missing)} lines missing ({shown})"
    if lines != sorted(lines):
        return "lines out of order"
    return None


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=0.2) as answer:
            return bool(answer.read() == b"hello\n")
    except (OSError, http.client.HTTPException):  # refused, reset, or cut mid-answer (IncompleteRead)
        return False


def report(mode: str, results: dict[str, list[float]], target: float, targets: Targets) -> None:
    print(f"\n{mode}: medians over {len(results['restart (b)'])} restarts through the product")
    for name, values in results.items():
        unit = "" if name == "containers lost" else " ms"
        scale = 1 if name == "containers lost" else 1000
        shown = " ".join(f"{value * scale:.0f}" for value in values)
        print(f"  {name:28} {statistics.median(values) * scale:8.0f}{unit}   ({shown})")
    ratio = statistics.median(results["restart (b), certificates"]) / statistics.median(results["bare restart (a)"])
    restart = statistics.median(results["restart (b)"])
    gap = statistics.median(results["published port gap"])
    print(f"  {'ratio (b)/(a), certificates':28} {ratio:8.2f}      (target: at most 1.10: "
          f"{targets.check(f'{mode} ratio {ratio:.2f} > 1.10', ratio <= 1.10)})")  # fmt: skip
    print(
        f"  {'restart target':28} {target * 1000:8.0f} ms   (median above: "
        f"{targets.check(f'{mode} restart {restart * 1000:.0f} ms > {target * 1000:.0f} ms', restart <= target)})"
    )
    print(
        f"  {'published port gap target':28} {500:8.0f} ms   (median above: "
        f"{targets.check(f'{mode} published port gap {gap * 1000:.0f} ms > 500 ms', gap <= 0.5)})"
    )
    lost = results["containers lost"][0]
    targets.check(f"{mode} containers lost {lost:.0f}", lost == 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="restarts per mode (the 10 kinds in turn)")
    parser.add_argument("--modes", default="rootless,rootful")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("make bench runs dockerd and creates the app user: run it as root", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-bench-"))
    root.chmod(0o755)
    targets = Targets()
    try:
        for mode in args.modes.split(","):
            mode_root = root / mode
            mode_root.mkdir(mode=0o755)
            authority = pki.Authority()
            client = TlsClient(authority.client_files(mode_root / "bare-client"))
            rootless = mode == "rootless"
            bare_times = bare(mode_root, authority, client, args.rounds, rootless)
            results = {"bare restart (a)": bare_times, **through_product(mode_root, args.rounds, rootless)}
            report(mode, results, 0.5 if rootless else 0.25, targets)
        footprint.measure(root, targets)
        keycheck.measure(targets)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return targets.verdict()


if __name__ == "__main__":
    raise SystemExit(main())
