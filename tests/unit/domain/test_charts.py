"""Chart data: ranges, gaps, flips, labels and the caption (the text alternative)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.charts import (
    CAPTION_LIMIT,
    ChartInputError,
    DriverScores,
    Flip,
    History,
    Point,
    Scale,
    build_chart,
    build_drivers,
    check_days,
    fit_caption,
    parse_range,
    runs,
)
from alertbot.domain.models import Token

T0 = datetime(2026, 9, 1, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def history(tm: list[float | None], fundamental: list[float | None] | None = None,
            flips: tuple[Flip, ...] = ()) -> History:
    return History(
        BTC, T0, day(len(tm) - 1),
        tm_grade=tuple(Point(day(i), v) for i, v in enumerate(tm) if v is not None),
        fundamental=tuple(Point(day(i), v) for i, v in enumerate(fundamental or [])
                          if v is not None),
        flips=flips)


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("90d", 90), ("1y", 365),
                                            (" 1Y ", 365), ("14d", 14), ("drivers", None)])
def test_parse_range_accepted_forms_give_days(text: str, days: int | None) -> None:
    assert parse_range(text) == days


@pytest.mark.parametrize("text", ["", "2y", "0d", "6d", "366d", "90", "d", "-5d", "1e3d",
                                  "x" * 200])
def test_parse_range_bad_form_raises_one_line_error(text: str) -> None:
    with pytest.raises(ChartInputError) as caught:
        parse_range(text)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 120


def test_check_days_outside_bounds_raises() -> None:
    assert check_days(7) == 7
    with pytest.raises(ChartInputError, match="7 to 365"):
        check_days(400)


def test_runs_gap_over_three_days_breaks_the_line() -> None:
    points = [Point(day(i), 50.0) for i in (0, 1, 2, 8, 9, 20)]
    assert [len(r) for r in runs(points)] == [3, 2, 1]


def test_build_chart_states_current_values_bands_and_range_in_caption() -> None:
    spec = build_chart(history([45.0, 62.0, 85.0], [70.0, 71.0, 72.5],
                               (Flip(day(1), True),)))
    assert spec.title == "BTC · Bitcoin"
    assert "1 Sep to 3 Sep 2026 (2 days)" in spec.subtitle
    assert "TM grade 85.0 (Strong Buy) on 3 Sep 2026, from 45.0 (Neutral)" in spec.caption
    assert "Fundamental grade 72.5 (Buy)" in spec.caption
    assert "fired 1 time (1 bullish ▲, 0 bearish ▼)" in spec.caption
    assert spec.series[0].label == "85.0 Strong Buy"
    assert [b.name for b in spec.bands] == ["Strong Sell", "Sell", "Neutral", "Buy",
                                            "Strong Buy"]
    assert spec.markers[0].value == 62.0 and spec.markers[0].bullish


def test_build_chart_empty_history_has_a_note_and_says_so() -> None:
    spec = build_chart(History(BTC, T0, day(30)))
    assert spec.note == "No grade history in this range"
    assert "TM grade: no data in this range." in spec.caption
    assert all(s.last is None for s in spec.series)


def test_build_chart_single_point_is_one_run_of_one() -> None:
    spec = build_chart(history([None, None, 33.0]))
    assert spec.series[0].runs == ((Point(day(2), 33.0),),)
    assert "TM grade 33.0 (Sell)" in spec.caption


def test_build_chart_drops_values_off_the_grade_scale() -> None:
    spec = build_chart(history([float("nan"), 140.0, -3.0, 50.0]))
    assert [p.value for r in spec.series[0].runs for p in r] == [50.0]


def test_build_chart_band_boundary_belongs_to_upper_band() -> None:
    assert Scale().name(60.0) == "Buy"
    assert Scale().name(59.99) == "Neutral"


def test_history_until_drops_later_points_and_flips() -> None:
    bound = history([10.0, 20.0, 30.0], [1.0, 2.0, 3.0],
                    (Flip(day(0), True), Flip(day(2), False))).until(day(1))
    assert [p.value for p in bound.tm_grade] == [10.0, 20.0]
    assert [f.at for f in bound.flips] == [day(0)]
    assert bound.end == day(1)


def test_build_drivers_change_since_previous_and_biggest_move() -> None:
    latest = DriverScores(day(10), (("Community", 70.0), ("VC", None), ("Exchange", 40.0)))
    previous = DriverScores(day(2), (("Community", 60.0), ("VC", None), ("Exchange", 42.0)))
    spec = build_drivers(BTC, latest, previous)
    assert spec.lines == ("Community: 70.0 (+10.0 since 3 Sep 2026)", "VC: not rated",
                          "Exchange: 40.0 (-2.0 since 3 Sep 2026)")
    assert "Biggest move: Community +10.0." in spec.caption


def test_build_drivers_without_scores_says_so() -> None:
    spec = build_drivers(BTC, None, None)
    assert spec.bars == ()
    assert "no fundamental-grade components" in spec.caption


grades = st.one_of(st.none(), st.just(float("nan")), st.floats(min_value=-10, max_value=110))


@given(st.lists(grades, max_size=400), st.lists(grades, max_size=400),
       st.lists(st.tuples(st.integers(0, 400), st.booleans()), max_size=80))
def test_build_chart_any_history_gives_bounded_caption_and_ordered_runs(
        tm: list[float | None], fundamental: list[float | None],
        flips: list[tuple[int, bool]]) -> None:
    length = max(len(tm), len(fundamental), 1)
    h = History(BTC, T0, day(length),
                tm_grade=tuple(Point(day(i), v) for i, v in enumerate(tm) if v is not None),
                fundamental=tuple(Point(day(i), v) for i, v in enumerate(fundamental)
                                  if v is not None),
                flips=tuple(Flip(day(i), b) for i, b in flips))
    spec = build_chart(h)
    assert len(spec.caption) <= CAPTION_LIMIT
    for series in spec.series:
        flat = [p for r in series.runs for p in r]
        assert flat == sorted(flat, key=lambda p: p.at)
        assert all(0 <= p.value <= 100 for p in flat)
        for run in series.runs:
            assert all(b.at - a.at <= timedelta(days=3) for a, b in itertools.pairwise(run))
    assert all(0 <= m.value <= 100 for m in spec.markers)
    assert all(h.start <= m.at <= h.end for m in spec.markers)


@given(st.text(max_size=3000), st.integers(10, 2000))
def test_fit_caption_never_exceeds_limit(text: str, limit: int) -> None:
    assert len(fit_caption(text, limit)) <= limit
