"""chart: render time and PNG size of the grade-history chart, and a cold /chart end to end.

Wall time (the target) and the thread's CPU time are both reported: on a shared machine the
difference is time spent waiting for a core, not drawing.

Cases: 30, 90 and 365 daily points (two grade lines, flips every ~9 days, a gap), each
drawn many times after a warm-up; the figures are the time of `build_chart` + render +
PNG encoding. "cold chart" times one /chart answer from an empty cache through the demo
source (history read, drawn in the worker thread), the path a Discord command takes after
its immediate defer.
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.charts.pillow import PillowRenderer
from alertbot.domain.charts import Flip, History, Point, build_chart
from alertbot.domain.models import Token
from alertbot.ports.clock import SystemClock
from alertbot.services.charts import ChartService
from alertbot.sources.replay import ReplaySource, load_demo_data
from bench.report import Figures, emit, progress, rounded

POINTS = (30, 90, 365)
WARM_UP = 5
RUNS = 100
TARGET_MS = 150.0
TARGET_KB = 150.0
_END = datetime(2026, 11, 30, tzinfo=UTC)
_TOKEN = Token(3375, "BTC", "Bitcoin", "bitcoin")


def history(points: int) -> History:
    """A busy history: both grades move every day, flips every 9 days, one 5-day gap."""
    start = _END - timedelta(days=points)
    days = [start + timedelta(days=i + 1) for i in range(points) if not 10 <= i < 15]
    tm = tuple(Point(d, 50 + 35 * math.sin(i / 6) + 5 * math.sin(i * 1.7))
               for i, d in enumerate(days))
    fundamental = tuple(Point(d, 70 + 10 * math.sin(i / 20)) for i, d in enumerate(days))
    flips = tuple(Flip(d, i % 2 == 0) for i, d in enumerate(days[::9]))
    return History(_TOKEN, start, _END, tm, fundamental, flips)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def run(tmp: Path) -> list[Figures]:
    """Render each size RUNS times; then one cold /chart through the demo source."""
    renderer = PillowRenderer()
    lines: list[Figures] = []
    for points in POINTS:
        data = history(points)
        png = b""
        for _ in range(WARM_UP):
            png = renderer.render(build_chart(data))
        times: list[float] = []
        cpu: list[float] = []
        for _ in range(RUNS):
            started, started_cpu = time.perf_counter(), time.thread_time()
            png = renderer.render(build_chart(data))
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
        lines.append(emit({
            "bench": "chart", "case": f"{points} points", "runs": RUNS,
            "p50_ms": rounded(statistics.median(times), 1),
            "p99_ms": rounded(_percentile(times, 0.99), 1),
            "max_ms": rounded(max(times), 1), "png_kb": rounded(len(png) / 1024, 1),
            "cpu_p50_ms": rounded(statistics.median(cpu), 1),
            "cpu_p99_ms": rounded(_percentile(cpu, 0.99), 1),
            "target_ms": TARGET_MS, "target_kb": TARGET_KB,
        }))
        progress(f"chart {points} points: p99 {lines[-1]['p99_ms']} ms, "
                 f"{lines[-1]['png_kb']} KB")
    clock = SystemClock()
    replay = ReplaySource(load_demo_data(), started_wall=clock.now())
    token = (await replay.resolve("BTC"))[0]
    service = ChartService(replay, PillowRenderer, clock)  # renderer created on first use
    started = time.perf_counter()
    image = await service.chart(token, 90)
    cold_ms = (time.perf_counter() - started) * 1000
    lines.append(emit({
        "bench": "chart", "case": "cold /chart 90d (demo source)", "runs": 1,
        "p50_ms": rounded(cold_ms, 1), "p99_ms": rounded(cold_ms, 1),
        "max_ms": rounded(cold_ms, 1), "png_kb": rounded(len(image.png) / 1024, 1),
        "target_ms": 3000.0, "target_kb": TARGET_KB,
    }))
    return lines
