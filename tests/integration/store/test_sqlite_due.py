"""SQLite due_alerts: a constant number of statements, whatever the number of held rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.models import (
    ALL_KINDS,
    ALL_TOKENS,
    Change,
    Destination,
    Direction,
    Kind,
    Reason,
    Token,
    make_change_id,
)
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys
from alertbot.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TG = Destination("telegram", "-1001")
TOKENS = 7
"""Held rows spread over a few tokens, so most rows have a next change in their series."""


def _flip(i: int) -> Change:
    token = Token(1000 + i % TOKENS, f"T{i % TOKENS}", "Token", "token")
    to = 1.0 if (i // TOKENS) % 2 else -1.0
    source = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i)
    return Change(make_change_id(token.token_id, Kind.SIGNAL, -to, to, source), token,
                  Kind.SIGNAL, -to, to, Direction.UP if to > 0 else Direction.DOWN, source,
                  NOW + timedelta(seconds=i), "a", "b", "flip")


async def _held_rows(path: Path, count: int) -> SqliteStore:
    store = SqliteStore(str(path))
    await store.open()
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [_flip(i) for i in range(count)], NOW)
    rows = [a.row_id for a in await store.due_alerts(TG, NOW + timedelta(hours=1))]
    plan = Plan(held=[Decision(r, Reason.HELD_RATE, until=NOW + timedelta(hours=1))
                      for r in rows])
    await store.apply_plan(TG, plan, PlanKeys(), NOW)
    return store


async def _statements(store: SqliteStore, at: datetime) -> tuple[int, int]:
    """(alerts returned, statements executed) by one due_alerts call."""
    seen: list[str] = []
    await store._conn.set_trace_callback(seen.append)
    try:
        alerts = await store.due_alerts(TG, at)
    finally:
        await store._conn.set_trace_callback(None)
    return len(alerts), len(seen)


async def test_sqlite_due_alerts_many_held_rows_same_statement_count(tmp_path: Path) -> None:
    """One held row or 300: the same number of statements (no query per row)."""
    counts = {}
    for size in (1, 300):
        store = await _held_rows(tmp_path / f"{size}.db", size)
        try:
            returned, statements = await _statements(store, NOW + timedelta(hours=2))
        finally:
            await store.close()
        assert returned == size
        counts[size] = statements
    assert counts[300] == counts[1]


async def test_sqlite_due_alerts_held_not_due_same_statement_count(tmp_path: Path) -> None:
    """A held group that is not due yet costs as little with 300 rows as with one."""
    counts = {}
    for size in (1, 300):
        store = await _held_rows(tmp_path / f"{size}.db", size)
        try:
            returned, statements = await _statements(store, NOW)
        finally:
            await store.close()
        assert returned == 0
        counts[size] = statements
    assert counts[300] == counts[1]


async def test_sqlite_due_alerts_next_change_decided_row_still_counts(tmp_path: Path) -> None:
    """A row's next change may be one already decided (suppressed) and not returned itself."""
    store = SqliteStore(str(tmp_path / "a.db"))
    await store.open()
    try:
        await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
        changes = [_flip(i) for i in range(3 * TOKENS)]
        await store.record_poll([], changes, NOW)
        first = await store.due_alerts(TG, NOW)
        middle = [a.row_id for a in first[TOKENS:2 * TOKENS]]
        await store.apply_plan(TG, Plan(suppressed=[Decision(r, Reason.MUTED) for r in middle]),
                               PlanKeys(), NOW)
        alerts = await store.due_alerts(TG, NOW)
    finally:
        await store.close()
    assert [a.change for a in alerts] == changes[:TOKENS] + changes[2 * TOKENS:]
    assert [a.next_change for a in alerts[:TOKENS]] == changes[TOKENS:2 * TOKENS]
    assert [a.next_row_id for a in alerts[:TOKENS]] == middle
    assert [a.next_change for a in alerts[TOKENS:]] == [None] * TOKENS
