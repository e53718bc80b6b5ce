"""Digest scheduler with the dispatcher, a real SQLite store and a manual clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest

from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Message,
    Policy,
    QuietHours,
    Reason,
    Token,
    TrackedState,
    make_change_id,
)
from alertbot.domain.policy import update_policy
from alertbot.domain.scheduled_digest import digest_change_id
from alertbot.domain.why import explain
from alertbot.ports.notifier import Delivered, Limit, Target
from alertbot.ports.store import DestinationInfo, StoreError
from alertbot.services.dispatcher import Dispatcher, message_key
from alertbot.services.pacing import Pacer
from alertbot.services.scheduler import DigestScheduler
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock, eventually

CHAT = Destination("fake", "-100")
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
SET_AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BOUNDARY = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
"""End of the first daily period after the schedule was set (09:00 UTC)."""


@dataclass
class Recording:
    """A notifier that records what it was asked to send."""

    platform: str = "fake"
    sent: list[tuple[str, Message]] = field(default_factory=list)

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        return ()

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        self.sent.append((key, message))
        return Delivered(message_id=f"m{len(self.sent)}")

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def setup(store: SqliteStore, schedule: str) -> None:
    await store.subscribe(CHAT, 0, ALL_KINDS, SET_AT - timedelta(days=1))
    await store.change_policy(CHAT, lambda p: update_policy(p, SET_AT, digest=schedule),
                              SET_AT)


def grade(token: Token, frm: float, to: float, at: datetime) -> Change:
    return Change(make_change_id(token.token_id, Kind.TM_GRADE, frm, to, at), token,
                  Kind.TM_GRADE, frm, to, Direction.UP if to > frm else Direction.DOWN, at, at,
                  "Neutral", "Buy" if to > frm else "Sell", "band")


async def record(store: SqliteStore, *changes: Change) -> None:
    states = [TrackedState(c.token.token_id, c.kind, c.to_value, c.source_ts, band=3,
                           alerted_value=c.to_value) for c in changes]
    await store.record_poll(states, list(changes), max(c.detected_at for c in changes))


@dataclass
class Parts:
    """A scheduler and a way to deliver what is due, like one `alertbot run` process."""

    store: SqliteStore
    clock: ManualClock
    notifier: Recording = field(default_factory=Recording)

    @property
    def scheduler(self) -> DigestScheduler:
        return DigestScheduler(self.store, self.clock, band_label=Rules().band_label)

    async def deliver(self) -> None:
        # A dispatcher delivers until idle once (it drains at the end), like `run --once`.
        dispatcher = Dispatcher(self.store, {"fake": self.notifier}, self.clock, pacer=Pacer(),
                                rng=random.Random(1), drain_timeout=1.0)
        await dispatcher.run_until_idle(5)


def parts(store: SqliteStore, clock: ManualClock) -> tuple[DigestScheduler, Parts, Recording]:
    bot = Parts(store, clock)
    return bot.scheduler, bot, bot.notifier


async def test_scheduler_daily_only_sends_one_digest_per_period(store: SqliteStore,
                                                                  clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC only")
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY - timedelta(hours=3)
    await record(store, grade(BTC, 50, 70, clock.at - timedelta(hours=1)),
                 grade(ETH, 65, 30, clock.at - timedelta(minutes=30)))
    await dispatcher.deliver()
    assert notifier.sent == []  # digests only: no single alerts
    reasons = [d.reason for d in await store.recent_decisions(CHAT, 10)]
    assert reasons == [Reason.DIGEST_ONLY, Reason.DIGEST_ONLY]

    assert (await scheduler.check()).queued == 0  # the period has not ended
    clock.at = BOUNDARY + timedelta(seconds=1)
    result = await scheduler.check()
    assert (result.queued, result.next_at) == (1, BOUNDARY + timedelta(days=1))
    await dispatcher.deliver()
    (key, message), = notifier.sent
    # A deterministic key per (destination, period): a resend after a crash reuses it.
    assert key == message_key(digest_change_id(CHAT, "daily:2026-11-28"), CHAT)
    assert message.scheduled and message.title.startswith("Daily digest · 2026-11-27 09:00")
    assert "2 changes across 2 tokens." in message.lines
    assert "▲ BTC TM grade 50.0 → 70.0 (+20.0) (Neutral → Buy)" in message.lines
    assert "▼ ETH TM grade 65.0 → 30.0 (-35.0) (Neutral → Sell)" in message.lines
    assert "BTC: TM 70.0 (Buy)" in message.lines

    # Checking again, or after a restart (a new scheduler and dispatcher), sends nothing more.
    assert (await scheduler.check()).queued == 0
    scheduler2, dispatcher2, notifier2 = parts(store, clock)
    assert (await scheduler2.check()).queued == 0
    await dispatcher2.deliver()
    assert notifier2.sent == [] and len(notifier.sent) == 1


async def test_scheduler_empty_period_sends_nothing_and_says_why(store: SqliteStore,
                                                                 clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC")
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY + timedelta(minutes=1)
    result = await scheduler.check()
    assert (result.queued, result.empty) == (0, 1)
    await dispatcher.deliver()
    assert notifier.sent == []
    (decision,) = await store.recent_decisions(CHAT, 5)
    assert explain(decision.at, decision.change, decision.reason, decision.detail).endswith(
        "Daily digest · 2026-11-27 09:00 → 2026-11-28 09:00 UTC: not sent: nothing changed "
        "in the period")


async def test_scheduler_always_sends_a_digest_for_an_empty_period(store: SqliteStore,
                                                                   clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC always")
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY + timedelta(minutes=1)
    assert (await scheduler.check()).queued == 1
    await dispatcher.deliver()
    (_, message), = notifier.sent
    assert message.lines == ("No signal or grade changes in this period.",)


async def test_scheduler_not_only_sends_alerts_and_the_digest(store: SqliteStore,
                                                              clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC")
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY - timedelta(hours=1)
    await record(store, grade(BTC, 50, 70, clock.at))
    await dispatcher.deliver()
    clock.at = BOUNDARY
    await scheduler.check()
    await dispatcher.deliver()
    assert [m.scheduled for _, m in notifier.sent] == [False, True]


async def test_scheduler_missed_period_sent_on_start_within_six_hours(
        store: SqliteStore, clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC")
    await record(store, grade(BTC, 50, 70, BOUNDARY - timedelta(hours=2)))
    clock.at = BOUNDARY + timedelta(hours=5, minutes=59)  # the bot was down at 09:00
    scheduler, dispatcher, notifier = parts(store, clock)
    assert (await scheduler.check()).queued == 1
    await dispatcher.deliver()
    assert [m.scheduled for _, m in notifier.sent] == [False, True]


async def test_scheduler_missed_period_over_six_hours_is_skipped_and_explained(
        store: SqliteStore, clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC only")
    await record(store, grade(BTC, 50, 70, BOUNDARY - timedelta(hours=2)))
    clock.at = BOUNDARY + timedelta(hours=6, minutes=1)
    scheduler, dispatcher, notifier = parts(store, clock)
    result = await scheduler.check()
    assert (result.queued, result.skipped) == (0, 1)
    await dispatcher.deliver()
    assert notifier.sent == []
    lines = [explain(d.at, d.change, d.reason, d.detail)
             for d in await store.recent_decisions(CHAT, 5)]
    assert any("not sent: the bot was down when the period ended (period ended 2026-11-28 "
               "09:00 UTC)" in line for line in lines), lines


async def test_scheduler_digest_held_by_quiet_hours_until_they_end(store: SqliteStore,
                                                                   clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC")
    await store.change_policy(CHAT, lambda p: Policy(
        quiet=QuietHours(time(8, 0), time(10, 0)), digest=p.digest), SET_AT)
    await record(store, grade(BTC, 50, 70, BOUNDARY - timedelta(days=1) + timedelta(hours=2)))
    clock.at = BOUNDARY + timedelta(seconds=5)
    scheduler, dispatcher, notifier = parts(store, clock)
    await dispatcher.deliver()  # the alert is held for quiet hours too
    assert (await scheduler.check()).queued == 1
    await dispatcher.deliver()
    assert notifier.sent == []
    held = [d for d in await store.recent_decisions(CHAT, 5) if d.reason == Reason.HELD_QUIET]
    assert any(d.change is not None and d.change.kind is Kind.SCHEDULED_DIGEST for d in held)
    clock.at = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    await dispatcher.deliver()
    assert [m.scheduled for _, m in notifier.sent] == [False, True]


@pytest.mark.parametrize("schedule", ["daily 09:00 UTC", "daily 09:00 UTC only"])
async def test_scheduler_token_muted_while_detected_is_left_out_of_the_digest(
        store: SqliteStore, clock: ManualClock, schedule: str) -> None:
    await setup(store, schedule)
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY - timedelta(hours=3)
    await store.mute_token(CHAT, BTC.token_id, clock.at + timedelta(hours=24), clock.at,
                           actor="mod")  # the "Mute BTC 24h" button
    await record(store, grade(BTC, 50, 70, clock.at + timedelta(minutes=1)),
                 grade(ETH, 65, 30, clock.at + timedelta(minutes=2)))
    clock.at += timedelta(minutes=3)
    await dispatcher.deliver()
    # Detected while muted, not yet decided when the period ends: left out all the same.
    await record(store, grade(BTC, 70, 40, BOUNDARY - timedelta(seconds=1)))
    clock.at = BOUNDARY
    assert (await scheduler.check()).queued == 1
    await dispatcher.deliver()
    (_, digest), = [(k, m) for k, m in notifier.sent if m.scheduled]
    assert "1 change across 1 token." in digest.lines
    assert not any("BTC" in line for line in digest.lines), digest.lines


async def test_scheduler_destination_muted_changes_are_left_out_of_the_digest(
        store: SqliteStore, clock: ManualClock) -> None:
    await setup(store, "daily 09:00 UTC only")
    scheduler, dispatcher, notifier = parts(store, clock)
    clock.at = BOUNDARY - timedelta(hours=3)
    await store.change_policy(CHAT, lambda p: update_policy(p, clock.at, mute="1h"), clock.at)
    await record(store, grade(BTC, 50, 70, clock.at + timedelta(minutes=1)))
    clock.at += timedelta(minutes=2)
    await dispatcher.deliver()
    clock.at += timedelta(hours=1)  # the mute has ended
    await record(store, grade(ETH, 65, 30, clock.at))
    await dispatcher.deliver()
    assert [d.reason for d in await store.recent_decisions(CHAT, 5)] == [
        Reason.DIGEST_ONLY, Reason.MUTED]
    clock.at = BOUNDARY
    assert (await scheduler.check()).queued == 1
    await dispatcher.deliver()
    (_, digest), = notifier.sent
    assert "1 change across 1 token." in digest.lines
    assert not any("BTC" in line for line in digest.lines), digest.lines


class FailingOnce:
    """The store, except that the first look for scheduled destinations fails."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def digest_destinations(self) -> list[DestinationInfo]:
        self.calls += 1
        if self.calls == 1:
            raise StoreError("database is locked")
        return await self._store.digest_destinations()


async def test_scheduler_run_store_fault_logs_one_line_and_checks_again(
        store: SqliteStore, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    await setup(store, "daily 09:00 UTC always")
    clock.at = BOUNDARY + timedelta(minutes=1)
    failing = FailingOnce(store)
    scheduler = DigestScheduler(failing, clock, band_label=Rules().band_label,  # type: ignore[arg-type]
                                check_every=0.01)
    stop = asyncio.Event()
    job = asyncio.create_task(scheduler.run(stop))
    await eventually(lambda: store.decided_periods(CHAT, ["daily:2026-11-28"]),
                     what="the period decided after the fault")
    stop.set()
    await job
    faults = [r for r in caplog.records if "scheduled digest check failed" in r.getMessage()]
    assert len(faults) == 1 and faults[0].exc_info is None
    assert "database is locked" in faults[0].getMessage()
