"""detect(): every kind, every boundary, hysteresis, min_delta, baseline, stale, missing data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain.detect import Outcome, Rules, detect
from alertbot.domain.models import ALL_KINDS, Direction, Kind, Reading, Token, TrackedState

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 26, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
RULES = Rules()  # bands 20/40/60/80, hysteresis 2, min_delta 10


def reading(kind: Kind, value: float, ts: datetime = T1, label: str = "") -> Reading:
    return Reading(BTC, kind, value, ts, label=label)


def state(kind: Kind, value: float, ts: datetime = T0, band: int | None = None,
          alerted: float | None = None, label: str = "") -> TrackedState:
    return TrackedState(BTC.token_id, kind, value, ts, label=label,
                        band=RULES.band(value) if band is None else band,
                        alerted_value=value if alerted is None else alerted)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_detect_first_reading_is_baseline_without_change(kind: Kind) -> None:
    value = 1.0 if kind in (Kind.SIGNAL, Kind.HOURLY) else 55.0
    result = detect(None, reading(kind, value), RULES, NOW)
    assert result.outcome is Outcome.BASELINE
    assert result.changes == []
    assert result.state is not None and result.state.value == value


@pytest.mark.parametrize(("kind", "old", "new", "outcome", "direction", "labels"), [
    (Kind.SIGNAL, 1, -1, Outcome.CHANGED, Direction.DOWN, ("bullish", "bearish")),
    (Kind.SIGNAL, -1, 1, Outcome.CHANGED, Direction.UP, ("bearish", "bullish")),
    (Kind.SIGNAL, 1, 1, Outcome.UNCHANGED, None, None),
    (Kind.HOURLY, -1, 1, Outcome.CHANGED, Direction.UP, ("bearish", "bullish")),
    (Kind.HOURLY, 1, -1, Outcome.CHANGED, Direction.DOWN, ("bullish", "bearish")),
    (Kind.HOURLY, 1, 1, Outcome.UNCHANGED, None, None),
    (Kind.HOURLY, 1, 0, Outcome.NO_SIGNAL, None, None),
])
def test_detect_signal_table(kind: Kind, old: float, new: float, outcome: Outcome,
                             direction: Direction | None,
                             labels: tuple[str, str] | None) -> None:
    result = detect(state(kind, old), reading(kind, new), RULES, NOW)
    assert result.outcome is outcome
    if direction is None:
        assert result.changes == []
    else:
        (change,) = result.changes
        assert change.direction is direction
        assert (change.from_label, change.to_label) == labels
        assert change.detected_at == NOW and change.source_ts == T1


def test_detect_zero_hourly_signal_keeps_state() -> None:
    assert detect(state(Kind.HOURLY, 1), reading(Kind.HOURLY, 0), RULES, NOW).state is None


@pytest.mark.parametrize(("kind", "value"), [
    (Kind.SIGNAL, 0.0), (Kind.SIGNAL, 2.0), (Kind.HOURLY, 0.5), (Kind.TM_GRADE, -0.1),
    (Kind.TM_GRADE, 100.1), (Kind.FUNDAMENTAL, float("nan")), (Kind.TM_GRADE, float("inf")),
])
def test_detect_invalid_value_changes_nothing(kind: Kind, value: float) -> None:
    previous = state(kind, 1 if kind in (Kind.SIGNAL, Kind.HOURLY) else 50)
    result = detect(previous, reading(kind, value), RULES, NOW)
    assert result.outcome is Outcome.INVALID
    assert result.state is None and result.changes == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_detect_older_reading_is_stale_and_ignored(kind: Kind) -> None:
    old_value, new_value = (1, -1) if kind in (Kind.SIGNAL, Kind.HOURLY) else (50, 90)
    previous = state(kind, old_value, ts=T1)
    result = detect(previous, reading(kind, new_value, ts=T0), RULES, NOW)
    assert result.outcome is Outcome.STALE
    assert result.state is None and result.changes == []


def test_detect_same_timestamp_correction_is_accepted() -> None:
    result = detect(state(Kind.SIGNAL, 1, ts=T1), reading(Kind.SIGNAL, -1, ts=T1), RULES, NOW)
    assert result.outcome is Outcome.CHANGED


# Grade bands: Strong Sell < 20 <= Sell < 40 <= Neutral < 60 <= Buy < 80 <= Strong Buy.
@pytest.mark.parametrize(("value", "band", "name"), [
    (0.0, 0, "Strong Sell"), (19.99, 0, "Strong Sell"), (20.0, 1, "Sell"), (39.99, 1, "Sell"),
    (40.0, 2, "Neutral"), (59.99, 2, "Neutral"), (60.0, 3, "Buy"), (79.99, 3, "Buy"),
    (80.0, 4, "Strong Buy"), (100.0, 4, "Strong Buy"),
])
def test_rules_band_boundaries_belong_to_upper_band(value: float, band: int, name: str) -> None:
    assert RULES.band(value) == band
    assert RULES.band_label(value) == name


# From Neutral (band 2, 40..60) with hysteresis 2: leaving needs < 38 or >= 62.
@pytest.mark.parametrize(("value", "expected_band"), [
    (38.0, 2), (37.99, 1), (61.99, 2), (62.0, 3), (95.0, 4), (5.0, 0),
])
def test_rules_sticky_band_hysteresis_margin(value: float, expected_band: int) -> None:
    assert RULES.sticky_band(value, 2) == expected_band


@pytest.mark.parametrize(("kind", "previous", "value", "outcome", "direction", "cause"), [
    # Band upgrade only past the boundary plus the margin.
    (Kind.TM_GRADE, 58.0, 61.0, Outcome.UNCHANGED, None, None),
    (Kind.TM_GRADE, 58.0, 62.0, Outcome.CHANGED, Direction.UP, "band"),
    (Kind.TM_GRADE, 42.0, 38.5, Outcome.UNCHANGED, None, None),
    (Kind.TM_GRADE, 42.0, 37.9, Outcome.CHANGED, Direction.DOWN, "band"),
    (Kind.TM_GRADE, 21.0, 17.5, Outcome.CHANGED, Direction.DOWN, "band"),
    (Kind.TM_GRADE, 78.0, 82.0, Outcome.CHANGED, Direction.UP, "band"),
    # Two bands at once is one change.
    (Kind.TM_GRADE, 30.0, 70.0, Outcome.CHANGED, Direction.UP, "band"),
    # min_delta 10 within a band.
    (Kind.TM_GRADE, 41.0, 50.9, Outcome.UNCHANGED, None, None),
    (Kind.TM_GRADE, 41.0, 51.0, Outcome.CHANGED, Direction.UP, "delta"),
    (Kind.TM_GRADE, 59.0, 49.0, Outcome.CHANGED, Direction.DOWN, "delta"),
    (Kind.FUNDAMENTAL, 58.0, 62.5, Outcome.CHANGED, Direction.UP, "band"),
    (Kind.FUNDAMENTAL, 50.0, 55.0, Outcome.UNCHANGED, None, None),
])
def test_detect_grade_table(kind: Kind, previous: float, value: float, outcome: Outcome,
                            direction: Direction | None, cause: str | None) -> None:
    result = detect(state(kind, previous), reading(kind, value), RULES, NOW)
    assert result.outcome is outcome
    if direction is None:
        assert result.changes == []
        assert result.state is not None and result.state.value == value
        assert result.state.band == RULES.band(previous)
    else:
        (change,) = result.changes
        assert (change.direction, change.cause) == (direction, cause)
        assert change.from_value == previous and change.to_value == value
        assert result.state is not None and result.state.alerted_value == value


def test_detect_min_delta_measured_from_last_alerted_value() -> None:
    # Small steps add up: 41 -> 45 -> 49 -> 51 alerts once the total reaches 10 points.
    current = state(Kind.TM_GRADE, 41.0)
    alerts = []
    for step, value in enumerate((45.0, 49.0, 51.0, 53.0), start=1):
        result = detect(current, reading(Kind.TM_GRADE, value, ts=T0 + timedelta(hours=step)),
                        RULES, NOW)
        assert result.state is not None
        current = result.state
        alerts += result.changes
    assert [(c.from_value, c.to_value) for c in alerts] == [(41.0, 51.0)]
    assert current.alerted_value == 51.0


def test_detect_min_delta_zero_disables_delta_alerts() -> None:
    rules = replace(RULES, min_delta=0.0)
    result = detect(state(Kind.TM_GRADE, 41.0), reading(Kind.TM_GRADE, 58.0), rules, NOW)
    assert result.outcome is Outcome.UNCHANGED


def test_detect_hovering_grade_does_not_flap() -> None:
    current = state(Kind.TM_GRADE, 59.0)
    changes = []
    for step, value in enumerate((60.5, 59.5, 61.0, 58.5, 61.9, 58.1), start=1):
        result = detect(current, reading(Kind.TM_GRADE, value, ts=T0 + timedelta(hours=step)),
                        RULES, NOW)
        assert result.state is not None
        current = result.state
        changes += result.changes
    assert changes == []


@pytest.mark.parametrize(("old", "new", "direction"), [
    ("blueChip", "emerging", Direction.DOWN),
    ("speculative", "emerging", Direction.UP),
    ("storeOfValue", "blueChip", Direction.DOWN),
])
def test_detect_fundamental_class_change_alerts_with_rank_direction(
        old: str, new: str, direction: Direction) -> None:
    previous = state(Kind.FUNDAMENTAL, 65.0, label=old)
    result = detect(previous, reading(Kind.FUNDAMENTAL, 64.0, label=new), RULES, NOW)
    (change,) = result.changes
    assert (change.cause, change.direction) == ("class", direction)
    assert (change.from_label, change.to_label) == (old, new)


def test_detect_fundamental_missing_class_is_not_a_change() -> None:
    previous = state(Kind.FUNDAMENTAL, 65.0, label="blueChip")
    result = detect(previous, reading(Kind.FUNDAMENTAL, 64.0, label=""), RULES, NOW)
    assert result.outcome is Outcome.UNCHANGED
    assert result.state is not None and result.state.label == "blueChip"


def test_detect_change_id_is_stable_and_distinct() -> None:
    first = detect(state(Kind.SIGNAL, 1), reading(Kind.SIGNAL, -1), RULES, NOW).changes[0]
    again = detect(state(Kind.SIGNAL, 1), reading(Kind.SIGNAL, -1), RULES,
                   NOW + timedelta(hours=1)).changes[0]
    later = detect(state(Kind.SIGNAL, 1), reading(Kind.SIGNAL, -1, ts=T1 + timedelta(days=1)),
                   RULES, NOW).changes[0]
    assert first.change_id == again.change_id
    assert first.change_id != later.change_id


def test_rules_reject_bad_configuration() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Rules(thresholds=(40.0, 20.0, 60.0, 80.0))
    with pytest.raises(ValueError, match="band name"):
        Rules(band_names=("a", "b"))
    with pytest.raises(ValueError, match="negative"):
        Rules(hysteresis=-1)


@pytest.mark.parametrize(("kind", "old", "new"), [
    (Kind.SIGNAL, 1.0, -1.0), (Kind.HOURLY, -1.0, 1.0), (Kind.TM_GRADE, 30.0, 90.0),
    (Kind.FUNDAMENTAL, 85.0, 10.0),
])
def test_detect_reading_from_another_source_rebaselines_without_change(
        kind: Kind, old: float, new: float) -> None:
    demo = replace(state(kind, old, ts=T1 + timedelta(days=30)), source="demo")
    live = replace(reading(kind, new), source="tokenmetrics")
    result = detect(demo, live, RULES, NOW)
    assert result.outcome is Outcome.BASELINE and result.changes == []
    # The live reading is older than the demo's story time yet becomes the new state.
    assert result.state is not None
    assert (result.state.value, result.state.source) == (new, "tokenmetrics")
    assert result.state.alerted_value == new


def test_detect_unknown_source_on_either_side_compares_as_before() -> None:
    unknown = state(Kind.SIGNAL, 1.0)
    live = replace(reading(Kind.SIGNAL, -1.0), source="tokenmetrics")
    result = detect(unknown, live, RULES, NOW)
    assert result.outcome is Outcome.CHANGED
    assert result.state is not None and result.state.source == "tokenmetrics"
    pushed = detect(replace(unknown, source="tokenmetrics"), reading(Kind.SIGNAL, -1.0), RULES,
                    NOW)
    assert pushed.outcome is Outcome.CHANGED
    assert pushed.state is not None and pushed.state.source == "tokenmetrics"
