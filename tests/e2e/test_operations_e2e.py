"""`alertbot run` with every secret configured, driven down its error paths; nothing leaks.

The Token Metrics fake rejects the key, a Telegram chat is gone, a webhook fails, requests
with bad signatures arrive, and then the key is rotated with SIGHUP. Every line the process
prints, every HTTP answer and every operator alert is scanned for every secret.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from alertbot.domain.signing import SIGNATURE_HEADER, sign
from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.discord_api import DEFAULT_CHANNEL_ID, DEFAULT_GUILD_ID, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import eventually

pytestmark = pytest.mark.timeout(180)

GOOD_KEY = "tm-good-key-Qx71Lm"
WRONG_KEY = "tm-wrong-key-Vb38Kp"
DISCORD_TOKEN = "discord-secret-token-Zq9Wm2"
TELEGRAM_TOKEN = "987654321:AAtelegramSecretTokenValue_xyz"
PUSH_SECRET = "push-secret-Hn4Rt8"
GONE_CHAT = -1009990001
BTC = 3375


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Http:
    """Every answer is kept so the test can scan them all."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.bodies: list[str] = []

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path) as resp:
            text = await resp.text()
        self.bodies.append(text)
        return resp.status, text

    async def push(self, payload: object, secret: str = PUSH_SECRET) -> tuple[int, str]:
        body = json.dumps(payload).encode()
        headers = {SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
        async with self.session.post(self.base + "/hooks/signals", data=body,
                                     headers=headers) as resp:
            text = await resp.text()
        self.bodies.append(text)
        return resp.status, text


def ops_texts(discord: FakeDiscord) -> list[str]:
    texts = []
    for message in discord.messages_in(DEFAULT_CHANNEL_ID):
        parts = [message.content or ""]
        for embed in message.embeds:
            parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        texts.append("\n".join(parts))
    return texts


async def test_operations_error_path_run_leaks_no_secret_and_rotates_key_on_sighup(
        tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    port = free_port()
    key_file = tmp_path / "tm_key"
    key_file.write_text(WRONG_KEY + "\n")
    secret_file = tmp_path / "push_secret"
    secret_file.write_text(PUSH_SECRET)
    async with FakeTokenMetrics(api_key=GOOD_KEY) as tm, \
            FakeDiscord(token=DISCORD_TOKEN) as discord, \
            FakeTelegram(token=TELEGRAM_TOKEN) as telegram, \
            WebhookReceiver() as receiver, aiohttp.ClientSession() as session:
        tm.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        tm.set_signal(BTC, today - timedelta(days=1), trend=-1)
        telegram.forget_chat(GONE_CHAT)
        receiver.responses = [(500, {}), (400, {})]
        hook_token = receiver.url.rsplit("/", 1)[1]
        secrets = [GOOD_KEY, WRONG_KEY, DISCORD_TOKEN, TELEGRAM_TOKEN, PUSH_SECRET,
                   receiver.url, hook_token]
        common = dict(
            TOKENMETRICS_BASE_URL=tm.base_url, TOKENMETRICS_WATCHLIST="BTC",
            TOKENMETRICS_MONTHLY_CALLS="100000000", DISCORD_BOT_TOKEN=DISCORD_TOKEN,
            DISCORD_API_URL=discord.api_base, DISCORD_GATEWAY_URL=discord.gateway_url,
            DISCORD_GUILD_IDS=str(DEFAULT_GUILD_ID), TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_API_URL=telegram.root, ALERTBOT_WEBHOOK_SECRET_FILE=str(secret_file),
            ALERTBOT_OPS_DESTINATION=f"discord:{DEFAULT_CHANNEL_ID}")
        setup_env = clean_env(tmp_path, TOKENMETRICS_API_KEY=GOOD_KEY, **common)
        run_env = clean_env(tmp_path, TOKENMETRICS_API_KEY_FILE=str(key_file),
                            ALERTBOT_HTTP_PORT=str(port), ALERTBOT_POLL_INTERVAL="0.5",
                            ALERTBOT_LOG_FORMAT="json", **common)
        outputs: list[str] = []
        for args in (["subscribe", "--platform", "webhook", "--chat", "hook", "--url",
                      receiver.url, "BTC"],
                     ["subscribe", "--platform", "telegram", "--chat", str(GONE_CHAT), "BTC"],
                     ["subscriptions"], ["check"]):
            code, out, err = await run_alertbot(args, setup_env, tmp_path, timeout=60)
            outputs += [out, err]
            assert code == 0 or args == ["check"], err

        http = Http(session, f"http://127.0.0.1:{port}")
        bot = await Alertbot(["run"], run_env, tmp_path).start()
        try:
            await discord.wait_ready(timeout=60)
            await discord.wait_until(lambda: any(
                "rejected TOKENMETRICS_API_KEY" in t for t in ops_texts(discord)), timeout=60)
            status, body = await http.get("/readyz")
            assert status == 503
            assert "source: FAILED: Token Metrics rejected TOKENMETRICS_API_KEY" in body

            # Signed readings still arrive: a flip fans out to the failing destinations.
            reading = {"symbol": "BTC", "kind": "signal", "value": -1,
                       "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
            assert (await http.push(reading))[0] == 200
            assert (await http.push({**reading, "value": 1,
                                     "timestamp": datetime.now(UTC).isoformat()}))[0] == 200
            assert (await http.push(reading, secret=WRONG_KEY))[0] == 401
            assert (await http.push({"symbol": PUSH_SECRET, "kind": "x"}))[0] == 422
            await discord.wait_until(lambda: any(
                f"telegram:{GONE_CHAT} paused" in t for t in ops_texts(discord)), timeout=60)
            await discord.wait_until(lambda: any(
                "webhook:hook were dead-lettered" in t for t in ops_texts(discord)), timeout=60)
            await http.get("/metrics")
            await http.get("/healthz")

            # An upstream error that echoes secrets: the process must redact them itself.
            tm.fail_next("/trading-signals", status=500,
                         message=f"upstream echoed {TELEGRAM_TOKEN} via {receiver.url}")
            key_file.write_text(GOOD_KEY + "\n")
            assert bot.proc is not None
            bot.proc.send_signal(signal.SIGHUP)

            async def ready() -> bool:
                return (await http.get("/readyz"))[0] == 200

            await eventually(ready, what="/readyz 200 after the key reload", timeout=60)
            await discord.wait_until(lambda: any(
                "accepts TOKENMETRICS_API_KEY again" in t for t in ops_texts(discord)),
                timeout=60)
            # An online backup while the bot writes.
            backup = tmp_path / "backup.db"
            code, out, err = await run_alertbot(["db", "backup", str(backup)], setup_env,
                                                tmp_path, timeout=60)
            outputs += [out, err]
            assert code == 0 and f"backup written to {backup}" in out, err
            status, metrics = await http.get("/metrics")
            assert status == 200
            assert 'alertbot_tokenmetrics_api_calls_total{endpoint="/trading-signals",' \
                   'status="200"}' in metrics
        finally:
            code = await bot.stop()
        for args in (["db", "stats"], ["subscriptions"]):
            _, out, err = await run_alertbot(args, setup_env, tmp_path, timeout=60)
            outputs += [out, err]

    assert code == 0, bot.stderr
    with sqlite3.connect(tmp_path / "backup.db") as copy:
        assert copy.execute("SELECT COUNT(*) FROM subscriptions").fetchone() == (2,)
    records = [json.loads(line) for line in bot.stderr.splitlines() if line.startswith("{")]
    assert records and len(records) == len(bot.stderr.splitlines()), "one JSON object a line"
    messages = [r["message"] for r in records]
    assert any("SIGHUP: now using the new TOKENMETRICS_API_KEY" in m for m in messages)
    assert any(r.get("correlation_id", "").startswith("poll-") for r in records)
    assert any(r.get("correlation_id", "").startswith("send-") for r in records)
    assert any(r.get("correlation_id", "").startswith("push-") for r in records)
    assert any("upstream echoed ***" in m for m in messages), "the echo was logged, redacted"

    scanned = {"stdout": "\n".join(bot.stdout), "stderr": bot.stderr,
               "http": "\n".join(http.bodies), "cli": "\n".join(outputs),
               "ops alerts": "\n".join(ops_texts(discord))}
    for where, text in scanned.items():
        for secret in secrets:
            assert secret not in text, f"a configured secret leaked into {where}"
    assert len(http.bodies) >= 8 and len(ops_texts(discord)) >= 4
