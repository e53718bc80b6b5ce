"""Leadership among replicas on PostgreSQL: a lease row renewed on a dedicated connection.

One row, `leadership(name, epoch, holder, acquired_at, expires_at)`, judged on the database
clock. A replica takes it over only when the lease has run out, in one statement that also
increments the epoch (so two contenders can never both win, and every takeover has a new
epoch). The leader renews every `renew_every` seconds; it counts itself lost as soon as it
could not renew before its own lease ends, measured on its monotonic clock from the start of
the last successful renew request (the database set the expiry later than that start, so the
leader always gives up no later than a standby may take over). docs/replicas.md argues the
choice against an advisory lock. Heartbeats of every replica go into `replicas`.

Every statement runs in a transaction of its own whose `lock_timeout` and `statement_timeout`
end before the caller stops waiting (SERVER_SHARE of the time left): a takeover or renewal
blocked behind a writer holding the row (an outbox write checks the epoch FOR SHARE) is ended
by the server, and one the client abandoned anyway can never commit later (its transaction
is never committed), so an attempt that failed cannot bump the epoch behind everyone's back.

This module is self-contained: it opens its own connection (never one of the store's, whose
pool may be busy or wait on locks) and creates its two tables when they are missing. A
clean stop releases the lease at once so a standby takes over without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, cast

import asyncpg

from alertbot.ports.leadership import (
    LeaderRecord,
    LeadershipStatus,
    ReplicaId,
    ReplicaRecord,
    Role,
)
from alertbot.ports.store import StoreError

log = logging.getLogger(__name__)

LEADERSHIP = "alertbot"
LEASE = 6.0
"""Seconds a lease lasts after each renewal (database clock)."""
RENEW_EVERY = 2.0
"""Seconds between renewals by the leader, and between attempts by each standby."""
FORGET_AFTER = timedelta(days=1)
"""Replicas silent this long are dropped from `replicas`."""

SCHEMA_MIGRATION = "0005_leadership.sql"
"""The migration that creates the two tables; run here too (IF NOT EXISTS), so leadership
works on a database the store has not migrated yet."""
SCHEMA_LOCK = 0x616C6572
"""Advisory lock key held while creating the tables."""

_TAKE = """
INSERT INTO leadership AS l (name, epoch, holder, acquired_at, expires_at)
VALUES ($1, 1, $2, clock_timestamp(), clock_timestamp() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE SET epoch = l.epoch + 1, holder = excluded.holder,
    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
WHERE l.expires_at IS NULL OR l.expires_at < clock_timestamp()
RETURNING epoch
"""
_RENEW = """
UPDATE leadership SET expires_at = clock_timestamp() + make_interval(secs => $4)
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at >= clock_timestamp()
RETURNING epoch
"""
_RELEASE = """
UPDATE leadership SET expires_at = clock_timestamp()
WHERE name = $1 AND holder = $2 AND epoch = $3
"""
_HEARTBEAT = """
INSERT INTO replicas (replica_id, started_at, heartbeat_at, role)
VALUES ($1, $2, clock_timestamp(), $3)
ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    role = excluded.role
"""
_FORGET = "DELETE FROM replicas WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1)"

SERVER_SHARE = 0.75
"""Share of a statement's remaining time the server may spend (lock waits included) before it
cancels the statement; the rest is the answer's way back."""

Connect = Callable[[], Awaitable[Any]]
"""Opens a new asyncpg connection."""
# InternalClientError: a connection left mid-statement (a cut-off query) refuses the next one.
_UNAVAILABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                OSError, TimeoutError)
_GAVE_UP = (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError)
"""The server ended a statement at its lock or statement timeout; the connection is fine."""


class _Unavailable(Exception):
    """The database did not answer in time or the connection broke."""


class PostgresLeadership:
    """Lease-based leadership shared by every replica on one PostgreSQL database."""

    def __init__(self, url: str, *, replica: ReplicaId | None = None, lease: float = LEASE,
                 renew_every: float = RENEW_EVERY, schema: str | None = None,
                 connect: Connect | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not 0 < renew_every < lease:
            raise ValueError("renew_every must be positive and shorter than the lease")
        settings = {"search_path": schema} if schema else None
        self._connect: Connect = connect or (
            lambda: asyncpg.connect(url, timeout=renew_every, server_settings=settings))
        self._replica = replica or ReplicaId.this_process()
        self._holder = str(self._replica)
        self._lease = lease
        self._every = renew_every
        self._mono = monotonic
        self._conn: Any = None
        self._schema_ready = False
        self._started = datetime.now(UTC)
        self._epoch: int | None = None
        self._deadline = 0.0
        """Monotonic time at which the held lease may have run out."""
        self._released = asyncio.Event()
        self._failing = False
        self._lock = asyncio.Lock()
        """One statement at a time on the dedicated connection (renewal, status, release)."""

    def __repr__(self) -> str:
        return f"PostgresLeadership({self._replica})"

    @property
    def replica(self) -> ReplicaId:
        """This process."""
        return self._replica

    @property
    def epoch(self) -> int | None:
        """The epoch held now; None while standing by."""
        return self._epoch

    def valid(self) -> bool:
        """Whether the lease certainly has not run out yet."""
        return self._epoch is not None and self._mono() < self._deadline

    async def acquire(self, stop: asyncio.Event) -> int | None:
        """Try to take the lease every `renew_every` seconds until it is ours or `stop`."""
        while not stop.is_set():
            started = self._mono()
            epoch: int | None = None
            with contextlib.suppress(_Unavailable):
                epoch = await self._call(self._take, self._every)
            if epoch is not None:
                self._epoch = epoch
                self._deadline = started + self._lease
                self._released.clear()
                with contextlib.suppress(_Unavailable):
                    await self._call(lambda c: self._beat(c, Role.LEADER), self._every)
                return epoch
            with contextlib.suppress(_Unavailable):
                await self._call(lambda c: self._beat(c, Role.STANDBY), self._every)
            await _wait(stop, max(0.0, started + self._every - self._mono()))
        return None

    async def hold(self, stop: asyncio.Event) -> None:
        """Renew until the lease is lost (returns) or `stop` (releases, returns)."""
        next_renew = self._mono() + self._every
        while self._epoch is not None:
            now = self._mono()
            await _wait_any((stop, self._released),
                            max(0.0, min(next_renew, self._deadline) - now))
            if stop.is_set():
                await self.release()
                return
            if not self._leading():
                return
            started = self._mono()
            if started >= self._deadline:
                self._lost("the lease ran out before it could be renewed")
                return
            held = self._epoch

            async def renew(conn: Any, epoch: int = held) -> bool:
                return await self._renew(conn, epoch)

            try:
                renewed = await self._call(renew, self._deadline - started)
            except _Unavailable:
                next_renew = self._mono() + min(0.5, self._every / 4)
                continue
            if not self._leading():
                return
            if not renewed:
                self._lost("another replica holds the lease")
                return
            self._deadline = started + self._lease
            next_renew = started + self._every
            with contextlib.suppress(_Unavailable):
                await self._call(lambda c: self._beat(c, Role.LEADER),
                                 max(0.1, self._deadline - self._mono()))

    async def release(self) -> None:
        """Give the lease up now, so a standby takes over at its next attempt."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        self._released.set()
        try:
            await self._call(lambda c: c.execute(_RELEASE, LEADERSHIP, self._holder, epoch),
                             self._every)
            await self._call(lambda c: self._beat(c, Role.STANDBY), self._every)
        except _Unavailable:
            log.info("leadership: lease not released (the database is unavailable); it "
                     "runs out within %.0fs", self._lease)

    async def status(self) -> LeadershipStatus:
        """The lease row, the heartbeats and the database's time."""
        async def read(conn: Any) -> LeadershipStatus:
            row = await conn.fetchrow(
                "SELECT holder, epoch, acquired_at, expires_at FROM leadership WHERE name = $1",
                LEADERSHIP)
            rows = await conn.fetch(
                "SELECT replica_id, started_at, heartbeat_at, role FROM replicas"
                " ORDER BY role = 'leader' DESC, replica_id")
            now = await conn.fetchval("SELECT clock_timestamp()")
            leader = (LeaderRecord(ReplicaId.parse(row[0]), int(row[1]), row[2], row[3])
                      if row else None)
            return LeadershipStatus(leader, [
                ReplicaRecord(ReplicaId.parse(r[0]), r[1], r[2], Role(r[3])) for r in rows],
                now)
        try:
            return cast(LeadershipStatus, await self._call(read, max(self._every, 5.0)))
        except _Unavailable as exc:
            raise StoreError(f"leadership status unavailable: {exc}") from exc

    async def close(self) -> None:
        """Release the lease and close the connection (idempotent)."""
        await self.release()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    # ------------------------------------------------------------------ statements

    async def _take(self, conn: Any) -> int | None:
        epoch = await conn.fetchval(_TAKE, LEADERSHIP, self._holder, self._lease)
        return None if epoch is None else int(epoch)

    async def _renew(self, conn: Any, epoch: int) -> bool:
        return await conn.fetchval(_RENEW, LEADERSHIP, self._holder, epoch,
                                   self._lease) is not None

    async def _beat(self, conn: Any, role: Role) -> None:
        await conn.execute(_HEARTBEAT, self._holder, self._started, role.value)
        await conn.execute(_FORGET, FORGET_AFTER.total_seconds())

    def _leading(self) -> bool:
        # A method, not the attribute: `release` may clear it while a statement awaits.
        return self._epoch is not None

    def _lost(self, why: str) -> None:
        self._epoch = None
        log.warning("leadership lost (%s)", why)

    async def _call(self, statement: Callable[[Any], Awaitable[Any]], within: float) -> Any:
        """Run `statement` on the dedicated connection (reconnecting) within `within` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(within, 0.001)
        try:
            async with asyncio.timeout_at(deadline), self._lock:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                if not self._schema_ready:
                    # Serialised: concurrent CREATE TABLE IF NOT EXISTS may still collide.
                    async with self._conn.transaction():
                        await self._conn.execute("SELECT pg_advisory_xact_lock($1)",
                                                 SCHEMA_LOCK)
                        await self._conn.execute(
                            resources.files("alertbot.store.postgres").joinpath(
                                "migrations", SCHEMA_MIGRATION).read_text(encoding="utf-8"))
                    self._schema_ready = True
                server_ms = max(1, int((deadline - loop.time()) * SERVER_SHARE * 1000))
                async with self._conn.transaction():
                    await self._conn.execute(f"SET LOCAL lock_timeout = {server_ms};"
                                             f" SET LOCAL statement_timeout = {server_ms}")
                    result = await statement(self._conn)
        except _GAVE_UP as exc:
            # Blocked (a writer holds the row) or slow: the server gave up in time and rolled
            # back; the connection stays usable and the database is not unavailable.
            log.info("leadership: statement ended by the server after waiting: %s", exc)
            raise _Unavailable(str(exc) or type(exc).__name__) from exc
        except _UNAVAILABLE as exc:
            self._drop()
            if not self._failing:
                self._failing = True
                log.warning("leadership: database unavailable: %s",
                            str(exc) or type(exc).__name__)
            raise _Unavailable(str(exc) or type(exc).__name__) from exc
        if self._failing:
            self._failing = False
            log.info("leadership: database reachable again")
        return result

    def _drop(self) -> None:
        """Forget a connection that failed: a query cut off mid-way leaves it unusable."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
