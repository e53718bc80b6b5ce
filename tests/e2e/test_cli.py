"""Operator commands as a user types them (demo source, fresh database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.process import clean_env, run_alertbot


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path)


async def cli(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return await run_alertbot(list(args), env, tmp_path, timeout=30)


async def test_cli_subscribe_list_unsubscribe_round_trip(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    code, out, _ = await cli(env, tmp_path, "subscribe", "--platform", "telegram", "--chat",
                             "-100123", "btc", "--kinds", "signal,hourly")
    assert code == 0 and "subscribed to BTC (Bitcoin, id 3375): signal, hourly" in out
    code, out, _ = await cli(env, tmp_path, "subscribe", "--platform", "telegram", "--chat",
                             "-100123", "BTC", "--kinds", "signal")
    assert code == 0 and "already subscribed" in out
    code, out, _ = await cli(env, tmp_path, "subscriptions")
    assert code == 0 and "telegram:-100123" in out and "BTC" in out and "signal,hourly" in out
    code, out, _ = await cli(env, tmp_path, "unsubscribe", "--platform", "telegram", "--chat",
                             "-100123", "BTC", "--kinds", "hourly")
    assert code == 0 and "unsubscribed" in out
    code, out, _ = await cli(env, tmp_path, "unsubscribe", "--platform", "telegram", "--chat",
                             "-100123", "BTC", "--kinds", "hourly")
    assert code == 1 and "had no subscription" in out
    await cli(env, tmp_path, "subscribe", "--platform", "telegram", "--chat", "-100123", "all")
    code, out, _ = await cli(env, tmp_path, "unsubscribe", "--platform", "telegram", "--chat",
                             "-100123", "all")
    assert code == 0 and "unsubscribed from every token" in out
    _, listed, _ = await cli(env, tmp_path, "subscriptions")
    assert listed.strip() == "no subscriptions"


@pytest.mark.parametrize(("args", "message"), [
    (["subscribe", "--platform", "telegram", "--chat", "-1", "NOPE"], "Unknown symbol NOPE"),
    (["subscribe", "--platform", "telegram", "--chat", "-1", "BTC", "--kinds", "price"],
     "unknown kind"),
    (["subscribe", "--platform", "telegram", "--chat", "general", "BTC"], "numeric chat id"),
    (["subscribe", "--platform", "webhook", "--chat", "x", "BTC"], "needs --url"),
    (["subscribe", "--platform", "webhook", "--chat", "x", "--url",
      "http://example.com/s3cr3t", "BTC"], "loopback"),
    (["throttle", "--platform", "console", "--chat", "a", "--window", "10s"], "window"),
    (["throttle", "--platform", "console", "--chat", "a", "--quiet", "25:00-01:00"],
     "not a time"),
])
async def test_cli_bad_input_exits_2_and_changes_nothing(env: dict[str, str], tmp_path: Path,
                                                         args: list[str], message: str) -> None:
    code, out, err = await cli(env, tmp_path, *args)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and "s3cr3t" not in out + err
    _, listed, _ = await cli(env, tmp_path, "subscriptions")
    assert listed.strip() == "no subscriptions"


@pytest.mark.parametrize(("args", "message"), [
    (["throttle", "--platform", "console", "--chat", "a", "--mute", "1e20"], "not a duration"),
    (["throttle", "--platform", "console", "--chat", "a", "--mute", "inf"], "not a duration"),
    (["throttle", "--platform", "console", "--chat", "a", "--window", "1e400"],
     "not a duration"),
    (["throttle", "--platform", "console", "--chat", "a", "--max", "99999999999999999999"],
     "between 1 and 1000"),
    (["throttle", "--platform", "console", "--chat", "a", "--max", "²"], "not a whole number"),
    (["throttle", "--platform", "telegram", "--chat", "²", "--max", "5"], "numeric chat id"),
    (["lookup", "²"], "not a token symbol"),
    (["lookup", "99999999999999999999"], "not a valid token id"),
    (["subscribe", "--platform", "telegram", "--chat", "-1", "99999999999999999999"],
     "not a valid token id"),
])
async def test_cli_numeric_edge_cases_exit_2_with_one_line(env: dict[str, str],
                                                           tmp_path: Path, args: list[str],
                                                           message: str) -> None:
    code, _, err = await cli(env, tmp_path, *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


async def test_cli_throttle_sets_and_shows_policy(env: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = await cli(env, tmp_path, "throttle", "--platform", "console", "--chat", "ops",
                             "--max", "3", "--window", "30m", "--quiet", "22:00-07:00", "--tz",
                             "Europe/Berlin", "--mode", "hourly=silent", "--settle", "5m")
    assert code == 0
    assert "at most 3 alerts per 30m" in out
    assert "22:00-07:00 Europe/Berlin" in out
    assert "hourly=silent" in out
    code, out, _ = await cli(env, tmp_path, "throttle", "--platform", "console", "--chat", "ops")
    assert code == 0 and "at most 3 alerts per 30m" in out


async def test_cli_lookup_prints_signals_and_grades(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    code, out, err = await cli(env, tmp_path, "lookup", "ETH")
    assert code == 0, err
    assert "ETH signals" in out and "Daily signal: " in out and "TM grade: " in out
    assert "https://app.tokenmetrics.com/ethereum" in out
    code, _, err = await cli(env, tmp_path, "lookup", "NOPE")
    assert code == 2 and err.strip() == "alertbot: Unknown symbol NOPE."


async def test_cli_webhook_url_is_never_printed(env: dict[str, str], tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/hooks/s3cr3t-path"
    code, out, err = await cli(env, tmp_path, "subscribe", "--platform", "webhook", "--chat",
                               "feed", "--url", url, "all")
    assert code == 0, err
    _, listed, _ = await cli(env, tmp_path, "subscriptions")
    assert "webhook:feed" in listed
    assert "s3cr3t" not in out + err + listed


async def test_cli_check_reports_each_service(env: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = await cli(env, tmp_path, "check")
    assert code == 0
    assert "configuration: ok" in out and "database: ok" in out and "source: ok" in out


async def test_cli_env_file_missing_named_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = await cli(env, tmp_path, "--env-file", "prod.env", "subscriptions")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "alertbot: --env-file prod.env: no such file (leave --env-file out to read .env when "
        "it exists)"]
