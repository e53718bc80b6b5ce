"""Buttons on Discord alerts: the real discord.py bot and notifier against the fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.address import address_id
from alertbot.domain.buttons import Action, payload
from alertbot.domain.commands import Reply, ok
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.domain.render import render
from alertbot.platforms.discord.bot import DiscordBot
from alertbot.platforms.discord.notifier import DiscordNotifier
from alertbot.ports.notifier import Target
from alertbot.services.buttons import FORGED, STALE, ButtonCore, ChartAnswer
from alertbot.services.commands import Caller, CommandCore
from alertbot.services.dispatcher import Dispatcher, message_key
from tests.fakes.discord_api import (
    DEFAULT_CHANNEL_ID,
    ORDINARY_MEMBER_PERMISSIONS,
    CallbackRecord,
    FakeDiscord,
    RecordedMessage,
)
from tests.support import ManualClock

pytestmark = pytest.mark.timeout(60)

MANAGE_SERVER = "32"
EPHEMERAL = 64
CHANNEL = Destination("discord", str(DEFAULT_CHANNEL_ID))
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
UNMUTED = [["Chart", "Why", "Mute BTC 24h"]]


@dataclass
class World:
    fake: FakeDiscord
    app: App
    clock: ManualClock
    notifier: DiscordNotifier
    buttons: ButtonCore
    day: int = 0

    async def alert(self, token: Token = BTC) -> RecordedMessage:
        before = len(self.fake.messages_in(DEFAULT_CHANNEL_ID))
        await self.queue(token)
        await self.dispatch()
        sent = self.fake.messages_in(DEFAULT_CHANNEL_ID)
        assert len(sent) == before + 1, "the alert was delivered"
        return sent[-1]

    async def dispatch(self) -> None:
        await Dispatcher(self.app.store, {"discord": self.notifier},
                         self.clock).run_until_idle(limit=10)

    async def queue(self, token: Token = BTC) -> None:
        self.day += 1
        at = self.clock.now() - timedelta(days=30 - self.day)
        to = 1.0 if self.day % 2 else -1.0
        change = Change(make_change_id(token.token_id, Kind.SIGNAL, -to, to, at), token,
                        Kind.SIGNAL, -to, to, Direction.UP if to > 0 else Direction.DOWN, at,
                        self.clock.now(), "bearish" if to > 0 else "bullish",
                        "bullish" if to > 0 else "bearish", "flip")
        await self.app.store.record_poll([], [change], self.clock.now())

    async def press(self, message: RecordedMessage, label: str | None = None, *,
                    moderator: bool = True, custom_id: str | None = None) -> CallbackRecord:
        interaction = await self.fake.press_button(
            message.id, label=label, custom_id=custom_id,
            permissions=MANAGE_SERVER if moderator else ORDINARY_MEMBER_PERMISSIONS)
        return await self.fake.wait_for_callback(interaction)


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, tmp_path: Path,
                  chart: ChartAnswer | None = None) -> AsyncIterator[World]:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1")
    app = await build(settings)
    clock = ManualClock()
    await app.store.upsert_tokens(await app.source.universe(), clock.now())
    await app.store.subscribe(CHANNEL, 0, ALL_KINDS, clock.now() - timedelta(hours=1))
    core = CommandCore(app.store, app.lookup, clock, band_label=app.rules.band_label)
    buttons = ButtonCore(app.store, core, clock, chart=chart or core.grade)
    bot = DiscordBot(fake.token, app.store, core, clock, guild_ready_timeout=0.1,
                     buttons=buttons)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run(stop))
    async with aiohttp.ClientSession() as session:
        notifier = DiscordNotifier(session, client=bot.client, login=bot.ensure_login,
                                   buttons=buttons)
        try:
            await asyncio.wait_for(bot.connected.wait(), 5)
            yield World(fake, app, clock, notifier, buttons)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await bot.close()
            await app.close()


@pytest.fixture
async def world(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[World]:
    async with running(fake_discord, tmp_path) as w:
        yield w


async def test_discord_alert_carries_chart_why_and_mute_buttons(world: World) -> None:
    message = await world.alert()
    assert world.fake.button_labels(message.id) == UNMUTED
    custom_ids = [world.fake.custom_id_of(message.id, label) for label in UNMUTED[0]]
    assert all(len(c) <= 100 for c in custom_ids)


async def test_discord_mute_by_moderator_mutes_token_and_updates_message(world: World) -> None:
    message = await world.alert()
    callback = await world.press(message, "Mute BTC 24h")
    until = world.clock.now() + timedelta(hours=24)
    assert callback.type == 7 and callback.status == 200  # within the 3-second deadline
    assert world.fake.button_labels(message.id) == [
        ["Chart", "Why", f"Muted BTC until {until:%H:%M} UTC · Undo"]]
    [notice] = await world.fake.wait_for_followups(1)
    assert notice.flags == EPHEMERAL
    assert notice.content == (f"Muted BTC here until {until:%m-%d %H:%M} UTC; other tokens "
                              f"still arrive.")
    [mute] = await world.app.store.token_mutes(CHANNEL, world.clock.now())
    assert (mute.token.symbol, mute.until) == ("BTC", until)


async def test_discord_mute_by_member_is_refused_ephemerally_and_changes_nothing(
        world: World) -> None:
    message = await world.alert()
    callback = await world.press(message, "Mute BTC 24h", moderator=False)
    assert callback.type == 4 and callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert callback.data["content"] == ("Sorry, only members with Manage Server or Manage "
                                        "Channels can mute alerts here. Nothing was changed.")
    assert await world.app.store.token_mutes(CHANNEL, world.clock.now()) == []
    assert world.fake.message_edits == []
    assert world.fake.button_labels(message.id) == UNMUTED


async def test_discord_mute_pressed_twice_mutes_once(world: World) -> None:
    message = await world.alert()
    mute_id = world.fake.custom_id_of(message.id, "Mute BTC 24h")
    await world.press(message, custom_id=mute_id)
    world.clock.advance(timedelta(minutes=5))
    await world.press(message, custom_id=mute_id)
    notices = await world.fake.wait_for_followups(2)
    assert notices[1].content is not None and notices[1].content.startswith(
        "BTC was already muted here until")
    [mute] = await world.app.store.token_mutes(CHANNEL, world.clock.now())
    assert mute.until == world.clock.now() - timedelta(minutes=5) + timedelta(hours=24)
    audit = [a.action for a in await world.app.store.recent_audit(50)]
    assert audit.count("mute_token") == 1


async def test_discord_undo_by_moderator_unmutes_and_restores_buttons(world: World) -> None:
    message = await world.alert()
    await world.press(message, "Mute BTC 24h")
    [[_, _, muted]] = world.fake.button_labels(message.id)
    refused = await world.press(message, muted, moderator=False)
    assert refused.type == 4 and refused.data is not None
    assert refused.data["flags"] == EPHEMERAL
    assert len(await world.app.store.token_mutes(CHANNEL, world.clock.now())) == 1
    callback = await world.press(message, muted)
    assert callback.type == 7
    assert world.fake.button_labels(message.id) == UNMUTED
    assert await world.app.store.token_mutes(CHANNEL, world.clock.now()) == []


@pytest.mark.parametrize("moderator", [True, False])
async def test_discord_why_button_answers_ephemerally_with_the_alerts_decision(
        world: World, moderator: bool) -> None:
    message = await world.alert()
    callback = await world.press(message, "Why", moderator=moderator)
    assert callback.type == 4 and callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert "BTC daily signal turned bullish: sent" in callback.data["content"]


@pytest.mark.parametrize("moderator", [True, False])
async def test_discord_chart_button_answers_with_token_lookup(world: World,
                                                             moderator: bool) -> None:
    message = await world.alert()
    callback = await world.press(message, "Chart", moderator=moderator)
    assert callback.data is not None and callback.data["flags"] == EPHEMERAL
    assert any("BTC" in str(e.get("title", "")) for e in callback.data.get("embeds") or [])


@pytest.mark.parametrize("custom_id", ["ab1:m:" + "a" * 24 + ":" + "a" * 16, "mute"])
async def test_discord_forged_custom_id_is_refused_and_changes_nothing(world: World,
                                                                     custom_id: str) -> None:
    message = await world.alert()
    callback = await world.press(message, custom_id=custom_id)
    assert callback.type == 4 and callback.data is not None
    assert (callback.data["content"], callback.data["flags"]) == (FORGED, EPHEMERAL)
    assert await world.app.store.token_mutes(CHANNEL, world.clock.now()) == []
    assert world.fake.message_edits == []


async def test_discord_stale_custom_id_is_refused(world: World) -> None:
    message = await world.alert()
    stale = payload(await world.buttons.secret(), CHANNEL, Action.MUTE, "a" + "q" * 23)
    callback = await world.press(message, custom_id=stale)
    assert callback.data is not None and callback.data["content"] == STALE
    assert await world.app.store.token_mutes(CHANNEL, world.clock.now()) == []


async def test_discord_muted_token_alert_is_suppressed_with_reason(world: World) -> None:
    message = await world.alert()
    await world.press(message, "Mute BTC 24h")
    before = len(world.fake.messages_in(DEFAULT_CHANNEL_ID))
    await world.queue(BTC)
    await world.dispatch()
    assert len(world.fake.messages_in(DEFAULT_CHANNEL_ID)) == before
    [decision] = await world.app.store.recent_decisions(CHANNEL, 1)
    assert decision.reason == "token_muted"


async def test_discord_slow_chart_is_deferred_within_deadline_then_answered_privately(
        fake_discord: FakeDiscord, tmp_path: Path) -> None:
    async def slow_chart(caller: Caller, symbol: str) -> Reply:
        await asyncio.sleep(1.5)  # a cold chart: longer than the bot waits before deferring
        return ok(f"chart of token {symbol}")

    async with running(fake_discord, tmp_path, chart=slow_chart) as world:
        message = await world.alert()
        callback = await world.press(message, "Chart", moderator=False)
        assert callback.type == 5 and callback.status == 200  # acknowledged in time
        assert callback.data is not None and callback.data["flags"] == EPHEMERAL
        [answer] = await fake_discord.wait_for_followups(1)
        assert answer.content == f"chart of token {BTC.token_id}"


async def test_discord_webhook_destination_alert_has_no_buttons(world: World) -> None:
    hook = world.fake.add_webhook()
    destination = Destination("discord", address_id(hook.url))
    change = Change(make_change_id(BTC.token_id, Kind.SIGNAL, -1, 1, world.clock.now()), BTC,
                    Kind.SIGNAL, -1.0, 1.0, Direction.UP, world.clock.now(), world.clock.now(),
                    "bearish", "bullish", "flip")
    await world.notifier.send(Target(destination, hook.url), render([change]),
                              key=message_key(change.change_id, destination), silent=False)
    [execution] = await world.fake.wait_for_webhook_executions(1)
    assert not execution.payload.get("components")  # a webhook cannot receive presses
    assert execution.embeds  # the alert itself went out
