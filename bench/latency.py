"""latency: change detected -> sendMessage received by the Telegram fake, unthrottled."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.detect import Rules
from alertbot.domain.models import Destination, Kind, Reading
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.ports.store import Store
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.pacing import Pacer
from alertbot.services.poller import Poller
from bench.detect import SyntheticSource
from bench.fixtures import open_store, subscribe_all, token
from bench.report import Figures, emit, progress, rounded
from tests.fakes.telegram_api import FakeTelegram

CHATS = 40
"""Each change goes to one chat in turn, so no chat nears 1 message/s: nothing is paced."""
WARM_UP = 10
SAMPLES = 200
SPACING_S = 0.05
"""20 changes per second overall, under Telegram's 30/s."""
TARGET_MS = 50.0
_START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Flip:
    """One change of the run, in epoch seconds."""

    chat: int
    detected: float
    """`Change.detected_at`."""
    committed: float
    """When the poll that found it had committed (`ingest` returned)."""
    arrived: float
    """When the Telegram fake received its request."""


@dataclass(frozen=True, slots=True)
class FlipRun:
    """The changes after the warm-up, and the span they were measured in."""

    flips: list[Flip]
    started: float
    """The warm-up's last poll committed."""
    ended: float
    """Every request arrived (and `settle` seconds more passed)."""
    rate_limited: int


async def flip_one_at_a_time(store: Store, changes: int, warm_up: int,
                             settle: float = 0.0) -> FlipRun:
    """Flip one token at a time through the real Poller, Dispatcher and Telegram notifier.

    Each change goes to its own chat of `CHATS` in turn (nothing is paced), one every
    `SPACING_S`; the first `warm_up` are not reported. `store` stays open.
    """
    tokens = [token(i + 1) for i in range(CHATS)]
    chats = [Destination("telegram", str(600_000_000 + i)) for i in range(CHATS)]
    for destination, tok in zip(chats, tokens, strict=True):
        await subscribe_all(store, [destination], token_id=tok.token_id)
    # Arrival times in epoch seconds, comparable with Change.detected_at.
    async with FakeTelegram(clock=time.time) as fake:
        pacer = Pacer()
        notifier = TelegramNotifier.connect(fake.token, fake.root, pacer=pacer)
        dispatcher = Dispatcher(store, {"telegram": notifier}, SystemClock(), pacer=pacer)
        poller = Poller(store, SyntheticSource(tokens), Rules(), SystemClock(),
                        interval=timedelta(minutes=5), on_committed=dispatcher.wake)
        trend = {t.token_id: -1.0 for t in tokens}
        await poller.ingest([Reading(t, Kind.SIGNAL, -1.0, _START) for t in tokens])
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        marks: list[tuple[int, float, float]] = []
        started = time.time()
        try:
            for i in range(warm_up + changes):
                tok = tokens[i % CHATS]
                trend[tok.token_id] *= -1
                reading = Reading(tok, Kind.SIGNAL, trend[tok.token_id],
                                  _START + timedelta(days=i + 1))
                report = await poller.ingest([reading])
                [change] = report.changes
                marks.append((int(chats[i % CHATS].chat_id),
                              change.detected_at.timestamp(), time.time()))
                if i == warm_up - 1:
                    started = time.time()
                await asyncio.sleep(SPACING_S)
            await fake.wait_until(lambda: len(fake.sent) >= len(marks), timeout=30)
            await asyncio.sleep(settle)
            ended = time.time()
        finally:
            stop.set()
            await task
            await notifier.close()
        seen: dict[int, int] = {}
        flips = []
        for i, (chat, detected, committed) in enumerate(marks):
            k = seen[chat] = seen.get(chat, -1) + 1
            if i >= warm_up:
                flips.append(Flip(chat, detected, committed, fake.sent_to(chat)[k].timestamp))
        return FlipRun(flips, started, ended, fake.rate_limited)


async def run(workdir: Path,
              opener: Callable[[Path], Awaitable[Store]] | None = None) -> list[Figures]:
    """Ingest one flipping reading at a time; time each change until its message arrives.

    `opener` opens the store (default: SQLite in `workdir`), so other stores can be measured.
    """
    store = await (opener or open_store)(workdir / "latency.db")
    progress(f"latency: {WARM_UP + SAMPLES} changes, one every {SPACING_S * 1000:.0f} ms")
    try:
        measured = await flip_one_at_a_time(store, SAMPLES, WARM_UP)
    finally:
        await store.close()
    latencies = [(f.arrived - f.detected) * 1000 for f in measured.flips]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return [emit({
        "bench": "latency",
        "case": "change detected → Telegram request received",
        "samples": len(latencies),
        "p50_ms": rounded(statistics.median(latencies), 2),
        "p90_ms": rounded(cuts[89], 2),
        "p99_ms": rounded(cuts[98], 2),
        "max_ms": rounded(max(latencies), 2),
        "429s": measured.rate_limited,
        "target_ms": TARGET_MS,
    })]
