"""The supervisor's phases, the transitions allowed between them, the Status each phase
stands for, and its timers (pure): the tables the state machine is checked against.

A phase says what the supervisor is doing and, while it stops something, what follows:
a start, a start after a backoff, waiting for the operator, or the end."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from acap_http.status import Status


class Phase(enum.Enum):
    NEW = "new"  # the application has not asked for dockerd yet
    WAITING = "waiting"  # a (re)start is due at a set time
    CARD_WAIT = "card wait"  # a start waits (up to 5 s) for the SD card to be mounted
    BRINGING_UP = "bringing up"  # a worker starts what is missing of the stack, then dockerd
    STARTING = "starting"  # dockerd spawned, not answering yet
    RUNNING = "running"  # dockerd answers /_ping
    # Stopping what must stop (containers, dockerd, the stack), one step at a time; then:
    STOPPING_TO_START = "stopping to start"  # a start (a change, a new data-root)
    STOPPING_TO_RETRY = "stopping to retry"  # a start after a backoff (the stack did not come up)
    STOPPING_TO_IDLE = "stopping to idle"  # the operator's turn (the card went, dockerd cannot start)
    ENDING = "ending"  # the end: the application stops
    IDLE = "idle"  # nothing runs until an operator changes something: a check failed, or dockerd reported an error
    STOPPED = "stopped"  # the application is stopping: for good


STOPPING = frozenset({Phase.STOPPING_TO_START, Phase.STOPPING_TO_RETRY, Phase.STOPPING_TO_IDLE, Phase.ENDING})


class Timer(enum.Enum):
    START = "start"  # a (re)start is due
    KILL = "kill"  # the process being stopped has had its grace: SIGKILL
    CARD = "card"  # the wait for the SD card is over
    FRONT = "front"  # the API's front failed a while ago: it is started again


P = Phase
_ON_THEIR_WAY = (P.NEW, P.WAITING, P.CARD_WAIT, P.BRINGING_UP, P.STARTING, P.RUNNING, P.IDLE)
TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (P.NEW, P.WAITING),
        (P.WAITING, P.CARD_WAIT),
        (P.WAITING, P.BRINGING_UP),
        (P.WAITING, P.IDLE),
        (P.CARD_WAIT, P.BRINGING_UP),
        (P.CARD_WAIT, P.IDLE),
        (P.BRINGING_UP, P.STARTING),
        (P.STARTING, P.RUNNING),
        (P.STARTING, P.WAITING),  # dockerd stopped before it answered
        (P.STARTING, P.IDLE),  # dockerd reported an error
        (P.RUNNING, P.WAITING),  # dockerd (or the namespace holder) died
        (P.RUNNING, P.IDLE),
        (P.IDLE, P.WAITING),
        # What must go before a start: dockerd, or the stack for a full one (a new data-root).
        *((source, P.STOPPING_TO_START) for source in (P.WAITING, P.CARD_WAIT, P.STARTING, P.RUNNING)),
        (P.BRINGING_UP, P.STOPPING_TO_RETRY),  # the stack did not come up: what did stops
        # The card went, dockerd could not be started, or a handler failed: all stops.
        *((source, P.STOPPING_TO_IDLE) for source in _ON_THEIR_WAY),
        # The application stops, whatever it was doing (a stop under way goes on, to the end).
        *(
            (source, P.ENDING)
            for source in (*_ON_THEIR_WAY, P.STOPPING_TO_START, P.STOPPING_TO_RETRY, P.STOPPING_TO_IDLE)
        ),
        (P.STOPPING_TO_START, P.WAITING),
        (P.STOPPING_TO_RETRY, P.WAITING),
        (P.STOPPING_TO_IDLE, P.IDLE),
        (P.STOPPING_TO_IDLE, P.WAITING),  # a change came meanwhile, or the card is back
        (P.ENDING, P.STOPPED),
    }
)

# The Status each phase stands for; None: the reason an idle supervisor waits for the operator.
STATUS: Mapping[Phase, Status | None] = {
    P.NEW: Status.NOT_STARTED,
    P.WAITING: Status.DOCKERD_STOPPED,
    P.CARD_WAIT: Status.DOCKERD_STOPPED,
    P.BRINGING_UP: Status.DOCKERD_STOPPED,
    P.STARTING: Status.DOCKERD_STOPPED,
    P.RUNNING: Status.RUNNING,
    P.STOPPING_TO_START: Status.DOCKERD_STOPPED,
    P.STOPPING_TO_RETRY: Status.DOCKERD_STOPPED,
    P.STOPPING_TO_IDLE: Status.DOCKERD_STOPPED,
    P.ENDING: Status.DOCKERD_STOPPED,
    P.IDLE: None,
    P.STOPPED: Status.NOT_STARTED,
}


class IllegalTransition(AssertionError):
    """A transition the table does not allow: a bug in the supervisor, never an operator's doing."""


def check_transition(source: Phase, target: Phase) -> None:
    if source is not target and (source, target) not in TRANSITIONS:
        raise IllegalTransition(f"supervisor cannot go from {source.value} to {target.value}")


def status_of(phase: Phase, reason: Status | None) -> Status:
    """The Status of ``phase`` (``reason``: why an idle supervisor waits for the operator)."""
    return STATUS[phase] or reason or Status.DOCKERD_RUNTIME_ERROR


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts after unexpected stops, so a crash loop does not spin."""

    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0  # a run at least this long forgets earlier crashes

    def delay(self, crashes: int) -> float:
        """The first unexpected stop restarts at once; then 1, 2, 4 … seconds up to the cap."""
        return 0.0 if crashes <= 1 else min(self.base * 2 ** (crashes - 2), self.cap)
