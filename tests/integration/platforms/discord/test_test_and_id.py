"""/test and /id on Discord through the composition root: real discord.py against the fake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.commands import TEST_ALERT_TITLE
from alertbot.domain.models import Destination
from alertbot.services.commands import AlertTestOutcome
from tests.fakes.discord_api import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    SEND_MESSAGES,
    CallbackRecord,
    FakeChannel,
    FakeDiscord,
)
from tests.support import eventually

pytestmark = pytest.mark.timeout(30)

MANAGE_SERVER = "32"
EPHEMERAL = 64
THREAD_ID = 444444444444444455
MUTED_CHANNEL_ID = 444444444444444466


@contextlib.asynccontextmanager
async def running_app(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[App]:
    settings = load_settings(
        env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
        ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1", DISCORD_BOT_TOKEN=fake.token,
        DISCORD_API_URL=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url,
        DISCORD_GUILD_IDS=str(DEFAULT_GUILD_ID))
    app = await build(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(app.jobs["discord"](stop))
    try:
        await eventually(lambda: app.health["discord"]() is None, what="the gateway",
                         timeout=10)
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.close()


@pytest.fixture
async def app(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[App]:
    fake_discord.add_channel(DEFAULT_GUILD_ID, FakeChannel(
        id=THREAD_ID, name="btc-talk", type=11, parent_id=DEFAULT_CHANNEL_ID))
    # Send Messages denied to the bot in this channel before it connects, so its gateway
    # cache knows which permission is missing.
    fake_discord.add_channel(DEFAULT_GUILD_ID, FakeChannel(
        id=MUTED_CHANNEL_ID, name="read-only", permission_overwrites=[
            {"id": str(fake_discord.bot_user_id), "type": 1, "allow": "0",
             "deny": str(SEND_MESSAGES)}]))
    async with running_app(fake_discord, tmp_path) as running:
        yield running


async def command(fake: FakeDiscord, name: str, **kwargs: object) -> str:
    interaction = await fake.inject_interaction(name, [], **kwargs)  # type: ignore[arg-type]
    callback: CallbackRecord = await fake.wait_for_callback(interaction)
    if callback.type == 5:  # deferred: the answer is a follow-up
        followups = await fake.wait_for_followups(1)
        return str(followups[-1].content)
    assert callback.data is not None
    return str(callback.data["content"])


async def test_discord_id_in_thread_replies_channel_thread_and_user_ids(
        app: App, fake_discord: FakeDiscord) -> None:
    content = await command(fake_discord, "id", channel_id=THREAD_ID, user_id=123456789012345678)
    assert content.splitlines() == [
        "**Ids**",
        f"Channel id: {DEFAULT_CHANNEL_ID}",
        f"Thread id: {THREAD_ID}",
        "Your user id: 123456789012345678",
        f"Use them in the CLI: alertbot subscribe --platform discord --chat {DEFAULT_CHANNEL_ID} "
        f"--thread {THREAD_ID} BTC (or alertbot test --platform discord --chat "
        f"{DEFAULT_CHANNEL_ID} --thread {THREAD_ID}); for the bot's own alerts: "
        # Markdown-escaped on the wire; Discord shows the underscores.
        f"ALERTBOT\\_OPS\\_DESTINATION=discord:{DEFAULT_CHANNEL_ID}",
    ]


async def test_discord_moderator_test_posts_marked_embed_and_confirms(
        app: App, fake_discord: FakeDiscord) -> None:
    content = await command(fake_discord, "test", permissions=MANAGE_SERVER)
    assert content == "Test alert sent: delivery to this chat works."
    [message] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert message.embeds[0]["title"] == TEST_ALERT_TITLE
    assert await app.store.destinations() == []


async def test_discord_member_test_is_refused_and_posts_nothing(
        app: App, fake_discord: FakeDiscord) -> None:
    content = await command(fake_discord, "test", permissions="0")
    assert content == ("Sorry, only members with Manage Server or Manage Channels can send a "
                       "test alert.")
    assert fake_discord.messages_in(DEFAULT_CHANNEL_ID) == []


async def test_discord_test_without_send_permission_names_it(
        app: App, fake_discord: FakeDiscord) -> None:
    result = await app.commands.send_test(Destination("discord", str(MUTED_CHANNEL_ID)))
    assert result.outcome is AlertTestOutcome.FAILED
    first, fix = result.lines
    assert first.startswith(f"Test alert to discord:{MUTED_CHANNEL_ID} failed: the bot is "
                            f"missing Send Messages")
    assert "(Discord 50013 Missing Permissions)" in first
    assert fix == ("Fix: in the channel's settings (Permissions), grant the bot's role the "
                   "permissions named above.")
    assert await app.store.destinations() == []


async def test_discord_test_to_unknown_thread_says_the_thread_id_is_wrong(
        app: App, fake_discord: FakeDiscord) -> None:
    result = await app.commands.send_test(
        Destination("discord", str(DEFAULT_CHANNEL_ID), "444444444444444499"))
    assert result.outcome is AlertTestOutcome.FAILED
    assert result.lines[-1] == ("Fix: thread 444444444444444499 does not exist (or was "
                                "deleted); send /id inside the thread to get its id.")


async def test_discord_test_where_bot_cannot_see_says_invite_it(
        app: App, fake_discord: FakeDiscord) -> None:
    fake_discord.set_channel_error(DEFAULT_CHANNEL_ID, 403, 50001)
    result = await app.commands.send_test(Destination("discord", str(DEFAULT_CHANNEL_ID)))
    assert result.outcome is AlertTestOutcome.FAILED
    assert "50001 Missing Access" in result.lines[0]
    assert result.lines[-1].startswith("Fix: invite the bot to the server")
