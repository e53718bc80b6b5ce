"""The StateStore role on PostgreSQL: readings, changes and their fan-out into the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from alertbot.domain.models import ALL_TOKENS, Change, Destination, Kind, TrackedState
from alertbot.ports.store import PollResult
from alertbot.store.postgres.catalog import write_tokens
from alertbot.store.postgres.connection import PostgresConnection, pg, status_count
from alertbot.store.postgres.destinations import insert_destination
from alertbot.store.postgres.fencing import check_epoch
from alertbot.store.postgres.maintenance import write_meta
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    PENDING,
    change_from_row,
    dest_params,
    dt,
    opt_dt,
    opt_ts,
    ts,
)

_INSERT_CHANGES = (
    "INSERT INTO changes (change_id, token_id, symbol, name, slug, kind, from_value, to_value,"
    " from_label, to_label, direction, cause, source_ts, detected_at)"
    " SELECT change_id, token_id, symbol, name, slug, kind, from_value, to_value, from_label,"
    " to_label, direction, cause, source_ts, detected_at FROM unnest($1::text[], $2::bigint[],"
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[], $9::text[],"
    " $10::text[], $11::text[], $12::text[], $13::float8[], $14::float8[]) WITH ORDINALITY"
    " AS n(change_id, token_id, symbol, name, slug, kind, from_value, to_value, from_label,"
    " to_label, direction, cause, source_ts, detected_at, ord) ORDER BY ord"
    " ON CONFLICT (change_id) DO NOTHING RETURNING id, change_id"
)
"""Every change of a poll in one statement; ids already stored are skipped (RETURNING omits
them), ids ascend in the poll's order."""

_UPSERT_READINGS = (
    "INSERT INTO readings (token_id, kind, value, label, source_ts, band, alerted_value,"
    " fired_at, source, updated_at)"
    " SELECT n.*, $10::float8 FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[],"
    " $5::float8[], $6::integer[], $7::float8[], $8::float8[], $9::text[])"
    " AS n(token_id, kind, value, label, source_ts, band, alerted_value, fired_at, source)"
    " ON CONFLICT (token_id, kind) DO UPDATE SET value = excluded.value,"
    " label = excluded.label, source_ts = excluded.source_ts, band = excluded.band,"
    " alerted_value = excluded.alerted_value, fired_at = excluded.fired_at,"
    " updated_at = excluded.updated_at, source = excluded.source"
)
"""Every reading of a poll in one statement (the SQLite module's upsert, batched)."""

_FANOUT = (
    "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state, next_attempt_at,"
    " created_at, updated_at)"
    " WITH n AS MATERIALIZED (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[],"
    " $4::float8[]) AS n(pk, token_id, bit, detected_at)),"
    " hit AS (SELECT n.pk, s.platform, s.chat_id, s.thread_id FROM n JOIN subscriptions s"
    " ON s.token_id = n.token_id AND (s.kinds & n.bit) <> 0 AND s.created_at <= n.detected_at"
    " UNION ALL"
    " SELECT n.pk, s.platform, s.chat_id, s.thread_id FROM n JOIN subscriptions s"
    f" ON s.token_id = {ALL_TOKENS} AND (s.kinds & n.bit) <> 0"
    " AND s.created_at <= n.detected_at"
    " WHERE NOT EXISTS (SELECT 1 FROM subscriptions t WHERE t.platform = s.platform"
    " AND t.chat_id = s.chat_id AND t.thread_id = s.thread_id AND t.token_id = n.token_id"
    " AND (t.kinds & n.bit) <> 0 AND t.created_at <= n.detected_at))"
    f" SELECT hit.pk, hit.platform, hit.chat_id, hit.thread_id, {PENDING}, $5::float8,"
    " $5::float8, $5::float8 FROM hit WHERE NOT EXISTS (SELECT 1 FROM destinations d"
    " WHERE d.platform = hit.platform AND d.chat_id = hit.chat_id"
    " AND d.thread_id = hit.thread_id AND d.paused_at IS NOT NULL)"
)
"""The fan-out of every new change of a poll: one INSERT … SELECT, whatever the count.

One row per change and destination without DISTINCT (whose hash aggregate spilled to disk at
100,000 rows): the token's own subscriptions, then the every-token ones of destinations that
have no matching own subscription (an anti-join on the subscriptions key). Paused
destinations are left out by an anti-join on the small destinations_paused index (every
subscription has its destination: a foreign key) rather than by hashing all destinations.
No ON CONFLICT
(SQLite's has one): every change here was inserted by this transaction, so no row can exist
already, and the per-row speculative insertion is saved."""


async def insert_changes(conn: asyncpg.Connection, changes: Sequence[Change]) -> dict[str, int]:
    """Insert changes whose ids are not stored; returns the new ones' row ids by change id."""
    if not changes:
        return {}
    columns: list[list[Any]] = [[] for _ in range(14)]
    for c in changes:
        for column, value in zip(columns, (
                c.change_id, c.token.token_id, c.token.symbol, c.token.name, c.token.slug,
                c.kind.value, c.from_value, c.to_value, c.from_label, c.to_label,
                c.direction.value, c.cause, ts(c.source_ts), ts(c.detected_at)), strict=True):
            column.append(value)
    rows = await conn.fetch(_INSERT_CHANGES, *columns)
    return {row[1]: row[0] for row in rows}


def pks_of(changes: Sequence[Change], ids: Mapping[str, int]) -> list[int]:
    """Row ids of changes, in their order."""
    return [ids[c.change_id] for c in changes]


class PostgresState(PostgresConnection):
    """Readings, changes and the outbox rows a new change fans out to."""

    async def load_states(self, token_ids: Sequence[int]) -> dict[tuple[int, Kind], TrackedState]:
        """Stored state of these tokens."""
        ids = sorted(set(token_ids))
        if not ids:
            return {}
        rows = await self._fetchall(
            "SELECT token_id, kind, value, label, source_ts, band, alerted_value, fired_at,"
            " updated_at, source FROM readings WHERE token_id = ANY(?::bigint[])", (ids,))
        states: dict[tuple[int, Kind], TrackedState] = {}
        for row in rows:
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
        stamp = ts(now)
        new: list[Change] = []
        rows = 0
        async with self._tx() as conn:
            await check_epoch(conn, epoch)
            by_kind: dict[Kind, list[int]] = {}
            for token_id, kind in touched:
                by_kind.setdefault(kind, []).append(token_id)
            for kind, token_ids in by_kind.items():
                await conn.execute(
                    "UPDATE readings SET updated_at = $1 WHERE kind = $2"
                    " AND token_id = ANY($3::bigint[])", stamp, kind.value, sorted(token_ids))
            if states:
                # One statement for every reading; the last of a series wins (as one upsert
                # after another would), sorted by key so two writers never lock the same rows
                # in opposite orders.
                last = {(s.token_id, s.kind.value): s for s in states}
                ordered = [last[key] for key in sorted(last)]
                await conn.execute(
                    _UPSERT_READINGS,
                    [s.token_id for s in ordered], [s.kind.value for s in ordered],
                    [s.value for s in ordered], [s.label for s in ordered],
                    [ts(s.source_ts) for s in ordered], [s.band for s in ordered],
                    [s.alerted_value for s in ordered], [opt_ts(s.fired_at) for s in ordered],
                    [s.source for s in ordered], stamp,
                )
            if changes:
                await write_tokens(conn, (c.token for c in changes), now)
            ids = await insert_changes(conn, changes)
            inserted = dict(ids)
            for change in changes:
                # A change id twice in one poll: its first occurrence is the one stored.
                if inserted.pop(change.change_id, None) is not None:
                    new.append(change)
            if new:
                status = await conn.execute(
                    _FANOUT, pks_of(new, ids), [c.token.token_id for c in new],
                    [c.kind.bit for c in new], [ts(c.detected_at) for c in new], stamp)
                rows = status_count(status)
            if meta:
                await write_meta(conn, meta)
        return PollResult(new, rows)

    async def record_ops_event(self, change: Change, destination: Destination,
                               now: datetime) -> bool:
        """Store an operator alert and queue it for one destination only."""
        stamp = ts(now)
        async with self._tx() as conn:
            await insert_destination(conn, destination, now)
            inserted = await insert_changes(conn, [change])
            change_pk = inserted.get(change.change_id)
            if change_pk is None:
                return False
            status = await conn.execute(
                pg("INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                   " next_attempt_at, created_at, updated_at)"
                   f" SELECT ?::bigint, platform, chat_id, thread_id, {PENDING}, ?::float8,"
                   " ?::float8, ?::float8"
                   " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   " AND paused_at IS NULL ON CONFLICT DO NOTHING"),
                change_pk, stamp, stamp, stamp, *dest_params(destination),
            )
            return status_count(status) == 1

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
