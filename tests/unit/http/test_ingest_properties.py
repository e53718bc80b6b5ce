"""Properties: any request body gives readings or an IngestError, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.signing import DEFAULT_TOLERANCE
from alertbot.domain.validity import timestamp_problem
from alertbot.http.ingest import IngestError, parse_body

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEYS = ["symbol", "token_id", "kind", "value", "timestamp", "label"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(), st.text(max_size=25), st.sampled_from([
        "signal", "hourly", "tm_grade", "fundamental", "BTC", "bullish", "NaN", "1e400",
        "2026-11-27T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
        "2099-01-01"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
readings = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))
documents = st.one_of(readings, st.lists(readings, max_size=4), values)


def check(body: bytes) -> None:
    try:
        parsed = parse_body(body, NOW)
    except IngestError as exc:
        assert exc.status in (400, 413, 422) and exc.message
        return
    assert parsed
    for reading in parsed:
        assert timestamp_problem(reading.timestamp, NOW,
                                 max_skew=timedelta(seconds=DEFAULT_TOLERANCE)) is None


@given(documents)
def test_parse_body_any_json_readings_or_ingest_error(document: Any) -> None:
    check(json.dumps(document).encode())


@given(st.binary(max_size=200))
def test_parse_body_any_bytes_readings_or_ingest_error(body: bytes) -> None:
    check(body)
