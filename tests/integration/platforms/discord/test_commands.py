"""Slash commands, command sync and guild leave: the real discord.py bot against the fake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import ALL_KINDS, Destination, Token
from alertbot.platforms.discord.bot import SYNC_META_KEY, DiscordBot
from alertbot.services.commands import CommandCore
from tests.fakes.discord_api import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    ORDINARY_MEMBER_PERMISSIONS,
    CallbackRecord,
    FakeChannel,
    FakeDiscord,
    InjectedInteraction,
)
from tests.support import eventually

MANAGE_SERVER = "32"
MANAGE_CHANNELS = "16"
EPHEMERAL = 64
CHANNEL = Destination("discord", str(DEFAULT_CHANNEL_ID))
THREAD_ID = 444444444444444455


@dataclass
class Harness:
    fake: FakeDiscord
    app: App
    bot: DiscordBot

    async def command(self, name: str, options: Sequence[dict[str, Any]] = (),
                      **kwargs: Any) -> tuple[InjectedInteraction, CallbackRecord]:
        interaction = await self.fake.inject_interaction(name, list(options), **kwargs)
        return interaction, await self.fake.wait_for_callback(interaction)


def symbol(value: str) -> dict[str, Any]:
    return {"name": "symbol", "type": 3, "value": value}


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, tmp_path: Path,
                      guild_ids: Sequence[int] = (DEFAULT_GUILD_ID,)) -> AsyncIterator[Harness]:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1")
    app = await build(settings)
    await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
    core = CommandCore(app.store, app.lookup, app.clock, band_label=app.rules.band_label)
    bot = DiscordBot(fake.token, app.store, core, app.clock, guild_ids=guild_ids,
                     guild_ready_timeout=0.1)
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
    async with running_bot(fake_discord, tmp_path) as h:
        yield h


# --- subscribe and permissions ----------------------------------------------------------------


async def test_subscribe_by_manage_server_member_confirms_and_subscribes(
    harness: Harness,
) -> None:
    _, callback = await harness.command("subscribe", [symbol("BTC")], permissions=MANAGE_SERVER)
    assert callback.type == 4 and callback.status == 200  # a late callback gets 10062
    assert callback.data is not None
    assert "Subscribed this chat to BTC (Bitcoin)" in callback.data["content"]
    assert not (callback.data.get("flags") or 0) & EPHEMERAL
    assert callback.data["allowed_mentions"] == {"parse": []}
    [subscription] = await harness.app.store.subscriptions(CHANNEL)
    assert subscription.symbol == "BTC" and subscription.kinds == ALL_KINDS
    info = await harness.app.store.destination(CHANNEL)
    assert info is not None and info.label == f"guild:{DEFAULT_GUILD_ID}"


async def test_subscribe_by_manage_channels_member_with_kinds_subscribes(
    harness: Harness,
) -> None:
    _, callback = await harness.command(
        "subscribe", [symbol("ETH"), {"name": "kinds", "type": 3, "value": "signal,tm_grade"}],
        permissions=MANAGE_CHANNELS)
    assert callback.data is not None and "Subscribed" in callback.data["content"]
    [subscription] = await harness.app.store.subscriptions(CHANNEL)
    assert [k.value for k in subscription.kinds] == ["signal", "tm_grade"]


@pytest.mark.parametrize("permissions", ["0", ORDINARY_MEMBER_PERMISSIONS])
async def test_subscribe_without_permission_is_refused_ephemerally_and_changes_nothing(
    harness: Harness, permissions: str
) -> None:
    _, callback = await harness.command("subscribe", [symbol("BTC")], permissions=permissions)
    assert callback.type == 4 and callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert "only members with Manage Server or Manage Channels" in callback.data["content"]
    assert await harness.app.store.subscriptions() == []
    assert await harness.app.store.destinations() == []


async def test_mute_without_permission_is_refused_and_policy_unchanged(harness: Harness) -> None:
    _, callback = await harness.command(
        "mute", [{"name": "duration", "type": 3, "value": "2h"}], permissions="0")
    assert callback.data is not None and callback.data["flags"] == EPHEMERAL
    assert await harness.app.store.destinations() == []


async def test_throttle_set_by_moderator_then_shown_to_anyone(harness: Harness) -> None:
    _, set_reply = await harness.command(
        "throttle", [{"name": "max_alerts", "type": 4, "value": 5},
                     {"name": "window", "type": 3, "value": "1h"}], permissions=MANAGE_SERVER)
    _, shown = await harness.command("throttle", permissions="0")
    assert set_reply.data is not None and "At most 5 alerts per 1h" in set_reply.data["content"]
    assert shown.data is not None and "at most 5 alerts per 1h" in shown.data["content"]
    assert not (shown.data.get("flags") or 0) & EPHEMERAL


async def test_subscribe_in_thread_targets_the_thread(harness: Harness) -> None:
    harness.fake.add_channel(DEFAULT_GUILD_ID, FakeChannel(
        id=THREAD_ID, name="btc-talk", type=11, parent_id=DEFAULT_CHANNEL_ID))
    _, callback = await harness.command("subscribe", [symbol("BTC")], channel_id=THREAD_ID,
                                        permissions=MANAGE_SERVER)
    assert callback.data is not None and "Subscribed" in callback.data["content"]
    [subscription] = await harness.app.store.subscriptions()
    assert subscription.destination == Destination("discord", str(DEFAULT_CHANNEL_ID),
                                                   str(THREAD_ID))


async def test_moderator_commands_are_hidden_by_default_member_permissions(
    harness: Harness,
) -> None:
    commands = {c["name"]: c for c in harness.fake.commands(DEFAULT_GUILD_ID)}
    moderator = {"subscribe", "unsubscribe", "quiet", "mute", "unmute", "charts", "digest",
                 "test"}
    assert set(commands) == moderator | {"signal", "grade", "chart", "subscriptions",
                                         "throttle", "why", "id", "help"}
    for name, command in commands.items():
        expected = "32" if name in moderator else None
        assert command["default_member_permissions"] == expected, name


# --- lookups, autocomplete, deadlines ---------------------------------------------------------


async def test_grade_btc_is_deferred_and_answered_within_the_deadline(harness: Harness) -> None:
    interaction, callback = await harness.command("grade", [symbol("BTC")])
    [followup] = await harness.fake.wait_for_followups(1)
    # 200: the fake refuses callbacks after Discord's 3 s deadline with 10062.
    assert callback.type == 5 and callback.status == 200
    assert followup.interaction_id == interaction.id
    assert followup.embeds[0]["title"] == "BTC grades"
    assert "TM grade" in followup.embeds[0]["description"]
    assert followup.allowed_mentions == {"parse": []}


async def test_signal_unknown_symbol_answers_privately(harness: Harness) -> None:
    _, callback = await harness.command("signal", [symbol("NOPE")])
    followups = await harness.fake.wait_for_followups(2)
    assert callback.type == 5
    assert [f.kind for f in followups] == ["delete", "followup"]
    assert followups[1].flags == EPHEMERAL and "Unknown symbol NOPE" in str(followups[1].content)


async def test_symbol_autocomplete_offers_at_most_25_choices(harness: Harness) -> None:
    many = [Token(900_000 + i, f"B{i:02d}", f"Bee token {i}", f"bee-{i}") for i in range(60)]
    await harness.app.store.upsert_tokens(many, harness.app.clock.now())
    _, callback = await harness.command("signal", [symbol("B")], interaction_type=4)
    assert callback.type == 8 and callback.data is not None
    choices = callback.data["choices"]
    assert len(choices) == 25
    assert all(c["name"].upper().startswith("B") for c in choices)


async def test_subscribe_autocomplete_offers_all_and_matching_symbols(harness: Harness) -> None:
    _, callback = await harness.command("subscribe", [symbol("a")], interaction_type=4,
                                        permissions=MANAGE_SERVER)
    assert callback.data is not None
    values = [c["value"] for c in callback.data["choices"]]
    assert values[0] == "all" and len(values) <= 25


# --- command sync and guild leave ------------------------------------------------------------


async def test_command_sync_unchanged_tree_is_skipped_on_restart(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, tmp_path):
        pass
    async with running_bot(fake_discord, tmp_path) as second:
        stored = await second.app.store.get_meta(SYNC_META_KEY)
        assert await second.bot.sync_commands() == "unchanged"
    assert [p.guild_id for p in fake_discord.command_puts] == [DEFAULT_GUILD_ID]
    assert stored is not None and stored.startswith(f"{DEFAULT_GUILD_ID}|")


async def test_command_sync_new_scope_syncs_globally_and_clears_old_guild(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, tmp_path):
        pass
    async with running_bot(fake_discord, tmp_path, guild_ids=()):
        pass
    scopes = [(p.guild_id, len(p.commands)) for p in fake_discord.command_puts]
    assert scopes == [(DEFAULT_GUILD_ID, 16), (None, 16), (DEFAULT_GUILD_ID, 0)]


async def test_guild_delete_pauses_that_guilds_channels(harness: Harness) -> None:
    store = harness.app.store
    await harness.command("subscribe", [symbol("BTC")], permissions=MANAGE_SERVER)
    other = Destination("discord", "999999999999999999")
    await store.subscribe(other, 0, ALL_KINDS, harness.app.clock.now())
    await harness.fake.inject_guild_delete(DEFAULT_GUILD_ID)

    async def paused() -> bool:
        info = await store.destination(CHANNEL)
        return info is not None and bool(info.paused_reason)

    await eventually(paused, what="the channel paused after GUILD_DELETE")
    [subscription] = await store.subscriptions(CHANNEL)
    assert "removed from this Discord server" in subscription.paused_reason
    other_info = await store.destination(other)
    assert other_info is not None and not other_info.paused_reason


async def test_command_flood_gets_one_slow_down_then_silence_others_unaffected(
        harness: Harness) -> None:
    burst = [await harness.fake.inject_interaction("help", [], user_id=4242)
             for _ in range(12)]
    _, other = await harness.command("help", user_id=4343)

    assert other.data is not None and "Token Metrics alert bot" in other.data["content"]
    await eventually(lambda: sum(i.id in harness.fake.callbacks for i in burst) >= 11,
                     what="callbacks for the burst")
    answers = [harness.fake.callbacks[i.id] for i in burst if i.id in harness.fake.callbacks]
    slow = [a for a in answers if a.data and a.data["content"].startswith("Slow down")]
    assert len(answers) == 11 and len(slow) == 1
    assert slow[0].data is not None and slow[0].data["flags"] == EPHEMERAL
