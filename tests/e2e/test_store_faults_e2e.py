"""`alertbot` as a subprocess against real database faults: locks, and secrets at DEBUG."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.support import exclusive_lock

HOOK_URL = "http://127.0.0.1:9/hooks/T0ps3cretW3bhookPath/q?token=s3cr3tQueryValue42"


async def test_cli_subscribe_webhook_at_debug_never_logs_the_url(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_LOG_LEVEL="DEBUG")
    code, out, err = await run_alertbot(
        ["subscribe", "--platform", "webhook", "--chat", "hook1", "--url", HOOK_URL, "BTC"],
        env, tmp_path, timeout=30)
    assert code == 0, err
    assert "DEBUG" in err, "the test needs debug output to mean anything"
    for secret in (HOOK_URL, "T0ps3cretW3bhookPath", "s3cr3tQueryValue42"):
        assert secret not in out + err
    database = tmp_path / "alertbot.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


async def test_cli_database_locked_exits_1_with_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    code, _, err = await run_alertbot(["subscriptions"], env, tmp_path, timeout=30)
    assert code == 0, err
    with exclusive_lock(tmp_path / "alertbot.db"):
        code, _, err = await run_alertbot(
            ["subscribe", "--platform", "telegram", "--chat", "-100123", "BTC"], env,
            tmp_path, timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert "Traceback" not in err
    assert len(lines) == 1 and "database is locked" in lines[0], err
    _, listed, _ = await run_alertbot(["subscriptions"], env, tmp_path, timeout=30)
    assert listed.strip() == "no subscriptions"


async def test_run_database_locked_at_start_and_mid_run_stays_up_and_loses_nothing(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    database = tmp_path / "alertbot.db"
    code, _, err = await run_alertbot(["subscriptions"], env, tmp_path, timeout=30)
    assert code == 0, err
    bot = Alertbot(["run"], env, tmp_path)
    with exclusive_lock(database):
        await bot.start()
        await asyncio.sleep(30)
        assert bot.proc is not None and bot.proc.returncode is None, bot.stderr
        assert bot.alert_keys() == []
    await bot.wait_for_alerts(2, timeout=60)
    with exclusive_lock(database):
        before = len(bot.alert_keys())
        await asyncio.sleep(30)
        assert bot.proc.returncode is None, bot.stderr
    await bot.wait_for_alerts(before + 2, timeout=60)
    assert await bot.stop() == 0
    keys = bot.alert_keys()
    assert len(keys) == len(set(keys)), "an alert was delivered twice"
    assert bot.stderr.count("database unavailable") <= 4, bot.stderr
    # The start-up step shares the store with the dispatcher, whose own waits can outlast the
    # lock: it may succeed without reporting; it never reports twice and never crashes.
    assert bot.stderr.count("database unavailable at start") <= 1, bot.stderr
    assert "Traceback" not in bot.stderr
    with sqlite3.connect(database) as db:
        sent = db.execute("SELECT COUNT(DISTINCT msg_key) FROM outbox WHERE state = 'sent'")
        assert sent.fetchone()[0] == len(keys)
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sending'").fetchone() \
            == (0,)
