"""The Updates role on SQLite: chat-platform update ids already received."""

from __future__ import annotations

from datetime import datetime

from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.rows import ts


class SqliteUpdates(SqliteConnection):
    """First-claim-wins records of received update ids (primary key on platform and id)."""

    async def claim_update(self, platform: str, update_id: int, now: datetime) -> bool:
        """INSERT … ON CONFLICT DO NOTHING: a row inserted means this caller was first."""
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO received_updates (platform, update_id, received_at)"
                " VALUES (?, ?, ?) ON CONFLICT (platform, update_id) DO NOTHING",
                (platform, update_id, ts(now)),
            )
            inserted = cursor.rowcount
            await cursor.close()
        return inserted == 1

    async def purge_updates(self, before: datetime) -> int:
        """Delete ids received before `before`."""
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM received_updates WHERE received_at < ?",
                                      (ts(before),))
            deleted = cursor.rowcount
            await cursor.close()
        return max(deleted, 0)
