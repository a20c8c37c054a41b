"""What the supervisor thread is told (events), and the words of its stop plans (steps)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from acap_http.supervisor.runner import Exit, Process

CONTAINERS = "containers"  # a stop step: ask dockerd to stop the running containers first
OUTPUT = "the containers' output"  # a stop step: hold it at the shims until dockerd has logged what it took
BRING_UP = "the bring-up"  # a stop step: the bring-up under way ends (cancelled), then what it started stops


class Cause(enum.StrEnum):
    """Why dockerd starts again while the application runs: what its restarts are counted by."""

    UPLOAD = "upload"  # a TLS file stored
    SETTING = "setting"  # a parameter, or daemon.json, changed
    CRASH = "crash"  # dockerd, or the stack under it, stopped unasked
    CARD = "card"  # the SD card came back


class Counts(Protocol):
    """What hears of dockerd's restarts, reloads and crashes (the application's metrics)."""

    def restarted(self, cause: Cause, seconds: float) -> None:
        """dockerd answers again, ``seconds`` after the change or crash that restarted it."""

    def reloaded(self, cause: Cause) -> None:
        """A change was taken in place: dockerd's SIGHUP, or the API's front's new TLS files."""

    def crashed(self) -> None:
        """dockerd, or the stack under it, stopped unasked."""


class NoCounts:
    def restarted(self, cause: Cause, seconds: float) -> None:
        pass

    def reloaded(self, cause: Cause) -> None:
        pass

    def crashed(self) -> None:
        pass


@dataclass(frozen=True)
class Restart:
    reason: str
    seq: int
    at_once: bool  # the first start waits for nothing; a change waits a moment for others of its burst
    posted: float = 0.0  # when the change was made (the supervisor's clock)
    cause: Cause | None = None  # None: the application's own start, not a restart


@dataclass(frozen=True)
class Reload:
    """daemon.json changed in what dockerd takes on SIGHUP alone."""

    reason: str


@dataclass(frozen=True)
class Exited:
    process: Process
    exit: Exit


@dataclass(frozen=True)
class Answering:
    process: Process


@dataclass(frozen=True)
class CardChanged:
    present: bool


@dataclass(frozen=True)
class ContainersStopped:
    count: int


@dataclass(frozen=True)
class OutputHeld:
    hold: object  # the hold it reports on (a late report of an earlier stop's is not this one's)
    logged: bool  # dockerd logged all it had taken before the limit


@dataclass(frozen=True)
class StackUp:
    """The bring-up started what was missing of the stack, then dockerd."""

    attempt: object  # the bring-up it reports on
    dockerd: Process


@dataclass(frozen=True)
class StackFailed:
    """The bring-up did not get as far as dockerd (or was cancelled)."""

    attempt: object
    error: OSError
    retry: bool  # the stack did not come up: try again later; else (a program missing) the operator must act


@dataclass(frozen=True)
class Judged:
    """The TLS files' verdict the start waited for is known now."""

    attempt: object


@dataclass(frozen=True)
class FrontFailed:
    """The Docker API's front failed (a fault of its own): clients cannot reach dockerd."""


@dataclass(frozen=True)
class Shutdown:
    pass


Event = (
    Restart | Reload | Exited | Answering | CardChanged | ContainersStopped | OutputHeld | StackUp | StackFailed
    | Judged | FrontFailed | Shutdown
)  # fmt: skip
Step = str | Process
