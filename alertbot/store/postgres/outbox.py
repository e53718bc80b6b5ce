"""The Outbox role on PostgreSQL: the delivery state machine, the crash-safety core.

The same transitions as SQLite (see alertbot/store/sqlite/outbox.py): every UPDATE names the
states it moves a row from, so a repeated or late call finds no row and changes nothing.
Several processes may share the database: claims take rows with FOR UPDATE SKIP LOCKED, so a
row another transaction is finishing is left to it instead of being claimed twice or waited
for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from alertbot.domain.models import Change, Destination, Reason
from alertbot.domain.throttle import DueAlert, Plan
from alertbot.ports.store import Committed, Decided, PlanKeys
from alertbot.store.postgres.audit import write_decisions
from alertbot.store.postgres.connection import PostgresConnection, pg, status_count
from alertbot.store.postgres.fencing import check_epoch
from alertbot.store.sqlite.outbox import _COMMITTED, _DUE_ALERTS, committed_messages, due_from
from alertbot.store.sqlite.plans import write_plan
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    DEAD,
    IN_FLIGHT,
    PENDING,
    QUEUED,
    SENDING,
    SENT,
    change_from_row,
    dest_params,
    opt_dt,
    ts,
)

_CLAIM = pg(
    f"UPDATE outbox SET state = {SENDING}, updated_at = ? WHERE id IN (SELECT id FROM outbox"
    f" WHERE msg_key = ? AND state = {PENDING} ORDER BY id FOR UPDATE SKIP LOCKED)"
    " RETURNING id"
)
"""Pending rows of a message become `sending`; rows already sending stay so (as on SQLite,
where a repeated claim changes nothing else), and rows another transaction holds are skipped."""


class PostgresOutbox(SharedReads, PostgresConnection):
    """Outbox rows, the throttle's plans for them and the messages they were sent in."""

    async def recover(self, now: datetime, *, epoch: int = 0) -> int:
        """Rows left in `sending` by a crash become due now (they keep their message key)."""
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            status = await conn.execute(
                pg(f"UPDATE outbox SET next_attempt_at = ?, updated_at = ?"
                   f" WHERE state = {SENDING}"), ts(now), ts(now))
            return status_count(status)

    async def due_destinations(self, now: datetime, limit: int, platforms: Sequence[str],
                               exclude: Sequence[Destination] = ()) -> list[Destination]:
        """Destinations on these platforms with due rows, oldest first, skipping busy ones."""
        skip = {dest_params(d) for d in exclude}
        if not platforms:
            return []
        rows = await self._fetchall(
            "SELECT platform, chat_id, thread_id, MIN(next_attempt_at) AS due FROM outbox"
            f" WHERE state IN {QUEUED} AND next_attempt_at <= ?"
            " AND platform = ANY(?::text[])"
            " GROUP BY platform, chat_id, thread_id ORDER BY due LIMIT ?",
            (ts(now), list(platforms), limit + len(skip)),
        )
        found = [Destination(r[0], r[1], r[2]) for r in rows if (r[0], r[1], r[2]) not in skip]
        return found[:limit]

    async def next_due(self, platforms: Sequence[str]) -> datetime | None:
        """When the next queued row on these platforms becomes due."""
        if not platforms:
            return None
        row = await self._fetchone(
            "SELECT MIN(next_attempt_at) FROM outbox"
            f" WHERE state IN {QUEUED} AND platform = ANY(?::text[])",
            (list(platforms),),
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

    async def apply_plan(self, destination: Destination, plan: Plan, keys: PlanKeys,
                         now: datetime, *, epoch: int = 0) -> Counter[Reason]:
        """Store a plan's decisions; returns the new decisions recorded, by reason."""
        return (await self._decide(destination, plan, keys, now, epoch, claim=False)).recorded

    async def decide(self, destination: Destination, plan: Plan, keys: PlanKeys,
                     now: datetime, *, epoch: int = 0) -> Decided:
        """Store a plan, read the due messages and claim the first, in one transaction."""
        return await self._decide(destination, plan, keys, now, epoch, claim=True)

    async def _decide(self, destination: Destination, plan: Plan, keys: PlanKeys,
                      now: datetime, epoch: int, *, claim: bool) -> Decided:
        async with self._tx() as conn:
            await check_epoch(conn, epoch)

            async def one(sql: str, params: Sequence[Any]) -> asyncpg.Record | None:
                return await conn.fetchrow(pg(sql), *params)

            async def record(rows: Sequence[tuple[int, int]], reason: Reason,
                             detail: str) -> None:
                await write_decisions(conn, destination, rows, reason, detail, now)

            recorded = await write_plan(one, record, plan, keys, now, lock=" FOR UPDATE")
            if not claim:
                return Decided(recorded, [])
            messages = committed_messages(await conn.fetch(
                pg(_COMMITTED), *dest_params(destination), ts(now)))
            if messages:
                await conn.fetch(_CLAIM, ts(now), messages[0].key)
        return Decided(recorded, messages)

    async def claim(self, key: str, now: datetime, *, epoch: int = 0) -> None:
        """Mark a message's rows as being sent."""
        await self.claim_rows(key, now, epoch=epoch)

    async def claim_rows(self, key: str, now: datetime, *, epoch: int = 0) -> list[int]:
        """Claim a message's pending rows no other transaction holds; returns them.

        Two processes claiming the same message at once never both get a row.
        """
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            return sorted(r[0] for r in await conn.fetch(_CLAIM, ts(now), key))

    async def mark_sent(self, destination: Destination, key: str, message_id: str,
                        now: datetime, *, epoch: int = 0) -> list[Change]:
        """Record a delivered message."""
        stamp = ts(now)
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            rows = await conn.fetch(
                pg(f"WITH done AS (UPDATE outbox SET state = {SENT}, message_id = ?, sent_at = ?,"
                   f" updated_at = ?, last_error = '' WHERE msg_key = ? AND state IN {IN_FLIGHT}"
                   f" RETURNING id, change_pk) SELECT done.id, {CHANGE_COLUMNS} FROM done"
                   " JOIN changes c ON c.id = done.change_pk ORDER BY done.id"),
                message_id, stamp, stamp, key,
            )
            if not rows:
                return []
            await conn.execute(
                pg("INSERT INTO messages (platform, chat_id, thread_id, msg_key, message_id,"
                   " alerts, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                *dest_params(destination), key, message_id, len(rows), stamp,
            )
        return [change_from_row(r, 2) for r in rows]

    async def mark_retry(self, destination: Destination, key: str, until: datetime,
                         error: str, reason: Reason, count_attempt: bool,
                         now: datetime, *, epoch: int = 0) -> None:
        """Schedule a message for another attempt."""
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            found = await conn.fetch(
                pg(f"UPDATE outbox SET state = {PENDING}, next_attempt_at = ?, last_error = ?,"
                   " attempts = attempts + ?, updated_at = ? WHERE msg_key = ?"
                   f" AND state IN {IN_FLIGHT} RETURNING id, change_pk"),
                ts(until), error, int(count_attempt), ts(now), key,
            )
            await write_decisions(conn, destination, sorted((r[0], r[1]) for r in found),
                                  reason, f"{error} (next attempt {until:%H:%M:%S} UTC)", now)

    async def mark_dead(self, destination: Destination, key: str, error: str, reason: Reason,
                        now: datetime, *, epoch: int = 0) -> None:
        """Dead-letter a message's rows."""
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            found = await conn.fetch(
                pg(f"UPDATE outbox SET state = {DEAD}, reason = ?, last_error = ?,"
                   f" updated_at = ? WHERE msg_key = ? AND state IN {IN_FLIGHT}"
                   " RETURNING id, change_pk"),
                reason.value, error, ts(now), key,
            )
            await write_decisions(conn, destination, sorted((r[0], r[1]) for r in found),
                                  reason, error, now)
