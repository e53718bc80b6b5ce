"""`python -m bench.roundtrips`: SQL statements and aiosqlite round trips per change.

The latency bench's setup (one flipping reading at a time, each change to its own chat of 40,
unthrottled, SQLite), traced: a SQLite trace callback records every statement and a wrapper
around aiosqlite's queue counts every hand-off to its thread (a statement executed, a row
fetched, a cursor closed are one each); hand-offs queued while another is in flight share its
wait. "On the path" are those made between the poll's commit (`ingest` returned) and the
Telegram fake receiving the request. Counts, not timings: they hardly depend on the load.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from bench.fixtures import open_store
from bench.latency import SPACING_S, flip_one_at_a_time

CHANGES = 200
WARM_UP = 10


def _label(sql: str) -> str:
    """A short name of a statement: its verb and the first table or column it names."""
    words = re.sub(r"\s+", " ", sql.strip()).split(" ")
    head = " ".join(words[:3]) if words[0].upper() in ("BEGIN", "WITH") else " ".join(words[:2])
    if words[0].upper() == "SELECT":
        table = next((words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() == "FROM"), "")
        return f"SELECT {words[1]} … FROM {table}"[:60]
    return head[:60]


async def measure(workdir: Path) -> None:
    """Run the traced changes and print the counts."""
    statements: list[tuple[float, str]] = []
    handoffs: list[float] = []
    original: Callable[..., Any] = aiosqlite.Connection._execute

    waits: list[float] = []
    inflight = 0

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal inflight
        handoffs.append(time.time())
        if not inflight:
            # Nothing else queued: the loop waits for this one alone (a new round trip).
            waits.append(handoffs[-1])
        inflight += 1
        try:
            return await original(self, fn, *args, **kwargs)
        finally:
            inflight -= 1

    store = await open_store(workdir / "roundtrips.db")
    db = store._conn  # the bench's own store: tracing is not part of the Store port
    await db.set_trace_callback(lambda sql: statements.append((time.time(), sql)))
    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        # Let the lanes of the last change end, so its whole cost is counted.
        measured = await flip_one_at_a_time(store, CHANGES, WARM_UP, settle=0.5)
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
        await store.close()
    started, ended = measured.started, measured.ended
    paths = [(f.committed, f.arrived) for f in measured.flips]
    detected = [f.detected for f in measured.flips]
    total = [s for t, s in statements if started <= t <= ended]
    on_path = [s for t, s in statements if any(a < t <= b for a, b in paths)]
    trips = [t for t in handoffs if started <= t <= ended]
    trips_on_path = [t for t in handoffs if any(a < t <= b for a, b in paths)]
    waits_on_path = [t for t in waits if any(a < t <= b for a, b in paths)]
    n = len(paths)
    print(f"{n} changes after {WARM_UP} warm-up ones, one every {SPACING_S * 1000:.0f} ms")
    print(f"per change: {len(total) / n:.1f} SQL statements, {len(trips) / n:.1f} round trips"
          " to aiosqlite's thread (statements include the poll's own)")
    print(f"on the path (poll committed -> request received): {len(on_path) / n:.1f} statements,"
          f" {len(trips_on_path) / n:.1f} round trips, {len(waits_on_path) / n:.1f} waits"
          " (hand-offs queued together wait once)")
    # Where the time of each change went: up to the path's last statement (the store's part:
    # the claim's COMMIT) and from there to the request (render, pacer, client, fake).
    poll_ms = [(a - d) * 1000 for d, (a, _) in zip(detected, paths, strict=True)]
    store_ms, rest_ms = [], []
    for a, b in paths:
        last = max((t for t, _ in statements if a < t <= b), default=a)
        store_ms.append((last - a) * 1000)
        rest_ms.append((b - last) * 1000)
    cuts = [statistics.quantiles(x, n=100, method="inclusive") for x in (store_ms, rest_ms)]
    poll_cuts = statistics.quantiles(poll_ms, n=100, method="inclusive")
    print(f"detected -> poll committed (detect, persist, fan-out): p50"
          f" {statistics.median(poll_ms):.2f} p99 {poll_cuts[98]:.2f} ms")
    print(f"commit -> last statement (the store's part): p50 {statistics.median(store_ms):.2f}"
          f" p99 {cuts[0][98]:.2f} ms; last statement -> request: p50"
          f" {statistics.median(rest_ms):.2f} p99 {cuts[1][98]:.2f} ms"
          f" (load average {os.getloadavg()[0]:.2f})")
    print("statements on the path, per change:")
    for label, count in Counter(_label(s) for s in on_path).most_common():
        print(f"  {count / n:5.2f}  {label}")


def main() -> int:
    """Run in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="alertbot-roundtrips-") as tmp:
        asyncio.run(measure(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
