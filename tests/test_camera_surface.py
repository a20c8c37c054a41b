"""The camera's surface beyond param.cgi's list and update, served in-process: the application API
(list.cgi, control.cgi), parameter definitions, the JSON Param API, API discovery and basic device
information; their answers held to the structure of recorded camera answers (tests/fixtures/vapix),
their errors, and who may do what. tests/e2e/test_camera_surface.py drives them through both fronts
with a real dockerd."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from acap_http import config, device, manifest
from acap_http.app import AcapApp, Endpoints
from acap_http.handlers.applications import Applications
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

RECORDED = Path(__file__).parent / "fixtures" / "vapix"
NS = "{http://www.axis.com/ParameterDefinitionsSchema}"
API = "/config/rest/param/v2beta"
PARAM_CGI = "/axis-cgi/param.cgi"
LIST = "/axis-cgi/applications/list.cgi"
CONTROL = "/axis-cgi/applications/control.cgi"
MANIFEST = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")


class Control:
    """The application's run as control.cgi sees it: a flag, and what was asked."""

    def __init__(self) -> None:
        self.running = True
        self.asked: list[str] = []
        self.fails = False

    def start_run(self) -> bool:
        self.asked.append("start")
        if self.fails:
            raise OSError("no dockerd")
        started, self.running = not self.running, True
        return started

    def stop_run(self) -> bool:
        self.asked.append("stop")
        stopped, self.running = self.running, False
        return stopped

    def restart_run(self) -> None:
        self.stop_run()
        self.start_run()


class Camera:
    def __init__(self, root: Path, loaded: manifest.Manifest = MANIFEST) -> None:
        self.manifest = loaded
        self.store = ParamStore.from_manifest(loaded, root)
        self.changes: list[frozenset[str]] = []
        self.store.subscribe(self.changes.append)
        self.control = Control()
        identity = device.Identity.of_host()
        tree = ParamTree(self.store, loaded.app_name, device.parameter_groups(identity))
        daemon_json = DaemonJson(root / "localdata", lambda data: None)

        def running() -> bool:
            return self.control.running

        self.client = Client(AcapApp(loaded, Endpoints(
            tls_files=TlsEndpoints(TlsStore(root / "localdata"), lambda reason: None, tls_in_use=lambda: True),
            param_cgi=ParamCgi(tree, model=identity.model),
            daemon_json=DaemonJsonEndpoints(daemon_json, lambda why: None, lambda why: True),
            info=InfoEndpoint(dict),
            applications=Applications(loaded, self.control),
            param_api=ParamApi(tree),
            discovery=Discovery(identity),
            page=pages.page(loaded, self.store, TlsStore(root / "localdata"), running=running),
            metrics=pages.metrics(loaded, self.store, TlsStore(root / "localdata"), running=running).view,
        ), running=running))  # fmt: skip

    def ask(self, method: str, path: str, query: str = "", level: str = "admin", **kwargs: Any) -> TestResponse:
        uri = f"{path}?{query}" if query else path
        environ = {"REQUEST_URI": uri, "REMOTE_USER": level, ACCESS_ENV: level, **kwargs.pop("environ", {})}
        return self.client.open(path, method=method, query_string=query, environ_base=environ, **kwargs)


@pytest.fixture
def camera(tmp_path: Path) -> Camera:
    return Camera(tmp_path)


def _json(response: TestResponse) -> Any:
    return json.loads(response.data)


def _shape(element: ET.Element) -> tuple[str, frozenset[str]]:
    return element.tag.removeprefix(NS), frozenset(element.attrib)


def _grammar(*roots: ET.Element) -> dict[str, tuple[set[str], set[str]]]:
    """For each element name in the recordings: the attribute names seen on it, and the child
    element names seen under it."""
    grammar: dict[str, tuple[set[str], set[str]]] = {}
    for root in roots:
        for element in root.iter():
            name, attributes = _shape(element)
            seen_attributes, seen_children = grammar.setdefault(name, (set(), set()))
            seen_attributes.update(attributes)
            seen_children.update(_shape(child)[0] for child in element)
    return grammar


def _recorded_xml(name: str) -> ET.Element:
    return ET.fromstring((RECORDED / name).read_bytes())


def _follows(answer: ET.Element, grammar: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """What in ``answer`` no recording has: an element, an attribute of it, or a child under it."""
    strays = []
    for element in answer.iter():
        name, attributes = _shape(element)
        if name not in grammar:
            strays.append(f"element {name}")
            continue
        known_attributes, known_children = grammar[name]
        strays += [f"{name}@{a}" for a in attributes - known_attributes if not a.startswith("{")]
        strays += [f"{name}>{_shape(c)[0]}" for c in element if _shape(c)[0] not in known_children]
    return strays


# --- the application API -------------------------------------------------------------------------


def test_list_cgi_is_the_cameras_reply_with_the_applications_state(camera: Camera) -> None:
    recorded = _recorded_xml("applications-list.xml")
    for method in ("GET", "POST"):  # the axis library posts
        answer = camera.ask(method, LIST)
        assert answer.status_code == 200 and answer.mimetype == "text/xml"
        reply = ET.fromstring(answer.data)
        assert _follows(reply, _grammar(recorded)) == []
        assert reply.attrib == {"result": "ok"} and len(reply) == 1
        app = reply[0].attrib
        # What every recorded application has, ours has.
        assert set.intersection(*(set(a.attrib) for a in recorded)) <= set(app)
        assert app["Name"] == "dockerdwrapper" and app["NiceName"] == "Docker Daemon" and app["Status"] == "Running"
        assert app["Vendor"] == MANIFEST.vendor and app["Version"] == MANIFEST.version
    camera.control.running = False
    assert ET.fromstring(camera.ask("GET", LIST).data)[0].attrib["Status"] == "Stopped"


@pytest.mark.parametrize(
    ("query", "running", "answer", "asked"),
    [
        ("action=stop&package=dockerdwrapper", True, "OK", ["stop"]),
        ("action=stop&package=dockerdwrapper", False, "Error: 7", ["stop"]),
        ("action=start&package=dockerdwrapper", False, "OK", ["start"]),
        ("action=start&package=dockerdwrapper", True, "Error: 6", ["start"]),
        ("action=restart&package=dockerdwrapper", True, "OK", ["stop", "start"]),
        ("action=restart&package=dockerdwrapper", False, "OK", ["stop", "start"]),
        ("action=stop&package=vmd", True, "Error: 4", []),
        ("action=stop", True, "Error: 4", []),
        ("action=pause&package=dockerdwrapper", True, "Error: 10", []),
        ("package=dockerdwrapper", True, "Error: 10", []),
        ("action=remove&package=dockerdwrapper", True, "Error: 10", []),
    ],
)
def test_control_cgi_answers_as_a_camera(
    camera: Camera, query: str, running: bool, answer: str, asked: list[str]
) -> None:
    camera.control.running = running
    response = camera.ask("GET", CONTROL, query)
    assert (response.status_code, response.text) == (200, answer + "\r\n")
    assert camera.control.asked == asked


def test_control_cgi_says_8_when_the_application_cannot_start(camera: Camera) -> None:
    camera.control.running, camera.control.fails = False, True
    assert camera.ask("GET", CONTROL, "action=start&package=dockerdwrapper").text == "Error: 8\r\n"


def test_control_cgi_takes_a_posted_form(camera: Camera) -> None:
    answer = camera.ask("POST", CONTROL, data={"action": "stop", "package": "dockerdwrapper"})
    assert answer.text == "OK\r\n" and not camera.control.running


def test_a_stopped_application_answers_503_on_its_pages_and_keeps_its_parameters(camera: Camera) -> None:
    camera.control.running = False
    for path in ("/local/dockerdwrapper/info", "/local/dockerdwrapper/daemon.json", "/local/dockerdwrapper/nope"):
        answer = camera.ask("GET", path)
        assert (answer.status_code, answer.text) == (503, "The application is not running\r\n")
    assert camera.ask("GET", PARAM_CGI, "action=update&root.dockerdwrapper.UseTLS=no").text == "OK\r\n"
    assert _json(camera.ask("GET", f"{API}/dockerdwrapper/UseTLS")) == {"status": "success", "data": "no"}
    # The settings page and its state stay: the page is where the application is started again.
    for path in ("/local/dockerdwrapper/", "/local/dockerdwrapper/index.html", "/local/dockerdwrapper/page.js"):
        assert camera.ask("GET", path).status_code == 200
    assert _json(camera.ask("GET", "/local/dockerdwrapper/state"))["application"]["running"] is False
    # And the metrics: a stopped application is news to a monitoring system, not a failed scrape.
    metrics = camera.ask("GET", "/local/dockerdwrapper/metrics")
    assert metrics.status_code == 200 and "acap_http_application_running 0.0" in metrics.text


@pytest.mark.parametrize("level", ["viewer", "operator"])
def test_below_admin_the_application_api_is_refused(camera: Camera, level: str) -> None:
    for path, query in ((LIST, ""), (CONTROL, "action=stop&package=dockerdwrapper")):
        assert camera.ask("GET", path, query, level=level).status_code == 403
    assert camera.control.asked == [] and camera.control.running


def test_a_cross_site_page_cannot_stop_the_application(camera: Camera) -> None:
    """control.cgi changes by GET: a page of another site that an admin's browser opens is refused."""
    answer = camera.ask(
        "GET", CONTROL, "action=stop&package=dockerdwrapper", environ={"HTTP_SEC_FETCH_SITE": "cross-site"}
    )
    assert answer.status_code == 403 and camera.control.running and camera.control.asked == []


# --- parameter definitions -------------------------------------------------------------------------


def _definitions(camera: Camera, query: str = "", level: str = "viewer") -> ET.Element:
    answer = camera.ask("GET", PARAM_CGI, "action=listdefinitions&listformat=xmlschema" + query, level=level)
    assert answer.status_code == 200 and answer.mimetype == "text/xml", answer.text
    return ET.fromstring(answer.data)


def _parameters(document: ET.Element) -> dict[str, ET.Element]:
    """Each parameter element by its dotted path below root."""
    found: dict[str, ET.Element] = {}

    def walk(element: ET.Element, path: list[str]) -> None:
        for child in element:
            if child.tag == f"{NS}group":
                walk(child, [*path, child.attrib["name"]])
            elif child.tag == f"{NS}parameter":
                found[".".join([*path, child.attrib["name"]])] = child

    walk(document, [])
    return found


DEFINITIONS = ("listdefinitions-properties.xml", "listdefinitions-palette.xml", "listdefinitions-audio.xml",
               "listdefinitions-https.xml")  # fmt: skip


def test_definitions_have_the_structure_cameras_answer(camera: Camera) -> None:
    recorded = [_recorded_xml(name) for name in DEFINITIONS]
    document = _definitions(camera)
    assert document.tag == f"{NS}parameterDefinitions" and document.attrib["version"] == "1.0"
    assert [_shape(child)[0] for child in document] == [
        _shape(child)[0] for child in recorded[1]
    ]  # model, version, group
    assert document.find(f"{NS}model").text == "acap-http"  # type: ignore[union-attr]
    grammar = _grammar(*recorded)
    # What no recording at hand shows but the documentation names: a string type, with a maxlen as
    # int has, and the type's hidden flag beside readonly (see tests/fixtures/vapix/README.md).
    grammar["type"][1].add("string")
    grammar["type"][0].add("hidden")
    grammar["string"] = ({"maxlen"}, set())
    assert _follows(document, grammar) == []
    assert set(document.attrib) == set(recorded[0].attrib)


def test_each_parameter_is_typed_from_the_manifest(camera: Camera) -> None:
    parameters = _parameters(_definitions(camera, "&group=root.dockerdwrapper"))
    assert list(parameters) == [f"root.dockerdwrapper.{p.name}" for p in MANIFEST.params]
    tls = parameters["root.dockerdwrapper.UseTLS"]
    assert tls.attrib == {"name": "UseTLS", "value": "yes", "securityLevel": "7716", "niceName": "UseTLS"}
    assert [(e.tag, e.attrib) for e in tls.iter() if e is not tls][1:] == [
        (f"{NS}bool", {"true": "yes", "false": "no"})
    ]
    level = parameters["root.dockerdwrapper.DockerdLogLevel"].find(f"{NS}type/{NS}enum")
    assert [entry.attrib["value"] for entry in level] == ["debug", "info", "warn", "error", "fatal"]  # type: ignore[union-attr]
    status = parameters["root.dockerdwrapper.Status"]
    assert status.attrib["value"] == "-1 NOT STARTED" and status.attrib["securityLevel"] == "7717"
    assert status.find(f"{NS}type").attrib == {"readonly": "true"}  # type: ignore[union-attr]


def test_definitions_of_a_parameter_a_device_group_and_errors(camera: Camera) -> None:
    one = _parameters(_definitions(camera, "&group=dockerdwrapper.usetls"))
    assert list(one) == ["root.dockerdwrapper.UseTLS"]
    properties = _parameters(_definitions(camera, "&group=Properties.System"))
    assert "root.Properties.System.SerialNumber" in properties and not any("API" in p for p in properties)
    development = _parameters(_definitions(camera, "&group=root.Properties"))[
        "root.Properties.EmbeddedDevelopment.Version"
    ]
    assert development.attrib["securityLevel"] == "7707"
    everything = _parameters(_definitions(camera))
    assert {path.split(".")[1] for path in everything} == {"dockerdwrapper", "Brand", "Properties"}
    unknown = camera.ask("GET", PARAM_CGI, "action=listdefinitions&listformat=xmlschema&group=root.Network")
    assert unknown.text == "# Error: Error -1 getting param in group 'root.Network'\r\n"
    other = camera.ask("GET", PARAM_CGI, "action=listdefinitions&listformat=<b>")
    assert other.text == "# Error: Unknown listformat '<b>' (use listformat=xmlschema)\r\n"


def test_definitions_escape_what_a_client_stored(tmp_path: Path) -> None:
    document = json.loads((config.CHECKOUT_DIR / "manifest" / "manifest.json").read_text())
    document["acapPackageConf"]["configuration"]["paramConfig"] += [
        {"name": "Note", "type": "string:maxlen=64", "default": ""},
        {"name": "Token", "type": "hidden:string", "default": "t"},
        {"name": "Port", "type": "int:range=1-65535", "default": "2376"},
        {"name": "Mode", "type": "enum:a|Nice A,b", "default": "a"},
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    camera = Camera(tmp_path, manifest.load(tmp_path / "manifest.json"))
    hostile = '"/><parameter name="x" value=\'&amp;<'
    assert (
        camera.ask("POST", PARAM_CGI, data={"action": "update", "root.dockerdwrapper.Note": hostile}).text == "OK\r\n"
    )
    parameters = _parameters(_definitions(camera, "&group=root.dockerdwrapper"))
    assert parameters["root.dockerdwrapper.Note"].attrib["value"] == hostile
    assert parameters["root.dockerdwrapper.Note"].find(f"{NS}type/{NS}string").attrib == {"maxlen": "64"}  # type: ignore[union-attr]
    assert parameters["root.dockerdwrapper.Port"].find(f"{NS}type/{NS}int").attrib == {"min": "1", "max": "65535"}  # type: ignore[union-attr]
    entries = parameters["root.dockerdwrapper.Mode"].find(f"{NS}type/{NS}enum")
    assert [e.attrib for e in entries] == [{"value": "a", "niceValue": "Nice A"}, {"value": "b"}]  # type: ignore[union-attr]
    assert "root.dockerdwrapper.Token" not in parameters  # hidden: listed by its own name only
    token = _parameters(_definitions(camera, "&group=root.dockerdwrapper.Token"))["root.dockerdwrapper.Token"]
    assert token.find(f"{NS}type").attrib == {"hidden": "true"}  # type: ignore[union-attr]


def test_list_serves_the_device_groups_a_vapix_client_reads(camera: Camera) -> None:
    lines = camera.ask("POST", PARAM_CGI, data="action=list&group=root.Properties", content_type="text/plain").text
    values = dict(line.split("=", 1) for line in lines.splitlines())
    assert values["root.Properties.EmbeddedDevelopment.Version"] == "3.0"
    assert values["root.Properties.System.SerialNumber"] == device.Identity.of_host().serial
    assert camera.ask("GET", PARAM_CGI, "action=update&root.Brand.ProdNbr=AXIS").text == (
        "# Error: Error setting 'root.Brand.ProdNbr' to 'AXIS'!\r\n")  # fmt: skip
    everything = camera.ask("GET", PARAM_CGI, "action=list").text.splitlines()
    assert everything[0] == "root.dockerdwrapper.SDCardSupport=no" and "root.Brand.ProdNbr=acap-http" in everything


# --- the JSON Param API ------------------------------------------------------------------------------


def test_param_api_reads_as_strings_at_every_depth(camera: Camera) -> None:
    root = camera.ask("GET", API, level="viewer")
    assert root.status_code == 200 and root.mimetype == "application/json"
    data = _json(root)["data"]
    assert _json(root)["status"] == "success" and set(data) == {"dockerdwrapper", "Brand", "Properties"}
    assert data["dockerdwrapper"] == camera.store.values()
    assert data["Properties"]["API"]["HTTP"]["Version"] == "3"
    assert _json(camera.ask("GET", f"{API}/dockerdwrapper")) == {"status": "success", "data": camera.store.values()}
    assert _json(camera.ask("GET", f"{API}/dockerdwrapper/Status")) == {"status": "success", "data": "-1 NOT STARTED"}
    assert _json(camera.ask("GET", f"{API}/Properties/API/HTTP"))["data"] == {"AdminPath": "/", "Version": "3"}
    missing = camera.ask("GET", f"{API}/dockerdwrapper/Nope")
    assert missing.status_code == 404 and _json(missing)["status"] == "error" and _json(missing)["error"]["code"] == 404


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", f"{API}/dockerdwrapper/UseTLS", {"data": "no"}),
    ("PATCH", f"{API}/dockerdwrapper", {"data": {"UseTLS": "no", "DockerdLogLevel": "debug"}}),
    ("PUT", f"{API}/dockerdwrapper", {"data": {"UseTLS": "NO"}}),
    ("PATCH", API, {"data": {"dockerdwrapper": {"UseTLS": "no"}}}),
])  # fmt: skip
def test_param_api_sets_in_one_update(camera: Camera, method: str, path: str, body: dict[str, Any]) -> None:
    answer = camera.ask(method, path, json=body)
    assert (answer.status_code, _json(answer)) == (200, {"status": "success"})
    assert camera.store.get("UseTLS") == "no" and len(camera.changes) == 1


@pytest.mark.parametrize(("path", "body", "status", "said"), [
    (f"{API}/dockerdwrapper/Status", b'{"data": "0 RUNNING"}', 400, "dockerdwrapper.Status is read-only"),
    (f"{API}/Brand/ProdNbr", b'{"data": "AXIS"}', 400, "Brand.ProdNbr is read-only"),
    (f"{API}/dockerdwrapper/UseTLS", b'{"data": "maybe"}', 400, "Invalid value: dockerdwrapper.UseTLS='maybe'"),
    (f"{API}/dockerdwrapper", b'{"data": {"UseTLS": "no", "IPCSocket": "perhaps"}}', 400, "IPCSocket='perhaps'"),
    (f"{API}/dockerdwrapper", b'{"data": {"UseTLS": "no", "Nope": "x"}}', 404, "No such parameter: dockerdwrapper.No"),
    (f"{API}/dockerdwrapper/UseTLS", b'{"data": true}', 400, "must be a string"),
    (f"{API}/dockerdwrapper", b'{"data": "no"}', 400, "No such parameter"),
    (API, b'{"data": "no"}', 400, "The data must be an object of groups"),
    (f"{API}/dockerdwrapper/UseTLS", b'{"data": "no"', 400, "The body is not JSON"),
    (f"{API}/dockerdwrapper/UseTLS", b'"no"', 400, 'a JSON object with "data"'),
    (f"{API}/dockerdwrapper/UseTLS", b'{"data": "n\xf6"}', 400, "The body is not UTF-8"),
    (f"{API}/dockerdwrapper/UseTLS", b'{"data": ' + b"[" * 100_000, 413, "larger than 64 KiB"),
    (API, b'{"data": ' + b'{"a": ' * 5000 + b'"x"' + b"}" * 5001, 400, "nests"),
    (f"{API}/nope", b'{"data": "x"}', 404, "No such parameter: nope"),
])  # fmt: skip
def test_param_api_refusals_change_nothing(camera: Camera, path: str, body: bytes, status: int, said: str) -> None:
    before = camera.store.values()
    answer = camera.ask("PATCH", path, data=body, content_type="application/json")
    assert answer.status_code == status and _json(answer)["status"] == "error", answer.text
    assert _json(answer)["error"]["code"] == status and said in _json(answer)["error"]["message"]
    assert camera.store.values() == before and camera.changes == []


def test_param_api_methods_and_levels(camera: Camera) -> None:
    deleted = camera.ask("DELETE", f"{API}/dockerdwrapper/UseTLS")
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET, HEAD, PATCH, PUT"
    assert _json(deleted)["error"]["code"] == 405
    for level in ("viewer", "operator"):
        refused = camera.ask("PATCH", f"{API}/dockerdwrapper/UseTLS", level=level, json={"data": "no"})
        assert refused.status_code == 403 and _json(refused)["status"] == "error"
        assert camera.ask("GET", f"{API}/dockerdwrapper", level=level).status_code == 200
    assert camera.store.get("UseTLS") == "yes"
    escaped = camera.ask("GET", f"{API}/<script>")
    assert escaped.status_code == 404 and "<script>" in _json(escaped)["error"]["message"]  # JSON, never HTML


def test_discover_apis_lists_the_param_api(camera: Camera) -> None:
    answer = camera.ask("GET", "/config/discover/apis", level="viewer")
    assert _json(answer) == {"param": {"v2": {"rest_api": API, "state": "beta", "version": "2.0.0-beta.1"}}}
    assert camera.ask("GET", "/config/discover/other").status_code == 404


# --- discovery ---------------------------------------------------------------------------------------


def _rpc(camera: Camera, path: str, body: Any, level: str = "viewer") -> dict[str, Any]:
    answer = camera.ask("POST", path, level=level, data=json.dumps(body) if not isinstance(body, bytes) else body,
                        content_type="application/json")  # fmt: skip
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return _json(answer)  # type: ignore[no-any-return]


def test_api_discovery_names_what_is_served(camera: Camera) -> None:
    recorded = json.loads((RECORDED / "apidiscovery-getApiList.json").read_text())
    answer = _rpc(camera, "/axis-cgi/apidiscovery.cgi", {"apiVersion": "1.0", "context": "t", "method": "getApiList"})
    assert set(answer) == set(recorded) and answer["context"] == "t"
    apis = answer["data"]["apiList"]
    assert all(set(api) == set(recorded["data"]["apiList"][0]) for api in apis)
    assert [api["id"] for api in apis] == ["api-discovery", "basic-device-info", "param-cgi"]


def test_basic_device_info_as_recorded(camera: Camera) -> None:
    recorded = json.loads((RECORDED / "basicdeviceinfo-getAllProperties.json").read_text())
    answer = _rpc(
        camera, "/axis-cgi/basicdeviceinfo.cgi", {"apiVersion": "1.1", "context": "c", "method": "getAllProperties"}
    )
    assert set(answer) == set(recorded) and set(answer["data"]["propertyList"]) == set(recorded["data"]["propertyList"])
    properties = answer["data"]["propertyList"]
    assert properties["ProdNbr"] == "acap-http" and properties["SerialNumber"] == device.Identity.of_host().serial
    unrestricted = _rpc(
        camera, "/axis-cgi/basicdeviceinfo.cgi", {"apiVersion": "1.0", "method": "getAllUnrestrictedProperties"}
    )
    assert "Soc" not in unrestricted["data"]["propertyList"]
    asked = {"apiVersion": "1.1", "method": "getProperties", "params": {"propertyList": ["Version", "Nope"]}}
    some = _rpc(camera, "/axis-cgi/basicdeviceinfo.cgi", asked)
    assert some["data"] == {"propertyList": {"Version": properties["Version"]}}


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", 2101),
    (b"[1]", 2101),
    (b'{"apiVersion": "2.0", "method": "getAllProperties"}', 2100),
    (b'{"apiVersion": "1.1", "method": "reboot"}', 2102),
    (b'{"apiVersion": "1.1", "method": "<x>", "context": "<y>"}', 2102),
])  # fmt: skip
def test_device_info_errors_are_json_rpc(camera: Camera, body: bytes, code: int) -> None:
    answer = _rpc(camera, "/axis-cgi/basicdeviceinfo.cgi", body)
    assert answer["error"]["code"] == code and "data" not in answer


def test_a_device_with_the_same_machine_id_has_the_same_serial(tmp_path: Path) -> None:
    (tmp_path / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    first = device.Identity.of_host(tmp_path / "machine-id")
    assert first.serial == device.Identity.of_host(tmp_path / "machine-id").serial
    assert len(first.serial) == 12 and int(first.serial, 16) >= 0
    (tmp_path / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    assert device.Identity.of_host(tmp_path / "machine-id").serial != first.serial


def test_everything_else_a_camera_has_is_404(camera: Camera) -> None:
    for path in ("/axis-cgi/admin/systemready.cgi", "/axis-cgi/mjpg/video.cgi", "/config/rest/time/v2", "/"):
        assert camera.ask("GET", path).status_code == 404
