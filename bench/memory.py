"""memory: peak RSS of `alertbot run` with 100,000 subscriptions, sampled with psutil.

The process runs the bundled demo source (so changes keep fanning out) with Telegram pointed
at the strict fake in this process, so the dispatcher delivers while it is measured. A run
with no subscriptions at all gives the baseline the 100,000 are compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from alertbot.domain.models import Destination, Policy
from alertbot.sources.replay import ReplaySource, load_demo_data
from bench.fixtures import clone_subscriptions, open_store, subscribe_all
from bench.report import Figures, emit, progress, rounded
from tests.e2e.process import Alertbot, clean_env
from tests.fakes.telegram_api import FakeTelegram

SUBSCRIPTIONS = 100_000
RUN_S = 25.0
BASELINE_S = 12.0
SAMPLE_S = 0.1
STEADY_AFTER_S = 10.0
"""Samples after this many seconds make the steady figure (start-up is over by then)."""
TARGET_MB = 150.0
MB = 1024 * 1024


async def seed(path: Path, count: int) -> int:
    """`count` Telegram private chats, each subscribed to one demo token (default policy)."""
    store = await open_store(path)
    if not count:
        await store.close()
        return 0
    source = ReplaySource(load_demo_data(), started_wall=datetime.now(UTC))
    tokens = await source.universe()
    templates = [Destination("telegram", str(700_000_000 + i)) for i in range(len(tokens))]
    for template, tok in zip(templates, tokens, strict=True):
        await subscribe_all(store, [template], token_id=tok.token_id, policy=Policy())
    await store.close()
    per_token = count // len(tokens) - 1
    total = 0
    for n, template in enumerate(templates):
        first = 800_000_000 + n * per_token
        total = clone_subscriptions(path, template, [str(first + i) for i in range(per_token)])
    return total


def _outbox(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT COUNT(*), COALESCE(SUM(state = 'sent'), 0) FROM outbox")
        total, sent = rows.fetchone()
    return int(total), int(sent)


def _polled(path: Path) -> bool:
    """Whether a poll has committed readings yet (read-only, beside the running process)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return bool(db.execute("SELECT EXISTS (SELECT 1 FROM readings)").fetchone()[0])
    except sqlite3.Error:  # not created or migrated yet
        return False


@dataclass(frozen=True, slots=True)
class Sampled:
    """RSS samples (seconds since start, MB) of one run and how it ended."""

    samples: list[tuple[float, float]]
    seconds: float
    delivered: int
    exit_code: int
    stderr: str
    first_poll_s: float | None = None
    """Process start to the first committed poll (None: none within the run)."""


async def sample_run(folder: Path, path: Path, seconds: float) -> Sampled:
    """`alertbot run` on this database for `seconds`, its RSS sampled every SAMPLE_S."""
    async with FakeTelegram() as fake:
        env = clean_env(folder, ALERTBOT_DATABASE_URL=f"sqlite:///{path}", ALERTBOT_DEMO="1",
                        TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.root,
                        ALERTBOT_LOG_LEVEL="WARNING")
        started = time.monotonic()
        bot = await Alertbot(["run"], env, folder).start()
        if bot.proc is None:
            raise RuntimeError("alertbot did not start")
        process = psutil.Process(bot.proc.pid)
        samples: list[tuple[float, float]] = []
        first_poll: float | None = None
        while time.monotonic() - started < seconds and bot.proc.returncode is None:
            try:
                samples.append((time.monotonic() - started, process.memory_info().rss / MB))
            except psutil.NoSuchProcess:
                break
            if first_poll is None and _polled(path):
                first_poll = time.monotonic() - started
            await asyncio.sleep(SAMPLE_S)
        code = await bot.stop()
        return Sampled(samples, time.monotonic() - started, len(fake.sent), code, bot.stderr,
                       first_poll)


async def measure(workdir: Path, subscriptions: int, seconds: float,
                  bench: str = "memory") -> Figures:
    """Seed, run, and print one memory line."""
    folder = workdir / f"{bench}-{subscriptions}"
    folder.mkdir(exist_ok=True)
    path = folder / "alertbot.db"
    progress(f"{bench}: {subscriptions:,} subscriptions, `alertbot run` for {seconds:.0f} s")
    seeded = await seed(path, subscriptions)
    run = await sample_run(folder, path, seconds)
    rows, sent = _outbox(path)
    peak = max(run.samples, key=lambda s: s[1], default=(0.0, 0.0))
    late = [rss for at, rss in run.samples if at >= STEADY_AFTER_S]
    figures: Figures = {
        "bench": bench,
        "case": f"alertbot run, {seeded:,} subscriptions",
        "subscriptions": seeded,
        "seconds": rounded(run.seconds, 1),
        "samples": len(run.samples),
        "first_poll_s": None if run.first_poll_s is None else rounded(run.first_poll_s, 2),
        "peak_rss_mb": rounded(peak[1], 1),
        "peak_at_s": rounded(peak[0], 1),
        "steady_rss_mb": rounded(statistics.median(late) if late else 0.0, 1),
        "end_rss_mb": rounded(run.samples[-1][1] if run.samples else 0.0, 1),
        "outbox_rows": rows,
        "delivered": run.delivered,
        "sent_rows": sent,
        "exit_code": run.exit_code,
        "target_mb": TARGET_MB,
    }
    if run.exit_code != 0 or "Traceback" in run.stderr:
        figures["stderr_tail"] = run.stderr[-2000:]
    return emit(figures)


async def run(workdir: Path) -> list[Figures]:
    """The baseline (no subscriptions), then 100,000 subscriptions."""
    return [await measure(workdir, 0, BASELINE_S),
            await measure(workdir, SUBSCRIPTIONS, RUN_S)]
