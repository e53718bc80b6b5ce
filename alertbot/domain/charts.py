"""Chart data, pure: grade history on the band scale, signal flips, labels and the caption.

The caption is the chart's text alternative: it states every fact the picture shows (token,
date range, current values and bands, the range each grade moved through, the flips), so a
reader who cannot see the image loses nothing. Renderers only draw what a spec says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alertbot.domain.detect import DEFAULT_BAND_NAMES, DEFAULT_THRESHOLDS, GRADE_RANGE
from alertbot.domain.models import ChartImage, Token

__all__ = ["ChartImage"]

RANGE_DAYS: dict[str, int] = {"30d": 30, "90d": 90, "1y": 365}
DEFAULT_DAYS = 90
ALERT_DAYS = 30
"""Days of history on the chart attached to a grade alert."""
MIN_DAYS = 7
MAX_DAYS = 365
DRIVERS = "drivers"
CAPTION_LIMIT = 1024
"""Telegram's photo caption limit; Discord's embed description allows more."""
GAP = timedelta(days=3)
"""Points further apart than this are not joined: the line breaks where data is missing."""
WIDTH, HEIGHT = 1000, 560

DRIVER_FIELDS: tuple[tuple[str, str], ...] = (
    ("COMMUNITY_SCORE", "Community"),
    ("EXCHANGE_SCORE", "Exchange"),
    ("VC_SCORE", "VC"),
    ("TOKENOMICS_SCORE", "Tokenomics"),
    ("DEFI_SCANNER_SCORE", "DeFi scanner"),
)
"""The fundamental grade's components, as `/fundamental-grade` names them, and their labels."""


class ChartInputError(ValueError):
    """A chart request that can never be answered (bad range); the message is one line."""


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a series at one time."""

    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Flip:
    """A daily trading signal that fired: bullish (▲) or bearish (▼)."""

    at: datetime
    bullish: bool


@dataclass(frozen=True, slots=True)
class DriverScores:
    """The fundamental grade's component scores on one day (None: not rated)."""

    at: datetime
    scores: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class History:
    """A token's grade history over [start, end], oldest first."""

    token: Token
    start: datetime
    end: datetime
    tm_grade: tuple[Point, ...] = ()
    fundamental: tuple[Point, ...] = ()
    flips: tuple[Flip, ...] = ()
    drivers: tuple[DriverScores, ...] = ()

    def until(self, end: datetime) -> History:
        """The same history without anything after `end` (a chart bound to an alert)."""
        return replace(
            self, end=min(self.end, end),
            tm_grade=tuple(p for p in self.tm_grade if p.at <= end),
            fundamental=tuple(p for p in self.fundamental if p.at <= end),
            flips=tuple(f for f in self.flips if f.at <= end),
            drivers=tuple(d for d in self.drivers if d.at <= end))

    def since(self, start: datetime) -> History:
        """The same history without anything before `start`."""
        return replace(
            self, start=max(self.start, start),
            tm_grade=tuple(p for p in self.tm_grade if p.at >= start),
            fundamental=tuple(p for p in self.fundamental if p.at >= start),
            flips=tuple(f for f in self.flips if f.at >= start),
            drivers=tuple(d for d in self.drivers if d.at >= start))


def parse_range(text: str) -> int | None:
    """Days from `30d`, `90d`, `1y` or `Nd` (7-365); None for `drivers`. Raises ChartInputError."""
    raw = text.strip().lower()
    if raw == DRIVERS:
        return None
    if raw in RANGE_DAYS:
        return RANGE_DAYS[raw]
    if raw.endswith("d") and raw[:-1].isascii() and raw[:-1].isdigit() and len(raw) <= 4:
        return check_days(int(raw[:-1]))
    shown = raw[:12] + ("…" if len(raw) > 12 else "")
    raise ChartInputError(f"'{shown}' is not a chart range: use 30d, 90d, 1y or drivers.")


def check_days(days: int) -> int:
    """`days` when it is a chart span this bot draws; raises ChartInputError otherwise."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ChartInputError(f"{days} days is not a chart range: use {MIN_DAYS} to "
                              f"{MAX_DAYS} days.")
    return days


# ---------------------------------------------------------------- the grade chart


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded stripe of the grade scale."""

    name: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Series:
    """A grade line: runs of points joined by a line, broken at gaps, and its last value."""

    name: str
    runs: tuple[tuple[Point, ...], ...]
    last: Point | None
    label: str
    """The current value with its band, drawn beside the line's end."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A signal flip, drawn on the TM grade line (or mid-scale when it has no value then)."""

    at: datetime
    value: float
    bullish: bool


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Everything a renderer draws for the grade-history chart."""

    title: str
    subtitle: str
    start: datetime
    end: datetime
    bands: tuple[Band, ...]
    series: tuple[Series, ...]
    markers: tuple[Marker, ...]
    caption: str
    note: str = ""
    """Shown across an empty plot (no grade in the range)."""


@dataclass(frozen=True, slots=True)
class Scale:
    """The grade bands: thresholds between them and their names."""

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    names: tuple[str, ...] = DEFAULT_BAND_NAMES

    def name(self, value: float) -> str:
        """Band name of a value (boundaries belong to the upper band)."""
        index = sum(1 for t in self.thresholds if value >= t)
        return self.names[index]

    def bands(self) -> tuple[Band, ...]:
        """The stripes from the bottom of the grade range to its top."""
        edges = (GRADE_RANGE[0], *self.thresholds, GRADE_RANGE[1])
        return tuple(Band(n, lo, hi) for n, lo, hi in zip(self.names, edges, edges[1:],
                                                         strict=False))


def runs(points: Sequence[Point], gap: timedelta = GAP) -> tuple[tuple[Point, ...], ...]:
    """Points in time order split where consecutive points are more than `gap` apart."""
    ordered = sorted(points, key=lambda p: p.at)
    out: list[list[Point]] = []
    for point in ordered:
        if out and point.at - out[-1][-1].at <= gap:
            out[-1].append(point)
        else:
            out.append([point])
    return tuple(tuple(r) for r in out)


def _day(at: datetime) -> str:
    return f"{at.day} {at:%b %Y}"


def _span(start: datetime, end: datetime) -> str:
    # "to", not an en dash: the renderer's built-in font has no glyph for it.
    if start.year == end.year:
        return f"{start.day} {start:%b} to {_day(end)}"
    return f"{_day(start)} to {_day(end)}"


def _num(value: float) -> str:
    return f"{value:.1f}"


def _clean(points: Sequence[Point]) -> list[Point]:
    """Finite values on the grade scale, one per time (the last one given wins)."""
    lo, hi = GRADE_RANGE
    by_time = {p.at: p for p in points if math.isfinite(p.value) and lo <= p.value <= hi}
    return sorted(by_time.values(), key=lambda p: p.at)


def _value_at(points: Sequence[Point], at: datetime) -> float | None:
    """The value of the point nearest to `at` within GAP, if any."""
    best: Point | None = None
    for point in points:
        if abs(point.at - at) <= GAP and (best is None or abs(point.at - at) < abs(best.at - at)):
            best = point
    return best.value if best is not None else None


def _describe(name: str, points: Sequence[Point], scale: Scale) -> str:
    if not points:
        return f"{name}: no data in this range."
    last, first = points[-1], points[0]
    text = f"{name} {_num(last.value)} ({scale.name(last.value)}) on {_day(last.at)}"
    if len(points) > 1:
        low = min(p.value for p in points)
        high = max(p.value for p in points)
        text += (f", from {_num(first.value)} ({scale.name(first.value)}) on {_day(first.at)}; "
                 f"low {_num(low)}, high {_num(high)}")
    return text + "."


def _describe_flips(flips: Sequence[Flip]) -> str:
    if not flips:
        return "No daily signal fired in this range."
    ups = sum(1 for f in flips if f.bullish)
    last = flips[-1]
    shown = ", ".join(f"{'▲' if f.bullish else '▼'} {f.at.day} {f.at:%b}" for f in flips[-6:])
    more = f" (last 6: {shown})" if len(flips) > 6 else f": {shown}"
    return (f"Daily signal fired {len(flips)} time{'s' if len(flips) != 1 else ''} "
            f"({ups} bullish ▲, {len(flips) - ups} bearish ▼), last "
            f"{'bullish' if last.bullish else 'bearish'} on {_day(last.at)}{more}.")


def build_chart(history: History, scale: Scale | None = None) -> ChartSpec:
    """The grade-history chart of `history`: bands, two grade lines, flips, and the caption."""
    scale = scale or Scale()
    token = history.token
    tm = _clean(history.tm_grade)
    fundamental = _clean(history.fundamental)
    flips = sorted((f for f in history.flips if history.start <= f.at <= history.end),
                   key=lambda f: f.at)
    days = max(1, round((history.end - history.start) / timedelta(days=1)))
    title = f"{token.symbol} · {token.name}" if token.name else token.symbol
    subtitle = f"Grade history, {_span(history.start, history.end)} ({days} days)"
    series = tuple(
        Series(name, runs(points), points[-1] if points else None,
               f"{_num(points[-1].value)} {scale.name(points[-1].value)}" if points else "")
        for name, points in (("TM grade", tm), ("Fundamental grade", fundamental)))
    markers = tuple(Marker(f.at, v if (v := _value_at(tm, f.at)) is not None else 50.0,
                           f.bullish) for f in flips)
    caption_parts = [
        f"{token.symbol} grade history, {_span(history.start, history.end)} ({days} days).",
        _describe("TM grade", tm, scale),
        _describe("Fundamental grade", fundamental, scale),
        _describe_flips(flips),
    ]
    # A point exactly at the start belongs to the day before the range.
    dated = len({p.at.date() for p in (*tm, *fundamental) if p.at > history.start})
    if tm or fundamental:
        caption_parts.append(f"Data on {dated} of {days} days.")
    caption = fit_caption(" ".join(caption_parts))
    note = "" if tm or fundamental else "No grade history in this range"
    return ChartSpec(title, subtitle, history.start, history.end, scale.bands(), series,
                     markers, caption, note)


def fit_caption(text: str, limit: int = CAPTION_LIMIT) -> str:
    """`text` cut at a word to at most `limit` characters (an ellipsis marks the cut)."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut:
        cut = cut[:cut.rindex(" ")]
    return cut + "…"


# ---------------------------------------------------------------- key drivers


@dataclass(frozen=True, slots=True)
class Bar:
    """One component score of the fundamental grade and its change since the last alert."""

    name: str
    score: float | None
    delta: float | None


@dataclass(frozen=True, slots=True)
class DriversSpec:
    """The key-drivers bar chart: what the fundamental grade is made of, and what moved."""

    title: str
    subtitle: str
    bars: tuple[Bar, ...]
    caption: str
    lines: tuple[str, ...]
    """The same facts as text lines (for /grade)."""


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def build_drivers(token: Token, latest: DriverScores | None,
                  previous: DriverScores | None) -> DriversSpec:
    """Component scores of `latest`, with the change since `previous` (the last alert's day)."""
    title = f"{token.symbol} · key drivers of the fundamental grade"
    if latest is None:
        caption = f"{token.symbol}: no fundamental-grade components are available."
        return DriversSpec(title, "No component scores available", (), caption, (caption,))
    before = dict(previous.scores) if previous is not None else {}
    bars: list[Bar] = []
    for name, score in latest.scores:
        old = before.get(name)
        delta = score - old if score is not None and old is not None else None
        bars.append(Bar(name, score, delta))
    since = f" since {_day(previous.at)}" if previous is not None else ""
    subtitle = f"Scores on {_day(latest.at)}" + (f", change{since}" if previous else "")
    lines = tuple(
        f"{b.name}: " + ("not rated" if b.score is None else _num(b.score))
        + (f" ({_signed(b.delta)}{since})" if b.delta is not None and abs(b.delta) >= 0.05
           else "")
        for b in bars)
    moved = sorted((b for b in bars if b.delta is not None and abs(b.delta) >= 0.05),
                   key=lambda b: -abs(b.delta or 0.0))
    summary = (f"Biggest move: {moved[0].name} {_signed(moved[0].delta or 0.0)}."
               if moved else "")
    short = "; ".join(
        f"{b.name} " + ("not rated" if b.score is None else _num(b.score))
        + (f" ({_signed(b.delta)})" if b.delta is not None and abs(b.delta) >= 0.05 else "")
        for b in bars)
    caption = fit_caption(f"{token.symbol} fundamental-grade components on {_day(latest.at)}"
                          f"{' (change' + since + ')' if previous else ''}: {short}. {summary}")
    return DriversSpec(title, subtitle, tuple(bars), caption.strip(), lines)


def driver_scores(at: datetime, row: dict[str, float | None]) -> DriverScores:
    """Component scores named by DRIVER_FIELDS, from one row's values by field name."""
    return DriverScores(at, tuple((label, row.get(key)) for key, label in DRIVER_FIELDS))


def drivers_at(history: History, at: datetime | None) -> DriverScores | None:
    """The newest component scores on or before `at` (None: the newest of all)."""
    rows = [d for d in history.drivers if at is None or d.at <= at]
    return max(rows, key=lambda d: d.at) if rows else None
