"""The Meta and Maintenance roles on SQLite: bookkeeping, retention, backup and statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from alertbot.ports.store import DatabaseStats, OutboxStats, PurgeResult, StoreError
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.rows import FINISHED, QUEUED, opt_dt, ts


async def write_meta(db: aiosqlite.Connection, values: Mapping[str, str]) -> None:
    """Set bookkeeping values inside the caller's transaction."""
    await db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )


class SqliteMaintenance(SqliteConnection):
    """Bookkeeping values and housekeeping of the whole database."""

    async def get_meta(self, key: str) -> str | None:
        """A bookkeeping value."""
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a bookkeeping value."""
        async with self._tx() as db:
            await write_meta(db, {key: value})

    async def update_meta(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Read and write in one IMMEDIATE transaction: other processes wait for it."""
        async with self._tx() as db:
            async with db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            current = str(row[0]) if row else None
            new = change(current)
            if new is None or new == current:
                return current
            await write_meta(db, {key: new})
            return new

    async def outbox_stats(self) -> OutboxStats:
        """Outbox depth by state and the oldest undelivered row."""
        rows = await self._fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        oldest = await self._fetchone(
            f"SELECT MIN(created_at) FROM outbox WHERE state IN {QUEUED}"
        )
        return OutboxStats({r[0]: r[1] for r in rows}, opt_dt(oldest[0]) if oldest else None)

    async def purge(self, before: datetime, now: datetime) -> PurgeResult:
        """Delete old decisions, finished outbox rows, rate history and unreferenced changes."""
        cutoff = ts(before)
        async with self._tx() as db:
            async with db.execute("SELECT COALESCE(MAX(window_s), 0) FROM destinations") as cur:
                row = await cur.fetchone()
            longest = float(row[0]) if row else 0.0
            history_cutoff = min(cutoff, ts(now) - longest)
            decisions = await db.execute("DELETE FROM decisions WHERE at < ?", (cutoff,))
            outbox = await db.execute(
                f"DELETE FROM outbox WHERE state IN {FINISHED}"
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
            async with self._lock:
                # One statement writes a consistent, compact snapshot into the (empty, private)
                # file; in WAL mode other connections keep writing meanwhile.
                await self._conn.execute("VACUUM INTO ?", (partial,))
            # Opened, switched and closed in one thread: no journal is left beside the copy.
            await asyncio.to_thread(_standalone, partial)
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


    @property
    def location(self) -> str:
        """The database as a URL."""
        return f"sqlite:///{self._path}"

    async def table_columns(self, table: str) -> list[str]:
        """A table's columns, in order (for `alertbot db copy`)."""
        rows = await self._fetchall("SELECT name FROM pragma_table_info(?) ORDER BY cid",
                                    (table,))
        return [str(r[0]) for r in rows]

    async def export_rows(self, table: str, columns: Sequence[str],
                          batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        """A table's rows in batches, in rowid order (for `alertbot db copy`)."""
        # Identifiers come from table_columns and the fixed table list, quoted.
        listed = ", ".join(f'"{c}"' for c in columns)
        last = -(2 ** 63)
        while True:
            rows = await self._fetchall(
                f'SELECT rowid, {listed} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
                (last, batch))
            if not rows:
                return
            last = rows[-1][0]
            yield [tuple(r[1:]) for r in rows]

    async def import_rows(self, table: str, columns: Sequence[str],
                          rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows as they are, ids included (for `alertbot db copy`)."""
        listed = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        async with self._tx() as db:
            await db.executemany(f'INSERT INTO "{table}" ({listed}) VALUES ({marks})', rows)

    async def reset_sequences(self) -> None:
        """Nothing to do: SQLite's next rowid already follows the largest one."""


def _backup_target(database: str, path: str) -> str:
    target = os.path.abspath(os.path.expanduser(path))
    if database != ":memory:" and target == os.path.abspath(database):
        raise StoreError("the backup path is the database itself")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise StoreError(f"backup directory does not exist: {folder}")
    return target


def _standalone(path: str) -> None:
    """Make a copy a single self-contained file (rollback journal mode, nothing beside it)."""
    copy = sqlite3.connect(path)
    try:
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()


def _create_private(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
