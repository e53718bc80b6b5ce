"""Chart history from the Token Metrics source against the fake API (real aiohttp client)."""

from __future__ import annotations

from datetime import datetime, timedelta

from alertbot.domain.charts import DRIVER_FIELDS
from alertbot.domain.models import Token
from alertbot.ports.source import SourceError
from alertbot.sources.tokenmetrics.quota import Usage, plan_quota
from alertbot.sources.tokenmetrics.source import USAGE_KEY
from tests.integration.sources.tokenmetrics import test_source as base
from tests.integration.sources.tokenmetrics.test_source import BTC, NOW, TODAY, Kit

# The fake, session and kit fixtures of the source tests.
fake, session, kit = base.fake, base.session, base.kit

TOKEN = Token(BTC, "BTC", "Bitcoin", "bitcoin")


def fill(kit: Kit, days: int) -> None:
    for back in range(days + 1):
        day = TODAY - timedelta(days=back)
        kit.fake.add_tm_grade_history(BTC, day, 30.0 + back % 50)
        kit.fake.add_fundamental_history(BTC, day, 70.0, community_score=60.0 + back % 10)
    kit.fake.flip(BTC, TODAY - timedelta(days=20))
    kit.fake.flip(BTC, TODAY - timedelta(days=5))


async def test_history_90_days_pages_29_day_windows_and_parses_every_part(kit: Kit) -> None:
    fill(kit, 90)
    source = kit.source().lookups

    history = await source.history(TOKEN, 90, NOW)

    assert len(history.tm_grade) == 90  # days after NOW - 90 days, today's row included
    assert history.tm_grade[-1].value == 30.0
    assert len(history.fundamental) == 90
    assert [f.bullish for f in history.flips] == [True, False]
    assert dict(history.drivers[-1].scores)["Community"] == 60.0
    assert [label for _, label in DRIVER_FIELDS] == [n for n, _ in history.drivers[-1].scores]
    calls = kit.fake.calls_to("/tm-grade-history")
    assert len(calls) == 4  # 91 days in windows of at most 29
    assert all(c.query["token_id"] == str(BTC) for c in calls)
    spans = [(datetime.fromisoformat(c.query["endDate"])
              - datetime.fromisoformat(c.query["startDate"])).days for c in calls]
    assert max(spans) <= 28
    assert len(kit.fake.calls_to("/fundamental-grade-history")) == 4
    assert len(kit.fake.calls_to("/trading-signals")) == 4


async def test_history_same_token_and_day_costs_the_api_once(kit: Kit) -> None:
    fill(kit, 30)
    source = kit.source().lookups
    await source.history(TOKEN, 30, NOW)
    first = kit.fake.call_count

    again = await source.history(TOKEN, 30, NOW + timedelta(hours=3))

    assert kit.fake.call_count == first == 6
    assert len(again.tm_grade) == 30  # 30 days back from 15:00 starts after midnight
    usage = Usage.decode(await kit.store.get_meta(USAGE_KEY), NOW)
    assert usage.lookup == 6


async def test_history_next_day_reads_again(kit: Kit) -> None:
    fill(kit, 30)
    source = kit.source().lookups
    await source.history(TOKEN, 30, NOW)
    first = kit.fake.call_count

    kit.clock.advance(timedelta(days=1))
    await source.history(TOKEN, 30, kit.clock.now())

    assert kit.fake.call_count == 2 * first


async def test_history_bound_to_a_time_shows_nothing_later(kit: Kit) -> None:
    fill(kit, 30)
    bound = NOW - timedelta(days=10)

    history = await kit.source().lookups.history(TOKEN, 30, bound)

    assert history.end == bound
    assert max(p.at for p in history.tm_grade) <= bound
    assert [f.at.date() for f in history.flips] == [(TODAY - timedelta(days=20))]


async def test_history_malformed_rows_are_skipped_not_fatal(kit: Kit) -> None:
    fill(kit, 10)
    kit.fake.add_raw_row("/tm-grade-history", {"TOKEN_ID": BTC, "DATE": "2025-07-01",
                                                "TM_GRADE": "not a number"})

    history = await kit.source().lookups.history(TOKEN, 10, NOW)

    assert len(history.tm_grade) == 10


async def test_history_forbidden_fundamental_history_still_draws_tm_grade(kit: Kit) -> None:
    fill(kit, 10)
    kit.fake.fail_next("/fundamental-grade-history", status=403)

    history = await kit.source().lookups.history(TOKEN, 10, NOW)

    assert len(history.tm_grade) == 10
    assert history.fundamental == ()


async def test_history_rejected_key_raises_source_error(kit: Kit) -> None:
    fill(kit, 10)

    try:
        await kit.source(key="wrong-key").lookups.history(TOKEN, 10, NOW)
    except SourceError as exc:
        assert exc.auth
        assert "wrong-key" not in str(exc)
    else:
        raise AssertionError("a rejected key must raise SourceError")


async def test_history_over_the_lookup_reserve_is_refused(kit: Kit) -> None:
    fill(kit, 10)
    plan = plan_quota(60, 1, timedelta(hours=1))  # a reserve of a few calls only

    try:
        for _ in range(5):
            await kit.source(plan=plan).lookups.history(TOKEN, 365, NOW)
    except SourceError as exc:
        assert "kept for lookups" in str(exc)
    else:
        raise AssertionError("history beyond the reserve must be refused")
