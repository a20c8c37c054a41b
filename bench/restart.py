"""``make bench``: what the product adds to a dockerd restart, measured side
by side in one run, with medians over several rounds.

(a) bare dockerd, started with the product's own command line: SIGTERM to
    exit, and start to the first answered /_ping;
(b) through the product: from the 204 of an upload (and from the OK of a
    param.cgi update) to the first successful ``docker --tlsverify`` on the
    new configuration;
(c) the delay between a child's exit and the runner noticing it;
(d) ``acap-http run``: start-up (process start to FastCGI socket accepting)
    and idle RSS.

It prints the ratio (b)/(a); the target is at most 1.10. Run as root.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from acap_http.servers import app_user
from acap_http.supervisor.command import Command, Host, build, runtime_dir_of
from acap_http.supervisor.housekeeping import prepare
from acap_http.supervisor.runner import Runner
from acap_http.supervisor.settings import Settings
from tests import pki
from tests.e2e.front import accepts

TLS_PORT = 2376
SETTINGS = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms"


def wait_until(condition: Callable[[], bool], timeout: float = 120) -> float:
    """Seconds until ``condition`` holds, asking as fast as it answers."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise TimeoutError("condition not met")
    return time.monotonic() - began


class Certificates:
    """A server CA and client CAs: client k is accepted only by a ca.pem that bundles CA k."""

    def __init__(self, root: Path, clients: int) -> None:
        self.server_ca = pki.Authority("server CA")
        self.server = self.server_ca.server_set("127.0.0.1")
        self.client_cas = [pki.Authority(f"client CA {k}") for k in range(clients)]
        self.clients = []
        for k, authority in enumerate(self.client_cas):
            directory = authority.client_files(root / f"client{k}")
            (directory / "ca.pem").write_bytes(self.server.ca)  # what the client trusts: the server's CA
            self.clients.append(directory)

    def bundle(self, k: int) -> bytes:
        """ca.pem for dockerd: the server CA and client CA k."""
        return self.server.ca + pki.cert_pem(self.client_cas[k].cert)


def tls_ping(client: Path) -> bool:
    context = ssl.create_default_context(cafile=str(client / "ca.pem"))
    context.check_hostname = False
    context.load_cert_chain(str(client / "cert.pem"), str(client / "key.pem"))
    # Short: under rootlesskit a connection is accepted before dockerd listens, then hangs.
    connection = http.client.HTTPSConnection("127.0.0.1", TLS_PORT, context=context, timeout=0.25)
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().read() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def docker_ok(client: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKER_CERT_PATH=str(client), DOCKER_CONFIG=str(client / "config"))
    return subprocess.run(
        ["docker", "--tlsverify", "-H", f"tcp://127.0.0.1:{TLS_PORT}", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def bare(root: Path, certs: Certificates, rootless: bool, rounds: int) -> dict[str, list[float]]:
    """(a): dockerd alone, with the command line the product builds, stopped and started again."""
    app_dir = root / "bare"
    localdata = app_dir / "localdata"
    localdata.mkdir(parents=True)
    (localdata / "ca.pem").write_bytes(certs.bundle(0))
    (localdata / "server-cert.pem").write_bytes(certs.server.server_cert)
    (localdata / "server-key.pem").write_bytes(certs.server.server_key)
    (localdata / "daemon.json").write_text("{}")
    (localdata / "data").mkdir()
    user = app_user.ensure() if rootless else None
    if user:
        app_user.hand_over(user, app_dir)
        for path in localdata.iterdir():
            os.chown(path, user.uid, user.gid)
    host = Host(
        rootless=rootless,
        app_dir=app_dir,
        runtime_dir=runtime_dir_of(user.uid if user else 0),
        address="127.0.0.1",
        path=os.environ["PATH"],
    )
    command = build(SETTINGS, host, localdata / "data")
    results: dict[str, list[float]] = {"start to /_ping": [], "SIGTERM to exit": []}
    for round_ in range(rounds + 1):  # the first round creates the data-root: not counted
        prepare(host, localdata / "data")  # what the product does before every start, too
        began = time.monotonic()
        process = _spawn(command, user)
        wait_until(lambda: tls_ping(certs.clients[0]))
        ready = time.monotonic() - began
        stopping = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        stopped = time.monotonic() - stopping
        if round_:
            results["start to /_ping"].append(ready)
            results["SIGTERM to exit"].append(stopped)
    results["restart (a)"] = [
        a + b for a, b in zip(results["SIGTERM to exit"], results["start to /_ping"], strict=True)
    ]
    return results


def _spawn(command: Command, user: app_user.AppUser | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(command.argv),
        env=dict(command.env),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=[] if user else None,
    )


class Product:
    """``acap-http up`` with its Apache front, driven with curl as an operator would."""

    def __init__(self, root: Path, rootless: bool) -> None:
        self.password = secrets.token_urlsafe(12)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.app_dir = root / "product"
        self.log = root / "up.log"
        command = [sys.executable, "-m", "acap_http", "up", "--listen", f"127.0.0.1:{self.port}"]
        command += ["--app-dir", str(self.app_dir)] + ([] if rootless else ["--rootful"])
        env = dict(os.environ, ACAP_HTTP_PASSWORD=self.password)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: "Press Ctrl-C to stop." in self.log.read_text(errors="replace"), timeout=60)

    def curl(self, *args: str) -> str:
        done = subprocess.run(
            ["curl", "-sS", "--anyauth", "-u", f"admin:{self.password}", "-w", " %{http_code}", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def upload(self, name: str, data: bytes, scratch: Path) -> None:
        source = scratch / name
        source.write_bytes(data)
        url = f"http://127.0.0.1:{self.port}/local/dockerdwrapper/{name}"
        answer = self.curl("-F", f"file=@{source}", "-X", "POST", url)
        assert answer.endswith(" 204"), answer

    def update(self, **settings: str) -> None:
        query = "&".join(f"root.dockerdwrapper.{k}={v}" for k, v in settings.items())
        answer = self.curl(f"http://127.0.0.1:{self.port}/axis-cgi/param.cgi?action=update&{query}")
        assert answer.startswith("OK"), answer

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def through_product(root: Path, certs: Certificates, rootless: bool, rounds: int) -> dict[str, list[float]]:
    """(b): restarts caused by an upload and by a setting, timed from the answer the operator gets."""
    scratch = root / "scratch"
    scratch.mkdir()
    product = Product(root, rootless)
    sock = runtime_dir_of(app_user.ensure().uid if rootless else 0) / "docker.sock"
    results: dict[str, list[float]] = {"upload 204 to docker OK (b)": [], "update OK to docker OK": []}
    try:
        product.upload("ca.pem", certs.bundle(0), scratch)
        product.upload("server-cert.pem", certs.server.server_cert, scratch)
        product.upload("server-key.pem", certs.server.server_key, scratch)
        wait_until(lambda: docker_ok(certs.clients[0], "version").returncode == 0)
        for round_ in range(1, rounds + 1):
            # Only the new ca.pem accepts this round's client: its success proves the new dockerd.
            client = certs.clients[round_]
            product.upload("ca.pem", certs.bundle(round_), scratch)
            results["upload 204 to docker OK (b)"].append(wait_until(partial(_answers, client)))
            # IPCSocket shows which dockerd answers: only the new one has (or lacks) the unix socket.
            ipc = round_ % 2 == 1
            product.update(IPCSocket="yes" if ipc else "no")
            results["update OK to docker OK"].append(wait_until(partial(_new_ipc_state, client, sock, ipc)))
    finally:
        product.stop()
    return results


def _answers(client: Path) -> bool:
    return docker_ok(client, "version").returncode == 0


def _new_ipc_state(client: Path, sock: Path, ipc: bool) -> bool:
    """docker --tlsverify answers, from a dockerd whose unix socket is there exactly when IPCSocket is on
    (asked before and after, so that an old dockerd going away in between cannot pass)."""
    return _unix_ping(sock) == ipc and _answers(client) and _unix_ping(sock) == ipc


def _unix_ping(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as client:
        try:
            client.settimeout(2)
            client.connect(str(path))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return client.recv(64).startswith(b"HTTP/1.0 200")
        except OSError:
            return False


def _set(event: threading.Event, *_: object) -> None:
    event.set()


def notice_delay(rounds: int) -> dict[str, list[float]]:
    """(c): from a child's death to the runner's callback (the original polls once a second)."""
    delays = []
    for _ in range(rounds * 4):
        noticed = threading.Event()
        process = Runner().start(Command(("sleep", "60"), {"PATH": os.environ["PATH"]}), partial(_set, noticed))
        time.sleep(0.05)
        killed = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)
        noticed.wait(5)
        delays.append(time.monotonic() - killed)
    return {"exit to noticed (c)": delays}


def run_startup(root: Path, rounds: int) -> tuple[dict[str, list[float]], list[int]]:
    """(d): acap-http run alone (no dockerd: both sockets off), start-up time and idle RSS."""
    app_dir = root / "run-app"
    app_dir.mkdir()
    (app_dir / "params.json").write_text(json.dumps({"TCPSocket": "no", "IPCSocket": "no"}))
    socket_path = root / "run.sock"
    startups, rss = [], []
    for _ in range(rounds):
        env = dict(os.environ, FCGI_SOCKET_NAME=str(socket_path))
        process = subprocess.Popen(
            [sys.executable, "-m", "acap_http", "run", "--stdout", "--app-dir", str(app_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        startups.append(wait_until(lambda: accepts(socket_path), timeout=30))
        time.sleep(1.0)
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))))
        process.terminate()
        process.wait(30)
    return {"run: start to socket accepting (d)": startups}, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="rootful,rootless")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("make bench runs dockerd and creates the app user: run it as root", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="acap-http-bench-"))
    root.chmod(0o755)
    try:
        for mode in args.modes.split(","):
            mode_root = root / mode
            mode_root.mkdir(mode=0o755)
            certs = Certificates(mode_root, clients=args.rounds + 1)
            rootless = mode == "rootless"
            results = bare(mode_root, certs, rootless, args.rounds)
            results |= through_product(mode_root, certs, rootless, args.rounds)
            print(f"\n{mode} dockerd, medians of {args.rounds} rounds")
            for name, values in results.items():
                rounds = " ".join(f"{value * 1000:.0f}" for value in values)
                print(f"  {name:38} {median_ms(values)}   (rounds: {rounds})")
            ratio = statistics.median(results["upload 204 to docker OK (b)"]) / statistics.median(
                results["restart (a)"]
            )
            print(f"  {'ratio (b)/(a)':38} {ratio:8.2f}   (target: at most 1.10)")
        notice = notice_delay(args.rounds)
        startup, rss = run_startup(root, args.rounds)
        print("\nprocess handling")
        for name, values in (notice | startup).items():
            print(f"  {name:38} {statistics.median(values) * 1000:8.1f} ms")
        print(f"  {'run: idle RSS (d)':38} {statistics.median(rss) / 1024:8.1f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
