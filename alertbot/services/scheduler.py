"""The digest scheduler: decides each finished period of every scheduled digest, once.

A background job. Each check (at every period end, and at least every CHECK_EVERY seconds)
looks at the destinations with a schedule and decides their finished, undecided periods: a
period that ended less than MISSED_GRACE ago gets its digest queued in the outbox (one row,
delivered by the dispatcher with its throttle, quiet hours, pacing and retries), an older one
is recorded as skipped, and one without changes is recorded as empty unless the schedule says
`always`. Changes suppressed by a mute (of the destination or of their token) are left out.
The store decides each (destination, period) at most once, so restarts and repeated
checks never queue a second digest. Time is the clock's: tests drive it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from alertbot.domain.models import Destination, DigestSchedule, Kind
from alertbot.domain.scheduled_digest import (
    GRADE_KINDS,
    CurrentGrade,
    DuePeriod,
    build_summary,
    digest_change,
    due_periods,
    next_due,
    recent_periods,
    without_muted,
)
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.store import DigestOutcome, DigestStore, StoreError

log = logging.getLogger(__name__)

CHECK_EVERY = 60.0
"""Longest wait between checks: a schedule set meanwhile is seen within it."""
MIN_WAIT = 0.2


@dataclass(slots=True)
class CheckResult:
    """What one check decided, by outcome, and when the next period ends."""

    queued: int = 0
    empty: int = 0
    skipped: int = 0
    next_at: datetime | None = None


class DigestScheduler:
    """Queues scheduled digests when their periods end."""

    def __init__(self, store: DigestStore, clock: Clock, *, band_label: Callable[[float], str],
                 wake: Callable[[], None] | None = None,
                 check_every: float = CHECK_EVERY) -> None:
        self._store = store
        self._clock = clock
        self._band_label = band_label
        self._wake = wake
        self._check_every = check_every

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: check at every period end until `stop`."""
        while not stop.is_set():
            wait = self._check_every
            try:
                result = await self.check()
                if result.next_at is not None:
                    until = (result.next_at - self._clock.now()).total_seconds()
                    wait = min(wait, max(until, MIN_WAIT))
            except StoreError as exc:  # the next check decides what this one could not
                log.warning("scheduled digest check failed, retrying: %s", exc)
            except Exception:  # one failed check must not end the schedule
                reraise_if_cancelling()
                log.exception("scheduled digest check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def check(self, now: datetime | None = None) -> CheckResult:
        """Decide every finished, undecided period of every scheduled digest."""
        now = now or self._clock.now()
        result = CheckResult()
        for info in await self._store.digest_destinations():
            schedule = info.policy.digest
            if schedule is None:
                continue
            ends = next_due(schedule, now)
            result.next_at = ends if result.next_at is None else min(result.next_at, ends)
            keys = [p.key for p in recent_periods(schedule, now)]
            decided = await self._store.decided_periods(info.destination, keys)
            for due in due_periods(schedule, now, decided):
                outcome = await self._decide(info.destination, schedule, due, now)
                if outcome is DigestOutcome.QUEUED:
                    result.queued += 1
                elif outcome is DigestOutcome.EMPTY:
                    result.empty += 1
                elif outcome is DigestOutcome.SKIPPED:
                    result.skipped += 1
        if result.queued and self._wake is not None:
            self._wake()
        return result

    async def _decide(self, destination: Destination, schedule: DigestSchedule, due: DuePeriod,
                      now: datetime) -> DigestOutcome | None:
        period = due.period
        changes = await self._store.period_changes(destination, period.start, period.end)
        if changes:
            mutes = {m.token.token_id: (m.created_at, m.until)
                     for m in await self._store.token_mutes(destination, now)}
            changes = without_muted(changes, mutes)
        grades: dict[int, dict[Kind, CurrentGrade]] = {}
        if due.send and changes:
            states = await self._store.load_states([c.token.token_id for c in changes])
            for (token_id, kind), state in states.items():
                if kind in GRADE_KINDS:
                    grades.setdefault(token_id, {})[kind] = CurrentGrade(
                        state.value, self._band_label(state.value))
        summary = build_summary(schedule, period, changes, grades)
        if not due.send:
            outcome = DigestOutcome.SKIPPED
        elif not changes and not schedule.always:
            outcome = DigestOutcome.EMPTY
        else:
            outcome = DigestOutcome.QUEUED
        change = digest_change(destination, summary, now)
        if not await self._store.record_digest(destination, period.key, period.start,
                                               period.end, outcome, change, now):
            return None
        if outcome is DigestOutcome.SKIPPED:
            log.warning("%s: scheduled digest for the period ending %s UTC skipped: it ended "
                        "more than 6 hours ago", destination, f"{period.end:%Y-%m-%d %H:%M}")
        elif outcome is DigestOutcome.QUEUED:
            log.info("%s: scheduled digest %s queued (%d changes)", destination, period.key,
                     len(changes))
        return outcome
