"""The two ways to start the product, as processes: ``acap-http up`` (what
``make run`` runs) and ``acap-http run`` (the camera entry point)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acap_http.servers.apache import RUN_AS as FRONT_USER
from tests import pki
from tests.e2e.front import Front, accepts, dockerd_pids, processes_mentioning
from tests.fastcgi import fastcgi_request

LOG_LINE = re.compile(r"^(DEBU|INFO|WARN|ERRO|FATA)\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d\] \S")


def test_up_generates_password_once_and_stops_everything_on_ctrl_c(
    tmp_path: Path, make_front: Callable[..., Front]
) -> None:
    """Without ACAP_HTTP_PASSWORD, up makes a password once (0600), prints how to use it,
    keeps it across restarts, and Ctrl-C leaves nothing running."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.server_set().ca)
    front = make_front(password=None)
    front.start()
    kept = front.app_dir / "front" / "admin.password"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    front.password = kept.read_text().strip()
    banner = front.log()
    assert f"kept in {kept}" in banner
    assert f"-F file=@ca.pem -X POST {front.url}/local/dockerdwrapper/ca.pem" in banner
    assert f"-X DELETE {front.url}/local/dockerdwrapper/ca.pem" in banner
    assert front.upload("ca.pem", ca).status == 204
    runtime_dir = front.runtime_dir()
    assert front.stop(signal.SIGINT) == 0
    assert not runtime_dir.exists()
    assert processes_mentioning(str(runtime_dir)) == []

    front.start()
    assert kept.read_text().strip() == front.password
    assert front.curl("-X", "DELETE", path="/local/dockerdwrapper/ca.pem").status == 204
    assert front.stop() == 0
    assert processes_mentioning(str(front.app_dir)) == []


def test_socket_reaches_apache_without_being_world_writable(front: Front) -> None:
    """The FastCGI socket is 0660 and, under root, in the group of the front's own user; the directory
    with Apache's configuration and users stays root's."""
    sock = front.runtime_dir() / "app" / "fcgi.sock"
    mode = sock.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    assert sock.stat().st_gid == grp.getgrnam(FRONT_USER).gr_gid
    assert front.runtime_dir().stat().st_uid == 0
    assert (front.runtime_dir() / "users.digest").stat().st_uid == 0


def _fastcgi_as(user: str, socket_path: Path, query: str) -> str:
    """A raw FastCGI request claiming the admin's level, sent by a process of ``user``: what it got."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from tests.fastcgi import fastcgi_request\n"
        "try:\n"
        f"    print(fastcgi_request(sys.argv[1], {{'REQUEST_METHOD': 'GET', 'REQUEST_URI': {query!r}, "
        f"'QUERY_STRING': {query.partition('?')[2]!r}, 'REMOTE_USER': 'admin', 'ACAP_ACCESS_LEVEL': 'admin'}}))\n"
        "except OSError as err:\n"
        "    print(type(err).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(socket_path)], user=user, group=grp.getgrgid(
                          pwd.getpwnam(user).pw_gid).gr_name, extra_groups=[], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("user", ["www-data", "nobody"])
def test_only_the_front_gets_an_answer_from_the_socket(front: Front, user: str) -> None:
    """Another site's workers (www-data) or any other user cannot speak FastCGI to the application
    and claim the admin's level: they cannot even reach the socket. The front's own user can."""
    sock = front.runtime_dir() / "app" / "fcgi.sock"
    update = "/axis-cgi/param.cgi?action=update&root.dockerdwrapper.IPCSocket=yes"
    assert _fastcgi_as(user, sock, update).strip() == "PermissionError"
    assert front.curl(path="/axis-cgi/param.cgi?action=list&group=root.dockerdwrapper.IPCSocket").body == (
        "root.dockerdwrapper.IPCSocket=no\r\n"
    )
    listed = _fastcgi_as(FRONT_USER, sock, "/axis-cgi/param.cgi?action=list&group=root.dockerdwrapper.IPCSocket")
    assert "root.dockerdwrapper.IPCSocket=no" in listed


def test_up_on_a_busy_port_fails_cleanly(make_front: Callable[..., Front]) -> None:
    """When Apache cannot listen, up says so, exits non-zero and leaves nothing running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        front = make_front(port=taken.getsockname()[1])
        mark = front.mark()
        with pytest.raises(AssertionError, match="exited with 1"):
            front.start()
    assert "apache2 exited" in front.log()[mark:]
    assert processes_mentioning(str(front.app_dir)) == []


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], Path]]]:
    """Starts ``acap-http run`` as the camera would; none outlives the test."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], Path]:
        process, socket_path = _start_run(tmp_path, *args)
        started.append(process)
        return process, socket_path

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _start_run(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    socket_path = tmp_path / "sockets" / "dockerdwrapper.sock"
    socket_path.parent.mkdir(exist_ok=True)
    env = dict(os.environ, FCGI_SOCKET_NAME=str(socket_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "acap_http", "run", "--app-dir", str(tmp_path / "app"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not accepts(socket_path):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the socket does not accept connections"
        time.sleep(0.02)
    return process, socket_path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_on_fcgi_socket_name_and_stops_on_signal(
    tmp_path: Path, start_run: Callable[..., tuple[subprocess.Popen[str], Path]], signum: int
) -> None:
    """run opens $FCGI_SOCKET_NAME, logs dockerd-style lines, and on SIGTERM/SIGINT
    exits 0 and removes its socket."""
    process, socket_path = start_run("--stdout")
    process.send_signal(signum)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert not socket_path.exists()
    lines = output.strip().splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), output
    assert (tmp_path / "app" / "localdata").is_dir()


def test_run_replaces_a_stale_socket(start_run: Callable[..., tuple[subprocess.Popen[str], Path]]) -> None:
    """A socket left by a killed run does not stop the next one."""
    process, socket_path = start_run("--stdout")
    process.kill()
    process.communicate()
    assert socket_path.is_socket() and not accepts(socket_path)
    process, _ = start_run("--stdout")
    process.terminate()
    process.communicate(timeout=20)
    assert process.returncode == 0


def test_run_without_socket_name_explains(tmp_path: Path) -> None:
    """Started by hand without $FCGI_SOCKET_NAME, run says what it needs."""
    env = {k: v for k, v in os.environ.items() if k != "FCGI_SOCKET_NAME"}
    done = subprocess.run(
        [sys.executable, "-m", "acap_http", "run", "--stdout", "--app-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "FCGI_SOCKET_NAME is not set" in done.stderr


def test_run_stops_on_sighup(start_run: Callable[..., tuple[subprocess.Popen[str], Path]]) -> None:
    """A closed terminal (SIGHUP) stops run as SIGTERM does: exit 0, Status -1, socket gone."""
    process, socket_path = start_run("--stdout")
    process.send_signal(signal.SIGHUP)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Stopping (SIGHUP)" in output and "Status=-1 NOT STARTED" in output
    assert not socket_path.exists()


def test_stop_grace_then_sigkill_with_the_real_dockerd(
    tmp_path: Path, start_run: Callable[..., tuple[subprocess.Popen[str], Path]]
) -> None:
    """--stop-grace 1: a dockerd that does not stop (SIGSTOPped) gets SIGKILL 1 s after SIGTERM,
    not before, and a new one starts."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "params.json").write_text(json.dumps({"TCPSocket": "no", "IPCSocket": "yes"}))
    process, socket_path = start_run("--stdout", "--stop-grace", "1")
    assert process.stdout is not None
    output: queue.SimpleQueue[str] = queue.SimpleQueue()
    stdout = process.stdout

    def pass_lines() -> None:
        for line in stdout:
            output.put(line)

    threading.Thread(target=pass_lines, daemon=True).start()
    lines: list[str] = []

    def read_until(text: str) -> None:
        """Read the app's output until a line (new since the last call) holds ``text``."""
        deadline = time.monotonic() + 60
        while True:
            try:
                lines.append(output.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"{text!r} not written:\n{''.join(lines)}") from None
            if text in lines[-1]:
                return

    read_until("Status=0 RUNNING")
    (dockerd,) = dockerd_pids(app)
    os.kill(dockerd, signal.SIGSTOP)
    began = time.monotonic()
    _fastcgi_update(socket_path, "DockerdLogLevel=debug")
    read_until("sending SIGKILL")
    assert time.monotonic() - began >= 1.0
    assert "still running 1.0 s after SIGTERM" in lines[-1]
    read_until("Status=0 RUNNING")
    assert dockerd_pids(app) != [dockerd]
    process.terminate()
    process.communicate(timeout=60)


def _fastcgi_update(socket_path: Path, pair: str) -> None:
    """An admin's param.cgi update straight to the app's FastCGI socket, as Apache would pass it."""
    query = f"action=update&root.dockerdwrapper.{pair}"
    env = {
        "REQUEST_METHOD": "GET", "REQUEST_URI": f"/axis-cgi/param.cgi?{query}", "QUERY_STRING": query,
        "SCRIPT_NAME": "/axis-cgi/param.cgi", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_USER": "admin", "ACAP_ACCESS_LEVEL": "admin", "CONTENT_LENGTH": "0",
    }  # fmt: skip
    assert b"OK" in fastcgi_request(socket_path, env)
