"""What a supervisor counted for the metrics, as it told it (the supervisor's tests' ``Counts``)."""

from __future__ import annotations

from acap_http.supervisor.events import Cause


class Counted:
    def __init__(self) -> None:
        self.restarts: list[tuple[Cause, float]] = []
        self.reloads: list[Cause] = []
        self.crashes = 0

    def restarted(self, cause: Cause, seconds: float) -> None:
        self.restarts.append((cause, seconds))

    def reloaded(self, cause: Cause) -> None:
        self.reloads.append(cause)

    def crashed(self) -> None:
        self.crashes += 1

    @property
    def causes(self) -> list[Cause]:
        return [cause for cause, _ in self.restarts]
