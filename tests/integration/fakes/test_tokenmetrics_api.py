"""Tests for the fake Token Metrics API, driven by a real aiohttp client over loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.tokenmetrics_api import FakeTokenMetrics

KEY = "test-key"
TODAY = dt.date(2025, 7, 10)
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTokenMetrics]:
    async with FakeTokenMetrics(api_key=KEY, today=TODAY) as server:
        server.add_token(3375, "BTC", "Bitcoin", "bitcoin")
        server.add_token(3306, "ETH", "Ethereum", "ethereum")
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(
    session: aiohttp.ClientSession,
    fake: FakeTokenMetrics,
    endpoint: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> tuple[int, Any]:
    """GET an endpoint with the valid key unless ``headers`` overrides it."""
    sent = {"x-api-key": KEY} if headers is None else headers
    query = {k: str(v) for k, v in params.items()}
    async with session.get(fake.url(endpoint), params=query, headers=sent) as resp:
        return resp.status, await resp.json(content_type=None)


def seed_days(fake: FakeTokenMetrics, token_id: int, days: int) -> None:
    """Give ``token_id`` one daily row for each of the ``days`` days ending today."""
    for offset in range(days):
        fake.set_signal(token_id, TODAY - dt.timedelta(days=offset), trend=1)


# ------------------------------------------------------------------ envelope, fields


async def test_tokens_default_query_returns_envelope_with_token_fields(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, fake, "/tokens", symbol="BTC")

    assert status == 200
    assert body == {
        "success": True,
        "message": "Data fetched successfully",
        "length": 1,
        "data": [
            {
                "TOKEN_ID": 3375,
                "TOKEN_NAME": "Bitcoin",
                "TOKEN_SYMBOL": "BTC",
                "EXCHANGE_LIST": [{"exchange_id": "binance", "exchange_name": "Binance"}],
                "CATEGORY_LIST": [],
                "contract_address": {},
                "tm_link": "bitcoin",
                "TM_LINK": "https://app.tokenmetrics.com/bitcoin",
            }
        ],
    }


async def test_trading_signals_row_uses_real_field_names_and_types(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, "2025-07-09", trend=-1, signal=-1, signal_returns=1.5)

    status, body = await get(session, fake, "/trading-signals", token_id=3375)

    assert status == 200
    assert body["length"] == 1
    row = body["data"][0]
    assert set(row) == {
        "TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE", "TRADING_SIGNAL", "TOKEN_TREND",
        "TRADING_SIGNALS_RETURNS", "HOLDING_RETURNS", "TM_TRADER_GRADE", "TM_INVESTOR_GRADE",
        "tm_link", "TM_LINK",
    }  # fmt: skip
    assert row["DATE"] == "2025-07-09T00:00:00.000Z"
    assert row["TRADING_SIGNAL"] == -1
    assert row["TOKEN_TREND"] == -1
    assert row["TOKEN_SYMBOL"] == "BTC"
    assert row["TRADING_SIGNALS_RETURNS"] == 1.5


async def test_trading_signals_many_days_returned_newest_first(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    for day in ("2025-07-01", "2025-07-05", "2025-07-03"):
        fake.set_signal(3375, day, trend=1)

    _, body = await get(session, fake, "/trading-signals", token_id=3375)

    assert [row["DATE"][:10] for row in body["data"]] == ["2025-07-05", "2025-07-03", "2025-07-01"]


async def test_hourly_signals_row_serves_signal_string_and_iso_timestamp(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_hourly(3375, "2025-07-10T13:00:00Z", signal="0", close=108990.02)
    fake.set_hourly(3375, dt.datetime(2025, 7, 10, 14, tzinfo=dt.UTC), signal=1, close=109250.41)

    status, body = await get(session, fake, "/hourly-trading-signals", token_id=3375)

    assert status == 200
    first, second = body["data"]
    assert first == {
        "TIMESTAMP": "2025-07-10T14:00:00.000Z",
        "TOKEN_ID": 3375,
        "TOKEN_NAME": "Bitcoin",
        "TOKEN_SYMBOL": "BTC",
        "CLOSE": 109250.41,
        "SIGNAL": "1",
        "POSITION": "LONG",
    }
    assert second["SIGNAL"] == "0"


async def test_hourly_signals_missing_token_id_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, fake, "/hourly-trading-signals")

    assert status == 400
    assert body["success"] is False
    assert "token_id" in body["message"]


async def test_tm_grade_row_has_documented_fields_and_optional_fundamentals(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_tm_grade(3375, 62.4, "Buy", momentum="Gaining Momentum")
    fake.set_tm_grade(
        3306, 70.0, "Strong Buy", fundamental_grade=84.7, fundamental_class="blueChip"
    )

    _, body = await get(session, fake, "/tm-grade", token_id="3375,3306")

    btc, eth = body["data"]
    assert btc == {
        "TOKEN_ID": 3375,
        "TOKEN_NAME": "Bitcoin",
        "TOKEN_SYMBOL": "BTC",
        "TM_GRADE": 62.4,
        "TM_GRADE_SIGNAL": "Buy",
        "TM_GRADE_24h_PCT_CHANGE": 0.0,
        "TM_TRADER_GRADE_24H_CHANGE": 0.0,
        "QUANT_GRADE": 50.0,
        "MOMENTUM": "Gaining Momentum",
    }
    assert eth["FUNDAMENTAL_GRADE"] == 84.7
    assert eth["FUNDAMENTAL_GRADE_CLASS"] == "blueChip"


async def test_fundamental_grade_row_serves_null_vc_score(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_fundamental(3306, 84.7, "blueChip")

    _, body = await get(session, fake, "/fundamental-grade", token_id=3306)

    row = body["data"][0]
    assert row["FUNDAMENTAL_GRADE"] == 84.7
    assert row["FUNDAMENTAL_GRADE_CLASS"] == "blueChip"
    assert row["VC_SCORE"] is None
    assert {"COMMUNITY_SCORE", "EXCHANGE_SCORE", "TOKENOMICS_SCORE", "DEFI_SCANNER_SCORE"} <= set(
        row
    )


async def test_unknown_endpoint_returns_404_envelope(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, fake, "/no-such-endpoint")

    assert status == 404
    assert body["success"] is False
    assert body["data"] == []


# ------------------------------------------------------------------------- filters


async def test_trading_signals_comma_token_ids_returns_only_listed_tokens(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    for token_id in (3375, 3306, 1111):
        fake.set_signal(token_id, TODAY, trend=1)

    _, body = await get(session, fake, "/trading-signals", token_id="3375,3306")

    assert sorted(row["TOKEN_ID"] for row in body["data"]) == [3306, 3375]


async def test_tokens_symbol_and_name_lists_match_case_insensitively(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.add_token(1111, "SOL", "Solana")

    _, by_symbol = await get(session, fake, "/tokens", symbol="btc,sol")
    _, by_name = await get(session, fake, "/tokens", token_name="ethereum")

    assert sorted(row["TOKEN_SYMBOL"] for row in by_symbol["data"]) == ["BTC", "SOL"]
    assert [row["TOKEN_ID"] for row in by_name["data"]] == [3306]


async def test_trading_signals_signal_filter_returns_only_matching_rows(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, "2025-07-08", trend=-1, signal=0)
    fake.flip(3375, "2025-07-09")

    _, body = await get(session, fake, "/trading-signals", token_id=3375, signal=1)

    assert [(row["DATE"][:10], row["TRADING_SIGNAL"]) for row in body["data"]] == [
        ("2025-07-09", 1)
    ]


async def test_trading_signals_invalid_token_id_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, _ = await get(session, fake, "/trading-signals", token_id="3375,abc")

    assert status == 400


async def test_flip_previous_bearish_row_appends_bullish_signal(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, "2025-07-08", trend=-1, trader_grade=30.0)
    fake.flip(3375, "2025-07-09")
    fake.flip(3375, "2025-07-10")

    _, body = await get(session, fake, "/trading-signals", token_id=3375)

    summary = [(r["DATE"][:10], r["TOKEN_TREND"], r["TRADING_SIGNAL"]) for r in body["data"]]
    assert summary == [("2025-07-10", -1, -1), ("2025-07-09", 1, 1), ("2025-07-08", -1, 0)]
    assert body["data"][0]["TM_TRADER_GRADE"] == 30.0


# ---------------------------------------------------------------------- pagination


async def test_pagination_limit_100_page_2_returns_remaining_rows(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    for hour in range(130):
        fake.set_hourly(3375, dt.datetime(2025, 7, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hour))

    _, first = await get(session, fake, "/hourly-trading-signals", token_id=3375, limit=100, page=1)
    _, second = await get(
        session, fake, "/hourly-trading-signals", token_id=3375, limit=100, page=2
    )

    assert (first["length"], len(first["data"])) == (100, 100)
    assert (second["length"], len(second["data"])) == (30, 30)
    stamps = [row["TIMESTAMP"] for row in first["data"] + second["data"]]
    assert len(set(stamps)) == 130
    assert stamps == sorted(stamps, reverse=True)


async def test_pagination_no_limit_defaults_to_50_rows(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    for hour in range(60):
        fake.set_hourly(3375, dt.datetime(2025, 7, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hour))

    _, body = await get(session, fake, "/hourly-trading-signals", token_id=3375)

    assert len(body["data"]) == 50


async def test_pagination_limit_101_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, fake, "/tokens", limit=101, page=1)

    assert status == 400
    assert body["success"] is False


async def test_pagination_page_0_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, _ = await get(session, fake, "/tokens", limit=50, page=0)

    assert status == 400


async def test_pagination_length_total_mode_reports_all_matches(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.length_mode = "total"

    _, body = await get(session, fake, "/tokens", limit=1)

    assert (body["length"], len(body["data"])) == (2, 1)


# --------------------------------------------------------------------- date window


async def test_trading_signals_29_day_window_filters_to_range(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    seed_days(fake, 3375, 40)

    status, body = await get(
        session,
        fake,
        "/trading-signals",
        token_id=3375,
        startDate="2025-06-11",
        endDate="2025-07-10",
    )

    assert status == 200
    days = [row["DATE"][:10] for row in body["data"]]
    assert (len(days), days[0], days[-1]) == (30, "2025-07-10", "2025-06-11")


async def test_trading_signals_30_day_window_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(
        session, fake, "/trading-signals", startDate="2025-06-10", endDate="2025-07-10"
    )

    assert status == 400
    assert "29" in body["message"]


async def test_trading_signals_start_date_only_window_ends_today(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    ok_status, _ = await get(session, fake, "/trading-signals", startDate="2025-06-11")
    bad_status, _ = await get(session, fake, "/trading-signals", startDate="2025-06-10")

    assert (ok_status, bad_status) == (200, 400)


async def test_trading_signals_bad_date_format_returns_400(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, _ = await get(session, fake, "/trading-signals", startDate="10/07/2025")

    assert status == 400


async def test_trading_signals_future_rows_hidden_until_clock_advances(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, TODAY, trend=-1)
    fake.flip(3375, TODAY + dt.timedelta(days=1))

    _, before = await get(session, fake, "/trading-signals", token_id=3375)
    fake.set_today(TODAY + dt.timedelta(days=1))
    _, after = await get(session, fake, "/trading-signals", token_id=3375)

    assert [row["TOKEN_TREND"] for row in before["data"]] == [-1]
    assert [row["TOKEN_TREND"] for row in after["data"]] == [1, -1]


# ---------------------------------------------------------------------------- auth


async def test_auth_x_api_key_header_returns_200(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, fake, "/tokens", headers={"x-api-key": KEY})

    assert status == 200
    assert body["success"] is True


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": "wrong"}, {"api_key": KEY}, {}],
    ids=["wrong_key", "legacy_api_key_header", "missing"],
)
async def test_auth_rejected_credentials_return_401_envelope(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, body = await get(session, fake, "/tokens", headers=headers)

    assert status == 401
    assert body == {"success": False, "message": "Invalid API key", "length": 0, "data": []}
    assert fake.calls[-1].authorized is False


# -------------------------------------------------------------------------- faults


async def test_fault_429_with_retry_after_sets_header_then_recovers(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next("/tokens", status=429, retry_after=2)

    async with session.get(fake.url("/tokens"), headers={"x-api-key": KEY}) as resp:
        first = (resp.status, resp.headers.get("Retry-After"), (await resp.json())["success"])
    status, _ = await get(session, fake, "/tokens")

    assert first == (429, "2", False)
    assert status == 200


async def test_fault_429_without_retry_after_omits_header(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(status=429)

    async with session.get(fake.url("/tm-grade"), headers={"x-api-key": KEY}) as resp:
        assert resp.status == 429
        assert "Retry-After" not in resp.headers


@pytest.mark.parametrize("code", [401, 403, 500])
async def test_fault_status_returns_that_status_with_error_envelope(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession, code: int
) -> None:
    fake.fail_next("/trading-signals", status=code)

    status, body = await get(session, fake, "/trading-signals")

    assert status == code
    assert body["success"] is False
    assert body["data"] == []


async def test_fault_502_returns_html_gateway_page(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(status=502)

    async with session.get(fake.url("/tokens"), headers={"x-api-key": KEY}) as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        with pytest.raises(aiohttp.ContentTypeError):
            await resp.json()


async def test_fault_scoped_to_endpoint_leaves_other_endpoints_working(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next("/trading-signals", times=2, status=500)

    statuses = [
        (await get(session, fake, "/tokens"))[0],
        (await get(session, fake, "/trading-signals"))[0],
        (await get(session, fake, "/trading-signals"))[0],
        (await get(session, fake, "/trading-signals"))[0],
    ]

    assert statuses == [200, 500, 500, 200]
    assert fake.faults == []


async def test_fault_times_none_persists_until_cleared(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(times=None, status=503)

    during = [(await get(session, fake, "/tokens"))[0] for _ in range(3)]
    fake.clear_faults()
    after, _ = await get(session, fake, "/tokens")

    assert (during, after) == ([503, 503, 503], 200)


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_fault_bad_body_fails_json_parsing(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession, kind: str
) -> None:
    fake.set_signal(3375, TODAY, trend=1)
    fake.fail_next("/trading-signals", kind=kind)  # type: ignore[arg-type]

    async with session.get(fake.url("/trading-signals"), headers={"x-api-key": KEY}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            await resp.json()


async def test_fault_success_false_returns_200_with_message(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(kind="success_false", message="Quota exceeded")

    status, body = await get(session, fake, "/tokens")

    assert status == 200
    assert body == {"success": False, "message": "Quota exceeded", "length": 0, "data": []}


async def test_fault_slow_response_triggers_client_timeout(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next("/tokens", kind="slow", delay=5.0)
    timeout = aiohttp.ClientTimeout(total=0.2)

    with pytest.raises(TimeoutError):
        async with session.get(
            fake.url("/tokens"), headers={"x-api-key": KEY}, timeout=timeout
        ) as resp:
            await resp.read()
    status, _ = await get(session, fake, "/tokens")

    assert status == 200
    assert fake.calls_to("/tokens")[0].fault == "slow"


async def test_fault_slow_short_delay_still_returns_data(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next("/tokens", kind="slow", delay=0.05)

    status, body = await get(session, fake, "/tokens")

    assert (status, body["length"]) == (200, 2)


async def test_fault_strings_serves_numbers_as_strings_for_one_call(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, TODAY, trend=-1, signal=-1, trader_grade=26.48)
    fake.fail_next("/trading-signals", kind="strings")

    _, faulty = await get(session, fake, "/trading-signals")
    _, normal = await get(session, fake, "/trading-signals")

    row = faulty["data"][0]
    assert (row["TRADING_SIGNAL"], row["TOKEN_TREND"], row["TM_TRADER_GRADE"]) == (
        "-1",
        "-1",
        "26.48",
    )
    assert row["TOKEN_ID"] == 3375
    assert normal["data"][0]["TM_TRADER_GRADE"] == 26.48


def test_fail_next_unknown_endpoint_raises_value_error() -> None:
    fake = FakeTokenMetrics()

    with pytest.raises(ValueError, match="Unknown endpoint"):
        fake.fail_next("/trading-signal", status=500)


# ---------------------------------------------------------- encodings and raw rows


async def test_numbers_as_strings_mode_stringifies_all_but_token_id(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.numbers_as_strings = True
    fake.set_hourly(3375, "2025-07-10T10:00:00Z", signal="1", close=100.5)

    _, body = await get(session, fake, "/hourly-trading-signals", token_id=3375)

    row = body["data"][0]
    assert (row["TOKEN_ID"], row["CLOSE"], row["SIGNAL"]) == (3375, "100.5", "1")


async def test_tm_grade_as_string_serves_grade_numbers_as_strings(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_tm_grade(3375, 62.4, "Buy", as_string=True, fundamental_grade=80.0)
    fake.set_fundamental(3306, 84.7, "blueChip", as_string=True)

    _, grade = await get(session, fake, "/tm-grade", token_id=3375)
    _, fundamental = await get(session, fake, "/fundamental-grade", token_id=3306)

    assert (grade["data"][0]["TM_GRADE"], grade["data"][0]["FUNDAMENTAL_GRADE"]) == ("62.4", "80.0")
    assert fundamental["data"][0]["FUNDAMENTAL_GRADE"] == "84.7"
    assert fundamental["data"][0]["VC_SCORE"] is None


async def test_lowercase_fields_mode_serves_v3_style_keys(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.lowercase_fields = True
    fake.set_signal(3375, TODAY, trend=1, signal=1)

    _, body = await get(session, fake, "/trading-signals", token_id=3375)

    row = body["data"][0]
    assert all(key == key.lower() for key in row)
    assert (row["token_id"], row["trading_signal"], row["token_trend"]) == (3375, 1, 1)
    assert (row["tm_link"], row["app_link"]) == ("bitcoin", "https://app.tokenmetrics.com/bitcoin")


async def test_raw_rows_served_verbatim_even_when_malformed(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.set_signal(3375, TODAY, trend=1)
    fake.add_raw_row("/trading-signals", {"TOKEN_ID": 3375, "TOKEN_TREND": "abc"})
    fake.add_raw_row("trading-signals", {"TOKEN_NAME": "No id", "DATE": "2025-07-09"})
    fake.add_raw_row("/tm-grade", {"TOKEN_ID": 3375, "TM_GRADE": None})

    _, signals = await get(session, fake, "/trading-signals", token_id=3306)
    _, grades = await get(session, fake, "/tm-grade", token_id=3375)

    assert signals["data"] == [
        {"TOKEN_ID": 3375, "TOKEN_TREND": "abc"},
        {"TOKEN_NAME": "No id", "DATE": "2025-07-09"},
    ]
    assert grades["data"] == [{"TOKEN_ID": 3375, "TM_GRADE": None}]


async def test_raw_rows_filtered_option_applies_query_filters(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.add_raw_row("/tm-grade", {"TOKEN_ID": 3306, "TM_GRADE": "n/a"}, filtered=True)
    fake.add_raw_row("/tm-grade", {"TM_GRADE": 1.0}, filtered=True)

    _, btc = await get(session, fake, "/tm-grade", token_id=3375)
    _, eth = await get(session, fake, "/tm-grade", token_id=3306)

    assert (btc["data"], eth["data"]) == ([], [{"TOKEN_ID": 3306, "TM_GRADE": "n/a"}])


# ---------------------------------------------------------------------- inspection


async def test_calls_record_endpoint_query_and_hide_api_key(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    await get(session, fake, "/tokens", headers={"x-api-key": KEY, "x-integration": "alertbot"})
    await get(session, fake, "/tm-grade", token_id="3375,3306")

    assert fake.call_count == 2
    call = fake.calls_to("tm-grade")[0]
    assert (call.endpoint, call.query, call.status, call.authorized) == (
        "/tm-grade",
        {"token_id": "3375,3306"},
        200,
        True,
    )
    first = fake.calls_to("/v2/tokens")[0]
    assert first.headers["x-integration"] == "alertbot"
    assert "x-api-key" not in first.headers


async def test_reset_calls_empties_call_history(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    await get(session, fake, "/tokens")

    fake.reset_calls()

    assert (fake.call_count, fake.calls_to("/tokens")) == (0, [])


async def test_reset_clears_data_and_faults(
    fake: FakeTokenMetrics, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(status=500, times=None)

    fake.reset()
    status, body = await get(session, fake, "/tokens")

    assert (status, body["data"]) == (200, [])


# ---------------------------------------------------------------------- standalone


async def test_standalone_module_prints_base_url_and_serves_scenario(tmp_path: Path) -> None:
    scenario = {
        "api_key": "sub-key",
        "today": "2025-07-10",
        "tokens": [{"token_id": 3375, "symbol": "BTC", "name": "Bitcoin", "slug": "bitcoin"}],
        "signals": [{"token_id": 3375, "date": "2025-07-09", "trend": -1}],
        "flips": [{"token_id": 3375, "date": "2025-07-10"}],
        "faults": [{"endpoint": "/trading-signals", "status": 429, "retry_after": 1}],
    }
    data_file = tmp_path / "scenario.json"
    data_file.write_text(json.dumps(scenario))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.tokenmetrics_api", "--port", "0", "--data",
        str(data_file), cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = (await asyncio.wait_for(proc.stdout.readline(), timeout=10)).decode().strip()
        headers = {"x-api-key": "sub-key"}
        async with aiohttp.ClientSession(headers=headers) as client:
            async with client.get(f"{base_url}/trading-signals") as resp:
                first_status = resp.status
            async with client.get(f"{base_url}/trading-signals") as resp:
                body = await resp.json()
            async with client.get(base_url.removesuffix("/v2") + "/_fake/calls") as resp:
                calls = await resp.json()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)

    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v2")
    assert first_status == 429
    assert [row["TRADING_SIGNAL"] for row in body["data"]] == [1, 0]
    assert [call["status"] for call in calls] == [429, 200]
