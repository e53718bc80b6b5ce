"""The Digests role on PostgreSQL: scheduled digest destinations and each period decided once.

The same rules as alertbot/store/sqlite/digests.py; the UNIQUE key on (destination, period)
decides a period once even when several replicas check it at the same moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alertbot.domain.models import ALL_KINDS, Change, Destination
from alertbot.ports.store import DestinationInfo, DigestOutcome
from alertbot.store.postgres.connection import pg
from alertbot.store.postgres.destinations import PostgresDestinations
from alertbot.store.postgres.state import insert_changes
from alertbot.store.sqlite.digests import _OUTCOME_REASON, _UNWANTED
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    PENDING,
    SUPPRESSED,
    change_from_row,
    dest_params,
    ts,
)


class PostgresDigests(PostgresDestinations):
    """Schedules are destination columns; decided periods live in `scheduled_digests`."""

    async def digest_destinations(self) -> list[DestinationInfo]:
        """Destinations with a scheduled digest that are not paused."""
        return await self._destination_rows(
            " WHERE digest != '' AND paused_at IS NULL ORDER BY platform, chat_id, thread_id",
            ())

    async def decided_periods(self, destination: Destination,
                              keys: Sequence[str]) -> set[str]:
        """Which of these period keys of a destination are already decided."""
        if not keys:
            return set()
        rows = await self._fetchall(
            "SELECT period_key FROM scheduled_digests WHERE platform = ? AND chat_id = ?"
            " AND thread_id = ? AND period_key = ANY(?::text[])",
            (*dest_params(destination), list(keys)),
        )
        return {r[0] for r in rows}

    async def period_changes(self, destination: Destination, start: datetime,
                             end: datetime) -> list[Change]:
        """Market changes fanned out to a destination that were detected in [start, end)."""
        rows = await self._fetchall(
            f"SELECT {CHANGE_COLUMNS} FROM outbox o JOIN changes c ON c.id = o.change_pk"
            " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
            " AND c.detected_at >= ? AND c.detected_at < ? AND c.kind = ANY(?::text[])"
            f" AND NOT (o.state = {SUPPRESSED} AND o.reason = ANY(?::text[]))"
            " ORDER BY c.detected_at, c.id",
            (*dest_params(destination), ts(start), ts(end), [k.value for k in ALL_KINDS],
             list(_UNWANTED)),
        )
        return [change_from_row(r) for r in rows]

    async def record_digest(self, destination: Destination, key: str, start: datetime,
                            end: datetime, outcome: DigestOutcome, change: Change,
                            now: datetime) -> bool:
        """Decide a period once; queue its digest or record why there is none."""
        stamp = ts(now)
        async with self._tx() as conn:
            decided = await conn.fetchval(
                pg("INSERT INTO scheduled_digests (platform, chat_id, thread_id, period_key,"
                   " period_start, period_end, outcome, change_id, changes, decided_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (platform, chat_id, thread_id, period_key) DO NOTHING"
                   " RETURNING id"),
                *dest_params(destination), key, ts(start), ts(end), outcome.value,
                change.change_id, int(change.to_value), stamp,
            )
            if decided is None:
                return False
            change_pk = (await insert_changes(conn, [change])).get(change.change_id)
            if change_pk is None:
                # The change outlived its decision (a wiped scheduled_digests table): the
                # period already has its message.
                return True
            if outcome is DigestOutcome.QUEUED:
                await conn.execute(
                    pg("INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                       " next_attempt_at, created_at, updated_at)"
                       f" SELECT ?, platform, chat_id, thread_id, {PENDING}, ?, ?, ?"
                       " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                       " AND paused_at IS NULL ON CONFLICT DO NOTHING"),
                    change_pk, stamp, stamp, stamp, *dest_params(destination),
                )
            else:
                detail = (f"period ended {end:%Y-%m-%d %H:%M} UTC"
                          if outcome is DigestOutcome.SKIPPED else "")
                await conn.execute(
                    pg("INSERT INTO decisions (at, platform, chat_id, thread_id, outbox_id,"
                       " change_pk, reason, detail) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)"),
                    stamp, *dest_params(destination), change_pk,
                    _OUTCOME_REASON[outcome].value, detail,
                )
        return True
