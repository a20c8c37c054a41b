"""What dockerd needs from the parameters, read once per start into a frozen
snapshot, and the checks that must pass before dockerd may start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acap_http.status import Status
from acap_http.tls.store import TlsStore

if TYPE_CHECKING:
    from acap_http.params import ParamStore

logger = logging.getLogger(__name__)

# The parameters the supervisor reads, by their manifest names.
SD_CARD = "SDCardSupport"
USE_TLS = "UseTLS"
TCP_SOCKET = "TCPSocket"
IPC_SOCKET = "IPCSocket"
DOCKERD_LOG_LEVEL = "DockerdLogLevel"
STATUS = "Status"

TLS_PORT = 2376
PLAIN_PORT = 2375


@dataclass(frozen=True)
class Settings:
    use_tls: bool
    tcp_socket: bool
    ipc_socket: bool
    dockerd_log_level: str
    sd_card: bool

    @classmethod
    def read(cls, get: Callable[[str], str], is_on: Callable[[str], bool]) -> Settings:
        """One consistent snapshot, taken when dockerd is about to start."""
        return cls(
            use_tls=is_on(USE_TLS),
            tcp_socket=is_on(TCP_SOCKET),
            ipc_socket=is_on(IPC_SOCKET),
            dockerd_log_level=get(DOCKERD_LOG_LEVEL),
            sd_card=is_on(SD_CARD),
        )

    @property
    def dockerd_part(self) -> tuple[bool, str, bool]:
        """What dockerd itself is started with when the API's front serves the TCP socket: a
        change of anything else (UseTLS, TCPSocket) is the front's, and restarts nothing."""
        return self.ipc_socket, self.dockerd_log_level, self.sd_card

    @property
    def port(self) -> int:
        return TLS_PORT if self.use_tls else PLAIN_PORT

    @property
    def tls_on_tcp(self) -> bool:
        return self.tcp_socket and self.use_tls


def restart_on_changes(params: ParamStore, restart: Callable[[str], None]) -> None:
    """Every setting an operator changes restarts dockerd; the program's own (Status) does not."""

    def changed(names: frozenset[str]) -> None:
        settings = sorted(name for name in names if not params.specs[name].readonly)
        if settings:
            restart(f"{', '.join(settings)} changed")

    params.subscribe(changed)


def check(settings: Settings, store: TlsStore, *, judge: bool = True) -> Status | None:
    """The Status that keeps dockerd from starting, or None when it may start. With ``judge``
    off, it never waits: ``verdicts.NotJudged`` when the TLS files' verdict has yet to be made."""
    if settings.tls_on_tcp:
        files = store.read()  # once: a file removed meanwhile is missing, not an error
        missing = [name for name, data in files.items() if data is None]
        for name in missing:
            logger.warning("TLS file missing: %s (upload it or set UseTLS=no)", store.directory / name)
        if missing:
            return Status.TLS_CERT_MISSING
        refusal = store.refusal(files, judge=judge)
        if refusal:
            logger.error("The TLS files would not let dockerd start: %s; upload a set that fits together", refusal)
            return Status.TLS_CERT_INVALID
    if not settings.tcp_socket and not settings.ipc_socket:
        logger.warning("Neither TCPSocket nor IPCSocket is on; dockerd would have no socket")
        return Status.NO_SOCKET
    return None
