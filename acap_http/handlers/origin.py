"""Cross-site request refusal (CSRF): a page on another origin, opened in a browser
that holds an admin's digest credentials, must not change anything.

Browsers say where a request comes from (``Origin`` on every POST and DELETE,
``Sec-Fetch-Site`` on every request); clients that are not browsers (curl,
SDKs, Ansible, VAPIX libraries) send neither and are not affected.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from werkzeug.wrappers import Request

from acap_http import access
from acap_http.escape import printable
from acap_http.handlers.responses import HttpError

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# "same-site" is refused too: another port of the same host is the same site, not the same origin.
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def changes_state(request: Request, rule: access.Rule | None) -> bool:
    """POST, PUT, PATCH and DELETE do; so does what the access table calls a change by GET: a
    param.cgi update, a control.cgi start or stop."""
    if request.method not in SAFE_METHODS:
        return True
    return rule is not None and rule.changes(
        request.method, access.query_arguments(request.environ.get("QUERY_STRING", ""))
    )


def refuse_cross_site(request: Request, path: str, rule: access.Rule | None) -> None:
    """HttpError 403 for a state-changing request a browser sent from another origin."""
    if not changes_state(request, rule):
        return
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    sent_origin = request.headers.get("Origin")
    if fetch_site in FOREIGN_FETCH_SITES:
        why = f"Sec-Fetch-Site: {fetch_site}"
    elif sent_origin is not None and (
        _origin(sent_origin) is None or _origin(sent_origin) != _origin(f"{request.scheme}://{request.host}")
    ):
        why = f"Origin: {printable(sent_origin)}"
    else:
        return
    logger.warning("Refused a cross-site %s %s (%s)", request.method, printable(path), why)
    prefix = "# Error: " if path == access.PARAM_CGI else ""
    raise HttpError(403, f"{prefix}Refused: a change requested by a page of another site ({why})")


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, default ports filled in; None for "null" or junk."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]
