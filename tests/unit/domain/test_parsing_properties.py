"""Properties: every chat/CLI argument parser answers a valid value or a ValueError."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.models import Policy
from alertbot.domain.parsing import (
    MAX_DURATION,
    parse_clock,
    parse_direction,
    parse_duration,
    parse_kinds,
    parse_mode,
    parse_quiet,
    parse_timestamp,
    parse_timezone,
)
from alertbot.domain.policy import (
    MAX_MUTE,
    MAX_WINDOW,
    MIN_WINDOW,
    parse_max_alerts,
    parse_mute,
    parse_window,
    update_policy,
)
from alertbot.domain.validity import timestamp_problem

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

numberish = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.from_regex(r"\A-?[0-9]{1,400}(\.[0-9]{1,5})?\s?[smhdwSMHDW]?\Z"),
    st.sampled_from(["inf", "-inf", "nan", "1e20", "1e400", "²", "٣", "1_000", "0x10",
                     "infinity", " ", "", "1h 30m", "1h30", "5m5", "9" * 5000]),
)
text_or_number = st.one_of(st.text(max_size=60), numberish)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=40), st.integers(min_value=-(10**400),
                                                           max_value=10**400))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10)


def valid_or_value_error(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        assert str(exc), "a refusal names the problem"
        return None


@given(text_or_number, st.booleans())
def test_parse_duration_any_text_is_bounded_duration_or_value_error(text: str,
                                                                    zero: bool) -> None:
    value = valid_or_value_error(lambda t: parse_duration(t, allow_zero=zero), text)
    if value is not None:
        assert timedelta(0) <= value <= MAX_DURATION
        assert zero or value > timedelta(0)


@pytest.mark.parametrize(("parse", "low", "high"), [
    (parse_window, MIN_WINDOW, MAX_WINDOW), (parse_mute, timedelta(0), MAX_MUTE)])
@given(text=text_or_number)
def test_window_and_mute_any_text_in_range_or_value_error(
        parse: Callable[[str], timedelta], low: timedelta, high: timedelta, text: str) -> None:
    value = valid_or_value_error(parse, text)
    if value is not None:
        assert low <= value <= high


@given(text_or_number)
def test_parse_max_alerts_any_text_in_range_or_value_error(text: str) -> None:
    value = valid_or_value_error(parse_max_alerts, text)
    if value is not None:
        assert 1 <= value <= 1000


@given(st.one_of(st.none(), st.text(max_size=60)))
def test_parse_kinds_any_text_kinds_or_value_error(text: str | None) -> None:
    value = valid_or_value_error(parse_kinds, text)
    assert value is None or len(value) >= 1


@pytest.mark.parametrize("parse", [parse_clock, parse_timezone, parse_quiet, parse_mode])
@given(text=st.one_of(st.text(max_size=80), st.from_regex(
    r"\A[0-9]{1,3}:[0-9]{1,3}-[0-9]{1,3}:[0-9]{1,3}( [A-Za-z_/.+-]{0,30})?\Z")))
def test_quiet_hours_clock_zone_and_mode_any_text_value_or_value_error(
        parse: Callable[[str], Any], text: str) -> None:
    valid_or_value_error(parse, text)


@given(st.one_of(json_values, st.datetimes(), st.dates(), st.datetimes(
    timezones=st.timezones()), st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z)?)?\Z")))
def test_parse_timestamp_any_value_aware_utc_or_value_error(value: Any) -> None:
    parsed = valid_or_value_error(parse_timestamp, value)
    if parsed is not None:
        assert parsed.tzinfo is not None
        assert timestamp_problem(parsed, NOW) in (None, "is in the future",
                                                  "is before 2009-01-03")


@given(json_values)
def test_parse_direction_any_json_value_is_a_direction_or_value_error(value: Any) -> None:
    direction = valid_or_value_error(parse_direction, value)
    assert direction in (None, 1.0, 0.0, -1.0)


@given(st.fixed_dictionaries({}, optional={
    "max_alerts": text_or_number, "window": text_or_number, "quiet": st.text(max_size=40),
    "mute": text_or_number, "unmute": st.booleans(), "settle": text_or_number,
    "modes": st.lists(st.text(max_size=20), max_size=3)}))
def test_update_policy_any_settings_new_policy_or_value_error(changes: dict[str, Any]) -> None:
    policy = Policy()
    updated = valid_or_value_error(lambda c: update_policy(policy, NOW, **c), changes)
    assert policy == Policy()  # never changed in place
    if updated is not None:
        assert 1 <= updated.max_alerts <= 1000
