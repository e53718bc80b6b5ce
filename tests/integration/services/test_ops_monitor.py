"""Operator alerts through the real store and dispatcher, to a recording notifier at the seam."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Destination, Kind, Message, Policy, Reason
from alertbot.observability.logs import Redactor
from alertbot.observability.metrics import QuotaUsage
from alertbot.ports.notifier import Delivered, Limit, Target
from alertbot.services.dispatcher import DeliveryRetry, Dispatcher
from alertbot.services.ops_monitor import OpsMonitor
from alertbot.services.pacing import Pacer
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock

OPS = Destination("telegram", "-100123")
USER = Destination("telegram", "-100777")
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class PollState:
    last_success: datetime | None = START
    last_error: str = ""
    interval: timedelta = timedelta(minutes=5)


@dataclass
class Recorder:
    """Notifier at the project's own seam: records every message it is asked to send."""

    platform: str = "telegram"
    sent: list[tuple[Destination, Message]] = field(default_factory=list)

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        return ()

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        self.sent.append((target.destination, message))
        return Delivered(message_id=str(len(self.sent)))

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass
class Harness:
    store: SqliteStore
    clock: ManualClock
    polls: PollState
    recorder: Recorder
    auth: list[str | None] = field(default_factory=lambda: [None])
    quota: list[QuotaUsage | None] = field(default_factory=lambda: [None])

    def monitor(self) -> OpsMonitor:
        async def quota(now: datetime) -> QuotaUsage | None:
            return self.quota[0]
        return OpsMonitor(self.store, self.clock, OPS, self.polls, wake=lambda: None,
                          redactor=Redactor(["tm-secret-key-1234"]),
                          auth_error=lambda: self.auth[0], quota=quota)

    async def deliver(self) -> list[str]:
        """Run the dispatcher until idle; titles sent to the ops destination."""
        self.recorder.sent.clear()
        # A dispatcher drains once; each delivery round gets a fresh one, like each run.
        dispatcher = Dispatcher(self.store, {"telegram": self.recorder}, self.clock,
                                pacer=Pacer(), retry=DeliveryRetry(base=0.01, cap=0.02),
                                rng=random.Random(1))
        await dispatcher.run_until_idle(limit=5)
        return [m.title for d, m in self.recorder.sent if d == OPS]


@pytest.fixture
async def harness(store: SqliteStore) -> AsyncIterator[Harness]:
    clock = ManualClock(START)
    recorder = Recorder()
    await store.ensure_destination(OPS, START - timedelta(days=1),
                                   policy=Policy(max_alerts=100))
    await store.subscribe(USER, ALL_TOKENS, ALL_KINDS, START - timedelta(days=1))
    yield Harness(store, clock, PollState(), recorder)


async def test_ops_key_rejected_alerted_once_across_checks_and_restart(harness: Harness) -> None:
    harness.auth[0] = ("Token Metrics rejected TOKENMETRICS_API_KEY (HTTP 401); "
                       "key tm-secret-key-1234")
    monitor = harness.monitor()
    await monitor.check()
    harness.clock.at += timedelta(minutes=1)
    await monitor.check()
    await harness.monitor().check()  # a restarted bot raises the same occurrence again
    [title] = await harness.deliver()
    assert title == "alertbot: Token Metrics rejected TOKENMETRICS_API_KEY"
    (_, message), = harness.recorder.sent
    assert "tm-secret-key-1234" not in message.text and "HTTP 401" in message.text

    harness.auth[0] = None
    await monitor.check()
    await monitor.check()
    assert await harness.deliver() == ["alertbot: Token Metrics accepts TOKENMETRICS_API_KEY again"]


async def test_ops_quota_thresholds_alerted_once_per_month(harness: Harness) -> None:
    monitor = harness.monitor()
    harness.quota[0] = QuotaUsage(7_999, 10_000, "2026-11")
    await monitor.check()
    assert await harness.deliver() == []
    harness.quota[0] = QuotaUsage(8_000, 10_000, "2026-11")
    await monitor.check()
    await harness.monitor().check()
    assert await harness.deliver() == ["alertbot: Token Metrics quota 80% used in 2026-11"]
    harness.quota[0] = QuotaUsage(10_000, 10_000, "2026-11")
    await monitor.check()
    assert await harness.deliver() == ["alertbot: Token Metrics quota 100% used in 2026-11"]
    harness.quota[0] = QuotaUsage(8_500, 10_000, "2026-12")
    await monitor.check()
    assert await harness.deliver() == ["alertbot: Token Metrics quota 80% used in 2026-12"]


async def test_ops_stale_polls_alerted_then_recovered(harness: Harness) -> None:
    monitor = harness.monitor()
    harness.polls.last_error = "Token Metrics /tm-grade failed (HTTP 500)"
    harness.clock.at = START + timedelta(minutes=14)
    await monitor.check()
    assert await harness.deliver() == []
    harness.clock.at = START + timedelta(minutes=16)
    await monitor.check()
    await monitor.check()
    [title] = await harness.deliver()
    assert title == "alertbot: polls are stale"
    assert "HTTP 500" in harness.recorder.sent[0][1].text
    harness.polls.last_success = harness.clock.at
    await monitor.check()
    assert await harness.deliver() == ["alertbot: polls succeed again"]


async def test_ops_paused_and_dead_lettered_destinations_named(harness: Harness) -> None:
    other = Destination("discord", "444")
    monitor = harness.monitor()
    monitor.paused(other, "Discord 50001: Missing Access")
    await harness.store.ensure_destination(other, START)
    monitor.failed(other, Reason.DEAD)
    monitor.failed(other, Reason.RETRY)
    await monitor.check()
    titles = await harness.deliver()
    assert sorted(titles) == ["alertbot: alerts to discord:444 paused",
                              "alertbot: alerts to discord:444 were dead-lettered"]
    texts = " ".join(m.text for _, m in harness.recorder.sent)
    assert "Missing Access" in texts


async def test_ops_failures_of_the_ops_destination_itself_not_alerted(harness: Harness) -> None:
    monitor = harness.monitor()
    monitor.paused(OPS, "bot was kicked")
    monitor.failed(OPS, Reason.DEAD)
    await monitor.check()
    assert await harness.deliver() == []


async def test_ops_alerts_never_reach_subscribers(harness: Harness) -> None:
    harness.auth[0] = "rejected"
    harness.quota[0] = QuotaUsage(10_000, 10_000, "2026-11")
    await harness.monitor().check()
    await harness.deliver()
    assert {d for d, _ in harness.recorder.sent} == {OPS}
    assert all(c.kind is Kind.OPS for _, m in harness.recorder.sent for c in m.changes)


async def test_ops_alerts_throttled_like_any_alert(harness: Harness) -> None:
    await harness.store.set_policy(OPS, Policy(max_alerts=1, window=timedelta(hours=1)), START)
    monitor = harness.monitor()
    harness.auth[0] = "rejected"
    await monitor.check()
    assert await harness.deliver() == ["alertbot: Token Metrics rejected TOKENMETRICS_API_KEY"]
    harness.clock.at += timedelta(minutes=5)
    harness.quota[0] = QuotaUsage(10_000, 10_000, "2026-11")
    await monitor.check()
    assert await harness.deliver() == []
    reasons = [d.reason for d in await harness.store.recent_decisions(OPS, 10)]
    assert reasons.count("held_rate") == 2
    harness.clock.at += timedelta(hours=1)
    [digest] = await harness.deliver()
    assert digest == "2 more changes"


async def test_ops_job_failure_streak_alerted_once_then_recovered(harness: Harness) -> None:
    monitor = harness.monitor()
    since = harness.clock.now()
    for restarts in range(1, 4):
        monitor.job_failed("poller", since, "ValueError: tm-secret-key-1234 broke", restarts)
        harness.clock.advance(30)
        await monitor.check()
    [title] = await harness.deliver()
    assert title == "alertbot: job poller failed and is being restarted"
    (_, message), = harness.recorder.sent
    assert "ValueError" in message.text and "tm-secret-key-1234" not in message.text
    monitor.job_recovered("poller", since, harness.clock.now())
    await monitor.check()
    assert await harness.deliver() == ["alertbot: job poller runs again"]
