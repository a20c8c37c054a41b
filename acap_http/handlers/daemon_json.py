"""``/local/<app>/daemon.json``: dockerd's configuration over HTTP.

GET gives the stored document (``{}`` when there is none, and as it is when dockerd refuses it,
so that it can be fixed from here). PUT (the document as the body) or POST (a multipart ``file``
part, as ``curl -F file=@daemon.json``) replaces it, once it passes every rule and dockerd's own
check; ``POST …?action=revert`` puts the previous one back. The answer says what dockerd does:
``X-Dockerd-Restart: reloaded`` (SIGHUP: the same dockerd, for what it reloads), ``restarted``,
or ``unchanged``. A refusal is 400 with one line, and nothing is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from acap_http.escape import printable
from acap_http.handlers.multipart import UploadLimits, read_file_parts
from acap_http.handlers.responses import HttpError, write_failure
from acap_http.handlers.tls_files import RELOADED, RESTART_HEADER, UNCHANGED
from acap_http.supervisor import daemon_json
from acap_http.supervisor.daemon_json import DaemonJson, NoPrevious, Refused, Replaced

logger = logging.getLogger(__name__)

RESTARTED = "restarted"


@dataclass(frozen=True)
class DaemonJsonEndpoints:
    store: DaemonJson
    restart: Callable[[str], None]
    reload: Callable[[str], bool]  # True when dockerd runs and will reload; else it restarts
    limits: UploadLimits = field(default_factory=lambda: UploadLimits(max_body=daemon_json.MAX_SIZE, max_parts=2))

    def get(self, request: Request) -> Response:
        return Response(self.store.read(), status=200, content_type="application/json")

    def put(self, request: Request) -> Response:
        request.max_content_length = daemon_json.MAX_SIZE
        try:
            data = request.get_data(cache=False)
        except TimeoutError:
            raise HttpError(408, "The request body did not come in time") from None
        return self._replace(lambda: self.store.replace(data))

    def post(self, request: Request) -> Response:
        action = request.args.get("action", "")
        if action == "revert":
            return self._replace(self.store.revert)
        if action:
            raise HttpError(400, f"Unknown action '{printable(action)}' (only action=revert, or no action)")
        parts = read_file_parts(request, self.limits)
        if len(parts) != 1:
            raise HttpError(400, f"Expected exactly one file part, got {len(parts)}. Send it as: "
                                 "curl -F file=@daemon.json (or PUT the document)")  # fmt: skip
        data = parts[0].data
        return self._replace(lambda: self.store.replace(data))

    def _replace(self, replace: Callable[[], Replaced]) -> Response:
        try:
            replaced = replace()
        except Refused as err:
            logger.warning("Refused daemon.json: %s", err)
            raise HttpError(400, f"Refused: {err}") from None
        except NoPrevious as err:
            raise HttpError(404, str(err)) from None
        except OSError as err:
            logger.error("Could not store daemon.json in %s: %s", self.store.files.directory, err)
            raise HttpError(*write_failure(err, "Failed to store daemon.json", "the stored one is kept")) from None
        response = Response(status=204)
        response.headers[RESTART_HEADER] = self._apply(replaced)
        return response

    def _apply(self, replaced: Replaced) -> str:
        """Ask for what the change needs; the word the answer carries."""
        if not replaced.changed:
            return UNCHANGED
        what = f"daemon.json changed ({', '.join(sorted(replaced.changed))})"
        if daemon_json.reloadable(replaced.changed) and self.reload(what):
            return RELOADED
        self.restart(what)
        return RESTARTED
