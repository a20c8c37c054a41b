"""Client text made safe to show: in an answer line, a header or a log line,
a control character of the client's must not end the line, forge another one
or drive a terminal (ESC, CR, LF, BEL, FF …)."""

from __future__ import annotations

import unicodedata

# Control, format (bidi overrides), line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every unsafe character written as a Python escape (``\\x1b``, ``\\r``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in _UNSAFE_CATEGORIES else char for char in text)
