"""The Audit role on PostgreSQL: delivery decisions and the audit log (both append-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from alertbot.domain.models import Destination, Reason
from alertbot.ports.store import AuditRecord, DecisionRecord
from alertbot.store.postgres.connection import PostgresConnection, pg
from alertbot.store.sqlite.rows import CHANGE_COLUMNS, change_from_row, dest_params, dt, ts


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


class PostgresAudit(PostgresConnection):
    """Decisions for /why and who changed which settings."""

    async def recent_decisions(self, destination: Destination,
                               limit: int) -> list[DecisionRecord]:
        """Newest decisions of a destination."""
        rows = await self._fetchall(
            f"SELECT d.at, d.reason, d.detail, d.change_pk, {CHANGE_COLUMNS} FROM decisions d"
            " LEFT JOIN changes c ON c.id = d.change_pk"
            " WHERE d.platform = ? AND d.chat_id = ? AND d.thread_id = ?"
            " ORDER BY d.at DESC, d.id DESC LIMIT ?",
            (*dest_params(destination), limit),
        )
        return [
            DecisionRecord(dt(r[0]), r[1], change_from_row(r, 5) if r[4] is not None else None,
                           r[2])
            for r in rows
        ]

    async def add_audit(self, destination: Destination | None, action: str, detail: str,
                        now: datetime, actor: str = "") -> None:
        """Append an audit entry."""
        async with self._tx() as conn:
            await write_audit(conn, destination, action, detail, now, actor)

    async def recent_audit(self, limit: int) -> list[AuditRecord]:
        """Newest audit entries."""
        rows = await self._fetchall(
            "SELECT at, platform, chat_id, thread_id, action, detail, actor FROM audit"
            " ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        return [
            AuditRecord(dt(r[0]), Destination(r[1], r[2], r[3]) if r[1] else None, r[4], r[5],
                        r[6])
            for r in rows
        ]
