"""The Discord bot's lifecycle against connection faults: login and command sync retry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.platforms.discord.bot import DiscordBot
from alertbot.services.commands import CommandCore
from tests.fakes.discord_api import DEFAULT_GUILD_ID, FakeDiscord
from tests.support import eventually


@contextlib.asynccontextmanager
async def bot_and_task(fake: FakeDiscord,
                       tmp_path: Path) -> AsyncIterator[tuple[App, DiscordBot,
                                                              asyncio.Task[None]]]:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1")
    app = await build(settings)
    core = CommandCore(app.store, app.lookup, app.clock, band_label=app.rules.band_label)
    bot = DiscordBot(fake.token, app.store, core, app.clock, guild_ids=(DEFAULT_GUILD_ID,),
                     guild_ready_timeout=0.1, retry_initial=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run(stop))
    try:
        yield app, bot, task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        await bot.close()
        await app.close()


async def test_bot_login_server_disconnect_retries_and_connects(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.drop_next("users_me", times=2)
    async with bot_and_task(fake_discord, tmp_path) as (_, bot, task):
        await eventually(lambda: bot.connected.is_set() or task.done(),
                         what="the gateway connected after two dropped logins")
        assert not task.done(), task.exception()
        assert bot.health() is None
    assert len(fake_discord.requests_of("users_me")) == 3


async def test_bot_login_server_disconnect_reports_why_until_it_connects(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.drop_next("users_me", times=1000)
    async with bot_and_task(fake_discord, tmp_path) as (_, bot, task):
        await eventually(lambda: len(fake_discord.requests_of("users_me")) >= 2,
                         what="a second login attempt")
        assert not task.done()
        assert bot.health() == "Discord: cannot reach Discord (ServerDisconnectedError)"


async def test_bot_command_sync_server_disconnect_retries_and_syncs(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.drop_next("commands", times=2)
    async with bot_and_task(fake_discord, tmp_path) as (_, bot, task):
        await eventually(lambda: bool(fake_discord.command_puts) or task.done(),
                         what="the commands synced after two dropped requests")
        assert not task.done(), task.exception()
        await eventually(bot.connected.is_set, what="the gateway connected")
    assert [p.guild_id for p in fake_discord.command_puts] == [DEFAULT_GUILD_ID]
