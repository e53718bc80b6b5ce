"""Defensive parsing of Token Metrics rows into readings."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from alertbot.domain.models import Kind
from alertbot.domain.parsing import parse_direction, parse_timestamp
from alertbot.sources.tokenmetrics.rows import (
    parse_grades,
    parse_hourly,
    parse_signals,
    parse_tokens,
)

FETCHED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
BTC = {"TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-04-10T00:00:00.000Z", datetime(2025, 4, 10, tzinfo=UTC)),
    ("2025-04-10", datetime(2025, 4, 10, tzinfo=UTC)),
    ("2025-04-10T02:00:00+02:00", datetime(2025, 4, 10, tzinfo=UTC)),
    ("2025-04-10T05:00:00", datetime(2025, 4, 10, 5, tzinfo=UTC)),
])
def test_parse_timestamp_accepts_api_forms(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1, 1.0), (-1, -1.0), ("1", 1.0), ("-1", -1.0), ("0", 0.0), ("bullish", 1.0),
    ("Bearish", -1.0), (1.0, 1.0),
])
def test_parse_direction_accepts_numbers_strings_words(value: object, expected: float) -> None:
    assert parse_direction(value) == expected


@pytest.mark.parametrize("value", [2, "abc", True, None, "0.5"])
def test_parse_direction_rejects_others(value: object) -> None:
    with pytest.raises(ValueError):
        parse_direction(value)


def test_parse_signals_newest_trend_and_fired_date() -> None:
    rows = [
        {**BTC, "DATE": "2025-04-10T00:00:00.000Z", "TRADING_SIGNAL": 0, "TOKEN_TREND": -1,
         "tm_link": "bitcoin", "TM_LINK": "https://app.tokenmetrics.com/undefined"},
        {**BTC, "DATE": "2025-04-08T00:00:00.000Z", "TRADING_SIGNAL": -1, "TOKEN_TREND": -1},
        {**BTC, "DATE": "2025-04-01T00:00:00.000Z", "TRADING_SIGNAL": 1, "TOKEN_TREND": 1},
    ]
    (reading,) = parse_signals(rows).readings
    assert (reading.kind, reading.value) == (Kind.SIGNAL, -1.0)
    assert reading.source_ts == datetime(2025, 4, 10, tzinfo=UTC)
    assert reading.fired_at == datetime(2025, 4, 8, tzinfo=UTC)
    assert reading.token.slug == "bitcoin" and reading.token.symbol == "BTC"


def test_parse_signals_lower_case_v3_fields() -> None:
    rows = [{"token_id": 3306, "token_name": "Ethereum", "token_symbol": "eth",
             "date": "2025-07-02", "trading_signal": "1", "token_trend": "1"}]
    (reading,) = parse_signals(rows).readings
    assert (reading.token.token_id, reading.token.symbol, reading.value) == (3306, "ETH", 1.0)


# Recorded shapes of each API version (reference/tokenmetrics.md §5, §6): v2 UPPER_SNAKE with
# the `tm_link` slug and the broken `TM_LINK`; v3 lower case with `slug`, `app_link` and the
# signal and trend also as words.
V2_SIGNAL = {"TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC",
             "DATE": "2025-04-10T00:00:00.000Z", "TRADING_SIGNAL": 0, "TOKEN_TREND": -1,
             "TRADING_SIGNALS_RETURNS": 45098.7035, "HOLDING_RETURNS": 7559.6422,
             "tm_link": "bitcoin", "TM_TRADER_GRADE": 26.48, "TM_INVESTOR_GRADE": 58.23,
             "TM_LINK": "https://app.tokenmetrics.com/undefined"}
V3_SIGNAL = {"token_id": 3375, "token_name": "Bitcoin", "token_symbol": "BTC",
             "slug": "bitcoin", "date": "2025-04-10T00:00:00.000Z", "trading_signal": 0,
             "token_signal_str": "neutral", "token_trend": -1, "token_trend_str": "bearish",
             "trading_signals_returns": 45098.7035, "holding_returns": 7559.6422,
             "tm_grade": 26.48, "fundamental_grade": 58.23,
             "app_link": "https://app.tokenmetrics.com/bitcoin"}
V2_HOURLY = {"TIMESTAMP": "2025-09-01T14:00:00.000Z", "TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin",
             "TOKEN_SYMBOL": "BTC", "CLOSE": 109250.41, "SIGNAL": "1", "POSITION": "LONG"}
V3_HOURLY = {"timestamp": "2025-09-01T14:00:00.000Z", "token_id": 3375,
             "token_name": "Bitcoin", "token_symbol": "BTC", "slug": "bitcoin",
             "close": 109250.41, "signal": "1", "position": "LONG"}
V2_TM_GRADE = {"TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC",
               "TM_GRADE": "62.4", "TM_GRADE_SIGNAL": "Buy", "TM_GRADE_24h_PCT_CHANGE": 3.1,
               "TM_TRADER_GRADE_24H_CHANGE": 1.9, "QUANT_GRADE": 55.2,
               "MOMENTUM": "Gaining Momentum", "FUNDAMENTAL_GRADE": 84.7,
               "FUNDAMENTAL_GRADE_CLASS": "blueChip"}
V3_TM_GRADE = {"token_id": 3375, "token_name": "Bitcoin", "token_symbol": "BTC",
               "slug": "bitcoin", "tm_grade": 62.4, "tm_grade_signal": "Buy",
               "tm_grade_24h_pct_change": 3.1, "quant_grade": 55.2,
               "momentum": "Gaining Momentum", "fundamental_grade": 84.7,
               "fundamental_grade_class": "blueChip", "date": "2025-09-01"}


@pytest.mark.parametrize("row", [V2_SIGNAL, V3_SIGNAL], ids=["v2", "v3"])
def test_parse_signals_recorded_shapes_of_both_versions_read_alike(row: dict[str, object],
                                                                    ) -> None:
    report = parse_signals([row])
    (reading,) = report.readings
    assert (reading.value, reading.source_ts) == (-1.0, datetime(2025, 4, 10, tzinfo=UTC))
    assert (reading.token.symbol, reading.token.slug) == ("BTC", "bitcoin")
    assert report.skipped == []


def test_parse_signals_v3_trend_only_as_words_reads_the_words() -> None:
    row = {k: v for k, v in V3_SIGNAL.items() if k not in ("token_trend", "trading_signal")}
    row["token_signal_str"] = "bearish"
    (reading,) = parse_signals([row]).readings
    assert reading.value == -1.0 and reading.fired_at == datetime(2025, 4, 10, tzinfo=UTC)


def test_parse_signals_missing_or_unreadable_trend_is_no_data_not_malformed() -> None:
    bare = {k: v for k, v in V3_SIGNAL.items() if not k.startswith(("token_trend", "trading"))}
    nulls = {**V2_SIGNAL, "TOKEN_TREND": None, "TRADING_SIGNAL": None}
    words = {**bare, "token_trend_str": "sideways"}
    report = parse_signals([bare, nulls, words])
    assert report.readings == [] and report.skipped == []


@pytest.mark.parametrize("row", [V2_HOURLY, V3_HOURLY], ids=["v2", "v3"])
def test_parse_hourly_recorded_shapes_of_both_versions_read_alike(row: dict[str, object],
                                                                   ) -> None:
    (reading,) = parse_hourly([row]).readings
    assert (reading.value, reading.token.symbol) == (1.0, "BTC")


def test_parse_hourly_missing_signal_is_no_data_not_malformed() -> None:
    rows = [{k: v for k, v in V3_HOURLY.items() if k != "signal"}, {**V2_HOURLY, "SIGNAL": None}]
    report = parse_hourly(rows)
    assert report.readings == [] and report.skipped == []


@pytest.mark.parametrize("row", [V2_TM_GRADE, V3_TM_GRADE], ids=["v2", "v3"])
def test_parse_grades_recorded_shapes_of_both_versions_read_alike(row: dict[str, object],
                                                                   ) -> None:
    (grade,) = parse_grades(Kind.TM_GRADE, [row], FETCHED).readings
    (fundamental,) = parse_grades(Kind.FUNDAMENTAL, [row], FETCHED).readings
    assert (grade.value, grade.label) == (62.4, "Buy")
    assert (fundamental.value, fundamental.label) == (84.7, "blueChip")


def test_parse_hourly_newest_non_zero_signal() -> None:
    rows = [
        {**BTC, "TIMESTAMP": "2025-09-01T14:00:00.000Z", "SIGNAL": "0"},
        {**BTC, "TIMESTAMP": "2025-09-01T12:00:00.000Z", "SIGNAL": "-1"},
        {**BTC, "TIMESTAMP": "2025-09-01T13:00:00.000Z", "SIGNAL": "0"},
        {**BTC, "TIMESTAMP": "2025-09-01T10:00:00.000Z", "SIGNAL": "1"},
    ]
    (reading,) = parse_hourly(rows).readings
    assert reading.value == -1.0
    assert reading.source_ts == datetime(2025, 9, 1, 12, tzinfo=UTC)


def test_parse_hourly_all_zero_yields_nothing() -> None:
    rows = [{**BTC, "TIMESTAMP": "2025-09-01T14:00:00.000Z", "SIGNAL": "0"}]
    assert parse_hourly(rows).readings == []


def test_parse_grades_strings_and_missing_date_use_fetch_time() -> None:
    rows = [{**BTC, "TM_GRADE": "62.4", "TM_GRADE_SIGNAL": "Buy",
             "FUNDAMENTAL_GRADE": None, "TM_GRADE_24h_PCT_CHANGE": "3.1"}]
    (reading,) = parse_grades(Kind.TM_GRADE, rows, FETCHED).readings
    assert (reading.value, reading.label, reading.source_ts) == (62.4, "Buy", FETCHED)
    assert parse_grades(Kind.FUNDAMENTAL, rows, FETCHED).readings == []


def test_parse_malformed_row_is_skipped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {**BTC, "DATE": "2025-04-10", "TOKEN_TREND": "abc"},
        {"TOKEN_ID": 3306, "TOKEN_SYMBOL": "ETH", "DATE": "2025-04-10", "TOKEN_TREND": 1},
        {"TOKEN_NAME": "no id", "DATE": "2025-04-10", "TOKEN_TREND": 1},
        "not a row",
    ]
    with caplog.at_level(logging.WARNING):
        report = parse_signals(rows)
    assert [r.token.token_id for r in report.readings] == [3306]
    assert len(report.skipped) == 3
    assert "token 3375 from /trading-signals" in report.skipped[0]
    assert "skipped malformed row" in caplog.text


def test_parse_grade_out_of_range_is_malformed() -> None:
    report = parse_grades(Kind.TM_GRADE, [{**BTC, "TM_GRADE": 150}], FETCHED)
    assert report.readings == [] and report.skipped


def test_parse_tokens_extra_fields_ignored_missing_name_falls_back_to_symbol() -> None:
    report = parse_tokens([{**BTC, "tm_link": "bitcoin", "EXTRA": [1, 2]},
                           {"TOKEN_ID": "3306", "SYMBOL": "ETH", "TOKEN_NAME": None}])
    assert report.tokens[3375].slug == "bitcoin"
    assert (report.tokens[3306].symbol, report.tokens[3306].name) == ("ETH", "ETH")


@pytest.mark.parametrize("text", [
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-13-01", "x" * 10_000])
def test_parse_timestamp_unrepresentable_or_junk_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [10**30, -(10**400), float("nan"), float("inf"), "1e400",
                                   "9" * 5000])
def test_parse_direction_huge_or_non_finite_raises_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        parse_direction(value)


@pytest.mark.parametrize("bad", [
    {"DATE": "0001-01-01T00:00:00+01:00"},
    {"DATE": "9999-12-31T23:59:59-01:00"},
    {"TOKEN_ID": 10**30},
    {"TOKEN_ID": "1" + "0" * 30},
    {"TOKEN_TREND": 10**30},
    {"TRADING_SIGNAL": 10**400},
    {"TOKEN_TREND": float("nan")},
])
@pytest.mark.parametrize("lower", [False, True])
def test_parse_signals_bad_row_costs_that_row_only(bad: dict[str, object], lower: bool) -> None:
    good = {**BTC, "DATE": "2025-04-10", "TOKEN_TREND": 1}
    broken = {"TOKEN_ID": 3306, "TOKEN_SYMBOL": "ETH", "DATE": "2025-04-10", "TOKEN_TREND": 1,
              **bad}
    rows = [good, broken]
    if lower:
        rows = [{k.lower(): v for k, v in row.items()} for row in rows]
    report = parse_signals(rows)
    assert [r.token.token_id for r in report.readings] == [3375]
    assert len(report.skipped) == 1


@pytest.mark.parametrize("grade", [float("nan"), float("inf"), "inf", 10**30, 10**400, "1e400",
                                   -0.5])
def test_parse_grades_non_finite_or_huge_grade_is_malformed(grade: object) -> None:
    report = parse_grades(Kind.TM_GRADE, [{**BTC, "TM_GRADE": grade}], FETCHED)
    assert report.readings == [] and len(report.skipped) == 1


def test_parse_signals_future_row_is_skipped_so_todays_row_counts() -> None:
    rows = [{**BTC, "DATE": "2099-01-01", "TOKEN_TREND": 1},
            {**BTC, "DATE": "2026-11-28", "TOKEN_TREND": -1}]
    report = parse_signals(rows, now=FETCHED)
    assert [(r.value, r.source_ts) for r in report.readings] == [
        (-1.0, datetime(2026, 11, 28, tzinfo=UTC))]
    assert "in the future" in report.skipped[0]
