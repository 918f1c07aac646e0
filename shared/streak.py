"""Saying a thing once, after it has held for a while: a run of consecutive checks."""

from __future__ import annotations


class Streak:
    """Counts consecutive checks (e.g. one a second) for which a condition holds.

    ``add(holds)`` returns ``True`` on the call that completes ``length`` in a row, and never
    again (``done``): a hint is given once, not every second after."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.count = 0
        self.done = False

    def add(self, holds: bool) -> bool:
        if self.done:
            return False
        self.count = self.count + 1 if holds else 0
        self.done = self.count >= self.length
        return self.done
