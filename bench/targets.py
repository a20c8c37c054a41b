"""The targets of ``make bench``: each check prints whether it is met and remembers a miss, so
that the run ends non-zero and says which, and nobody reads a miss as a pass."""

from __future__ import annotations


class Targets:
    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, name: str, met: bool) -> str:
        """``met`` or ``NOT met``, for the line that shows the figure; a miss is remembered."""
        if not met:
            self.missed.append(name)
        return "met" if met else "NOT met"

    def verdict(self) -> int:
        """Print the misses; the exit status of the run."""
        if self.missed:
            print("\nTargets NOT met: " + "; ".join(self.missed))
            return 1
        print("\nEvery target met")
        return 0
