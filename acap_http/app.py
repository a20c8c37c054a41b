"""The WSGI application: routes requests to the handlers the manifest calls for and the camera's
own endpoints, checks every request's level against the one access table (``access``), and turns
every error into an answer at one boundary: plain text, or JSON under ``/config/``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from acap_http import access
from acap_http.errors import ManifestError
from acap_http.escape import printable
from acap_http.handlers import origin, param_api
from acap_http.handlers.applications import Applications
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.discovery import Discovery
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.page import ASSETS, STATE, PageEndpoints
from acap_http.handlers.param_api import ParamApi
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.paths import request_path
from acap_http.handlers.responses import HttpError, text_response
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.metrics import METRICS
from acap_http.tls.files import TLS_FILES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

# The original's sentence for any method an endpoint does not take.
UNSUPPORTED_METHOD = "Unsupported request method"
# What the camera's web server answers for the pages of an application that is not running.
NOT_RUNNING = "The application is not running"
JSON_PATHS = "/config/"

View = Callable[[Request], Response]
TLS_SET = "tls"  # the httpConfig name of the endpoint for the three files as one set
DAEMON_JSON = "daemon.json"
INFO = "info"


@dataclass(frozen=True)
class Endpoints:
    """The handlers behind the paths; a camera endpoint left out answers 404."""

    tls_files: TlsEndpoints
    param_cgi: ParamCgi
    daemon_json: DaemonJsonEndpoints | None = None
    info: InfoEndpoint | None = None
    applications: Applications | None = None
    param_api: ParamApi | None = None
    discovery: Discovery | None = None
    page: PageEndpoints | None = None
    metrics: View | None = None


class AcapApp:
    """Serves the endpoints of one manifest, and the camera's."""

    def __init__(self, manifest: Manifest, endpoints: Endpoints, running: Callable[[], bool] = lambda: True) -> None:
        self.manifest = manifest
        self._running = running
        self._table = access.rules(manifest)
        self._own = frozenset(manifest.endpoint_path(endpoint) for endpoint in manifest.endpoints)
        # The settings page, its files and its state answer while the application is stopped (the
        # page is where an operator starts it again), and the metrics (a stopped application is
        # news to a monitoring system, not a failed scrape).
        page = ("", manifest.setting_page, STATE, *ASSETS) if endpoints.page and manifest.setting_page else ()
        metrics = (METRICS,) if endpoints.metrics else ()
        self._while_stopped = frozenset(manifest.local_prefix + name for name in (*page, *metrics))
        rules = [*_camera_rules(endpoints), *_own_rules(manifest, endpoints)]
        self._known = ", ".join(endpoint.name for endpoint in manifest.endpoints)
        self._map = Map(rules, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request_path(environ)
        try:
            rule = access.rule_for(self._table, path)
            origin.refuse_cross_site(request, path, rule)
            if rule is not None:
                self._check_level(request, rule, path)
            if path.startswith(self.manifest.local_prefix) and path not in self._while_stopped and not self._running():
                raise HttpError(503, NOT_RUNNING)
            if rule is None:  # every view has its rule: werkzeug's twin of one (``info/``) is none of them
                raise NotFound()
            response = self._dispatch(request, path)
        except HTTPException as err:
            response = self._error_response(path, err)
        except Exception:
            logger.exception("%s %s failed", request.method, printable(path))
            response = self._error_response(path, HttpError(500, "Internal error; see the application log"))
        logger.debug(
            "%s %s user=%s -> %d",
            request.method,
            printable(path),
            printable(environ.get("REMOTE_USER", "-")),
            response.status_code,
        )
        return response(environ, start_response)

    def _check_level(self, request: Request, rule: access.Rule, path: str) -> None:
        """The level the front passed must reach what the table asks of this request. Without a level,
        a front that checks each endpoint itself (the camera's web server, for the manifest's
        endpoints) is trusted; anywhere else an authenticated user counts as a viewer."""
        level = request.environ.get(ACCESS_ENV, "")
        granted = Access.__members__.get(level.upper())
        if granted is None and path in self._own:
            return
        if granted is None and request.environ.get("REMOTE_USER"):
            granted = Access.VIEWER
        needed = rule.needed(request.method, access.query_arguments(request.environ.get("QUERY_STRING", "")))
        if granted is None or granted < needed:
            user = printable(request.environ.get("REMOTE_USER", "anonymous"))
            logger.warning("Refused %s %s to %s: needs %s, has %s", request.method, printable(path), user,
                           needed.word, printable(level) or "none")  # fmt: skip
            prefix = "# Error: " if path == access.PARAM_CGI else ""
            raise HttpError(403, f"{prefix}User '{user}' may not do this; it needs the {needed.word} level")

    def _dispatch(self, request: Request, path: str) -> Response:
        adapter = self._map.bind("localhost", path_info=path)
        view, _ = adapter.match(method=request.method)
        return cast(View, view)(request)

    def _error_response(self, path: str, err: HTTPException) -> Response:
        code = err.code or 500
        message = err.message if isinstance(err, HttpError) else err.name
        headers = err.extra_headers if isinstance(err, HttpError) else []
        if isinstance(err, MethodNotAllowed):
            message, headers = UNSUPPORTED_METHOD, [("Allow", ", ".join(err.valid_methods or []))]
        elif code == 404 and not isinstance(err, HttpError):
            known = path.startswith(self.manifest.local_prefix)
            message = f"No such file here; the files are: {self._known}" if known else "Not found"
        if path.startswith(JSON_PATHS):
            return param_api.error(code, message.removeprefix("# Error: "), headers)
        return text_response(code, message, headers)


def _camera_rules(endpoints: Endpoints) -> list[Rule]:
    """The camera's own endpoints, which the host has to provide itself."""
    rules = [Rule(access.PARAM_CGI, endpoint=endpoints.param_cgi, methods=["GET", "POST"])]
    if endpoints.applications is not None:
        rules += [
            Rule(access.APPLICATIONS_LIST, endpoint=endpoints.applications.list, methods=["GET", "POST"]),
            Rule(access.APPLICATIONS_CONTROL, endpoint=endpoints.applications.control, methods=["GET", "POST"]),
        ]
    if endpoints.discovery is not None:
        rules += [
            Rule(access.API_DISCOVERY, endpoint=endpoints.discovery.api_discovery, methods=["POST"]),
            Rule(access.BASIC_DEVICE_INFO, endpoint=endpoints.discovery.basic_device_info, methods=["POST"]),
        ]
    if endpoints.param_api is not None:
        rules += [
            # Every method reaches the API, which answers the ones it does not take in JSON.
            Rule(access.PARAM_API, endpoint=endpoints.param_api),
            Rule(f"{access.PARAM_API}/<path:rest>", endpoint=endpoints.param_api),
            Rule(access.DISCOVER_APIS, endpoint=endpoints.param_api.discover, methods=["GET"]),
        ]
    return rules


def _own_rules(manifest: Manifest, endpoints: Endpoints) -> list[Rule]:
    """The views of each httpConfig entry the manifest declares; a rule's endpoint is the view
    itself, one rule per method, so werkzeug answers other methods with 405 and an Allow header."""
    tls = endpoints.tls_files
    views: dict[str, dict[str, View]] = {
        name: {"POST": partial(tls.post_file, name=name), "DELETE": partial(tls.delete_file, name=name)}
        for name in TLS_FILES
    }
    views[TLS_SET] = {"POST": tls.post_set, "GET": tls.get_set}
    if endpoints.daemon_json is not None:
        daemon_json = endpoints.daemon_json
        views[DAEMON_JSON] = {"GET": daemon_json.get, "PUT": daemon_json.put, "POST": daemon_json.post}
    if endpoints.info is not None:
        views[INFO] = {"GET": endpoints.info.get}
    if endpoints.metrics is not None:
        views[METRICS] = {"GET": endpoints.metrics}
    rules = []
    if endpoints.page is not None:
        page = endpoints.page
        views |= {name: {"GET": partial(page.asset, name=name)} for name in ASSETS}
        views[STATE] = {"GET": page.state}
        if manifest.setting_page:
            views[manifest.setting_page] = {"GET": page.index}
            rules.append(Rule(manifest.local_prefix, endpoint=page.index, methods=["GET"]))
    for endpoint in manifest.endpoints:
        if endpoint.name not in views:
            raise ManifestError(f"httpConfig entry {endpoint.name!r} has no handler in acap-http")
        path = manifest.endpoint_path(endpoint)
        rules += [Rule(path, endpoint=view, methods=[method]) for method, view in views[endpoint.name].items()]
    return rules
