"""The Digests role on SQLite: scheduled digest destinations and each period decided once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from alertbot.domain.models import ALL_KINDS, Change, Destination, Reason
from alertbot.ports.store import DestinationInfo, DigestOutcome
from alertbot.store.sqlite.destinations import SqliteDestinations
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    PENDING,
    SUPPRESSED,
    change_from_row,
    dest_params,
    ts,
)
from alertbot.store.sqlite.state import insert_change

_UNWANTED = (Reason.KIND_OFF.value, Reason.FLAP_CANCELLED.value, Reason.MUTED.value,
             Reason.TOKEN_MUTED.value)
"""Suppression reasons that keep a change out of the digest: nobody was meant to see it."""
_OUTCOME_REASON = {DigestOutcome.EMPTY: Reason.DIGEST_EMPTY,
                   DigestOutcome.SKIPPED: Reason.DIGEST_SKIPPED}


class SqliteDigests(SqliteDestinations):
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
        marks = ",".join("?" * len(keys))
        rows = await self._fetchall(
            "SELECT period_key FROM scheduled_digests WHERE platform = ? AND chat_id = ?"
            f" AND thread_id = ? AND period_key IN ({marks})",
            (*dest_params(destination), *keys),
        )
        return {r[0] for r in rows}

    async def period_changes(self, destination: Destination, start: datetime,
                             end: datetime) -> list[Change]:
        """Market changes fanned out to a destination that were detected in [start, end)."""
        kinds = [k.value for k in ALL_KINDS]
        rows = await self._fetchall(
            f"SELECT {CHANGE_COLUMNS} FROM outbox o JOIN changes c ON c.id = o.change_pk"
            " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
            " AND c.detected_at >= ? AND c.detected_at < ?"
            f" AND c.kind IN ({','.join('?' * len(kinds))})"
            f" AND NOT (o.state = {SUPPRESSED}"
            f" AND o.reason IN ({','.join('?' * len(_UNWANTED))}))"
            " ORDER BY c.detected_at, c.id",
            (*dest_params(destination), ts(start), ts(end), *kinds, *_UNWANTED),
        )
        return [change_from_row(r) for r in rows]

    async def record_digest(self, destination: Destination, key: str, start: datetime,
                            end: datetime, outcome: DigestOutcome, change: Change,
                            now: datetime) -> bool:
        """Decide a period once; queue its digest or record why there is none."""
        stamp = ts(now)
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO scheduled_digests (platform, chat_id, thread_id, period_key,"
                " period_start, period_end, outcome, change_id, changes, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, chat_id, thread_id, period_key) DO NOTHING",
                (*dest_params(destination), key, ts(start), ts(end), outcome.value,
                 change.change_id, int(change.to_value), stamp),
            )
            if cur.rowcount != 1:
                return False
            change_pk = await insert_change(db, change)
            if change_pk is None:
                # The change outlived its decision (a wiped scheduled_digests table): the
                # period already has its message.
                return True
            if outcome is DigestOutcome.QUEUED:
                await db.execute(
                    "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                    " next_attempt_at, created_at, updated_at)"
                    f" SELECT ?, platform, chat_id, thread_id, {PENDING}, ?, ?, ?"
                    " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                    " AND paused_at IS NULL ON CONFLICT DO NOTHING",
                    (change_pk, stamp, stamp, stamp, *dest_params(destination)),
                )
            else:
                detail = (f"period ended {end:%Y-%m-%d %H:%M} UTC"
                          if outcome is DigestOutcome.SKIPPED else "")
                await _write_decision(db, destination, change_pk, _OUTCOME_REASON[outcome],
                                      detail, now)
        return True


async def _write_decision(db: aiosqlite.Connection, destination: Destination, change_pk: int,
                          reason: Reason, detail: str, now: datetime) -> None:
    """A decision without an outbox row (the period produced no message)."""
    await db.execute(
        "INSERT INTO decisions (at, platform, chat_id, thread_id, outbox_id, change_pk,"
        " reason, detail) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
        (ts(now), *dest_params(destination), change_pk, reason.value, detail),
    )

