"""`alertbot db backup PATH` and `alertbot db stats`: maintenance on the store alone.

These open only the database (migrations apply, as at every start), never the source or the
platforms, so they are safe to run next to a running bot.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from alertbot.config import Settings
from alertbot.ports.store import DatabaseStats, OutboxState, StoreError
from alertbot.store.sqlite import SqliteStore

EXIT_OK = 0
EXIT_FAILURE = 1
STATES = tuple(OutboxState)


async def backup(settings: Settings, path: str, out: TextIO = sys.stdout) -> int:
    """Write a consistent copy of the database to `path`."""
    store = SqliteStore.from_url(settings.database_url)
    await store.open()
    try:
        try:
            await store.backup(path)
        except StoreError as exc:
            print(f"alertbot: backup failed: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        stats = await store.stats()
    finally:
        await store.close()
    print(f"backup written to {path} (schema version {stats.schema_version}, "
          f"{_size(stats.size_bytes)})", file=out)
    return EXIT_OK


async def stats(settings: Settings, out: TextIO = sys.stdout,
                now: datetime | None = None) -> int:
    """Print sizes, rows per table, outbox by state and the schema version."""
    store = SqliteStore.from_url(settings.database_url)
    await store.open()
    try:
        found = await store.stats()
    finally:
        await store.close()
    for line in format_stats(found, now or datetime.now(UTC)):
        print(line, file=out)
    return EXIT_OK


def format_stats(found: DatabaseStats, now: datetime) -> list[str]:
    """Readable lines of database statistics."""
    lines = [f"database: {found.location}",
             f"schema version: {found.schema_version}",
             f"size: {_size(found.size_bytes)} (+ {_size(found.wal_bytes)} write-ahead log)",
             "rows:"]
    width = max((len(name) for name in found.tables), default=0)
    lines += [f"  {name:<{width}}  {count:>10,}" for name, count in found.tables.items()]
    by_state = dict(found.outbox.by_state)
    states = [*STATES, *sorted(s for s in by_state if s not in STATES)]
    lines.append("outbox: " + ", ".join(f"{s} {by_state.get(s, 0):,}" for s in states))
    oldest = found.outbox.oldest_pending
    if oldest is not None:
        age = max(0, int((now - oldest).total_seconds()))
        lines.append(f"oldest undelivered: {oldest:%Y-%m-%d %H:%M:%S} UTC ({age}s ago)")
    else:
        lines.append("oldest undelivered: none")
    return lines


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
