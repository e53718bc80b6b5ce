"""detect+persist: one poll of 1,000 tokens × 4 kinds against a populated store."""

from __future__ import annotations

import statistics
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Kind,
    Reading,
    Token,
    TrackedState,
)
from alertbot.ports.clock import SystemClock
from alertbot.ports.source import Batch
from alertbot.ports.store import PollResult, Watched
from alertbot.services.poller import Poller
from alertbot.store.sqlite import SqliteStore
from bench.fixtures import clone_subscriptions, open_store, subscribe_all, token
from bench.report import Figures, emit, progress, rounded

TOKENS = 1000
DESTINATIONS = 1000
TOKENS_PER_DESTINATION = 10
TEMPLATES = 100
"""Destinations created through the Store API; the rest copy their subscriptions."""
WARM_UP_POLLS = 5
MEASURED_POLLS = 30
CHANGING = 0.01
"""Share of the tokens whose four series all change in each poll (a busy hour)."""
TARGET_MS = 100.0
_START = datetime(2025, 1, 1, tzinfo=UTC)
_CLASSES = ("speculative", "emerging", "blueChip")



class SyntheticSource:
    """A source whose next fetch returns prepared readings (fetching costs nothing)."""

    name = "synthetic"

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = list(tokens)
        self.next: list[Reading] = []

    async def universe(self) -> list[Token]:
        """Every synthetic token."""
        return list(self._tokens)

    async def resolve(self, symbol: str) -> list[Token]:
        """Tokens with this symbol."""
        return [t for t in self._tokens if t.symbol == symbol.upper()]

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        """The prepared readings of the requested tokens and kinds."""
        wanted = set(token_ids)
        readings = [r for r in self.next if r.token.token_id in wanted and r.kind in kinds]
        return Batch(readings=readings, tokens=[t for t in self._tokens if t.token_id in wanted],
                     calls=4)

    async def close(self) -> None:
        """Nothing to release."""


def readings(tokens: Sequence[Token], poll: int, regime: dict[int, bool]) -> list[Reading]:
    """One poll's readings: each token is in one of two regimes (signals and grade bands)."""
    source_ts = _START + timedelta(hours=poll)
    out: list[Reading] = []
    for tok in tokens:
        up = regime[tok.token_id]
        trend = 1.0 if up else -1.0
        grade = 70.0 if up else 50.0
        out += [
            Reading(tok, Kind.SIGNAL, trend, source_ts, fired_at=source_ts),
            Reading(tok, Kind.HOURLY, trend, source_ts),
            Reading(tok, Kind.TM_GRADE, grade + (tok.token_id % 7) * 0.1, source_ts,
                    label="Buy" if up else "Neutral"),
            Reading(tok, Kind.FUNDAMENTAL, grade - 5.0, source_ts,
                    label=_CLASSES[2] if up else _CLASSES[1]),
        ]
    return out


def switch_regimes(regime: dict[int, bool], poll: int) -> None:
    """Move CHANGING of the tokens to their other regime: all four of their series change."""
    step = max(1, round(1 / CHANGING))
    for token_id in regime:
        if (token_id + poll) % step == 0:
            regime[token_id] = not regime[token_id]


async def _populate(path: Path, tokens: Sequence[Token]) -> None:
    store = await open_store(path)
    templates = []
    # TEMPLATES at 1,000 tokens: every token is watched by the same number of destinations.
    for t in range(max(1, len(tokens) // TOKENS_PER_DESTINATION)):
        destination = Destination("telegram", str(2_000_000_000 + t))
        templates.append(destination)
        for k in range(TOKENS_PER_DESTINATION):
            tok = tokens[(t * TOKENS_PER_DESTINATION + k) % len(tokens)]
            await subscribe_all(store, [destination], token_id=tok.token_id)
    await store.close()
    copies = DESTINATIONS // TEMPLATES - 1
    for t, template in enumerate(templates):
        base = 3_000_000_000 + t * copies
        clone_subscriptions(path, template, [str(base + c) for c in range(copies)])


class TimedStore(SqliteStore):
    """The SQLite store, timing the three calls a poll makes (to say where the time goes)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.spent: dict[str, float] = {}

    def _add(self, name: str, started: float) -> None:
        self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started

    async def watched(self) -> Watched:
        """Timed SqliteStore.watched."""
        started = time.perf_counter()
        try:
            return await super().watched()
        finally:
            self._add("watched", started)

    async def load_states(self, token_ids: Sequence[int]) -> dict[tuple[int, Kind],
                                                                    TrackedState]:
        """Timed SqliteStore.load_states."""
        started = time.perf_counter()
        try:
            return await super().load_states(token_ids)
        finally:
            self._add("load", started)

    async def record_poll(self, states: Sequence[TrackedState], changes: Sequence[Change],
                          now: datetime, meta: Mapping[str, str] | None = None,
                          touched: Sequence[tuple[int, Kind]] = (), *,
                          epoch: int = 0) -> PollResult:
        """Timed SqliteStore.record_poll."""
        started = time.perf_counter()
        try:
            return await super().record_poll(states, changes, now, meta, touched, epoch=epoch)
        finally:
            self._add("persist", started)


async def run(workdir: Path) -> list[Figures]:
    """Warm up a populated store, then time whole polls (fetch, detect, one commit)."""
    return [await measure(workdir)]


async def measure(workdir: Path, count: int = TOKENS, polls: int = MEASURED_POLLS,
                  bench: str = "detect") -> Figures:
    """Polls of `count` tokens, each watched by ten destinations of ten tokens each."""
    tokens = [token(i) for i in range(1, count + 1)]
    path = workdir / f"{bench}-{count}.db"
    progress(f"{bench}: populating the store ({count:,} tokens)")
    await _populate(path, tokens)
    store = TimedStore(str(path))
    await store.open()
    source = SyntheticSource(tokens)
    poller = Poller(store, source, Rules(), SystemClock(), interval=timedelta(minutes=5))
    try:
        times: list[float] = []
        parts: dict[str, list[float]] = {"watched": [], "load": [], "persist": []}
        changes: list[int] = []
        rows: list[int] = []
        regime = {tok.token_id: tok.token_id % 2 == 0 for tok in tokens}
        for poll in range(WARM_UP_POLLS + polls):
            if poll:
                switch_regimes(regime, poll)
            source.next = readings(tokens, poll, regime)
            store.spent.clear()
            started = time.perf_counter()
            report = await poller.poll_once()
            elapsed = time.perf_counter() - started
            if poll >= WARM_UP_POLLS:
                times.append(elapsed * 1000)
                for name, spent in parts.items():
                    spent.append(store.spent.get(name, 0.0) * 1000)
                changes.append(len(report.changes))
                rows.append(report.outbox_rows)
        subscriptions = len(await store.subscriptions())
    finally:
        await store.close()
    return emit({
        "bench": bench,
        "case": f"poll of {count} tokens × 4 kinds",
        "tokens": count,
        "readings": count * len(ALL_KINDS),
        "subscriptions": subscriptions,
        "polls": polls,
        "median_ms": rounded(statistics.median(times), 2),
        "p90_ms": rounded(statistics.quantiles(times, n=10, method="inclusive")[8], 2),
        "min_ms": rounded(min(times), 2),
        "max_ms": rounded(max(times), 2),
        # Medians of where a poll's time goes; "detect" is the rest (parsing, detect(), glue).
        "watched_ms": rounded(statistics.median(parts["watched"]), 2),
        "load_states_ms": rounded(statistics.median(parts["load"]), 2),
        "record_poll_ms": rounded(statistics.median(parts["persist"]), 2),
        "detect_and_rest_ms": rounded(statistics.median(
            t - sum(p[i] for p in parts.values()) for i, t in enumerate(times)), 2),
        "changes": round(statistics.mean(changes)),
        "outbox_rows": round(statistics.mean(rows)),
        "target_ms": TARGET_MS,
    })
