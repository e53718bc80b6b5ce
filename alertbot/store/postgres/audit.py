"""The Audit role on PostgreSQL: delivery decisions and the audit log (both append-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from alertbot.domain.models import Destination, Reason
from alertbot.store.postgres.connection import PostgresConnection, pg
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import dest_params, ts


async def write_decisions(conn: asyncpg.Connection, destination: Destination,
                          rows: Sequence[tuple[int, int]], reason: Reason, detail: str,
                          now: datetime) -> None:
    """Record one decision per (outbox id, change pk) inside the caller's transaction."""
    if not rows:
        return
    await conn.executemany(
        pg("INSERT INTO decisions (at, platform, chat_id, thread_id, outbox_id, change_pk,"
           " reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        [(ts(now), *dest_params(destination), row_id, change_pk, reason.value, detail)
         for row_id, change_pk in rows],
    )


async def write_audit(conn: asyncpg.Connection, destination: Destination | None, action: str,
                      detail: str, now: datetime, actor: str) -> None:
    """Append an audit entry inside the caller's transaction."""
    platform, chat_id, thread_id = dest_params(destination) if destination else ("", "", "")
    await conn.execute(
        pg("INSERT INTO audit (at, platform, chat_id, thread_id, action, detail, actor)"
           " VALUES (?, ?, ?, ?, ?, ?, ?)"),
        ts(now), platform, chat_id, thread_id, action, detail, actor,
    )


class PostgresAudit(SharedReads, PostgresConnection):
    """Decisions for /why and who changed which settings (reads in SharedReads)."""

    async def add_audit(self, destination: Destination | None, action: str, detail: str,
                        now: datetime, actor: str = "") -> None:
        """Append an audit entry."""
        async with self._tx() as conn:
            await write_audit(conn, destination, action, detail, now, actor)
