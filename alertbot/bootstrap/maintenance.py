"""`alertbot db backup|stats|migrate|copy` and `status`: maintenance on the store alone.

These open only the database (migrations apply as at every start, unless ALERTBOT_MIGRATE=off;
`db migrate` always applies them), never the source or the platforms, so they are safe to run
next to a running bot (except `db copy`, which wants the bot stopped).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO

from alertbot.config import Settings
from alertbot.ports.leadership import LeadershipStatus, Role
from alertbot.ports.store import DatabaseStats, OutboxState, StoreError
from alertbot.store.copy import Copyable, copy_rows
from alertbot.store.factory import store_from_url
from alertbot.store.urls import is_postgres, redact_url

EXIT_OK = 0
EXIT_FAILURE = 1
STATES = tuple(OutboxState)


def open_settings_store(settings: Settings, *, migrate: bool | None = None) -> Copyable:
    """The configured store, not yet open (migrating on open as ALERTBOT_MIGRATE says)."""
    return store_from_url(settings.database_url,
                          migrate=settings.migrate == "auto" if migrate is None else migrate)


async def backup(settings: Settings, path: str, out: TextIO | None = None) -> int:
    """Write a consistent copy of the database to `path` (SQLite; PostgreSQL: pg_dump)."""
    if is_postgres(settings.database_url):
        from alertbot.store.postgres.maintenance import pg_dump_command

        # Refused before connecting: pg_dump is the tool, whether or not the server is up.
        print("alertbot: backup: PostgreSQL is backed up with pg_dump, not alertbot: "
              + pg_dump_command(redact_url(settings.database_url), path), file=sys.stderr)
        return EXIT_FAILURE
    store = open_settings_store(settings)
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
          f"{_size(stats.size_bytes)})", file=out or sys.stdout)
    return EXIT_OK


async def stats(settings: Settings, out: TextIO | None = None,
                now: datetime | None = None) -> int:
    """Print sizes, rows per table, outbox by state and the schema version."""
    store = open_settings_store(settings)
    await store.open()
    try:
        found = await store.stats()
    finally:
        await store.close()
    for line in format_stats(found, now or datetime.now(UTC)):
        print(line, file=out or sys.stdout)
    return EXIT_OK


async def migrate(settings: Settings, out: TextIO | None = None) -> int:
    """Apply pending migrations (whatever ALERTBOT_MIGRATE says) and print the version."""
    store = open_settings_store(settings, migrate=True)
    await store.open()
    try:
        version = (await store.stats()).schema_version
    finally:
        await store.close()
    print(f"database {redact_url(settings.database_url)} is at schema version {version}",
          file=out or sys.stdout)
    return EXIT_OK


async def copy(source_url: str, target_url: str, out: TextIO | None = None) -> int:
    """Copy every row of one database into another, empty one (either backend)."""
    if source_url == target_url:
        print("alertbot: db copy: source and destination are the same database",
              file=sys.stderr)
        return EXIT_FAILURE
    source = store_from_url(source_url)
    target = store_from_url(target_url)
    await source.open()
    try:
        await target.open()
        try:
            result = await copy_rows(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
    total = sum(result.tables.values())
    print(f"copied {total:,} rows from {redact_url(source_url)} to {redact_url(target_url)}: "
          + ", ".join(f"{t} {n:,}" for t, n in result.tables.items()), file=out or sys.stdout)
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
    from alertbot.bootstrap.build import leadership_for
    from alertbot.ports.clock import SystemClock

    url = settings.database_url
    if is_postgres(url):
        # The lease lives on its own connection: no store needed to read it.
        from alertbot.store.postgres.connection import PostgresUrl
        from alertbot.store.postgres.leadership import PostgresLeadership

        postgres = PostgresLeadership(PostgresUrl(url).dsn)
        try:
            found = await postgres.status()
        finally:
            await postgres.close()
    else:
        store = store_from_url(url)
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
