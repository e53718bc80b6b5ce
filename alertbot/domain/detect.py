"""Readings -> changes. Pure: no IO, no clock; `now` is a parameter."""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from alertbot.domain.models import (
    Change,
    Direction,
    Kind,
    Reading,
    TrackedState,
    make_change_id,
)

DEFAULT_THRESHOLDS: tuple[float, ...] = (20.0, 40.0, 60.0, 80.0)
DEFAULT_BAND_NAMES: tuple[str, ...] = ("Strong Sell", "Sell", "Neutral", "Buy", "Strong Buy")
DEFAULT_HYSTERESIS = 2.0
DEFAULT_MIN_DELTA = 10.0
GRADE_RANGE = (0.0, 100.0)

# Higher is better; unknown classes fall back to the grade's direction.
FUNDAMENTAL_CLASS_RANK: dict[str, int] = {
    "highrisk": 0,
    "speculative": 1,
    "emerging": 2,
    "bluechip": 3,
    "storeofvalue": 4,
}

TREND_LABELS = {1.0: "bullish", -1.0: "bearish"}


@dataclass(frozen=True, slots=True)
class Rules:
    """Grade bands, hysteresis margin and minimum move that make a grade change alertable."""

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    band_names: tuple[str, ...] = DEFAULT_BAND_NAMES
    hysteresis: float = DEFAULT_HYSTERESIS
    min_delta: float = DEFAULT_MIN_DELTA
    """Points since the last alerted value that alert without a band change; 0 disables."""

    def __post_init__(self) -> None:
        if list(self.thresholds) != sorted(self.thresholds):
            raise ValueError("band thresholds must be ascending")
        if len(self.band_names) != len(self.thresholds) + 1:
            raise ValueError("need exactly one more band name than thresholds")
        if self.hysteresis < 0 or self.min_delta < 0:
            raise ValueError("hysteresis and min_delta must not be negative")

    def band(self, value: float) -> int:
        """Band index of a value without hysteresis (boundaries belong to the upper band)."""
        return bisect_right(self.thresholds, value)

    def band_name(self, band: int) -> str:
        """Human name of a band index."""
        return self.band_names[band]

    def band_label(self, value: float) -> str:
        """Name of the band a value falls in (no hysteresis)."""
        return self.band_names[self.band(value)]

    def sticky_band(self, value: float, previous_band: int) -> int:
        """Band with hysteresis: leave the previous band only when past a boundary by the margin."""
        lower = self.thresholds[previous_band - 1] if previous_band > 0 else -math.inf
        upper = (
            self.thresholds[previous_band] if previous_band < len(self.thresholds) else math.inf
        )
        if lower - self.hysteresis <= value < upper + self.hysteresis:
            return previous_band
        return self.band(value)


class Outcome(enum.StrEnum):
    """What detect did with a reading, for logs and tests."""

    BASELINE = "baseline"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    STALE = "stale"
    INVALID = "invalid"
    NO_SIGNAL = "no_signal"


@dataclass(frozen=True, slots=True)
class Detection:
    """Result of one reading: the state to store (None = keep the old one) and its changes."""

    outcome: Outcome
    state: TrackedState | None
    changes: list[Change] = field(default_factory=list)


def detect(previous: TrackedState | None, current: Reading, rules: Rules,
           now: datetime) -> Detection:
    """Compare a reading with the stored state of its (token, kind)."""
    if not _valid(current):
        return Detection(Outcome.INVALID, None)
    if current.kind is Kind.HOURLY and current.value == 0:
        # A zero hourly row means "no new signal"; the regime is the last non-zero one.
        return Detection(Outcome.NO_SIGNAL, None)
    if previous is None or _other_source(previous, current):
        # Values of another source (the demo before going live) are not comparable: comparing
        # them would alert invented changes, and their timestamps would make real rows stale.
        return Detection(Outcome.BASELINE, _baseline(current, rules))
    if current.source_ts < previous.source_ts:
        return Detection(Outcome.STALE, None)
    if current.kind in (Kind.SIGNAL, Kind.HOURLY):
        return _detect_signal(previous, current, now)
    return _detect_grade(previous, current, rules, now)


def _other_source(previous: TrackedState, current: Reading) -> bool:
    # An empty name is unknown (rows stored before sources were recorded, pushed readings):
    # compatible with any source rather than a reason to forget the state.
    return bool(previous.source) and bool(current.source) and previous.source != current.source


def _valid(reading: Reading) -> bool:
    value = reading.value
    if not math.isfinite(value):
        return False
    if reading.kind is Kind.SIGNAL:
        return value in (1.0, -1.0)
    if reading.kind is Kind.HOURLY:
        return value in (1.0, 0.0, -1.0)
    return GRADE_RANGE[0] <= value <= GRADE_RANGE[1]


def _baseline(current: Reading, rules: Rules) -> TrackedState:
    grade = current.kind in (Kind.TM_GRADE, Kind.FUNDAMENTAL)
    return TrackedState(
        token_id=current.token.token_id,
        kind=current.kind,
        value=current.value,
        source_ts=current.source_ts,
        label=current.label,
        band=rules.band(current.value) if grade else 0,
        alerted_value=current.value,
        fired_at=current.fired_at,
        source=current.source,
    )


def _updated(previous: TrackedState, current: Reading, *, band: int | None = None,
             alerted_value: float | None = None,
             fired_at: datetime | None = None) -> TrackedState:
    # A direct constructor call: dataclasses.replace() dominates a poll of thousands of tokens.
    return TrackedState(
        previous.token_id,
        previous.kind,
        current.value,
        current.source_ts,
        current.label or previous.label,
        previous.band if band is None else band,
        previous.alerted_value if alerted_value is None else alerted_value,
        fired_at or current.fired_at or previous.fired_at,
        previous.updated_at,
        current.source or previous.source,
    )


def _detect_signal(previous: TrackedState, current: Reading, now: datetime) -> Detection:
    if current.value == previous.value:
        return Detection(Outcome.UNCHANGED, _updated(previous, current))
    state = _updated(previous, current, alerted_value=current.value,
                     fired_at=current.fired_at or current.source_ts)
    change = _change(current, previous.value, Direction.UP if current.value > 0 else Direction.DOWN,
                     TREND_LABELS[previous.value], TREND_LABELS[current.value], "flip", now)
    return Detection(Outcome.CHANGED, state, [change])


def _detect_grade(previous: TrackedState, current: Reading, rules: Rules,
                  now: datetime) -> Detection:
    value = current.value
    band = rules.sticky_band(value, previous.band)
    base = previous.alerted_value
    klass_changed = (
        current.kind is Kind.FUNDAMENTAL
        and bool(previous.label) and bool(current.label)
        and _norm(previous.label) != _norm(current.label)
    )
    if klass_changed:
        cause = "class"
        direction = _class_direction(previous.label, current.label, value - base)
        from_label, to_label = previous.label, current.label
    elif band != previous.band:
        cause = "band"
        direction = Direction.UP if band > previous.band else Direction.DOWN
        from_label, to_label = rules.band_name(previous.band), rules.band_name(band)
    elif rules.min_delta > 0 and abs(value - base) >= rules.min_delta:
        cause = "delta"
        direction = Direction.UP if value > base else Direction.DOWN
        from_label = to_label = rules.band_name(band)
    else:
        return Detection(Outcome.UNCHANGED, _updated(previous, current))
    state = _updated(previous, current, band=band, alerted_value=value)
    change = _change(current, base, direction, from_label, to_label, cause, now)
    return Detection(Outcome.CHANGED, state, [change])


@lru_cache(maxsize=256)
def _norm(label: str) -> str:
    return "".join(label.split()).lower()


def _class_direction(old: str, new: str, delta: float) -> Direction:
    old_rank = FUNDAMENTAL_CLASS_RANK.get(_norm(old))
    new_rank = FUNDAMENTAL_CLASS_RANK.get(_norm(new))
    if old_rank is not None and new_rank is not None:
        return Direction.UP if new_rank > old_rank else Direction.DOWN
    return Direction.DOWN if delta < 0 else Direction.UP


def _change(current: Reading, from_value: float, direction: Direction, from_label: str,
            to_label: str, cause: str, now: datetime) -> Change:
    return Change(
        change_id=make_change_id(current.token.token_id, current.kind, from_value,
                                 current.value, current.source_ts),
        token=current.token,
        kind=current.kind,
        from_value=from_value,
        to_value=current.value,
        direction=direction,
        source_ts=current.source_ts,
        detected_at=now,
        from_label=from_label,
        to_label=to_label,
        cause=cause,
    )
