"""`alertbot run` as a subprocess against the fake Telegram Bot API, driven like a real group."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.telegram_api import FakeTelegram, SentMessage

pytestmark = pytest.mark.timeout(120)

GROUP = -1001234567890
ADMIN, MEMBER = 7, 8


def is_alert(message: SentMessage) -> bool:
    """An alert or digest (command replies never start with an arrow or a count)."""
    first = message.visible_text.splitlines()[0]
    return first.startswith(("▲", "▼")) or first.endswith("more changes:")


async def wait_for(tg: FakeTelegram, predicate: Callable[[SentMessage], bool],
                   timeout: float) -> SentMessage:
    """The first message to the group that matches, once it has arrived."""
    await tg.wait_until(lambda: any(predicate(m) for m in tg.sent_to(GROUP)), timeout)
    return next(m for m in tg.sent_to(GROUP) if predicate(m))


async def test_telegram_e2e_subscribe_flip_refusal_and_listing(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:  # enforces Telegram's flood limits
        tg.add_chat(GROUP, "supergroup", title="Crypto club")
        tg.set_chat_member(GROUP, ADMIN, "administrator")
        tg.set_chat_member(GROUP, MEMBER, "member")
        env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root,
                        ALERTBOT_DEMO="1", ALERTBOT_DEMO_SPEED="36000",
                        ALERTBOT_POLL_INTERVAL="0.2")
        bot = await Alertbot(["run"], env, tmp_path).start()
        try:
            await tg.wait_until(lambda: bool(tg.calls_of("getUpdates")), timeout=60)

            tg.inject_message(GROUP, "/subscribe BTC hourly", user_id=ADMIN)
            confirmation = await wait_for(
                tg, lambda m: m.visible_text.startswith("Subscribed"), timeout=20)
            assert confirmation.visible_text.splitlines()[0] == (
                "Subscribed this chat to BTC (Bitcoin): hourly signal.")

            first_alert = await wait_for(tg, is_alert, timeout=60)

            tg.inject_message(GROUP, "/throttle 1 1h", user_id=MEMBER)
            refusal = await wait_for(tg, lambda m: m.visible_text.startswith("Sorry"), 20)
            tg.inject_message(GROUP, "/subscriptions", user_id=MEMBER)
            listing = await wait_for(
                tg, lambda m: m.visible_text.startswith("Subscriptions here"), 20)
        finally:
            code = await bot.stop()
        alerts = [m for m in tg.sent_to(GROUP) if is_alert(m)]

    assert code == 0, bot.stderr
    assert "Traceback" not in bot.stderr
    assert tg.token not in bot.stderr and tg.token not in "\n".join(bot.stdout)

    assert refusal.visible_text == ("Sorry, only chat admins (anyone in a private chat) can "
                                    "change the throttle.")
    listed = listing.visible_text.splitlines()
    assert "• BTC: hourly signal" in listed
    assert "throttle: at most 10 alerts per 1h (the rest arrive as one digest)" in listed

    # Exactly one Telegram message per delivered flip: no duplicates, nothing extra.
    texts = [m.visible_text for m in alerts]
    assert len(texts) == len(set(texts))
    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        chat = str(GROUP)
        delivered = db.execute(
            "SELECT COUNT(*) FROM messages WHERE platform = 'telegram' AND chat_id = ?",
            (chat,)).fetchone()[0]
        keys = db.execute(
            "SELECT COUNT(DISTINCT msg_key) FROM outbox WHERE platform = 'telegram'"
            " AND chat_id = ? AND state = 'sent'", (chat,)).fetchone()[0]
        first_change = db.execute(
            "SELECT c.symbol, c.kind, c.to_label FROM outbox o JOIN changes c"
            " ON c.id = o.change_pk WHERE o.chat_id = ? ORDER BY c.detected_at, c.id LIMIT 1",
            (chat,)).fetchone()
        policy = db.execute("SELECT max_alerts, window_s FROM destinations WHERE chat_id = ?",
                            (chat,)).fetchone()
        policy_audits = db.execute(
            "SELECT COUNT(*) FROM audit WHERE action = 'policy'").fetchone()[0]
    assert delivered == keys == len(alerts) >= 1
    assert first_change[:2] == ("BTC", "hourly")
    assert first_alert.visible_text.splitlines()[0] == (
        f"{'▲' if first_change[2] == 'bullish' else '▼'} BTC hourly signal turned "
        f"{first_change[2]}")
    assert first_alert.link_preview_options == {"is_disabled": True}

    # The refused /throttle changed nothing.
    assert policy == (10, 3600.0)
    assert policy_audits == 0

    # Replies and alerts shared one pacer: Telegram never had to say 429.
    assert tg.rate_limited == 0


@pytest.mark.parametrize(("token", "code", "line"), [
    (None, 0, "telegram: ok (connected as @alertbot_test_bot, updates by long polling)"),
    ("999:WRONG", 1, "telegram: FAILED: Telegram rejected the bot token (check "
                     "TELEGRAM_BOT_TOKEN)"),
])
async def test_telegram_e2e_check_reports_the_bot_without_leaking_the_token(
        tmp_path: Path, token: str | None, code: int, line: str) -> None:
    async with FakeTelegram() as tg:
        secret = token or tg.token
        env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN=secret, TELEGRAM_API_URL=tg.root,
                        ALERTBOT_DEMO="1")
        exit_code, stdout, stderr = await run_alertbot(["check"], env, tmp_path, timeout=60)
    assert exit_code == code, stdout + stderr
    assert line in stdout.splitlines()
    assert secret not in stdout and secret not in stderr
