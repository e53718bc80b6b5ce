"""Client-side pacing under each platform's published limits.

Each limit is enforced as a sliding-window log: a send is allowed only if the window of that
length ending now holds fewer than `count` sends. A token bucket that lets its whole budget
out at once and then refills can carry nearly twice the limit in a window; a log cannot.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

SAFETY_MARGIN = 0.025
"""Seconds added to every window: requests can arrive closer together than they were sent."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` sends per `period` seconds in one scope, and where the number comes from."""

    name: str
    count: int
    period: float
    source: str


# Telegram Bot FAQ, "My bot is hitting limits, how do I avoid this?"
# (https://core.telegram.org/bots/faq); the same numbers are telegram.constants.FloodLimit.
TELEGRAM_OVERALL = Limit("telegram_overall", 30, 1.0,
                         "Bot FAQ: no more than about 30 messages per second overall")
TELEGRAM_PER_CHAT = Limit("telegram_chat", 1, 1.0,
                          "Bot FAQ: avoid more than one message per second in a single chat")
TELEGRAM_PER_GROUP = Limit("telegram_group", 20, 60.0,
                           "Bot FAQ: no more than 20 messages per minute to the same group")
# Discord rate-limits topic: 50 requests per second per bot (documented); create-message is
# commonly observed at 5 per 5 seconds per channel (X-RateLimit-Limit: 5; not documented).
DISCORD_GLOBAL = Limit("discord_global", 50, 1.0, "Discord docs: 50 requests per second")
DISCORD_PER_CHANNEL = Limit("discord_channel", 5, 5.0,
                            "observed X-RateLimit-Limit 5 per 5 s on create-message")
# Discord incoming webhooks: commonly observed 5 requests per 2 seconds per webhook.
DISCORD_PER_WEBHOOK = Limit("discord_webhook", 5, 2.0, "observed 5 per 2 s per webhook")


class SlidingWindow:
    """Send times of one bucket; pure arithmetic, time is passed in."""

    __slots__ = ("_times", "limit", "margin")

    def __init__(self, limit: Limit, margin: float = SAFETY_MARGIN) -> None:
        self.limit = limit
        self.margin = margin
        self._times: deque[float] = deque(maxlen=limit.count)

    def next_allowed(self, now: float) -> float:
        """Earliest time a send fits (now or later)."""
        if len(self._times) < self.limit.count:
            return now
        return max(now, self._times[0] + self.limit.period + self.margin)

    def record(self, at: float) -> None:
        """Count a send."""
        self._times.append(at)


class Pacer:
    """Waits until a send fits every limit of its destination, then records it atomically."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 margin: float = SAFETY_MARGIN) -> None:
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._windows: dict[tuple[str, str], SlidingWindow] = {}
        self._paused_until: dict[str, float] = {}

    def pause(self, scope: str, seconds: float) -> None:
        """Hold every send in a scope (a bucket key or a platform) for a while (after a 429)."""
        until = self._clock() + seconds
        self._paused_until[scope] = max(until, self._paused_until.get(scope, 0.0))

    def _window(self, limit: Limit, key: str) -> SlidingWindow:
        window = self._windows.get((limit.name, key))
        if window is None:
            window = self._windows[(limit.name, key)] = SlidingWindow(limit, self._margin)
        return window

    def delay(self, limits: Sequence[tuple[Limit, str]], scopes: Sequence[str] = ()) -> float:
        """Seconds until a send to these buckets would be allowed."""
        now = self._clock()
        ready = max((self._window(limit, key).next_allowed(now) for limit, key in limits),
                    default=now)
        for scope in scopes:
            ready = max(ready, self._paused_until.get(scope, 0.0))
        return max(0.0, ready - now)

    async def acquire(self, limits: Sequence[tuple[Limit, str]],
                      scopes: Sequence[str] = ()) -> None:
        """Wait for room in every bucket, then take it (no await between check and record)."""
        while True:
            wait = self.delay(limits, scopes)
            if wait <= 0:
                now = self._clock()
                for limit, key in limits:
                    self._window(limit, key).record(now)
                return
            await self._sleep(wait)

    def forget_idle(self, older_than: float) -> int:
        """Drop buckets with no send for `older_than` seconds (keeps memory flat)."""
        now = self._clock()
        stale = [k for k, w in self._windows.items()
                 if w.next_allowed(now) == now and _last(w) < now - older_than]
        for key in stale:
            del self._windows[key]
        return len(stale)


def _last(window: SlidingWindow) -> float:
    times = window._times
    return times[-1] if times else float("-inf")
