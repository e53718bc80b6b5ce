"""Charts on grade alerts: bound to the change, only where charts are on, never blocking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    ChartImage,
    Direction,
    Kind,
    Policy,
    make_change_id,
)
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    CHAT,
    OTHER,
    TOKENS,
    ScriptedNotifier,
    make_dispatcher,
)


async def grade_change(store: SqliteStore, kind: Kind = Kind.TM_GRADE) -> Change:
    now = datetime.now(UTC)
    await store.set_policy(CHAT, Policy(charts=True), now)
    for destination in (CHAT, OTHER):
        await store.subscribe(destination, 0, ALL_KINDS, now - timedelta(hours=1))
    token = TOKENS[0]
    source = datetime(2026, 1, 1, tzinfo=UTC)
    change = Change(make_change_id(token.token_id, kind, 45.0, 65.0, source), token, kind,
                    45.0, 65.0, Direction.UP, source, now, "Neutral", "Buy", "band")
    await store.record_poll([], [change], now)
    return change


async def test_dispatcher_charts_on_attaches_the_changes_chart_only_there(
        store: SqliteStore) -> None:
    change = await grade_change(store)
    drawn: list[str] = []

    async def chart(c: Change) -> ChartImage:
        drawn.append(c.change_id)
        return ChartImage(b"png", f"chart of {c.change_id}")

    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    dispatcher.charts = chart
    await dispatcher.run_until_idle(10)

    by_chat = {s.destination: s.message for s in notifier.sent}
    image = by_chat[CHAT].image
    assert image is not None and image.caption == f"chart of {change.change_id}"
    assert by_chat[OTHER].image is None  # charts are off by default
    assert drawn == [change.change_id]


async def test_dispatcher_chart_failure_sends_the_alert_as_text(store: SqliteStore) -> None:
    await grade_change(store, Kind.FUNDAMENTAL)

    async def broken(c: Change) -> ChartImage:
        raise RuntimeError("renderer exploded")

    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    dispatcher.charts = broken
    await dispatcher.run_until_idle(10)

    assert [s.message.image for s in notifier.sent] == [None, None]
    assert (await store.outbox_stats()).by_state == {"sent": 2}


async def test_dispatcher_signal_alerts_never_carry_a_chart(store: SqliteStore) -> None:
    await grade_change(store, Kind.SIGNAL)

    async def chart(c: Change) -> ChartImage:
        raise AssertionError("a signal alert must not ask for a chart")

    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    dispatcher.charts = chart
    await dispatcher.run_until_idle(10)

    assert len(notifier.sent) == 2 and all(s.message.image is None for s in notifier.sent)
