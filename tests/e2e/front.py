"""A running ``acap-http up`` (real Apache, real app process) and the clients
the end-to-end tests talk to it with: real curl, and a raw HTTP client with
digest authentication for requests curl will not send (a short body)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ADMIN = "admin"
PREFIX = "/local/dockerdwrapper/"
GROUP = "root.dockerdwrapper"
UP_COMMAND = (sys.executable, "-m", "acap_http", "up")
# Settings for tests that are not about dockerd: with no socket, Status is 4 and no dockerd starts.
NO_DOCKERD = {"TCPSocket": "no", "IPCSocket": "no"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: str = ""


@dataclass
class Front:
    """``acap-http up`` on a free loopback port with its own app directory."""

    app_dir: Path
    log_path: Path
    password: str | None = field(default_factory=lambda: secrets.token_urlsafe(12))
    viewer_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    operator_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    port: int = field(default_factory=free_port)
    settings: dict[str, str] | None = None  # written to params.json before the first start
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def localdata(self) -> Path:
        return self.app_dir / "localdata"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30) -> None:
        params = self.app_dir / "params.json"
        if self.settings is not None and not params.exists():
            self.app_dir.mkdir(parents=True, exist_ok=True)
            params.write_text(json.dumps(self.settings))
        env = dict(os.environ)
        env.pop("ACAP_HTTP_PASSWORD", None)
        if self.password is not None:
            env["ACAP_HTTP_PASSWORD"] = self.password
        env["ACAP_HTTP_VIEWER_PASSWORD"] = self.viewer_password
        env["ACAP_HTTP_OPERATOR_PASSWORD"] = self.operator_password
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*UP_COMMAND, "--listen", f"127.0.0.1:{self.port}", "--app-dir", str(self.app_dir), *self.extra_args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"acap-http up exited with {self.process.returncode}:\n{self.log()}")
            if "Press Ctrl-C to stop." in self.log()[self._log_offset :]:
                return
            time.sleep(0.05)
        raise AssertionError(f"acap-http up did not come up in {timeout} s:\n{self.log()}")

    def runtime_dir(self) -> Path:
        found = re.findall(r"Serving FastCGI on (\S+)/app/fcgi\.sock", self.log())
        assert found, self.log()
        return Path(found[-1])

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(60)

    def curl(self, *args: str, path: str = "", user: str | None = ADMIN, password: str | None = None) -> Answer:
        """Run real curl against the front; ``user=None`` sends no credentials."""
        with tempfile.TemporaryDirectory() as scratch:
            heads, body = Path(scratch, "heads"), Path(scratch, "body")
            command = ["curl", "-sS", "--max-time", "20", "-D", str(heads), "-o", str(body), "-w", "%{http_code}"]
            if user is not None:
                command += ["--anyauth", "-u", f"{user}:{password if password is not None else self._password(user)}"]
            done = subprocess.run([*command, *args, self.url + path], capture_output=True, check=False)
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            # -D keeps every response's head (100 Continue, the 401 challenge): the last is the answer's.
            last_head = re.split(r"^HTTP/", heads.read_text(errors="replace"), flags=re.M)[-1]
            text = body.read_bytes().decode(errors="replace") if body.exists() else ""
            return Answer(int(done.stdout), text, last_head)

    def status(self) -> str:
        answer = self.curl(path=f"/axis-cgi/param.cgi?action=list&group={GROUP}.Status")
        return answer.body.strip().partition("=")[2]

    def app_log(self) -> str:
        """The log without Apache's access lines, for failure messages."""
        lines = [line for line in self.log().splitlines() if not line.startswith("127.0.0.1 ")]
        return "\n".join(lines[-60:])

    def mark(self) -> int:
        """A point in the log: wait_status(since=mark) waits for a Status set after it."""
        return len(self.log())

    def wait_status(self, expected: str, since: int | None = None, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout

        def reached() -> bool:
            fresh = since is None or f"Parameters changed: Status={expected}" in self.log()[since:]
            return fresh and self.status() == expected

        while not reached():
            current = self.status()
            assert time.monotonic() < deadline, f"Status is {current!r}, not {expected!r}:\n{self.app_log()}"
            time.sleep(0.1)

    def restart_dockerd(self, **settings: str) -> int:
        """Change a setting (DockerdLogLevel, info <-> warn), which restarts dockerd, with ``settings``
        in the same update; the log mark before."""
        listed = self.curl(path=f"/axis-cgi/param.cgi?action=list&group={GROUP}.DockerdLogLevel")
        return self.update(DockerdLogLevel="info" if listed.body.strip().endswith("=warn") else "warn", **settings)

    def wait_log(self, text: str, since: int, timeout: float = 30) -> None:
        """Until ``text`` is in the log after the mark ``since``."""
        deadline = time.monotonic() + timeout
        while text not in self.log()[since:]:
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{self.app_log()}"
            time.sleep(0.05)

    def update(self, **settings: str) -> int:
        """Change settings through param.cgi; returns the log mark from before the change."""
        mark = self.mark()
        pairs = "&".join(f"{GROUP}.{name}={value}" for name, value in settings.items())
        assert self.curl(path=f"/axis-cgi/param.cgi?action=update&{pairs}").body == "OK\r\n"
        return mark

    def _password(self, user: str) -> str:
        return {"viewer": self.viewer_password, "operator": self.operator_password}.get(user, self.password or "")

    def upload(self, name: str, source: Path, **kwargs: str) -> Answer:
        return self.curl("-F", f"file=@{source}", "-X", "POST", path=PREFIX + name, **kwargs)

    def raw(self, method: str, path: str, headers: dict[str, str], body: bytes, timeout: float = 20) -> Answer:
        """One request over a raw connection, digest-authenticated; ``body`` is sent as is,
        whatever Content-Length says, and the connection stays open for the answer."""
        challenge = self._challenge(method, path)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            connection.putheader("Authorization", _digest(challenge, method, path, ADMIN, self.password or ""))
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            connection.send(body)
            response = connection.getresponse()
            return Answer(response.status, response.read().decode(errors="replace"), str(response.headers))
        finally:
            connection.close()

    def _challenge(self, method: str, path: str) -> dict[str, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, headers={"Content-Length": "0"})
            response = connection.getresponse()
            response.read()
            header = response.headers["WWW-Authenticate"]
        finally:
            connection.close()
        assert header and header.startswith("Digest "), header
        return dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest ") :]))


def _digest(challenge: dict[str, str], method: str, path: str, user: str, password: str) -> str:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = md5(f"{user}:{challenge['realm']}:{password}")
    ha2 = md5(f"{method}:{path}")
    response = md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", uri="{path}", '
        f'algorithm=MD5, response="{response}", qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


def docker(
    *args: str, host: str, config: Path, certs: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real docker CLI, its configuration kept in ``config``."""
    tls: list[str] = []
    if certs is not None:
        tls = ["--tlsverify", f"--tlscacert={certs}/ca.pem", f"--tlscert={certs}/cert.pem", f"--tlskey={certs}/key.pem"]
    env = dict(os.environ, DOCKER_CONFIG=str(config))
    return subprocess.run(
        ["docker", *tls, "-H", host, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if text in cmdline:
            found.append(f"{process.pid}: {cmdline}")
    return found


def dockerd_pids(app_dir: Path) -> list[int]:
    """The dockerd processes (not rootlesskit) working on ``app_dir``'s data.

    A child dockerd forks (iptables, docker-proxy, …) shows dockerd's command line until it execs:
    a process whose parent is a dockerd found is such a child, not a second dockerd."""
    found = processes_mentioning(f"--data-root {app_dir}")
    pids = {int(pid) for pid, command in (line.split(": ", 1) for line in found) if command.startswith("dockerd ")}
    return sorted(pid for pid in pids if _parent(pid) not in pids)


def _parent(pid: int) -> int | None:
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return None


def accepts(path: Path) -> bool:
    """Whether a unix socket at ``path`` takes connections."""
    with socket.socket(socket.AF_UNIX) as client:
        try:
            client.connect(str(path))
        except OSError:
            return False
        return True
