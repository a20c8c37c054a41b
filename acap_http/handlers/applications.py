"""``/axis-cgi/applications/list.cgi`` and ``control.cgi``: the VAPIX Application API, for the one
application this host runs (Axis's Application API documentation; the answers' shape is that of
cameras' recorded answers, see tests/fixtures/vapix).

list.cgi answers the camera's XML: one ``<application …/>`` in a ``<reply result="ok">``.
control.cgi starts, stops or restarts it: the containers, dockerd and everything under it go and
come back, the HTTP side stays. Its answers are the camera's: ``OK``, or ``Error: N`` (4 no such
application, 6 already running, 7 not running, 8 could not start, 10 anything else: removing
is refused so, the application is not removable from here).
"""

from __future__ import annotations

import logging
from typing import Protocol
from xml.sax.saxutils import quoteattr

from werkzeug.wrappers import Request, Response

from acap_http import device
from acap_http.escape import printable
from acap_http.handlers.param_cgi import request_arguments
from acap_http.handlers.responses import text_response
from acap_http.manifest import Manifest

logger = logging.getLogger(__name__)

NO_SUCH_PACKAGE, ALREADY_RUNNING, NOT_RUNNING, COULD_NOT_START, OTHER = 4, 6, 7, 8, 10
ACTIONS = ("start", "stop", "restart", "remove")


class Control(Protocol):
    """What the application offers its control (``application.Application``)."""

    @property
    def running(self) -> bool: ...
    def start_run(self) -> bool: ...
    def stop_run(self) -> bool: ...
    def restart_run(self) -> None: ...


class Applications:
    def __init__(self, manifest: Manifest, control: Control) -> None:
        self._manifest, self._control = manifest, control

    def list(self, request: Request) -> Response:
        entry = device.app_list_entry(self._manifest, self._control.running)
        attributes = " ".join(f"{name}={quoteattr(value)}" for name, value in entry.items())
        body = f'<reply result="ok">\n <application {attributes} />\n</reply>\n'
        return Response(body, status=200, content_type="text/xml; charset=utf-8")

    def control(self, request: Request) -> Response:
        arguments = request_arguments(request)
        action, package = arguments.get("action", ""), arguments.get("package", "")
        code = self._refusal(action, package)
        if code is None:
            logger.info("control.cgi: %s %s", action, package)
            code = self._act(action)
        return text_response(200, "OK" if code is None else f"Error: {code}")

    def _refusal(self, action: str, package: str) -> int | None:
        if package != self._manifest.app_name:
            logger.info("control.cgi: no application %r", printable(package))
            return NO_SUCH_PACKAGE
        if action not in ACTIONS:
            logger.info("control.cgi: unknown action %r", printable(action))
            return OTHER
        if action == "remove":
            logger.warning("control.cgi: removing %s is refused: it is not removable from here", package)
            return OTHER
        return None

    def _act(self, action: str) -> int | None:
        """None when done, else the camera's error code."""
        try:
            if action == "stop":
                return None if self._control.stop_run() else NOT_RUNNING
            if action == "restart":
                self._control.restart_run()
                return None
            return None if self._control.start_run() else ALREADY_RUNNING
        except Exception:
            logger.exception("control.cgi: the application could not %s", action)
            return COULD_NOT_START
