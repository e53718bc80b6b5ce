"""Delivery shapes and their ceiling: the fastest schedule the platform limits allow.

A burst is bounded, so "messages per second" depends on where one starts and stops counting.
The ceiling of a set of messages is the duration of the ideal schedule: every message sent at
the earliest instant at which no sliding window of any limit would hold more than its count
(windows half-open, as the strict fakes apply them). A sender's rate is judged on the span
from its first to its last accepted message against the ideal span of those same messages, so
a sender that loses messages is judged on what it delivered (and its losses are reported).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.fakes import discord_api, telegram_api

Scope = Callable[[str], "str | None"]
"""Bucket key of a chat under one limit (None: the limit does not apply to that chat)."""


def _everyone(chat: str) -> str:
    return "*"


def _per_chat(chat: str) -> str:
    return chat


def _groups_only(chat: str) -> str | None:
    return chat if chat.startswith("-") else None


@dataclass(frozen=True, slots=True)
class Window:
    """At most `count` messages per `period` seconds in one bucket."""

    name: str
    count: int
    period: float
    scope: Scope


# The documented limits, as the strict fakes enforce them (DESIGN §8, platforms.md).
TELEGRAM_WINDOWS = (
    Window("30/s overall", telegram_api.MESSAGES_PER_SECOND, 1.0, _everyone),
    Window("1/s per chat", telegram_api.MESSAGES_PER_SECOND_PER_CHAT, 1.0, _per_chat),
    Window("20/min per group", telegram_api.MESSAGES_PER_MINUTE_PER_GROUP, 60.0, _groups_only),
)
DISCORD_WINDOWS = (
    Window("50/s global", discord_api.GLOBAL_LIMIT, discord_api.GLOBAL_WINDOW_S, _everyone),
    Window("5/5 s per channel", discord_api.CREATE_MESSAGE_LIMIT,
           discord_api.CREATE_MESSAGE_WINDOW_S, _per_chat),
)


@dataclass(frozen=True, slots=True)
class Shape:
    """A burst of alerts: the chat of every message, in the order they are queued."""

    platform: str
    name: str
    chats: tuple[str, ...]

    @property
    def windows(self) -> tuple[Window, ...]:
        """The limits every message of this platform counts against."""
        return TELEGRAM_WINDOWS if self.platform == "telegram" else DISCORD_WINDOWS

    @property
    def per_chat(self) -> int:
        """Messages each chat receives (every shape here is uniform)."""
        counts = set(Counter(self.chats).values())
        if len(counts) != 1:
            raise ValueError(f"shape {self.name!r} is not uniform")
        return counts.pop()

    @property
    def limits_text(self) -> str:
        """The limits that apply, for the output."""
        return ", ".join(w.name for w in self.windows
                         if any(w.scope(chat) is not None for chat in set(self.chats)))


def _round_robin(chats: Sequence[str], per_chat: int) -> tuple[str, ...]:
    return tuple(chat for _ in range(per_chat) for chat in chats)


def telegram_shapes() -> list[Shape]:
    """40 alerts to 1 group, 1,000 over 50 groups, 1,000 to 1,000 private chats."""
    groups = [f"-100{7_000_000_000 + i}" for i in range(50)]
    private = [str(500_000_000 + i) for i in range(1000)]
    return [
        Shape("telegram", "40 alerts to 1 group", _round_robin(groups[:1], 40)),
        Shape("telegram", "1000 alerts over 50 groups", _round_robin(groups, 20)),
        Shape("telegram", "1000 alerts to 1000 private chats", _round_robin(private, 1)),
    ]


def discord_shapes() -> list[Shape]:
    """40 alerts to 1 channel, 1,000 over 50 channels."""
    channels = [str(900_000_000_000_000_000 + i) for i in range(50)]
    return [
        Shape("discord", "40 alerts to 1 channel", _round_robin(channels[:1], 40)),
        Shape("discord", "1000 alerts over 50 channels", _round_robin(channels, 20)),
    ]


def ideal_schedule(chats: Sequence[str], windows: Sequence[Window]) -> list[float]:
    """Send times (from 0) of the greedy schedule: each message at its earliest allowed instant.

    With identical messages and limits of the form "at most N per window", sending whatever
    fits as early as possible is optimal; ties go to the chat with the most messages left.
    """
    left = Counter(chats)
    buckets: dict[tuple[str, str], deque[float]] = {}

    def bucket_keys(chat: str) -> list[tuple[Window, tuple[str, str]]]:
        return [(w, (w.name, key)) for w in windows if (key := w.scope(chat)) is not None]

    def earliest(chat: str, now: float) -> float:
        ready = now
        for window, key in bucket_keys(chat):
            sent = buckets.get(key)
            if sent is not None and len(sent) >= window.count:
                ready = max(ready, sent[-window.count] + window.period)
        return ready

    # Lazy heap: a stored time is a lower bound (limits only tighten as messages are placed).
    heap = [(0.0, -n, chat) for chat, n in left.items()]
    heapq.heapify(heap)
    times: list[float] = []
    now = 0.0
    while heap:
        bound, _, chat = heapq.heappop(heap)
        ready = earliest(chat, max(now, bound))
        if ready > bound + 1e-12:
            heapq.heappush(heap, (ready, -left[chat], chat))
            continue
        now = ready
        times.append(now)
        for window, key in bucket_keys(chat):
            buckets.setdefault(key, deque(maxlen=window.count)).append(now)
        left[chat] -= 1
        if left[chat]:
            heapq.heappush(heap, (now, -left[chat], chat))
    return times


def ideal_span(chats: Sequence[str], windows: Sequence[Window]) -> float:
    """Seconds from the first to the last message of the ideal schedule."""
    times = ideal_schedule(chats, windows)
    return times[-1] - times[0] if times else 0.0


@dataclass(frozen=True, slots=True)
class Judged:
    """A sender's delivery of a shape measured against the ceiling."""

    delivered: int
    elapsed_s: float
    """First to last accepted message, as the fake saw them arrive."""
    ideal_s: float
    """The ideal span of the same delivered messages."""
    t90_s: float = 0.0
    """First accepted message to the one that completed 90 % of them (shows a slow tail)."""

    @property
    def rate(self) -> float | None:
        """Accepted messages per second over the span (None below two messages)."""
        if self.delivered < 2 or self.elapsed_s <= 0:
            return None
        return (self.delivered - 1) / self.elapsed_s

    @property
    def ceiling(self) -> float | None:
        """The rate the limits allow for the same messages."""
        if self.delivered < 2 or self.ideal_s <= 0:
            return None
        return (self.delivered - 1) / self.ideal_s

    @property
    def rate_vs_ceiling(self) -> float | None:
        """Achieved rate as a fraction of the ceiling."""
        if self.rate is None or self.ceiling is None:
            return None
        return self.rate / self.ceiling


def judge(arrivals: Sequence[tuple[str, float]], windows: Sequence[Window]) -> Judged:
    """Compare accepted messages (chat, arrival time) with their ideal schedule."""
    if not arrivals:
        return Judged(0, 0.0, 0.0)
    times = sorted(t for _, t in arrivals)
    elapsed = times[-1] - times[0]
    t90 = times[max(0, math.ceil(0.9 * len(times)) - 1)] - times[0]
    return Judged(len(arrivals), elapsed, ideal_span([c for c, _ in arrivals], windows), t90)
