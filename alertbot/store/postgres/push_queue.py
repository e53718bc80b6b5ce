"""The PushQueue role on PostgreSQL: pushed readings waiting for the leader's poller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alertbot.domain.models import Reading, Token
from alertbot.store.postgres.connection import PostgresConnection, status_count
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import encode_pushed, ts


class PostgresPushQueue(SharedReads, PostgresConnection):
    """One row per accepted push request, from any replica; pending until finished."""

    async def enqueue_pushed(self, readings: Sequence[Reading], tokens: Sequence[Token],
                             received_at: datetime) -> int:
        """Insert the batch, pending."""
        async with self._tx() as conn:
            batch_id = await conn.fetchval(
                "INSERT INTO pushed_readings (received_at, payload) VALUES ($1, $2)"
                " RETURNING id", ts(received_at), encode_pushed(readings, tokens))
        return int(batch_id)

    async def finish_pushed(self, batch_ids: Sequence[int], now: datetime) -> int:
        """Stamp the pending ones among `batch_ids` processed."""
        if not batch_ids:
            return 0
        async with self._tx() as conn:
            status = await conn.execute(
                "UPDATE pushed_readings SET processed_at = $1 WHERE id = ANY($2::bigint[])"
                " AND processed_at IS NULL", ts(now), list(batch_ids))
        return status_count(status)

    async def purge_pushed(self, before: datetime) -> int:
        """Delete processed batches received before `before`."""
        async with self._tx() as conn:
            status = await conn.execute(
                "DELETE FROM pushed_readings WHERE processed_at IS NOT NULL AND received_at < $1",
                ts(before))
        return status_count(status)
