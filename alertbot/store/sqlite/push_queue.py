"""The PushQueue role on SQLite: pushed readings waiting for the leader's poller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alertbot.domain.models import Reading, Token
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import encode_pushed, ts


class SqlitePushQueue(SharedReads, SqliteConnection):
    """One row per accepted push request; pending until `finish_pushed` stamps it."""

    async def enqueue_pushed(self, readings: Sequence[Reading], tokens: Sequence[Token],
                             received_at: datetime) -> int:
        """Insert the batch, pending."""
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO pushed_readings (received_at, payload) VALUES (?, ?)",
                (ts(received_at), encode_pushed(readings, tokens)))
            batch_id = cursor.lastrowid
            await cursor.close()
        assert batch_id is not None
        return batch_id

    async def finish_pushed(self, batch_ids: Sequence[int], now: datetime) -> int:
        """Stamp the pending ones among `batch_ids` processed."""
        if not batch_ids:
            return 0
        marks = ", ".join("?" * len(batch_ids))
        async with self._tx() as db:
            cursor = await db.execute(
                f"UPDATE pushed_readings SET processed_at = ? WHERE id IN ({marks})"
                " AND processed_at IS NULL", (ts(now), *batch_ids))
            finished = cursor.rowcount
            await cursor.close()
        return max(finished, 0)

    async def purge_pushed(self, before: datetime) -> int:
        """Delete processed batches received before `before`."""
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM pushed_readings WHERE processed_at IS NOT NULL AND received_at < ?",
                (ts(before),))
            deleted = cursor.rowcount
            await cursor.close()
        return max(deleted, 0)
