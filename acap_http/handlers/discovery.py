"""``/axis-cgi/apidiscovery.cgi`` and ``/axis-cgi/basicdeviceinfo.cgi``: what a VAPIX client asks
first when it opens a device, as JSON-RPC over POST (Axis's API Discovery and Basic Device
Information documentation). The API list names only what this host serves.

A request is ``{"apiVersion": "1.0", "context": …, "method": …}``; the answer echoes them with
``data``, or ``error`` (``code`` and ``message``: 2100 unsupported version, 2101 not JSON,
2102 unknown method), HTTP 200 either way, as cameras answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from acap_http import config
from acap_http.device import Identity
from acap_http.escape import printable

MAX_BODY = config.HANDLER_MAX_BODY
VERSION_UNSUPPORTED, NOT_JSON, UNKNOWN_METHOD = 2100, 2101, 2102
SERVED_APIS = (
    {"id": "api-discovery", "version": "1.0", "name": "API Discovery Service"},
    {"id": "basic-device-info", "version": "1.1", "name": "Basic Device Information"},
    {"id": "param-cgi", "version": "1.0", "name": "Legacy Parameter Handling"},
)
Method = Callable[[dict[str, object]], dict[str, object]]


class Discovery:
    def __init__(self, device: Identity) -> None:
        self._device = device

    def api_discovery(self, request: Request) -> Response:
        return _rpc(request, "1.0", {
            "getApiList": lambda params: {"apiList": [dict(api, docLink="") for api in SERVED_APIS]},
            "getSupportedVersions": lambda params: {"apiVersions": ["1.0"]},
        })  # fmt: skip

    def basic_device_info(self, request: Request) -> Response:
        return _rpc(request, "1.1", {
            "getAllProperties": lambda params: {"propertyList": self._device.properties()},
            "getAllUnrestrictedProperties": lambda params: {"propertyList": self._device.unrestricted()},
            "getProperties": self._some,
            "getSupportedVersions": lambda params: {"apiVersions": ["1.0", "1.1"]},
        })  # fmt: skip

    def _some(self, params: dict[str, object]) -> dict[str, object]:
        wanted = params.get("propertyList")
        everything = self._device.properties()
        names = [name for name in wanted if isinstance(name, str)] if isinstance(wanted, list) else []
        return {"propertyList": {name: everything[name] for name in names if name in everything}}


def _rpc(request: Request, newest: str, methods: dict[str, Method]) -> Response:
    request.max_content_length = MAX_BODY
    try:
        document = json.loads(request.get_data(cache=False) or b"{}")
    except ValueError:
        return _answer({"apiVersion": newest, "error": {"code": NOT_JSON, "message": "Invalid JSON"}})
    if not isinstance(document, dict):
        return _answer({"apiVersion": newest, "error": {"code": NOT_JSON, "message": "Invalid JSON"}})
    method, version = document.get("method"), document.get("apiVersion", newest)
    answer: dict[str, object] = {"apiVersion": version if isinstance(version, str) else newest}
    if isinstance(document.get("context"), str):
        answer["context"] = printable(document["context"])
    answer["method"] = printable(method) if isinstance(method, str) else ""
    if not isinstance(version, str) or version.partition(".")[0] != newest.partition(".")[0]:
        answer["error"] = {"code": VERSION_UNSUPPORTED, "message": "The requested API version is not supported"}
    elif not isinstance(method, str) or method not in methods:
        answer["error"] = {"code": UNKNOWN_METHOD, "message": "The requested method is not supported"}
    else:
        params = document.get("params")
        answer["data"] = methods[method](params if isinstance(params, dict) else {})
    return _answer(answer)


def _answer(document: dict[str, object]) -> Response:
    return Response(json.dumps(document) + "\n", status=200, content_type="application/json")
