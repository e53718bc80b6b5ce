"""Operator alerts as changes: identity per occurrence, thresholds, staleness, rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain import ops_events as ops
from alertbot.domain.models import ALL_KINDS, ALL_KINDS_MASK, Destination, Direction, Kind
from alertbot.domain.parsing import parse_kinds
from alertbot.domain.render import digest_line, render

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TG = Destination("telegram", "-100123")


def test_ops_kind_not_part_of_market_kinds_or_all_mask() -> None:
    assert Kind.OPS not in ALL_KINDS
    assert not ALL_KINDS_MASK & Kind.OPS.bit
    assert parse_kinds("all") == ALL_KINDS
    with pytest.raises(ValueError, match="unknown kind 'ops'"):
        parse_kinds("ops")


def test_ops_change_same_occurrence_same_id_later() -> None:
    event = ops.key_rejected("HTTP 401", NOW)
    first = ops.ops_change(event, NOW)
    again = ops.ops_change(ops.key_rejected("HTTP 401 again", NOW), NOW + timedelta(hours=2))
    assert first.change_id == again.change_id
    assert first.kind is Kind.OPS and first.direction is Direction.DOWN


def test_ops_change_new_occurrence_new_id() -> None:
    first = ops.ops_change(ops.key_rejected("x", NOW), NOW)
    second = ops.ops_change(ops.key_rejected("x", NOW + timedelta(days=1)), NOW)
    recovered = ops.ops_change(ops.key_accepted(NOW, NOW + timedelta(hours=1)), NOW)
    assert len({first.change_id, second.change_id, recovered.change_id}) == 3
    assert recovered.direction is Direction.UP


@pytest.mark.parametrize(("used", "expected"), [
    (0, []), (7_999, []), (8_000, ["2026-11|80"]), (9_999, ["2026-11|80"]),
    (10_000, ["2026-11|80", "2026-11|100"]), (12_000, ["2026-11|80", "2026-11|100"]),
])
def test_quota_crossed_thresholds_listed_once_per_month(used: int, expected: list[str]) -> None:
    events = ops.quota_crossed(used, 10_000, "2026-11", NOW)
    assert [e.occurrence for e in events] == expected


def test_dead_lettered_same_destination_same_hour_same_id() -> None:
    a = ops.ops_change(ops.dead_lettered(TG, "HTTP 400", NOW), NOW)
    b = ops.ops_change(ops.dead_lettered(TG, "HTTP 403", NOW + timedelta(minutes=30)), NOW)
    c = ops.ops_change(ops.dead_lettered(TG, "HTTP 400", NOW + timedelta(hours=1)), NOW)
    assert a.change_id == b.change_id != c.change_id


@pytest.mark.parametrize(("last_success", "age_s", "expected"), [
    (None, 29, False), (None, 31, True), (NOW, 29, False), (NOW, 31, True),
])
def test_is_stale_after_three_intervals(last_success: datetime | None, age_s: int,
                                        expected: bool) -> None:
    now = NOW + timedelta(seconds=age_s)
    assert ops.is_stale(last_success, NOW, 10.0, now) is expected


def test_render_ops_message_names_the_bot_and_has_no_token_link() -> None:
    change = ops.ops_change(ops.destination_paused(TG, "bot was blocked", NOW), NOW)
    message = render([change])
    assert message.title == "alertbot: alerts to telegram:-100123 paused"
    assert message.lines[0] == "bot was blocked"
    assert message.link == ""
    assert "alertbot: alerts to telegram:-100123 paused" in digest_line(change)
