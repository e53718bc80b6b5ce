"""Buttons on Telegram alerts: a real PTB bot and notifier against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from alertbot.domain.buttons import Action, payload
from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.platforms.telegram.commands import TelegramCommands
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.notifier import Notifier
from alertbot.services.buttons import FORGED, STALE, ButtonCore
from alertbot.services.commands import CommandCore
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.sources.replay import ReplaySource, load_demo_data
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.support import ManualClock

pytestmark = pytest.mark.timeout(60)

GROUP = -1001234567890
OTHER_GROUP = -1009876543210
ADMIN, MEMBER = 7, 8
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
HERE = Destination("telegram", str(GROUP))
UNMUTED = [["Chart", "Why"], ["Mute BTC 24h"]]


@dataclass
class World:
    tg: FakeTelegram
    store: SqliteStore
    clock: ManualClock
    notifiers: dict[str, Notifier]
    buttons: ButtonCore
    day: int = 0

    async def alert(self, token: Token = BTC, chat: int = GROUP) -> SentMessage:
        """Detect one signal flip of `token` and deliver it; returns the message sent."""
        before = len(self.tg.sent_to(chat))
        await self.queue(token)
        await self.dispatch()
        sent = self.tg.sent_to(chat)
        assert len(sent) == before + 1, "the alert was delivered"
        return sent[-1]

    async def dispatch(self) -> None:
        # A dispatcher that ran until idle has stopped: each delivery round gets its own.
        await Dispatcher(self.store, self.notifiers, self.clock).run_until_idle(limit=10)

    async def queue(self, token: Token = BTC) -> None:
        self.day += 1
        at = self.clock.now() - timedelta(days=30 - self.day)
        to = 1.0 if self.day % 2 else -1.0
        change = Change(make_change_id(token.token_id, Kind.SIGNAL, -to, to, at), token,
                        Kind.SIGNAL, -to, to, Direction.UP if to > 0 else Direction.DOWN, at,
                        self.clock.now(), "bearish" if to > 0 else "bullish",
                        "bullish" if to > 0 else "bearish", "flip")
        await self.store.record_poll([], [change], self.clock.now())

    async def press(self, message: SentMessage, label: str | None = None, *,
                    user: int = ADMIN, data: str | None = None) -> tuple[str | None, bool]:
        """Press a button; returns the answer (text, show_alert) once the bot gave it."""
        query = self.tg.press_button(message.chat_id, message.message_id, label=label,
                                     data=data, user_id=user)
        answer = await self.tg.wait_for_answer(query, timeout=10)
        return answer.text, answer.show_alert

    async def audit_actions(self) -> list[str]:
        return [a.action for a in await self.store.recent_audit(50)]


@pytest.fixture
async def world(store: SqliteStore) -> AsyncIterator[World]:
    async with FakeTelegram(enforce_limits=False) as tg:
        clock = ManualClock()
        source = ReplaySource(load_demo_data(), started_wall=clock.now())
        lookup = Lookup(store, source, clock, fresh_for=timedelta(minutes=5))
        core = CommandCore(store, lookup, clock, band_label=Rules().band_label)
        buttons = ButtonCore(store, core, clock, chart=core.grade)
        notifier = TelegramNotifier.connect(tg.token, tg.root, buttons=buttons)
        commands = TelegramCommands(core, store, clock, token=tg.token, api_root=tg.root,
                                    poll_timeout=1, buttons=buttons)
        tg.set_chat_member(GROUP, ADMIN, "administrator")
        tg.set_chat_member(GROUP, MEMBER, "member")
        await store.upsert_tokens([BTC, ETH], clock.now())
        for chat in (GROUP, OTHER_GROUP):
            await store.subscribe(Destination("telegram", str(chat)), 0, ALL_KINDS,
                                  clock.now() - timedelta(hours=1))
        await commands.start()
        try:
            yield World(tg, store, clock, {"telegram": notifier}, buttons)
        finally:
            await commands.stop()
            await notifier.close()


async def test_telegram_alert_carries_chart_why_and_mute_buttons(world: World) -> None:
    message = await world.alert()
    assert world.tg.keyboard_labels(GROUP, message.message_id) == UNMUTED
    rows = message.reply_markup["inline_keyboard"] if message.reply_markup else []
    assert all(len(b["callback_data"].encode()) <= 64 for row in rows for b in row)


async def test_telegram_mute_by_admin_mutes_token_and_changes_buttons(world: World) -> None:
    message = await world.alert()
    text, alert = await world.press(message, "Mute BTC 24h", user=ADMIN)
    until = world.clock.now() + timedelta(hours=24)
    assert text == f"Muted BTC here until {until:%m-%d %H:%M} UTC; other tokens still arrive."
    assert not alert
    [mute] = await world.store.token_mutes(HERE, world.clock.now())
    assert (mute.token.symbol, mute.until) == ("BTC", until)
    assert mute.actor.startswith(f"telegram:{ADMIN} ")
    await world.tg.wait_until(lambda: len(world.tg.markup_edits) == 1)
    assert world.tg.keyboard_labels(GROUP, message.message_id) == [
        ["Chart", "Why"], [f"Muted BTC until {until:%H:%M} UTC · Undo"]]


async def test_telegram_mute_pressed_twice_mutes_once(world: World) -> None:
    message = await world.alert()
    first, _ = await world.press(message, "Mute BTC 24h")
    world.clock.advance(timedelta(minutes=10))
    again, alert = await world.press(message, data=payload(
        await world.buttons.secret(), HERE, Action.MUTE,
        (await _key_of(world, message))))
    until = world.clock.now() - timedelta(minutes=10) + timedelta(hours=24)
    assert first is not None and first.startswith("Muted BTC")
    assert again == f"BTC was already muted here until {until:%m-%d %H:%M} UTC."
    assert not alert
    [mute] = await world.store.token_mutes(HERE, world.clock.now())
    assert mute.until == until
    assert (await world.audit_actions()).count("mute_token") == 1


async def test_telegram_mute_by_member_is_refused_only_to_them_and_changes_nothing(
        world: World) -> None:
    message = await world.alert()
    sent_before = len(world.tg.sent_to(GROUP))
    text, alert = await world.press(message, "Mute BTC 24h", user=MEMBER)
    assert text == ("Sorry, only chat admins (anyone in a private chat) can mute alerts here. "
                    "Nothing was changed.")
    assert alert  # a modal only the presser sees
    assert await world.store.token_mutes(HERE, world.clock.now()) == []
    assert "mute_token" not in await world.audit_actions()
    assert world.tg.markup_edits == []
    assert len(world.tg.sent_to(GROUP)) == sent_before  # nothing posted in the chat


async def test_telegram_undo_by_admin_unmutes_and_restores_buttons(world: World) -> None:
    message = await world.alert()
    await world.press(message, "Mute BTC 24h")
    await world.tg.wait_until(lambda: len(world.tg.markup_edits) == 1)
    [[_, _], [muted]] = world.tg.keyboard_labels(GROUP, message.message_id)
    text, _ = await world.press(message, muted)
    assert text == "Unmuted BTC: its alerts are posted here again."
    assert await world.store.token_mutes(HERE, world.clock.now()) == []
    await world.tg.wait_until(lambda: len(world.tg.markup_edits) == 2)
    assert world.tg.keyboard_labels(GROUP, message.message_id) == UNMUTED


async def test_telegram_undo_by_member_is_refused_and_mute_stays(world: World) -> None:
    message = await world.alert()
    await world.press(message, "Mute BTC 24h")
    await world.tg.wait_until(lambda: len(world.tg.markup_edits) == 1)
    [[_, _], [muted]] = world.tg.keyboard_labels(GROUP, message.message_id)
    text, alert = await world.press(message, muted, user=MEMBER)
    assert text is not None and text.startswith("Sorry, only chat admins") and alert
    assert len(await world.store.token_mutes(HERE, world.clock.now())) == 1
    assert len(world.tg.markup_edits) == 1


async def test_telegram_muted_token_alert_is_suppressed_and_why_says_so(world: World) -> None:
    message = await world.alert()
    await world.press(message, "Mute BTC 24h")
    before = len(world.tg.sent_to(GROUP))
    await world.queue(BTC)
    await world.dispatch()
    assert len(world.tg.sent_to(GROUP)) == before  # BTC muted here
    other = await world.alert(ETH)  # other tokens still arrive
    assert world.tg.keyboard_labels(GROUP, other.message_id) == [["Chart", "Why"],
                                                                 ["Mute ETH 24h"]]
    world.tg.inject_message(GROUP, "/why", user_id=MEMBER)
    [why] = (await world.tg.wait_for_messages(len(world.tg.sent_to(GROUP)) + 1,
                                              chat_id=GROUP))[-1:]
    assert "BTC daily signal turned" in why.visible_text
    assert "this token was muted here (until" in why.visible_text
    assert "BTC alerts here are muted until" in why.visible_text
    # The mute is for this chat only: the other group got both BTC alerts and the ETH one.
    assert ["BTC" in m.visible_text for m in world.tg.sent_to(OTHER_GROUP)] == [True, True,
                                                                                 False]


@pytest.mark.parametrize("user", [ADMIN, MEMBER])
async def test_telegram_why_button_replies_in_chat_with_the_alerts_decision(
        world: World, user: int) -> None:
    message = await world.alert()
    before = len(world.tg.sent_to(GROUP))
    text, alert = await world.press(message, "Why", user=user)
    assert (text, alert) == (None, False)
    [reply] = (await world.tg.wait_for_messages(before + 1, chat_id=GROUP))[before:]
    assert reply.visible_text.startswith("Why: BTC")
    assert "BTC daily signal turned bullish: sent" in reply.visible_text
    assert reply.reply_to_message_id == message.message_id


@pytest.mark.parametrize("user", [ADMIN, MEMBER])
async def test_telegram_chart_button_answers_with_token_lookup(world: World, user: int) -> None:
    message = await world.alert()
    before = len(world.tg.sent_to(GROUP))
    text, _ = await world.press(message, "Chart", user=user)
    assert text is None
    [reply] = (await world.tg.wait_for_messages(before + 1, chat_id=GROUP))[before:]
    assert "BTC" in reply.visible_text and "TM grade" in reply.visible_text


@pytest.mark.parametrize("data", [
    "ab1:m:" + "a" * 24 + ":" + "a" * 16,  # well formed, not signed by this bot
    "mute BTC",
    "ab1:m:" + "A" * 24,
])
async def test_telegram_forged_payload_is_refused_and_changes_nothing(world: World,
                                                                      data: str) -> None:
    message = await world.alert()
    before = len(world.tg.sent_to(GROUP))
    text, alert = await world.press(message, data=data, user=ADMIN)
    assert (text, alert) == (FORGED, True)
    assert await world.store.token_mutes(HERE, world.clock.now()) == []
    assert world.tg.markup_edits == [] and len(world.tg.sent_to(GROUP)) == before


async def test_telegram_payload_from_another_chat_is_refused(world: World) -> None:
    message = await world.alert()
    elsewhere = world.tg.sent_to(OTHER_GROUP)[-1]
    rows = elsewhere.reply_markup["inline_keyboard"] if elsewhere.reply_markup else []
    mute_there = rows[1][0]["callback_data"]
    text, alert = await world.press(message, data=mute_there, user=ADMIN)
    assert (text, alert) == (FORGED, True)
    assert await world.store.token_mutes(HERE, world.clock.now()) == []


async def test_telegram_stale_payload_of_unknown_alert_is_refused(world: World) -> None:
    message = await world.alert()
    stale = payload(await world.buttons.secret(), HERE, Action.MUTE, "a" + "q" * 23)
    text, alert = await world.press(message, data=stale, user=ADMIN)
    assert (text, alert) == (STALE, True)
    assert await world.store.token_mutes(HERE, world.clock.now()) == []


async def test_telegram_every_press_is_answered_exactly_once(world: World) -> None:
    message = await world.alert()
    for label in ("Why", "Chart", "Mute BTC 24h"):
        await world.press(message, label)
    answers = [a.query_id for a in world.tg.callback_answers]
    assert len(answers) == len(set(answers)) == 3


async def _key_of(world: World, message: SentMessage) -> str:
    rows = message.reply_markup["inline_keyboard"] if message.reply_markup else []
    return str(rows[0][0]["callback_data"]).split(":")[2]


async def test_telegram_press_burst_shares_command_budget_and_every_press_is_answered(
        world: World) -> None:
    message = await world.alert()
    before = len(world.tg.sent_to(GROUP))
    queries = [world.tg.press_button(GROUP, message.message_id, label="Why", user_id=MEMBER)
               for _ in range(14)]
    answers = [await world.tg.wait_for_answer(q, timeout=15) for q in queries]
    await world.tg.wait_for_messages(before + 10, chat_id=GROUP)
    slow = [a for a in answers if a.text is not None and a.text.startswith("Slow down")]
    assert len(slow) == 4 and all(a.show_alert for a in slow)
    assert len({a.query_id for a in world.tg.callback_answers}) == len(
        world.tg.callback_answers)  # each answered once
    assert len(world.tg.sent_to(GROUP)) == before + 10  # only the budget's replies posted
