"""``make fleet-bench N=10``: a rolling rotation of N instances of the product by the rotation
playbook, as a fleet operator runs it, with a ticker container on every host.

The rotation goes as the playbook's default does: a canary host, then batches of ``--serial`` hosts
(5), with as many forks. It prints, each against its target: the rotation's wall time (every
host's certificate renewed; target 5 s + 1 s a host: 15 s for 10 hosts, 25 s for 20), side by side
with the product's own part in the same run (each host's longest API outage over mutual TLS: seen
when dockerd closes a kept connection, or a ping every 0.1 s fails, then looked at every 10 ms
until it answers; and the time some host was out); the playbook's overhead a host beyond that
part; containers lost (a ticker on every host must keep its pid and every line; target 0); a
re-run's changed count and dockerd restarts (target 0 and 0); and a projection for 1,000 hosts
from the measured batches. It exits non-zero if any target is missed. Run as root.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from acap_http.servers.fleet import Fleet
from bench.probes import Poller, TlsClient
from tests.e2e.front import dockerd_pids
from tests.e2e.test_fleet import PLAYBOOK, rotate, run_playbook
from tests.test_collection_rotation import run_pki

IMAGE = "bench/busybox:latest"
# A line every 50 ms. The pause is the shell's own read with a timeout, on a FIFO nothing writes:
# a sleep process 20 times a second in each of 20 containers took 0.6 of this machine's two cores.
TICKER = "mkfifo /tick; exec 3<>/tick; i=0; while :; do i=$((i+1)); echo $i; read -t 0.05 x <&3; done"
PROJECTED_HOSTS = 1000


def target_wall(count: int) -> float:
    """The rotation's wall time to meet: 15 s for 10 hosts, 25 s for 20."""
    return 5.0 + 1.0 * count


def _image(root: Path) -> Path:
    image = root / "busybox.tar"
    with tarfile.open(image, "w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        for tool in ("sh", "echo", "mkfifo"):
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


def _lost(fleet: Fleet, root: Path, clients: dict[str, TlsClient], tickers: dict[str, tuple[str, str]]) -> int:
    """Tickers that lost their process or a line (or never wrote one)."""
    lost = 0
    for each in fleet.instances:
        run = clients[each.name].docker(root / "docker-config")
        ticker, pid = tickers[each.name]
        lines = [int(line) for line in run("logs", ticker).stdout.split()]
        same = run("inspect", "-f", "{{.State.Pid}}", ticker).stdout.strip() == pid
        lost += 0 if same and lines and lines == list(range(1, len(lines) + 1)) else 1
    return lost


@dataclass(frozen=True)
class Timed:
    """The timed rotation: its wall time, each batch's hosts and seconds, and the rest (start, PKI)."""

    wall: float
    batches: list[tuple[int, float]]

    @property
    def outside_batches(self) -> float:
        return self.wall - sum(seconds for _, seconds in self.batches)


def _seconds(duration: dict[str, str]) -> float:
    start, end = (datetime.datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
    return (end - start).total_seconds()


def timed_rotation(fleet: Fleet, options: list[str]) -> Timed:
    """Every host renewed, timed; the batches' times read from Ansible's JSON report of the run (a
    play entry per batch)."""
    began = time.monotonic()
    done = run_playbook(
        fleet, PLAYBOOK, "-e", f"rotate_pki_dir={fleet.base / 'pki'}", "-e", "rotate_renew_before=100000", *options,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )  # fmt: skip
    wall = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    plays = json.loads(done.stdout)["plays"]
    batches = [
        (len(play["tasks"][0]["hosts"]), _seconds(play["play"]["duration"]))
        for play in plays
        if play["play"]["name"].startswith("Rotate")
    ]
    return Timed(wall, batches)


def outage_union(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of these outages lasted: the product's own part of the roll."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def pki_seconds(root: Path) -> float:
    """Seconds the pki module takes to issue PROJECTED_HOSTS hosts' pairs (and the CA, the client's)."""
    began = time.monotonic()
    servers = {f"host{n}": [f"10.{n // 250}.0.{n % 250 + 1}"] for n in range(PROJECTED_HOSTS)}
    assert run_pki(root, servers=servers)["changed"]
    return time.monotonic() - began


def projection(timed: Timed, serial: int, pki: float) -> tuple[float, str]:
    """Seconds for PROJECTED_HOSTS hosts from this run's figures, and how they were got."""
    canary = timed.batches[0][1]
    size, seconds = max(timed.batches[1:] or timed.batches, key=lambda batch: batch)  # the largest, the longest
    per_batch = seconds * serial / size  # a batch's time grows with its hosts (here all share 2 cores)
    batches = math.ceil((PROJECTED_HOSTS - 1) / serial)
    total = canary + batches * per_batch + timed.outside_batches + pki
    how = (
        f"canary {canary:.1f} s + {batches} batches x {per_batch:.1f} s ({serial} forks, the batch of {size} "
        f"measured{'' if size == serial else f', scaled to {serial}'}) + {timed.outside_batches:.1f} s start and "
        f"PKI as here + {pki:.1f} s the pki module took for {PROJECTED_HOSTS:,} hosts' pairs"
    )
    return total, how


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--serial", type=int, default=5, help="hosts a batch after the canary; as many forks")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("make fleet-bench starts an app user per instance: run it as root", file=sys.stderr)
        return 1
    options = ["-f", str(args.serial), "-e", f"rotate_serial={args.serial}"]
    root = Path(tempfile.mkdtemp(prefix="acap-http-fleet-bench-"))
    root.chmod(0o755)
    fleet = Fleet(root / "fleet", args.count)
    try:
        fleet.start()
        code, _, output = rotate(fleet, *options)  # a first set everywhere (not timed)
        assert code == 0, output
        clients, tickers = _tickers(fleet, root)
        pollers = {name: Poller(client.kept_ping()) for name, client in clients.items()}
        timed = timed_rotation(fleet, options)
        time.sleep(0.5)
        gaps = {name: poller.longest_gap() for name, poller in pollers.items()}
        spans = [poller.longest_span() for poller in pollers.values()]
        for poller in pollers.values():
            poller.stop()
        lost = _lost(fleet, root, clients, tickers)
        before = {each.name: dockerd_pids(each.app_dir) for each in fleet.instances}
        code, again, output = rotate(fleet, *options)
        assert code == 0, output
        changed = sum(h["changed"] for h in again.values())
        restarts = sum(dockerd_pids(each.app_dir) != before[each.name] for each in fleet.instances)
        pki = pki_seconds(root)
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    return report(
        args.count,
        args.serial,
        timed,
        gaps=gaps,
        out=outage_union(spans),
        lost=lost,
        changed=changed,
        restarts=restarts,
        pki=pki,
    )


def report(
    count: int, serial: int, timed: Timed, *, gaps: dict[str, float], out: float, lost: int, changed: int,
    restarts: int, pki: float,
) -> int:  # fmt: skip
    """Print the figures against their targets; 1 if any is missed."""
    target = target_wall(count)
    sizes = "+".join(str(size) for size, _ in timed.batches)
    print(f"\nrolling rotation of {count} hosts (batches {sizes}, {serial} forks): {timed.wall:.1f} s in all, "
          f"{timed.wall / count:.2f} s a host (target {target:.0f} s: {timed.wall / target:.2f} of it)")  # fmt: skip
    print("  each batch: " + ", ".join(f"{size} hosts {seconds:.1f} s" for size, seconds in timed.batches)
          + f"; before the batches (start, PKI): {timed.outside_batches:.1f} s")  # fmt: skip
    print("the product's own part, API outage per host (longest; looked at every 10 ms while out):")
    print("  " + "  ".join(f"{name} {gap * 1000:.0f} ms" for name, gap in gaps.items()))
    print(f"  median {statistics.median(gaps.values()) * 1000:.0f} ms, max {max(gaps.values()) * 1000:.0f} ms; "
          f"some host out for {out:.1f} s of the {timed.wall:.1f} s")  # fmt: skip
    print(f"playbook overhead beyond the product's part: {timed.wall - out:.1f} s, "
          f"{(timed.wall - out) / count:.2f} s a host")  # fmt: skip
    print(f"containers lost: {lost} of {count} tickers (target 0)")
    print(f"re-run: changed={changed} (target 0), dockerd restarts={restarts} (target 0)")
    projected, how = projection(timed, serial, pki)
    print(f"projection for {PROJECTED_HOSTS:,} hosts: {projected:.0f} s ({projected / 60:.1f} min) = {how}")
    print("  assumes: this controller (2 cores) with forks = batch size, every batch as long as the one measured, "
          "hosts restarting as fast as here (here they share the controller's cores: pessimistic), Ansible's "
          "start with 1,000 hosts in the inventory as with these, no failure")  # fmt: skip
    missed = [
        what
        for what, ok in (
            (f"wall {timed.wall:.1f} s > {target:.0f} s", timed.wall <= target),
            (f"{lost} containers lost", lost == 0),
            (f"re-run changed {changed}", changed == 0),
            (f"re-run restarted {restarts} dockerd", restarts == 0),
        )
        if not ok
    ]
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
