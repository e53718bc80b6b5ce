"""A moderator's policy change reaches alerts already held under the old policy, at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain.detect import Rules
from alertbot.domain.models import Kind, Policy, QuietHours, Token
from alertbot.ports.clock import SystemClock
from alertbot.ports.source import Batch
from alertbot.services.commands import Caller, CommandCore
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    CHAT,
    ScriptedNotifier,
    add_changes,
    make_dispatcher,
)
from tests.support import eventually

MODERATOR = Caller(CHAT, "7", "alice", is_moderator=True)


class NoSource:
    name = "none"

    async def universe(self) -> list[Token]:
        return []

    async def resolve(self, symbol: str) -> list[Token]:
        return []

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        return Batch(readings=[])

    async def close(self) -> None:
        pass


@pytest.fixture
async def running(store: SqliteStore) -> AsyncIterator[tuple[Dispatcher, ScriptedNotifier]]:
    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    yield dispatcher, notifier
    stop.set()
    await task


def core_for(store: SqliteStore, dispatcher: Dispatcher) -> CommandCore:
    clock = SystemClock()
    lookup = Lookup(store, NoSource(), clock, fresh_for=timedelta(minutes=5))
    return CommandCore(store, lookup, clock, band_label=Rules().band_label,
                       on_policy_change=dispatcher.wake)


def delivered(notifier: ScriptedNotifier) -> int:
    return sum(len(s.message.changes) for s in notifier.sent)


async def reasons(store: SqliteStore) -> list[str]:
    return [d.reason for d in await store.recent_decisions(CHAT, 10)]


async def test_policy_change_quiet_off_delivers_held_alerts_at_once(
    store: SqliteStore, running: tuple[Dispatcher, ScriptedNotifier],
) -> None:
    dispatcher, notifier = running
    now = datetime.now(UTC)
    quiet = QuietHours((now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
                       (now + timedelta(hours=6)).time().replace(second=0, microsecond=0))
    await add_changes(store, 3, policy=Policy(quiet=quiet))
    dispatcher.wake()
    await eventually(lambda: _count(store, "held_quiet", 3), what="alerts held for quiet hours")
    reply = await core_for(store, dispatcher).handle(MODERATOR, "quiet", "off")
    assert reply.lines == ("Quiet hours are off.",)
    await eventually(lambda: delivered(notifier) == 3, what="held alerts delivered")
    why = await core_for(store, dispatcher).handle(MODERATOR, "why")
    assert "held for quiet hours" not in why.lines[0]


async def test_policy_change_raised_throttle_delivers_held_alerts_at_once(
    store: SqliteStore, running: tuple[Dispatcher, ScriptedNotifier],
) -> None:
    dispatcher, notifier = running
    policy = Policy(max_alerts=1, window=timedelta(hours=6))
    await add_changes(store, 1, policy=policy)
    dispatcher.wake()
    await eventually(lambda: delivered(notifier) == 1, what="the first alert")
    await add_changes(store, 2, start=10, policy=policy)
    dispatcher.wake()
    await eventually(lambda: _count(store, "held_rate", 2), what="alerts held over budget")
    await core_for(store, dispatcher).handle(MODERATOR, "throttle", "10")
    await eventually(lambda: delivered(notifier) == 3, what="held alerts delivered")


async def _count(store: SqliteStore, reason: str, count: int) -> bool:
    return (await reasons(store)).count(reason) >= count
