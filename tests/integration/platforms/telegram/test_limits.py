"""Pacing against the strict Telegram fake: bursts that exceed every limit provoke no 429.

The pacer and the fake share one virtual clock that only moves when the pacer sleeps, and
only once every request already given a slot has reached the fake: the network is instant,
so the fake sees exactly the schedule the pacer made. Fifteen minutes of paced sending (300
messages at 20 per minute) take a second of real time, while every request still reaches the
fake over HTTP through python-telegram-bot. (Real network jitter is the benchmarks' subject.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Message,
    Policy,
    Token,
    make_change_id,
)
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.ports.notifier import Delivered, Limit, Target
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.pacing import Pacer
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram

BURST = 300
NO_THROTTLE = Policy(max_alerts=1000, window=timedelta(minutes=1))


class VirtualClock:
    """Monotonic seconds that advance only when someone sleeps and no request is in flight."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = self.now + seconds
        await self.idle.wait()
        self.now = max(self.now, wake)

    def started(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self.idle.set()


class CountingPacer(Pacer):
    """The real pacer; a taken slot counts as a request in flight until its send returns."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock=clock, sleep=clock.sleep)
        self.virtual = clock

    async def acquire(self, limits: Sequence[tuple[Limit, str]],
                      scopes: Sequence[str] = ()) -> float:
        slot = await super().acquire(limits, scopes)
        self.virtual.started()
        return slot


class CountingNotifier:
    """The real Telegram notifier, reporting when each send has returned."""

    platform = "telegram"

    def __init__(self, inner: TelegramNotifier, clock: VirtualClock) -> None:
        self.inner = inner
        self.clock = clock

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        return self.inner.limits(destination)

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        try:
            return await self.inner.send(target, message, key=key, silent=silent)
        finally:
            self.clock.finished()

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()


async def queue_burst(store: SqliteStore, destinations: list[Destination]) -> None:
    """One change per entry, each fanned out to exactly that entry's destination."""
    now = datetime.now(UTC)
    changes = []
    for i, destination in enumerate(destinations):
        token = Token(10_000 + i, f"T{i}", f"Token {i}", f"token-{i}")
        await store.set_policy(destination, NO_THROTTLE, now)
        await store.subscribe(destination, token.token_id, ALL_KINDS, now - timedelta(hours=1))
        source = datetime(2026, 1, 1, tzinfo=UTC)
        changes.append(Change(make_change_id(token.token_id, Kind.HOURLY, -1, 1, source), token,
                              Kind.HOURLY, -1.0, 1.0, Direction.UP, source, now, "bearish",
                              "bullish", "flip"))
    await store.record_poll([], changes, now)


async def deliver(store: SqliteStore, destinations: list[Destination]) -> FakeTelegram:
    clock = VirtualClock()
    async with FakeTelegram(clock=clock) as fake:
        pacer = CountingPacer(clock)
        notifier = CountingNotifier(TelegramNotifier.connect(fake.token, fake.root), clock)
        try:
            dispatcher = Dispatcher(store, {"telegram": notifier}, SystemClock(), pacer=pacer)
            await dispatcher.run_until_idle(120)
        finally:
            await notifier.close()
    return fake


async def test_pacing_burst_to_one_group_provokes_no_429(store: SqliteStore) -> None:
    group = Destination("telegram", "-100123")
    await queue_burst(store, [group] * BURST)
    fake = await deliver(store, [group])
    assert fake.rate_limited == 0
    assert len(fake.sent_to(-100123)) == BURST
    stamps = sorted(m.timestamp for m in fake.sent)
    # 20 per minute: 300 messages need at least 14 full minutes of (virtual) time.
    assert stamps[-1] - stamps[0] >= 14 * 60


async def test_pacing_burst_to_distinct_chats_provokes_no_429(store: SqliteStore) -> None:
    chats = [Destination("telegram", str(1000 + i)) for i in range(BURST)]
    await queue_burst(store, chats)
    fake = await deliver(store, chats)
    assert fake.rate_limited == 0
    assert len({m.chat_id for m in fake.sent}) == BURST
    stamps = sorted(m.timestamp for m in fake.sent)
    # 30 per second overall: 300 messages need at least 9 seconds.
    assert stamps[-1] - stamps[0] >= 9
