"""Scheduled digests in the domain: schedules, periods across DST, the missed rule, summaries."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertbot.domain.models import (
    Change,
    Destination,
    DigestSchedule,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.domain.render import render
from alertbot.domain.scheduled_digest import (
    MISSED_GRACE,
    CurrentGrade,
    build_summary,
    describe_schedule,
    digest_change,
    digest_change_id,
    due_periods,
    parse_schedule,
    period_containing,
    previous_period,
    recent_periods,
    schedule_from_spec,
    summary_from_json,
    summary_to_json,
    without_muted,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BERLIN = "Europe/Berlin"
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
DEST = Destination("telegram", "-1001")


def daily(at: str = "09:00", tz: str = BERLIN, **kw: object) -> DigestSchedule:
    return DigestSchedule(False, time.fromisoformat(at), tz, **kw)  # type: ignore[arg-type]


def grade(token: Token, kind: Kind, frm: float, to: float, at: datetime,
          frm_label: str = "Neutral", to_label: str = "Buy") -> Change:
    direction = Direction.UP if to > frm else Direction.DOWN
    return Change(make_change_id(token.token_id, kind, frm, to, at), token, kind, frm, to,
                  direction, at, at, frm_label, to_label, "band")


def flip(token: Token, to: float, at: datetime) -> Change:
    return Change(make_change_id(token.token_id, Kind.SIGNAL, -to, to, at), token, Kind.SIGNAL,
                  -to, to, Direction.UP if to > 0 else Direction.DOWN, at, at,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish", "flip")


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "spec"), [
    ("daily 09:00 Europe/Berlin", "daily 09:00 Europe/Berlin"),
    ("DAILY 9:05", "daily 09:05 UTC"),
    ("weekly mon 09:00 Europe/Berlin", "weekly mon 09:00 Europe/Berlin"),
    ("weekly Sunday 18:30 America/New_York only", "weekly sun 18:30 America/New_York only"),
    ("daily 07:00 only always", "daily 07:00 UTC only always"),
    ("daily 07:00 UTC always only", "daily 07:00 UTC only always"),
])
def test_parse_schedule_valid_round_trips_through_its_spec(text: str, spec: str) -> None:
    schedule = parse_schedule(text, NOW)
    assert schedule is not None and schedule.spec == spec and schedule.since == NOW
    assert parse_schedule(schedule.spec, NOW) == schedule


def test_parse_schedule_off_is_none() -> None:
    assert parse_schedule("off", NOW) is None
    assert parse_schedule(" OFF ", NOW) is None


@pytest.mark.parametrize(("text", "problem"), [
    ("", "daily HH:MM"),
    ("hourly 09:00", "is not daily, weekly or off"),
    ("daily", "name the time"),
    ("daily 25:00", "25:00"),
    ("daily 09:00 Mars/Base", "Mars/Base"),
    ("weekly 09:00", "not a weekday"),
    ("weekly mon", "name the time"),
    ("weekly funday 09:00", "not a weekday"),
    ("daily 09:00 UTC only only", "given twice"),
    ("daily 09:00 UTC later", "unexpected 'later'"),
    ("off now", "'off' takes nothing"),
])
def test_parse_schedule_invalid_raises_specific_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_schedule(text, NOW)


def test_schedule_from_spec_keeps_when_it_was_set() -> None:
    schedule = schedule_from_spec("weekly fri 17:00 Europe/Berlin only", NOW)
    assert schedule is not None and schedule.since == NOW and schedule.only
    assert schedule_from_spec("", None) is None


def test_describe_schedule_names_day_time_zone_and_flags() -> None:
    schedule = parse_schedule("weekly mon 09:00 Europe/Berlin only always", NOW)
    assert describe_schedule(schedule) == ("scheduled digest: weekly on Mondays at 09:00 "
                                           "Europe/Berlin, digests only (no single alerts), "
                                           "also when nothing changed")
    assert describe_schedule(None) == "scheduled digest: off"


# ---------------------------------------------------------------------------- periods


def test_period_daily_is_named_by_the_day_it_ends() -> None:
    period = period_containing(daily(), NOW)
    assert period.key == "daily:2026-12-01"
    assert period.start == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert period.end == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_period_boundary_instant_starts_the_next_period() -> None:
    boundary = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert period_containing(daily(), boundary).start == boundary
    assert period_containing(daily(), boundary - timedelta(microseconds=1)).end == boundary


def test_period_weekly_runs_monday_to_monday() -> None:
    schedule = DigestSchedule(True, time(9, 0), BERLIN, weekday=0)
    period = period_containing(schedule, NOW)  # Monday 2026-11-30 13:00 Berlin
    assert period.key == "weekly:2026-12-07"
    assert period.start.astimezone(ZoneInfo(BERLIN)) == datetime(
        2026, 11, 30, 9, 0, tzinfo=ZoneInfo(BERLIN))
    assert period.end - period.start == timedelta(days=7)


def test_period_skipped_local_time_still_gives_one_digest_that_day() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist in Berlin that day.
    schedule = daily("02:30")
    day = period_containing(schedule, datetime(2026, 3, 29, 12, 0, tzinfo=UTC))
    before = previous_period(schedule, day)
    assert before.key == "daily:2026-03-29"
    assert before.end == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # moved to 03:30 CEST
    assert before.end - before.start == timedelta(hours=24)
    assert day.end - day.start == timedelta(hours=23)  # to 02:30 CEST on the 30th


def test_period_repeated_local_time_means_its_first_occurrence() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice in Berlin.
    schedule = daily("02:30")
    period = period_containing(schedule, datetime(2026, 10, 25, 0, 0, tzinfo=UTC))
    assert period.key == "daily:2026-10-25"
    assert period.end == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    following = period_containing(schedule, period.end)
    assert following.end - following.start == timedelta(hours=25)


def test_period_zone_that_skipped_a_whole_day_has_no_empty_period() -> None:
    # Samoa skipped 2011-12-30 entirely.
    schedule = daily("09:00", "Pacific/Apia")
    period = period_containing(schedule, datetime(2011, 12, 30, 12, 0, tzinfo=UTC))
    assert period.end > period.start
    assert previous_period(schedule, period).end == period.start


zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                         "Pacific/Apia", "Asia/Kolkata", "America/Santiago", "Europe/London"])
instants = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2035, 1, 1),
                        timezones=st.just(UTC))
schedules = st.builds(DigestSchedule, st.booleans(), st.times(), zones, st.integers(0, 6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, instant=instants)
def test_period_property_exactly_one_period_contains_an_instant(
        schedule: DigestSchedule, instant: datetime) -> None:
    period = period_containing(schedule, instant)
    assert period.start <= instant < period.end
    # Its neighbours touch it and do not contain the instant: contiguous, no overlap.
    before = previous_period(schedule, period)
    after = period_containing(schedule, period.end)
    assert before.end == period.start and after.start == period.end
    assert not before.start <= instant < before.end
    assert not after.start <= instant < after.end
    assert len({before.key, period.key, after.key}) == 3
    longest = timedelta(days=7 if schedule.weekly else 1) + timedelta(hours=25)
    assert timedelta(0) < period.end - period.start < longest


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, instant=instants)
def test_period_property_every_instant_of_a_period_maps_to_it(
        schedule: DigestSchedule, instant: datetime) -> None:
    period = period_containing(schedule, instant)
    for point in (period.start, period.start + (period.end - period.start) / 2,
                  period.end - timedelta(microseconds=1)):
        assert period_containing(schedule, point) == period


@settings(max_examples=60, deadline=None)
@given(zone=zones, at=st.times(), year=st.integers(2015, 2030))
def test_period_property_one_daily_period_ends_on_each_local_day(zone: str, at: time,
                                                                  year: int) -> None:
    schedule = daily(at.strftime("%H:%M"), zone)
    period = period_containing(schedule, datetime(year, 1, 1, tzinfo=UTC))
    keys = []
    for _ in range(370):
        keys.append(period.key)
        period = period_containing(schedule, period.end)
    days = [date.fromisoformat(k.split(":")[1]) for k in keys]
    assert len(set(days)) == len(days)
    gaps = {(b - a).days for a, b in pairwise(days)}
    # Every day ends one period, except a day the zone skipped entirely.
    assert gaps <= {1, 2}


# ---------------------------------------------------------------------------- missed rule


def test_due_periods_recent_end_is_sent_older_is_skipped() -> None:
    schedule = daily("09:00", "UTC", since=NOW - timedelta(days=3))
    due = due_periods(schedule, NOW, decided=set())
    assert [(d.period.key, d.send) for d in due] == [
        ("daily:2026-11-28", False), ("daily:2026-11-29", False), ("daily:2026-11-30", True)]


def test_due_periods_grace_boundary_is_exclusive() -> None:
    schedule = daily("06:00", "UTC", since=NOW - timedelta(days=1))
    ended = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    (due,) = due_periods(schedule, ended + MISSED_GRACE - timedelta(seconds=1), set())
    assert due.send
    (due,) = due_periods(schedule, ended + MISSED_GRACE, set())
    assert not due.send


def test_due_periods_before_the_schedule_was_set_are_not_due() -> None:
    schedule = daily("09:00", "UTC", since=NOW - timedelta(hours=1))
    assert due_periods(schedule, NOW, set()) == []
    assert recent_periods(schedule, NOW) == []


def test_due_periods_decided_ones_are_left_out() -> None:
    schedule = daily("09:00", "UTC", since=NOW - timedelta(days=2))
    assert [d.period.key for d in due_periods(schedule, NOW, {"daily:2026-11-30"})] == [
        "daily:2026-11-29"]


def test_due_periods_look_back_at_most_seven_periods() -> None:
    schedule = daily("09:00", "UTC", since=NOW - timedelta(days=30))
    assert len(due_periods(schedule, NOW, set())) == 7


# ---------------------------------------------------------------------------- summaries


def _summary_changes() -> list[Change]:
    start = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    return [
        grade(BTC, Kind.TM_GRADE, 55.0, 62.0, start + timedelta(hours=1)),
        grade(BTC, Kind.TM_GRADE, 62.0, 81.0, start + timedelta(hours=2), "Buy", "Strong Buy"),
        flip(BTC, 1.0, start + timedelta(hours=3)),
        grade(ETH, Kind.FUNDAMENTAL, 70.0, 38.0, start + timedelta(hours=4), "Buy", "Sell"),
    ]


def test_build_summary_groups_by_token_and_ranks_net_moves() -> None:
    schedule = daily("09:00", "UTC")
    period = period_containing(schedule, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    grades = {BTC.token_id: {Kind.TM_GRADE: CurrentGrade(81.0, "Strong Buy")}}
    summary = build_summary(schedule, period, _summary_changes(), grades)
    assert summary.changes == 4
    assert [(t.symbol, t.count) for t in summary.tokens] == [("BTC", 3), ("ETH", 1)]
    (up,) = summary.upgrades
    assert (up.symbol, up.from_value, up.to_value) == ("BTC", 55.0, 81.0)
    (down,) = summary.downgrades
    assert (down.symbol, down.points) == ("ETH", -32.0)
    assert [(g.symbol, g.text) for g in summary.grades] == [("BTC", "TM 81.0 (Strong Buy)")]
    assert summary.chart_token_id == BTC.token_id


def test_build_summary_without_changes_says_so() -> None:
    schedule = daily("09:00", "UTC")
    period = period_containing(schedule, NOW)
    change = digest_change(DEST, build_summary(schedule, period, [], {}), NOW)
    message = render([change])
    assert message.lines == ("No signal or grade changes in this period.",)


def test_summary_json_round_trips() -> None:
    schedule = daily("09:00", "UTC")
    period = period_containing(schedule, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    summary = build_summary(schedule, period, _summary_changes(), {})
    assert summary_from_json(summary_to_json(summary)) == summary
    assert json.loads(summary_to_json(summary))["key"] == period.key


def test_digest_change_id_is_per_destination_and_period() -> None:
    assert digest_change_id(DEST, "daily:2026-11-30") == digest_change_id(DEST,
                                                                          "daily:2026-11-30")
    assert digest_change_id(DEST, "daily:2026-11-30") != digest_change_id(DEST,
                                                                          "daily:2026-12-01")
    other = Destination("telegram", "-1001", "7")
    assert digest_change_id(DEST, "daily:2026-11-30") != digest_change_id(other,
                                                                          "daily:2026-11-30")


def test_render_scheduled_digest_has_title_sections_and_movers() -> None:
    schedule = daily("09:00", BERLIN)
    period = period_containing(schedule, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    summary = build_summary(schedule, period, _summary_changes(), {})
    message = render([digest_change(DEST, summary, NOW)])
    assert message.scheduled and not message.is_digest
    assert message.title == ("Daily digest · 2026-11-29 09:00 → 2026-11-30 09:00 "
                             "Europe/Berlin")
    assert message.lines[0] == "4 changes across 2 tokens."
    assert "Biggest upgrades:" in message.lines and "Biggest downgrades:" in message.lines
    assert "▲ BTC TM grade 55.0 → 81.0 (+26.0) (Neutral → Strong Buy)" in message.lines
    assert "▼ ETH fundamental grade 70.0 → 38.0 (-32.0) (Buy → Sell)" in message.lines
    assert "BTC (Bitcoin): 3 changes" in message.lines
    assert "  ▲ daily signal turned bullish · bearish → bullish" in message.lines


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["daily", "weekly", "off", "mon", "sunday", "09:00", "24:00",
                              "9:5", "UTC", "Europe/Berlin", "only", "always", "x", ""]),
             max_size=6).map(" ".join)))
def test_parse_schedule_property_any_text_is_a_schedule_or_a_value_error(text: str) -> None:
    try:
        schedule = parse_schedule(text, NOW)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    if schedule is not None:
        assert parse_schedule(schedule.spec, NOW) == schedule


def test_without_muted_leaves_out_changes_detected_while_their_token_was_muted() -> None:
    start, end = NOW - timedelta(hours=2), NOW + timedelta(hours=22)
    before = flip(BTC, 1.0, start - timedelta(seconds=1))
    during = flip(BTC, -1.0, start)
    other = flip(ETH, 1.0, NOW)
    kept = without_muted([before, during, other], {BTC.token_id: (start, end)})
    assert kept == [before, other]
