"""Read-only store methods whose SQL is the same on every backend.

Both connection classes offer `_fetchall(sql, params)` with `?` placeholders (PostgreSQL
numbers them), so a read that needs no dialect lives here once and both stores mix it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from alertbot.domain.models import Change, Destination
from alertbot.ports.store import AuditRecord, DecisionRecord, PushedBatch
from alertbot.store.sqlite.rows import (
    CHANGE_COLUMNS,
    change_from_row,
    decode_pushed,
    dest_params,
    dt,
    ts,
)


class SharedReads:
    """Mixin: decisions, the audit log, the changes a message carried, send times, pushed
    batches."""

    if TYPE_CHECKING:
        # Provided by the backend's connection class, which follows this mixin in the MRO.
        async def _fetchall(self, sql: str,
                            params: Sequence[Any] = ()) -> list[Any]: ...

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

    async def message_changes(self, destination: Destination, key: str) -> list[Change]:
        """The changes an outbox message key carried to this destination."""
        rows = await self._fetchall(
            f"SELECT {CHANGE_COLUMNS} FROM outbox o"
            " JOIN changes c ON c.id = o.change_pk"
            " WHERE o.msg_key = ? AND o.platform = ? AND o.chat_id = ? AND o.thread_id = ?"
            " ORDER BY o.id", (key, *dest_params(destination)))
        return [change_from_row(r) for r in rows]

    async def pending_pushed(self, limit: int) -> list[PushedBatch]:
        """Pending batches in id order (ids follow commit order closely, not exactly)."""
        rows = await self._fetchall(
            "SELECT id, received_at, payload FROM pushed_readings WHERE processed_at IS NULL"
            " ORDER BY id LIMIT ?", (limit,))
        return [PushedBatch(row[0], *decode_pushed(row[2]), received_at=dt(row[1]))
                for row in rows]

    async def sent_times(self, destination: Destination, since: datetime) -> list[datetime]:
        """Delivery times of messages to a destination since a time."""
        rows = await self._fetchall(
            "SELECT sent_at FROM messages WHERE platform = ? AND chat_id = ? AND thread_id = ?"
            " AND sent_at > ? ORDER BY sent_at",
            (*dest_params(destination), ts(since)),
        )
        return [dt(r[0]) for r in rows]
