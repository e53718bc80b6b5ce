"""Quota plan, pacing, windows, dedupe and retry helpers of the Token Metrics source (pure)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, Kind
from alertbot.sources.tokenmetrics.client import ApiRetry
from alertbot.sources.tokenmetrics.quota import QuotaPlan, Usage, month_bounds, plan_quota
from alertbot.sources.tokenmetrics.source import (
    date_windows,
    dedupe_rows,
    estimate_cycle_calls,
    hourly_lookback,
)

JULY_1 = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize(("monthly", "calls", "expected"), [
    (10_000, 4, timedelta(minutes=20)),
    (50_000, 4, timedelta(minutes=4)),
    (250_000, 4, timedelta(minutes=1)),
    (10_000, 10, timedelta(minutes=50)),
    (50, 4, timedelta(days=2, hours=19, minutes=39)),
])
def test_plan_quota_derived_interval_fits_the_polling_budget(
        monthly: int, calls: int, expected: timedelta) -> None:
    plan = plan_quota(monthly, calls)

    assert plan.interval == expected
    assert plan.fits
    assert plan.monthly_need <= plan.poll_budget


def test_plan_quota_keeps_a_tenth_for_lookups() -> None:
    plan = plan_quota(10_000, 4)

    assert (plan.reserve, plan.poll_budget) == (1_000, 9_000)


def test_plan_describe_default_is_one_line_with_figures() -> None:
    assert plan_quota(10_000, 4).describe() == (
        "4 calls per cycle, every 20m, fits 10,000 calls/month (1,000 kept for lookups)")


def test_plan_describe_explicit_interval_over_quota_says_it_is_paced() -> None:
    text = plan_quota(10_000, 4, timedelta(seconds=30)).describe()

    assert "\n" not in text
    assert "ALERTBOT_POLL_INTERVAL" in text and "paced" in text and "357,120" in text


def test_refuse_poll_within_pace_allows() -> None:
    plan = plan_quota(10_000, 4)
    mid_month = JULY_1 + timedelta(days=15)

    assert plan.refuse_poll(Usage("2025-07", poll=4_000), 4, mid_month) is None


def test_refuse_poll_budget_spent_pauses_until_next_month() -> None:
    plan = plan_quota(10_000, 4)
    late = datetime(2025, 7, 31, 20, 0, tzinfo=UTC)

    refusal = plan.refuse_poll(Usage("2025-07", poll=8_998), 4, late)

    assert refusal is not None
    assert refusal.until == datetime(2025, 8, 1, tzinfo=UTC)
    assert "polling paused until 2025-08-01 00:00 UTC" in refusal.message
    assert refusal.retry_after == 3600.0, "a paused poller looks again hourly"


def test_refuse_poll_ahead_of_pace_waits_until_the_pace_catches_up() -> None:
    plan = plan_quota(10_000, 4)
    early = JULY_1 + timedelta(days=1)

    refusal = plan.refuse_poll(Usage("2025-07", poll=2_000), 4, early)

    assert refusal is not None and "ahead of its monthly plan" in refusal.message
    assert early < refusal.until < datetime(2025, 8, 1, tzinfo=UTC)
    later = refusal.until + timedelta(seconds=1)
    assert plan.refuse_poll(Usage("2025-07", poll=2_000), 4, later) is None


def test_refuse_poll_month_start_allows_a_burst() -> None:
    plan = plan_quota(10_000, 4, timedelta(seconds=1))

    assert plan.refuse_poll(Usage("2025-07", poll=plan.burst - 4), 4, JULY_1) is None
    assert plan.refuse_poll(Usage("2025-07", poll=plan.burst), 4, JULY_1) is not None


def test_refuse_lookup_only_when_the_reserve_is_spent() -> None:
    plan = plan_quota(10_000, 4)

    assert plan.refuse_lookup(Usage("2025-07", poll=9_000, lookup=996), 4, JULY_1) is None
    refusal = plan.refuse_lookup(Usage("2025-07", lookup=997), 4, JULY_1)
    assert refusal is not None and "kept for lookups" in refusal.message


def test_usage_decode_other_month_or_garbage_starts_from_zero() -> None:
    stored = Usage("2025-06", poll=5, lookup=2).encode()

    assert Usage.decode(stored, JULY_1) == Usage("2025-07")
    assert Usage.decode("{not json", JULY_1) == Usage("2025-07")
    assert Usage.decode(Usage("2025-07", 5, 2).encode(), JULY_1) == Usage("2025-07", 5, 2)


def test_month_bounds_december_rolls_into_next_year() -> None:
    start, end = month_bounds(datetime(2025, 12, 31, 23, 59, tzinfo=UTC))

    assert (start, end) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("days", "expected"), [(1, 1), (29, 1), (30, 2), (58, 2), (60, 3)])
def test_date_windows_split_into_at_most_29_days_without_gaps(days: int, expected: int) -> None:
    end = date(2025, 7, 10)
    start = end - timedelta(days=days - 1)

    windows = date_windows(start, end)

    assert len(windows) == expected
    assert all((b - a).days + 1 <= 29 for a, b in windows)
    covered = sorted(a + timedelta(days=i) for a, b in windows for i in range((b - a).days + 1))
    assert covered == [start + timedelta(days=i) for i in range(days)]


def test_dedupe_rows_keeps_first_of_each_token_and_date_across_spellings() -> None:
    rows = [
        {"TOKEN_ID": 1, "DATE": "2025-07-10T00:00:00.000Z", "TOKEN_TREND": 1},
        {"token_id": "1", "date": "2025-07-10", "token_trend": -1},
        {"TOKEN_ID": 1, "DATE": "2025-07-09T00:00:00.000Z", "TOKEN_TREND": 1},
        {"TOKEN_ID": 2, "DATE": "2025-07-10T00:00:00.000Z", "TOKEN_TREND": 1},
        {"TOKEN_NAME": "no id"},
        {"TOKEN_NAME": "no id"},
    ]

    unique = dedupe_rows(Kind.SIGNAL, rows)

    assert unique == [rows[0], rows[2], rows[3], rows[4], rows[5]]


def test_dedupe_rows_hourly_keys_on_timestamp() -> None:
    rows = [{"TOKEN_ID": 1, "TIMESTAMP": "2025-07-10T10:00:00Z"},
            {"TOKEN_ID": 1, "TIMESTAMP": "2025-07-10T09:00:00Z"},
            {"TOKEN_ID": 1, "TIMESTAMP": "2025-07-10T10:00:00.000Z"}]

    assert dedupe_rows(Kind.HOURLY, rows) == rows[:2]


@pytest.mark.parametrize(("tokens", "expected"), [(1, 4), (20, 4), (50, 4), (51, 6),
                                                  (200, 12)])
def test_estimate_cycle_calls_batches_tokens(tokens: int, expected: int) -> None:
    assert estimate_cycle_calls(tokens, ALL_KINDS) == expected


def test_hourly_lookback_covers_one_interval_within_bounds() -> None:
    assert hourly_lookback(timedelta(minutes=20)) == timedelta(hours=2)
    assert hourly_lookback(timedelta(hours=5)) == timedelta(hours=6)
    assert hourly_lookback(timedelta(days=3)) == timedelta(hours=48)


def test_retry_backoff_full_jitter_stays_under_the_capped_ceiling() -> None:
    policy = ApiRetry(base=1.0, cap=8.0)
    rng = random.Random(1)

    waits = [[policy.backoff(retry, rng) for _ in range(200)] for retry in range(6)]

    for retry, draws in enumerate(waits):
        ceiling = min(8.0, 2.0 ** retry)
        assert all(0.0 <= w <= ceiling for w in draws)
        assert max(draws) > ceiling * 0.8 and min(draws) < ceiling * 0.2


def test_plan_quota_without_interval_derives_it_and_is_not_explicit() -> None:
    plan = QuotaPlan(10_000, 4, timedelta(minutes=20))

    assert plan == plan_quota(10_000, 4)
