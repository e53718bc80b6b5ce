"""The Updates role on PostgreSQL: chat-platform update ids already received."""

from __future__ import annotations

from datetime import datetime

from alertbot.store.postgres.connection import PostgresConnection, status_count
from alertbot.store.sqlite.rows import ts


class PostgresUpdates(PostgresConnection):
    """First-claim-wins records of received update ids (primary key on platform and id)."""

    async def claim_update(self, platform: str, update_id: int, now: datetime) -> bool:
        """INSERT … ON CONFLICT DO NOTHING: a row inserted means this caller was first."""
        async with self._tx() as conn:
            status = await conn.execute(
                "INSERT INTO received_updates (platform, update_id, received_at)"
                " VALUES ($1, $2, $3) ON CONFLICT (platform, update_id) DO NOTHING",
                platform, update_id, ts(now))
        return status_count(status) == 1

    async def purge_updates(self, before: datetime) -> int:
        """Delete ids received before `before`."""
        async with self._tx() as conn:
            status = await conn.execute("DELETE FROM received_updates WHERE received_at < $1",
                                        ts(before))
        return status_count(status)
