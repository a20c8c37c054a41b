"""Log lines look like dockerd's and the debug switch acts at once."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import pytest

from acap_http import logs


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("acap_http.test", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("level", "word"),
    [(logging.DEBUG, "DEBU"), (logging.INFO, "INFO"), (logging.WARNING, "WARN"), (logging.ERROR, "ERRO")],
)
def test_dockerd_style_line(level: int, word: str) -> None:
    """LEVEL[RFC 3339 time with offset] message, as logrus writes for dockerd."""
    line = logs.DockerdStyleFormatter().format(_record(level, "Stored ca.pem"))
    assert re.fullmatch(rf"{word}\[\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}[+-]\d\d:\d\d\] Stored ca\.pem", line)


def test_traceback_follows_the_line() -> None:
    """An exception's traceback comes on the lines after the message."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record(logging.ERROR, "failed")
        record.exc_info = sys.exc_info()
    first, *rest = logs.DockerdStyleFormatter().format(record).splitlines()
    assert first.startswith("ERRO[") and first.endswith("] failed")
    assert rest[-1] == "RuntimeError: boom"


@pytest.fixture
def root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger")
def test_debug_switch(capsys: pytest.CaptureFixture[str]) -> None:
    """Debug lines appear only while debug is on."""
    logs.configure(to_stdout=True)
    logger = logging.getLogger("acap_http.test")
    logger.debug("hidden")
    logs.set_debug(True)
    logger.debug("shown")
    logs.set_debug(False)
    logger.debug("hidden again")
    out = capsys.readouterr().out
    assert "shown" in out and "hidden" not in out


def test_the_tail_keeps_the_last_lines_escaped() -> None:
    """The settings page's tail: the last N lines, one per line of a record, controls escaped."""
    tail = logs.Tail(lines=3)
    for number in range(5):
        tail.handle(_record(logging.INFO, f"line {number}"))
    tail.handle(_record(logging.WARNING, "forged\nINFO[x] admin logged in\x1b[2J"))
    lines = tail.lines()
    assert len(lines) == 3
    assert lines[0].endswith("line 3") and lines[1].endswith("line 4")
    assert lines[2].startswith("WARN[") and "\n" not in lines[2] and "\x1b" not in lines[2]
