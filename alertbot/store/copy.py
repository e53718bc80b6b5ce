"""`alertbot db copy`: every row of one database into another, either backend to either.

Both schemas have the same tables and columns (see the PostgreSQL migrations), so a copy is a
plain row copy, table by table in foreign-key order, row ids included; PostgreSQL's identity
sequences are then moved past the copied ids. The destination must be empty: merging two
bots' histories would mix outbox rows and ids, so there is no option to copy into data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from alertbot.ports.store import Store, StoreError

TABLES = ("tokens", "readings", "changes", "destinations", "subscriptions", "outbox",
          "messages", "decisions", "audit", "meta", "received_updates", "token_mutes",
          "scheduled_digests", "pushed_readings")
"""Every table with data, parents before the tables that refer to them."""
BATCH = 5000


class Copyable(Store, Protocol):
    """A store that can list, export and import raw table rows."""

    @property
    def location(self) -> str:
        """Where the database is, without secrets."""
        ...

    async def schema_version(self) -> int:
        """Highest applied migration."""
        ...

    async def table_columns(self, table: str) -> list[str]:
        """A table's columns, in order."""
        ...

    def export_rows(self, table: str, columns: Sequence[str],
                    batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        """A table's rows in batches, in insertion (id) order."""
        ...

    async def import_rows(self, table: str, columns: Sequence[str],
                          rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows as they are (ids included), in one transaction."""
        ...

    async def reset_sequences(self) -> None:
        """Make the next generated ids follow the largest stored ones."""
        ...


@dataclass(frozen=True, slots=True)
class CopyResult:
    """Rows copied, by table."""

    tables: dict[str, int]


async def copy_rows(source: Copyable, target: Copyable,
                    progress: Callable[[str, int], None] | None = None) -> CopyResult:
    """Copy every table of `source` into the empty `target` (both open and migrated)."""
    have, want = await source.schema_version(), await target.schema_version()
    if have != want:
        raise StoreError(
            f"schema versions differ: {source.location} is at {have}, {target.location} at "
            f"{want}; upgrade alertbot so both backends know the same migrations")
    found = (await target.stats()).tables
    busy = {t: found.get(t, 0) for t in TABLES if found.get(t, 0)}
    if busy:
        listed = ", ".join(f"{t} {n:,}" for t, n in busy.items())
        raise StoreError(f"{target.location} is not empty ({listed} rows); copy into an "
                         "empty database")
    copied: dict[str, int] = {}
    for table in TABLES:
        columns = await source.table_columns(table)
        missing = set(columns) - set(await target.table_columns(table))
        if missing:
            raise StoreError(f"{target.location}: table {table} lacks columns "
                             f"{', '.join(sorted(missing))}")
        count = 0
        async for rows in source.export_rows(table, columns, BATCH):
            await target.import_rows(table, columns, rows)
            count += len(rows)
        copied[table] = count
        if progress is not None:
            progress(table, count)
    await target.reset_sequences()
    return CopyResult(copied)
