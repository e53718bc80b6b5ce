"""Result lines: one JSON object per case, and the readable table printed at the end."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Figures = dict[str, Any]
"""One case's figures; every line has "bench" (its NAME) and "case"."""


def emit(figures: Figures) -> Figures:
    """Print a case's figures as one JSON line (flushed, so progress shows while running)."""
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return figures


def rounded(value: float, digits: int = 3) -> float:
    """A figure rounded for printing (JSON keeps it a number)."""
    return round(value, digits)


def progress(text: str) -> None:
    """A status line on stderr, so stdout stays machine-readable."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def grid(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width columns; the last column is left unpadded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headings)]

    def fmt(cells: Iterable[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(headings), fmt("-" * w for w in widths), *map(fmt, rows)])


def _target_row(line: Mapping[str, Any]) -> tuple[str, str, str, str, str] | None:
    """(bench, case, result, target, details) of a line measured against DESIGN §8."""
    bench = line["bench"]
    if bench == "detect":
        return (bench, line["case"], f"{line['median_ms']:.1f} ms median",
                f"≤ {line['target_ms']:.0f} ms",
                f"p90 {line['p90_ms']:.0f}, max {line['max_ms']:.0f} ms; of the median: load "
                f"{line['load_states_ms']:.0f}, detect {line['detect_and_rest_ms']:.0f}, "
                f"commit {line['record_poll_ms']:.0f}, watched {line['watched_ms']:.0f} ms")
    if bench == "fanout":
        return (bench, line["case"], f"{line['median_s']:.3f} s median",
                f"≤ {line['target_s']:.0f} s (100k)",
                f"{line['rows_per_s']:,} rows/s; max {line['max_s']:.3f} s")
    if bench == "delivery":
        ratio = line["rate_vs_ceiling"]
        shown = f"{ratio:.1%} of ceiling" if ratio is not None else "no rate"
        return (bench, f"{line['platform']} {line['shape']}", shown,
                f"≥ {line['target']:.0%}, 0 429s",
                f"{line['429s']} 429s, {line['lost']} lost; {line['elapsed_s']:.1f} s "
                f"(ideal {line['ideal_s']:.1f} s), 90 % by {line['t90_s']:.1f} s")
    if bench == "due":
        return (bench, line["case"], f"{line['median_ms']:.2f} ms median",
                "no query per row",
                f"{line['us_per_row']:.1f} µs per row; max {line['max_ms']:.2f} ms")
    if bench == "latency":
        return (bench, line["case"], f"p99 {line['p99_ms']:.1f} ms",
                f"p99 ≤ {line['target_ms']:.0f} ms",
                f"p50 {line['p50_ms']:.1f} ms, max {line['max_ms']:.1f} ms, "
                f"{line['samples']} changes")
    if bench == "memory":
        return (bench, line["case"], f"peak {line['peak_rss_mb']:.1f} MB",
                f"≤ {line['target_mb']:.0f} MB",
                f"peak at {line['peak_at_s']:.1f} s; steady {line['steady_rss_mb']:.1f} MB; "
                + ("no poll yet; " if line.get("first_poll_s") is None
                   else f"first poll at {line['first_poll_s']:.1f} s; ") +
                f"{line['outbox_rows']:,} outbox rows, {line['delivered']:,} delivered")
    if bench == "chart":
        return (bench, line["case"], f"p99 {line['p99_ms']:.1f} ms, {line['png_kb']:.0f} KB",
                f"p99 ≤ {line['target_ms']:.0f} ms, ≤ {line['target_kb']:.0f} KB",
                f"p50 {line['p50_ms']:.1f} ms, max {line['max_ms']:.1f} ms, {line['runs']} runs"
                + (f"; CPU p50 {line['cpu_p50_ms']:.1f}, p99 {line['cpu_p99_ms']:.1f} ms"
                   if "cpu_p99_ms" in line else ""))
    return None


_BENCH_ORDER = ("detect", "fanout", "delivery", "due", "latency", "memory", "peers", "growth",
                "chart")


def _order(line: Mapping[str, Any]) -> tuple[int, str, int, int]:
    """Benchmarks in their usual order; bursts by platform, size, then spread."""
    spread = len(str(line.get("shape", "")))
    return (_BENCH_ORDER.index(line["bench"]), str(line.get("platform", "")),
            int(line.get("messages", line.get("subscriptions", 0))), spread)


def _burst_row(line: Mapping[str, Any]) -> tuple[str, ...]:
    ratio = line["rate_vs_ceiling"]
    rate = line["rate_per_s"]
    return (line["shape"], line["sender"], f"{line['delivered']}/{line['messages']}",
            str(line["lost"]), str(line["429s"]), f"{line['elapsed_s']:.1f} s",
            "—" if rate is None else f"{rate:.2f}/s",
            "—" if ratio is None else f"{ratio:.1%}")


def table(lines: Sequence[Mapping[str, Any]]) -> str:
    """Readable summary: targets, the Telegram senders side by side, the noisy histories."""
    parts = []
    targets = [row for line in sorted(lines, key=_order)
               if (row := _target_row(line)) is not None]
    if targets:
        parts.append("DESIGN §8 targets\n" + grid(
            ("bench", "case", "result", "target", "details"), targets))
    order = {"alertbot": 0, "ptb AIORateLimiter": 1, "apprise": 2, "naive loop": 3,
             "discord.py own limits": 1, "apprise webhooks": 2, "naive aiohttp loop": 3}
    for platform, title in (("telegram", "Telegram"), ("discord", "Discord")):
        bursts = [line for line in lines if "shape" in line and line["platform"] == platform]
        if any(line["sender"] != "alertbot" for line in bursts):
            bursts.sort(key=lambda x: (x["messages"], len(x["shape"]),
                                       order.get(x["sender"], 9)))
            parts.append(f"{title} senders side by side (strict fake)\n" + grid(
                ("shape", "sender", "delivered", "lost", "429s", "span", "rate", "of ceiling"),
                [_burst_row(line) for line in bursts]))
    curves = [line for line in lines if line["bench"] == "growth" and "exponents" in line]
    if curves:
        parts.append("Growth (k: cost ∝ sizeᵏ between two sizes)\n" + grid(
            ("curve", "sizes", "costs", "k per step"),
            [(line["case"].removeprefix("curve: "),
              " → ".join(f"{n:,}" for n in line["sizes"]),
              " → ".join(f"{c:,.2f}" for c in line["costs"]) + f" {line['unit']}",
              ", ".join("—" if k is None else f"{k:.2f} {v}"
                        for k, v in zip(line["exponents"], line["verdicts"], strict=True)))
             for line in curves]))
    histories = [line for line in lines if "history" in line]
    if histories:
        parts.append("Noisy histories, one channel subscribed to everything\n" + grid(
            ("history", "sender", "msg/channel/day", "details"),
            [(line["history"], line["policy"], f"{line['messages_per_channel_day']:.1f}",
              line["details"]) for line in histories]))
    return "\n\n".join(parts)
