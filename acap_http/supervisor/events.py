"""What the supervisor thread is told (events), and the words of its stop plans (steps)."""

from __future__ import annotations

from dataclasses import dataclass

from acap_http.supervisor.runner import Exit, Process

CONTAINERS = "containers"  # a stop step: ask dockerd to stop the running containers first
OUTPUT = "the containers' output"  # a stop step: hold it at the shims until dockerd has logged what it took
BRING_UP = "the bring-up"  # a stop step: the bring-up under way ends (cancelled), then what it started stops


@dataclass(frozen=True)
class Restart:
    reason: str
    seq: int
    at_once: bool  # the first start waits for nothing; a change waits a moment for others of its burst
    posted: float = 0.0  # when the change was made (the supervisor's clock)


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
