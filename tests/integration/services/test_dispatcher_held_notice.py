"""The dispatcher says once per held group that alerts are held, and until when."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain.models import Policy
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    CHAT,
    ScriptedNotifier,
    add_changes,
    make_dispatcher,
)
from tests.support import eventually

LOGGER = "alertbot.services.dispatcher"


def _notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and "alerts held" in r.getMessage()]


async def test_dispatcher_budget_spent_one_held_notice_per_group(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    policy = Policy(max_alerts=2, window=timedelta(hours=1))
    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await add_changes(store, 5, policy=policy)
        dispatcher.wake()
        await eventually(lambda: len(notifier.sent) == 2, what="one single and one digest")
        assert _notices(caplog) == []
        before = datetime.now(UTC)
        await add_changes(store, 3, start=10, policy=policy)
        dispatcher.wake()
        await eventually(lambda: bool(_notices(caplog)), what="the held notice")
        later = await add_changes(store, 2, start=20, policy=policy)

        async def later_held() -> bool:
            held = {r.change.change_id for r in await store.recent_decisions(CHAT, 50)
                    if r.reason == "held_rate"}
            return {c.change_id for c in later} <= held

        dispatcher.wake()
        await eventually(later_held, what="the later alerts held too")
    finally:
        stop.set()
        await task
    notices = _notices(caplog)
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"{CHAT}: budget 2/1h spent: 3 alerts held, digest at ")
    stamp = datetime.strptime(notices[0].rsplit(" at ", 1)[1], "%H:%M:%S UTC")
    # The oldest send in the window frees its slot an hour after it went out (before `before`).
    expected = before + timedelta(hours=1)
    seconds = (expected.hour * 3600 + expected.minute * 60 + expected.second
               - (stamp.hour * 3600 + stamp.minute * 60 + stamp.second)) % 86400
    assert seconds <= 60, notices
    assert len(notifier.sent) == 2


async def test_dispatcher_quiet_hours_held_notice_names_the_end(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    from alertbot.domain.policy import update_policy

    caplog.set_level(logging.INFO, logger=LOGGER)
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    policy = update_policy(Policy(), now, quiet=f"{start}-{end} UTC")
    notifier = ScriptedNotifier()
    await add_changes(store, 2, policy=policy)
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert notifier.sent == []
    notices = _notices(caplog)
    assert notices == [f"{CHAT}: quiet hours: 2 alerts held, digest at {end}:00 UTC"], notices


async def test_dispatcher_forget_idle_held_group_ended_drops_it(store: SqliteStore) -> None:
    from alertbot.domain.policy import update_policy

    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    policy = update_policy(Policy(), now, quiet=f"{start}-{end} UTC")
    dispatcher = make_dispatcher(store, ScriptedNotifier())
    await add_changes(store, 2, policy=policy)
    await dispatcher.run_until_idle(10)
    assert dispatcher.forget_idle(now) == 0  # still held: kept, so it is not announced again
    assert dispatcher.forget_idle(now + timedelta(hours=3)) == 1
    assert dispatcher.forget_idle(now + timedelta(hours=3)) == 0
