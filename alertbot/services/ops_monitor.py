"""Operator alerts: watch the bot's own health and queue ops events for ALERTBOT_OPS_DESTINATION.

Conditions (key rejected, polls stale) are tracked as occurrences: the start of one is
persisted, so raising it again after a restart reuses its change id and the store drops the
repeat; its end queues one recovery message. Quota thresholds are once per month by their
id. Paused destinations and dead-lettered rows arrive through the dispatcher's hooks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from alertbot.domain import ops_events as ops
from alertbot.domain.models import Destination, Reason
from alertbot.domain.ops_events import OpsCode, OpsEvent
from alertbot.observability.logs import Redactor
from alertbot.observability.metrics import Metrics, QuotaProbe
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.observers import DispatchObserver, JobObserver, PollObserver, PollReport
from alertbot.ports.store import OpsStore

log = logging.getLogger(__name__)

ACTIVE_KEY = "ops.active"
CHECK_EVERY = 60.0


class PollStatus(Protocol):
    """What the monitor reads from the poller."""

    @property
    def last_success(self) -> datetime | None:
        """When a poll last succeeded."""
        ...

    @property
    def last_error(self) -> str:
        """Why the last poll failed ("" when it did not)."""
        ...

    @property
    def interval(self) -> timedelta:
        """Time between polls."""
        ...


def parse_destination(text: str) -> Destination:
    """`telegram:-100123` or `discord:456` (validated by Settings) as a Destination."""
    platform, _, chat = text.partition(":")
    return Destination(platform, chat)


class OpsMonitor(PollObserver, DispatchObserver, JobObserver):
    """Raises ops events and stores them through the outbox for one destination."""

    def __init__(self, store: OpsStore, clock: Clock, destination: Destination,
                 poller: PollStatus, *,
                 wake: Callable[[], None], redactor: Redactor,
                 auth_error: Callable[[], str | None] | None = None,
                 quota: QuotaProbe | None = None, metrics: Metrics | None = None,
                 check_every: float = CHECK_EVERY) -> None:
        self.destination = destination
        self._store = store
        self._clock = clock
        self._poller = poller
        self._wake = wake
        self._redact = redactor
        self._auth_error = auth_error
        self._quota = quota
        self._metrics = metrics
        self._check_every = check_every
        self._started = clock.now()
        self._active: dict[str, datetime] | None = None
        self._pending: list[OpsEvent] = []
        self._dead: dict[Destination, datetime] = {}
        self._recorded: set[str] = set()
        self._kick = asyncio.Event()

    # ------------------------------------------------------------------ hooks (sync)

    def poll_finished(self, report: PollReport, seconds: float, ok: bool) -> None:
        """Look at the conditions after every cycle."""
        self._kick.set()

    def paused(self, destination: Destination, reason: str) -> None:
        """A destination stopped accepting messages."""
        if destination == self.destination:
            log.error("the ops destination %s no longer accepts messages (%s); operator "
                      "alerts cannot be delivered", destination, reason)
            return
        self._pending.append(ops.destination_paused(destination, self._redact(reason),
                                                    self._clock.now()))
        self._kick.set()

    def failed(self, destination: Destination, outcome: Reason) -> None:
        """Remember dead-lettered sends; the reason is read from the stored decision."""
        if outcome == Reason.DEAD and destination != self.destination:
            self._dead.setdefault(destination, self._clock.now())
            self._kick.set()

    def job_failed(self, name: str, since: datetime, error: str, restarts: int) -> None:
        """A supervised job raised: one alert per failure streak (the id is its start)."""
        self._pending.append(ops.job_failed(name, since, self._redact(error)))
        self._kick.set()

    def job_recovered(self, name: str, since: datetime, now: datetime) -> None:
        """A supervised job that kept failing runs cleanly again."""
        self._pending.append(ops.job_recovered(name, since, now))
        self._kick.set()

    # ------------------------------------------------------------------ job

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: check after every poll and at least every `check_every` seconds."""
        await self._store.ensure_destination(self.destination, self._clock.now())
        log.info("operator alerts go to %s", self.destination)
        while not stop.is_set():
            self._kick.clear()
            try:
                await self.check()
            except Exception:  # a failing check must not stop the bot
                reraise_if_cancelling()
                log.exception("operator alert check failed")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(
                self._kick.wait())]
            try:
                await asyncio.wait(waiters, timeout=self._check_every,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def check(self) -> None:
        """Evaluate every condition and store the events it raises."""
        now = self._clock.now()
        await self._load()
        auth = self._auth_error() if self._auth_error else None
        if auth:
            await self._raise(OpsCode.KEY_REJECTED, now,
                              lambda since: ops.key_rejected(self._redact(auth), since))
        else:
            await self._clear(OpsCode.KEY_REJECTED, now, ops.key_accepted)
        poller = self._poller
        if ops.is_stale(poller.last_success, self._started, poller.interval.total_seconds(), now):
            error = self._redact(poller.last_error)
            await self._raise(OpsCode.POLLS_STALE, now, lambda since: ops.polls_stale(
                since, poller.last_success, error, now))
        else:
            await self._clear(OpsCode.POLLS_STALE, now, ops.polls_recovered)
        if self._quota is not None:
            usage = await self._quota(now)
            if usage is not None:
                for event in ops.quota_crossed(usage.used, usage.limit, usage.month, now):
                    await self._emit(event, now)
        pending, self._pending = self._pending, []
        for event in pending:
            await self._emit(event, now)
        dead, self._dead = self._dead, {}
        for destination, at in dead.items():
            reason = await self._dead_reason(destination)
            await self._emit(ops.dead_lettered(destination, reason, at), now)

    # ------------------------------------------------------------------ occurrences

    async def _load(self) -> None:
        if self._active is not None:
            return
        active: dict[str, datetime] = {}
        raw = await self._store.get_meta(ACTIVE_KEY)
        try:
            for code, since in (json.loads(raw) if raw else {}).items():
                active[str(code)] = datetime.fromisoformat(str(since))
        except (ValueError, TypeError, AttributeError):
            log.warning("ignoring unreadable %s bookkeeping", ACTIVE_KEY)
        self._active = active

    async def _save(self) -> None:
        assert self._active is not None
        await self._store.set_meta(ACTIVE_KEY, json.dumps(
            {code: since.isoformat() for code, since in sorted(self._active.items())}))

    async def _raise(self, code: OpsCode, now: datetime,
                     make: Callable[[datetime], OpsEvent]) -> None:
        assert self._active is not None
        since = self._active.get(code.value)
        if since is None:
            since = self._active[code.value] = now
            await self._save()
        await self._emit(make(since), now)

    async def _clear(self, code: OpsCode, now: datetime,
                     make: Callable[[datetime, datetime], OpsEvent]) -> None:
        assert self._active is not None
        since = self._active.pop(code.value, None)
        if since is None:
            return
        await self._save()
        await self._emit(make(since, now), now)

    async def _emit(self, event: OpsEvent, now: datetime) -> None:
        change = ops.ops_change(event, now)
        if change.change_id in self._recorded:
            return
        queued = await self._store.record_ops_event(change, self.destination, now)
        self._recorded.add(change.change_id)
        if not queued:
            return
        if self._metrics is not None:
            self._metrics.ops_event(event.code.value)
        level = logging.WARNING if event.problem else logging.INFO
        log.log(level, "operator alert for %s: %s (%s)", self.destination, event.title,
                change.cause)
        self._wake()

    async def _dead_reason(self, destination: Destination) -> str:
        for record in await self._store.recent_decisions(destination, 10):
            if record.reason == Reason.DEAD.value:
                return self._redact(record.detail or "gave up after repeated failures")
        return "gave up after repeated failures"
