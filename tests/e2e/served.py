"""A running ``acap-http serve``: real gunicorn over HTTPS on a free loopback port, its users'
passwords, systemd's notifications on a socket the test binds, and real curl --anyauth to it."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.front import free_port

PREFIX = "/local/dockerdwrapper/"
PARAM_CGI = "/axis-cgi/param.cgi"


class Served:
    def __init__(self, root: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.extra_args = extra_args
        self.app_dir = root / "app"
        self.port = free_port()
        self.log = root / "serve.log"
        self.passwords = {"admin": "admin-pw", "viewer": "viewer-pw", "operator": "operator-pw"}
        self.notify_path = root / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify_path.chmod(0o777)  # as systemd's own: the worker runs as the app's user
        self.notify.settimeout(0.2)
        self.notes: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert(self) -> Path:
        return self.app_dir / "serve" / "tls-cert.pem"

    def start(self) -> None:
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path), ACAP_HTTP_PASSWORD=self.passwords["admin"],
                   ACAP_HTTP_VIEWER_PASSWORD=self.passwords["viewer"],
                   ACAP_HTTP_OPERATOR_PASSWORD=self.passwords["operator"])  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "acap_http", "serve", "--stdout", "--listen", f"127.0.0.1:{self.port}",
                 "--app-dir", str(self.app_dir), *self.extra_args],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def notes_until(self, text: str, timeout: float = 60, since: int = 0) -> list[str]:
        """The notifications received until one holds ``text`` (one from ``since`` on)."""
        deadline = time.monotonic() + timeout
        while not any(text in note for note in self.notes[since:]):
            assert time.monotonic() < deadline, f"{text!r} not notified; got {self.notes}\n{self.log.read_text()}"
            with contextlib.suppress(TimeoutError):
                self.notes.append(self.notify.recv(4096).decode())
        return self.notes

    def curl(
        self, *args: str, path: str, user: str = "admin", password: str | None = None, timeout: float = 60
    ) -> tuple[int, str]:
        secret = password if password is not None else self.passwords[user]
        done = subprocess.run(
            ["curl", "-sS", "--cacert", str(self.cert), "--anyauth", "-u", f"{user}:{secret}", "-o", "-",
             "-w", "\n%{http_code}", *args, self.url + path],
            capture_output=True, timeout=timeout, check=True,
        )  # fmt: skip
        body, _, code = done.stdout.decode().rpartition("\n")  # bytes: CR LF stays CR LF
        return int(code), body

    def status(self) -> str:
        return self.curl(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.Status")[1].strip().partition("=")[2]

    def wait_status(self, wanted: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.status() != wanted:
            assert time.monotonic() < deadline, f"Status is {self.status()}:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)

    def worker(self) -> int:
        return int(re.findall(r"Booting worker with pid: (\d+)", self.log.read_text())[-1])
