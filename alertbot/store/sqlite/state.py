"""The StateStore role on SQLite: readings, changes and their fan-out into the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from alertbot.domain.models import Change, Destination, Kind, TrackedState
from alertbot.ports.store import PollResult
from alertbot.store.sqlite.catalog import write_tokens
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.destinations import insert_destination
from alertbot.store.sqlite.fencing import check_epoch
from alertbot.store.sqlite.maintenance import write_meta
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    PENDING,
    change_from_row,
    chunks,
    dest_params,
    dt,
    opt_dt,
    opt_ts,
    ts,
)


async def insert_change(db: aiosqlite.Connection, change: Change) -> int | None:
    """Insert a change unless its id is stored; returns its row id when new."""
    cursor = await db.execute(
        "INSERT INTO changes (change_id, token_id, symbol, name, slug, kind,"
        " from_value, to_value, from_label, to_label, direction, cause, source_ts,"
        " detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (change_id) DO NOTHING",
        (change.change_id, change.token.token_id, change.token.symbol,
         change.token.name, change.token.slug, change.kind.value, change.from_value,
         change.to_value, change.from_label, change.to_label,
         change.direction.value, change.cause, ts(change.source_ts),
         ts(change.detected_at)),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


class SqliteState(SqliteConnection):
    """Readings, changes and the outbox rows a new change fans out to."""

    async def load_states(self, token_ids: Sequence[int]) -> dict[tuple[int, Kind], TrackedState]:
        """Stored state of these tokens."""
        ids = sorted(set(token_ids))
        states: dict[tuple[int, Kind], TrackedState] = {}
        async with self._read() as db:
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                async with db.execute(
                    "SELECT token_id, kind, value, label, source_ts, band, alerted_value, fired_at,"
                    f" updated_at, source FROM readings WHERE token_id IN ({marks})",
                    chunk,
                ) as cur:
                    for row in await cur.fetchall():
                        state = TrackedState(
                            token_id=row[0], kind=Kind(row[1]), value=row[2], label=row[3],
                            source_ts=dt(row[4]), band=row[5], alerted_value=row[6],
                            fired_at=opt_dt(row[7]), updated_at=dt(row[8]), source=row[9],
                        )
                        states[(state.token_id, state.kind)] = state
        return states

    async def record_poll(self, states: Sequence[TrackedState], changes: Sequence[Change],
                          now: datetime, meta: Mapping[str, str] | None = None,
                          touched: Sequence[tuple[int, Kind]] = (), *,
                          epoch: int = 0) -> PollResult:
        """Readings, new changes and their fan-out in one transaction."""
        new: list[Change] = []
        rows = 0
        stamp = ts(now)
        async with self._tx() as db:
            await check_epoch(db, epoch)
            by_kind: dict[Kind, list[int]] = {}
            for token_id, kind in touched:
                by_kind.setdefault(kind, []).append(token_id)
            for kind, token_ids in by_kind.items():
                for chunk in chunks(token_ids, 500):
                    await db.execute(
                        f"UPDATE readings SET updated_at = ? WHERE kind = ?"
                        f" AND token_id IN ({','.join('?' * len(chunk))})",
                        (stamp, kind.value, *chunk))
            if states:
                await db.executemany(
                    "INSERT INTO readings (token_id, kind, value, label, source_ts, band,"
                    " alerted_value, fired_at, updated_at, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (token_id, kind) DO UPDATE SET value = excluded.value,"
                    " label = excluded.label, source_ts = excluded.source_ts,"
                    " band = excluded.band, alerted_value = excluded.alerted_value,"
                    " fired_at = excluded.fired_at, updated_at = excluded.updated_at,"
                    " source = excluded.source",
                    [(s.token_id, s.kind.value, s.value, s.label, ts(s.source_ts), s.band,
                      s.alerted_value, opt_ts(s.fired_at), stamp, s.source) for s in states],
                )
            if changes:
                await write_tokens(db, {c.token.token_id: c.token for c in changes}.values(), now)
            for change in changes:
                change_pk = await insert_change(db, change)
                if change_pk is None:
                    continue
                new.append(change)
                fanout = await db.execute(
                    "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                    " next_attempt_at, created_at, updated_at)"
                    f" SELECT DISTINCT ?, s.platform, s.chat_id, s.thread_id, {PENDING}, ?, ?, ?"
                    " FROM subscriptions s JOIN destinations d ON d.platform = s.platform"
                    " AND d.chat_id = s.chat_id AND d.thread_id = s.thread_id"
                    " WHERE s.token_id IN (?, 0) AND (s.kinds & ?) != 0 AND s.created_at <= ?"
                    " AND d.paused_at IS NULL"
                    " ON CONFLICT DO NOTHING",
                    (change_pk, stamp, stamp, stamp, change.token.token_id, change.kind.bit,
                     ts(change.detected_at)),
                )
                rows += max(fanout.rowcount, 0)
            if meta:
                await write_meta(db, meta)
        return PollResult(new, rows)

    async def record_ops_event(self, change: Change, destination: Destination,
                               now: datetime) -> bool:
        """Store an operator alert and queue it for one destination only."""
        stamp = ts(now)
        async with self._tx() as db:
            await insert_destination(db, destination, now)
            change_pk = await insert_change(db, change)
            if change_pk is None:
                return False
            cursor = await db.execute(
                "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                " next_attempt_at, created_at, updated_at)"
                f" SELECT ?, platform, chat_id, thread_id, {PENDING}, ?, ?, ? FROM destinations"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NULL"
                " ON CONFLICT DO NOTHING",
                (change_pk, stamp, stamp, stamp, *dest_params(destination)),
            )
            return cursor.rowcount == 1

    async def recent_changes(self, token_id: int, kind: Kind | None,
                             limit: int) -> list[Change]:
        """Newest changes of a token."""
        sql = f"SELECT {CHANGE_COLUMNS} FROM changes c WHERE c.token_id = ?"
        params: list[Any] = [token_id]
        if kind is not None:
            sql += " AND c.kind = ?"
            params.append(kind.value)
        sql += " ORDER BY c.detected_at DESC, c.id DESC LIMIT ?"
        params.append(limit)
        return [change_from_row(row) for row in await self._fetchall(sql, params)]
