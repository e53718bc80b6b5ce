"""The job supervisor on a manual clock: restarts, backoff, readiness, reports, cancellation."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from alertbot.bootstrap.supervisor import Backoff, Supervisor
from alertbot.observability.logs import Redactor
from alertbot.ports.observers import JobObserver
from tests.support import ManualClock, eventually

HEALTHY_AFTER = 1000.0
NO_JITTER = Backoff(initial=1.0, cap=60.0, jitter=0.0, healthy_after=HEALTHY_AFTER)


class ManualSleep:
    """Stands in for asyncio.sleep: moves the manual clock instead of waiting."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def backoffs(self) -> list[float]:
        return [s for s in self.requested if s != HEALTHY_AFTER]


@dataclass
class Seen(JobObserver):
    failed: list[tuple[str, datetime, str, int]] = field(default_factory=list)
    recovered: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def job_failed(self, name: str, since: datetime, error: str, restarts: int) -> None:
        self.failed.append((name, since, error, restarts))

    def job_recovered(self, name: str, since: datetime, now: datetime) -> None:
        self.recovered.append((name, since, now))


def make(clock: ManualClock,
         backoff: Backoff = NO_JITTER) -> tuple[Supervisor, ManualSleep, Seen]:
    sleep, seen = ManualSleep(clock), Seen()
    supervisor = Supervisor(clock, observer=seen, backoff=backoff, rng=random.Random(7),
                            sleep=sleep, redact=Redactor(["tm-secret-1234"]))
    return supervisor, sleep, seen


async def test_supervisor_failing_job_restarts_with_capped_exponential_backoff(
    clock: ManualClock
) -> None:
    supervisor, sleep, seen = make(clock)
    stop = asyncio.Event()
    runs = 0

    async def job(stop_: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 9:
            stop.set()
            return
        raise ValueError("bad row")

    await asyncio.wait_for(supervisor.run({"poller": job}, stop), 5)
    assert sleep.backoffs() == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [f[3] for f in seen.failed] == list(range(1, 9))


async def test_supervisor_backoff_jitter_stays_within_its_fraction(clock: ManualClock) -> None:
    backoff = Backoff(initial=1.0, cap=60.0, jitter=0.2)
    rng = random.Random(3)
    delays = [backoff.delay(n, rng) for n in range(1, 12) for _ in range(20)]
    bases = [min(60.0, 2.0 ** (n - 1)) for n in range(1, 12) for _ in range(20)]
    assert all(0.8 * b <= d <= 1.2 * b for d, b in zip(delays, bases, strict=True))
    assert len(set(delays)) > 100


async def test_supervisor_failure_streak_reported_with_one_start_then_recovered(
    clock: ManualClock
) -> None:
    supervisor, _, seen = make(clock)
    start = clock.now()
    stop = asyncio.Event()
    runs = 0
    readiness: list[str | None] = []

    async def job(stop_: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        readiness.append(supervisor.probe("poller")())
        if runs <= 3:
            raise ValueError("tm-secret-1234 in a bad row")
        await stop_.wait()

    task = asyncio.create_task(supervisor.run({"poller": job}, stop))
    await eventually(lambda: bool(seen.recovered), what="the job recovered")
    assert {f[1] for f in seen.failed} == {start}
    assert "ValueError: *** in a bad row (log correlation id job-" in seen.failed[0][2]
    assert readiness[:3] == [
        None,
        "down since 12:00:00 UTC (1 restart): ValueError: *** in a bad row",
        "down since 12:00:00 UTC (2 restarts): ValueError: *** in a bad row",
    ]
    assert seen.recovered == [("poller", start, clock.now())]
    assert supervisor.probe("poller")() is None
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_supervisor_failing_job_leaves_the_other_jobs_running(clock: ManualClock) -> None:
    supervisor, _, seen = make(clock)
    stop = asyncio.Event()
    ticks = 0

    async def broken(stop_: asyncio.Event) -> None:
        raise RuntimeError("boom")

    async def steady(stop_: asyncio.Event) -> None:
        nonlocal ticks
        while not stop_.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(supervisor.run({"broken": broken, "steady": steady}, stop))
    await eventually(lambda: len(seen.failed) >= 20, what="20 failures")
    stop.set()
    await asyncio.wait_for(task, 5)
    assert ticks > 0 and supervisor.probe("steady")() is None
    assert supervisor.probe("broken")() is not None


async def test_supervisor_job_returning_on_its_own_is_not_restarted(clock: ManualClock) -> None:
    supervisor, _, seen = make(clock)
    runs = 0

    async def job(stop_: asyncio.Event) -> None:
        nonlocal runs
        runs += 1

    await asyncio.wait_for(supervisor.run({"discord": job}, asyncio.Event()), 5)
    assert runs == 1 and not seen.failed


async def test_supervisor_cancelled_cancels_the_job_and_propagates(clock: ManualClock) -> None:
    supervisor, _, _ = make(clock)
    started = asyncio.Event()
    job_cancelled = asyncio.Event()

    async def job(stop_: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            job_cancelled.set()
            # A library that turns its cancellation into an ordinary error.
            raise ConnectionResetError("connection lost") from None

    task = asyncio.create_task(supervisor.run({"dispatcher": job}, asyncio.Event()))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert job_cancelled.is_set()
