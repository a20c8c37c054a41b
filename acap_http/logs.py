"""Log lines shaped like dockerd's (``INFO[2026-11-28T16:28:29.123456+00:00] message``),
to syslog on a camera or to standard output, and the level switch."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from acap_http import identity
from acap_http.escape import printable

SYSLOG_SOCKET = Path("/dev/log")
SYSLOG_IDENT = identity.NAME

# logrus (dockerd's logger) abbreviates its levels to four letters.
_LEVEL_WORDS = {
    logging.DEBUG: "DEBU",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERRO",
    logging.CRITICAL: "FATA",
}


class DockerdStyleFormatter(logging.Formatter):
    """``LEVEL[<RFC 3339 time>] message``, with any traceback on the lines after.

    The message is one line whatever it holds: control characters (a client's CR LF,
    ESC) are escaped, so nobody can forge a line or drive the reader's terminal.
    """

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_WORDS.get(record.levelno, record.levelname[:4].upper())
        when = datetime.fromtimestamp(record.created, UTC).astimezone()
        line = f"{level}[{when.isoformat(timespec='microseconds')}] {printable(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class Tail(logging.Handler):
    """The application's last log lines, in memory and bounded: what the settings page shows.
    Lines are formatted as the log's own (one line per record, controls escaped)."""

    def __init__(self, lines: int = 200) -> None:
        super().__init__()
        self._lines: deque[str] = deque(maxlen=lines)
        self.setFormatter(DockerdStyleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.extend(self.format(record).splitlines())
        except Exception:  # a logging handler never raises into the code that logs
            self.handleError(record)

    def lines(self) -> list[str]:
        self.acquire()  # the lock emit runs under
        try:
            return list(self._lines)
        finally:
            self.release()


def configure(to_stdout: bool, debug: bool = False) -> None:
    """Send the package's logs to stdout or syslog; replaces earlier set-up."""
    handler: logging.Handler
    fallback_note = None
    if to_stdout:
        handler = logging.StreamHandler(sys.stdout)
    elif SYSLOG_SOCKET.is_socket():
        handler = logging.handlers.SysLogHandler(
            address=str(SYSLOG_SOCKET), facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.ident = f"{SYSLOG_IDENT}: "
    else:
        handler = logging.StreamHandler(sys.stderr)
        fallback_note = f"no syslog socket at {SYSLOG_SOCKET}; logging to standard error"
    handler.setFormatter(DockerdStyleFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_debug(debug)
    if fallback_note:
        logging.getLogger(__name__).warning(fallback_note)


APPLICATION_LOG_LEVEL = "ApplicationLogLevel"


class _Params(Protocol):
    def get(self, name: str) -> str: ...
    def subscribe(self, observer: Callable[[frozenset[str]], None]) -> None: ...


def follow_level(params: _Params) -> None:
    """ApplicationLogLevel switches debug lines on and off at once, without a restart."""

    def apply() -> None:
        set_debug(params.get(APPLICATION_LOG_LEVEL) == "debug")

    apply()
    params.subscribe(lambda changed: apply() if APPLICATION_LOG_LEVEL in changed else None)


def set_debug(enabled: bool) -> None:
    """Switch debug lines on or off at once (ApplicationLogLevel)."""
    logging.getLogger().setLevel(logging.DEBUG if enabled else logging.INFO)
