"""User-typed values: durations, kinds, quiet hours, modes."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, Kind, Mode
from alertbot.domain.parsing import (
    format_duration,
    parse_duration,
    parse_kinds,
    parse_mode,
    parse_quiet,
    parse_timezone,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
    ("1H 30M", 5400), ("0.5", 0.5), ("1w", 604800),
])
def test_parse_duration_accepts_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected a duration"), ("abc", "not a duration"), ("5x", "not a duration"),
    ("5m junk", "not a duration"), ("x5m", "not a duration"), ("-5", "negative"),
    ("0", "longer than zero"), ("400d", "longer than a year"), ("nan", "not a duration"),
])
def test_parse_duration_rejects_with_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_parse_duration_zero_when_allowed() -> None:
    assert parse_duration("0", allow_zero=True) == timedelta(0)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (0.5, "0.5s"), (90, "1m30s"),
                                               (3600, "1h"),
                                               (90061, "1d1h1m1s")])
def test_format_duration_is_shortest(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(("text", "kinds"), [
    (None, ALL_KINDS), ("", ALL_KINDS), ("all", ALL_KINDS),
    ("hourly,signal", (Kind.SIGNAL, Kind.HOURLY)),
    ("grade fundamental", (Kind.TM_GRADE, Kind.FUNDAMENTAL)),
    ("tm-grade,tm_grade", (Kind.TM_GRADE,)),
])
def test_parse_kinds_aliases_and_order(text: str | None, kinds: tuple[Kind, ...]) -> None:
    assert parse_kinds(text) == kinds


def test_parse_kinds_unknown_names_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown kind 'price'.*signal, hourly"):
        parse_kinds("signal,price")


def test_parse_quiet_with_and_without_zone() -> None:
    quiet = parse_quiet("22:00-07:00 europe/berlin")
    assert (quiet.start, quiet.end, quiet.tz) == (time(22), time(7), "Europe/Berlin")
    assert parse_quiet("9:30-10:00").tz == "UTC"


@pytest.mark.parametrize(("text", "message"), [
    ("22:00", "HH:MM-HH:MM"), ("25:00-07:00", "not a time"), ("22:00-22:00", "different"),
    ("22:00-07:00 Mars/Base", "unknown time zone"), ("22:00-07:00 a b", "HH:MM-HH:MM"),
    ("22:00-07:00 ../../etc/passwd", "unknown time zone"),
])
def test_parse_quiet_rejects_with_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quiet(text)


def test_parse_timezone_utc_aliases() -> None:
    assert parse_timezone("gmt") == "UTC"


def test_parse_mode_kind_mode_pair_parsed_others_rejected() -> None:
    assert parse_mode("hourly=silent") == (Kind.HOURLY, Mode.SILENT)
    for bad in ("hourly", "hourly=loud", "all=off"):
        with pytest.raises(ValueError):
            parse_mode(bad)


@pytest.mark.parametrize(("text", "message"), [
    ("inf", "not a duration"), ("1e20", "not a duration"), ("1e400", "not a duration"),
    ("infinity", "not a duration"), ("9" * 400, "longer than a year"),
    ("9" * 400 + "s", "longer than a year"), ("1e5s", "not a duration"),
    ("٣", "not a duration"), ("²", "not a duration"),
])
def test_parse_duration_float_spellings_and_huge_values_raise_value_error(
        text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize("text", [",", " , ,", ",\t"])
def test_parse_kinds_only_separators_raises_instead_of_no_kinds(text: str) -> None:
    with pytest.raises(ValueError, match="at least one kind"):
        parse_kinds(text)
