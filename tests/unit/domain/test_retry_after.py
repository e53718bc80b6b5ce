"""Retry-After header values: delta-seconds or an HTTP-date, clamped, never raising."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.retry_after import RETRY_AFTER_MAX, parse_retry_after

JULY_1 = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    ("2", 2.0), ("0.5", 0.5), (" 10 ", 10.0), ("-3", 0.0),
    ("Tue, 01 Jul 2025 00:01:00 GMT", 60.0), ("soon", None), ("", None), (None, None),
])
def test_parse_retry_after_seconds_or_http_date(header: str | None,
                                                expected: float | None) -> None:
    assert parse_retry_after(header, JULY_1) == expected


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Mon, 30 Jun 2025 23:59:00 GMT", JULY_1) == 0.0


def test_parse_retry_after_date_without_zone_is_gmt() -> None:
    assert parse_retry_after("Tue, 01 Jul 2025 00:00:30 -0000", JULY_1) == 30.0


@pytest.mark.parametrize("header", ["86400", "9" * 400, "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_parse_retry_after_long_waits_are_capped(header: str) -> None:
    assert parse_retry_after(header, JULY_1) == RETRY_AFTER_MAX


@pytest.mark.parametrize("header", ["nan", "inf", "-inf", "1e3", "1_0", "0x10", "5s", "Tue"])
def test_parse_retry_after_other_spellings_are_unreadable(header: str) -> None:
    assert parse_retry_after(header, JULY_1) is None


@given(st.text())
def test_parse_retry_after_any_text_is_none_or_a_finite_wait(header: str) -> None:
    wait = parse_retry_after(header, JULY_1)
    assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= RETRY_AFTER_MAX)


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_parse_retry_after_any_http_date_is_a_finite_wait(when: datetime,
                                                          now: datetime) -> None:
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    wait = parse_retry_after(header, now)
    assert wait is not None and 0.0 <= wait <= RETRY_AFTER_MAX
