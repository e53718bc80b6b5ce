"""growth: how each cost grows with the size of the community, printed and drawn.

Four curves, each measured at three sizes with the same code as its own benchmark:
detect+persist of one poll (1k, 5k, 20k tokens), fan-out of one change (10k, 100k, 1M
subscriptions), peak RSS of `alertbot run` (0, 100k, 1M subscriptions) and one delivery
lane's `due_alerts` read (10, 100, 1,000 held rows for one destination). Each step is
judged by its exponent: cost ∝ sizeᵏ between two sizes, so k ≈ 1 is linear, k < 1 grows
slower than the size and k > 1 faster. The picture goes to docs/images/growth.png.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import detect, due, fanout, memory
from bench.report import Figures, emit, progress, rounded

IMAGE = Path(__file__).resolve().parent.parent / "docs" / "images" / "growth.png"
TOKENS = (1_000, 5_000, 20_000)
DETECT_POLLS = 8
SUBSCRIPTIONS = (10_000, 100_000, 1_000_000)
FANOUT_REPEATS = 2
RSS_SUBSCRIPTIONS = (0, 100_000, 1_000_000)
RSS_SECONDS = (memory.BASELINE_S, memory.RUN_S, memory.RUN_S)
HELD_ROWS = (10, 100, 1_000)


@dataclass(frozen=True, slots=True)
class Curve:
    """One cost measured at growing sizes."""

    name: str
    size_label: str
    cost_label: str
    sizes: tuple[int, ...]
    costs: tuple[float, ...]
    baseline: float = 0.0
    """Subtracted before judging the growth (the RSS of a process with nothing to hold)."""


def exponent(small: tuple[int, float], large: tuple[int, float]) -> float | None:
    """k in cost ∝ sizeᵏ between two measured points (None when it is undefined)."""
    (n1, c1), (n2, c2) = small, large
    if min(n1, n2, c1, c2) <= 0 or n1 == n2:
        return None
    return math.log(c2 / c1) / math.log(n2 / n1)


def verdict(k: float | None) -> str:
    """A word for an exponent."""
    if k is None:
        return "—"
    if k < 0.3:
        return "flat"
    if k < 0.85:
        return "sublinear"
    if k <= 1.2:
        return "linear"
    return "worse than linear"


def steps(curve: Curve) -> list[str]:
    """One line per step: the sizes, the costs, the exponent and what it means."""
    out = []
    points = [(n, c - curve.baseline) for n, c in zip(curve.sizes, curve.costs, strict=True)]
    for (n1, c1), (n2, c2) in itertools.pairwise(points):
        k = exponent((n1, c1), (n2, c2))
        shown = "k undefined" if k is None else f"k = {k:.2f}"
        out.append(f"  {n1:>9,} → {n2:>9,} {curve.size_label}: {c1:>9.2f} → {c2:>9.2f} "
                   f"{curve.cost_label} ({shown}, {verdict(k)})")
    return out


def draw(curves: Sequence[Curve], path: Path) -> None:
    """The curves on log-log axes (RSS on a linear one), written as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    for ax, curve in zip(axes.flat, curves, strict=False):
        linear = curve.baseline > 0 or 0 in curve.sizes
        ax.plot(curve.sizes, curve.costs, marker="o", label="measured")
        if not linear:
            first_n, first_c = curve.sizes[0], curve.costs[0]
            ax.plot(curve.sizes, [first_c * n / first_n for n in curve.sizes],
                    linestyle="--", color="grey", label="linear from the first point")
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            # From zero: a few MB on a linear axis that starts at the smallest value looks
            # like a cliff.
            ax.set_ylim(bottom=0, top=max(curve.costs) * 1.15)
        for n, c in zip(curve.sizes, curve.costs, strict=True):
            ax.annotate(f"{c:,.0f}" if c >= 100 else f"{c:.3g}", (n, c),
                        textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_title(curve.name)
        ax.set_xlabel(curve.size_label)
        ax.set_ylabel(curve.cost_label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle("alertbot: cost against size (python -m bench growth)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


async def run(workdir: Path) -> list[Figures]:
    """Measure the four curves, print how each step grows, draw them."""
    lines: list[Figures] = []
    progress("growth: detect+persist at " + ", ".join(f"{n:,}" for n in TOKENS) + " tokens")
    polls = [await detect.measure(workdir, n, DETECT_POLLS, bench="growth") for n in TOKENS]
    progress("growth: fan-out at " + ", ".join(f"{n:,}" for n in SUBSCRIPTIONS))
    fans = [await fanout.measure(workdir, n, FANOUT_REPEATS, bench="growth")
            for n in SUBSCRIPTIONS]
    progress("growth: RSS at " + ", ".join(f"{n:,}" for n in RSS_SUBSCRIPTIONS))
    rss = [await memory.measure(workdir, n, s, bench="growth")
           for n, s in zip(RSS_SUBSCRIPTIONS, RSS_SECONDS, strict=True)]
    progress("growth: due_alerts at " + ", ".join(f"{n:,}" for n in HELD_ROWS) + " held rows")
    dues = [await due.measure(workdir, n, bench="growth") for n in HELD_ROWS]
    curves = [
        Curve("detect+persist, one poll", "tokens", "ms (median)", TOKENS,
              tuple(float(p["median_ms"]) for p in polls)),
        Curve("fan-out of one change", "subscriptions", "s (median)", SUBSCRIPTIONS,
              tuple(float(f["median_s"]) for f in fans)),
        Curve("peak RSS of alertbot run", "subscriptions", "MB", RSS_SUBSCRIPTIONS,
              tuple(float(r["peak_rss_mb"]) for r in rss), baseline=float(rss[0]["peak_rss_mb"])),
        Curve("due_alerts, one lane pass", "held rows", "ms (median)", HELD_ROWS,
              tuple(float(d["median_ms"]) for d in dues)),
    ]
    for curve in curves:
        points = list(zip(curve.sizes, curve.costs, strict=True))
        base = curve.baseline
        ks = [exponent((n1, c1 - base), (n2, c2 - base))
              for (n1, c1), (n2, c2) in itertools.pairwise(points)]
        lines.append(emit({
            "bench": "growth",
            "case": f"curve: {curve.name}",
            "sizes": list(curve.sizes),
            "costs": list(curve.costs),
            "unit": curve.cost_label,
            "baseline": curve.baseline,
            "exponents": [None if k is None else rounded(k, 2) for k in ks],
            "verdicts": [verdict(k) for k in ks],
        }))
    draw(curves, IMAGE)
    progress(f"growth: drew {IMAGE}")
    print("\n".join(f"{c.name}{' (above the empty process)' if c.baseline else ''}:\n"
                    + "\n".join(steps(c)) for c in curves))
    return lines
