"""Two role switches on the real PostgreSQL leadership: the leader's jobs run in one replica
at a time, and move to the other when the leader is cut off from the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from alertbot.bootstrap.roles import RoleSwitch
from alertbot.bootstrap.supervisor import Supervisor
from alertbot.observability.metrics import Metrics
from alertbot.ports.leadership import ReplicaId, Role
from alertbot.store.postgres.leadership import PostgresLeadership
from tests.integration.store.test_postgres_leadership import LEASE, RENEW, Partition
from tests.pg_support import postgres_url, temporary_schema
from tests.support import ManualClock, eventually
from tests.unit.bootstrap.test_roles import FakeDispatcher, FakePoller

WAIT = 20.0


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with temporary_schema("roles") as name:
        yield name


class Replica:
    """A role switch whose one leader-only job marks the replica as working."""

    def __init__(self, name: str, schema: str, link: Partition) -> None:
        self.working = False
        self.overlaps: list[str] = []
        self.leadership = PostgresLeadership(postgres_url(), replica=ReplicaId(name, 1),
                                             lease=LEASE, renew_every=RENEW, schema=schema,
                                             connect=link.connect)
        self.dispatcher = FakeDispatcher()
        self.switch = RoleSwitch(self.leadership, Supervisor(ManualClock()),
                                 {"work": self.work}, dispatcher=self.dispatcher,  # type: ignore[arg-type]
                                 poller=FakePoller(), metrics=Metrics())  # type: ignore[arg-type]
        self.peer: Replica | None = None

    async def work(self, stop: asyncio.Event) -> None:
        if self.peer is not None and self.peer.working:
            self.overlaps.append("started while the other replica was working")
        self.working = True
        try:
            await stop.wait()
        finally:
            self.working = False


async def test_roles_pg_leader_jobs_move_to_the_standby_when_the_leader_is_cut_off(
        schema: str) -> None:
    link_a, link_b = Partition(schema), Partition(schema)
    a, b = Replica("a", schema, link_a), Replica("b", schema, link_b)
    a.peer, b.peer = b, a
    stop = asyncio.Event()
    run_a = asyncio.create_task(a.switch.run(stop))
    await eventually(lambda: a.working, what="a leads", timeout=WAIT)
    run_b = asyncio.create_task(b.switch.run(stop))
    await asyncio.sleep(2 * LEASE)
    assert a.switch.role is Role.LEADER and b.switch.role is Role.STANDBY and not b.working
    link_a.cut = True
    await link_a.kill_connections()
    await eventually(lambda: b.working, what="b takes over", timeout=WAIT)
    assert not a.working and a.switch.role is Role.STANDBY
    assert b.dispatcher.led == [2] and a.dispatcher.led == [1]
    assert a.overlaps == [] and b.overlaps == []
    # a's link comes back: it stands by, b keeps leading.
    link_a.cut = False
    await asyncio.sleep(2 * LEASE)
    assert b.working and not a.working and a.dispatcher.led == [1]
    stop.set()
    await asyncio.wait_for(asyncio.gather(run_a, run_b), WAIT)
    await a.leadership.close()
    await b.leadership.close()
