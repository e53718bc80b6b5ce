"""`alertbot db backup PATH`, `db stats` and `status`: maintenance on the store alone.

These open only the database (migrations apply, as at every start), never the source or the
platforms, so they are safe to run next to a running bot.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO

from alertbot.config import Settings
from alertbot.ports.leadership import LeadershipStatus, Role
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


SILENT_AFTER = timedelta(seconds=30)
"""A replica whose last heartbeat is older than this is shown as silent (probably gone)."""


async def status(settings: Settings, out: TextIO | None = None) -> int:
    """Print which replica leads, since when, and every replica's last heartbeat.

    Exit status 0 when a replica leads now, 1 when none does.
    """
    from alertbot.bootstrap.build import is_postgres, leadership_for
    from alertbot.ports.clock import SystemClock

    url = settings.database_url
    if is_postgres(url):
        # The lease lives on its own connection: no store needed to read it.
        from alertbot.store.postgres.leadership import PostgresLeadership

        postgres = PostgresLeadership(url)
        try:
            found = await postgres.status()
        finally:
            await postgres.close()
    else:
        store = SqliteStore.from_url(url)
        await store.open()
        try:
            leadership = leadership_for(url, store, SystemClock())
            try:
                found = await leadership.status()
            finally:
                await leadership.close()
        finally:
            await store.close()
    lines, leading = format_status(found)
    for line in lines:
        print(line, file=out or sys.stdout)
    return EXIT_OK if leading else EXIT_FAILURE


def format_status(found: LeadershipStatus) -> tuple[list[str], bool]:
    """Readable lines of the leadership status, and whether a replica leads now."""
    now = found.now
    leader = found.leader
    by_id = {r.replica: r for r in found.replicas}
    leading = False
    if leader is None:
        lines = ["leader: none (no `alertbot run` has started on this database yet)"]
    else:
        record = by_id.get(leader.holder)
        lease_ok = leader.expires_at is None or leader.expires_at > now
        alive = (record is not None and record.role is Role.LEADER
                 and now - record.heartbeat_at <= SILENT_AFTER)
        leading = lease_ok and alive
        since = f"since {_at(leader.acquired_at)} ({_ago(now - leader.acquired_at)})"
        who = (f"{leader.holder.host} pid {leader.holder.pid} (epoch {leader.epoch}) {since}")
        if leading:
            lease = ("no lease (SQLite: one process)" if leader.expires_at is None
                     else f"lease until {_at(leader.expires_at)}")
            lines = [f"leader: {who}; {lease}"]
        else:
            lines = [f"leader: none now; the last was {who}"]
    lines.append(f"replicas: {len(found.replicas)}")
    for record in found.replicas:
        age = now - record.heartbeat_at
        silent = " (silent: probably stopped)" if age > SILENT_AFTER else ""
        lines.append(f"  {record.replica.host} pid {record.replica.pid}: {record.role.value},"
                     f" started {_at(record.started_at)}, last heartbeat {_ago(age)}{silent}")
    return lines, leading


def _at(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"
