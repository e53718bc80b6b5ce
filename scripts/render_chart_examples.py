"""Render the example charts shown in the README into docs/images/ (deterministic data).

    python scripts/render_chart_examples.py [OUT_DIR]
"""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.charts.pillow import PillowRenderer
from alertbot.domain.charts import (
    Flip,
    History,
    Point,
    build_chart,
    build_drivers,
    driver_scores,
)
from alertbot.domain.models import Token

END = datetime(2026, 11, 30, tzinfo=UTC)


def days(count: int) -> list[datetime]:
    return [END - timedelta(days=count - i) for i in range(count + 1)]


def strong_buy() -> History:
    """A token that climbed from Buy into Strong Buy and stayed there."""
    rng = random.Random(7)
    axis = days(90)
    tm = tuple(Point(d, min(97.0, 68 + 20 * (1 - math.exp(-i / 25)) + rng.uniform(-3, 3)))
               for i, d in enumerate(axis))
    fundamental = tuple(Point(d, 84 + 2 * math.sin(i / 15) + rng.uniform(-0.5, 0.5))
                        for i, d in enumerate(axis))
    flips = (Flip(axis[6], True), Flip(axis[41], False), Flip(axis[47], True))
    return History(Token(3988, "SOL", "Solana", "solana"), axis[0], END, tm, fundamental, flips)


def falling() -> History:
    """A token falling from Buy through Neutral and Sell to Strong Sell."""
    rng = random.Random(11)
    axis = days(90)
    tm = tuple(Point(d, max(4.0, 74 - 0.75 * i + 6 * math.sin(i / 5) + rng.uniform(-2, 2)))
               for i, d in enumerate(axis))
    fundamental = tuple(Point(d, 58 - 0.18 * i + rng.uniform(-1, 1)) for i, d in enumerate(axis))
    flips = (Flip(axis[12], False), Flip(axis[30], True), Flip(axis[36], False),
             Flip(axis[70], False))
    return History(Token(24601, "DOOM", "Doomcoin", "doomcoin"), axis[0], END, tm,
                   fundamental, flips)


def sparse() -> History:
    """A newly listed token: a few scattered TM grades, one fundamental grade."""
    axis = days(30)
    tm = tuple(Point(axis[i], v) for i, v in ((2, 51.0), (3, 55.5), (11, 61.0), (19, 58.2),
                                               (20, 63.4), (21, 66.0)))
    fundamental = (Point(axis[20], 42.0),)
    flips = (Flip(axis[11], True),)
    return History(Token(31337, "NEWT", "Newt Protocol", "newt"), axis[0], END, tm,
                   fundamental, flips)


def main(out: Path) -> int:
    renderer = PillowRenderer()
    out.mkdir(parents=True, exist_ok=True)
    for name, history in (("chart-strong-buy", strong_buy()), ("chart-falling", falling()),
                          ("chart-sparse", sparse())):
        spec = build_chart(history)
        (out / f"{name}.png").write_bytes(renderer.render(spec))
        print(f"{name}.png: {spec.caption}")
    token = Token(3988, "SOL", "Solana", "solana")
    latest = driver_scores(END, {"COMMUNITY_SCORE": 81.5, "EXCHANGE_SCORE": 88.0,
                                 "VC_SCORE": None, "TOKENOMICS_SCORE": 62.4,
                                 "DEFI_SCANNER_SCORE": 90.1})
    before = driver_scores(END - timedelta(days=12), {
        "COMMUNITY_SCORE": 74.0, "EXCHANGE_SCORE": 88.0, "VC_SCORE": None,
        "TOKENOMICS_SCORE": 66.9, "DEFI_SCANNER_SCORE": 85.0})
    drivers = build_drivers(token, latest, before)
    (out / "chart-drivers.png").write_bytes(renderer.render_drivers(drivers))
    print(f"chart-drivers.png: {drivers.caption}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images")))
