"""Poll -> detect -> persist. Readings from any source (poll or push) take the same path.

Pushed readings arrive through the store's push queue: whichever process accepted the push
stored them, and only the leader's poller detects on them (`drain_pushed`), serialised with its
polls, so one change is never detected by two processes at once. Every commit carries the
leadership epoch (`lead`): a leader that lost its lease without noticing records nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alertbot.domain.detect import Outcome, Rules, detect
from alertbot.domain.models import Kind, Reading, Token, TrackedState, mask_to_kinds
from alertbot.domain.validity import timestamp_problem
from alertbot.observability.logs import correlation_id
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.observers import PollObserver, PollReport
from alertbot.ports.source import Source, SourceError
from alertbot.ports.store import FencedError, PollStore, StoreError

log = logging.getLogger(__name__)

PUSH_BATCHES = 50
"""Pushed batches detected on per store read."""
PUSH_CHECK_EVERY = 1.0
"""Seconds between checks of the push queue for batches other processes stored."""
PUSH_RESULTS_KEPT = 1000
"""Reports of drained batches kept for the push handler that stored them to collect."""


class Poller:
    """Owns the detection state machine: loads stored state, detects, commits atomically."""

    def __init__(self, store: PollStore, source: Source, rules: Rules, clock: Clock, *,
                 interval: timedelta, on_committed: Callable[[], None] = lambda: None,
                 observer: PollObserver | None = None,
                 also_watch: Callable[[], Collection[int]] = frozenset) -> None:
        self._store = store
        self._source = source
        self._rules = rules
        self._clock = clock
        self.interval = interval
        self._on_committed = on_committed
        self.also_watch = also_watch
        self._observer = observer or PollObserver()
        self._catalog: dict[int, Token] = {}
        # Detection state as last committed. Every write of readings goes through ingest(),
        # so the cache stays exact and a poll reads nothing back from the store.
        self._states: dict[tuple[int, Kind], TrackedState] = {}
        self._absent: set[tuple[int, Kind]] = set()
        self.shared_state = False
        """True when other processes write readings too (replicas): the cache is not trusted
        and each ingest reads the states it compares against from the store."""
        self._lock = asyncio.Lock()
        self._soon = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._pushed = asyncio.Event()
        self._push_reports: OrderedDict[int, PollReport] = OrderedDict()
        self.on_pushed: Callable[[PollReport], None] = lambda report: None
        """Called with each drained batch's report (metrics count its changes)."""
        self.last_success: datetime | None = None
        self.last_error: str = ""
        self._epoch = 0
        self._on_fenced: Callable[[], None] = lambda: None

    @property
    def epoch(self) -> int:
        """The leadership epoch every commit carries."""
        return self._epoch

    def lead(self, epoch: int, *, on_fenced: Callable[[], None] = lambda: None) -> None:
        """Commit as the leader of `epoch` from now on; `on_fenced` when the store refuses it.

        The cached detection state is dropped: other replicas wrote states meanwhile.
        """
        self._epoch = epoch
        self._on_fenced = on_fenced
        self.forget()

    async def targets(self) -> tuple[list[int], tuple[Kind, ...]]:
        """Token ids and kinds that subscriptions (and recent lookups) need now."""
        watched = await self._store.watched()
        ids = set(watched.token_masks)
        if watched.all_tokens_mask:
            ids.update(t.token_id for t in await self._source.universe())
        if ids:
            # Only alongside real polling: lookups must not add calls of their own.
            ids.update(self.also_watch())
        return sorted(ids), mask_to_kinds(watched.kinds_mask)

    async def poll_once(self) -> PollReport:
        """One cycle: fetch what subscriptions need, detect, persist. Raises SourceError."""
        token_ids, kinds = await self.targets()
        if not token_ids or not kinds:
            self.last_success = self._clock.now()
            return PollReport()
        now = self._clock.now()
        batch = await self._source.fetch(token_ids, kinds, now)
        report = await self.ingest(batch.readings, tokens=batch.tokens, meta=batch.meta)
        report.errors.extend(batch.errors)
        report.calls = batch.calls
        report.tokens = len(token_ids)
        self.last_success = self._clock.now()
        return report

    async def ingest(self, readings: Sequence[Reading], *, tokens: Sequence[Token] = (),
                     meta: dict[str, str] | None = None) -> PollReport:
        """Detect changes in readings and commit states, changes and outbox rows together."""
        report = PollReport()
        # Serialised so a push ingest and a poll never interleave between load and commit.
        async with self._lock:
            now = self._clock.now()
            unknown = [t for t in tokens if self._catalog.get(t.token_id) != t]
            if unknown:
                await self._store.upsert_tokens(unknown, now)
                self._catalog.update((t.token_id, t) for t in unknown)
            readings = [self._with_catalog_token(r) for r in self._in_window(readings, now,
                                                                             report)]
            await self._load_states({(r.token.token_id, r.kind) for r in readings})
            states: dict[tuple[int, Kind], TrackedState] = {}
            for reading in sorted(readings, key=lambda r: r.source_ts):
                key = (reading.token.token_id, reading.kind)
                previous = states.get(key) or self._states.get(key)
                detection = detect(previous, reading, self._rules, now)
                report.outcomes[detection.outcome] += 1
                if detection.state is not None:
                    states[key] = detection.state
                report.changes.extend(detection.changes)
            if not states and not report.changes and not meta:
                return report
            # Only series whose state moved are rewritten; the rest are just marked fresh.
            moved: list[TrackedState] = []
            fresh: list[tuple[int, Kind]] = []
            for key, state in states.items():
                if state == self._states.get(key):
                    fresh.append(key)
                else:
                    moved.append(state)
            try:
                result = await self._store.record_poll(moved, report.changes, now, meta,
                                                       touched=fresh, epoch=self._epoch)
            except FencedError:
                self._on_fenced()
                raise
            for state in moved:
                self._states[(state.token_id, state.kind)] = state
        report.changes = result.new_changes
        report.outbox_rows = result.outbox_rows
        for change in result.new_changes:
            log.info("change %s %s %s: %s -> %s (%s)", change.change_id[:12],
                     change.token.symbol, change.kind.value, change.from_label or change.from_value,
                     change.to_label or change.to_value, change.cause)
        if result.outbox_rows:
            self._on_committed()
        return report

    @staticmethod
    def _in_window(readings: Sequence[Reading], now: datetime,
                   report: PollReport) -> list[Reading]:
        """Readings whose source time is plausible; the rest are counted as invalid."""
        kept: list[Reading] = []
        for reading in readings:
            problem = timestamp_problem(reading.source_ts, now)
            if problem is None:
                kept.append(reading)
                continue
            report.outcomes[Outcome.INVALID] += 1
            log.warning("ignored %s %s reading: its time %s %s", reading.token.symbol,
                        reading.kind.value, reading.source_ts.isoformat(), problem)
        return kept

    async def _load_states(self, keys: set[tuple[int, Kind]]) -> None:
        """Fill the state cache for series not seen yet (the poller is their only writer)."""
        if self.shared_state:
            self.forget()
        missing = {key[0] for key in keys - self._states.keys() - self._absent}
        if not missing:
            return
        loaded = await self._store.load_states(sorted(missing))
        self._states.update(loaded)
        self._absent.update(key for key in keys if key[0] in missing and key not in loaded)

    def forget(self) -> None:
        """Drop the cached detection state: the next ingest reads it from the store again."""
        self._states.clear()
        self._absent.clear()

    def _with_catalog_token(self, reading: Reading) -> Reading:
        # Some endpoints omit the slug or name; the catalog's richer token makes better links.
        known = self._catalog.get(reading.token.token_id)
        if known is None or known == reading.token or (reading.token.slug and not known.slug):
            return reading
        return replace(reading, token=known)

    async def drain_pushed(self, limit: int = PUSH_BATCHES) -> int:
        """Detect on up to `limit` pending pushed batches, oldest first; how many were done.

        Each batch takes `ingest`, then is marked processed. A crash between the two leaves it
        pending, and detecting on it again finds the state it already moved: nothing twice.
        Raises StoreError (the rest stay pending for the next drain).
        """
        async with self._drain_lock:
            batches = await self._store.pending_pushed(limit)
            for batch in batches:
                try:
                    report = await self.ingest(batch.readings, tokens=batch.tokens)
                except StoreError:
                    raise
                except Exception:  # a bug must not block every later push behind this one
                    reraise_if_cancelling()
                    log.exception("pushed batch %d dropped: detection failed", batch.batch_id)
                    report = PollReport()
                await self._store.finish_pushed([batch.batch_id], self._clock.now())
                self._push_reports[batch.batch_id] = report
                while len(self._push_reports) > PUSH_RESULTS_KEPT:
                    self._push_reports.popitem(last=False)
                self.on_pushed(report)
            return len(batches)

    def push_report(self, batch_id: int) -> PollReport | None:
        """What detection on a drained batch found (once), None if not drained here."""
        return self._push_reports.pop(batch_id, None)

    def pushed(self) -> None:
        """A batch was queued in this process: drain now instead of at the next check."""
        self._pushed.set()

    async def run_pushes(self, stop: asyncio.Event) -> None:
        """Drain the push queue when woken and every PUSH_CHECK_EVERY s, until stopped."""
        while not stop.is_set():
            self._pushed.clear()
            try:
                while await self.drain_pushed() == PUSH_BATCHES and not stop.is_set():
                    pass
            except StoreError as exc:
                log.warning("pushed readings not processed yet: %s", exc)
            except Exception:  # a bug must not stop processing pushes
                reraise_if_cancelling()
                log.exception("push queue drain crashed")
            await _first(stop, self._pushed, seconds=PUSH_CHECK_EVERY)

    def poll_soon(self) -> None:
        """Start the next cycle now instead of after the wait (e.g. after a key rotation)."""
        self._soon.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every interval until stopped; a failed cycle changes nothing."""
        while not stop.is_set():
            cycle = uuid.uuid4().hex[:8]
            correlation_id.set(f"poll-{cycle}")
            self._soon.clear()
            self._observer.poll_started(cycle)
            started = asyncio.get_running_loop().time()
            wait = self.interval.total_seconds()
            ok = False
            report = PollReport()
            try:
                report = await self.poll_once()
                ok = True
                self.last_error = ""
                if report.changes or report.errors:
                    log.info("poll %s: %d tokens, %d changes, %d alerts queued, %d errors",
                             cycle, report.tokens, len(report.changes), report.outbox_rows,
                             len(report.errors))
            except SourceError as exc:
                self.last_error = str(exc)
                log.warning("poll %s failed: %s", cycle, exc)
                if exc.retry_after:
                    wait = max(wait, exc.retry_after)
            except StoreError as exc:
                # Expected while the database is locked, full or read-only: nothing was
                # committed, the next cycle fetches the same data again.
                self.last_error = str(exc)
                log.warning("poll %s not saved: %s", cycle, exc)
            except Exception as exc:  # a bug must not stop polling
                reraise_if_cancelling()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("poll %s crashed", cycle)
            elapsed = asyncio.get_running_loop().time() - started
            self._observer.poll_finished(report, elapsed, ok)
            correlation_id.set("")
            await _first(stop, self._soon, seconds=max(0.0, wait - elapsed))


async def _first(*events: asyncio.Event, seconds: float) -> None:
    """Wait until any event is set or `seconds` pass."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
