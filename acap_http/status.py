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

    @property
    def code(self) -> int:
        return int(self.value.split(" ", 1)[0])

    @property
    def meaning(self) -> str:
        return _EXPLAINED[self][0]

    @property
    def fix(self) -> str:
        """What the operator does about it; empty when there is nothing to do."""
        return _EXPLAINED[self][1]


# What each Status means and what to do about it: the original's manual, word for word where it
# has the words (its "there but certificates" typo mended), and ours for 8.
_EXPLAINED = {
    Status.NOT_STARTED: ("The application is not started.", "Start the application."),
    Status.RUNNING: ("The application is started and dockerd is running.", ""),
    Status.DOCKERD_STOPPED: ("Dockerd was stopped successfully and will soon be restarted.", ""),
    Status.DOCKERD_RUNTIME_ERROR: (
        "Dockerd has reported an error during runtime that needs to be resolved by the operator.",
        "Change at least one parameter or restart the application in order to start dockerd again.",
    ),
    Status.TLS_CERT_MISSING: (
        "UseTLS is selected but certificates are missing on the device. "
        "The application is running but dockerd is stopped.",
        "Upload certificates and restart the application or de-select UseTLS.",
    ),
    Status.NO_SOCKET: (
        "Neither TCPSocket or IPCSocket are selected. The application is running but dockerd is stopped.",
        "Select one or both sockets.",
    ),
    Status.NO_SD_CARD: (
        "SDCardSupport is selected but no SD card is mounted in the device. "
        "The application is running but dockerd is stopped.",
        "Insert and mount an SD card.",
    ),
    Status.SD_CARD_WRONG_FS: (
        "SDCardSupport is selected but the mounted SD card has the wrong file system. "
        "The application is running but dockerd is stopped.",
        "Format the SD card with the correct file system.",
    ),
    Status.SD_CARD_WRONG_PERMISSION: (
        "SDCardSupport is selected but the application user does not have the correct file permissions "
        "to use it. The application is running but dockerd is stopped.",
        "Make sure no directories with the wrong user permissions are left on the SD card, "
        "then restart the application.",
    ),
    Status.TLS_CERT_INVALID: (
        "UseTLS is selected and the three TLS files are there, but dockerd would refuse them "
        "(they do not fit together, or one has expired). The application is running but dockerd is stopped.",
        "Upload a CA, server certificate and key that fit together (the TLS section says what is wrong), "
        "or de-select UseTLS.",
    ),
}
