"""Leadership on SQLite: the one process that may run the bot always leads.

The run lock (instance.py) already keeps a second `alertbot run` off the file, so there is
nothing to elect: `acquire` begins a new epoch at once and `hold` only writes heartbeats
until the stop (or a `release` after a fenced write).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from alertbot.ports.clock import Clock
from alertbot.ports.leadership import LeadershipStatus, ReplicaId, ReplicaRecord, Role
from alertbot.ports.store import Fencing, StoreError

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 10.0
"""Seconds between heartbeats (only `alertbot status` reads them on SQLite)."""
FORGET_AFTER = timedelta(days=1)
"""Replicas silent for this long are dropped from the heartbeat table."""


class SqliteLeadership:
    """Always the leader; a new epoch per acquisition, stored beside the data."""

    def __init__(self, store: Fencing, clock: Clock, *, replica: ReplicaId | None = None,
                 heartbeat_every: float = HEARTBEAT_EVERY) -> None:
        self._store = store
        self._clock = clock
        self._replica = replica or ReplicaId.this_process()
        self._started = clock.now()
        self._every = heartbeat_every
        self._epoch: int | None = None
        self._released = asyncio.Event()

    def __repr__(self) -> str:
        return f"SqliteLeadership({self._replica})"

    @property
    def replica(self) -> ReplicaId:
        """This process."""
        return self._replica

    @property
    def epoch(self) -> int | None:
        """The epoch held now; None before `acquire` or after `release`."""
        return self._epoch

    def valid(self) -> bool:
        """Leading needs no lease here: valid while held."""
        return self._epoch is not None

    async def acquire(self, stop: asyncio.Event) -> int | None:
        """Begin a new epoch, retrying while the database is unavailable."""
        delay = 1.0
        while not stop.is_set():
            try:
                epoch = await self._store.begin_epoch(str(self._replica), self._clock.now())
            except StoreError as exc:
                log.warning("cannot begin a leadership epoch yet: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            self._epoch = epoch
            self._released.clear()
            await self._beat(Role.LEADER)
            return epoch
        return None

    async def hold(self, stop: asyncio.Event) -> None:
        """Heartbeat until `stop` or `release`."""
        while self._epoch is not None and not stop.is_set():
            waiters = {asyncio.create_task(stop.wait()),
                       asyncio.create_task(self._released.wait())}
            try:
                await asyncio.wait(waiters, timeout=self._every,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if self._epoch is not None:
                await self._beat(Role.LEADER)
        if stop.is_set():
            await self.release()

    async def release(self) -> None:
        """Stop leading (the next `acquire` begins a newer epoch)."""
        if self._epoch is None:
            return
        self._epoch = None
        self._released.set()
        await self._beat(Role.STANDBY)

    async def status(self) -> LeadershipStatus:
        """The last epoch's holder and the heartbeats."""
        return LeadershipStatus(await self._store.leader(), await self._store.replicas(),
                                self._clock.now())

    async def close(self) -> None:
        """Release (idempotent); the store is closed by its owner."""
        await self.release()

    async def _beat(self, role: Role) -> None:
        now = self._clock.now()
        try:
            await self._store.heartbeat(ReplicaRecord(self._replica, self._started, now, role),
                                        now - FORGET_AFTER)
        except StoreError as exc:  # only `alertbot status` reads heartbeats
            log.debug("heartbeat not recorded: %s", exc)
