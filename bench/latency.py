"""latency: change detected -> sendMessage received by the Telegram fake, unthrottled."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
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


async def run(workdir: Path,
              opener: Callable[[Path], Awaitable[Store]] | None = None) -> list[Figures]:
    """Ingest one flipping reading at a time; time each change until its message arrives.

    `opener` opens the store (default: SQLite in `workdir`), so other stores can be measured.
    """
    tokens = [token(i + 1) for i in range(CHATS)]
    chats = [Destination("telegram", str(600_000_000 + i)) for i in range(CHATS)]
    store = await (opener or open_store)(workdir / "latency.db")
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
        detected: list[tuple[int, float]] = []
        progress(f"latency: {WARM_UP + SAMPLES} changes, one every {SPACING_S * 1000:.0f} ms")
        try:
            for i in range(WARM_UP + SAMPLES):
                tok = tokens[i % CHATS]
                trend[tok.token_id] *= -1
                reading = Reading(tok, Kind.SIGNAL, trend[tok.token_id],
                                  _START + timedelta(days=i + 1))
                report = await poller.ingest([reading])
                [change] = report.changes
                detected.append((int(chats[i % CHATS].chat_id),
                                 change.detected_at.timestamp()))
                await asyncio.sleep(SPACING_S)
            await fake.wait_until(lambda: len(fake.sent) >= len(detected), timeout=30)
        finally:
            stop.set()
            await task
            await notifier.close()
            await store.close()
        seen: dict[int, int] = {}
        latencies = []
        for i, (chat, at) in enumerate(detected):
            k = seen[chat] = seen.get(chat, -1) + 1
            if i >= WARM_UP:
                latencies.append((fake.sent_to(chat)[k].timestamp - at) * 1000)
        rate_limited = fake.rate_limited
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return [emit({
        "bench": "latency",
        "case": "change detected → Telegram request received",
        "samples": len(latencies),
        "p50_ms": rounded(statistics.median(latencies), 2),
        "p90_ms": rounded(cuts[89], 2),
        "p99_ms": rounded(cuts[98], 2),
        "max_ms": rounded(max(latencies), 2),
        "429s": rate_limited,
        "target_ms": TARGET_MS,
    })]
