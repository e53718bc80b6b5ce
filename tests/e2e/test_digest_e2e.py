"""Scheduled digests through real `alertbot` processes: the demo source and the console."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot

pytestmark = pytest.mark.timeout(300)
DIGEST = "Daily digest · "


def digest_lines(stdout: str | list[str]) -> list[str]:
    lines = stdout.splitlines() if isinstance(stdout, str) else stdout
    return [line for line in lines if DIGEST in line]


async def set_digest(env: dict[str, str], tmp: Path, chat: str, *schedule: str) -> str:
    code, out, err = await run_alertbot(["digest", "--platform", "console", "--chat", chat,
                                         *schedule], env, tmp)
    assert code == 0, err
    return out


def backdate_schedules(tmp: Path, since: datetime) -> None:
    """As if the schedules had been set at `since` (the bot was down since then)."""
    with sqlite3.connect(tmp / "alertbot.db") as db:
        db.execute("UPDATE destinations SET digest_since = ? WHERE digest != ''",
                   (since.timestamp(),))


async def test_digest_missed_periods_on_start_sent_once_or_skipped_and_explained(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    now = datetime.now(UTC)
    ended = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
    at = f"{ended:%H:%M}"
    out = await set_digest(env, tmp_path, "default", "daily", at, "UTC", "--always")
    assert f"scheduled digest: daily at {at} UTC, also when nothing changed" in out
    await set_digest(env, tmp_path, "other", "daily", at, "UTC")
    backdate_schedules(tmp_path, now - timedelta(days=2))

    bot = await Alertbot(["run"], env, tmp_path).start()
    async with asyncio.timeout(60):
        while not digest_lines(bot.stdout):
            await asyncio.sleep(0.2)
            assert bot.proc is not None and bot.proc.returncode is None, bot.stderr
    await asyncio.sleep(1.0)
    assert await bot.stop() == 0
    assert "Traceback" not in bot.stderr
    # The period that ended 3 h ago is sent; the one before (27 h ago) is skipped, and the
    # destination without `always` had nothing to say.
    (line,) = digest_lines(bot.stdout)
    assert f"→ {ended:%Y-%m-%d %H:%M} UTC" in line
    assert "[console:other]" not in "\n".join(bot.stdout)

    # A restart sends no second digest for the same period.
    code, out, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=90)
    assert code == 0, err
    assert digest_lines(out) == []

    code, out, err = await run_alertbot(["why", "--platform", "console", "--chat", "default"],
                                        env, tmp_path)
    assert code == 0, err
    assert "not sent: the bot was down when the period ended" in out
    assert any(DIGEST in line and ": sent" in line for line in out.splitlines()), out
    code, out, err = await run_alertbot(["why", "--platform", "console", "--chat", "other"],
                                        env, tmp_path)
    assert code == 0, err
    assert "not sent: nothing changed in the period" in out
    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        outcomes = db.execute("SELECT platform || ':' || chat_id, outcome FROM scheduled_digests"
                              " ORDER BY period_end, chat_id").fetchall()
    assert outcomes == [("console:default", "skipped"), ("console:other", "skipped"),
                        ("console:default", "queued"), ("console:other", "empty")]


async def test_digest_only_live_period_end_summarises_changes_once_across_restart(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    now = datetime.now(UTC)
    # The next minute at least 40 s ahead: the demo has time to produce changes before it.
    boundary = (now + timedelta(seconds=100)).replace(second=0, microsecond=0)
    code, _, err = await run_alertbot(["subscribe", "--platform", "console", "--chat",
                                       "default", "all"], env, tmp_path)
    assert code == 0, err
    await set_digest(env, tmp_path, "default", "daily", f"{boundary:%H:%M}", "UTC", "--only")

    bot = await Alertbot(["run"], env, tmp_path).start()
    async with asyncio.timeout(150):
        while not digest_lines(bot.stdout):
            await asyncio.sleep(0.2)
            assert bot.proc is not None and bot.proc.returncode is None, bot.stderr
    assert await bot.stop() == 0
    assert "Traceback" not in bot.stderr
    (line,) = digest_lines(bot.stdout)
    assert f"→ {boundary:%Y-%m-%d %H:%M} UTC" in line
    # Digests only: the changes were not printed one by one, but are in the digest.
    alerts = [text for text in bot.stdout if text.endswith("]") and DIGEST not in text]
    assert alerts == [], alerts
    body = "\n".join(bot.stdout)
    assert "changes across" in body and "Changes by token:" in body

    code, out, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=90)
    assert code == 0, err
    assert digest_lines(out) == []
    code, out, err = await run_alertbot(["why", "--platform", "console", "--chat", "default"],
                                        env, tmp_path)
    assert "not sent on its own: this chat gets the scheduled digest only" in out, out
