"""The role switch with a scripted leadership: leader-only jobs run exactly while leading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from alertbot.bootstrap.roles import RoleSwitch, replica_jobs
from alertbot.bootstrap.supervisor import Supervisor
from alertbot.observability.metrics import Metrics
from alertbot.ports.leadership import LeadershipStatus, ReplicaId, Role
from tests.support import ManualClock, eventually


class ScriptedLeadership:
    """Grants an epoch when the test says so; loses it when the test says so."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.replica = ReplicaId("test", 1)
        self.epoch: int | None = None
        self._grants: asyncio.Queue[int] = asyncio.Queue()
        self._lose = asyncio.Event()
        self.acquiring = 0

    def valid(self) -> bool:
        return self.epoch is not None

    def grant(self, epoch: int) -> None:
        self._grants.put_nowait(epoch)

    def lose(self) -> None:
        self._lose.set()

    async def acquire(self, stop: asyncio.Event) -> int | None:
        self.acquiring += 1
        granted = asyncio.create_task(self._grants.get())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({granted, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not granted.done():
            granted.cancel()
            return None
        self.epoch = granted.result()
        self._lose.clear()
        self.log.append(f"acquired {self.epoch}")
        return self.epoch

    async def hold(self, stop: asyncio.Event) -> None:
        lost = asyncio.create_task(self._lose.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        stopped.cancel()
        if stop.is_set():
            await self.release()
        else:
            self.log.append("lost")
            self.epoch = None

    async def release(self) -> None:
        if self.epoch is not None:
            self.log.append(f"released {self.epoch}")
        self.epoch = None

    async def status(self) -> LeadershipStatus:
        raise NotImplementedError

    async def close(self) -> None:
        await self.release()


@dataclass
class FakeDispatcher:
    led: list[int] = field(default_factory=list)
    on_fenced: Callable[[], None] = lambda: None

    def lead(self, epoch: int, *, valid: Callable[[], bool],
             on_fenced: Callable[[], None]) -> None:
        self.led.append(epoch)
        self.on_fenced = on_fenced


@dataclass
class FakePoller:
    led: list[int] = field(default_factory=list)
    on_fenced: Callable[[], None] = lambda: None

    def lead(self, epoch: int, *, on_fenced: Callable[[], None]) -> None:
        self.led.append(epoch)
        self.on_fenced = on_fenced


@dataclass
class Harness:
    switch: RoleSwitch
    leadership: ScriptedLeadership
    dispatcher: FakeDispatcher
    poller: FakePoller
    metrics: Metrics
    log: list[str]
    running: set[str]

    def gauge(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name)
        assert value is not None
        return value


def harness() -> Harness:
    log: list[str] = []
    running: set[str] = set()

    def job(name: str):  # type: ignore[no-untyped-def]
        async def run(stop: asyncio.Event) -> None:
            running.add(name)
            log.append(f"start {name}")
            try:
                await stop.wait()
            finally:
                running.discard(name)
                log.append(f"stop {name}")
        return run

    leadership = ScriptedLeadership(log)
    dispatcher, poller, metrics = FakeDispatcher(), FakePoller(), Metrics()
    switch = RoleSwitch(leadership, Supervisor(ManualClock()),
                        {"poller": job("poller"), "dispatcher": job("dispatcher")},
                        dispatcher=dispatcher, poller=poller,  # type: ignore[arg-type]
                        metrics=metrics)
    return Harness(switch, leadership, dispatcher, poller, metrics, log, running)


async def test_roles_standby_runs_no_leader_job_until_acquired() -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    await eventually(lambda: h.leadership.acquiring == 1, what="acquire")
    await asyncio.sleep(0.05)
    assert h.switch.role is Role.STANDBY and h.running == set()
    assert h.gauge("alertbot_leader") == 0
    h.leadership.grant(4)
    await eventually(lambda: h.running == {"poller", "dispatcher"}, what="leader jobs")
    assert h.switch.role is Role.LEADER and h.dispatcher.led == [4] and h.poller.led == [4]
    assert h.gauge("alertbot_leader") == 1 and h.gauge("alertbot_leader_epoch") == 4
    assert h.gauge("alertbot_leadership_changes_total") == 1
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_roles_lost_leadership_stops_jobs_then_stands_by_and_leads_again() -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    h.leadership.grant(1)
    await eventually(lambda: h.running == {"poller", "dispatcher"}, what="leader jobs")
    h.leadership.lose()
    await eventually(lambda: h.leadership.acquiring == 2, what="standing by again")
    assert h.running == set() and h.switch.role is Role.STANDBY
    assert h.gauge("alertbot_leader") == 0 and h.gauge("alertbot_leader_epoch") == 0
    h.leadership.grant(3)
    await eventually(lambda: h.running == {"poller", "dispatcher"}, what="leading again")
    assert h.dispatcher.led == [1, 3] and h.poller.led == [1, 3]
    assert h.gauge("alertbot_leadership_changes_total") == 3
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("refused", ["dispatcher", "poller"])
async def test_roles_fenced_dispatcher_or_poller_stops_jobs_before_releasing(
        refused: str) -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    h.leadership.grant(2)
    await eventually(lambda: h.running == {"poller", "dispatcher"}, what="leader jobs")
    (h.dispatcher if refused == "dispatcher" else h.poller).on_fenced()
    await eventually(lambda: "released 2" in h.log, what="release after the fence")
    released = h.log.index("released 2")
    assert {"stop poller", "stop dispatcher"} <= set(h.log[:released])
    assert h.switch.role is Role.STANDBY
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_roles_stop_while_leading_stops_jobs_then_releases() -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    h.leadership.grant(5)
    await eventually(lambda: h.running == {"poller", "dispatcher"}, what="leader jobs")
    stop.set()
    await asyncio.wait_for(task, 10)
    released = h.log.index("released 5")
    assert {"stop poller", "stop dispatcher"} <= set(h.log[:released])
    assert h.running == set() and h.switch.role is Role.STANDBY


async def test_roles_stop_while_standby_ends_without_leading() -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    await eventually(lambda: h.leadership.acquiring == 1, what="acquire")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert h.log == [] and h.dispatcher.led == []


@pytest.mark.parametrize("end", ["lose", "fence"])
async def test_roles_lost_or_fenced_reports_standby_while_leader_jobs_still_stop(
        end: str) -> None:
    h = harness()
    finish = asyncio.Event()

    async def slow_to_stop(stop: asyncio.Event) -> None:
        await stop.wait()
        h.log.append("draining")
        await finish.wait()  # sends in flight, a gateway closing ...

    h.switch = RoleSwitch(h.leadership, Supervisor(ManualClock()), {"slow": slow_to_stop},
                          dispatcher=h.dispatcher, poller=h.poller,  # type: ignore[arg-type]
                          metrics=h.metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    h.leadership.grant(7)
    await eventually(lambda: h.switch.role is Role.LEADER, what="leading")
    h.leadership.lose() if end == "lose" else h.dispatcher.on_fenced()
    await eventually(lambda: "draining" in h.log, what="the leader jobs stopping")
    # Another replica may lead already: this one must not answer `leader` meanwhile.
    assert h.switch.role is Role.STANDBY
    assert h.gauge("alertbot_leader") == 0
    finish.set()
    await eventually(lambda: h.leadership.acquiring == 2, what="standing by again")
    assert h.gauge("alertbot_leadership_changes_total") == 2
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_roles_lease_run_out_unnoticed_reports_standby() -> None:
    h = harness()
    stop = asyncio.Event()
    task = asyncio.create_task(h.switch.run(stop))
    h.leadership.grant(8)
    await eventually(lambda: h.switch.role is Role.LEADER, what="leading")
    h.leadership.epoch = None  # the deadline passed (a pause); `hold` has not run since
    assert h.switch.role is Role.STANDBY
    stop.set()
    await asyncio.wait_for(task, 10)


def test_replica_jobs_long_polling_keeps_telegram_on_the_leader() -> None:
    assert replica_jobs(telegram_webhook=False) == {"http", "reload"}


def test_replica_jobs_webhook_mode_runs_telegram_on_every_replica() -> None:
    # Any replica may receive a webhook update; without the command bot it would answer 503.
    assert replica_jobs(telegram_webhook=True) == {"http", "reload", "telegram"}
