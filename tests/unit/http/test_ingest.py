"""Push ingest bodies: validated by the poller's rules, every rejection with its own message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from alertbot.http.ingest import MAX_READINGS, IngestError, ReplayGuard, parse_body

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GOOD: dict[str, Any] = {"symbol": "BTC", "kind": "signal", "value": "bullish",
                        "timestamp": "2026-11-27T00:00:00Z"}


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(("reading", "value"), [
    ({"value": 1}, 1.0), ({"value": -1}, -1.0), ({"value": "bearish"}, -1.0),
    ({"value": "1"}, 1.0), ({"kind": "hourly", "value": "-1"}, -1.0),
    ({"kind": "tm_grade", "value": 62.4}, 62.4), ({"kind": "tm_grade", "value": "62.4"}, 62.4),
    ({"kind": "fundamental", "value": 0}, 0.0), ({"kind": "fundamental", "value": 100}, 100.0),
])
def test_parse_body_valid_values_accepted(reading: dict[str, Any], value: float) -> None:
    (parsed,) = parse_body(body({**GOOD, **reading}), NOW)
    assert parsed.value == value


def test_parse_body_optional_fields_and_date_only_timestamp_accepted() -> None:
    (parsed,) = parse_body(body({**GOOD, "symbol": "$btc", "token_id": "3375",
                                 "timestamp": "2026-11-27", "label": "Buy"}), NOW)
    assert (parsed.symbol, parsed.token_id, parsed.label) == ("BTC", 3375, "Buy")
    assert parsed.timestamp == datetime(2026, 11, 27, tzinfo=UTC)


def test_parse_body_list_keeps_order() -> None:
    parsed = parse_body(body([GOOD, {**GOOD, "symbol": "ETH"}]), NOW)
    assert [p.symbol for p in parsed] == ["BTC", "ETH"]


@pytest.mark.parametrize(("raw", "status", "message"), [
    (b"{", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b'"BTC"', 400, "expected a JSON object"),
    (b"[1, 2]", 400, "expected a JSON object"),
    (b"[]", 400, "empty"),
    (body([GOOD] * (MAX_READINGS + 1)), 413, f"at most {MAX_READINGS}"),
])
def test_parse_body_malformed_rejected(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_body(raw, NOW)
    assert caught.value.status == status
    assert message in caught.value.message


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "price"}, "kind: must be one of signal, hourly, tm_grade, fundamental"),
    ({"value": 0}, "value: a signal must be 1 (bullish) or -1 (bearish), not neutral"),
    ({"value": 2}, "value: a signal must be 1, -1, bullish or bearish"),
    ({"value": "sideways"}, "value: a signal must be 1, -1, bullish or bearish"),
    ({"value": True}, "value: must be a number"),
    ({"value": None}, "value: must be a number"),
    ({"kind": "tm_grade", "value": 101}, "value: a grade must be a number from 0 to 100"),
    ({"kind": "tm_grade", "value": "NaN"}, "value: a grade must be a number from 0 to 100"),
    ({"kind": "fundamental", "value": "good"}, "value: a grade must be a number from 0 to 100"),
    ({"timestamp": "yesterday"}, "timestamp: expected ISO-8601"),
    ({"timestamp": "2026-11-28T00:00:00Z"}, "timestamp: is in the future"),
    ({"timestamp": "1999-01-01T00:00:00Z"}, "timestamp: is before 2009-01-03"),
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp: expected ISO-8601"),
    ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp: expected ISO-8601"),
    ({"symbol": "B T C"}, "symbol: not a token symbol"),
    ({"symbol": ""}, "symbol:"),
    ({"token_id": -5}, "token_id:"),
    ({"token_id": True}, "token_id: must be a positive integer"),
    ({"price": 1}, "price: unknown field"),
])
def test_parse_body_invalid_field_rejected_with_its_name(change: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_body(body({**GOOD, **change}), NOW)
    assert caught.value.status == 422
    assert message in caught.value.message


def test_parse_body_missing_fields_named() -> None:
    with pytest.raises(IngestError) as caught:
        parse_body(body({"kind": "signal"}), NOW)
    assert "symbol: is required" in caught.value.message
    assert "timestamp: is required" in caught.value.message


def test_parse_body_list_problem_names_its_index() -> None:
    with pytest.raises(IngestError) as caught:
        parse_body(body([GOOD, {**GOOD, "value": 7}]), NOW)
    assert caught.value.message.startswith("readings[1].value:")


def test_replay_guard_second_use_refused_until_window_passes() -> None:
    guard = ReplayGuard(tolerance=300)
    assert guard.first_use("sig", 1000, now=1000.0)
    assert not guard.first_use("sig", 1000, now=1200.0)
    assert guard.first_use("other", 1000, now=1200.0)
    assert guard.first_use("sig", 1000, now=1301.0), "forgotten once it cannot verify anyway"
    assert len(guard) == 1


def test_replay_guard_bounded_by_limit() -> None:
    guard = ReplayGuard(tolerance=300, limit=3)
    for i in range(5):
        assert guard.first_use(f"s{i}", 1000, now=1000.0)
    assert len(guard) == 3


@pytest.mark.parametrize(("raw", "status", "message"), [
    (b"[" * 30_000 + b"]" * 30_000, 400, "body is nested too deeply"),
    (body({**GOOD, "token_id": 10**30}), 422, "token_id: must be at most 9223372036854775807"),
    (body({**GOOD, "token_id": "9" * 5000}), 422, "token_id: must be at most"),
    (body({**GOOD, "timestamp": "0001-01-01T00:00:00+01:00"}), 422,
     "timestamp is out of range"),
    (body({**GOOD, "timestamp": "9999-12-31T23:59:59-01:00"}), 422,
     "timestamp is out of range"),
    (body({**GOOD, "timestamp": "0001-01-01T00:00:00Z"}), 422, "timestamp: is before 2009-01-03"),
    (body({**GOOD, "timestamp": "9999-12-31T23:59:59Z"}), 422, "timestamp: is in the future"),
    (body({**GOOD, "value": 10**400}), 422, "value: a signal must be"),
    (body({**GOOD, "kind": "tm_grade", "value": 10**400}), 422, "value: a grade must be"),
])
def test_parse_body_hostile_values_rejected_not_raised(raw: bytes, status: int,
                                                       message: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_body(raw, NOW)
    assert (caught.value.status, message in caught.value.message) == (status, True), \
        caught.value.message
