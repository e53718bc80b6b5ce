"""Dispatcher under real store faults (full disk, read-only, locks) and a lost wake-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from alertbot.domain.models import Message
from alertbot.ports.notifier import Delivered, Target
from alertbot.services import dispatcher as dispatcher_module
from alertbot.services.dispatcher import Dispatcher
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    ScriptedNotifier,
    add_changes,
    make_dispatcher,
)
from tests.support import eventually, exclusive_lock


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def read_only(store: SqliteStore, on: bool) -> None:
    # Every write then fails as on a read-only mount (root ignores file modes).
    await store._conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_dispatcher_read_only_database_backs_off_quietly_then_delivers_everything(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    await add_changes(store, 5)
    await read_only(store, True)
    notifier = ScriptedNotifier()
    caplog.set_level(logging.INFO, logger="alertbot")
    async with running(make_dispatcher(store, notifier)) as task:
        await eventually(lambda: bool(problems(caplog)), what="the fault to be logged")
        await asyncio.sleep(1.5)
        assert not task.done()
        assert notifier.attempts == []
        # One line for the fault, not a traceback per lane restart.
        assert len(problems(caplog)) <= 2, [r.getMessage() for r in problems(caplog)]
        assert not any(r.exc_info or r.exc_text for r in caplog.records)
        assert "readonly" in problems(caplog)[0].getMessage()
        await read_only(store, False)
        await eventually(lambda: len(notifier.sent) == 5, what="every alert", timeout=20)
    assert (await store.outbox_stats()).by_state == {"sent": 5}
    assert len({s.key for s in notifier.sent}) == 5
    assert any("resumed" in r.getMessage() for r in caplog.records)


class FaultAfterSend(ScriptedNotifier):
    """Turns the database read-only while the send is in flight, for `for_s` seconds."""

    def __init__(self, store: SqliteStore, for_s: float) -> None:
        super().__init__()
        self.store = store
        self.for_s = for_s
        self.clear: asyncio.Task[None] | None = None

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        if self.clear is None:
            await self.store._conn.execute("PRAGMA query_only = ON")
            self.clear = asyncio.create_task(self._writable_later())
        return await super().send(target, message, key=key, silent=silent)

    async def _writable_later(self) -> None:
        await asyncio.sleep(self.for_s)
        await self.store._conn.execute("PRAGMA query_only = OFF")


async def test_dispatcher_read_only_after_send_records_it_once_writable(
        store: SqliteStore) -> None:
    await add_changes(store, 1)
    notifier = FaultAfterSend(store, for_s=1.0)
    async with running(make_dispatcher(store, notifier)):
        await eventually(lambda: notifier.clear is not None and notifier.clear.done(),
                         what="the database to be writable again")
        await eventually(store_says(store, {"sent": 1}), what="the send to be recorded",
                         timeout=20)
    assert len(notifier.sent) == 1


def store_says(store: SqliteStore, expected: dict[str, int]) -> Any:
    async def check() -> bool:
        return dict((await store.outbox_stats()).by_state) == expected
    return check


async def test_dispatcher_locked_database_at_start_waits_then_delivers(
        store: SqliteStore) -> None:
    await add_changes(store, 2)
    await store._conn.execute("PRAGMA busy_timeout = 50")
    notifier = ScriptedNotifier()
    with exclusive_lock(store._path) as other:
        async with running(make_dispatcher(store, notifier)) as task:
            await asyncio.sleep(1.0)
            assert not task.done(), "the dispatcher stopped on a locked database"
            other.rollback()
            await eventually(lambda: len(notifier.sent) == 2, what="both alerts", timeout=20)
    assert (await store.outbox_stats()).by_state == {"sent": 2}


class CommitsDuringQuery:
    """A store where a poll commits (and wakes the dispatcher) while it asks for next_due."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.dispatcher: Dispatcher | None = None
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def next_due(self, platforms: Sequence[str]) -> datetime | None:
        answer = await self.store.next_due(platforms)
        if not self.fired and self.dispatcher is not None:
            self.fired = True
            await add_changes(self.store, 1)
            self.dispatcher.wake()
        return answer


async def test_dispatcher_commit_between_queries_and_wait_is_not_missed(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a wake-up the dispatcher would look again only after an hour.
    monkeypatch.setattr(dispatcher_module, "IDLE_POLL", 3600.0)
    wrapped = CommitsDuringQuery(store)
    notifier = ScriptedNotifier()
    dispatcher = Dispatcher(wrapped, {"fake": notifier}, make_dispatcher(store, notifier)._clock)  # type: ignore[arg-type]
    wrapped.dispatcher = dispatcher
    async with running(dispatcher):
        await eventually(lambda: len(notifier.sent) == 1, what="the alert committed meanwhile")
