"""Client-side pacing under each platform's published limits.

Each limit is enforced as a sliding-window log: a send is allowed only if the window of that
length ending now holds fewer than `count` sends. A token bucket that lets its whole budget
out at once and then refills can carry nearly twice the limit in a window; a log cannot.

Buckets that many destinations share (Telegram's overall limit, Discord's global one) are
also served in order of arrival and spaced evenly (period / count apart): releasing a whole
window's budget in one instant sends a burst whose requests reach the server spread out,
and the tail of one burst then overlaps the head of the next in some window.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress

from alertbot.ports.notifier import Limit

SAFETY_MARGIN = 0.025
"""Seconds added to every window: requests can arrive closer together than they were sent."""


class SlidingWindow:
    """Send times of one bucket; pure arithmetic, time is passed in."""

    __slots__ = ("_spacing", "_times", "limit", "margin")

    def __init__(self, limit: Limit, margin: float = SAFETY_MARGIN) -> None:
        self.limit = limit
        self.margin = margin if limit.margin is None else limit.margin
        self._spacing = limit.period / limit.count if limit.shared else 0.0
        self._times: deque[float] = deque(maxlen=limit.count)

    def next_allowed(self, now: float) -> float:
        """Earliest time a send fits (now or later)."""
        ready = now
        if self._spacing and self._times:
            ready = max(ready, self._times[-1] + self._spacing)
        if len(self._times) >= self.limit.count:
            ready = max(ready, self._times[0] + self.limit.period + self.margin)
        return ready

    def record(self, at: float) -> None:
        """Count a send."""
        self._times.append(at)

    @property
    def last(self) -> float:
        """Time of the newest counted send (-inf when none)."""
        return self._times[-1] if self._times else float("-inf")

    def forget(self, at: float) -> None:
        """Uncount a send the server refused (it did not use the server's budget)."""
        with suppress(ValueError):  # already left the log
            self._times.remove(at)


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
        self._queues: dict[tuple[str, str], asyncio.Lock] = {}

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
                      scopes: Sequence[str] = ()) -> float:
        """Wait for room in every bucket, then take it; returns the slot's time.

        A destination first waits for its own buckets, then queues (first come, first
        served) for the shared ones, so no destination starves behind the others.
        """
        own = [(limit, key) for limit, key in limits if not limit.shared]
        shared = sorted({(limit.name, key) for limit, key in limits if limit.shared})
        while True:
            wait = self.delay(own, scopes)
            if wait > 0:
                await self._sleep(wait)
                continue
            if not shared:
                return self._take(limits)
            async with AsyncExitStack() as queues:
                for bucket in shared:
                    await queues.enter_async_context(self._queue(bucket))
                while self.delay(own, scopes) <= 0:
                    wait = self.delay(limits, scopes)
                    if wait <= 0:
                        return self._take(limits)
                    await self._sleep(wait)
            # Our own bucket was taken meanwhile (a reply to the same chat): queue again.

    def release(self, limits: Sequence[tuple[Limit, str]], at: float) -> None:
        """Give back a slot taken at `at` whose send was refused with a 429."""
        for limit, key in limits:
            window = self._windows.get((limit.name, key))
            if window is not None:
                window.forget(at)

    def _take(self, limits: Sequence[tuple[Limit, str]]) -> float:
        now = self._clock()
        for limit, key in limits:
            self._window(limit, key).record(now)
        return now

    def _queue(self, bucket: tuple[str, str]) -> asyncio.Lock:
        queue = self._queues.get(bucket)
        if queue is None:
            queue = self._queues[bucket] = asyncio.Lock()
        return queue

    def forget_idle(self, older_than: float) -> int:
        """Drop buckets idle for `older_than` seconds and expired pauses (memory stays flat
        however many chats were ever served); returns how many buckets went."""
        now = self._clock()
        stale = [k for k, w in self._windows.items()
                 if w.next_allowed(now) == now and w.last < now - older_than]
        for key in stale:
            del self._windows[key]
        for scope in [s for s, until in self._paused_until.items() if until <= now]:
            del self._paused_until[scope]
        return len(stale)
