"""`alertbot run` through several faults at once: it stays up, names each, and loses nothing.

In one run Discord drops the login connection (aiohttp's ServerDisconnectedError) and then
answers the command sync with a payload of the wrong shape (the Discord job raises and is
restarted), Telegram answers 500 to polling and to sends for a while, and Token Metrics serves
malformed bodies for three polls. Then another process holds the database's write lock for
30 s while the flip that must be alerted happens; polls cannot be saved meanwhile, /readyz
says so, and the alert goes out once the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.discord_api import DEFAULT_CHANNEL_ID, DEFAULT_GUILD_ID, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram, Fault
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.support import eventually

pytestmark = pytest.mark.timeout(240)

TM_KEY = "tm-key-for-faults-Wq83"
GROUP = -1001234567890
BTC = 3375
STARTUP = 60.0
MALFORMED_POLLS = 3
TELEGRAM_500S = 3
LOGIN_DROPS = 4
"""The bot and the notifier both try; retries after 1 s and 2 s keep it down ~3 s."""
FAULT_LINES = {
    "tokenmetrics": "polls: FAILED: no successful poll yet",
    "discord login": "discord: FAILED: Discord: cannot reach Discord (ServerDisconnectedError)",
    "discord job": "job discord: FAILED: down since",
    "telegram": "telegram: FAILED: polling Telegram failed recently",
}
"""What /readyz says while each fault lasts (the start of its line)."""
STORE_FAULTS: dict[str, str] = {}
"""Checked separately: the store lock comes after the other faults are over."""
STORE_LOCK = 30.0
"""Seconds another process holds the database's write lock."""


JOB_FAILED = "alertbot: job discord failed and is being restarted"
JOB_RECOVERED = "alertbot: job discord runs again"


def titles(discord: FakeDiscord) -> list[str]:
    return [str(e.get("title", "")) for m in discord.messages_in(DEFAULT_CHANNEL_ID)
            for e in m.embeds]


def btc_alerts(discord: FakeDiscord) -> list[str]:
    return [t for t in titles(discord) if t.startswith("BTC ")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sent_keys(tmp: Path, platform: str) -> list[str]:
    with sqlite3.connect(tmp / "alertbot.db", timeout=10) as db:
        return [k for (k,) in db.execute(
            "SELECT msg_key FROM outbox WHERE state = 'sent' AND platform = ?", (platform,))]


def queued(tmp: Path) -> int:
    with sqlite3.connect(tmp / "alertbot.db", timeout=10) as db:
        return int(db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state NOT IN ('sent', 'dead', 'dropped')"
        ).fetchone()[0])


async def test_faults_run_stays_up_reports_each_fault_and_delivers_every_alert(
        tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    port = free_port()
    async with FakeTokenMetrics(api_key=TM_KEY) as tm, FakeDiscord() as discord, \
            FakeTelegram() as telegram, aiohttp.ClientSession() as session:
        tm.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        tm.set_signal(BTC, today - timedelta(days=1), trend=-1)
        telegram.add_chat(GROUP, "supergroup", title="Crypto club")
        env = clean_env(
            tmp_path, TOKENMETRICS_API_KEY=TM_KEY, TOKENMETRICS_BASE_URL=tm.base_url,
            TOKENMETRICS_WATCHLIST="BTC", TOKENMETRICS_MONTHLY_CALLS="100000000",
            DISCORD_BOT_TOKEN=discord.token, DISCORD_API_URL=discord.api_base,
            DISCORD_GATEWAY_URL=discord.gateway_url, DISCORD_GUILD_IDS=str(DEFAULT_GUILD_ID),
            TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_URL=telegram.root,
            ALERTBOT_HTTP_PORT=str(port), ALERTBOT_POLL_INTERVAL="0.5",
            ALERTBOT_OPS_DESTINATION=f"discord:{DEFAULT_CHANNEL_ID}")
        for platform, chat in (("discord", str(DEFAULT_CHANNEL_ID)), ("telegram", str(GROUP))):
            code, _, err = await run_alertbot(
                ["subscribe", "--platform", platform, "--chat", chat, "BTC"], env, tmp_path)
            assert code == 0, err

        tm.fail_next("/trading-signals", times=MALFORMED_POLLS, kind="malformed")
        discord.drop_next("users_me", times=LOGIN_DROPS)
        discord.answer_next("commands", [{"unexpected": "shape"}])
        telegram.fail_next("getUpdates", Fault.server_error(500), times=TELEGRAM_500S)
        telegram.fail_next("sendMessage", Fault.server_error(500), times=TELEGRAM_500S)

        bot = await Alertbot(["run"], env, tmp_path).start()
        seen: set[str] = set()
        bodies: list[str] = []

        async def readyz() -> tuple[int, str]:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                body = await resp.text()
            bodies.append(body)
            for name, line in {**FAULT_LINES, **STORE_FAULTS}.items():
                if any(row.startswith(line) for row in body.splitlines()):
                    seen.add(name)
            return resp.status, body

        async def watched() -> bool:
            with contextlib.suppress(aiohttp.ClientError):  # not listening yet
                await readyz()
            assert bot.proc is not None and bot.proc.returncode is None, bot.stderr
            return seen >= FAULT_LINES.keys()

        try:
            try:
                await eventually(watched, what="/readyz naming every fault", timeout=STARTUP,
                                 interval=0.05)
            except AssertionError as exc:
                distinct = list(dict.fromkeys(bodies))
                raise AssertionError(f"{exc}; seen {sorted(seen)}; /readyz said "
                                     f"{distinct[-8:]}") from None
            # The baseline needs one good poll after the malformed ones; then BTC flips.
            await eventually(lambda: len(tm.calls_to("/trading-signals")) >=
                             MALFORMED_POLLS + 2, what="two good polls", timeout=STARTUP)
            # Another process takes the write lock, and the flip happens while it is held.
            locker = sqlite3.connect(tmp_path / "alertbot.db", timeout=30,
                                     isolation_level=None, check_same_thread=False)
            try:
                await asyncio.to_thread(locker.execute, "BEGIN EXCLUSIVE")
                locked_at = asyncio.get_running_loop().time()
                tm.flip(BTC, today)

                async def lock_reported() -> bool:
                    lines = (await readyz())[1].splitlines()
                    # The database check times out behind the lock; polls go stale.
                    return (any(line.startswith("database: FAILED") for line in lines)
                            and any(line.startswith("polls: FAILED") for line in lines))

                try:
                    await eventually(lock_reported, what="/readyz naming the locked database",
                                     timeout=STORE_LOCK - 5, interval=0.2)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}: {bodies[-1]}") from None
                assert not btc_alerts(discord), "alerted while the database was locked"
                assert bot.proc is not None and bot.proc.returncode is None, bot.stderr
                held = asyncio.get_running_loop().time() - locked_at
                await asyncio.sleep(max(0.0, STORE_LOCK - held))
            finally:
                await asyncio.to_thread(locker.execute, "ROLLBACK")
                locker.close()
            await discord.wait_until(lambda: bool(btc_alerts(discord)), timeout=STARTUP)
            await telegram.wait_until(lambda: bool(telegram.sent_to(GROUP)), timeout=STARTUP)

            async def recovered() -> bool:
                lines = (await readyz())[1].splitlines()
                # Telegram's probe keeps naming a polling error for POLL_ERROR_WINDOW (90 s).
                return all(line.endswith(": ok") or ": ok (" in line
                           for line in lines[1:] if not line.startswith("telegram:"))

            try:
                await eventually(recovered, what="/readyz clear once the faults are over",
                                 timeout=STARTUP)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {bodies[-1]}") from None
            await eventually(lambda: queued(tmp_path) == 0, what="an empty outbox",
                             timeout=STARTUP)
            await discord.wait_until(lambda: JOB_RECOVERED in titles(discord), timeout=STARTUP)
            status, metrics_text = 0, ""
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                status, metrics_text = resp.status, await resp.text()
        finally:
            code = await bot.stop()

    assert code == 0, bot.stderr
    assert status == 200
    assert 'alertbot_job_restarts_total{job="discord"} 1.0' in metrics_text
    assert "job discord failed" in bot.stderr
    assert "Discord login failed (ServerDisconnectedError)" in bot.stderr
    # Discord: exactly once (one message per sent row, by nonce); Telegram: at least once.
    discord_messages = discord.messages_in(DEFAULT_CHANNEL_ID)
    assert sorted(m.nonce for m in discord_messages) == sorted(sent_keys(tmp_path, "discord"))
    assert len(btc_alerts(discord)) == 1
    # The operator hears of the failure streak once, and of its end once.
    assert titles(discord).count(JOB_FAILED) == 1 and titles(discord).count(JOB_RECOVERED) == 1
    telegram_alerts = telegram.sent_to(GROUP)
    assert len(sent_keys(tmp_path, "telegram")) == 1 and telegram_alerts
    assert all("BTC" in m.visible_text for m in telegram_alerts)
    assert len(telegram.calls_of("sendMessage")) >= TELEGRAM_500S + 1
    assert TM_KEY not in bot.stderr + "\n".join(bodies) and discord.token not in bot.stderr
