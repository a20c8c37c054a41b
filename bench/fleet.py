"""``make fleet-bench N=10``: a rolling rotation of N instances of the product by the rotation
playbook, as a fleet operator runs it, with a ticker container on every host.

It prints: the wall time of the rotation (every host's certificate renewed, one host at a time),
each host's longest API outage (polled every 10 ms over mutual TLS), containers lost (a ticker
on every host must keep its pid and every line; target 0), and a re-run's changed count and
dockerd restarts (target 0 and 0). Run as root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from acap_http.servers.fleet import Fleet
from bench.probes import Poller, TlsClient
from tests.e2e.front import dockerd_pids
from tests.e2e.test_fleet import rotate

IMAGE = "bench/busybox:latest"
TICKER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"


def _image(root: Path) -> Path:
    image = root / "busybox.tar"
    with tarfile.open(image, "w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        for tool in ("sh", "echo", "sleep"):
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return image


def _tickers(fleet: Fleet, root: Path) -> tuple[dict[str, TlsClient], dict[str, tuple[str, str]]]:
    """A client of every host (the operator's pair the rotation made), and a ticker on each: id and pid."""
    client_dir = root / "client"
    client_dir.mkdir()
    pki = fleet.base / "pki"
    for source, target in (("ca.pem", "ca.pem"), ("client-cert.pem", "cert.pem"), ("client-key.pem", "key.pem")):
        shutil.copy(pki / source, client_dir / target)
    image = _image(root)
    tickers = {}
    clients = {each.name: TlsClient(client_dir, each.address) for each in fleet.instances}
    for each in fleet.instances:
        run = clients[each.name].docker(root / "docker-config")
        assert run("import", str(image), IMAGE).returncode == 0
        started = run("run", "-d", "--stop-timeout", "1", "--network", "none", IMAGE, "sh", "-c", TICKER)
        ticker = started.stdout.strip()
        tickers[each.name] = (ticker, run("inspect", "-f", "{{.State.Pid}}", ticker).stdout.strip())
    return clients, tickers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("make fleet-bench starts an app user per instance: run it as root", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-fleet-bench-"))
    root.chmod(0o755)
    fleet = Fleet(root / "fleet", args.count)
    try:
        fleet.start()
        code, _, output = rotate(fleet)  # a first set everywhere (not timed)
        assert code == 0, output
        clients, tickers = _tickers(fleet, root)
        pollers = {name: Poller(client.ping) for name, client in clients.items()}
        began = time.monotonic()
        code, _, output = rotate(fleet, "-e", "rotate_renew_before=100000")
        wall = time.monotonic() - began
        assert code == 0, output
        time.sleep(0.5)
        gaps = {name: poller.longest_gap() for name, poller in pollers.items()}
        for poller in pollers.values():
            poller.stop()
        lost = 0
        for each in fleet.instances:
            run = clients[each.name].docker(root / "docker-config")
            ticker, pid = tickers[each.name]
            lines = [int(line) for line in run("logs", ticker).stdout.split()]
            same = run("inspect", "-f", "{{.State.Pid}}", ticker).stdout.strip() == pid
            lost += 0 if same and lines == list(range(1, len(lines) + 1)) else 1
        before = {each.name: dockerd_pids(each.app_dir) for each in fleet.instances}
        code, again, output = rotate(fleet)
        assert code == 0, output
        restarts = sum(dockerd_pids(each.app_dir) != before[each.name] for each in fleet.instances)
        print(f"\nrolling rotation of {args.count} hosts (one at a time): {wall:.1f} s in all, "
              f"{wall / args.count:.1f} s a host")  # fmt: skip
        print("API outage per host (longest, polled every 10 ms):")
        print("  " + "  ".join(f"{name} {gap * 1000:.0f} ms" for name, gap in gaps.items()))
        print(f"  median {statistics.median(gaps.values()) * 1000:.0f} ms, max {max(gaps.values()) * 1000:.0f} ms")
        print(f"containers lost: {lost} of {args.count} tickers (target 0)")
        print(f"re-run: changed={sum(h['changed'] for h in again.values())} (target 0), "
              f"dockerd restarts={restarts} (target 0)")  # fmt: skip
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
