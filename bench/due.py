"""due: one delivery lane pass's `due_alerts` read with 10, 100 and 1,000 held rows."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.models import ALL_TOKENS, Destination, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys
from alertbot.store.sqlite import SqliteStore
from bench.fixtures import flip, open_store, subscribe_all, token
from bench.report import Figures, emit, progress, rounded

SIZES = (10, 100, 1_000)
REPEATS = 20
HISTORY = 1_000
"""Finished rows the destination already had: a pass must not pay for its whole history."""
TOKENS = 25
"""Held rows spread over this many tokens, so most have a next change in their series."""
CHAT = Destination("telegram", "1000000000")


async def seed(path: Path, held: int, now: datetime) -> SqliteStore:
    """CHAT with HISTORY suppressed rows, then `held` rows held by the rate limit until `now`."""
    store = await open_store(path)
    start = now - timedelta(days=2)
    await subscribe_all(store, [CHAT], token_id=ALL_TOKENS, since=start - timedelta(hours=1))
    for first, count, at in ((0, HISTORY, start), (HISTORY, held, now - timedelta(hours=1))):
        changes = [flip(token(1 + i % TOKENS), detected=at + timedelta(seconds=i), day=i,
                        to=1.0 if (i // TOKENS) % 2 else -1.0)
                   for i in range(first, first + count)]
        await store.record_poll([], changes, at)
        rows = [a.row_id for a in await store.due_alerts(CHAT, now)]
        if first == 0:
            plan = Plan(suppressed=[Decision(r, Reason.MUTED) for r in rows])
        else:
            plan = Plan(held=[Decision(r, Reason.HELD_RATE, until=now) for r in rows])
        await store.apply_plan(CHAT, plan, PlanKeys(), at)
    return store


async def run(workdir: Path) -> list[Figures]:
    """Time `due_alerts` for a destination whose held group is due (the lane's first read)."""
    return [await measure(workdir, size) for size in SIZES]


async def measure(workdir: Path, size: int, bench: str = "due") -> Figures:
    """`due_alerts` of one destination holding `size` rows."""
    progress(f"{bench}: seeding {size:,} held rows")
    now = datetime.now(UTC)
    store = await seed(workdir / f"{bench}-{size}.db", size, now)
    try:
        times: list[float] = []
        returned = 0
        for _ in range(REPEATS):
            started = time.perf_counter()
            returned = len(await store.due_alerts(CHAT, now))
            times.append(time.perf_counter() - started)
    finally:
        await store.close()
    median = statistics.median(times)
    return emit({
        "bench": bench,
        "case": f"{size:,} held rows, {HISTORY:,} finished",
        "held_rows": size,
        "returned": returned,
        "repeats": REPEATS,
        "median_ms": rounded(median * 1000, 2),
        "min_ms": rounded(min(times) * 1000, 2),
        "max_ms": rounded(max(times) * 1000, 2),
        "us_per_row": rounded(median * 1e6 / size, 1),
    })
