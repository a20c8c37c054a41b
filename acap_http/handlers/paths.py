"""The path a request asked for, whichever server handed it over."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def request_path(environ: WSGIEnvironment) -> str:
    """The decoded path the client asked for.

    Behind Apache's mod_proxy_fcgi the path is in REQUEST_URI (SCRIPT_NAME is
    the whole path and PATH_INFO is empty); elsewhere fall back to the WSGI keys.
    """
    raw = environ.get("REQUEST_URI")
    if raw:
        return unquote(raw.split("?", 1)[0], errors="replace")
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
