"""fan-out: one change to 10,000 and 100,000 subscriptions into the outbox."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from alertbot.domain.models import ALL_TOKENS, Destination
from alertbot.ports.store import Store
from bench.fixtures import clone_subscriptions, flip, open_store, subscribe_all, token
from bench.report import Figures, emit, progress, rounded

SIZES = (10_000, 100_000)
REPEATS = 3
"""Changes fanned out per size; each adds its rows to an outbox already holding the previous."""
EVERY_NTH_ALL = 10
"""One destination in ten subscribes to every token (token 0) rather than to this one."""
TARGET_S = 1.0
TOKEN = token(1)


async def seed(path: Path, size: int) -> int:
    """`size` destinations subscribed to TOKEN, a tenth of them through an `all` subscription."""
    store = await open_store(path)
    one = Destination("telegram", "1000000000")
    every = Destination("telegram", "1000000001")
    await subscribe_all(store, [one], token_id=TOKEN.token_id)
    await subscribe_all(store, [every], token_id=ALL_TOKENS)
    await store.close()
    chats = [str(1_000_000_002 + i) for i in range(size - 2)]
    clone_subscriptions(path, every, [c for i, c in enumerate(chats) if i % EVERY_NTH_ALL == 0])
    return clone_subscriptions(path, one, [c for i, c in enumerate(chats)
                                           if i % EVERY_NTH_ALL != 0])


async def run(workdir: Path) -> list[Figures]:
    """Time record_poll of one new change (the single INSERT … SELECT fan-out)."""
    return [await measure(workdir, size) for size in SIZES]


async def time_fanouts(store: Store, repeats: int) -> tuple[list[float], int]:
    """Fan one change out `repeats` times; the seconds of each and the rows of the last."""
    times: list[float] = []
    rows = 0
    for repeat in range(repeats):
        now = datetime.now(UTC)
        change = flip(TOKEN, detected=now, day=repeat, to=1.0 if repeat % 2 else -1.0)
        started = time.perf_counter()
        result = await store.record_poll([], [change], now)
        times.append(time.perf_counter() - started)
        rows = result.outbox_rows
    return times, rows


def figures(bench: str, case: str, subscriptions: int, times: list[float], rows: int,
            **extra: object) -> Figures:
    """The JSON line of one fan-out case."""
    median = statistics.median(times)
    return emit({
        "bench": bench,
        **extra,
        "case": case,
        "subscriptions": subscriptions,
        "outbox_rows": rows,
        "repeats": len(times),
        "median_s": rounded(median, 4),
        "min_s": rounded(min(times), 4),
        "max_s": rounded(max(times), 4),
        "rows_per_s": round(rows / median),
        "target_s": TARGET_S,
    })


async def measure(workdir: Path, size: int, repeats: int = REPEATS,
                  bench: str = "fanout") -> Figures:
    """One change fanned out to `size` subscriptions, `repeats` times."""
    path = workdir / f"{bench}-{size}.db"
    progress(f"{bench}: seeding {size:,} subscriptions")
    subscriptions = await seed(path, size)
    store = await open_store(path)
    try:
        times, rows = await time_fanouts(store, repeats)
    finally:
        await store.close()
    return figures(bench, f"1 change to {size:,} subscriptions", subscriptions, times, rows)
