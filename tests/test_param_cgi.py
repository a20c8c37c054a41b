"""param.cgi served in-process: the VAPIX answers, exact to the character."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import Client

from acap_http import config, device, manifest
from acap_http.app import AcapApp, Endpoints
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.discovery import Discovery
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_api import ParamApi
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import ACCESS_ENV
from acap_http.params import ParamStore
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.tls.store import TlsStore
from tests import pages

URL = "/axis-cgi/param.cgi"
ALL = (
    "root.dockerdwrapper.SDCardSupport=no\r\n"
    "root.dockerdwrapper.UseTLS=yes\r\n"
    "root.dockerdwrapper.TCPSocket=yes\r\n"
    "root.dockerdwrapper.IPCSocket=no\r\n"
    "root.dockerdwrapper.ApplicationLogLevel=info\r\n"
    "root.dockerdwrapper.DockerdLogLevel=warn\r\n"
    "root.dockerdwrapper.Status=-1 NOT STARTED\r\n"
)


DEVICE = device.Identity.of_host()


def camera_app(loaded: manifest.Manifest, store: ParamStore, root: Path) -> AcapApp:
    """The app as served, but for the application's control: param.cgi over the application's
    group and the device's, the Param API, discovery, and the manifest's endpoints."""
    tree = ParamTree(store, loaded.app_name, device.parameter_groups(DEVICE))
    daemon_json = DaemonJson(root / "localdata", lambda data: None)
    return AcapApp(loaded, Endpoints(
        tls_files=TlsEndpoints(TlsStore(root / "localdata"), lambda reason: None, tls_in_use=lambda: True),
        param_cgi=ParamCgi(tree),
        daemon_json=DaemonJsonEndpoints(daemon_json, lambda why: None, lambda why: True),
        info=InfoEndpoint(dict),
        param_api=ParamApi(tree),
        discovery=Discovery(DEVICE),
        page=pages.page(loaded, store, TlsStore(root / "localdata")),
        metrics=pages.metrics(loaded, store, TlsStore(root / "localdata")).view,
    ))  # fmt: skip


class Camera:
    def __init__(self, root: Path) -> None:
        loaded = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")
        self.store = ParamStore.from_manifest(loaded, root)
        self.client = Client(camera_app(loaded, self.store, root))

    def get(self, query: str, level: str = "admin") -> tuple[int, str]:
        environ = {"REQUEST_URI": f"{URL}?{query}", "REMOTE_USER": level, ACCESS_ENV: level}
        response = self.client.get(URL, query_string=query, environ_base=environ)
        return response.status_code, response.text

    def post(self, form: dict[str, str], level: str = "admin") -> tuple[int, str]:
        environ = {"REQUEST_URI": URL, "REMOTE_USER": level, ACCESS_ENV: level}
        response = self.client.post(URL, data=form, environ_base=environ)
        return response.status_code, response.text


@pytest.fixture
def camera(tmp_path: Path) -> Camera:
    return Camera(tmp_path)


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("action=list&group=root.dockerdwrapper", ALL),
        ("action=list&group=dockerdwrapper", ALL),
        ("action=list&group=root.dockerdwrapper.UseTLS", "root.dockerdwrapper.UseTLS=yes\r\n"),
        ("action=list&group=dockerdwrapper.usetls", "root.dockerdwrapper.UseTLS=yes\r\n"),
        (
            "action=list&group=root.dockerdwrapper.UseTLS,root.dockerdwrapper.Status",
            "root.dockerdwrapper.UseTLS=yes\r\nroot.dockerdwrapper.Status=-1 NOT STARTED\r\n",
        ),
        ("action=list&group=root.Network", "# Error: Error -1 getting param in group 'root.Network'\r\n"),
        (
            "action=list&group=root.dockerdwrapper.Nope",
            "# Error: Error -1 getting param in group 'root.dockerdwrapper.Nope'\r\n",
        ),
        (
            "action=list&group=root.Foo,root.dockerdwrapper.IPCSocket",
            "# Error: Error -1 getting param in group 'root.Foo'\r\nroot.dockerdwrapper.IPCSocket=no\r\n",
        ),
    ],
)
def test_list(camera: Camera, query: str, answer: str) -> None:
    """list answers one line per parameter, or the VAPIX error line for an unknown group."""
    assert camera.get(query, level="viewer") == (200, answer)


@pytest.mark.parametrize("send", ["get", "post"])
def test_update_one_and_two(camera: Camera, send: str) -> None:
    """update answers OK and the values are listed afterwards, by GET or form POST."""
    pairs = {"root.dockerdwrapper.UseTLS": "no", "dockerdwrapper.DockerdLogLevel": "ERROR"}
    if send == "get":
        answer = camera.get("action=update&" + "&".join(f"{k}={v}" for k, v in pairs.items()))
    else:
        answer = camera.post({"action": "update", **pairs})
    assert answer == (200, "OK\r\n")
    assert camera.get("action=list&group=dockerdwrapper.UseTLS,dockerdwrapper.DockerdLogLevel") == (
        200,
        "root.dockerdwrapper.UseTLS=no\r\nroot.dockerdwrapper.DockerdLogLevel=error\r\n",
    )


@pytest.mark.parametrize(
    ("pairs", "errors"),
    [
        ("root.dockerdwrapper.UseTLS=maybe", ["root.dockerdwrapper.UseTLS' to 'maybe"]),
        ("root.dockerdwrapper.Nope=1", ["root.dockerdwrapper.Nope' to '1"]),
        ("root.dockerdwrapper.Status=0 RUNNING", ["root.dockerdwrapper.Status' to '0 RUNNING"]),
        ("root.Other.UseTLS=no", ["root.Other.UseTLS' to 'no"]),
        (
            "root.dockerdwrapper.IPCSocket=yes&root.dockerdwrapper.UseTLS=maybe",
            ["root.dockerdwrapper.UseTLS' to 'maybe"],
        ),
        (
            "root.dockerdwrapper.Status=x&root.dockerdwrapper.TCPSocket=no&root.dockerdwrapper.UseTLS=maybe",
            ["root.dockerdwrapper.Status' to 'x", "root.dockerdwrapper.UseTLS' to 'maybe"],
        ),
    ],
    ids=["invalid value", "unknown name", "Status", "other group", "valid pair with a bad one", "two bad"],
)
def test_refused_update_changes_nothing(camera: Camera, pairs: str, errors: list[str]) -> None:
    """A bad pair is an error line naming it, and nothing of the request is applied."""
    before = camera.store.values()
    answer = camera.get("action=update&" + pairs)
    assert answer == (200, "".join(f"# Error: Error setting '{error}'!\r\n" for error in errors))
    assert camera.store.values() == before


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("", "# Error: No action given (use action=list, action=listdefinitions or action=update)\r\n"),
        (
            "action=remove&group=root.dockerdwrapper",
            "# Error: Unknown action 'remove' (use action=list, action=listdefinitions or action=update)\r\n",
        ),
        ("action=update", "# Error: No parameters to update\r\n"),
    ],
)
def test_bad_actions_are_error_lines(camera: Camera, query: str, answer: str) -> None:
    """A missing or unknown action, or an update of nothing, is an error line and not a crash."""
    assert camera.get(query) == (200, answer)


@pytest.mark.parametrize("level", ["viewer", "operator", "none"])
def test_only_admin_updates(camera: Camera, level: str) -> None:
    """Any authenticated user may list; only admin updates, also when the update is in a POST body."""
    assert camera.post({"action": "list", "group": "dockerdwrapper.UseTLS"}, level=level)[0] == 200
    status, text = camera.post({"action": "update", "root.dockerdwrapper.UseTLS": "no"}, level=level)
    assert status == 403 and text.startswith("# Error:")
    assert camera.store.get("UseTLS") == "yes"


def test_other_methods_are_405(camera: Camera) -> None:
    """param.cgi takes GET and POST only."""
    response = camera.client.delete(URL, environ_base={"REQUEST_URI": URL, "REMOTE_USER": "admin", ACCESS_ENV: "admin"})
    assert response.status_code == 405


def test_a_parameter_added_to_the_manifest_is_served_without_code(tmp_path: Path) -> None:
    """A new paramConfig entry is listed with its default, updated within its type, and persisted."""
    document = json.loads((config.CHECKOUT_DIR / "manifest" / "manifest.json").read_text())
    document["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "RetentionDays", "type": "int:min=1;max=30", "default": "7"}
    )
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    loaded = manifest.load(path)
    store = ParamStore.from_manifest(loaded, tmp_path)
    client = Client(camera_app(loaded, store, tmp_path))

    def get(query: str) -> str:
        environ = {"REQUEST_URI": f"{URL}?{query}", "REMOTE_USER": "admin", ACCESS_ENV: "admin"}
        return client.get(URL, query_string=query, environ_base=environ).text

    group = "root.dockerdwrapper.RetentionDays"
    assert get(f"action=list&group={group}") == f"{group}=7\r\n"
    assert get(f"action=update&{group}=31") == f"# Error: Error setting '{group}' to '31'!\r\n"
    assert get(f"action=update&{group}=14") == "OK\r\n"
    assert json.loads((tmp_path / "params.json").read_text())["RetentionDays"] == "14"
    assert get("action=list&group=root.dockerdwrapper").endswith(f"{group}=14\r\n")
