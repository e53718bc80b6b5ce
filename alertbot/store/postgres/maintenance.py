"""The Meta and Maintenance roles on PostgreSQL: bookkeeping, retention, backup and statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from alertbot.ports.store import DatabaseStats, OutboxStats, PurgeResult, StoreError
from alertbot.store.postgres.connection import (
    OWN_PARAMETERS,
    PostgresConnection,
    lock_key,
    pg,
    status_count,
)
from alertbot.store.sqlite.rows import FINISHED, QUEUED, opt_dt, ts


async def write_meta(conn: asyncpg.Connection, values: Mapping[str, str]) -> None:
    """Set bookkeeping values inside the caller's transaction."""
    await conn.executemany(
        pg("INSERT INTO meta (key, value) VALUES (?, ?)"
           " ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
        sorted(values.items()),
    )


def pg_dump_command(location: str, path: str = "alertbot.dump") -> str:
    """The pg_dump command that backs up the database at `location` (a redacted URL).

    alertbot's own URL parameters are left out (pg_dump does not know them) and a
    `search_path` becomes `--schema`.
    """
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "search_path"]
    kept = [(k, v) for k, v in query if k not in (*OWN_PARAMETERS, "search_path")]
    url = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
    schema = "".join(f" --schema={s}" for s in schemas)
    return f"pg_dump --format=custom{schema} --file={path} '{url}'"


class PostgresMaintenance(PostgresConnection):
    """Bookkeeping values and housekeeping of the whole database."""

    async def get_meta(self, key: str) -> str | None:
        """A bookkeeping value."""
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a bookkeeping value."""
        async with self._tx() as conn:
            await write_meta(conn, {key: value})

    async def update_meta(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Read and write under the key's advisory lock: other processes wait for it."""
        async with self._tx() as conn:
            # A row lock cannot guard a key that does not exist yet; the advisory lock can.
            await lock_key(conn, "meta", key)
            row = await conn.fetchrow("SELECT value FROM meta WHERE key = $1", key)
            current = str(row[0]) if row else None
            new = change(current)
            if new is None or new == current:
                return current
            await write_meta(conn, {key: new})
            return new

    async def outbox_stats(self) -> OutboxStats:
        """Outbox depth by state and the oldest undelivered row."""
        async with self._read() as conn:
            rows = await conn.fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            oldest = await conn.fetchval(
                f"SELECT MIN(created_at) FROM outbox WHERE state IN {QUEUED}")
        return OutboxStats({r[0]: r[1] for r in rows}, opt_dt(oldest))

    async def purge(self, before: datetime, now: datetime) -> PurgeResult:
        """Delete old decisions, finished outbox rows, rate history and unreferenced changes."""
        cutoff = ts(before)
        async with self._tx() as conn:
            longest = float(await conn.fetchval(
                "SELECT COALESCE(MAX(window_s), 0) FROM destinations"))
            history_cutoff = min(cutoff, ts(now) - longest)
            decisions = await conn.execute("DELETE FROM decisions WHERE at < $1", cutoff)
            outbox = await conn.execute(
                f"DELETE FROM outbox WHERE state IN {FINISHED} AND updated_at < $1", cutoff)
            messages = await conn.execute("DELETE FROM messages WHERE sent_at < $1",
                                          history_cutoff)
            changes = await conn.execute(
                "DELETE FROM changes WHERE detected_at < $1 AND NOT EXISTS"
                " (SELECT 1 FROM outbox o WHERE o.change_pk = changes.id)", cutoff)
            return PurgeResult(decisions=status_count(decisions),
                               outbox=status_count(outbox),
                               messages=status_count(messages),
                               changes=status_count(changes))

    async def backup(self, path: str) -> None:
        """Refused: PostgreSQL is backed up with pg_dump (consistent, online, restorable)."""
        raise StoreError("PostgreSQL is backed up with pg_dump, not alertbot: "
                         + pg_dump_command(self.location, path or "alertbot.dump"))

    async def stats(self) -> DatabaseStats:
        """Size of the schema's tables, schema version, rows per table and outbox depth."""
        async with self._read() as conn:
            names = [str(r[0]) for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                " ORDER BY table_name")]
            tables: dict[str, int] = {}
            for name in names:
                # Names come from the catalog, quoted as identifiers.
                tables[name] = int(await conn.fetchval(f'SELECT COUNT(*) FROM "{name}"'))
            size = int(await conn.fetchval(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
        return DatabaseStats(
            location=self.location,
            schema_version=await self.schema_version(),
            size_bytes=size,
            wal_bytes=0,
            tables=tables,
            outbox=await self.outbox_stats(),
        )

    async def table_columns(self, table: str) -> list[str]:
        """A table's columns, in order (for `alertbot db copy`)."""
        rows = await self._fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))
        return [str(r[0]) for r in rows]

    async def export_rows(self, table: str, columns: Sequence[str],
                          batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        """A table's rows in batches from one snapshot (for `alertbot db copy`)."""
        # Identifiers come from table_columns and the fixed table list, quoted.
        listed = ", ".join(f'"{c}"' for c in columns)
        order = "id" if "id" in columns else listed
        async with self._read() as conn, conn.transaction(isolation="repeatable_read",
                                                          readonly=True):
            cursor = await conn.cursor(f'SELECT {listed} FROM "{table}" ORDER BY {order}')
            while rows := await cursor.fetch(batch):
                yield [tuple(r) for r in rows]

    async def import_rows(self, table: str, columns: Sequence[str],
                          rows: Sequence[tuple[Any, ...]]) -> None:
        """COPY rows in as they are, ids included (for `alertbot db copy`)."""
        async with self._tx() as conn:
            schema = await conn.fetchval("SELECT current_schema()")
            await conn.copy_records_to_table(table, records=rows, columns=list(columns),
                                             schema_name=schema)

    async def reset_sequences(self) -> None:
        """Move every identity sequence past the largest stored id (after a copy)."""
        async with self._tx() as conn:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND column_name = 'id' AND is_identity = 'YES'")
            for (table,) in tables:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                    f' COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)')

