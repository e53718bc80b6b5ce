"""Observer ports: what the poller and dispatcher report, and a fan-out to several observers.

Metrics and operator alerts implement these hooks; the services know only this module.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from alertbot.domain.detect import Outcome
from alertbot.domain.models import Change, Destination, Reason

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollReport:
    """What one poll or ingest did."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    outbox_rows: int = 0
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    tokens: int = 0


class PollObserver:
    """Hooks for metrics and health; the default does nothing."""

    def poll_started(self, cycle_id: str) -> None:
        """A cycle began."""

    def poll_finished(self, report: PollReport, seconds: float, ok: bool) -> None:
        """A cycle ended (ok = the source answered)."""


class DispatchObserver:
    """Hooks for metrics and operator alerts; the default does nothing."""

    def decided(self, destination: Destination, reason: Reason, count: int) -> None:
        """Throttle decisions were stored."""

    def delivered(self, destination: Destination, changes: Sequence[Change],
                  now: datetime) -> None:
        """A message was accepted by its platform."""

    def failed(self, destination: Destination, outcome: Reason) -> None:
        """A send failed (any outcome but SENT)."""

    def paused(self, destination: Destination, reason: str) -> None:
        """A destination was paused because it no longer accepts messages."""

    def address_loaded(self, destination: Destination, address: str) -> None:
        """A destination's secret address was read (so logs can redact it)."""


class JobObserver:
    """Hooks for a supervised background job's failures; the default does nothing."""

    def job_failed(self, name: str, since: datetime, error: str, restarts: int) -> None:
        """A job raised; `since` is when its current failure streak began."""

    def job_recovered(self, name: str, since: datetime, now: datetime) -> None:
        """A job that failed since `since` has run cleanly again."""


class Observers(PollObserver, DispatchObserver, JobObserver):
    """Fan-out: every hook reaches every registered observer; one failing never stops the
    others nor the poller or dispatcher that called it."""

    def __init__(self) -> None:
        self._poll: list[PollObserver] = []
        self._dispatch: list[DispatchObserver] = []
        self._jobs: list[JobObserver] = []
        self._addresses: list[Callable[[str], None]] = []

    def add(self, observer: PollObserver | DispatchObserver | JobObserver) -> None:
        """Register an observer for the hooks it implements."""
        if isinstance(observer, JobObserver):
            self._jobs.append(observer)
        if isinstance(observer, PollObserver):
            self._poll.append(observer)
        if isinstance(observer, DispatchObserver):
            self._dispatch.append(observer)

    def on_address(self, callback: Callable[[str], None]) -> None:
        """Be told about every secret delivery address the dispatcher loads."""
        self._addresses.append(callback)

    def poll_started(self, cycle_id: str) -> None:
        """Forward."""
        for o in self._poll:
            with _guard(o):
                o.poll_started(cycle_id)

    def poll_finished(self, report: PollReport, seconds: float, ok: bool) -> None:
        """Forward."""
        for o in self._poll:
            with _guard(o):
                o.poll_finished(report, seconds, ok)

    def decided(self, destination: Destination, reason: Reason, count: int) -> None:
        """Forward."""
        for d in self._dispatch:
            with _guard(d):
                d.decided(destination, reason, count)

    def delivered(self, destination: Destination, changes: Sequence[Change],
                  now: datetime) -> None:
        """Forward."""
        for d in self._dispatch:
            with _guard(d):
                d.delivered(destination, changes, now)

    def failed(self, destination: Destination, outcome: Reason) -> None:
        """Forward."""
        for d in self._dispatch:
            with _guard(d):
                d.failed(destination, outcome)

    def paused(self, destination: Destination, reason: str) -> None:
        """Forward."""
        for d in self._dispatch:
            with _guard(d):
                d.paused(destination, reason)

    def job_failed(self, name: str, since: datetime, error: str, restarts: int) -> None:
        """Forward."""
        for j in self._jobs:
            with _guard(j):
                j.job_failed(name, since, error, restarts)

    def job_recovered(self, name: str, since: datetime, now: datetime) -> None:
        """Forward."""
        for j in self._jobs:
            with _guard(j):
                j.job_recovered(name, since, now)

    def address_loaded(self, destination: Destination, address: str) -> None:
        """Forward a loaded secret address to the callbacks (log redaction)."""
        for callback in self._addresses:
            with _guard(callback):
                callback(address)


@contextmanager
def _guard(target: object) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("observer %s failed", type(target).__name__)
