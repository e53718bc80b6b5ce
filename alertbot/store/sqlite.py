"""SQLite implementation of the Store port (aiosqlite, WAL, one writer connection)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from typing import Any

import aiosqlite

from alertbot.domain.models import (
    ALL_TOKENS,
    Change,
    Destination,
    Direction,
    Kind,
    Mode,
    Policy,
    QuietHours,
    Reason,
    Subscription,
    Token,
    TrackedState,
    kinds_to_mask,
    mask_to_kinds,
)
from alertbot.domain.throttle import DueAlert, Plan
from alertbot.ports.store import (
    AuditRecord,
    Committed,
    DatabaseStats,
    DecisionRecord,
    DestinationInfo,
    OutboxStats,
    PlanKeys,
    PollResult,
    PurgeResult,
    StoreError,
    Watched,
)

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_QUEUED = ("pending", "held", "sending")
_CHANGE_COLUMNS = (
    "c.id, c.change_id, c.token_id, c.symbol, c.name, c.slug, c.kind, c.from_value, "
    "c.to_value, c.from_label, c.to_label, c.direction, c.cause, c.source_ts, c.detected_at"
)


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _opt_dt(value: float | None) -> datetime | None:
    return None if value is None else _dt(value)


def _opt_ts(value: datetime | None) -> float | None:
    return None if value is None else _ts(value)


def _dest_params(destination: Destination) -> tuple[str, str, str]:
    return destination.platform, destination.chat_id, destination.thread_id


def _change_from_row(row: Sequence[Any], offset: int = 1) -> Change:
    (change_id, token_id, symbol, name, slug, kind, from_value, to_value, from_label,
     to_label, direction, cause, source_ts, detected_at) = row[offset:offset + 14]
    return Change(
        change_id=change_id,
        token=Token(token_id, symbol, name, slug),
        kind=Kind(kind),
        from_value=from_value,
        to_value=to_value,
        direction=Direction(direction),
        source_ts=_dt(source_ts),
        detected_at=_dt(detected_at),
        from_label=from_label,
        to_label=to_label,
        cause=cause,
    )


def encode_modes(modes: Mapping[Kind, Mode]) -> str:
    """Per-kind modes as "kind=mode,…" (only the ones that are not `on`)."""
    return ",".join(f"{k.value}={m.value}" for k, m in sorted(modes.items()) if m is not Mode.ON)


def decode_modes(text: str) -> dict[Kind, Mode]:
    """Inverse of encode_modes."""
    modes: dict[Kind, Mode] = {}
    for part in filter(None, text.split(",")):
        kind, _, mode = part.partition("=")
        modes[Kind(kind)] = Mode(mode)
    return modes


def sqlite_path(url: str) -> str:
    """Path of a `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"not a SQLite URL: {url.split(':', 1)[0]}://…")
    path = url[len(prefix):]
    if not path:
        raise StoreError("SQLite URL has no path (expected sqlite:///alertbot.db)")
    return path


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every bundled migration, in order."""
    folder = resources.files("alertbot.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteStore:
    """Store on a SQLite file. All access goes through one connection guarded by a lock."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """Build from an ALERTBOT_DATABASE_URL."""
        return cls(sqlite_path(url))

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, configure WAL and the busy timeout, and migrate."""
        if self._path != ":memory:":
            parent = await asyncio.to_thread(_parent_dir, self._path)
            if parent is not None:
                raise StoreError(f"database directory does not exist: {parent}")
        try:
            self._db = await aiosqlite.connect(self._path, isolation_level=None)
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc
        except BaseException:
            # A refused schema must not leave the connection (and its thread) open.
            await self.close()
            raise

    async def _migrate(self) -> None:
        db = self._conn
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        migrations = available_migrations()
        latest = migrations[-1][0] if migrations else 0
        if current > latest:
            raise StoreError(
                f"database schema version {current} is newer than this alertbot supports "
                f"({latest}); upgrade alertbot or point ALERTBOT_DATABASE_URL elsewhere"
            )
        for version, name, sql in migrations:
            if version <= current:
                continue
            now = datetime.now(UTC).timestamp()
            script = (
                f"BEGIN IMMEDIATE;\n{sql}\n"
                f"INSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({version}, '{name}', {now});\nCOMMIT;"
            )
            try:
                await db.executescript(script)
            except sqlite3.Error:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        """Highest applied migration."""
        async with self._read() as db, db.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            async with self._read() as db, db.execute("SELECT 1") as cur:
                await cur.fetchone()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"database unavailable: {exc}") from exc

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self._conn
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            else:
                await db.execute("COMMIT")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._conn

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._read() as db, db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._read() as db, db.execute(sql, params) as cur:
            return await cur.fetchone()

    # ------------------------------------------------------------------ catalog

    async def upsert_tokens(self, tokens: Sequence[Token], now: datetime) -> None:
        """Remember tokens."""
        if not tokens:
            return
        async with self._tx() as db:
            await self._upsert_tokens(db, tokens, now)

    @staticmethod
    async def _upsert_tokens(db: aiosqlite.Connection, tokens: Iterable[Token],
                             now: datetime) -> None:
        await db.executemany(
            "INSERT INTO tokens (token_id, symbol, name, slug, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (token_id) DO UPDATE SET symbol = excluded.symbol, name = excluded.name,"
            " slug = CASE WHEN excluded.slug != '' THEN excluded.slug ELSE tokens.slug END,"
            " updated_at = excluded.updated_at",
            [(t.token_id, t.symbol.upper(), t.name, t.slug, _ts(now)) for t in tokens],
        )

    async def tokens_by_symbol(self, symbol: str) -> list[Token]:
        """Tokens with exactly this symbol."""
        rows = await self._fetchall(
            "SELECT token_id, symbol, name, slug FROM tokens WHERE symbol = ? ORDER BY token_id",
            (symbol.strip().upper(),),
        )
        return [Token(*row) for row in rows]

    async def token(self, token_id: int) -> Token | None:
        """A token by id."""
        row = await self._fetchone(
            "SELECT token_id, symbol, name, slug FROM tokens WHERE token_id = ?", (token_id,)
        )
        return Token(*row) if row else None

    async def search_tokens(self, prefix: str, limit: int) -> list[Token]:
        """Tokens whose symbol or name starts with a prefix."""
        text = prefix.strip()
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._fetchall(
            "SELECT token_id, symbol, name, slug FROM tokens "
            "WHERE symbol LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' "
            "ORDER BY CASE WHEN symbol = ? THEN 0 WHEN symbol LIKE ? ESCAPE '\\' THEN 1 ELSE 2 END,"
            " length(symbol), symbol LIMIT ?",
            (pattern, pattern, text.upper(), pattern, limit),
        )
        return [Token(*row) for row in rows]

    # ------------------------------------------------------------------ readings

    async def load_states(self, token_ids: Sequence[int]) -> dict[tuple[int, Kind], TrackedState]:
        """Stored state of these tokens."""
        ids = sorted(set(token_ids))
        states: dict[tuple[int, Kind], TrackedState] = {}
        async with self._read() as db:
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                async with db.execute(
                    "SELECT token_id, kind, value, label, source_ts, band, alerted_value, fired_at,"
                    f" updated_at FROM readings WHERE token_id IN ({marks})",
                    chunk,
                ) as cur:
                    for row in await cur.fetchall():
                        state = TrackedState(
                            token_id=row[0], kind=Kind(row[1]), value=row[2], label=row[3],
                            source_ts=_dt(row[4]), band=row[5], alerted_value=row[6],
                            fired_at=_opt_dt(row[7]), updated_at=_dt(row[8]),
                        )
                        states[(state.token_id, state.kind)] = state
        return states

    async def record_poll(self, states: Sequence[TrackedState], changes: Sequence[Change],
                          now: datetime, meta: Mapping[str, str] | None = None,
                          touched: Sequence[tuple[int, Kind]] = ()) -> PollResult:
        """Readings, new changes and their fan-out in one transaction."""
        new: list[Change] = []
        rows = 0
        stamp = _ts(now)
        async with self._tx() as db:
            by_kind: dict[Kind, list[int]] = {}
            for token_id, kind in touched:
                by_kind.setdefault(kind, []).append(token_id)
            for kind, token_ids in by_kind.items():
                for chunk in _chunks(token_ids, 500):
                    await db.execute(
                        f"UPDATE readings SET updated_at = ? WHERE kind = ?"
                        f" AND token_id IN ({','.join('?' * len(chunk))})",
                        (stamp, kind.value, *chunk))
            if states:
                await db.executemany(
                    "INSERT INTO readings (token_id, kind, value, label, source_ts, band,"
                    " alerted_value, fired_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (token_id, kind) DO UPDATE SET value = excluded.value,"
                    " label = excluded.label, source_ts = excluded.source_ts,"
                    " band = excluded.band, alerted_value = excluded.alerted_value,"
                    " fired_at = excluded.fired_at, updated_at = excluded.updated_at",
                    [(s.token_id, s.kind.value, s.value, s.label, _ts(s.source_ts), s.band,
                      s.alerted_value, _opt_ts(s.fired_at), stamp) for s in states],
                )
            if changes:
                await self._upsert_tokens(db, {c.token.token_id: c.token for c in changes}.values(),
                                          now)
            for change in changes:
                change_pk = await self._insert_change(db, change)
                if change_pk is None:
                    continue
                new.append(change)
                fanout = await db.execute(
                    "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                    " next_attempt_at, created_at, updated_at)"
                    " SELECT DISTINCT ?, s.platform, s.chat_id, s.thread_id, 'pending', ?, ?, ?"
                    " FROM subscriptions s JOIN destinations d ON d.platform = s.platform"
                    " AND d.chat_id = s.chat_id AND d.thread_id = s.thread_id"
                    " WHERE s.token_id IN (?, 0) AND (s.kinds & ?) != 0 AND s.created_at <= ?"
                    " AND d.paused_at IS NULL"
                    " ON CONFLICT DO NOTHING",
                    (change_pk, stamp, stamp, stamp, change.token.token_id, change.kind.bit,
                     _ts(change.detected_at)),
                )
                rows += max(fanout.rowcount, 0)
            if meta:
                await db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    list(meta.items()),
                )
        return PollResult(new, rows)

    @staticmethod
    async def _insert_change(db: aiosqlite.Connection, change: Change) -> int | None:
        """Insert a change unless its id is stored; returns its row id when new."""
        cursor = await db.execute(
            "INSERT INTO changes (change_id, token_id, symbol, name, slug, kind,"
            " from_value, to_value, from_label, to_label, direction, cause, source_ts,"
            " detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (change_id) DO NOTHING",
            (change.change_id, change.token.token_id, change.token.symbol,
             change.token.name, change.token.slug, change.kind.value, change.from_value,
             change.to_value, change.from_label, change.to_label,
             change.direction.value, change.cause, _ts(change.source_ts),
             _ts(change.detected_at)),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    async def record_ops_event(self, change: Change, destination: Destination,
                               now: datetime) -> bool:
        """Store an operator alert and queue it for one destination only."""
        stamp = _ts(now)
        async with self._tx() as db:
            await self._ensure_destination(db, destination, now)
            change_pk = await self._insert_change(db, change)
            if change_pk is None:
                return False
            cursor = await db.execute(
                "INSERT INTO outbox (change_pk, platform, chat_id, thread_id, state,"
                " next_attempt_at, created_at, updated_at)"
                " SELECT ?, platform, chat_id, thread_id, 'pending', ?, ?, ? FROM destinations"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NULL"
                " ON CONFLICT DO NOTHING",
                (change_pk, stamp, stamp, stamp, *_dest_params(destination)),
            )
            return cursor.rowcount == 1

    async def recent_changes(self, token_id: int, kind: Kind | None,
                             limit: int) -> list[Change]:
        """Newest changes of a token."""
        sql = f"SELECT {_CHANGE_COLUMNS} FROM changes c WHERE c.token_id = ?"
        params: list[Any] = [token_id]
        if kind is not None:
            sql += " AND c.kind = ?"
            params.append(kind.value)
        sql += " ORDER BY c.detected_at DESC, c.id DESC LIMIT ?"
        params.append(limit)
        return [_change_from_row(row) for row in await self._fetchall(sql, params)]

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, destination: Destination, token_id: int, kinds: Sequence[Kind],
                        now: datetime, actor: str = "") -> bool:
        """Add kinds for a token; resumes a paused destination."""
        mask = kinds_to_mask(tuple(kinds))
        if not mask:
            return False
        params = _dest_params(destination)
        async with self._tx() as db:
            await self._ensure_destination(db, destination, now)
            async with db.execute(
                "SELECT kinds FROM subscriptions WHERE platform = ? AND chat_id = ?"
                " AND thread_id = ? AND token_id = ?",
                (*params, token_id),
            ) as cur:
                row = await cur.fetchone()
            old = int(row[0]) if row else 0
            resumed = await self._resume(db, destination, now, actor)
            if old | mask == old and not resumed:
                return False
            await db.execute(
                "INSERT INTO subscriptions (platform, chat_id, thread_id, token_id, kinds,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, chat_id, thread_id, token_id)"
                " DO UPDATE SET kinds = subscriptions.kinds | excluded.kinds",
                (*params, token_id, mask, _ts(now)),
            )
            await self._audit(db, destination, "subscribe",
                              f"token {token_id or 'all'}: {_kind_names(mask)}", now, actor)
        return True

    async def unsubscribe(self, destination: Destination, token_id: int | None,
                          kinds: Sequence[Kind], now: datetime, actor: str = "") -> int:
        """Remove kinds for a token, or for every subscription when token_id is None."""
        mask = kinds_to_mask(tuple(kinds))
        params = _dest_params(destination)
        where = "platform = ? AND chat_id = ? AND thread_id = ?"
        args: list[Any] = list(params)
        if token_id is not None:
            where += " AND token_id = ?"
            args.append(token_id)
        async with self._tx() as db:
            cur = await db.execute(
                f"UPDATE subscriptions SET kinds = kinds & ~? WHERE {where} AND (kinds & ?) != 0",
                (mask, *args, mask),
            )
            changed = max(cur.rowcount, 0)
            await db.execute(f"DELETE FROM subscriptions WHERE {where} AND kinds = 0", args)
            if changed:
                target = "every token" if token_id is None else f"token {token_id or 'all'}"
                await self._audit(db, destination, "unsubscribe",
                                  f"{target}: {_kind_names(mask)}", now, actor)
        return changed

    async def subscriptions(self, destination: Destination | None = None) -> list[Subscription]:
        """Subscriptions of one destination, or all of them."""
        sql = (
            "SELECT s.platform, s.chat_id, s.thread_id, s.token_id, s.kinds, s.created_at,"
            " COALESCE(t.symbol, ''), d.paused_reason FROM subscriptions s"
            " JOIN destinations d ON d.platform = s.platform AND d.chat_id = s.chat_id"
            " AND d.thread_id = s.thread_id"
            " LEFT JOIN tokens t ON t.token_id = s.token_id"
        )
        params: tuple[str, ...] = ()
        if destination is not None:
            sql += " WHERE s.platform = ? AND s.chat_id = ? AND s.thread_id = ?"
            params = _dest_params(destination)
        sql += " ORDER BY s.platform, s.chat_id, s.thread_id, s.token_id != 0, t.symbol, s.token_id"
        return [
            Subscription(
                destination=Destination(row[0], row[1], row[2]),
                token_id=row[3],
                kinds=mask_to_kinds(row[4]),
                created_at=_dt(row[5]),
                symbol="all" if row[3] == ALL_TOKENS else row[6],
                paused_reason=row[7],
            )
            for row in await self._fetchall(sql, params)
        ]

    async def watched(self) -> Watched:
        """Tokens and kinds active subscriptions need."""
        rows = await self._fetchall(
            # DISTINCT keeps this to a few rows per token even with 100,000 subscriptions.
            "SELECT DISTINCT s.token_id, s.kinds FROM subscriptions s JOIN destinations d"
            " ON d.platform = s.platform AND d.chat_id = s.chat_id AND d.thread_id = s.thread_id"
            " WHERE d.paused_at IS NULL"
        )
        all_mask = 0
        masks: dict[int, int] = {}
        for token_id, kinds in rows:
            if token_id == ALL_TOKENS:
                all_mask |= kinds
            else:
                masks[token_id] = masks.get(token_id, 0) | kinds
        return Watched(all_mask, masks)

    # ------------------------------------------------------------------ destinations

    async def destination(self, destination: Destination) -> DestinationInfo | None:
        """A destination's settings."""
        rows = await self._destination_rows(
            " WHERE platform = ? AND chat_id = ? AND thread_id = ?", _dest_params(destination)
        )
        return rows[0] if rows else None

    async def destinations(self, *, platform: str | None = None, chat_id: str | None = None,
                           with_address: bool = False,
                           limit: int | None = None) -> list[DestinationInfo]:
        """Destinations matching the filters, in key order."""
        where: list[str] = []
        params: list[Any] = []
        if platform is not None:
            where.append("platform = ?")
            params.append(platform)
        if chat_id is not None:
            where.append("chat_id = ?")
            params.append(chat_id)
        if with_address:
            where.append("address IS NOT NULL AND address != ''")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        clause += " ORDER BY platform, chat_id, thread_id"
        if limit is not None:
            clause += " LIMIT ?"
            params.append(limit)
        return await self._destination_rows(clause, params)

    async def _destination_rows(self, clause: str, params: Sequence[Any]) -> list[DestinationInfo]:
        rows = await self._fetchall(
            "SELECT platform, chat_id, thread_id, max_alerts, window_s, quiet_start, quiet_end,"
            " quiet_tz, mute_until, settle_s, modes, address, label, paused_reason, paused_at"
            " FROM destinations" + clause,
            params,
        )
        infos = []
        for row in rows:
            quiet = None
            if row[5] and row[6]:
                quiet = QuietHours(time.fromisoformat(row[5]), time.fromisoformat(row[6]),
                                   row[7] or "UTC")
            policy = Policy(
                max_alerts=row[3], window=timedelta(seconds=row[4]), quiet=quiet,
                mute_until=_opt_dt(row[8]), settle=timedelta(seconds=row[9]),
                modes=decode_modes(row[10]),
            )
            infos.append(DestinationInfo(Destination(row[0], row[1], row[2]), policy,
                                         address=row[11], label=row[12], paused_reason=row[13],
                                         paused_at=_opt_dt(row[14])))
        return infos

    async def ensure_destination(self, destination: Destination, now: datetime, *,
                                 address: str | None = None, label: str = "",
                                 policy: Policy | None = None) -> None:
        """Create a destination if missing; update address or label when given."""
        async with self._tx() as db:
            await self._ensure_destination(db, destination, now, policy)
            if address is not None:
                await db.execute(
                    "UPDATE destinations SET address = ? WHERE platform = ? AND chat_id = ?"
                    " AND thread_id = ?", (address, *_dest_params(destination)))
            if label:
                await db.execute(
                    "UPDATE destinations SET label = ? WHERE platform = ? AND chat_id = ?"
                    " AND thread_id = ?", (label, *_dest_params(destination)))

    async def _ensure_destination(self, db: aiosqlite.Connection, destination: Destination,
                                  now: datetime, policy: Policy | None = None) -> None:
        policy = policy or Policy()
        await db.execute(
            "INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
            " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING",
            (*_dest_params(destination), *_policy_columns(policy), _ts(now)),
        )

    async def set_policy(self, destination: Destination, policy: Policy, now: datetime,
                         actor: str = "", detail: str = "") -> None:
        """Replace a destination's policy."""
        async with self._tx() as db:
            await self._ensure_destination(db, destination, now)
            await db.execute(
                "UPDATE destinations SET max_alerts = ?, window_s = ?, quiet_start = ?,"
                " quiet_end = ?, quiet_tz = ?, mute_until = ?, settle_s = ?, modes = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                (*_policy_columns(policy), *_dest_params(destination)),
            )
            await self._audit(db, destination, "policy", detail or _describe_policy(policy),
                              now, actor)

    async def pause(self, destination: Destination, reason: str, now: datetime) -> int:
        """Pause a destination and dead-letter its queued rows."""
        params = _dest_params(destination)
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE destinations SET paused_at = ?, paused_reason = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NULL",
                (_ts(now), reason, *params),
            )
            if cur.rowcount < 1:
                return 0
            async with db.execute(
                "SELECT id, change_pk FROM outbox WHERE platform = ? AND chat_id = ?"
                " AND thread_id = ? AND state IN ('pending', 'held', 'sending')", params,
            ) as rows_cur:
                queued = list(await rows_cur.fetchall())
            await db.execute(
                "UPDATE outbox SET state = 'dead', reason = ?, last_error = ?, updated_at = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " AND state IN ('pending', 'held', 'sending')",
                (Reason.DESTINATION_GONE.value, reason, _ts(now), *params),
            )
            await self._decide(db, destination, [(r[0], r[1]) for r in queued],
                               Reason.DESTINATION_GONE, reason, now)
            await self._audit(db, destination, "pause", reason, now, "alertbot")
        return len(queued)

    async def resume(self, destination: Destination, now: datetime, actor: str = "") -> bool:
        """Resume a paused destination."""
        async with self._tx() as db:
            return await self._resume(db, destination, now, actor)

    async def _resume(self, db: aiosqlite.Connection, destination: Destination, now: datetime,
                      actor: str) -> bool:
        cur = await db.execute(
            "UPDATE destinations SET paused_at = NULL, paused_reason = ''"
            " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NOT NULL",
            _dest_params(destination),
        )
        if cur.rowcount > 0:
            await self._audit(db, destination, "resume", "", now, actor)
            return True
        return False

    async def rekey(self, old: Destination, new: Destination, now: datetime) -> int:
        """Move a destination to a new id (a Telegram group that became a supergroup)."""
        old_p, new_p = _dest_params(old), _dest_params(new)
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
                " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, address, label,"
                " created_at) SELECT ?, ?, ?, max_alerts, window_s, quiet_start, quiet_end,"
                " quiet_tz, mute_until, settle_s, modes, address, label, created_at"
                " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING",
                (*new_p, *old_p),
            )
            await db.execute(
                "INSERT INTO subscriptions (platform, chat_id, thread_id, token_id, kinds,"
                " created_at) SELECT ?, ?, ?, token_id, kinds, created_at FROM subscriptions"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " ON CONFLICT (platform, chat_id, thread_id, token_id)"
                " DO UPDATE SET kinds = subscriptions.kinds | excluded.kinds",
                (*new_p, *old_p),
            )
            await db.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                old_p,
            )
            # Rows the new id already has win; the rest move over and are sent again at once.
            await db.execute(
                "DELETE FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " AND state IN ('pending', 'held', 'sending') AND change_pk IN (SELECT change_pk"
                " FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?)",
                (*old_p, *new_p),
            )
            cur = await db.execute(
                "UPDATE outbox SET platform = ?, chat_id = ?, thread_id = ?, state = 'pending',"
                " msg_key = NULL, next_attempt_at = ?, updated_at = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " AND state IN ('pending', 'held', 'sending')",
                (*new_p, _ts(now), _ts(now), *old_p),
            )
            moved = max(cur.rowcount, 0)
            await db.execute(
                "UPDATE messages SET platform = ?, chat_id = ?, thread_id = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?", (*new_p, *old_p))
            await db.execute(
                "DELETE FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                old_p,
            )
            await self._audit(db, new, "rekey", f"moved from {old} ({moved} queued alerts)",
                              now, "alertbot")
        return moved

    # ------------------------------------------------------------------ outbox

    async def recover(self, now: datetime) -> int:
        """Rows left in `sending` by a crash become due now (they keep their message key)."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE state = 'sending'",
                (_ts(now), _ts(now)),
            )
            return max(cur.rowcount, 0)

    async def due_destinations(self, now: datetime, limit: int, platforms: Sequence[str],
                               exclude: Sequence[Destination] = ()) -> list[Destination]:
        """Destinations on these platforms with due rows, oldest first, skipping busy ones."""
        skip = {_dest_params(d) for d in exclude}
        if not platforms:
            return []
        marks = ",".join("?" * len(platforms))
        rows = await self._fetchall(
            "SELECT platform, chat_id, thread_id, MIN(next_attempt_at) AS due FROM outbox"
            " WHERE state IN ('pending', 'held', 'sending') AND next_attempt_at <= ?"
            f" AND platform IN ({marks})"
            " GROUP BY platform, chat_id, thread_id ORDER BY due LIMIT ?",
            (_ts(now), *platforms, limit + len(skip)),
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
            f" WHERE state IN ('pending', 'held', 'sending') AND platform IN ({marks})",
            tuple(platforms),
        )
        return _opt_dt(row[0]) if row else None

    async def committed(self, destination: Destination, now: datetime) -> list[Committed]:
        """Due messages whose rows were already committed to a key."""
        rows = await self._fetchall(
            f"SELECT o.id, {_CHANGE_COLUMNS}, o.msg_key, o.silent, o.attempts, o.created_at"
            " FROM outbox o JOIN changes c ON c.id = o.change_pk"
            " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
            " AND o.state IN ('pending', 'sending') AND o.msg_key IS NOT NULL"
            " AND o.next_attempt_at <= ? ORDER BY o.id",
            (*_dest_params(destination), _ts(now)),
        )
        grouped: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            grouped.setdefault(row[16], []).append(row)
        return [
            Committed(
                key=key,
                row_ids=tuple(r[0] for r in members),
                changes=tuple(_change_from_row(r, 2) for r in members),
                silent=all(bool(r[17]) for r in members),
                attempts=max(r[18] for r in members),
                first_created=_dt(min(r[19] for r in members)),
            )
            for key, members in grouped.items()
        ]

    async def due_alerts(self, destination: Destination, now: datetime) -> list[DueAlert]:
        """Due pending rows plus the whole held group, each with the next change of its series."""
        params = _dest_params(destination)
        rows = await self._fetchall(
            f"SELECT o.id, {_CHANGE_COLUMNS}, o.state FROM outbox o"
            " JOIN changes c ON c.id = o.change_pk"
            " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ? AND o.msg_key IS NULL"
            " AND ((o.state = 'pending' AND o.next_attempt_at <= ?) OR o.state = 'held')"
            " ORDER BY c.detected_at, o.id",
            (*params, _ts(now)),
        )
        if not rows:
            return []
        if all(r[16] == "held" for r in rows) and not await self._held_due(params, now):
            return []
        alerts = []
        for row in rows:
            change = _change_from_row(row, 2)
            following = await self._fetchone(
                f"SELECT o.id, {_CHANGE_COLUMNS} FROM outbox o JOIN changes c ON c.id = o.change_pk"
                " WHERE o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
                " AND c.token_id = ? AND c.kind = ? AND (c.detected_at > ? OR"
                " (c.detected_at = ? AND c.id > ?)) ORDER BY c.detected_at, c.id LIMIT 1",
                (*params, change.token.token_id, change.kind.value, _ts(change.detected_at),
                 _ts(change.detected_at), row[1]),
            )
            alerts.append(DueAlert(
                row_id=row[0], change=change, held=row[16] == "held",
                next_change=_change_from_row(following, 2) if following else None,
                next_row_id=following[0] if following else None,
            ))
        return alerts

    async def _held_due(self, params: tuple[str, str, str], now: datetime) -> bool:
        row = await self._fetchone(
            "SELECT 1 FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?"
            " AND state = 'held' AND next_attempt_at <= ? LIMIT 1",
            (*params, _ts(now)),
        )
        return row is not None

    async def sent_times(self, destination: Destination, since: datetime) -> list[datetime]:
        """Delivery times of messages to a destination since a time."""
        rows = await self._fetchall(
            "SELECT sent_at FROM messages WHERE platform = ? AND chat_id = ? AND thread_id = ?"
            " AND sent_at > ? ORDER BY sent_at",
            (*_dest_params(destination), _ts(since)),
        )
        return [_dt(r[0]) for r in rows]

    async def apply_plan(self, destination: Destination, plan: Plan, keys: PlanKeys,
                         now: datetime) -> Counter[Reason]:
        """Store a plan's decisions; returns the new decisions recorded, by reason."""
        stamp = _ts(now)
        recorded: Counter[Reason] = Counter()
        async with self._tx() as db:
            for decision in plan.suppressed:
                cur = await db.execute(
                    "UPDATE outbox SET state = 'suppressed', reason = ?, updated_at = ?"
                    " WHERE id = ? AND state IN ('pending', 'held') AND msg_key IS NULL"
                    " RETURNING change_pk",
                    (decision.reason.value, stamp, decision.row_id),
                )
                hit = await cur.fetchone()
                if hit:
                    await self._decide(db, destination, [(decision.row_id, hit[0])],
                                       decision.reason, "", now)
                    recorded[decision.reason] += 1
            waits = [(d, "held") for d in plan.held] + [(d, "pending") for d in plan.deferred]
            for decision, state in waits:
                until = decision.until or now
                async with db.execute(
                    "SELECT change_pk, reason FROM outbox WHERE id = ? AND msg_key IS NULL"
                    " AND state IN ('pending', 'held')", (decision.row_id,),
                ) as cur:
                    hit = await cur.fetchone()
                if hit is None:
                    continue
                await db.execute(
                    "UPDATE outbox SET state = ?, reason = ?, next_attempt_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (state, decision.reason.value, _ts(until), stamp, decision.row_id),
                )
                if hit[1] != decision.reason.value:
                    await self._decide(db, destination, [(decision.row_id, hit[0])],
                                       decision.reason, f"until {until:%Y-%m-%d %H:%M:%S} UTC",
                                       now)
                    recorded[decision.reason] += 1
            for decision in plan.singles:
                if await self._commit_row(db, destination, decision.row_id,
                                          keys.singles[decision.row_id], decision.silent,
                                          decision.reason, now):
                    recorded[decision.reason] += 1
            if plan.digest:
                assert keys.digest is not None, "a digest needs a key"
                for decision in plan.digest:
                    if await self._commit_row(db, destination, decision.row_id, keys.digest,
                                              plan.digest_silent, decision.reason, now):
                        recorded[decision.reason] += 1
        return recorded

    async def _commit_row(self, db: aiosqlite.Connection, destination: Destination, row_id: int,
                          key: str, silent: bool, reason: Reason, now: datetime) -> bool:
        cur = await db.execute(
            "UPDATE outbox SET state = 'pending', reason = ?, msg_key = ?, silent = ?,"
            " next_attempt_at = ?, updated_at = ? WHERE id = ? AND msg_key IS NULL"
            " AND state IN ('pending', 'held') RETURNING change_pk",
            (reason.value, key, int(silent), _ts(now), _ts(now), row_id),
        )
        hit = await cur.fetchone()
        if hit:
            await self._decide(db, destination, [(row_id, hit[0])], reason, key, now)
        return hit is not None

    async def claim(self, key: str, now: datetime) -> None:
        """Mark a message's rows as being sent."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE outbox SET state = 'sending', updated_at = ? WHERE msg_key = ?"
                " AND state IN ('pending', 'sending')",
                (_ts(now), key),
            )

    async def mark_sent(self, destination: Destination, key: str, message_id: str,
                        now: datetime) -> list[Change]:
        """Record a delivered message."""
        stamp = _ts(now)
        async with self._tx() as db:
            async with db.execute(
                f"SELECT o.id, {_CHANGE_COLUMNS} FROM outbox o JOIN changes c ON c.id = o.change_pk"
                " WHERE o.msg_key = ? AND o.state IN ('pending', 'sending')",
                (key,),
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return []
            await db.execute(
                "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, updated_at = ?,"
                " last_error = '' WHERE msg_key = ? AND state IN ('pending', 'sending')",
                (message_id, stamp, stamp, key),
            )
            await db.execute(
                "INSERT INTO messages (platform, chat_id, thread_id, msg_key, message_id, alerts,"
                " sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*_dest_params(destination), key, message_id, len(rows), stamp),
            )
        return [_change_from_row(r, 2) for r in rows]

    async def mark_retry(self, destination: Destination, key: str, until: datetime,
                         error: str, reason: Reason, count_attempt: bool,
                         now: datetime) -> None:
        """Schedule a message for another attempt."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?,"
                " attempts = attempts + ?, updated_at = ? WHERE msg_key = ?"
                " AND state IN ('pending', 'sending') RETURNING id, change_pk",
                (_ts(until), error, int(count_attempt), _ts(now), key),
            )
            rows = [(r[0], r[1]) for r in await cur.fetchall()]
            await self._decide(db, destination, rows, reason,
                               f"{error} (next attempt {until:%H:%M:%S} UTC)", now)

    async def mark_dead(self, destination: Destination, key: str, error: str, reason: Reason,
                        now: datetime) -> None:
        """Dead-letter a message's rows."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE outbox SET state = 'dead', reason = ?, last_error = ?, updated_at = ?"
                " WHERE msg_key = ? AND state IN ('pending', 'sending') RETURNING id, change_pk",
                (reason.value, error, _ts(now), key),
            )
            rows = [(r[0], r[1]) for r in await cur.fetchall()]
            await self._decide(db, destination, rows, reason, error, now)

    async def outbox_stats(self) -> OutboxStats:
        """Outbox depth by state and the oldest undelivered row."""
        rows = await self._fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        oldest = await self._fetchone(
            "SELECT MIN(created_at) FROM outbox WHERE state IN ('pending', 'held', 'sending')"
        )
        return OutboxStats({r[0]: r[1] for r in rows}, _opt_dt(oldest[0]) if oldest else None)

    # ------------------------------------------------------------------ decisions, audit, meta

    @staticmethod
    async def _decide(db: aiosqlite.Connection, destination: Destination,
                      rows: Sequence[tuple[int, int]], reason: Reason, detail: str,
                      now: datetime) -> None:
        if not rows:
            return
        await db.executemany(
            "INSERT INTO decisions (at, platform, chat_id, thread_id, outbox_id, change_pk,"
            " reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(_ts(now), *_dest_params(destination), row_id, change_pk, reason.value, detail)
             for row_id, change_pk in rows],
        )

    async def recent_decisions(self, destination: Destination,
                               limit: int) -> list[DecisionRecord]:
        """Newest decisions of a destination."""
        rows = await self._fetchall(
            f"SELECT d.at, d.reason, d.detail, d.change_pk, {_CHANGE_COLUMNS} FROM decisions d"
            " LEFT JOIN changes c ON c.id = d.change_pk"
            " WHERE d.platform = ? AND d.chat_id = ? AND d.thread_id = ?"
            " ORDER BY d.at DESC, d.id DESC LIMIT ?",
            (*_dest_params(destination), limit),
        )
        return [
            DecisionRecord(_dt(r[0]), r[1], _change_from_row(r, 5) if r[4] is not None else None,
                           r[2])
            for r in rows
        ]

    async def add_audit(self, destination: Destination | None, action: str, detail: str,
                        now: datetime, actor: str = "") -> None:
        """Append an audit entry."""
        async with self._tx() as db:
            await self._audit(db, destination, action, detail, now, actor)

    @staticmethod
    async def _audit(db: aiosqlite.Connection, destination: Destination | None, action: str,
                     detail: str, now: datetime, actor: str) -> None:
        platform, chat_id, thread_id = _dest_params(destination) if destination else ("", "", "")
        await db.execute(
            "INSERT INTO audit (at, platform, chat_id, thread_id, action, detail, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_ts(now), platform, chat_id, thread_id, action, detail, actor),
        )

    async def recent_audit(self, limit: int) -> list[AuditRecord]:
        """Newest audit entries."""
        rows = await self._fetchall(
            "SELECT at, platform, chat_id, thread_id, action, detail, actor FROM audit"
            " ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        return [
            AuditRecord(_dt(r[0]), Destination(r[1], r[2], r[3]) if r[1] else None, r[4], r[5],
                        r[6])
            for r in rows
        ]

    async def get_meta(self, key: str) -> str | None:
        """A bookkeeping value."""
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a bookkeeping value."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


    # ------------------------------------------------------------------ maintenance

    async def purge(self, before: datetime, now: datetime) -> PurgeResult:
        """Delete old decisions, finished outbox rows, rate history and unreferenced changes."""
        cutoff = _ts(before)
        async with self._tx() as db:
            async with db.execute("SELECT COALESCE(MAX(window_s), 0) FROM destinations") as cur:
                row = await cur.fetchone()
            longest = float(row[0]) if row else 0.0
            history_cutoff = min(cutoff, _ts(now) - longest)
            decisions = await db.execute("DELETE FROM decisions WHERE at < ?", (cutoff,))
            outbox = await db.execute(
                "DELETE FROM outbox WHERE state IN ('sent', 'suppressed', 'dead')"
                " AND updated_at < ?", (cutoff,))
            messages = await db.execute("DELETE FROM messages WHERE sent_at < ?",
                                        (history_cutoff,))
            changes = await db.execute(
                "DELETE FROM changes WHERE detected_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM outbox o WHERE o.change_pk = changes.id)", (cutoff,))
            return PurgeResult(decisions=max(decisions.rowcount, 0),
                               outbox=max(outbox.rowcount, 0),
                               messages=max(messages.rowcount, 0),
                               changes=max(changes.rowcount, 0))

    async def backup(self, path: str) -> None:
        """Online backup through SQLite's backup API into a temporary file, then renamed."""
        target = await asyncio.to_thread(_backup_target, self._path, path)
        partial = f"{target}.partial"
        try:
            # The copy holds delivery addresses (secrets): readable by the owner only.
            await asyncio.to_thread(_create_private, partial)
            copy = await asyncio.to_thread(sqlite3.connect, partial, check_same_thread=False)
            try:
                async with self._lock:
                    # One step (pages=-1): the copy is a single consistent snapshot; in WAL
                    # mode other connections keep writing meanwhile.
                    await self._conn.backup(copy)
                await asyncio.to_thread(copy.execute, "PRAGMA journal_mode = DELETE")
            finally:
                await asyncio.to_thread(copy.close)
            await asyncio.to_thread(os.replace, partial, target)
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise StoreError(f"cannot write backup {target}: {exc}") from exc

    async def stats(self) -> DatabaseStats:
        """Size, schema version, rows per table and outbox depth."""
        async with self._read() as db:
            async with db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ) as cur:
                names = [str(r[0]) for r in await cur.fetchall()]
            tables: dict[str, int] = {}
            for name in names:
                # Names come from sqlite_master, quoted as identifiers.
                async with db.execute(f'SELECT COUNT(*) FROM "{name}"') as cur:
                    row = await cur.fetchone()
                tables[name] = int(row[0]) if row else 0
            async with db.execute(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            ) as cur:
                row = await cur.fetchone()
            size = int(row[0]) if row else 0
        location, wal = self._path, 0
        if self._path != ":memory:":
            location = await asyncio.to_thread(os.path.abspath, self._path)
            wal = await asyncio.to_thread(_file_size, f"{self._path}-wal")
        return DatabaseStats(
            location=location,
            schema_version=await self.schema_version(),
            size_bytes=size,
            wal_bytes=wal,
            tables=tables,
            outbox=await self.outbox_stats(),
        )


def _backup_target(database: str, path: str) -> str:
    target = os.path.abspath(os.path.expanduser(path))
    if database != ":memory:" and target == os.path.abspath(database):
        raise StoreError("the backup path is the database itself")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise StoreError(f"backup directory does not exist: {folder}")
    return target


def _create_private(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _parent_dir(path: str) -> str | None:
    """The database file's folder if it does not exist (a clearer error than SQLite's)."""
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    return None if os.path.isdir(parent) else parent


def _chunks(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _kind_names(mask: int) -> str:
    return ", ".join(k.value for k in mask_to_kinds(mask)) or "nothing"


def _policy_columns(policy: Policy) -> tuple[Any, ...]:
    quiet = policy.quiet
    return (
        policy.max_alerts,
        policy.window.total_seconds(),
        quiet.start.strftime("%H:%M") if quiet else None,
        quiet.end.strftime("%H:%M") if quiet else None,
        quiet.tz if quiet else None,
        _opt_ts(policy.mute_until),
        policy.settle.total_seconds(),
        encode_modes(policy.modes),
    )


def _describe_policy(policy: Policy) -> str:
    parts = [f"max {policy.max_alerts} per {policy.window}"]
    if policy.quiet:
        parts.append(f"quiet {policy.quiet}")
    if policy.mute_until:
        parts.append(f"muted until {policy.mute_until:%Y-%m-%d %H:%M} UTC")
    if policy.settle:
        parts.append(f"settle {policy.settle}")
    if policy.modes:
        parts.append(f"modes {encode_modes(policy.modes)}")
    return ", ".join(parts)
