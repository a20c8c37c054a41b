"""``/config/rest/param/v2beta``: the Device Configuration framework's JSON Param API (AXIS OS
11.8 and later; Axis's "Param API" and "Device Configuration APIs" documentation), over the same
parameters, store, validation and restarts as param.cgi; and ``/config/discover/apis``, which
lists it.

``GET …/v2beta`` answers every group, ``…/v2beta/<Group>`` one, ``…/<Group>/<Name>`` one value:
``{"status": "success", "data": …}``, values strings as in param.cgi, nested groups as objects.
``PATCH`` (or ``PUT``, as AXIS OS 11.10 and before) with ``{"data": …}`` of the same shape sets
the application's parameters, all or none: ``{"status": "success"}``. A failure is an HTTP error
with ``{"status": "error", "error": {"code": <the HTTP code>, "message": …}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from acap_http import access, config
from acap_http.escape import printable
from acap_http.handlers.param_tree import Entry, ParamTree
from acap_http.handlers.paths import request_path
from acap_http.handlers.responses import write_failure

logger = logging.getLogger(__name__)

MAX_BODY = config.HANDLER_MAX_BODY
MAX_DEPTH = 8  # groups and names below the API's root; the deepest parameter has 4
SETTING_METHODS = frozenset({"PATCH", "PUT"})
ALLOWED = "GET, HEAD, PATCH, PUT"
API_ID, MAJOR, VERSION = "param", "v2", "2.0.0-beta.1"


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ParamApi:
    def __init__(self, tree: ParamTree, record: Callable[[str], None] = lambda result: None) -> None:
        self._tree = tree
        self._record = record  # hears how each update ended: ok, refused or failed

    def __call__(self, request: Request) -> Response:
        path = request_path(request.environ).removeprefix(access.PARAM_API).strip("/")
        segments = [segment for segment in path.split("/") if segment] if path else []
        try:
            if request.method in access.READING_METHODS:
                return success(self._get(segments))
            if request.method in SETTING_METHODS:
                try:
                    self._set(segments, _body(request))
                except Refusal as refusal:
                    self._record("failed" if refusal.status >= 500 else "refused")
                    raise
                self._record("ok")
                return success()
            raise Refusal(405, f"Method {printable(request.method)} is not supported here (use GET or PATCH)")
        except Refusal as refusal:
            headers = [("Allow", ALLOWED)] if refusal.status == 405 else []
            return error(refusal.status, refusal.message, headers)

    def discover(self, request: Request) -> Response:
        """``/config/discover/apis``: the one API of the framework this host serves."""
        api = {"rest_api": access.PARAM_API, "state": "beta", "version": VERSION}
        return _json(200, {API_ID: {MAJOR: api}})

    def _get(self, segments: list[str]) -> object:
        if not segments:
            return {group: _nested(self._tree.select(group) or [], 1) for group in self._tree.groups()}
        entries = self._tree.select(".".join(segments))
        if entries is None:
            raise Refusal(404, f"No such parameter or group: {printable('/'.join(segments))}")
        if len(entries) == 1 and entries[0].path.casefold() == ".".join(segments).casefold():
            return entries[0].value
        return _nested(entries, len(segments))

    def _set(self, segments: list[str], data: object) -> None:
        changes: dict[str, str] = {}
        for path, value in _flatten(segments, data):
            entries = self._tree.select(path)
            if not entries or len(entries) != 1 or entries[0].path.casefold() != path.casefold():
                raise Refusal(404 if not entries else 400, f"No such parameter: {printable(path)}")
            entry = entries[0]
            if entry.spec is None or entry.spec.readonly:
                raise Refusal(400, f"{printable(entry.path)} is read-only")
            if not isinstance(value, str):
                raise Refusal(400, f"The value of {printable(entry.path)} must be a string, as all parameters are")
            changes[entry.name] = value
        refused = self._tree.store.refusals(changes)
        if refused:
            said = "; ".join(f"{self._tree.app_name}.{name}={value!r}: {why}" for name, value, why in refused)
            logger.info("Refused a Param API update: %s", printable(said))
            raise Refusal(400, f"Invalid value: {printable(said)}")
        try:
            self._tree.store.update(changes)
        except OSError as err:
            logger.error("Could not save parameters to %s: %s", self._tree.store.path, err)
            raise Refusal(*write_failure(err, "Could not save the parameters", "the settings are unchanged")) from None


def _flatten(segments: list[str], data: object) -> Iterable[tuple[str, object]]:
    """(dotted path, value) for every leaf of ``data`` set at ``segments``."""
    if len(segments) > MAX_DEPTH:
        raise Refusal(400, "The data nests deeper than any parameter")
    if isinstance(data, dict):
        if not data and not segments:
            return
        for key, value in data.items():
            if not key or "." in key:
                raise Refusal(400, f"Not a parameter or group name: {printable(key)}")
            yield from _flatten([*segments, key], value)
    elif not segments:
        raise Refusal(400, 'The data must be an object of groups: {"data": {"<Group>": {"<Name>": "<value>"}}}')
    else:
        yield ".".join(segments), data


def _nested(entries: list[Entry], depth: int) -> dict[str, object]:
    """The entries as nested objects, their paths taken from ``depth`` dotted parts on."""
    tree: dict[str, object] = {}
    for entry in entries:
        *parents, name = entry.path.split(".")[depth:]
        node = tree
        for parent in parents:
            child = node.setdefault(parent, {})
            assert isinstance(child, dict)
            node = child
        node[name] = entry.value
    return tree


def _body(request: Request) -> object:
    request.max_content_length = MAX_BODY
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise Refusal(413, f"The body is larger than {MAX_BODY // 1024} KiB") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refusal(400, "The body is not UTF-8") from None
    except ValueError as err:
        raise Refusal(400, f"The body is not JSON: {err}") from None
    except RecursionError:
        raise Refusal(400, "The body nests too deep") from None
    if not isinstance(document, dict) or "data" not in document:
        raise Refusal(400, 'The body must be a JSON object with "data"')
    return document["data"]


def success(data: object = None) -> Response:
    return _json(200, {"status": "success"} if data is None else {"status": "success", "data": data})


def error(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return _json(status, {"status": "error", "error": {"code": status, "message": message}}, headers)


def _json(status: int, document: object, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(json.dumps(document) + "\n", status=status, headers=list(headers), content_type="application/json")
