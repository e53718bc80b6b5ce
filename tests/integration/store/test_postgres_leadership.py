"""PostgreSQL leadership against the real local server: election, failover, a paused holder.

Leases are short here (1.5 s, renewed every 0.3 s) so failovers happen within a test; each
test runs in its own schema, dropped afterwards. Orderings are asserted, never durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from alertbot.ports.leadership import ReplicaId, Role
from alertbot.store.postgres.leadership import PostgresLeadership
from tests.pg_support import postgres_url, temporary_schema
from tests.support import eventually

LEASE = 1.5
RENEW = 0.3
WAIT = 20.0
"""Generous bound on waits for an outcome (the machine may be loaded)."""


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A fresh schema on the test server."""
    async with temporary_schema("lead") as name:
        yield name


class Partition:
    """Connections of one replica that a test can cut: kill them and refuse new ones."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.cut = False
        self.pids: list[int] = []

    async def connect(self) -> Any:
        """A new connection unless the partition is on."""
        if self.cut:
            raise OSError("network unreachable (partitioned by the test)")
        conn = await asyncpg.connect(postgres_url(), timeout=2,
                                     server_settings={"search_path": self.schema})
        self.pids.append(conn.get_server_pid())
        return conn

    async def kill_connections(self) -> None:
        """pg_terminate_backend every connection this replica opened."""
        admin = await asyncpg.connect(postgres_url(), timeout=2)
        try:
            for pid in self.pids:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()


def contender(schema: str, name: str, *, connect: Callable[[], Awaitable[Any]] | None = None,
              monotonic: Callable[[], float] = time.monotonic) -> PostgresLeadership:
    """A replica `name:1` on the test schema with short leases."""
    return PostgresLeadership(postgres_url(), replica=ReplicaId(name, 1), lease=LEASE,
                              renew_every=RENEW, schema=schema, connect=connect,
                              monotonic=monotonic)


async def test_pg_leadership_two_contenders_exactly_one_leads(schema: str) -> None:
    a, b = contender(schema, "a"), contender(schema, "b")
    stop = asyncio.Event()
    try:
        tasks = {asyncio.create_task(x.acquire(stop)): x for x in (a, b)}
        done, pending = await asyncio.wait(tasks, timeout=WAIT,
                                           return_when=asyncio.FIRST_COMPLETED)
        (winner_task,) = done
        winner = tasks[winner_task]
        holding = asyncio.create_task(winner.hold(asyncio.Event()))
        assert winner_task.result() == 1
        # The loser keeps trying for several lease lengths without winning.
        await asyncio.wait(pending, timeout=3 * LEASE)
        assert all(not t.done() for t in pending)
        status = await winner.status()
        assert status.leader is not None
        assert (status.leader.holder, status.leader.epoch) == (winner.replica, 1)
        assert status.leader.expires_at is not None and status.leader.expires_at > status.now
        roles = {r.replica: r.role for r in status.replicas}
        loser = b if winner is a else a
        assert roles == {winner.replica: Role.LEADER, loser.replica: Role.STANDBY}
        holding.cancel()
        stop.set()
        await asyncio.wait(pending)
    finally:
        await a.close()
        await b.close()


async def test_pg_leadership_partitioned_leader_loses_then_other_takes_over_next_epoch(
        schema: str) -> None:
    link = Partition(schema)
    a = contender(schema, "a", connect=link.connect)
    b = contender(schema, "b")
    never = asyncio.Event()
    try:
        assert await a.acquire(never) == 1
        holding = asyncio.create_task(a.hold(never))
        waiting = asyncio.create_task(b.acquire(never))
        await asyncio.sleep(2 * LEASE)
        assert not waiting.done() and not holding.done() and a.valid()
        link.cut = True
        await link.kill_connections()
        await asyncio.wait_for(holding, WAIT)
        lost_at = time.monotonic()
        assert a.epoch is None and not a.valid()
        assert await asyncio.wait_for(waiting, WAIT) == 2
        # The old leader gave up before the new one could start.
        assert lost_at <= time.monotonic()
        assert not waiting.cancelled() and b.valid()
        status = await b.status()
        assert status.leader is not None and status.leader.holder == b.replica
    finally:
        await a.close()
        await b.close()


async def test_pg_leadership_connection_killed_but_reachable_keeps_the_lease(
        schema: str) -> None:
    link = Partition(schema)
    a = contender(schema, "a", connect=link.connect)
    b = contender(schema, "b")
    never = asyncio.Event()
    try:
        assert await a.acquire(never) == 1
        holding = asyncio.create_task(a.hold(never))
        waiting = asyncio.create_task(b.acquire(never))
        await link.kill_connections()
        await asyncio.sleep(3 * LEASE)
        assert not holding.done() and a.epoch == 1
        assert not waiting.done()
        assert len(link.pids) >= 2, "the leader reconnected"
        holding.cancel()
        waiting.cancel()
    finally:
        await a.close()
        await b.close()


async def test_pg_leadership_paused_holder_cannot_renew_after_takeover_and_is_told(
        schema: str) -> None:
    frozen = [0.0]
    # The paused process's own clock does not show the pause (the worst case): only the
    # database can tell it that its lease is gone.
    a = contender(schema, "a", monotonic=lambda: frozen[0])
    b = contender(schema, "b")
    never = asyncio.Event()
    try:
        assert await a.acquire(never) == 1
        # a is "paused": it does not renew. b takes over once the lease ran out.
        assert await asyncio.wait_for(b.acquire(never), WAIT) == 2
        assert a.valid(), "a cannot know by itself"
        await asyncio.wait_for(a.hold(never), WAIT)
        assert a.epoch is None and not a.valid()
        status = await b.status()
        assert status.leader is not None
        assert (status.leader.holder, status.leader.epoch) == (b.replica, 2)
    finally:
        await a.close()
        await b.close()


async def test_pg_leadership_resumed_holder_sees_its_own_lease_ran_out(schema: str) -> None:
    a = contender(schema, "a")
    never = asyncio.Event()
    try:
        assert await a.acquire(never) == 1
        await asyncio.sleep(LEASE)
        assert not a.valid()
        await asyncio.wait_for(a.hold(never), WAIT)
        assert a.epoch is None
    finally:
        await a.close()


async def test_pg_leadership_clean_stop_releases_for_the_next_epoch(schema: str) -> None:
    a, b = contender(schema, "a"), contender(schema, "b")
    stop_a, never = asyncio.Event(), asyncio.Event()
    try:
        assert await a.acquire(never) == 1
        holding = asyncio.create_task(a.hold(stop_a))
        waiting = asyncio.create_task(b.acquire(never))
        stop_a.set()
        await asyncio.wait_for(holding, WAIT)
        assert await asyncio.wait_for(waiting, WAIT) == 2
        status = await b.status()
        roles = {r.replica: r.role for r in status.replicas}
        assert roles == {a.replica: Role.STANDBY, b.replica: Role.LEADER}
    finally:
        await a.close()
        await b.close()


async def test_pg_leadership_rejects_renewal_not_shorter_than_lease() -> None:
    with pytest.raises(ValueError, match="shorter than the lease"):
        PostgresLeadership(postgres_url(), lease=2.0, renew_every=2.0)


async def test_pg_leadership_writer_paused_mid_transaction_does_not_block_the_takeover(
        schema: str) -> None:
    from alertbot.store.postgres import PostgresStore
    from alertbot.store.postgres.fencing import check_epoch

    store = PostgresStore(f"{postgres_url()}?search_path={schema}")
    await store.open()
    a, b = contender(schema, "a"), contender(schema, "b")
    stop = asyncio.Event()
    writer = await store._live_pool.acquire()
    try:
        assert await a.acquire(stop) == 1
        # The leader checked its epoch inside an outbox write (row taken FOR SHARE), then its
        # process was SIGSTOPped: the transaction stays open and the client says nothing more.
        await writer.execute("BEGIN")
        await check_epoch(writer, 1)
        # Attempts blocked meanwhile were ended by the server: none of them bumped the epoch.
        assert await asyncio.wait_for(b.acquire(stop), WAIT) == 2
        assert b.valid()
    finally:
        stop.set()
        # The server ended the writer's session (idle in transaction); the pool may have
        # noticed already, or fail to roll back what is gone.
        with contextlib.suppress(asyncpg.InterfaceError, asyncpg.InternalClientError):
            await store._live_pool.release(writer)
        await store.close()
        await a.close()
        await b.close()


async def _lock_waiters(admin: Any, application: str, *, waiting: bool) -> bool:
    """Whether a statement of a connection named `application` waits for a lock now."""
    found = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        " AND wait_event_type = 'Lock'", application)
    return bool(found) is waiting


async def test_pg_leadership_blocked_takeover_gives_up_on_the_server_and_never_lands_late(
        schema: str) -> None:
    application = f"lead-{schema}"

    async def named() -> Any:
        return await asyncpg.connect(postgres_url(), timeout=2, server_settings={
            "search_path": schema, "application_name": application})

    a, b = contender(schema, "a"), contender(schema, "b", connect=named)
    never, stop_b = asyncio.Event(), asyncio.Event()
    admin = await asyncpg.connect(postgres_url(), timeout=5)
    holder = await asyncpg.connect(postgres_url(), timeout=5,
                                   server_settings={"search_path": schema})
    try:
        assert await a.acquire(never) == 1
        await a.release()  # the lease is free: only the row lock stands in b's way
        # A writer (a leader's outbox write checking its epoch) holds the row meanwhile.
        await holder.execute("BEGIN")
        await holder.fetchval("SELECT epoch FROM leadership FOR SHARE")
        attempt = asyncio.create_task(b.acquire(stop_b))
        await eventually(lambda: _lock_waiters(admin, application, waiting=True),
                         what="b's takeover waiting for the row", timeout=WAIT)
        stop_b.set()
        assert await asyncio.wait_for(attempt, WAIT) is None
        # The server ended the blocked statement itself: nothing is left waiting for the row
        # that would bump the epoch once the writer commits.
        await eventually(lambda: _lock_waiters(admin, application, waiting=False),
                         what="no statement left waiting for the row", timeout=WAIT)
        await holder.execute("COMMIT")
        row = await holder.fetchrow("SELECT epoch, holder FROM leadership")
        assert (row[0], row[1]) == (1, str(a.replica))
        # The next attempt, unblocked, takes the next epoch.
        assert await asyncio.wait_for(b.acquire(never), WAIT) == 2
    finally:
        await holder.close()
        await admin.close()
        await a.close()
        await b.close()
