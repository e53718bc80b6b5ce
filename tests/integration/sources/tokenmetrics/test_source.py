"""The Token Metrics source with the real aiohttp client against the fake Token Metrics API."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from pydantic import SecretStr

from alertbot.bootstrap.sources import build_source
from alertbot.config import load_settings
from alertbot.domain.detect import Rules
from alertbot.domain.models import ALL_KINDS, Destination, Kind
from alertbot.ports.source import Batch, SourceError
from alertbot.services.lookup import Lookup, LookupFailed
from alertbot.services.poller import Poller
from alertbot.sources.tokenmetrics.client import ApiRetry, TokenMetricsApi
from alertbot.sources.tokenmetrics.quota import QuotaPlan, Usage, plan_quota
from alertbot.sources.tokenmetrics.source import USAGE_KEY, TokenMetricsSource
from alertbot.store.sqlite import SqliteStore
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.support import ManualClock

KEY = "test-key-4f9c2a"
TODAY = date(2025, 7, 10)
NOW = datetime(2025, 7, 10, 12, 0, tzinfo=UTC)
BTC, ETH = 3375, 3306
FAST_RETRY = ApiRetry(attempts=3, base=0.001, cap=0.005, max_wait=30.0)


@dataclass
class Sleeps:
    """Records the waits the client asked for instead of sleeping through them."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTokenMetrics]:
    async with FakeTokenMetrics(api_key=KEY, today=TODAY) as server:
        server.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        server.add_token(ETH, "ETH", "Ethereum", "ethereum")
        for token, trend in ((BTC, -1), (ETH, 1)):
            server.set_signal(token, TODAY - timedelta(days=1), trend=trend)
            server.set_signal(token, TODAY, trend=trend)
            server.set_hourly(token, NOW - timedelta(hours=1), signal=str(trend))
        server.set_tm_grade(BTC, 62.4, "Buy")
        server.set_tm_grade(ETH, 35.0, "Sell")
        server.set_fundamental(BTC, 84.7, "storeOfValue")
        server.set_fundamental(ETH, 70.1, "blueChip")
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@dataclass
class Kit:
    """Builds sources against the fake, sharing one store, clock and sleep recorder."""

    fake: FakeTokenMetrics
    session: aiohttp.ClientSession
    store: SqliteStore
    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    sleeps: Sleeps = field(default_factory=Sleeps)

    def source(self, *, key: str = KEY, plan: QuotaPlan | None = None, timeout: float = 2.0,
               retry: ApiRetry = FAST_RETRY, base_url: str | None = None,
               **options: object) -> TokenMetricsSource:
        api = TokenMetricsApi(self.session, base_url or self.fake.base_url, SecretStr(key),
                              timeout=timeout,
                              retry=retry, sleep=self.sleeps, rng=random.Random(7),
                              now=self.clock.now)
        plan = plan or plan_quota(10_000, 4, timedelta(minutes=20))
        return TokenMetricsSource(api, self.store, self.clock, plan, **options)  # type: ignore[arg-type]


@pytest.fixture
def kit(fake: FakeTokenMetrics, session: aiohttp.ClientSession, store: SqliteStore) -> Kit:
    return Kit(fake, session, store)


def values(batch: Batch) -> dict[tuple[int, Kind], float]:
    return {(r.token.token_id, r.kind): r.value for r in batch.readings}


# ------------------------------------------------------------------ happy path


async def test_fetch_every_kind_returns_readings_with_one_call_per_kind(kit: Kit) -> None:
    batch = await kit.source().fetch([BTC, ETH], ALL_KINDS, NOW)

    assert values(batch) == {
        (BTC, Kind.SIGNAL): -1.0, (ETH, Kind.SIGNAL): 1.0,
        (BTC, Kind.HOURLY): -1.0, (ETH, Kind.HOURLY): 1.0,
        (BTC, Kind.TM_GRADE): 62.4, (ETH, Kind.TM_GRADE): 35.0,
        (BTC, Kind.FUNDAMENTAL): 84.7, (ETH, Kind.FUNDAMENTAL): 70.1,
    }
    assert batch.errors == []
    assert batch.calls == kit.fake.call_count == 4
    assert all(call.authorized for call in kit.fake.calls)
    assert {t.symbol for t in batch.tokens} == {"BTC", "ETH"}
    signal_call = kit.fake.calls_to("/trading-signals")[0]
    assert signal_call.query["token_id"] == f"{ETH},{BTC}"
    assert signal_call.query["startDate"] == "2025-07-09"
    assert signal_call.query["endDate"] == "2025-07-10"
    assert signal_call.query["limit"] == "100" and signal_call.query["page"] == "1"


async def test_fetch_numbers_as_strings_parse_as_numbers(kit: Kit) -> None:
    kit.fake.numbers_as_strings = True

    batch = await kit.source().fetch([BTC, ETH], ALL_KINDS, NOW)

    assert values(batch)[(BTC, Kind.TM_GRADE)] == 62.4
    assert values(batch)[(ETH, Kind.SIGNAL)] == 1.0
    assert values(batch)[(BTC, Kind.FUNDAMENTAL)] == 84.7
    assert batch.errors == []


async def test_fetch_lowercase_v3_field_names_parse_like_v2(kit: Kit) -> None:
    kit.fake.lowercase_fields = True

    batch = await kit.source().fetch([BTC, ETH], ALL_KINDS, NOW)

    assert len(batch.readings) == 8
    assert values(batch)[(BTC, Kind.SIGNAL)] == -1.0
    assert {t.slug for t in batch.tokens} == {"bitcoin", "ethereum"}


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_fetch_either_api_version_base_path_reads_the_same(kit: Kit, version: str) -> None:
    kit.fake.lowercase_fields = version == "v3"
    base_url = kit.fake.base_url.removesuffix("/v2") + f"/{version}"

    batch = await kit.source(base_url=base_url).fetch([BTC, ETH], ALL_KINDS, NOW)

    assert values(batch) == {
        (BTC, Kind.SIGNAL): -1.0, (ETH, Kind.SIGNAL): 1.0,
        (BTC, Kind.HOURLY): -1.0, (ETH, Kind.HOURLY): 1.0,
        (BTC, Kind.TM_GRADE): 62.4, (ETH, Kind.TM_GRADE): 35.0,
        (BTC, Kind.FUNDAMENTAL): 84.7, (ETH, Kind.FUNDAMENTAL): 70.1,
    }
    assert batch.errors == []
    assert {r.source for r in batch.readings} == {"tokenmetrics"}
    assert {call.endpoint for call in kit.fake.calls} == {
        "/trading-signals", "/hourly-trading-signals", "/tm-grade", "/fundamental-grade"}


async def test_fetch_malformed_row_is_skipped_with_warning_naming_token_and_endpoint(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    kit.fake.add_raw_row("/tm-grade", {"TOKEN_ID": 777, "TOKEN_SYMBOL": "BAD",
                                       "TM_GRADE": "not a number"})
    caplog.set_level(logging.WARNING)

    batch = await kit.source().fetch([BTC, ETH, 777], [Kind.TM_GRADE], NOW)

    assert values(batch) == {(BTC, Kind.TM_GRADE): 62.4, (ETH, Kind.TM_GRADE): 35.0}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("777" in w and "/tm-grade" in w for w in warnings), warnings
    assert len(batch.errors) == 1 and "777" in batch.errors[0]


# ------------------------------------------------------------------ faults


async def test_fetch_rejected_key_raises_auth_error_naming_variable_not_value(kit: Kit) -> None:
    source = kit.source(key="wrong-secret-value-91")

    with pytest.raises(SourceError) as caught:
        await source.fetch([BTC, ETH], ALL_KINDS, NOW)

    assert caught.value.auth is True
    assert "TOKENMETRICS_API_KEY" in str(caught.value)
    assert "wrong-secret-value-91" not in str(caught.value)
    assert kit.fake.call_count == 1, "a rejected key must not be retried or tried elsewhere"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 60
    readiness = source.readiness()
    assert readiness is not None and "TOKENMETRICS_API_KEY" in readiness


async def test_fetch_rejected_key_again_backs_off_longer(kit: Kit) -> None:
    source = kit.source(key="wrong-secret-value-91")
    waits = []
    for _ in range(3):
        with pytest.raises(SourceError) as caught:
            await source.fetch([BTC], [Kind.SIGNAL], NOW)
        waits.append(caught.value.retry_after)

    assert waits == sorted(waits) and waits[0] is not None and waits[2] == 4 * waits[0]


async def test_fetch_after_key_accepted_again_clears_readiness(kit: Kit) -> None:
    source = kit.source()
    kit.fake.fail_next(status=401, times=1)
    with pytest.raises(SourceError):
        await source.fetch([BTC], [Kind.SIGNAL], NOW)
    assert source.readiness() is not None

    await source.fetch([BTC], [Kind.SIGNAL], NOW)

    assert source.readiness() is None and source.last_auth_error is None


async def test_fetch_403_everywhere_raises_auth_error_naming_variable(kit: Kit) -> None:
    kit.fake.fail_next(status=403, times=None)

    with pytest.raises(SourceError) as caught:
        await kit.source().fetch([BTC], ALL_KINDS, NOW)

    assert caught.value.auth is True
    assert "TOKENMETRICS_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_fetch_403_on_one_endpoint_lists_it_and_keeps_the_others(kit: Kit) -> None:
    kit.fake.fail_next("/fundamental-grade", status=403, times=None)

    batch = await kit.source().fetch([BTC], ALL_KINDS, NOW)

    assert {k for _, k in values(batch)} == {Kind.SIGNAL, Kind.HOURLY, Kind.TM_GRADE}
    assert len(batch.errors) == 1
    assert "/fundamental-grade" in batch.errors[0] and "TOKENMETRICS_API_KEY" in batch.errors[0]


async def test_fetch_429_with_retry_after_waits_that_long_then_succeeds(kit: Kit) -> None:
    kit.fake.fail_next("/trading-signals", status=429, retry_after=2)

    batch = await kit.source().fetch([BTC], [Kind.SIGNAL], NOW)

    assert kit.sleeps.waits == [2.0]
    assert values(batch) == {(BTC, Kind.SIGNAL): -1.0}
    assert batch.calls == 2


async def test_fetch_429_without_retry_after_backs_off_with_full_jitter(kit: Kit) -> None:
    retry = ApiRetry(attempts=4, base=0.5, cap=10.0)
    kit.fake.fail_next("/trading-signals", status=429, times=3)

    batch = await kit.source(retry=retry).fetch([BTC], [Kind.SIGNAL], NOW)

    assert values(batch) == {(BTC, Kind.SIGNAL): -1.0}
    assert len(kit.sleeps.waits) == 3
    for retry_number, wait in enumerate(kit.sleeps.waits):
        assert 0.0 <= wait <= 0.5 * 2 ** retry_number
    assert len(set(kit.sleeps.waits)) == 3, "full jitter draws a random wait each time"


async def test_fetch_429_with_long_retry_after_ends_cycle_without_more_calls(kit: Kit) -> None:
    kit.fake.fail_next(status=429, retry_after=600, times=None)

    with pytest.raises(SourceError) as caught:
        await kit.source().fetch([BTC], ALL_KINDS, NOW)

    assert caught.value.retry_after == 600
    assert kit.fake.call_count == 1
    assert kit.sleeps.waits == []


async def test_fetch_429_on_a_later_endpoint_keeps_earlier_readings(kit: Kit) -> None:
    kit.fake.fail_next("/tm-grade", status=429, retry_after=900, times=None)

    batch = await kit.source().fetch([BTC], ALL_KINDS, NOW)

    assert {k for _, k in values(batch)} == {Kind.SIGNAL, Kind.HOURLY}
    assert any("/tm-grade" in e and "rate limited" in e for e in batch.errors)
    assert any("/fundamental-grade" in e and "skipped" in e for e in batch.errors)
    assert kit.fake.calls_to("/fundamental-grade") == []


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_fetch_server_error_then_success_retries_and_parses(kit: Kit, status: int) -> None:
    kit.fake.fail_next("/tm-grade", status=status, times=2)

    batch = await kit.source().fetch([BTC], [Kind.TM_GRADE], NOW)

    assert values(batch) == {(BTC, Kind.TM_GRADE): 62.4}
    assert len(kit.fake.calls_to("/tm-grade")) == 3
    assert len(kit.sleeps.waits) == 2


async def test_fetch_persistent_server_error_is_bounded_and_lists_endpoint(kit: Kit) -> None:
    kit.fake.fail_next("/tm-grade", status=500, times=None)

    batch = await kit.source().fetch([BTC], ALL_KINDS, NOW)

    assert len(kit.fake.calls_to("/tm-grade")) == 3
    assert {k for _, k in values(batch)} == {Kind.SIGNAL, Kind.HOURLY, Kind.FUNDAMENTAL}
    assert len(batch.errors) == 1 and "/tm-grade" in batch.errors[0]
    assert "500" in batch.errors[0]


async def test_fetch_slow_response_times_out_and_retry_succeeds(kit: Kit) -> None:
    kit.fake.fail_next("/fundamental-grade", kind="slow", delay=5, times=1)

    batch = await kit.source(timeout=0.3).fetch([BTC], [Kind.FUNDAMENTAL], NOW)

    assert values(batch) == {(BTC, Kind.FUNDAMENTAL): 84.7}
    assert len(kit.fake.calls_to("/fundamental-grade")) == 2


async def test_fetch_slow_every_time_gives_up_after_bounded_retries(kit: Kit) -> None:
    kit.fake.fail_next("/fundamental-grade", kind="slow", delay=5, times=None)

    batch = await kit.source(timeout=0.2).fetch([BTC], [Kind.TM_GRADE, Kind.FUNDAMENTAL], NOW)

    assert values(batch) == {(BTC, Kind.TM_GRADE): 62.4}
    assert len(kit.fake.calls_to("/fundamental-grade")) == 3
    assert any("timed out" in e for e in batch.errors)


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_fetch_unreadable_body_once_is_retried_and_parses(kit: Kit, kind: str) -> None:
    kit.fake.fail_next("/trading-signals", kind=kind, times=1)  # type: ignore[arg-type]

    batch = await kit.source().fetch([BTC], [Kind.SIGNAL], NOW)

    assert values(batch) == {(BTC, Kind.SIGNAL): -1.0}
    assert batch.calls == 2


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_fetch_unreadable_body_always_lists_endpoint_and_keeps_others(
        kit: Kit, kind: str) -> None:
    kit.fake.fail_next("/trading-signals", kind=kind, times=None)  # type: ignore[arg-type]

    batch = await kit.source().fetch([BTC], [Kind.SIGNAL, Kind.TM_GRADE], NOW)

    assert values(batch) == {(BTC, Kind.TM_GRADE): 62.4}
    assert len(batch.errors) == 1 and "/trading-signals" in batch.errors[0]
    assert "malformed" in batch.errors[0]


async def test_fetch_success_false_is_an_error_carrying_the_api_message(kit: Kit) -> None:
    kit.fake.fail_next("/hourly-trading-signals", kind="success_false",
                       message="Token not covered by your plan")

    batch = await kit.source().fetch([BTC], [Kind.HOURLY, Kind.TM_GRADE], NOW)

    assert values(batch) == {(BTC, Kind.TM_GRADE): 62.4}
    assert len(batch.errors) == 1
    assert "Token not covered by your plan" in batch.errors[0]
    assert len(kit.fake.calls_to("/hourly-trading-signals")) == 1


async def test_fetch_success_false_alone_raises_instead_of_empty_result(kit: Kit) -> None:
    kit.fake.fail_next(kind="success_false", message="Maintenance", times=None)

    with pytest.raises(SourceError, match="Maintenance"):
        await kit.source().fetch([BTC], ALL_KINDS, NOW)


async def test_poll_failing_cycle_changes_nothing_and_next_cycle_runs_normally(
        kit: Kit) -> None:
    source = kit.source()
    await kit.store.subscribe(Destination("console", "default"), BTC, ALL_KINDS, NOW)
    poller = Poller(kit.store, source, Rules(), kit.clock, interval=timedelta(minutes=20))
    await poller.poll_once()
    before = await kit.store.load_states([BTC])
    kit.fake.flip(BTC, TODAY)
    kit.fake.fail_next(status=500, times=None)

    with pytest.raises(SourceError):
        await poller.poll_once()

    assert await kit.store.load_states([BTC]) == before
    kit.fake.clear_faults()
    kit.clock.at = NOW + timedelta(minutes=20)
    report = await poller.poll_once()
    assert [(c.token.symbol, c.kind, c.to_value) for c in report.changes] == [
        ("BTC", Kind.SIGNAL, 1.0)]


async def test_poll_future_dated_row_sends_no_alert_and_a_genuine_flip_today_alerts(
        kit: Kit) -> None:
    source = kit.source()
    await kit.store.subscribe(Destination("console", "default"), BTC, ALL_KINDS, NOW)
    poller = Poller(kit.store, source, Rules(), kit.clock, interval=timedelta(minutes=20))
    await poller.poll_once()
    kit.fake.add_raw_row("/trading-signals", {
        "TOKEN_ID": BTC, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC",
        "DATE": "2099-01-01T00:00:00.000Z", "TOKEN_TREND": 1, "TRADING_SIGNAL": 1})

    kit.clock.at = NOW + timedelta(minutes=20)
    frozen = await poller.poll_once()

    assert frozen.changes == []
    states = await kit.store.load_states([BTC])
    assert states[(BTC, Kind.SIGNAL)].source_ts.year == 2025
    kit.fake.flip(BTC, TODAY)
    kit.clock.at = NOW + timedelta(minutes=40)
    genuine = await poller.poll_once()
    assert [(c.token.symbol, c.kind, c.to_value) for c in genuine.changes] == [
        ("BTC", Kind.SIGNAL, 1.0)]


async def test_poll_year_0001_row_costs_that_row_only(kit: Kit) -> None:
    kit.fake.add_raw_row("/trading-signals", {
        "TOKEN_ID": ETH, "TOKEN_NAME": "Ethereum", "TOKEN_SYMBOL": "ETH",
        "DATE": "0001-01-01T00:00:00+01:00", "TOKEN_TREND": 1, "TRADING_SIGNAL": 0})

    batch = await kit.source().fetch([BTC, ETH], ALL_KINDS, NOW)

    assert values(batch)[(BTC, Kind.SIGNAL)] == -1.0
    assert values(batch)[(ETH, Kind.HOURLY)] == 1.0
    assert any("out of range" in error for error in batch.errors)


# ------------------------------------------------------------------ batching


async def test_poll_200_subscribed_tokens_costs_a_handful_of_batched_calls(kit: Kit) -> None:
    ids = list(range(10_001, 10_201))
    for token in ids:
        kit.fake.set_signal(token, TODAY - timedelta(days=1), trend=1)
        kit.fake.set_signal(token, TODAY, trend=1)
        kit.fake.set_tm_grade(token, 50.0)
        kit.fake.set_fundamental(token, 50.0)
    for token in ids:
        await kit.store.subscribe(Destination("console", "default"), token, ALL_KINDS, NOW)
    poller = Poller(kit.store, kit.source(), Rules(), kit.clock, interval=timedelta(minutes=20))

    report = await poller.poll_once()

    assert report.tokens == 200
    assert report.calls == kit.fake.call_count == 10
    assert len(kit.fake.calls_to("/trading-signals")) == 4
    assert all(len(c.query["token_id"].split(",")) <= 100 for c in kit.fake.calls)
    states = await kit.store.load_states(ids)
    assert {k for _, k in states} == {Kind.SIGNAL, Kind.TM_GRADE, Kind.FUNDAMENTAL}
    assert len(states) == 600


async def test_fetch_more_than_100_rows_reads_page_2(kit: Kit) -> None:
    ids = list(range(20_001, 20_031))
    for token in ids:
        for days_ago in range(5):
            kit.fake.set_signal(token, TODAY - timedelta(days=days_ago), trend=1)

    batch = await kit.source(signal_days=5).fetch(ids, [Kind.SIGNAL], NOW)

    pages = [c.query["page"] for c in kit.fake.calls_to("/trading-signals")]
    assert pages == ["1", "2"]
    assert {r.token.token_id for r in batch.readings} == set(ids)


async def test_fetch_long_signal_history_uses_windows_of_at_most_29_days(kit: Kit) -> None:
    kit.fake.set_signal(BTC, TODAY - timedelta(days=45), trend=1, signal=1)
    for days_ago in range(44, -1, -1):
        kit.fake.set_signal(BTC, TODAY - timedelta(days=days_ago), trend=1)

    batch = await kit.source(signal_days=60).fetch([BTC], [Kind.SIGNAL], NOW)

    windows = sorted((date.fromisoformat(c.query["startDate"]),
                      date.fromisoformat(c.query["endDate"]))
                     for c in kit.fake.calls_to("/trading-signals"))
    assert len(windows) == 3
    assert all((end - start).days + 1 <= 29 for start, end in windows)
    assert windows[0][0] == TODAY - timedelta(days=59) and windows[-1][1] == TODAY
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in itertools.pairwise(windows))
    assert batch.errors == []
    [reading] = batch.readings
    assert reading.fired_at == datetime.combine(TODAY - timedelta(days=45), datetime.min.time(),
                                                UTC)


async def test_fetch_rows_repeated_across_windows_are_counted_once(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    # An unfiltered raw row comes back in every window's answer.
    kit.fake.add_raw_row("/trading-signals", {"TOKEN_ID": BTC, "DATE": "2025-06-20T00:00:00Z",
                                              "TOKEN_TREND": "sideways"})
    caplog.set_level(logging.WARNING)

    batch = await kit.source(signal_days=40).fetch([BTC], [Kind.SIGNAL], NOW)

    assert len(kit.fake.calls_to("/trading-signals")) == 2
    skipped = [e for e in batch.errors if "skipped malformed row" in e]
    assert len(skipped) == 1, batch.errors
    assert values(batch) == {(BTC, Kind.SIGNAL): -1.0}


# ------------------------------------------------------------------ quota


async def test_fetch_counts_calls_in_a_persisted_monthly_counter(kit: Kit) -> None:
    await kit.source().fetch([BTC], ALL_KINDS, NOW)
    kit.fake.fail_next("/tm-grade", status=500, times=1)
    await kit.source().fetch([BTC], ALL_KINDS, NOW)

    usage = Usage.decode(await kit.store.get_meta(USAGE_KEY), NOW)
    assert usage == Usage("2025-07", poll=9, lookup=0)
    assert await kit.source().budget.usage(NOW + timedelta(days=25)) == Usage("2025-08")


async def test_fetch_budget_spent_pauses_polling_without_calls(kit: Kit) -> None:
    plan = plan_quota(100, 4, timedelta(minutes=20))
    await kit.store.set_meta(USAGE_KEY, Usage("2025-07", poll=88).encode())
    source = kit.source(plan=plan)

    with pytest.raises(SourceError) as caught:
        await source.fetch([BTC], ALL_KINDS, NOW)

    assert "polling paused until 2025-08-01" in str(caught.value)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert kit.fake.call_count == 0
    readiness = source.readiness()
    assert readiness is not None and "budget" in readiness
    kit.clock.at = datetime(2025, 8, 1, 0, 30, tzinfo=UTC)
    await source.fetch([BTC], [Kind.TM_GRADE], kit.clock.at)
    assert kit.fake.call_count == 1 and source.readiness() is None


async def test_build_derives_interval_and_first_poll_logs_the_plan_in_one_line(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, TOKENMETRICS_API_KEY=KEY,
                             TOKENMETRICS_BASE_URL=kit.fake.base_url)
    caplog.set_level(logging.INFO)

    parts = await build_source(settings, kit.store, kit.clock, lambda: kit.session)
    source, interval = parts.source, parts.interval
    assert interval == timedelta(minutes=20)
    assert kit.fake.call_count == 0
    assert isinstance(source, TokenMetricsSource)
    await source.lookups.fetch([BTC], [Kind.SIGNAL], NOW)
    await source.fetch([BTC], [Kind.SIGNAL], NOW)
    await source.fetch([BTC], [Kind.SIGNAL], NOW)

    plan_lines = [r.getMessage() for r in caplog.records if "calls per cycle" in r.getMessage()]
    assert plan_lines == ["Token Metrics plan: 4 calls per cycle, every 20m, fits 10,000 "
                          "calls/month (1,000 kept for lookups); 1 of 10,000 calls used so far "
                          "in 2025-07"]
    assert KEY not in repr(source)


async def test_lookup_costs_at_most_one_call_per_kind_and_uses_the_reserve(kit: Kit) -> None:
    source = kit.source()
    lookup = Lookup(kit.store, source.lookups, kit.clock, fresh_for=timedelta(minutes=5))
    btc = (await source.lookups.resolve("BTC"))[0]
    kit.fake.reset_calls()

    snapshots = await asyncio.gather(*(lookup.snapshot(btc) for _ in range(5)))

    assert kit.fake.call_count == 4
    assert {c.query["page"] for c in kit.fake.calls} == {"1"}
    assert all(s.entries[Kind.TM_GRADE].value == 62.4 for s in snapshots)
    usage = await source.budget.usage(NOW)
    assert usage.lookup == 5 and usage.poll == 0


async def test_lookup_failure_is_not_retried(kit: Kit) -> None:
    source = kit.source()
    kit.fake.fail_next("/tm-grade", status=500, times=None)

    batch = await source.lookups.fetch([BTC], ALL_KINDS, NOW)

    assert len(kit.fake.calls_to("/tm-grade")) == 1
    assert kit.fake.call_count == 4
    assert Kind.TM_GRADE not in {r.kind for r in batch.readings}


async def test_lookup_reserve_spent_answers_without_calling_the_api(kit: Kit) -> None:
    await kit.store.set_meta(USAGE_KEY, Usage("2025-07", lookup=1_000).encode())
    source = kit.source()
    lookup = Lookup(kit.store, source.lookups, kit.clock, fresh_for=timedelta(minutes=5))
    await kit.store.upsert_tokens([(await kit.source().resolve("BTC"))[0]], NOW)
    kit.fake.reset_calls()

    snapshot = await lookup.snapshot((await kit.store.tokens_by_symbol("BTC"))[0])

    assert kit.fake.call_count == 0
    assert set(snapshot.missing) == set(ALL_KINDS)
    with pytest.raises(LookupFailed, match="kept for lookups"):
        await lookup.resolve("ETH")


# ------------------------------------------------------------------ symbols and universe


async def test_resolve_ambiguous_symbol_returns_every_exact_match(kit: Kit) -> None:
    kit.fake.add_token(9001, "BTC", "Bitcoin Bridged", "bitcoin-bridged")
    kit.fake.add_token(9002, "BTCB", "Bitcoin BEP2", "bitcoin-bep2")
    source = kit.source()
    lookup = Lookup(kit.store, source.lookups, kit.clock, fresh_for=timedelta(minutes=5))

    found = await source.resolve("btc")

    assert [t.token_id for t in found] == [BTC, 9001]
    with pytest.raises(LookupFailed, match=r"several tokens.*3375.*9001"):
        await lookup.resolve("BTC")
    assert kit.fake.calls_to("/tokens")[0].query["symbol"] == "BTC"


async def test_universe_resolves_watchlist_once_and_keeps_it_in_the_store(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    watchlist = ("BTC", "ETH", "NOPE", str(BTC))

    tokens = await kit.source(watchlist=watchlist).universe()
    again = await kit.source(watchlist=watchlist).universe()

    assert sorted(t.token_id for t in tokens) == [ETH, BTC]
    assert again == tokens
    assert len(kit.fake.calls_to("/tokens")) == 2  # symbols, then ids
    assert (await kit.store.token(ETH)) is not None
    assert any("NOPE" in r.getMessage() for r in caplog.records)


async def test_universe_with_bad_key_raises_auth_error(kit: Kit) -> None:
    with pytest.raises(SourceError) as caught:
        await kit.source(key="nope-nope-nope", watchlist=("BTC",)).universe()

    assert caught.value.auth and "TOKENMETRICS_WATCHLIST" in str(caught.value)
    assert "TOKENMETRICS_API_KEY" in str(caught.value)


async def test_check_accepted_key_reports_usage_and_plan(kit: Kit) -> None:
    detail = await kit.source().check()

    assert "accepted TOKENMETRICS_API_KEY" in detail and "calls per cycle" in detail
    assert kit.fake.calls_to("/tokens")[0].query["limit"] == "1"


async def test_check_rejected_key_fails_naming_the_variable(kit: Kit) -> None:
    with pytest.raises(SourceError) as caught:
        await kit.source(key="bad-key-value-77").check()

    assert "TOKENMETRICS_API_KEY" in str(caught.value)
    assert "bad-key-value-77" not in str(caught.value)
