"""/chart on Discord: the real discord.py bot defers, then attaches the chart to an embed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import Token
from alertbot.platforms.discord.bot import DiscordBot
from tests.fakes.discord_api import DEFAULT_GUILD_ID, FakeDiscord
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.integration.platforms.discord.test_commands import Harness, symbol

PNG = b"\x89PNG\r\n\x1a\n"
EPHEMERAL = 64


def span(value: str) -> dict[str, Any]:
    return {"name": "range", "type": 3, "value": value}


@contextlib.asynccontextmanager
async def chart_bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1")
    app = await build(settings)
    await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
    bot = DiscordBot(fake.token, app.store, app.commands, app.clock,
                     guild_ids=(DEFAULT_GUILD_ID,), guild_ready_timeout=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run(stop))
    try:
        await asyncio.wait_for(bot.connected.wait(), 5)
        yield Harness(fake, app, bot)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await bot.close()
        await app.close()


@pytest.fixture
async def harness(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[Harness]:
    async with chart_bot(fake_discord, tmp_path) as h:
        yield h


async def test_chart_is_deferred_then_an_embed_with_the_png_attached(harness: Harness) -> None:
    interaction, callback = await harness.command("chart", [symbol("BTC"), span("30d")])
    [followup] = await harness.fake.wait_for_followups(1)

    assert callback.type == 5 and callback.status == 200  # deferred within the deadline
    assert followup.interaction_id == interaction.id
    [embed] = followup.embeds
    [(name, content)] = harness.fake.uploads
    assert embed["image"]["url"] == f"attachment://{name}"
    assert name == "btc-grades.png"
    assert content.startswith(PNG)
    assert int.from_bytes(content[16:20], "big") == 1000
    assert embed["description"].startswith("BTC grade history, ")
    assert "(30 days)" in embed["description"]
    assert followup.allowed_mentions == {"parse": []}


async def test_chart_drivers_attaches_the_bar_chart(harness: Harness) -> None:
    await harness.command("chart", [symbol("SOL"), span("drivers")])
    [followup] = await harness.fake.wait_for_followups(1)

    assert harness.fake.uploads[0][0] == "sol-drivers.png"
    assert followup.embeds[0]["description"].startswith("SOL fundamental-grade components")


async def test_chart_unknown_symbol_is_a_private_error_without_upload(harness: Harness) -> None:
    await harness.command("chart", [symbol("NOPE")])
    followups = await harness.fake.wait_for_followups(2)

    assert [f.kind for f in followups] == ["delete", "followup"]
    assert followups[1].flags == EPHEMERAL and "Unknown symbol NOPE" in str(followups[1].content)
    assert harness.fake.uploads == []


async def test_chart_cold_cache_slower_than_3_s_still_meets_the_deadline(
        fake_discord: FakeDiscord, tmp_path: Path) -> None:
    async with FakeTokenMetrics(api_key="k") as tm:
        tm.add_token(3375, "BTC", "Bitcoin", "bitcoin")
        today = datetime.now(UTC).date()
        for back in range(31):
            tm.add_tm_grade_history(3375, today - timedelta(days=back), 50.0 + back)
        tm.fail_next("/tm-grade-history", kind="slow", delay=3.5)  # a slow first history page
        settings = load_settings(env_file=None,
                                 ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                                 ALERTBOT_HTTP_PORT=0, TOKENMETRICS_API_KEY="k",
                                 TOKENMETRICS_BASE_URL=tm.base_url)
        app = await build(settings)
        await app.store.upsert_tokens([Token(3375, "BTC", "Bitcoin", "bitcoin")],
                                      app.clock.now())
        bot = DiscordBot(fake_discord.token, app.store, app.commands, app.clock,
                         guild_ids=(DEFAULT_GUILD_ID,), guild_ready_timeout=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(bot.run(stop))
        try:
            await asyncio.wait_for(bot.connected.wait(), 5)
            harness = Harness(fake_discord, app, bot)
            _, callback = await harness.command("chart", [symbol("BTC"), span("30d")])
            [followup] = await fake_discord.wait_for_followups(1, timeout=20)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await bot.close()
            await app.close()

    assert callback.type == 5 and callback.status == 200  # deferred before the 3 s deadline
    assert tm.calls_to("/tm-grade-history")[0].fault == "slow"  # answered after 3.5 s
    assert followup.embeds[0]["image"]["url"] == "attachment://btc-grades.png"
