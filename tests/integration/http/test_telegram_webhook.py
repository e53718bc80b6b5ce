"""Telegram webhook mode: the real PTB Application behind our HTTP server, fed by the fake.

The fake Bot API POSTs each update to the URL the bot registered with setWebhook, with the
secret_token header, and retries it until it gets a 2xx, as Telegram does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.bootstrap.operations import web_server
from alertbot.config import load_settings
from alertbot.http.server import WebServer
from alertbot.http.telegram_hook import SECRET_HEADER
from tests.fakes.telegram_api import FakeTelegram, Fault, WebhookDelivery
from tests.support import eventually, free_port

pytestmark = pytest.mark.timeout(60)

USER = 4711
PATH = "/telegram/updates"
_SCRUB = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


@dataclass
class Replica:
    app: App
    server: WebServer
    url: str
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    async def start_telegram(self) -> None:
        self.task = asyncio.create_task(self.app.jobs["telegram"](self.stop))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)
        await self.server.stop()
        await self.app.close()


def environment(monkeypatch: pytest.MonkeyPatch, tmp: Path, tg: FakeTelegram,
                port: int) -> None:
    for name in list(os.environ):
        if name.startswith(_SCRUB):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALERTBOT_DATABASE_URL", f"sqlite:///{tmp / 'hook.db'}")
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", str(port))
    monkeypatch.setenv("ALERTBOT_DEMO", "1")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg.token)
    monkeypatch.setenv("TELEGRAM_API_URL", tg.root)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", f"http://127.0.0.1:{port}{PATH}")


async def replica(port: int) -> Replica:
    """One alertbot process's worth of parts: the app and its HTTP server on `port`."""
    app = await build(load_settings(None), env_file=None)
    server = web_server(app, port=port)
    try:
        await server.start("127.0.0.1", port)
    except BaseException:
        await app.close()
        raise
    return Replica(app, server, f"http://127.0.0.1:{port}{PATH}", asyncio.Event())


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(enforce_limits=False) as fake:
        fake.webhook_retry_delay = 0.05
        yield fake


@pytest.fixture
async def bot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              tg: FakeTelegram) -> AsyncIterator[Replica]:
    port = free_port()
    environment(monkeypatch, tmp_path, tg, port)
    one = await replica(port)
    try:
        await one.start_telegram()
        await tg.wait_until(lambda: bool(tg.webhook_url), timeout=20)
        yield one
    finally:
        await one.close()


def message_update(update_id: int, text: str, *, user: int = USER) -> dict[str, Any]:
    """A private-chat text message as Telegram sends it to a webhook."""
    sender = {"id": user, "is_bot": False, "first_name": "Ann"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764331200, "text": text,
        "chat": {"id": user, "type": "private", "first_name": "Ann"}, "from": sender,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    }}


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else {}


async def test_webhook_mode_registers_webhook_and_never_polls(bot: Replica,
                                                              tg: FakeTelegram) -> None:
    [call] = tg.calls_of("setWebhook")
    secret = bot.app.settings.telegram_webhook_token()
    assert secret is not None
    assert call["url"] == bot.url
    assert call["secret_token"] == secret.get_secret_value()
    assert set(call["allowed_updates"]) == {"message", "channel_post", "my_chat_member",
                                            "callback_query"}
    assert call["drop_pending_updates"] is False
    assert tg.calls_of("getUpdates") == [] and tg.calls_of("deleteWebhook") == []
    assert bot.app.health["telegram"]() is None


async def test_webhook_command_delivered_by_telegram_is_answered(bot: Replica,
                                                                 tg: FakeTelegram) -> None:
    update = tg.inject_message(USER, "/id", user_id=USER, chat_type="private")
    [reply] = await tg.wait_for_messages(1, chat_id=USER, timeout=20)
    assert f"Chat id: {USER}" in reply.visible_text.splitlines()
    assert tg.webhook_deliveries == [WebhookDelivery(update["update_id"], 200)]
    assert tg.pending_updates == 0


async def test_webhook_same_update_twice_is_handled_once(bot: Replica,
                                                         tg: FakeTelegram) -> None:
    update = message_update(900, "/id")
    first = await tg.post_to_webhook(update)
    second = await tg.post_to_webhook(update)
    assert first[0] == 200 and json.loads(first[1]) == {"ok": True}
    assert second[0] == 200 and json.loads(second[1]) == {"ok": True, "duplicate": True}
    await tg.wait_for_messages(1, chat_id=USER, timeout=20)
    tg.inject_message(USER, "/help", user_id=USER, chat_type="private")  # a later update
    await tg.wait_for_messages(2, chat_id=USER, timeout=20)
    texts = [m.visible_text for m in tg.sent_to(USER)]
    assert len(texts) == 2 and f"Chat id: {USER}" in texts[0] and "Chat id" not in texts[1]


async def test_webhook_update_redelivered_to_another_replica_is_handled_once(
        bot: Replica, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    other_port = free_port()
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", str(other_port))
    other = await replica(other_port)  # same database, as behind a load balancer
    try:
        await other.start_telegram()
        await eventually(lambda: other.app.receivers["telegram"].ready(), what="second ready")
        update = message_update(901, "/id")
        body = json.dumps(update).encode()
        secret = bot.app.settings.telegram_webhook_token()
        assert secret is not None
        headers = {SECRET_HEADER: secret.get_secret_value()}
        answers = await asyncio.gather(post(bot.url, body, headers),
                                       post(other.url.replace(PATH, PATH), body, headers))
        assert [status for status, _ in answers] == [200, 200]
        assert sorted("duplicate" in answer for _, answer in answers) == [False, True]
        await tg.wait_for_messages(1, chat_id=USER, timeout=20)
        await asyncio.sleep(0.3)  # room for a wrong second answer to arrive
        assert len(tg.sent_to(USER)) == 1
    finally:
        await other.close()


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong-secret", 403), ("", 401)])
async def test_webhook_missing_or_wrong_secret_refused_nothing_handled(
        bot: Replica, tg: FakeTelegram, caplog: pytest.LogCaptureFixture,
        secret: str | None, status: int) -> None:
    update = message_update(902, "/id")
    with caplog.at_level(logging.WARNING):
        refused, body = await tg.post_to_webhook(update, secret=secret)
        await tg.post_to_webhook(update, secret=secret)
    assert refused == status and "Secret-Token" in json.loads(body)["error"]
    refusals = [r for r in caplog.records if "Telegram webhook request refused" in r.message]
    assert len(refusals) == 1, "logged once, then only counted"
    real = bot.app.settings.telegram_webhook_token()
    assert real is not None and real.get_secret_value() not in caplog.text
    # Nothing was claimed: the genuine delivery of the same update is handled.
    accepted, answer = await tg.post_to_webhook(update)
    assert (accepted, json.loads(answer)) == (200, {"ok": True})
    await tg.wait_for_messages(1, chat_id=USER, timeout=20)


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"message": {}}', "no update_id"),
    (b'{"update_id": "7"}', "no update_id"),
    (b'{"update_id": -1}', "no update_id"),
    (b'{"update_id": 903, "message": {"chat": 5}}', "not a Telegram update"),
])
async def test_webhook_malformed_body_is_400_and_claims_nothing(
        bot: Replica, tg: FakeTelegram, body: bytes, problem: str) -> None:
    status, answer = await tg.post_to_webhook(body)
    assert status == 400 and problem in json.loads(answer)["error"]
    assert await bot.app.store.claim_update("telegram", 903, bot.app.clock.now())
    assert tg.sent == []


async def test_webhook_body_over_limit_is_413(bot: Replica, tg: FakeTelegram) -> None:
    update = message_update(904, "/id " + "x" * 300_000)
    status, answer = await tg.post_to_webhook(update)
    assert status == 413 and "larger than" in json.loads(answer)["error"]
    assert await bot.app.store.claim_update("telegram", 904, bot.app.clock.now())


async def test_webhook_update_before_adapter_started_is_503_then_retried(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tg: FakeTelegram) -> None:
    port = free_port()
    environment(monkeypatch, tmp_path, tg, port)
    early = await replica(port)
    try:
        secret = early.app.settings.telegram_webhook_token()
        assert secret is not None
        headers = {SECRET_HEADER: secret.get_secret_value()}
        body = json.dumps(message_update(905, "/id")).encode()
        status, answer = await post(early.url, body, headers)
        assert status == 503 and "retry later" in answer["error"]
        await early.start_telegram()
        await tg.wait_until(lambda: bool(tg.webhook_url), timeout=20)
        assert (await post(early.url, body, headers))[0] == 200, "not claimed by the 503"
        await tg.wait_for_messages(1, chat_id=USER, timeout=20)
    finally:
        await early.close()


async def test_webhook_polling_mode_has_no_webhook_route(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tg: FakeTelegram) -> None:
    port = free_port()
    environment(monkeypatch, tmp_path, tg, port)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_URL")
    polling = await replica(port)
    try:
        assert "telegram" not in polling.app.receivers
        status, _ = await post(polling.url, json.dumps(message_update(1, "/id")).encode(),
                               {SECRET_HEADER: "anything"})
        assert status == 404
    finally:
        await polling.close()


async def test_webhook_refused_by_telegram_shows_in_health_then_retried(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tg: FakeTelegram) -> None:
    port = free_port()
    environment(monkeypatch, tmp_path, tg, port)
    tg.fail_next("setWebhook", Fault.error(
        400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known"))
    refused = await replica(port)
    try:
        await refused.start_telegram()
        probe = refused.app.health["telegram"]
        await eventually(lambda: "webhook" in (probe() or ""), what="refusal in health")
        # PTB capitalises the description after dropping "Bad Request: ".
        assert probe() == ("Telegram refused a start-up request: Bad webhook: failed to "
                           "resolve host: name or service not known")
        await tg.wait_until(lambda: bool(tg.webhook_url), timeout=20)
        await eventually(lambda: probe() is None, what="healthy after the retry")
        assert tg.calls_of("getUpdates") == []
    finally:
        await refused.close()
