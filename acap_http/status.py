"""The Status parameter's values, exactly as the original application writes them."""

from __future__ import annotations

import enum


class Status(enum.Enum):
    NOT_STARTED = "-1 NOT STARTED"
    RUNNING = "0 RUNNING"
    DOCKERD_STOPPED = "1 DOCKERD STOPPED"
    DOCKERD_RUNTIME_ERROR = "2 DOCKERD RUNTIME ERROR"
    TLS_CERT_MISSING = "3 TLS CERT MISSING"
    NO_SOCKET = "4 NO SOCKET"
    NO_SD_CARD = "5 NO SD CARD"
    SD_CARD_WRONG_FS = "6 SD CARD WRONG FS"
    SD_CARD_WRONG_PERMISSION = "7 SD CARD WRONG PERMISSION"
    # Ours, not the original's: the TLS files are there but dockerd would refuse them.
    TLS_CERT_INVALID = "8 TLS CERT INVALID"

    def __str__(self) -> str:
        return self.value
