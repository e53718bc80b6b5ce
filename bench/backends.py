"""backends: SQLite beside PostgreSQL for detect, fan-out and latency, and how each grows.

detect+persist at 1,000 and 10,000 tokens × 4 kinds, fan-out of one change to 10,000,
100,000 and 1,000,000 subscriptions, and detection-to-Telegram latency, each once per store.
Both stores start from the same rows: the SQLite file is seeded with the other benchmarks'
helpers and copied into a fresh PostgreSQL schema with `alertbot db copy`'s code. The server is
ALERTBOT_BENCH_POSTGRES_URL (default: the tests' ALERTBOT_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test); without one, only SQLite is measured.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alertbot.domain.detect import Rules
from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Change, Destination, Kind
from alertbot.ports.clock import SystemClock
from alertbot.ports.store import Store
from alertbot.services.poller import Poller
from alertbot.store.copy import copy_rows
from alertbot.store.postgres import PostgresStore
from alertbot.store.sqlite import SqliteStore
from bench import detect, fanout, latency
from bench.fixtures import subscribe_all, token
from bench.report import Figures, emit, progress, rounded

POSTGRES_URL = os.environ.get(
    "ALERTBOT_BENCH_POSTGRES_URL",
    os.environ.get("ALERTBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
DETECT_TOKENS = (1_000, 10_000)
DETECT_POLLS = {1_000: (5, 20), 10_000: (2, 6)}
"""(warm-up, measured) polls per size."""
FANOUT_SIZES = {10_000: 3, 100_000: 3, 1_000_000: 2}
"""Subscriptions: changes fanned out (each adds its rows to the outbox)."""
if os.environ.get("ALERTBOT_BENCH_MAX_SUBSCRIPTIONS"):
    # Seeding and copying 1,000,000 subscriptions takes minutes on a small machine.
    FANOUT_SIZES = {size: repeats for size, repeats in FANOUT_SIZES.items()
                    if size <= int(os.environ["ALERTBOT_BENCH_MAX_SUBSCRIPTIONS"])}

Opener = Callable[[Path], Awaitable[Store]]


def _timed(base: type[Any]) -> type[Any]:
    """`base` timing the three store calls of a poll (as detect.TimedStore does for SQLite)."""

    class Timed(base):  # type: ignore[misc,valid-type]
        spent: dict[str, float]

        def _add(self, name: str, started: float) -> None:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started

        async def watched(self) -> Any:
            """Timed watched."""
            started = time.perf_counter()
            try:
                return await super().watched()
            finally:
                self._add("watched", started)

        async def load_states(self, token_ids: Sequence[int]) -> Any:
            """Timed load_states."""
            started = time.perf_counter()
            try:
                return await super().load_states(token_ids)
            finally:
                self._add("load", started)

        async def record_poll(self, states: Sequence[Any], changes: Sequence[Change],
                              now: datetime, meta: Mapping[str, str] | None = None,
                              touched: Sequence[tuple[int, Kind]] = (), *,
                              epoch: int = 0) -> Any:
            """Timed record_poll."""
            started = time.perf_counter()
            try:
                return await super().record_poll(states, changes, now, meta, touched,
                                                 epoch=epoch)
            finally:
                self._add("persist", started)

    return Timed


class Backends:
    """Opens a store of each backend holding a seeded SQLite file's rows; drops what it made."""

    def __init__(self) -> None:
        self.schemas: list[str] = []
        self.names = ["sqlite"]

    async def probe(self) -> None:
        """Measure PostgreSQL too when its server answers."""
        import asyncpg

        try:
            conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            progress(f"backends: PostgreSQL unreachable ({exc}); SQLite only")
            return
        await conn.close()
        self.names.append("postgresql")

    async def open(self, name: str, seeded: Path | None, *, timed: bool = False) -> Store:
        """A store of backend `name` with the rows of the SQLite file `seeded` (if any)."""
        if name == "sqlite":
            path = seeded if seeded is not None else Path(f"/tmp/alertbot-bench-{uuid.uuid4()}.db")
            store: Store = (_timed(SqliteStore) if timed else SqliteStore)(str(path))
            if timed:
                store.spent = {}  # type: ignore[attr-defined]
            await store.open()
            return store
        import asyncpg

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()
        self.schemas.append(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"
        # No statement timeout: a slow statement is a figure here, not a fault.
        url = f"{POSTGRES_URL}{separator}search_path={schema}&statement_timeout=0"
        store = (_timed(PostgresStore) if timed else PostgresStore)(url)
        if timed:
            store.spent = {}  # type: ignore[attr-defined]
        await store.open()
        if seeded is not None:
            source = SqliteStore(str(seeded))
            await source.open()
            try:
                started = time.perf_counter()
                copied = await copy_rows(source, store)  # type: ignore[arg-type]
                progress(f"backends: copied {sum(copied.tables.values()):,} rows to "
                         f"PostgreSQL in {time.perf_counter() - started:.1f} s")
            finally:
                await source.close()
            import asyncpg as driver

            analyse = await driver.connect(url)
            try:
                await analyse.execute("ANALYZE")
            finally:
                await analyse.close()
        return store

    async def drop(self) -> None:
        """Drop every schema made."""
        if not self.schemas:
            return
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            for schema in self.schemas:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


async def _detect(backends: Backends, workdir: Path, size: int) -> list[Figures]:
    tokens = [token(i) for i in range(1, size + 1)]
    seeded = workdir / f"backends-detect-{size}.db"
    progress(f"backends: seeding detect with {size:,} tokens")
    await detect._populate(seeded, tokens)
    store = SqliteStore(str(seeded))
    await store.open()
    # One destination watches every token, so all `size` tokens are polled.
    await subscribe_all(store, [Destination("telegram", "1999999999")], token_id=ALL_TOKENS)
    await store.close()
    warm_up, measured = DETECT_POLLS[size]
    lines = []
    for name in backends.names:
        timed = await backends.open(name, seeded if name != "sqlite" else _copy(seeded, name),
                                    timed=True)
        source = detect.SyntheticSource(tokens)
        poller = Poller(timed, source, Rules(), SystemClock(), interval=timedelta(minutes=5))
        times: list[float] = []
        parts: dict[str, list[float]] = {"watched": [], "load": [], "persist": []}
        changes: list[int] = []
        try:
            regime = {tok.token_id: tok.token_id % 2 == 0 for tok in tokens}
            for poll in range(warm_up + measured):
                if poll:
                    detect.switch_regimes(regime, poll)
                source.next = detect.readings(tokens, poll, regime)
                timed.spent.clear()  # type: ignore[attr-defined]
                started = time.perf_counter()
                report = await poller.poll_once()
                elapsed = time.perf_counter() - started
                if poll >= warm_up:
                    times.append(elapsed * 1000)
                    for part, spent in parts.items():
                        spent.append(timed.spent.get(part, 0.0) * 1000)  # type: ignore[attr-defined]
                    changes.append(len(report.changes))
        finally:
            await timed.close()
        lines.append(emit({
            "bench": "detect",
            "store": name,
            "case": f"poll of {size} tokens × 4 kinds ({name})",
            "readings": size * len(ALL_KINDS),
            "polls": measured,
            "median_ms": rounded(statistics.median(times), 2),
            "p90_ms": rounded(statistics.quantiles(times, n=10, method="inclusive")[8], 2)
            if len(times) > 1 else rounded(times[0], 2),
            "min_ms": rounded(min(times), 2),
            "max_ms": rounded(max(times), 2),
            "watched_ms": rounded(statistics.median(parts["watched"]), 2),
            "load_states_ms": rounded(statistics.median(parts["load"]), 2),
            "record_poll_ms": rounded(statistics.median(parts["persist"]), 2),
            "detect_and_rest_ms": rounded(statistics.median(
                t - sum(p[i] for p in parts.values()) for i, t in enumerate(times)), 2),
            "changes": round(statistics.mean(changes)),
            "target_ms": detect.TARGET_MS,
        }))
    return lines


def _copy(seeded: Path, name: str) -> Path:
    """A private copy of a seeded SQLite file, so each measurement starts from the same rows.

    Through SQLite's backup API: the seeding helpers may leave rows in the write-ahead log.
    """
    target = seeded.with_name(f"{seeded.stem}-{name}.db")
    source, copy = sqlite3.connect(seeded), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


async def _fanout(backends: Backends, workdir: Path, size: int, repeats: int) -> list[Figures]:
    seeded = workdir / f"backends-fanout-{size}.db"
    progress(f"backends: seeding fan-out with {size:,} subscriptions")
    subscriptions = await fanout.seed(seeded, size)
    lines = []
    for name in backends.names:
        store = await backends.open(name, seeded if name != "sqlite" else _copy(seeded, name))
        try:
            times, rows = await fanout.time_fanouts(store, repeats)
        finally:
            await store.close()
        lines.append(fanout.figures("fanout", f"1 change to {size:,} subscriptions ({name})",
                                    subscriptions, times, rows, store=name))
    return lines


async def run(workdir: Path) -> list[Figures]:
    """Every case once per backend, SQLite first."""
    backends = Backends()
    await backends.probe()
    lines: list[Figures] = []
    try:
        for size in DETECT_TOKENS:
            lines += await _detect(backends, workdir, size)
        for size, repeats in FANOUT_SIZES.items():
            lines += await _fanout(backends, workdir, size, repeats)
        for name in backends.names:
            folder = workdir / f"latency-{name}"
            folder.mkdir(exist_ok=True)

            async def opener(path: Path, name: str = name) -> Store:
                return await backends.open(name, None if name != "sqlite" else path)

            for line in await latency.run(folder, opener=opener):
                line["store"] = name
                line["case"] = f"{line['case']} ({name})"
                lines.append(line)
    finally:
        await backends.drop()
    return lines
