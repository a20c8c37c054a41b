"""The supervisor's phases, the transitions allowed between them, and the Status
each phase stands for (pure): the one table the state machine is checked against."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from acap_http.status import Status


class Phase(enum.Enum):
    NEW = "new"  # the application has not asked for dockerd yet
    WAITING = "waiting"  # a (re)start is due at a set time
    CARD_WAIT = "card wait"  # a start waits (up to 5 s) for the SD card to be mounted
    BRINGING_UP = "bringing up"  # a worker starts what is missing of the stack, then dockerd
    STARTING = "starting"  # dockerd spawned, not answering yet
    RUNNING = "running"  # dockerd answers /_ping
    STOPPING = "stopping"  # stopping what must stop (containers, dockerd, the stack), one step at a time
    IDLE = "idle"  # nothing runs until an operator changes something: a check failed, or dockerd reported an error
    STOPPED = "stopped"  # the application is stopping: for good


P = Phase
TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (P.NEW, P.WAITING),
        (P.NEW, P.STOPPING),  # stopped before it ever started: nothing to stop
        (P.WAITING, P.CARD_WAIT),
        (P.WAITING, P.BRINGING_UP),
        (P.WAITING, P.IDLE),
        (P.WAITING, P.STOPPING),  # what must go before a start: dockerd, or the stack for a full one
        (P.CARD_WAIT, P.BRINGING_UP),
        (P.CARD_WAIT, P.IDLE),
        (P.CARD_WAIT, P.STOPPING),
        (P.BRINGING_UP, P.STARTING),
        (P.BRINGING_UP, P.STOPPING),  # it failed (what came up stops), or a stop came: it is cancelled
        (P.STARTING, P.RUNNING),
        (P.STARTING, P.STOPPING),
        (P.STARTING, P.WAITING),  # dockerd stopped before it answered
        (P.STARTING, P.IDLE),  # dockerd reported an error
        (P.RUNNING, P.STOPPING),
        (P.RUNNING, P.WAITING),  # dockerd (or the namespace holder) died
        (P.RUNNING, P.IDLE),
        (P.STOPPING, P.WAITING),
        (P.STOPPING, P.IDLE),
        (P.STOPPING, P.STOPPED),
        (P.IDLE, P.WAITING),
        (P.IDLE, P.STOPPING),  # the stack goes when the card does, even with dockerd stopped
    }
)


class IllegalTransition(AssertionError):
    """A transition the table does not allow: a bug in the supervisor, never an operator's doing."""


def check_transition(source: Phase, target: Phase) -> None:
    if source is not target and (source, target) not in TRANSITIONS:
        raise IllegalTransition(f"supervisor cannot go from {source.value} to {target.value}")


def status_of(phase: Phase, blocked: Status | None) -> Status:
    """The Status a phase stands for; ``blocked`` says why an idle supervisor waits for the operator."""
    if phase in (Phase.NEW, Phase.STOPPED):
        return Status.NOT_STARTED
    if phase is Phase.RUNNING:
        return Status.RUNNING
    if phase is Phase.IDLE:
        return blocked or Status.DOCKERD_RUNTIME_ERROR
    return Status.DOCKERD_STOPPED  # on its way: waiting, bringing up, starting, stopping


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts after unexpected stops, so a crash loop does not spin."""

    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0  # a run at least this long forgets earlier crashes

    def delay(self, crashes: int) -> float:
        """The first unexpected stop restarts at once; then 1, 2, 4 … seconds up to the cap."""
        return 0.0 if crashes <= 1 else min(self.base * 2 ** (crashes - 2), self.cap)
