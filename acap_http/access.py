"""Who may do what, where: the one table of the HTTP surface's access levels (pure).

The application is authoritative: it checks every request against this table with the level
the front passed (``ACCESS_ENV``). Both fronts are generated from the same table: Apache's
locations (``servers.apache``) and serve's front (``servers.auth``), so that a level changed
in the manifest, or here, changes all three.

A rule names a path (or a path prefix), the level that reads there and the level that changes
something there; what is a change: any method but GET and HEAD (``METHODS``), or, as on
param.cgi, a query whose ``action`` is ``update`` whatever the method (``ACTION``), every
request (``ALWAYS``: control.cgi starts and stops by GET), or nothing (``NEVER``: a JSON-RPC
POST that only reads). A change is also what the cross-site rule refuses (``handlers.origin``).
Every judge of a query reads it as the app does (``query_arguments``); Apache, which sees it only
raw, matches it with a pattern that decodes alike (``first_argument_pattern``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from acap_http.manifest import Access, Manifest

# The camera's own endpoints, which the host has to provide itself.
PARAM_CGI = "/axis-cgi/param.cgi"
APPLICATIONS_LIST = "/axis-cgi/applications/list.cgi"
APPLICATIONS_CONTROL = "/axis-cgi/applications/control.cgi"
API_DISCOVERY = "/axis-cgi/apidiscovery.cgi"
BASIC_DEVICE_INFO = "/axis-cgi/basicdeviceinfo.cgi"
PARAM_API = "/config/rest/param/v2beta"
DISCOVER_APIS = "/config/discover/apis"
READING_METHODS = frozenset({"GET", "HEAD"})
# The argument, and its value, that make a param.cgi request a change (``Writes.ACTION``).
ACTION, UPDATE = "action", "update"


class Writes(enum.Enum):
    METHODS = "methods"  # any method but GET and HEAD changes something
    ACTION = "action"  # a query with action=update does, whatever the method (VAPIX param.cgi)
    ALWAYS = "always"  # every request does (VAPIX control.cgi)
    NEVER = "never"  # nothing changes here (a POST that only asks)


@dataclass(frozen=True)
class Rule:
    path: str
    read: Access
    change: Access
    writes: Writes = Writes.METHODS
    prefix: bool = False  # the path and everything under it
    slow: bool = False  # an answer may wait for containers to stop (a front must wait as long)

    def matches(self, path: str) -> bool:
        return path == self.path or (self.prefix and path.startswith(self.path + "/"))

    def changes(self, method: str, arguments: Mapping[str, str]) -> bool:
        """Whether this request changes something (``arguments``: its query, decoded as the app does)."""
        match self.writes:
            case Writes.ACTION:
                return arguments.get(ACTION) == UPDATE
            case Writes.METHODS:
                return method.upper() not in READING_METHODS
            case Writes.ALWAYS:
                return True
            case _:
                return False

    def needed(self, method: str, arguments: Mapping[str, str]) -> Access:
        return self.change if self.changes(method, arguments) else self.read


# The camera's own endpoints: the same on every host, whatever the manifest declares.
CAMERA = (
    # Any user lists; updating needs admin (a POST body's update is checked by param.cgi itself,
    # against this rule: ``handlers.param_cgi``).
    Rule(PARAM_CGI, Access.VIEWER, Access.ADMIN, Writes.ACTION),
    Rule(APPLICATIONS_LIST, Access.ADMIN, Access.ADMIN, Writes.NEVER),
    Rule(APPLICATIONS_CONTROL, Access.ADMIN, Access.ADMIN, Writes.ALWAYS, slow=True),
    Rule(API_DISCOVERY, Access.VIEWER, Access.VIEWER, Writes.NEVER),
    Rule(BASIC_DEVICE_INFO, Access.VIEWER, Access.VIEWER, Writes.NEVER),
    Rule(PARAM_API, Access.VIEWER, Access.ADMIN, Writes.METHODS, prefix=True),
    Rule(DISCOVER_APIS, Access.VIEWER, Access.VIEWER, Writes.NEVER),
)


def rules(manifest: Manifest) -> tuple[Rule, ...]:
    """Every path of the surface: the manifest's endpoints at their declared level, the application's
    own directory (its settings page, at the page's level) where the manifest names one, and the
    camera's."""
    own = tuple(Rule(manifest.endpoint_path(e), e.access, e.access) for e in manifest.endpoints)
    page = manifest.setting_page_endpoint
    if page is not None:
        own += (Rule(manifest.local_prefix, page.access, page.access),)
    return own + CAMERA


def camera_rule(path: str) -> Rule:
    """The rule of one of the camera's endpoints, for a handler that has to judge again what a front
    cannot see (param.cgi's update in a POST body)."""
    rule = rule_for(CAMERA, path)
    if rule is None:
        raise KeyError(path)
    return rule


def rule_for(table: tuple[Rule, ...], path: str) -> Rule | None:
    return next((rule for rule in table if rule.matches(path)), None)


def query_arguments(query: str) -> dict[str, str]:
    """A query's arguments, decoded, the first of a repeated name kept: what the app reads
    (werkzeug's ``request.args.get``), so that a front judging the same query judges it alike."""
    arguments: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        arguments.setdefault(name, value)
    return arguments


def first_argument_pattern(name: str, value: str) -> str:
    """A regular expression (PCRE, as Apache's ``<If>`` takes; Python's ``re`` reads it alike) that
    matches a raw, undecoded query exactly when ``query_arguments`` gives ``name`` the value
    ``value``: each letter as itself or percent-encoded (``%75pdate``), the first ``name`` deciding.
    For a front that sees the query only raw, so that it judges it as the app does."""
    first_name = rf"{_encoded(name)}(?:=|&|$)"
    return rf"^(?:(?!{first_name})[^&]*&)*{_encoded(name)}={_encoded(value)}(?:&|$)"


def _encoded(text: str) -> str:
    """``text`` as a query may spell it: each character itself or its %XX escape, in either case."""
    return "".join(f"(?:{re.escape(char)}|%{_either_case(f'{ord(char):02x}')})" for char in text)


def _either_case(hex_digits: str) -> str:
    return "".join(f"[{digit}{digit.upper()}]" if digit.isalpha() else digit for digit in hex_digits)
