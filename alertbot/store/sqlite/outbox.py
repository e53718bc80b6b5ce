"""The Outbox role on SQLite: the delivery state machine, the crash-safety core.

Rows move pending -> (held | suppressed | committed to a message key) -> sending -> sent or
dead, or back to pending for a retry (see OutboxState). Every UPDATE names the states it
moves a row from, so a repeated or late call finds no row and changes nothing. Every write of
the delivery path first checks the writer's leadership epoch in the same transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from alertbot.domain.models import Change, Destination, Reason
from alertbot.domain.throttle import DueAlert, Plan
from alertbot.ports.store import Committed, Decided, DeliveryView, OutboxState, PlanKeys
from alertbot.store.sqlite.audit import write_decisions
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.destinations import DESTINATION_SELECT, destination_from
from alertbot.store.sqlite.fencing import check_epoch
from alertbot.store.sqlite.plans import write_plan
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    DEAD,
    HELD,
    IN_FLIGHT,
    PENDING,
    QUEUED,
    SENDING,
    SENT,
    change_columns,
    change_from_row,
    dest_params,
    dt,
    opt_dt,
    ts,
)
from alertbot.store.sqlite.token_mutes import MUTES_IN_FORCE, _mute_from

_AT_HAND = (
    f"{{o}}.state IN ({PENDING}, {HELD}) AND {{o}}.msg_key IS NULL"
    f" AND ({{o}}.state = {HELD} OR {{o}}.next_attempt_at <= ?)"
)
"""The undecided rows a lane pass decides: due pending ones and the whole held group."""

_DUE_ALERTS = (
    "WITH due AS (SELECT o.state, o.next_attempt_at, c.token_id, c.kind, c.detected_at"
    " FROM outbox o JOIN changes c ON c.id = o.change_pk"
    " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
    f" AND {_AT_HAND.format(o='o')}),"
    # A held group that is not due yet waits whole unless a pending row is due; when
    # neither is due, `since` is empty and so is everything after it.
    f" go AS (SELECT 1 FROM due WHERE state = {PENDING} OR next_attempt_at <= ? LIMIT 1),"
    # Each series (token, kind) of those rows, only from its earliest row at hand on: LEAD
    # looks forward, so older changes are nobody's next one. CROSS JOIN keeps this order
    # (series index, then the outbox row of each change) so the destination's finished
    # history is never scanned.
    " since AS (SELECT token_id, kind, MIN(detected_at) AS first FROM due"
    " WHERE EXISTS (SELECT 1 FROM go) GROUP BY token_id, kind),"
    " series AS (SELECT n.id AS row_id, n.state, s.id AS change_pk,"
    f" {_AT_HAND.format(o='n')} AS at_hand,"
    " LEAD(s.id) OVER w AS next_pk, LEAD(n.id) OVER w AS next_row"
    " FROM since CROSS JOIN changes s CROSS JOIN outbox n"
    " WHERE s.token_id = since.token_id AND s.kind = since.kind"
    " AND s.detected_at >= since.first AND n.change_pk = s.id"
    " AND n.platform = ? AND n.chat_id = ? AND n.thread_id = ?"
    " WINDOW w AS (PARTITION BY s.token_id, s.kind ORDER BY s.detected_at, s.id))"
    f" SELECT series.row_id, {CHANGE_COLUMNS}, series.state, series.next_row,"
    f" {change_columns('x')} FROM series JOIN changes c ON c.id = series.change_pk"
    " LEFT JOIN changes x ON x.id = series.next_pk"
    " WHERE series.at_hand"
    " ORDER BY c.detected_at, series.row_id"
)
"""Rows at hand with the next change of their series, in one statement (no query per row)."""

_COMMITTED = (
    f"SELECT o.id, {CHANGE_COLUMNS}, o.msg_key, o.silent, o.attempts, o.created_at"
    " FROM outbox o JOIN changes c ON c.id = o.change_pk"
    " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
    f" AND o.state IN {IN_FLIGHT} AND o.msg_key IS NOT NULL"
    " AND o.next_attempt_at <= ? ORDER BY o.id"
)
"""A destination's due messages (rows committed to a key), in row order."""

_FOR_DESTINATION = " WHERE platform = ? AND chat_id = ? AND thread_id = ?"

_SENT_IN_WINDOW = (
    "SELECT sent_at FROM messages WHERE platform = ? AND chat_id = ? AND thread_id = ?"
    " AND sent_at > ? - (SELECT window_s FROM destinations"
    " WHERE platform = ? AND chat_id = ? AND thread_id = ?) ORDER BY sent_at"
)
"""Delivery times within the destination's policy window (`sent_times` over its window)."""

_CLAIM = (f"UPDATE outbox SET state = {SENDING}, updated_at = ? WHERE msg_key = ?"
          f" AND state IN {IN_FLIGHT}")


class SqliteOutbox(SharedReads, SqliteConnection):
    """Outbox rows, the throttle's plans for them and the messages they were sent in."""

    async def recover(self, now: datetime, *, epoch: int = 0) -> int:
        """Rows left in `sending` by a crash become due now (they keep their message key)."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            cur = await db.execute(
                f"UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE state = {SENDING}",
                (ts(now), ts(now)),
            )
            return max(cur.rowcount, 0)

    async def due_destinations(self, now: datetime, limit: int, platforms: Sequence[str],
                               exclude: Sequence[Destination] = ()) -> list[Destination]:
        """Destinations on these platforms with due rows, oldest first, skipping busy ones."""
        skip = {dest_params(d) for d in exclude}
        if not platforms:
            return []
        marks = ",".join("?" * len(platforms))
        rows = await self._fetchall(
            "SELECT platform, chat_id, thread_id, MIN(next_attempt_at) AS due FROM outbox"
            f" WHERE state IN {QUEUED} AND next_attempt_at <= ?"
            f" AND platform IN ({marks})"
            " GROUP BY platform, chat_id, thread_id ORDER BY due LIMIT ?",
            (ts(now), *platforms, limit + len(skip)),
        )
        found = [Destination(r[0], r[1], r[2]) for r in rows if (r[0], r[1], r[2]) not in skip]
        return found[:limit]

    async def next_due(self, platforms: Sequence[str]) -> datetime | None:
        """When the next queued row on these platforms becomes due."""
        if not platforms:
            return None
        marks = ",".join("?" * len(platforms))
        row = await self._fetchone(
            "SELECT MIN(next_attempt_at) FROM outbox"
            f" WHERE state IN {QUEUED} AND platform IN ({marks})",
            tuple(platforms),
        )
        return opt_dt(row[0]) if row else None

    async def committed(self, destination: Destination, now: datetime) -> list[Committed]:
        """Due messages whose rows were already committed to a key."""
        return committed_messages(await self._fetchall(
            _COMMITTED, (*dest_params(destination), ts(now))))

    async def due_alerts(self, destination: Destination, now: datetime) -> list[DueAlert]:
        """Due pending rows plus the whole held group, each with the next change of its series."""
        params = dest_params(destination)
        stamp = ts(now)
        return due_from(await self._fetchall(_DUE_ALERTS,
                                             (*params, stamp, stamp, stamp, *params)))

    async def delivery_view(self, destination: Destination,
                            now: datetime) -> DeliveryView | None:
        """A lane's five reads, queued on aiosqlite's thread at once: one wait, not five."""
        params = dest_params(destination)
        stamp = ts(now)
        async with self._read() as db:
            results = await asyncio.gather(
                db.execute_fetchall(DESTINATION_SELECT + _FOR_DESTINATION, params),
                db.execute_fetchall(_COMMITTED, (*params, stamp)),
                db.execute_fetchall(_DUE_ALERTS, (*params, stamp, stamp, stamp, *params)),
                db.execute_fetchall(MUTES_IN_FORCE, (*params, stamp)),
                db.execute_fetchall(_SENT_IN_WINDOW, (*params, stamp, *params)),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        found, committed, due, mutes, sent = (list(r) for r in results)  # type: ignore[arg-type]
        if not found:
            return None
        return DeliveryView(destination_from(found[0]), committed_messages(committed),
                            due_from(due), [_mute_from(r) for r in mutes],
                            [dt(r[0]) for r in sent])

    async def apply_plan(self, destination: Destination, plan: Plan, keys: PlanKeys,
                         now: datetime, *, epoch: int = 0) -> Counter[Reason]:
        """Store a plan's decisions; returns the new decisions recorded, by reason."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            return await _apply_plan(db, destination, plan, keys, now)

    async def decide(self, destination: Destination, plan: Plan, keys: PlanKeys,
                     now: datetime, *, epoch: int = 0) -> Decided:
        """Store a plan, read the due messages and claim the first, in one transaction."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            recorded = await _apply_plan(db, destination, plan, keys, now)
            messages = committed_messages(await db.execute_fetchall(
                _COMMITTED, (*dest_params(destination), ts(now))))
            if messages:
                await db.execute(_CLAIM, (ts(now), messages[0].key))
        return Decided(recorded, messages)

    async def claim(self, key: str, now: datetime, *, epoch: int = 0) -> None:
        """Mark a message's rows as being sent."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            await db.execute(_CLAIM, (ts(now), key))

    async def mark_sent(self, destination: Destination, key: str, message_id: str,
                        now: datetime, *, epoch: int = 0) -> list[Change]:
        """Record a delivered message."""
        stamp = ts(now)
        async with self._tx() as db:
            await check_epoch(db, epoch)
            rows = list(await db.execute_fetchall(
                f"SELECT o.id, {CHANGE_COLUMNS} FROM outbox o JOIN changes c ON c.id = o.change_pk"
                f" WHERE o.msg_key = ? AND o.state IN {IN_FLIGHT}",
                (key,),
            ))
            if not rows:
                return []
            await db.execute(
                f"UPDATE outbox SET state = {SENT}, message_id = ?, sent_at = ?, updated_at = ?,"
                f" last_error = '' WHERE msg_key = ? AND state IN {IN_FLIGHT}",
                (message_id, stamp, stamp, key),
            )
            await db.execute(
                "INSERT INTO messages (platform, chat_id, thread_id, msg_key, message_id, alerts,"
                " sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*dest_params(destination), key, message_id, len(rows), stamp),
            )
        return [change_from_row(r, 2) for r in rows]

    async def mark_retry(self, destination: Destination, key: str, until: datetime,
                         error: str, reason: Reason, count_attempt: bool,
                         now: datetime, *, epoch: int = 0) -> None:
        """Schedule a message for another attempt."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            rows = [(r[0], r[1]) for r in await db.execute_fetchall(
                f"UPDATE outbox SET state = {PENDING}, next_attempt_at = ?, last_error = ?,"
                " attempts = attempts + ?, updated_at = ? WHERE msg_key = ?"
                f" AND state IN {IN_FLIGHT} RETURNING id, change_pk",
                (ts(until), error, int(count_attempt), ts(now), key),
            )]
            await write_decisions(db, destination, rows, reason,
                                  f"{error} (next attempt {until:%H:%M:%S} UTC)", now)

    async def mark_dead(self, destination: Destination, key: str, error: str, reason: Reason,
                        now: datetime, *, epoch: int = 0) -> None:
        """Dead-letter a message's rows."""
        async with self._tx() as db:
            await check_epoch(db, epoch)
            rows = [(r[0], r[1]) for r in await db.execute_fetchall(
                f"UPDATE outbox SET state = {DEAD}, reason = ?, last_error = ?, updated_at = ?"
                f" WHERE msg_key = ? AND state IN {IN_FLIGHT} RETURNING id, change_pk",
                (reason.value, error, ts(now), key),
            )]
            await write_decisions(db, destination, rows, reason, error, now)


async def _apply_plan(db: aiosqlite.Connection, destination: Destination, plan: Plan,
                      keys: PlanKeys, now: datetime) -> Counter[Reason]:
    """Store a plan's decisions inside the caller's transaction (see apply_plan)."""

    async def one(sql: str, params: Sequence[Any]) -> sqlite3.Row | None:
        return _first(await db.execute_fetchall(sql, params))

    async def record(rows: Sequence[tuple[int, int]], reason: Reason, detail: str) -> None:
        await write_decisions(db, destination, rows, reason, detail, now)

    return await write_plan(one, record, plan, keys, now)


def _first(rows: Iterable[sqlite3.Row]) -> sqlite3.Row | None:
    """The first row of a statement's result (one hand-off to aiosqlite's thread, not two)."""
    return next(iter(rows), None)


def committed_messages(rows: Iterable[Sequence[Any]]) -> list[Committed]:
    """Rows of `_COMMITTED` grouped into messages by key, in the order of their first row."""
    grouped: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        grouped.setdefault(row[16], []).append(row)
    return [
        Committed(
            key=key,
            row_ids=tuple(r[0] for r in members),
            changes=tuple(change_from_row(r, 2) for r in members),
            silent=all(bool(r[17]) for r in members),
            attempts=max(r[18] for r in members),
            first_created=dt(min(r[19] for r in members)),
        )
        for key, members in grouped.items()
    ]


def due_from(rows: Iterable[Sequence[Any]]) -> list[DueAlert]:
    """Rows of `_DUE_ALERTS` as DueAlerts."""
    return [
        DueAlert(
            row_id=row[0], change=change_from_row(row, 2), held=row[16] == OutboxState.HELD,
            next_change=change_from_row(row, 19) if row[17] is not None else None,
            next_row_id=row[17],
        )
        for row in rows
    ]
