"""`alertbot run` in Telegram webhook mode as a subprocess, fed by the fake Bot API's webhook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.telegram_api import FakeTelegram
from tests.support import free_port

pytestmark = pytest.mark.timeout(120)

USER = 4242_0001
SECRET = "e2e-webhook_secret-7Qx"


async def test_telegram_webhook_e2e_run_answers_commands_once_never_polls(
        tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/updates"
    async with FakeTelegram() as tg:  # enforces Telegram's flood limits
        env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root,
                        TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET=SECRET,
                        ALERTBOT_HTTP_PORT=str(port), ALERTBOT_DEMO="1",
                        ALERTBOT_POLL_INTERVAL="1")
        check_code, check_out, _ = await run_alertbot(["check"], env, tmp_path)

        bot = await Alertbot(["run"], env, tmp_path).start()
        try:
            await tg.wait_until(lambda: bool(tg.webhook_url), timeout=60)
            tg.inject_message(USER, "/id", user_id=USER, chat_type="private")
            [reply] = await tg.wait_for_messages(1, chat_id=USER, timeout=30)

            twice = tg.inject_message(USER, "/help", user_id=USER, chat_type="private")
            await tg.wait_for_messages(2, chat_id=USER, timeout=30)
            again = await tg.post_to_webhook(twice)  # Telegram retrying a lost answer
            wrong = await tg.post_to_webhook(twice, secret="not-the-secret")
            tg.inject_message(USER, "/id", user_id=USER, chat_type="private")
            await tg.wait_for_messages(3, chat_id=USER, timeout=30)
        finally:
            code = await bot.stop()
        polled = tg.calls_of("getUpdates")
        [registered] = tg.calls_of("setWebhook")
        deliveries = list(tg.webhook_deliveries)
        sent = tg.sent_to(USER)

    assert check_code == 0, check_out
    assert (f"telegram: ok (connected as @alertbot_test_bot, updates by webhook {url}; not "
            f"registered yet, alertbot run registers it)") in check_out.splitlines()

    assert code == 0, bot.stderr
    assert "Traceback" not in bot.stderr
    output = bot.stderr + "\n".join(bot.stdout)
    assert SECRET not in output and tg.token not in output
    assert "Telegram: receiving updates by webhook as @alertbot_test_bot" in bot.stderr
    assert "Telegram webhook request refused (403)" in bot.stderr

    assert polled == [], "webhook mode never calls getUpdates"
    assert (registered["url"], registered["secret_token"]) == (url, SECRET)
    assert [d.status for d in deliveries] == [200, 200, 200]
    assert f"Chat id: {USER}" in reply.visible_text.splitlines()
    assert again[0] == 200 and json.loads(again[1]) == {"ok": True, "duplicate": True}
    assert wrong[0] == 403
    # /id, /help and /id again: the redelivered /help was not answered a second time.
    assert len(sent) == 3
    assert [("Chat id" in m.visible_text) for m in sent] == [True, False, True]
