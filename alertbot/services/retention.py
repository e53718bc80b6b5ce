"""Retention: deletes history older than ALERTBOT_RETENTION_DAYS, as a background job.

Received update ids are bookkeeping, not history: they are forgotten after UPDATE_IDS_KEPT
whatever ALERTBOT_RETENTION_DAYS says, since Telegram keeps an undelivered update for 24 hours
at most and so never redelivers one that old. Processed push batches likewise go after
PUSHES_KEPT: the readings and changes they led to are stored on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.store import PurgeResult, RetentionStore

log = logging.getLogger(__name__)

RETENTION_EVERY = 3600.0
RETENTION_FIRST_AFTER = 60.0
UPDATE_IDS_KEPT = timedelta(days=2)
PUSHES_KEPT = timedelta(days=1)
"""Processed push batches are kept this long (pending ones until processed)."""


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Retention:
    """Periodically deletes history older than ALERTBOT_RETENTION_DAYS (0 = never)."""

    def __init__(self, store: RetentionStore, clock: Clock, days: Callable[[], int], *,
                 every: float = RETENTION_EVERY,
                 first_after: float = RETENTION_FIRST_AFTER) -> None:
        self._store = store
        self._clock = clock
        self._days = days
        self._every = every
        self._first_after = first_after

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: purge soon after the start, then every `every` seconds."""
        await _wait(stop, self._first_after)
        while not stop.is_set():
            try:
                await self.purge_once()
            except Exception:  # retention must never stop the bot
                reraise_if_cancelling()
                log.exception("retention pass failed")
            await _wait(stop, self._every)

    async def purge_once(self) -> PurgeResult:
        """One pass; logs what it removed."""
        now = self._clock.now()
        forgotten = await self._store.purge_updates(now - UPDATE_IDS_KEPT)
        if forgotten:
            log.debug("retention: forgot %d received update ids", forgotten)
        # Processed pushes are only a receipt: their readings and changes are stored.
        dropped = await self._store.purge_pushed(now - PUSHES_KEPT)
        if dropped:
            log.debug("retention: removed %d processed push batches", dropped)
        days = self._days()
        if days <= 0:
            return PurgeResult()
        result = await self._store.purge(now - timedelta(days=days), now)
        if result.total:
            log.info("retention: removed %d rows older than %d days (decisions %d, outbox %d, "
                     "messages %d, changes %d)", result.total, days, result.decisions,
                     result.outbox, result.messages, result.changes)
        return result
