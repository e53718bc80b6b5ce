"""Properties: any JSON served as Token Metrics rows, in either field casing, parses safely."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.models import ALL_KINDS, Kind
from alertbot.domain.validity import MAX_TOKEN_ID, timestamp_problem
from alertbot.sources.tokenmetrics.rows import ParseReport, parse_kind, parse_tokens

FETCHED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
FIELDS = ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "SYMBOL", "TM_LINK", "SLUG", "DATE",
          "TIMESTAMP", "TRADING_SIGNAL", "TOKEN_TREND", "SIGNAL", "TM_GRADE", "TM_GRADE_SIGNAL",
          "FUNDAMENTAL_GRADE", "FUNDAMENTAL_GRADE_CLASS"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(), st.text(max_size=30), st.sampled_from([
        "NaN", "inf", "1e400", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
        "2099-01-01", "2026-11-28", "2026-11-28T08:00:00.000Z", "1", "-1", "0", "62.4",
        "bullish", "²"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
rows = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)),
    values,
)


def cased(row: Any, lower: bool) -> Any:
    if lower and isinstance(row, dict):
        return {str(k).lower(): v for k, v in row.items()}
    return row


@pytest.mark.parametrize("kind", ALL_KINDS)
@given(batch=st.lists(rows, max_size=6), lower=st.booleans())
def test_parse_kind_any_rows_valid_readings_and_skips_never_raises(
        kind: Kind, batch: list[Any], lower: bool) -> None:
    report = parse_kind(kind, [cased(row, lower) for row in batch], FETCHED, ParseReport())
    for reading in report.readings:
        assert 0 < reading.token.token_id <= MAX_TOKEN_ID
        assert math.isfinite(reading.value)
        assert timestamp_problem(reading.source_ts, FETCHED) is None
        if kind in (Kind.SIGNAL, Kind.HOURLY):
            assert reading.value in (1.0, 0.0, -1.0)
        else:
            assert 0 <= reading.value <= 100
    assert len(report.skipped) <= len(batch)


@given(batch=st.lists(rows, max_size=6), lower=st.booleans())
def test_parse_tokens_any_rows_never_raises(batch: list[Any], lower: bool) -> None:
    report = parse_tokens([cased(row, lower) for row in batch])
    assert all(0 < token_id <= MAX_TOKEN_ID for token_id in report.tokens)
