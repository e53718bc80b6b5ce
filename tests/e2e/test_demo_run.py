"""The embedded default, as a newcomer runs it: `alertbot run` with nothing configured."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.process import ALERT_KEY, Alertbot, clean_env, run_alertbot


async def test_run_default_prints_alerts_and_restart_never_repeats(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    first = await Alertbot(["run"], env, tmp_path).start()
    keys_first = await first.wait_for_alerts(3, timeout=30)
    assert await first.stop() == 0
    assert "Traceback" not in first.stderr
    assert "subscribed the console to every demo token" in first.stderr
    keys_first = first.alert_keys()

    second = await Alertbot(["run"], env, tmp_path).start()
    await second.wait_for_alerts(2, timeout=30)
    assert await second.stop(signal.SIGINT) == 0
    keys_second = second.alert_keys()
    assert "Traceback" not in second.stderr
    assert not set(keys_first) & set(keys_second), "an alert was delivered twice"
    assert len(keys_first) == len(set(keys_first)) and len(keys_second) == len(set(keys_second))
    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        sent = db.execute("SELECT COUNT(DISTINCT msg_key) FROM outbox WHERE state = 'sent'")
        assert sent.fetchone()[0] == len(keys_first) + len(keys_second)
        queued = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sending'").fetchone()
        assert queued[0] == 0


async def test_run_once_runs_one_cycle_and_exits(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    code, _, stderr = await run_alertbot(["run", "--once"], env, tmp_path)
    assert code == 0, stderr
    code, stdout, stderr = await run_alertbot(["run", "--once"], env, tmp_path)
    assert code == 0, stderr
    # The second run continues the story: one poll interval of head start is ten demo hours.
    assert [m for line in stdout.splitlines() if (m := ALERT_KEY.search(line))]


@pytest.mark.parametrize(("variable", "value"), [
    ("ALERTBOT_POLL_INTERVAL", "abc"),
    ("ALERTBOT_HTTP_PORT", "70000"),
    ("ALERTBOT_LOG_FORMAT", "xml"),
    ("ALERTBOT_DEMO", "sometimes"),
    ("ALERTBOT_DATABASE_URL", "mysql://user:hunter2pw@db/alertbot"),
    ("TELEGRAM_BOT_TOKEN", "hunter2pw-not-a-token"),
    ("TOKENMETRICS_API_KEY_FILE", "/nonexistent/hunter2pw"),
])
async def test_run_bad_configuration_exits_2_naming_the_variable(
        tmp_path: Path, variable: str, value: str) -> None:
    env = clean_env(tmp_path, **{variable: value})
    code, stdout, stderr = await run_alertbot(["run"], env, tmp_path, timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and variable in lines[0], stderr
    assert "Traceback" not in stderr
    if "hunter2pw" in value and not variable.endswith("_FILE"):
        assert "hunter2pw" not in stderr + stdout


async def test_run_several_bad_values_one_line_each(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_POLL_INTERVAL="-5", ALERTBOT_LOG_LEVEL="LOUD")
    code, _, stderr = await run_alertbot(["check"], env, tmp_path, timeout=30)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("ALERTBOT_POLL_INTERVAL" in line for line in lines)
    assert any("ALERTBOT_LOG_LEVEL" in line for line in lines)


async def test_run_second_on_same_sqlite_file_refused_first_unharmed(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    first = await Alertbot(["run"], env, tmp_path).start()
    await first.wait_for_alerts(1, timeout=30)
    code, out, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=30)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "another `alertbot run`" in err and "ALERTBOT_DATABASE_URL" in err
    code, _, err = await run_alertbot(["subscriptions"], env, tmp_path, timeout=30)
    assert code == 0, err  # operator commands still run beside the bot
    await first.wait_for_alerts(len(first.alert_keys()) + 1, timeout=30)
    assert await first.stop() == 0
    code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=60)
    assert code == 0, err
