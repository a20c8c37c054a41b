"""``/axis-cgi/param.cgi``: VAPIX ``list`` and ``update`` of the application's parameters.

Answers are ``200 text/plain`` as on a camera, errors included, one line each:
``root.<app>.<Name>=<value>``, ``OK``, or ``# Error: …``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from acap_http.escape import printable
from acap_http.handlers.responses import HttpError, text_response
from acap_http.manifest import ACCESS_ENV, Access
from acap_http.params import ParamStore

logger = logging.getLogger(__name__)

PARAM_CGI_PATH = "/axis-cgi/param.cgi"
ROOT = "root."
MAX_BODY = 64 * 1024
NOT_ARGUMENTS = frozenset({"action", "usergroup"})  # request keys that are not parameters


@dataclass(frozen=True)
class ParamCgi:
    store: ParamStore
    app_name: str

    def __call__(self, request: Request) -> Response:
        arguments = MultiDict([*request.args.items(multi=True), *_body_arguments(request)])
        action = arguments.get("action", "")
        if action == "list":
            self._require(request, action, Access.VIEWER)
            lines = self._list(arguments.get("group"))
        elif action == "update":
            self._require(request, action, Access.ADMIN)
            lines = self._update([(k, v) for k, v in arguments.items(multi=True) if k not in NOT_ARGUMENTS])
        else:
            lines = [
                f"# Error: Unknown action '{printable(action)}' (use action=list or action=update)"
                if action
                else "# Error: No action given (use action=list or action=update)"
            ]
        return text_response(200, "\r\n".join(lines))

    def _require(self, request: Request, action: str, needed: Access) -> None:
        # Without a level from the front, an authenticated user may list but never update.
        level = request.environ.get(ACCESS_ENV, "")
        granted = Access.__members__.get(level.upper())
        if granted is None and needed is Access.VIEWER and request.environ.get("REMOTE_USER"):
            return
        if granted is None or granted < needed:
            user = printable(request.environ.get("REMOTE_USER", "anonymous"))
            logger.warning(
                "Refused param.cgi %s for %s: needs %s, has %s", action, user, needed.word, printable(level) or "none"
            )
            raise HttpError(403, f"# Error: User '{user}' may not do this; it needs the {needed.word} level")

    def _list(self, groups: str | None) -> list[str]:
        lines = []
        for group in (groups or self.app_name).split(","):
            found = self._resolve(group.strip())
            if found is None:
                lines.append(f"# Error: Error -1 getting param in group '{printable(group)}'")
            else:
                values = self.store.values()
                lines += [f"{ROOT}{self.app_name}.{name}={values[name]}" for name in found]
        return lines

    def _resolve(self, group: str) -> list[str] | None:
        """The parameter names a group or parameter path stands for, or None if none."""
        name = self._local_name(group)
        if name is None:
            return None
        if not name:
            return [spec.name for spec in self.store.specs.values() if not spec.hidden]
        spec = self.store.find(name)
        return [spec.name] if spec else None

    def _local_name(self, path: str) -> str | None:
        """``[root.]<app>[.<Name>]`` -> ``<Name>`` (empty for the group), None for other groups."""
        if path.casefold().startswith(ROOT):
            path = path[len(ROOT) :]
        app, _, name = path.partition(".")
        return name if app.casefold() == self.app_name.casefold() else None

    def _update(self, pairs: list[tuple[str, str]]) -> list[str]:
        if not pairs:
            return ["# Error: No parameters to update"]
        changes: dict[str, str] = {}
        keys: dict[str, str] = {}  # parameter name -> the request's key, for error lines
        refused = []
        for key, value in pairs:
            name = self._local_name(key)
            if name:
                changes[name], keys[name] = value, key
            else:
                refused.append((key, value))
        refused += [(keys[name], value) for name, value, _ in self.store.refusals(changes)]
        if refused:
            refused = [(printable(key), printable(value)) for key, value in refused]
            logger.info("Refused param.cgi update: %s", ", ".join(f"{key}={value}" for key, value in refused))
            return [f"# Error: Error setting '{key}' to '{value}'!" for key, value in refused]
        try:
            self.store.update(changes)
        except OSError as err:
            logger.error("Could not save parameters to %s: %s", self.store.path, err)
            raise HttpError(500, "# Error: Could not save the parameters") from None
        return ["OK"]


def _body_arguments(request: Request) -> list[tuple[str, str]]:
    """The arguments of a POST body, read as form data whatever its Content-Type says: VAPIX
    clients (Home Assistant's axis library among them) post ``action=list&…`` as text/plain."""
    if request.method != "POST":
        return []
    request.max_content_length = MAX_BODY
    if request.mimetype == "multipart/form-data":
        return list(request.form.items(multi=True))
    try:
        body = request.get_data(cache=False).decode("utf-8", errors="replace")
    except TimeoutError:
        raise HttpError(408, "# Error: The request body did not come in time") from None
    return parse_qsl(body.strip(), keep_blank_values=True)
