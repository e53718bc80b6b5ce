"""`alertbot run` as a subprocess against the fake Discord: slash commands, alerts, crashes."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alertbot.domain.models import ALL_TOKENS, Destination, Kind, Policy
from alertbot.store.sqlite import SqliteStore
from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.discord_api import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
)
from tests.support import eventually

KILLS = 20
SPEED = "54000"
"""Fifteen demo hours per second: a steady burst across four channels paced at 1/s each."""
EPHEMERAL = 64
STARTUP = 30.0
"""Generous: two cores shared with other test runs."""
CRASH_CHANNELS = (444444444444444444, 444444444444444445, 444444444444444446,
                  444444444444444447)
BTC_ID, ETH_ID = 3375, 3306


def discord_env(tmp_path: Path, fake: FakeDiscord, **extra: str) -> dict[str, str]:
    return clean_env(tmp_path, DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_base,
                     DISCORD_GATEWAY_URL=fake.gateway_url,
                     DISCORD_GUILD_IDS=str(DEFAULT_GUILD_ID), ALERTBOT_DEMO="1",
                     ALERTBOT_POLL_INTERVAL="0.2", **extra)


def query(tmp_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "alertbot.db", timeout=10) as db:
        return list(db.execute(sql, params).fetchall())


async def test_discord_run_subscribe_alert_refusal_and_grade_end_to_end(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    # A million demo seconds per second: BTC's daily signal flips about once a second.
    env = discord_env(tmp_path, fake_discord, ALERTBOT_DEMO_SPEED="1000000")
    bot = await Alertbot(["run"], env, tmp_path).start()
    try:
        await fake_discord.wait_ready(timeout=STARTUP)

        refused = await fake_discord.inject_interaction(
            "subscribe", [{"name": "symbol", "type": 3, "value": "BTC"}], permissions="0")
        refusal = await fake_discord.wait_for_callback(refused)
        assert refusal.data is not None and refusal.data["flags"] == EPHEMERAL
        assert "only members with Manage Server or Manage Channels" in refusal.data["content"]
        assert query(tmp_path, "SELECT COUNT(*) FROM subscriptions") == [(0,)]
        assert query(tmp_path, "SELECT COUNT(*) FROM destinations") == [(0,)]

        subscribe = await fake_discord.inject_interaction(
            "subscribe", [{"name": "symbol", "type": 3, "value": "BTC"},
                          {"name": "kinds", "type": 3, "value": "signal"}], permissions="32")
        confirmation = await fake_discord.wait_for_callback(subscribe)
        assert confirmation.data is not None
        assert "Subscribed this chat to BTC (Bitcoin): daily signal" in \
            confirmation.data["content"]
        assert not (confirmation.data.get("flags") or 0) & EPHEMERAL

        grade = await fake_discord.inject_interaction(
            "grade", [{"name": "symbol", "type": 3, "value": "BTC"}], permissions="0")
        answered = await fake_discord.wait_for_callback(grade)
        # 200: the fake refuses callbacks after Discord's 3 s deadline with 10062.
        assert answered.status == 200 and answered.type in (4, 5)

        [first, *_] = await fake_discord.wait_for_messages(1, timeout=STARTUP,
                                                   channel_id=DEFAULT_CHANNEL_ID)
    finally:
        code = await bot.stop(signal.SIGTERM)
    assert code == 0, bot.stderr
    assert "Traceback" not in bot.stderr and fake_discord.token not in bot.stderr

    messages = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert first.embeds[0]["title"].startswith("BTC daily signal turned ")
    for message in messages:
        [embed] = message.embeds
        assert embed["title"].startswith("BTC daily signal turned ")
        assert message.allowed_mentions == {"parse": []}
    sent = query(tmp_path, "SELECT msg_key FROM outbox WHERE state = 'sent' AND chat_id = ?",
                 str(DEFAULT_CHANNEL_ID))
    # Exactly one embed per detected flip: one message per sent outbox row, by nonce.
    assert sorted(m.nonce for m in messages) == sorted(k for (k,) in sent)
    followups = [f for f in fake_discord.followups if f.interaction_id == grade.id]
    if answered.type == 5:
        assert followups and followups[-1].embeds[0]["title"] == "BTC grades"
    else:
        assert answered.data is not None and answered.data["embeds"][0]["title"] == "BTC grades"


async def _subscribe_crash_channels(tmp_path: Path) -> None:
    """Four channels, each with a modest stream, so the burst fits Discord's 5-per-5s pacing."""
    store = SqliteStore(str(tmp_path / "alertbot.db"))
    await store.open()
    try:
        now = datetime.now(UTC) - timedelta(seconds=1)
        plans = [(ALL_TOKENS, (Kind.SIGNAL,)), (ALL_TOKENS, (Kind.FUNDAMENTAL,)),
                 (BTC_ID, (Kind.HOURLY,)), (ETH_ID, (Kind.TM_GRADE, Kind.HOURLY))]
        for channel, (token, kinds) in zip(CRASH_CHANNELS, plans, strict=True):
            destination = Destination("discord", str(channel))
            await store.subscribe(destination, token, kinds, now, actor="test")
            await store.set_policy(destination, Policy(max_alerts=1000,
                                                       window=timedelta(minutes=1)), now)
    finally:
        await store.close()


async def test_discord_crash_sigkill_redelivers_everything_with_zero_duplicates(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261128)
    guild = FakeGuild(id=DEFAULT_GUILD_ID, channels=[FakeChannel(id=c, name=f"alerts-{i}")
                                                     for i, c in enumerate(CRASH_CHANNELS)])
    async with FakeDiscord(guilds=[guild]) as fake:
        # A response that lags behind the write widens the window in which a kill leaves a
        # message posted but unconfirmed: exactly the case the nonce exists for.
        fake.set_response_delay("create_message", 0.05)
        env = discord_env(tmp_path, fake, ALERTBOT_DEMO_SPEED=SPEED)
        await _subscribe_crash_channels(tmp_path)

        for kill in range(KILLS):
            bot = await Alertbot(["run"], env, tmp_path).start()
            if kill == 0:
                # A loaded machine may start slower than the random moments below: the first
                # run delivers something before it dies, so the kills have a burst to cut.
                await eventually(lambda: bool(fake.messages), timeout=60,
                                 what="a first delivery")
            # Random moments: while starting up, recovering, polling or mid-burst.
            await asyncio.sleep(rng.uniform(0.5, 2.2))
            assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        assert fake.messages, "nothing was delivered before the kills"

        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert code == 0, err
        assert fake.token not in err

    states = dict(query(tmp_path, "SELECT state, COUNT(*) FROM outbox GROUP BY state"))
    assert set(states) == {"sent"}, states
    keys = {k for (k,) in query(tmp_path, "SELECT DISTINCT msg_key FROM outbox")}
    nonces = [m.nonce for m in fake.messages]
    assert len(nonces) == len(set(nonces)), "a message was posted twice"
    assert set(nonces) == keys, "a committed alert was never delivered"
    for message in fake.messages:
        assert message.enforce_nonce is True and len(message.embeds) == 1


async def test_discord_check_prints_least_privilege_invite_url(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    code, out, err = await run_alertbot(["check"], discord_env(tmp_path, fake_discord), tmp_path)
    assert code == 0, out + err
    [line] = [x for x in out.splitlines() if x.startswith("discord: ok")]
    assert f"client_id={fake_discord.application_id}" in line
    assert "permissions=19456" in line and "scope=bot+applications.commands" in line
    assert fake_discord.token not in out + err


async def test_discord_webhook_mode_without_bot_token_delivers_and_never_shows_url(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    hook = fake_discord.add_webhook()
    env = clean_env(tmp_path, DISCORD_API_URL=fake_discord.api_base, ALERTBOT_DEMO="1",
                    ALERTBOT_DEMO_SPEED="1000000", ALERTBOT_POLL_INTERVAL="1")
    outputs = []
    for args in (["subscribe", "--platform", "discord", "--url", hook.url, "all"],
                 ["subscriptions"], ["check"], ["run", "--once"], ["run", "--once"]):
        code, out, err = await run_alertbot(args, env, tmp_path)
        assert code == 0, err
        outputs.append(out + err)
    assert "(Discord webhook) subscribed to all tokens" in outputs[0]
    assert "discord: ok (webhook mode" in outputs[2]
    for text in outputs:
        assert hook.token not in text and str(hook.id) not in text
    assert fake_discord.webhook_executions, "the webhook received nothing"
    for execution in fake_discord.webhook_executions:
        assert execution.wait and execution.allowed_mentions == {"parse": []}
        assert len(execution.embeds) == 1
    assert fake_discord.requests_of("users_me") == [] and fake_discord.identifies == []
