"""``acap-http run``'s weight, measured side by side in one run (part of ``make bench``).

- the floor: the resident memory of a bare interpreter, and of one that imported only each
  named dependency, as ``run`` imports it (werkzeug's wrappers and routing, flup's FastCGI
  server, psutil, cryptography's X.509), then all of those together;
- ``run``'s idle resident memory 1 s after it settles: without TLS files; with a stored set
  and a real dockerd started on it (Status 0); after an upload of a new set (Status 0 again);
- ``run``'s start-up: from exec to its FastCGI socket accepting, the median of 5.

Targets: at most 28 MiB idle with a stored set, start-up at most 150 ms.
``python -m bench.footprint`` runs this part alone (as root: ``run`` as root starts dockerd).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from acap_http.status import Status
from bench.probes import wait_until
from bench.targets import Targets
from tests import multipart, pki
from tests.e2e.front import NO_DOCKERD, accepts
from tests.fastcgi import fastcgi_request

TARGET_RSS_MIB = 28.0
TARGET_STARTUP_MS = 150.0
STARTS = 5
MIB = 2**20

FLOORS = {
    "python alone": [],
    "werkzeug": ["werkzeug.wrappers", "werkzeug.routing", "werkzeug.exceptions"],
    "flup": ["flup.server.fcgi"],
    "psutil": ["psutil"],
    "cryptography": ["cryptography.x509", "cryptography.hazmat.primitives.serialization"],
}


def _imported_rss(modules: list[str]) -> float:
    """MiB resident in a fresh interpreter that imported ``modules`` and waits."""
    script = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(flush=True)\nsys.stdin.read()"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()
        return float(psutil.Process(child.pid).memory_info().rss) / MIB
    finally:
        child.kill()
        child.wait()


class Run:
    """``acap-http run`` on its own FastCGI socket, as the camera starts it."""

    def __init__(self, root: Path, settings: dict[str, str], files: dict[str, bytes] | None = None) -> None:
        self.app_dir = root / "app"
        (self.app_dir / "localdata").mkdir(parents=True)
        (self.app_dir / "params.json").write_text(json.dumps(settings))
        for name, data in (files or {}).items():
            (self.app_dir / "localdata" / name).write_bytes(data)
        self.socket = root / "run.sock"
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "acap_http", "run", "--stdout", "--app-dir", str(self.app_dir),
             "--docker-address", "127.0.0.1"],
            env=dict(os.environ, FCGI_SOCKET_NAME=str(self.socket)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: accepts(self.socket), timeout=30)
        self.startup = time.monotonic() - began

    def request(self, method: str, path: str, query: str = "", body: bytes = b"", kind: str = "") -> bytes:
        env = {
            "REQUEST_METHOD": method, "REQUEST_URI": path + (f"?{query}" if query else ""), "QUERY_STRING": query,
            "SCRIPT_NAME": path, "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_USER": "admin", "ACAP_ACCESS_LEVEL": "admin", "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": "localhost", **({"CONTENT_TYPE": kind} if kind else {}),
        }  # fmt: skip
        return fastcgi_request(self.socket, env, body)

    def status(self) -> str:
        answer = self.request("GET", "/axis-cgi/param.cgi", "action=list&group=root.dockerdwrapper.Status")
        return answer.decode(errors="replace").rpartition("Status=")[2].strip()

    def idle_rss(self, status: str) -> float:
        """MiB resident 1 s after Status reads ``status``."""
        wait_until(lambda: self.status() == status, timeout=120)
        time.sleep(1.0)
        return float(psutil.Process(self.process.pid).memory_info().rss) / MIB

    def upload_set(self, files: dict[str, bytes]) -> None:
        parts = [multipart.part(name, data, name) for name, data in files.items()]
        answer = self.request("POST", "/local/dockerdwrapper/tls", body=multipart.body(*parts),
                              kind=multipart.content_type())  # fmt: skip
        assert b"Status: 204" in answer or b"Status: 200" in answer, answer[:300]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def measure(root: Path, targets: Targets) -> None:
    """Print the floor, the idle memory and the start-up of ``run``, against the targets."""
    print("\nacap-http run's weight (resident memory, MiB)")
    floors: dict[str, float] = {}
    imported: list[str] = []
    for name, modules in FLOORS.items():
        floors[name] = _imported_rss(modules)
        imported += modules
        extra = floors[name] - floors["python alone"]
        print(f"  floor: {name:36} {floors[name]:6.1f}" + (f"   (python + {extra:.1f})" if modules else ""))
    without_x509 = _imported_rss([m for m in imported if not m.startswith("cryptography")])
    everything = _imported_rss(imported)
    print(f"  floor: {'werkzeug, flup, psutil together':36} {without_x509:6.1f}   (what run needs idle)")
    print(f"  floor: {'all four together':36} {everything:6.1f}")

    starts, bare = [], 0.0
    for index in range(STARTS):
        run = Run(root / f"start{index}", NO_DOCKERD)
        starts.append(run.startup)
        if index == 0:
            bare = run.idle_rss(Status.NO_SOCKET.value)
        run.stop()
    authority = pki.Authority()
    stored = Run(root / "stored", {}, authority.server_set().by_name())
    try:
        with_set = stored.idle_rss(Status.RUNNING.value)
        stored.upload_set(authority.server_set().by_name())
        after_upload = stored.idle_rss(Status.RUNNING.value)
    finally:
        stored.stop()
    startup_ms = statistics.median(starts) * 1000
    print(f"  run, idle, no TLS files, no dockerd      {bare:6.1f}")
    memory = targets.check(f"idle memory {with_set:.1f} MiB > {TARGET_RSS_MIB:.0f}", with_set <= TARGET_RSS_MIB)
    startup = targets.check(f"start-up {startup_ms:.0f} ms > {TARGET_STARTUP_MS:.0f}", startup_ms <= TARGET_STARTUP_MS)
    print(f"  run, idle, stored set, dockerd running   {with_set:6.1f}   target at most {TARGET_RSS_MIB:.0f}: {memory}")
    print(f"  run, idle, after uploading a set         {after_upload:6.1f}   (cryptography loaded to check it)")
    print(f"  run, start-up to socket accepting: median {startup_ms:.0f} ms of {STARTS} "
          f"({' '.join(f'{s * 1000:.0f}' for s in starts)}); target at most {TARGET_STARTUP_MS:.0f} ms: "
          f"{startup}")  # fmt: skip


def main() -> int:
    if os.geteuid() != 0:
        print("run as root: acap-http run as root starts dockerd", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-footprint-"))
    targets = Targets()
    try:
        measure(root, targets)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return targets.verdict()


if __name__ == "__main__":
    raise SystemExit(main())
