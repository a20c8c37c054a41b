"""The WSGI application: routes requests to the handlers the manifest calls
for and turns every error into a plain-text answer at one boundary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from acap_http.errors import ManifestError
from acap_http.handlers import origin
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_cgi import PARAM_CGI_PATH, ParamCgi
from acap_http.handlers.responses import HttpError, text_response
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import Manifest
from acap_http.tlsfiles import TLS_FILES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

# The original's sentence for any method an endpoint does not take.
UNSUPPORTED_METHOD = "Unsupported request method"

View = Callable[[Request], Response]
TLS_SET = "tls"  # the httpConfig name of the endpoint for the three files as one set
DAEMON_JSON = "daemon.json"
INFO = "info"


class AcapApp:
    """Serves the endpoints of one manifest."""

    def __init__(
        self, manifest: Manifest, tls_files: TlsEndpoints, param_cgi: ParamCgi,
        daemon_json: DaemonJsonEndpoints | None = None, info: InfoEndpoint | None = None,
    ) -> None:  # fmt: skip
        self.manifest = manifest
        # The views of each httpConfig entry the manifest may declare, by method.
        views: dict[str, dict[str, View]] = {
            name: {"POST": partial(tls_files.post_file, name=name), "DELETE": partial(tls_files.delete_file, name=name)}
            for name in TLS_FILES
        }
        views[TLS_SET] = {"POST": tls_files.post_set, "GET": tls_files.get_set}
        if daemon_json is not None:
            views[DAEMON_JSON] = {"GET": daemon_json.get, "PUT": daemon_json.put, "POST": daemon_json.post}
        if info is not None:
            views[INFO] = {"GET": info.get}
        # The camera's own param.cgi, which the host has to provide itself.
        rules = [Rule(PARAM_CGI_PATH, endpoint=param_cgi, methods=["GET", "POST"])]
        for endpoint in manifest.endpoints:
            if endpoint.name not in views:
                raise ManifestError(f"httpConfig entry {endpoint.name!r} has no handler in acap-http")
            path = manifest.endpoint_path(endpoint)
            # A rule's endpoint is the view itself: one rule per method, so
            # werkzeug answers other methods with 405 and an Allow header.
            rules += [Rule(path, endpoint=view, methods=[method]) for method, view in views[endpoint.name].items()]
        self._known = ", ".join(endpoint.name for endpoint in manifest.endpoints)
        self._map = Map(rules, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            origin.refuse_cross_site(request, _request_path(environ))
            response = self._dispatch(request)
        except HTTPException as err:
            response = self._error_response(request, err)
        except Exception:
            logger.exception("%s %s failed", request.method, _request_path(environ))
            response = text_response(500, "Internal error; see the application log")
        logger.debug(
            "%s %s user=%s -> %d",
            request.method,
            _request_path(environ),
            environ.get("REMOTE_USER", "-"),
            response.status_code,
        )
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        adapter = self._map.bind("localhost", path_info=_request_path(request.environ))
        view, _ = adapter.match(method=request.method)
        return cast(View, view)(request)

    def _error_response(self, request: Request, err: HTTPException) -> Response:
        if isinstance(err, HttpError):
            return text_response(err.status, err.message, err.extra_headers)
        code = err.code or 500
        if isinstance(err, MethodNotAllowed):
            return text_response(405, UNSUPPORTED_METHOD, [("Allow", ", ".join(err.valid_methods or []))])
        if code == 404:
            path = _request_path(request.environ)
            if path.startswith(self.manifest.local_prefix):
                return text_response(404, f"No such file here; the files are: {self._known}")
            return text_response(404, "Not found")
        return text_response(code, err.name)


def _request_path(environ: WSGIEnvironment) -> str:
    """The decoded path the client asked for.

    Behind Apache's mod_proxy_fcgi the path is in REQUEST_URI (SCRIPT_NAME is
    the whole path and PATH_INFO is empty); elsewhere fall back to the WSGI keys.
    """
    raw = environ.get("REQUEST_URI")
    if raw:
        return unquote(raw.split("?", 1)[0], errors="replace")
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
