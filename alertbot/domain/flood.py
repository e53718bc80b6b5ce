"""Per-user command flood guard: a sliding-window budget decided purely (time is a parameter).

Both chat bindings ask it before a command is queued: within the budget a command runs; the
first one over it gets a single "slow down" answer; the rest are dropped in silence until
the window has room again, so one member's burst costs neither replies nor queue slots.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

COMMAND_BUDGET = 10
"""Commands one user may send per window."""
COMMAND_WINDOW = 60.0
"""Seconds of the sliding window."""


class Verdict(enum.StrEnum):
    """What to do with a command."""

    ALLOW = "allow"
    WARN = "warn"
    """Over the budget for the first time: answer once with `slow_down_text`, do not run it."""
    DROP = "drop"
    """Over the budget again: ignore it without an answer."""


def slow_down_text(retry_in: float) -> str:
    """The one answer a user gets when they go over the budget."""
    seconds = max(1, math.ceil(retry_in))
    return (f"Slow down: at most {COMMAND_BUDGET} commands a minute. I will answer you again "
            f"in {seconds}s; commands sent until then are ignored.")


@dataclass(slots=True)
class FloodGuard:
    """Sliding-window command budget per user; `now` is monotonic seconds."""

    budget: int = COMMAND_BUDGET
    window: float = COMMAND_WINDOW
    _admitted: dict[str, deque[float]] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)
    _swept: float = -math.inf

    def __post_init__(self) -> None:
        if self.budget < 1 or not self.window > 0:
            raise ValueError("the command budget and window must be positive")

    def check(self, user: str, now: float) -> Verdict:
        """Decide about a command `user` sends at `now`, and count it when it is allowed."""
        self._sweep(now)
        times = self._admitted.get(user)
        if times is None:
            times = self._admitted[user] = deque()
        self._expire(times, now)
        if len(times) < self.budget:
            times.append(now)
            self._warned.discard(user)
            return Verdict.ALLOW
        if user in self._warned:
            return Verdict.DROP
        self._warned.add(user)
        return Verdict.WARN

    def retry_in(self, user: str, now: float) -> float:
        """Seconds until `user` may send a command again (0 when they may now)."""
        times = self._admitted.get(user)
        if not times or len(times) < self.budget:
            return 0.0
        return max(0.0, times[0] + self.window - now)

    def __len__(self) -> int:
        return len(self._admitted)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def _sweep(self, now: float) -> None:
        # Once a window, forget users with nothing left in it: memory follows active users.
        if now - self._swept < self.window:
            return
        self._swept = now
        for user in list(self._admitted):
            times = self._admitted[user]
            self._expire(times, now)
            if not times:
                del self._admitted[user]
                self._warned.discard(user)
