"""The Pillow renderer draws valid PNGs of the promised size for every kind of spec."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta

from PIL import Image

from alertbot.charts.pillow import PillowRenderer
from alertbot.domain.charts import (
    HEIGHT,
    WIDTH,
    DriverScores,
    Flip,
    History,
    Point,
    build_chart,
    build_drivers,
)
from alertbot.domain.models import Token

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SOL = Token(3988, "SOL", "Solana", "solana")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_render_full_year_is_a_png_of_the_chart_size_with_bands_visible() -> None:
    history = History(SOL, T0, T0 + timedelta(days=365),
                      tm_grade=tuple(Point(T0 + timedelta(days=i), (i * 7) % 100)
                                     for i in range(366)),
                      flips=(Flip(T0 + timedelta(days=40), True),))
    data = PillowRenderer().render(build_chart(history))

    assert png_size(data) == (WIDTH, HEIGHT)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = {image.getpixel((500, y)) for y in range(100, 500, 4)}
    assert len(colours) > 3  # bands, a line and markers, not a blank canvas


def test_render_empty_and_single_point_histories_still_draw() -> None:
    empty = History(SOL, T0, T0 + timedelta(days=30))
    single = History(SOL, T0, T0 + timedelta(days=30),
                     fundamental=(Point(T0 + timedelta(days=29), 81.0),))
    for history in (empty, single):
        assert png_size(PillowRenderer().render(build_chart(history))) == (WIDTH, HEIGHT)


def test_render_drivers_with_and_without_scores() -> None:
    latest = DriverScores(T0, (("Community", 70.0), ("VC", None), ("Exchange", 41.5)))
    earlier = DriverScores(T0 - timedelta(days=5), (("Community", 60.0), ("Exchange", 50.0)))
    for spec in (build_drivers(SOL, latest, earlier), build_drivers(SOL, None, None)):
        assert png_size(PillowRenderer().render_drivers(spec)) == (WIDTH, HEIGHT)
