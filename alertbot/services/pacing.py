"""Client-side pacing under each platform's published limits.

Each limit is enforced as a sliding-window log: a send is allowed only if the window of that
length ending now holds fewer than `count` sends. A token bucket that lets its whole budget
out at once and then refills can carry nearly twice the limit in a window; a log cannot.

Buckets that many destinations share (Telegram's overall limit, Discord's global one) are
also served in order of arrival and spaced evenly (period / count apart): releasing a whole
window's budget in one instant sends a burst whose requests reach the server spread out,
and the tail of one burst then overlaps the head of the next in some window. (Sends
bunched into half a window were tried: the event loop then queues the requests of each
bunch, their answers slow down, and the measured margins grow more than the bunching saves.)

Every window is lengthened by a margin, because a request can reach the server later than
its slot and its successor sooner. Until a limit has seen a few answered sends its windows use
the fixed margin (`SAFETY_MARGIN`, or the limit's own); after that the margin is the slowest
of its recent sends' times from slot to answer (`Lateness`): no request reaches the server
later than its answer comes back, and none before its slot, so two arrivals are never closer
than their slots minus that. On a fast, steady network the windows run at the ceiling; on a
jittery, congested or CPU-starved one the margin grows with what was measured, and one stall
slows the windows only until it ages out of the recent sends.
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

LATENESS_SAMPLES = 64
"""Recent sends a limit's measured margin is taken over (an outlier ages out after these)."""
LATENESS_MIN_SAMPLES = 8
"""Sends a limit must have seen before its measured margin replaces the fixed one."""
LATENESS_FLOOR = 0.002
"""Smallest margin: clocks and timers round, and windows are half-open on the server."""


class Lateness:
    """How late a request of a limit can reach the server: its slowest recent answer."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=LATENESS_SAMPLES)

    def observe(self, seconds: float) -> None:
        """Count one send that was answered `seconds` after its slot."""
        self._samples.append(max(0.0, seconds))

    def margin(self, limit: Limit, default: float) -> float:
        """The margin for this limit's windows now (the default until measured)."""
        if len(self._samples) < LATENESS_MIN_SAMPLES:
            return default
        late = max(self._samples) + LATENESS_FLOOR
        # Capped at one window: slower than that, waiting whole windows does not help.
        return min(late, limit.period)


class SlidingWindow:
    """Send times of one bucket; pure arithmetic, time is passed in."""

    __slots__ = ("_next_even", "_spacing", "_times", "limit", "margin")

    def __init__(self, limit: Limit, margin: float = SAFETY_MARGIN) -> None:
        self.limit = limit
        self.margin = margin if limit.margin is None else limit.margin
        self._spacing = limit.period / limit.count if limit.shared else 0.0
        self._times: deque[float] = deque(maxlen=limit.count)
        self._next_even = float("-inf")

    def next_allowed(self, now: float, margin: float | None = None) -> float:
        """Earliest time a send fits (now or later), with this margin (default: the fixed one)."""
        ready = now
        if self._spacing:
            ready = max(ready, self._next_even)
        if len(self._times) >= self.limit.count:
            extra = self.margin if margin is None else margin
            ready = max(ready, self._times[0] + self.limit.period + extra)
        return ready

    def record(self, at: float) -> None:
        """Count a send."""
        self._times.append(at)
        if self._spacing:
            # Even spacing keeps to its grid: timers fire up to a millisecond late, and
            # spacing from each late send would add that to every slot of a long burst. A
            # send later than one spacing (the bucket was idle) starts a new grid.
            start = self._next_even if at - self._next_even < self._spacing else at
            self._next_even = start + self._spacing

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
        self._lateness: dict[str, Lateness] = {}

    def pause(self, scope: str, seconds: float) -> None:
        """Hold every send in a scope (a bucket key or a platform) for a while (after a 429)."""
        until = self._clock() + seconds
        self._paused_until[scope] = max(until, self._paused_until.get(scope, 0.0))

    def _window(self, limit: Limit, key: str) -> SlidingWindow:
        window = self._windows.get((limit.name, key))
        if window is None:
            window = self._windows[(limit.name, key)] = SlidingWindow(limit, self._margin)
        return window

    def _window_margin(self, limit: Limit, window: SlidingWindow) -> float:
        lateness = self._lateness.get(limit.name)
        return window.margin if lateness is None else lateness.margin(limit, window.margin)

    def settled(self, limits: Sequence[tuple[Limit, str]], at: float) -> None:
        """A send given the slot `at` was answered now: learn how late requests can be."""
        # A message sent in parts took a later slot of its own buckets for each part: the
        # time that counts is the last part's.
        latest = max((w.last for limit, key in limits if not limit.shared
                      and (w := self._windows.get((limit.name, key))) is not None), default=at)
        seconds = self._clock() - max(at, latest)
        for name in {limit.name for limit, _ in limits}:
            lateness = self._lateness.get(name)
            if lateness is None:
                lateness = self._lateness[name] = Lateness()
            lateness.observe(seconds)

    def margin(self, limit: Limit) -> float:
        """The margin a window of this limit gets now (measured, or the fixed one)."""
        fixed = self._margin if limit.margin is None else limit.margin
        lateness = self._lateness.get(limit.name)
        return fixed if lateness is None else lateness.margin(limit, fixed)

    def delay(self, limits: Sequence[tuple[Limit, str]], scopes: Sequence[str] = ()) -> float:
        """Seconds until a send to these buckets would be allowed."""
        now = self._clock()
        ready = now
        for limit, key in limits:
            window = self._window(limit, key)
            ready = max(ready, window.next_allowed(now, self._window_margin(limit, window)))
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
                 if w.next_allowed(now, self._window_margin(w.limit, w)) == now
                 and w.last < now - older_than]
        for key in stale:
            del self._windows[key]
        for scope in [s for s, until in self._paused_until.items() if until <= now]:
            del self._paused_until[scope]
        return len(stale)
