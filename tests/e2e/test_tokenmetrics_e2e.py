"""`alertbot run` as a subprocess against the fake Token Metrics API in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.support import eventually

GOOD_KEY = "x"
BAD_KEY = "tm-bad-key-hunter2-0042"
BTC = 3375


@pytest.fixture
async def fake() -> AsyncIterator[FakeTokenMetrics]:
    today = datetime.now(UTC).date()
    async with FakeTokenMetrics(api_key=GOOD_KEY) as server:
        server.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        server.set_signal(BTC, today - timedelta(days=1), trend=-1)
        yield server


def tm_env(tmp: Path, fake: FakeTokenMetrics, key: str = GOOD_KEY) -> dict[str, str]:
    return clean_env(tmp, TOKENMETRICS_API_KEY=key, TOKENMETRICS_BASE_URL=fake.base_url,
                     ALERTBOT_DATABASE_URL=f"sqlite:///{tmp / 'a.db'}",
                     ALERTBOT_POLL_INTERVAL="0.5", TOKENMETRICS_WATCHLIST="BTC")


async def subscribe_console(tmp: Path, fake: FakeTokenMetrics) -> None:
    code, stdout, stderr = await run_alertbot(
        ["subscribe", "--platform", "console", "--chat", "default", "BTC"],
        tm_env(tmp, fake), tmp)
    assert code == 0, stderr
    assert "subscribed to BTC (Bitcoin, id 3375)" in stdout


async def test_run_trend_flip_is_alerted_once_and_repolling_prints_nothing(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    await subscribe_console(tmp_path, fake)
    bot = await Alertbot(["run"], tm_env(tmp_path, fake), tmp_path).start()
    try:
        # Two cycles make sure the bearish baseline is stored before the flip appears.
        await eventually(lambda: len(fake.calls_to("/trading-signals")) >= 2,
                         what="two signal polls", timeout=30)
        assert bot.alert_keys() == []
        fake.flip(BTC, datetime.now(UTC).date())

        [key] = await bot.wait_for_alerts(1, timeout=30)
        seen = len(fake.calls_to("/trading-signals"))
        await eventually(lambda: len(fake.calls_to("/trading-signals")) >= seen + 4,
                         what="four more signal polls", timeout=30)
    finally:
        code = await bot.stop()

    assert code == 0, bot.stderr
    assert bot.alert_keys() == [key]
    alert_lines = [line for line in bot.stdout if key in line]
    assert len(alert_lines) == 1 and "BTC" in alert_lines[0]
    assert "Traceback" not in bot.stderr
    plan = [line for line in bot.stderr.splitlines() if "Token Metrics plan:" in line]
    assert len(plan) == 1 and "calls per cycle" in plan[0]


async def test_run_bad_key_logs_one_line_naming_variable_and_backs_off(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    await subscribe_console(tmp_path, fake)
    fake.reset_calls()
    bot = await Alertbot(["run"], tm_env(tmp_path, fake, BAD_KEY), tmp_path).start()
    try:
        await eventually(lambda: any("failed" in line and "TOKENMETRICS_API_KEY" in line
                                     for line in bot.stderr.splitlines()),
                         what="a log line naming TOKENMETRICS_API_KEY", timeout=30)
        # Four poll intervals: without a backoff each one would be another rejected call.
        await asyncio.sleep(2.0)
        assert len(fake.calls_to("/trading-signals")) == 1
    finally:
        code = await bot.stop()

    assert code == 0
    output = "\n".join(bot.stdout) + bot.stderr
    assert BAD_KEY not in output and "hunter2" not in output
    assert "Traceback" not in output
    failures = [line for line in bot.stderr.splitlines() if "failed" in line]
    assert failures and all("TOKENMETRICS_API_KEY" in line for line in failures)
    assert bot.alert_keys() == []


async def test_check_bad_key_exits_nonzero_naming_variable_without_its_value(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    code, stdout, stderr = await run_alertbot(["check"], tm_env(tmp_path, fake, BAD_KEY),
                                              tmp_path)

    assert code == 1
    [line] = [line for line in stdout.splitlines() if line.startswith("source:")]
    assert "FAILED" in line and "TOKENMETRICS_API_KEY" in line
    assert BAD_KEY not in stdout + stderr and "hunter2" not in stdout + stderr
    assert "Traceback" not in stderr


async def test_check_good_key_exits_zero_with_plan(tmp_path: Path,
                                                   fake: FakeTokenMetrics) -> None:
    code, stdout, stderr = await run_alertbot(["check"], tm_env(tmp_path, fake), tmp_path)

    assert code == 0, stdout + stderr
    [line] = [line for line in stdout.splitlines() if line.startswith("source:")]
    assert "accepted TOKENMETRICS_API_KEY" in line and "calls per cycle" in line


async def test_cli_lookup_rejected_key_says_so_and_exits_1(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    await subscribe_console(tmp_path, fake)  # BTC is now known: no resolve call is needed
    code, stdout, stderr = await run_alertbot(["lookup", "BTC"], tm_env(tmp_path, fake, BAD_KEY),
                                              tmp_path)
    assert code == 1, stdout + stderr
    assert "rejected TOKENMETRICS_API_KEY" in stderr
    assert "Traceback" not in stderr and BAD_KEY not in stdout + stderr
