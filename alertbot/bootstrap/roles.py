"""Leader and standby: the leader-only jobs run exactly while this replica leads.

`alertbot run` supervises the jobs every replica runs (HTTP, reload) and the role switch; the
role switch waits for leadership as a standby, then starts the leader-only jobs (startup,
poller, dispatcher, chat connections, retention, operator alerts) under the same supervisor,
and stops them when leadership is lost, the store fences the epoch (a dispatcher or poller
write refused), or the
process stops. Leadership is released only after the leader-only jobs have stopped, so the
next leader never overlaps with this one's last sends on a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from alertbot.bootstrap.supervisor import Supervisor
from alertbot.observability.metrics import Metrics
from alertbot.ports.leadership import Leadership, Role
from alertbot.ports.lifecycle import Job
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.poller import Poller

log = logging.getLogger(__name__)

EVERYWHERE = ("http", "reload")
"""Jobs every replica runs; all others run on the leader only."""
LEADER_PROBES = ("polls", "source", "telegram", "discord")
"""Readiness probes (besides the leader-only jobs' own) that only mean something on the leader."""


def replica_jobs(*, telegram_webhook: bool) -> frozenset[str]:
    """Names of the jobs every replica runs, for this configuration.

    In Telegram webhook mode a load balancer may hand an update to any replica, so the
    Telegram command bot (which answers it) runs on every replica; it neither polls nor
    delivers alerts, so nothing that must happen once per bot token moves off the leader.
    """
    return frozenset((*EVERYWHERE, "telegram") if telegram_webhook else EVERYWHERE)


class RoleSwitch:
    """Runs the leader-only jobs while `leadership` is held; a supervised job itself."""

    def __init__(self, leadership: Leadership, supervisor: Supervisor,
                 jobs: Mapping[str, Job], *, dispatcher: Dispatcher, poller: Poller,
                 metrics: Metrics, on_role: Callable[[Role], None] = lambda role: None) -> None:
        self._leadership = leadership
        self._supervisor = supervisor
        self._jobs = dict(jobs)
        self._dispatcher = dispatcher
        self._poller = poller
        self._metrics = metrics
        self._on_role = on_role
        self._role = Role.STANDBY
        self._fenced = asyncio.Event()
        metrics.leadership(False, None)

    @property
    def role(self) -> Role:
        """What this replica does now: leader only while its lease certainly holds."""
        # A resumed paused leader must not answer `leader` before `hold` notices the lease
        # ran out: another replica may lead already.
        if self._role is Role.LEADER and not self._leadership.valid():
            return Role.STANDBY
        return self._role

    @property
    def jobs(self) -> list[str]:
        """The leader-only jobs by name."""
        return list(self._jobs)

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, lead, stand by again … until `stop`."""
        while not stop.is_set():
            log.info("leadership: %s standing by", self._leadership.replica)
            epoch = await self._leadership.acquire(stop)
            if epoch is None:
                return
            await self._lead(epoch, stop)

    async def _lead(self, epoch: int, stop: asyncio.Event) -> None:
        self._fenced.clear()
        # Other replicas wrote states while this one stood by: `lead` reads them again.
        self._poller.lead(epoch, on_fenced=self._fenced.set)
        self._dispatcher.lead(epoch, valid=self._leadership.valid, on_fenced=self._fenced.set)
        self._switch(Role.LEADER, epoch)
        log.info("leadership: %s leads (epoch %d)", self._leadership.replica, epoch)
        leader_stop = asyncio.Event()
        hold_stop = asyncio.Event()
        jobs = asyncio.create_task(self._supervisor.run(self._jobs, leader_stop))
        holding = asyncio.create_task(self._leadership.hold(hold_stop))
        waiters = {asyncio.create_task(stop.wait()), asyncio.create_task(self._fenced.wait())}
        try:
            await asyncio.wait({holding, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            lost = holding.done() and not stop.is_set()
            if lost or self._fenced.is_set():
                log.warning("leadership: epoch %d is over (%s); stopping the leader's jobs",
                            epoch, "fenced by the store" if self._fenced.is_set()
                            else "lease lost")
                # Another replica may lead already; stopping the jobs can take seconds.
                self._switch(Role.STANDBY, None)
            leader_stop.set()
            try:
                await asyncio.shield(jobs)
            finally:
                hold_stop.set()
                if self._fenced.is_set():
                    await self._leadership.release()
                await holding
                if self._role is Role.LEADER:
                    self._switch(Role.STANDBY, None)

    def _switch(self, role: Role, epoch: int | None) -> None:
        self._role = role
        self._metrics.leadership(role is Role.LEADER, epoch)
        self._on_role(role)
