"""``/axis-cgi/param.cgi``: VAPIX ``list``, ``listdefinitions`` and ``update``.

Answers are ``200`` as on a camera, errors included: ``text/plain`` lines
``root.<Group>.<Name>=<value>``, ``OK``, or ``# Error: …``; the definitions are ``text/xml``
(``param_definitions``). Any user lists the application's group and the device's read-only
groups (``param_tree``); updating the application's parameters needs the level the access table
names for a change (``access``: an admin), also when the update comes in a POST body, which no
front sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from acap_http import access, config, identity
from acap_http.escape import printable
from acap_http.handlers import param_definitions
from acap_http.handlers.param_tree import ROOT, Entry, ParamTree
from acap_http.handlers.responses import HttpError, text_response, write_failure
from acap_http.manifest import ACCESS_ENV, Access
from acap_http.params import ParamStore

logger = logging.getLogger(__name__)

MAX_BODY = config.HANDLER_MAX_BODY
NOT_ARGUMENTS = frozenset({"action", "usergroup"})  # request keys that are not parameters
XML_FORMAT = "xmlschema"
ACTIONS = "use action=list, action=listdefinitions or action=update"


@dataclass(frozen=True)
class ParamCgi:
    tree: ParamTree
    model: str = "acap-http"  # what the definitions name as the device's model
    record: Callable[[str], None] = lambda result: None  # hears how each update ended: ok, refused or failed

    @property
    def store(self) -> ParamStore:
        return self.tree.store

    def __call__(self, request: Request) -> Response:
        arguments = request_arguments(request)
        action = arguments.get(access.ACTION, "")
        if action == "list":
            self._require(request, action)
            lines = self._list(arguments.get("group"))
        elif action == "listdefinitions":
            self._require(request, action)
            return self._definitions(request, arguments.get("group"), arguments.get("listformat", XML_FORMAT))
        elif action == access.UPDATE:
            self._require(request, action)
            lines = self._update([(k, v) for k, v in arguments.items(multi=True) if k not in NOT_ARGUMENTS])
        else:
            lines = [
                f"# Error: Unknown action '{printable(action)}' ({ACTIONS})"
                if action
                else f"# Error: No action given ({ACTIONS})"
            ]
        return text_response(200, "\r\n".join(lines))

    def _require(self, request: Request, action: str) -> None:
        """The level the front passed must reach what the access table asks of ``action``, wherever
        it came from: the app judged the query alone before. Without a level, an authenticated user
        counts as a viewer (as in ``app``)."""
        needed = access.camera_rule(access.PARAM_CGI).needed(request.method, {access.ACTION: action})
        level = request.environ.get(ACCESS_ENV, "")
        granted = Access.__members__.get(level.upper())
        if granted is None and request.environ.get("REMOTE_USER"):
            granted = Access.VIEWER
        if granted is None or granted < needed:
            user = printable(request.environ.get("REMOTE_USER", "anonymous"))
            logger.warning(
                "Refused param.cgi %s for %s: needs %s, has %s", action, user, needed.word, printable(level) or "none"
            )
            raise HttpError(403, f"# Error: User '{user}' may not do this; it needs the {needed.word} level")

    def _selected(self, groups: str | None) -> list[Entry | str]:
        """The entries the comma-separated ``groups`` name (all without), in order, with an error
        line in place of each that names nothing."""
        if not groups:
            return list(self.tree.everything())
        selected: list[Entry | str] = []
        for group in groups.split(","):
            found = self.tree.select(group.strip())
            if found is None:
                selected.append(f"# Error: Error -1 getting param in group '{printable(group)}'")
            else:
                selected += [entry for entry in found if entry not in selected]
        return selected

    def _list(self, groups: str | None) -> list[str]:
        return [
            f"{ROOT}{item.path}={item.value}" if isinstance(item, Entry) else item for item in self._selected(groups)
        ]

    def _definitions(self, request: Request, groups: str | None, listformat: str) -> Response:
        if listformat != XML_FORMAT:
            error = f"# Error: Unknown listformat '{printable(listformat)}' (use listformat={XML_FORMAT})"
            return text_response(200, error)
        selected = self._selected(groups)
        entries = [item for item in selected if isinstance(item, Entry)]
        if not entries:  # nothing to describe: the error lines, as list answers them
            return text_response(200, "\r\n".join(item for item in selected if isinstance(item, str)))
        body = param_definitions.document(entries, self.model, identity.VERSION, request.host)
        return Response(body, status=200, content_type="text/xml; charset=utf-8")

    def _update(self, pairs: list[tuple[str, str]]) -> list[str]:
        if not pairs:
            self.record("refused")
            return ["# Error: No parameters to update"]
        changes: dict[str, str] = {}
        keys: dict[str, str] = {}  # parameter name -> the request's key, for error lines
        refused = []
        for key, value in pairs:
            name = self.tree.app_name_of(key)
            if name:
                changes[name], keys[name] = value, key
            else:
                refused.append((key, value))
        refused += [(keys[name], value) for name, value, _ in self.store.refusals(changes)]
        if refused:
            refused = [(printable(key), printable(value)) for key, value in refused]
            logger.info("Refused param.cgi update: %s", ", ".join(f"{key}={value}" for key, value in refused))
            self.record("refused")
            return [f"# Error: Error setting '{key}' to '{value}'!" for key, value in refused]
        try:
            self.store.update(changes)
        except OSError as err:
            logger.error("Could not save parameters to %s: %s", self.store.path, err)
            status, line = write_failure(err, "Could not save the parameters", "the settings are unchanged")
            self.record("failed")
            raise HttpError(status, f"# Error: {line}") from None
        self.record("ok")
        return ["OK"]


def request_arguments(request: Request) -> MultiDict[str, str]:
    """A VAPIX CGI's arguments: the query's, then a POST body's, read as form data whatever its
    Content-Type says (VAPIX clients, Home Assistant's axis library among them, post
    ``action=list&…`` as text/plain)."""
    return MultiDict([*request.args.items(multi=True), *_body_arguments(request)])


def _body_arguments(request: Request) -> list[tuple[str, str]]:
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
