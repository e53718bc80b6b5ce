"""Supervision of the long-running jobs: a failing job is named, counted, reported and restarted.

Every job `alertbot run` starts (poller, dispatcher, platform receivers, ops monitor, HTTP
server, retention, reload) runs under `Supervisor.run`. An exception from a job is logged with
the job's name and a fresh correlation id, reported to the `JobObserver` (the restart counter,
and the operator alert once per failure streak), shown by the job's readiness probe, and the
job is started again after a capped exponential backoff with jitter. A job that returns on its
own (it has nothing to do in this configuration) is not restarted. Cancellation always
propagates; only `stop` ends the supervision.

Time and randomness are parameters, so the tests drive restarts on a manual clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alertbot.observability.logs import correlation_id
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import Job, Probe
from alertbot.ports.observers import JobObserver

log = logging.getLogger(__name__)

Sleep = Callable[[float], Coroutine[Any, Any, None]]
"""Waits this many seconds (asyncio.sleep, or a manual clock's stand-in in tests)."""
_ERROR_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart delays: `initial`, doubled after each failure up to `cap`, ± `jitter`."""

    initial: float = 1.0
    cap: float = 60.0
    jitter: float = 0.2
    """Fraction of the delay added or removed at random, so restarts do not align."""
    healthy_after: float = 10.0
    """A restarted job that runs this long without failing counts as recovered."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait before the restart that follows the `failures`-th failure."""
        base = min(self.cap, self.initial * 2 ** max(0, failures - 1))
        return max(0.0, float(base * (1 + self.jitter * rng.uniform(-1.0, 1.0))))


@dataclass(slots=True)
class JobState:
    """What the supervisor knows about one job."""

    name: str
    down_since: datetime | None = None
    """Start of the current failure streak; None while the job is healthy."""
    restarts: int = 0
    """Failures in the current streak."""
    error: str = ""

    def readiness(self) -> str | None:
        """None while healthy, else since when the job is down and why."""
        if self.down_since is None:
            return None
        plural = "" if self.restarts == 1 else "s"
        return (f"down since {self.down_since:%H:%M:%S} UTC "
                f"({self.restarts} restart{plural}): {self.error}")


class Supervisor:
    """Runs named jobs until `stop`, restarting each one that raises."""

    def __init__(self, clock: Clock, *, observer: JobObserver | None = None,
                 backoff: Backoff | None = None, rng: random.Random | None = None,
                 sleep: Sleep = asyncio.sleep,
                 redact: Callable[[str], str] = str) -> None:
        self._clock = clock
        self._redact = redact
        self._observer = observer or JobObserver()
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._states: dict[str, JobState] = {}

    def state(self, name: str) -> JobState:
        """The state of a job (created on first use)."""
        return self._states.setdefault(name, JobState(name))

    def probe(self, name: str) -> Probe:
        """A readiness probe for one job: None while it runs, else why it is down."""
        state = self.state(name)
        return state.readiness

    async def run(self, jobs: Mapping[str, Job], stop: asyncio.Event) -> None:
        """Supervise every job until `stop` is set and each has returned."""
        async with asyncio.TaskGroup() as group:
            for name, job in jobs.items():
                group.create_task(self.supervise(name, job, stop), name=name)

    async def supervise(self, name: str, job: Job, stop: asyncio.Event) -> None:
        """Run one job, restarting it after each failure, until it returns or `stop`."""
        state = self.state(name)
        while not stop.is_set():
            task = asyncio.create_task(job(stop), name=name)
            healthy: asyncio.Task[None] | None = None
            try:
                if state.down_since is not None:
                    healthy = asyncio.create_task(self._sleep(self._backoff.healthy_after))
                    await asyncio.wait({task, healthy}, return_when=asyncio.FIRST_COMPLETED)
                    if not task.done():
                        self._recovered(state)
                await asyncio.wait({task})
            finally:
                if healthy is not None:
                    healthy.cancel()
                if not task.done():
                    # This supervisor is being cancelled: take the job down with it; wait()
                    # does not raise the job's CancelledError, so ours still propagates.
                    task.cancel()
                    await asyncio.wait({task})
            if task.cancelled():
                if stop.is_set():
                    return
                error: BaseException = asyncio.CancelledError("the job cancelled itself")
            else:
                exc = task.exception()
                if exc is None:
                    if stop.is_set() or state.down_since is None:
                        return
                    # Returned on its own after failing: it will not fail again by itself.
                    self._recovered(state)
                    return
                error = exc
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise error
            delay = self._failed(state, error)
            await self._wait(delay, stop)

    def _failed(self, state: JobState, error: BaseException) -> float:
        now = self._clock.now()
        first = state.down_since is None
        if first:
            state.down_since = now
            state.restarts = 0
        state.restarts += 1
        state.error = self._redact(_describe(error))
        delay = self._backoff.delay(state.restarts, self._rng)
        cid = f"job-{uuid.uuid4().hex[:12]}"
        token = correlation_id.set(cid)
        try:
            log.error("job %s failed (%d in a row since %s UTC); restarting in %.1fs",
                      state.name, state.restarts, f"{state.down_since:%H:%M:%S}", delay,
                      exc_info=error)
        finally:
            correlation_id.reset(token)
        assert state.down_since is not None
        self._observer.job_failed(state.name, state.down_since,
                                  f"{state.error} (log correlation id {cid})", state.restarts)
        return delay

    def _recovered(self, state: JobState) -> None:
        since = state.down_since
        if since is None:
            return
        state.down_since = None
        log.info("job %s runs again after %d restarts", state.name, state.restarts)
        state.restarts = 0
        state.error = ""
        self._observer.job_recovered(state.name, since, self._clock.now())

    async def _wait(self, seconds: float, stop: asyncio.Event) -> None:
        sleeper = asyncio.create_task(self._sleep(seconds))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return described[:_ERROR_LIMIT]
