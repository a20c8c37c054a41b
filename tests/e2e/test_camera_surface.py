"""The application API and the JSON Param API as a script written for a camera uses them, through
both fronts (``up``: Apache, digest, over HTTP; ``serve``: gunicorn, Basic, over HTTPS) with real
curl, a real rootless dockerd and the docker CLI; and Home Assistant's ``axis`` library opening
the stand-in as it opens a camera."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import httpx
import psutil
import pytest
from axis.device import AxisDevice
from axis.models.configuration import Configuration

from tests import pki
from tests.e2e.front import docker, dockerd_pids
from tests.e2e.running import APP_USER, IMAGE, TLS_HOST, Mode, busybox_image, running_mode
from tests.e2e.served import PARAM_CGI, PREFIX, Served
from tests.waiting import until

LIST = "/axis-cgi/applications/list.cgi"
CONTROL = "/axis-cgi/applications/control.cgi?package=dockerdwrapper&action="
API = "/config/rest/param/v2beta/dockerdwrapper"
# A container that stops as soon as it is asked (docker stop's SIGTERM), with exit code 0.
POLITE = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


class Device(Protocol):
    """One front over the application, as the tests drive it."""

    app_dir: Path

    def ask(self, *args: str, path: str, user: str = "admin", timeout: float = 20) -> tuple[int, str]: ...
    def docker(self, *args: str) -> subprocess.CompletedProcess[str]: ...
    def client(self) -> httpx.Client: ...
    def log(self) -> str: ...
    def restart_server(self) -> None: ...


class Up:
    def __init__(self, mode: Mode) -> None:
        self.mode, self.front, self.app_dir = mode, mode.front, mode.front.app_dir

    def ask(self, *args: str, path: str, user: str = "admin", timeout: float = 20) -> tuple[int, str]:
        answer = self.front.curl("--max-time", str(timeout), *args, path=path, user=user)
        return answer.status, answer.body

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.mode.docker(*args)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.front.url, auth=httpx.DigestAuth("admin", self.front.password or ""))

    def log(self) -> str:
        return self.front.log()

    def restart_server(self) -> None:
        assert self.front.stop() == 0
        self.front.start()


class Serve:
    def __init__(self, served: Served, root: Path) -> None:
        self.served, self.root, self.app_dir = served, root, served.app_dir
        self.authority = pki.Authority()
        self.client_files = self.authority.client_files(root / "client")

    def ask(self, *args: str, path: str, user: str = "admin", timeout: float = 20) -> tuple[int, str]:
        return self.served.curl(*args, path=path, user=user, timeout=timeout)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return docker(*args, host=TLS_HOST, config=self.root / "docker-config", certs=self.client_files)

    def client(self) -> httpx.Client:
        auth = httpx.BasicAuth("admin", self.served.passwords["admin"])
        verify = ssl.create_default_context(cafile=str(self.served.cert))
        return httpx.Client(base_url=self.served.url, auth=auth, verify=verify)

    def log(self) -> str:
        return self.served.log.read_text(errors="replace")

    def restart_server(self) -> None:
        assert self.served.process is not None
        self.served.process.send_signal(signal.SIGTERM)
        assert self.served.process.wait(90) == 0
        self.served.start()
        _until(lambda: _answers(self.served), 60)


def _answers(served: Served) -> bool:
    try:
        return served.curl(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.Status")[0] == 200
    except subprocess.CalledProcessError:
        return False


@pytest.fixture(scope="module", params=["up", "serve"])
def device(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Device]:
    tools = ("sh", "sleep")
    if request.param == "up":
        for mode in running_mode(e2e_root / "camera-up", "rootless", tools):
            yield Up(mode)
        return
    root = e2e_root / "camera-serve"
    root.mkdir(mode=0o755)
    served = Served(root)
    served.start()
    served.notes_until("READY=1")
    made = Serve(served, root)
    files = [arg for name, data in made.authority.server_set().by_name().items()
             for arg in ("-F", f"{name}=@{_write(root / name, data)}")]  # fmt: skip
    assert made.ask(*files, "-X", "POST", path=PREFIX + "tls")[0] == 204
    served.wait_status("0 RUNNING")
    assert made.docker("import", str(busybox_image(root / "busybox.tar", tools)), IMAGE).returncode == 0
    yield made
    if served.process is not None and served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(90)
    served.notify.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _until(condition: Callable[[], object], timeout: float = 90) -> None:
    until(condition, timeout, 0.1)


def _status(device: Device) -> str:
    return device.ask(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.Status")[1].strip().partition("=")[2]


def _state(device: Device) -> str:
    """list.cgi's Status of the application, read as a script reads it."""
    code, body = device.ask(path=LIST)
    assert code == 200, body
    return body.split('Status="', 1)[1].split('"', 1)[0]


def _control(device: Device, action: str) -> str:
    # A stop waits for the containers and the stack; a burst of them waits in line.
    code, body = device.ask(path=CONTROL + action, timeout=300)
    assert code == 200, body
    return body.strip()


def _running(device: Device) -> None:
    """Until Status is 0 and docker --tlsverify answers."""
    _until(lambda: _status(device) == "0 RUNNING")
    _until(lambda: device.docker("version", "--format", "{{.Server.Version}}").returncode == 0, 60)


def _stack() -> list[str]:
    """What of the application's user runs besides the server itself (its Python): dockerd,
    containerd, rootlesskit, slirp4netns, the namespace holder, containers."""
    return [f"{p.pid} {' '.join(p.info['cmdline'] or [])}" for p in psutil.process_iter(["username", "name", "cmdline"])
            if p.info["username"] == APP_USER and not (p.info["name"] or "").startswith("python")]  # fmt: skip


def test_stop_start_restart_as_a_camera_does(device: Device) -> None:
    """list shows Running; stop stops the container as docker stop does, then everything of the
    application (Status -1, its pages 503, param.cgi still there); start brings docker back; restart
    is a new dockerd; the camera's error bodies for what cannot be done."""
    _running(device)
    assert _state(device) == "Running"
    container = device.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c", POLITE).stdout.strip()
    assert container
    assert _control(device, "stop") == "OK"
    assert _status(device) == "-1 NOT STARTED" and _state(device) == "Stopped"
    assert _stack() == [] and dockerd_pids(device.app_dir) == []
    assert device.ask(path=PREFIX + "info")[0] == 503
    assert _control(device, "stop") == "Error: 7"
    assert device.ask(path=f"{PARAM_CGI}?action=list&group=root.dockerdwrapper.UseTLS")[1] == (
        "root.dockerdwrapper.UseTLS=yes\r\n")  # fmt: skip
    assert _control(device, "start") == "OK"
    _running(device)
    assert _state(device) == "Running" and _control(device, "start") == "Error: 6"
    stopped = device.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container)
    assert stopped.stdout.strip() == "exited 0", stopped  # stopped as docker stop does: asked, and it obeyed
    device.docker("rm", container)
    (before,) = dockerd_pids(device.app_dir)
    assert _control(device, "restart") == "OK"
    _running(device)
    assert dockerd_pids(device.app_dir) not in ([before], [])
    assert _control(device, "remove") == "Error: 10"
    assert _control(device, "bogus") == "Error: 10"
    code, body = device.ask(path="/axis-cgi/applications/control.cgi?action=stop&package=vmd")
    assert (code, body) == (200, "Error: 4\r\n")
    assert device.ask(path=CONTROL + "stop", user="operator")[0] == 401
    assert device.ask(path=LIST, user="viewer")[0] == 401
    assert _state(device) == "Running"


def test_the_script_for_a_camera_runs_unchanged(device: Device) -> None:
    """Stop the app, set UseTLS=no with param.cgi, start the app, poll list.cgi until Running; then
    docker answers on 2375 without TLS. And back."""
    _running(device)
    assert _control(device, "stop") == "OK"
    assert device.ask(path=f"{PARAM_CGI}?action=update&root.dockerdwrapper.UseTLS=no")[1] == "OK\r\n"
    assert _control(device, "start") == "OK"
    _until(lambda: _state(device) == "Running")
    _until(lambda: _status(device) == "0 RUNNING")
    _until(lambda: _plain_answers(device), 30)
    assert device.ask(path=f"{PARAM_CGI}?action=update&root.dockerdwrapper.UseTLS=yes")[1] == "OK\r\n"
    _running(device)


def _plain_answers(device: Device) -> bool:
    done = docker("version", "--format", "{{.Server.Version}}", host="tcp://127.0.0.1:2375",
                  config=device.app_dir.parent / "plain-config")  # fmt: skip
    return done.returncode == 0


def test_a_stopped_application_stays_stopped_across_a_server_restart(device: Device) -> None:
    _running(device)
    assert _control(device, "stop") == "OK"
    device.restart_server()
    assert _state(device) == "Stopped" and _status(device) == "-1 NOT STARTED"
    assert _stack() == [] and dockerd_pids(device.app_dir) == []
    assert "stopped by request and stays stopped" in device.log()
    assert _control(device, "start") == "OK"
    _running(device)
    device.restart_server()
    _running(device)  # and a running one runs again


def test_ten_restarts_at_once_end_with_one_application(device: Device) -> None:
    _running(device)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(_control(device, "restart"))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert answers == ["OK"] * 10
    _running(device)
    assert len(dockerd_pids(device.app_dir)) == 1
    containerd = [line for line in _stack() if line.split(" ")[1].rpartition("/")[2] == "containerd"]
    assert len(containerd) == 1, _stack()


def _burst(device: Device, requests: Sequence[tuple[str, str, dict[str, object] | None]]) -> str:
    """Send ``requests`` (method, path, JSON body) at once, one client each, their authentication
    done beforehand as a script's session has it; what the application logged meanwhile."""
    _running(device)
    clients = [device.client() for _ in requests]
    for client in clients:
        assert client.get(LIST).status_code == 200
    mark, start = len(device.log()), threading.Barrier(len(requests))
    answers: list[int] = []

    def send(client: httpx.Client, method: str, path: str, body: dict[str, object] | None) -> None:
        start.wait()
        answers.append(client.request(method, path, json=body).status_code)

    threads = [
        threading.Thread(target=send, args=(client, *request))
        for client, request in zip(clients, requests, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()
    assert answers == [200] * len(requests)
    _running(device)
    return device.log()[mark:]


LEVELS = ("debug", "info", "error", "info", "debug")


def test_a_patch_burst_restarts_dockerd_once_as_param_cgi_does(device: Device) -> None:
    """Five PATCHes at once are one restart, as five param.cgi updates at once are; one of their
    values is dockerd's (each request was applied in turn, in whatever order they came)."""
    patches: list[tuple[str, str, dict[str, object] | None]] = [
        ("PATCH", f"{API}/DockerdLogLevel", {"data": level}) for level in LEVELS
    ]
    logged = _burst(device, patches)
    assert logged.count("Stopping dockerd (pid") == 1, logged
    assert json.loads(device.ask(path=f"{API}/DockerdLogLevel")[1])["data"] in LEVELS
    updates = [
        ("GET", f"{PARAM_CGI}?action=update&root.dockerdwrapper.DockerdLogLevel={level}", None)
        for level in ("warn", *LEVELS[1:])
    ]
    logged = _burst(device, updates)
    assert logged.count("Stopping dockerd (pid") == 1, logged
    code, body = device.ask("-X", "PATCH", "--data", '{"data": "0 RUNNING"}', path=f"{API}/Status")
    assert code == 400 and json.loads(body)["error"]["code"] == 400
    assert device.ask("-X", "PATCH", "--data", '{"data": "no"}', path=f"{API}/UseTLS", user="viewer")[0] == 401
    device.ask("-X", "PATCH", "--data", '{"data": "warn"}', path=f"{API}/DockerdLogLevel")
    _running(device)


@pytest.mark.parametrize("device", ["up"], indirect=True)
def test_home_assistants_axis_library_opens_it(device: Device) -> None:
    """The library opens the stand-in with its own calls (API discovery, basic device information,
    param.cgi's Properties, list.cgi) and reads the application and its parameters. It speaks
    digest only: through Apache (up), as it opens a camera."""
    assert isinstance(device, Up)
    _running(device)

    async def opened() -> tuple[AxisDevice, dict[str, object]]:
        async with httpx.AsyncClient() as session:
            config = Configuration(session, "127.0.0.1", port=device.front.port, username="admin",
                                   password=device.front.password or "")  # fmt: skip
            camera = AxisDevice(config)
            await camera.vapix.initialize()
            await camera.vapix.params.update()
            return camera, dict(camera.vapix.params["dockerdwrapper"])

    camera, parameters = asyncio.run(opened())
    assert camera.vapix.serial_number == camera.vapix.basic_device_info["0"].serial_number
    assert camera.vapix.product_number == "acap-http"
    (app,) = camera.vapix.applications.values()
    assert (app.name, app.nice_name, app.status, app.vendor) == (
        "dockerdwrapper",
        "Docker Daemon",
        "Running",
        "acap-http",
    )
    assert parameters["Status"] == "0 RUNNING" and parameters["UseTLS"] is True  # the library reads yes as True
