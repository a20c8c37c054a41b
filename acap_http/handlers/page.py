"""The settings page: ``/local/<app>/`` and its ``index.html`` (the manifest's settingPage, rendered
on the server with the state it shows, so that it reads without JavaScript), its stylesheet and
script (files of the package: nothing from elsewhere), and ``state``, the JSON it is kept live with.

Every answer forbids being framed and any script or style but the page's own files (CSP); the
page's own changes go to the API's endpoints, where the access table and the cross-site rule
judge them as they judge curl's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from werkzeug.wrappers import Request, Response

from acap_http.handlers import page_html
from acap_http.handlers.responses import HttpError
from acap_http.manifest import ACCESS_ENV, Access, Manifest
from acap_http.overview import Overview

# The page's own files, and the type each is served as.
ASSETS = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
STATE = "state"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass(frozen=True)
class PageEndpoints:
    manifest: Manifest
    overview: Overview

    def index(self, request: Request) -> Response:
        body = page_html.render(self._state(request), self.manifest.local_prefix)
        return _answer(body, "text/html; charset=utf-8", cache="no-store")

    def state(self, request: Request) -> Response:
        body = json.dumps(self._state(request), indent=2) + "\n"
        return _answer(body, "application/json", cache="no-store")

    def asset(self, request: Request, name: str) -> Response:
        try:
            body = resources.files("acap_http").joinpath("page", name).read_bytes()
        except OSError:
            raise HttpError(404, "Not found") from None
        return _answer(body, ASSETS[name], cache="no-cache")

    def _state(self, request: Request) -> dict[str, object]:
        user = request.environ.get("REMOTE_USER") or None
        passed = request.environ.get(ACCESS_ENV)
        # No level passed: the camera's web server, which checked the endpoint's own. One passed that
        # is no level (Apache's "none" for a user missing from its levels) is the lowest.
        level = None if passed is None else Access.__members__.get(passed.upper(), Access.VIEWER)
        return self.overview.state(user, level)


def _answer(body: str | bytes, content_type: str, cache: str) -> Response:
    response = Response(body, status=200, content_type=content_type, headers=list(PAGE_HEADERS))
    response.headers["Cache-Control"] = cache
    return response
