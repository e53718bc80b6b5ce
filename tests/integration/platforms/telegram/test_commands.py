"""The Telegram command bot: a real PTB Application long-polling the fake Bot API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertbot.domain.commands import COMMANDS, Reply
from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    Change,
    Destination,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.platforms.telegram.commands import TelegramCommands
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.services.commands import Caller, CommandCore
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.services.pacing import Pacer
from alertbot.sources.replay import ReplaySource, load_demo_data
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram, Fault, SentMessage
from tests.support import eventually

pytestmark = pytest.mark.timeout(30)

GROUP = -1001234567890
ADMIN, MEMBER = 7, 8
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")


def dest(chat: int, thread: str = "") -> Destination:
    return Destination("telegram", str(chat), thread)


@dataclass
class Bot:
    tg: FakeTelegram
    store: SqliteStore
    commands: TelegramCommands
    rekeys: list[int]

    async def say(self, chat: int, text: str, **options: object) -> SentMessage:
        """Inject a message and wait for the bot's answer in that chat."""
        before = len(self.tg.sent_to(chat))
        self.tg.inject_message(chat, text, **options)  # type: ignore[arg-type]
        return (await self.tg.wait_for_messages(before + 1, chat_id=chat))[before]


@pytest.fixture
async def bot(store: SqliteStore) -> AsyncIterator[Bot]:
    # Limits off: these tests send several replies to one chat within a second; pacing
    # against the enforced limits is covered by the end-to-end test.
    async with FakeTelegram(enforce_limits=False) as tg:
        clock = SystemClock()
        source = ReplaySource(load_demo_data(), started_wall=clock.now())
        lookup = Lookup(store, source, clock, fresh_for=timedelta(minutes=5))
        core = CommandCore(store, lookup, clock, band_label=Rules().band_label)
        rekeys: list[int] = []
        commands = TelegramCommands(core, store, clock, token=tg.token, api_root=tg.root,
                                    poll_timeout=1, on_rekey=lambda: rekeys.append(1))
        tg.set_chat_member(GROUP, ADMIN, "administrator")
        tg.set_chat_member(GROUP, MEMBER, "member")
        await commands.start()
        try:
            yield Bot(tg, store, commands, rekeys)
        finally:
            await commands.stop()


async def test_telegram_start_publishes_menus_for_everyone_admins_and_private_chats(
        bot: Bot) -> None:
    menus = {scope: [c["command"] for c in cmds] for scope, cmds in bot.tg.commands.items()}
    everything = [c.name for c in COMMANDS]
    assert menus["all_chat_administrators"] == everything
    assert menus["all_private_chats"] == everything
    assert menus["default"] == [c.name for c in COMMANDS if not c.moderator]
    assert "subscribe" not in menus["default"] and "why" in menus["default"]
    assert bot.commands.health() is None


async def test_telegram_admin_subscribe_in_supergroup_confirms_and_stores(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/subscribe BTC hourly", user_id=ADMIN)
    assert reply.visible_text == ("Subscribed this chat to BTC (Bitcoin): hourly signal.\n"
                                  "Changes detected from now on will be posted here.")
    assert reply.parse_mode == "HTML"
    assert reply.reply_to_message_id is not None  # quotes the command in a group
    [sub] = await bot.store.subscriptions(dest(GROUP))
    assert (sub.token_id, sub.kinds) == (BTC.token_id, (Kind.HOURLY,))
    [audit] = await bot.store.recent_audit(1)
    assert audit.actor.startswith(f"telegram:{ADMIN} ")
    assert [c["user_id"] for c in bot.tg.calls_of("getChatMember")] == [ADMIN]


async def test_telegram_member_throttle_is_refused_and_changes_nothing(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/throttle 1 1h", user_id=MEMBER)
    assert reply.visible_text == ("Sorry, only chat admins (anyone in a private chat) can "
                                  "change the throttle.")
    assert await bot.store.destination(dest(GROUP)) is None
    assert await bot.store.recent_audit(5) == []


async def test_telegram_member_may_read_settings(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/throttle", user_id=MEMBER)
    assert "throttle: at most 10 alerts per 1h" in reply.visible_text
    assert bot.tg.calls_of("getChatMember") == []  # reading needs no permission lookup


async def test_telegram_anonymous_admin_posting_as_group_is_a_moderator(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/mute 2h", sender_chat_id=GROUP)
    assert reply.visible_text.startswith("Muted for 2h")
    info = await bot.store.destination(dest(GROUP))
    assert info is not None and info.policy.mute_until is not None
    assert bot.tg.calls_of("getChatMember") == []


async def test_telegram_post_on_behalf_of_another_channel_is_refused(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/mute 2h", sender_chat_id=-1009999)
    assert reply.visible_text.startswith("Sorry, only chat admins")
    assert await bot.store.destination(dest(GROUP)) is None


async def test_telegram_private_chat_user_owns_the_chat(bot: Bot) -> None:
    reply = await bot.say(555, "/subscribe ETH signal")
    assert reply.visible_text.startswith("Subscribed this chat to ETH (Ethereum): daily signal.")
    assert reply.reply_to_message_id is None
    assert [s.token_id for s in await bot.store.subscriptions(dest(555))] == [3306]
    assert bot.tg.calls_of("getChatMember") == []


async def test_telegram_forum_topic_is_its_own_destination(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/subscribe BTC", user_id=ADMIN, message_thread_id=42,
                          is_topic_message=True)
    assert reply.message_thread_id == 42
    assert [s.token_id for s in await bot.store.subscriptions(dest(GROUP, "42"))] == [3375]
    assert await bot.store.subscriptions(dest(GROUP)) == []


async def test_telegram_hostile_input_is_echoed_as_literal_text(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/signal <b>&amp;", user_id=MEMBER)
    assert reply.visible_text == "'<b>&amp;' is not a token symbol.\nUsage: /signal SYMBOL"
    assert reply.entities == []


async def test_telegram_signal_lookup_renders_snapshot(bot: Bot) -> None:
    reply = await bot.say(GROUP, "/signal btc", user_id=MEMBER)
    lines = reply.visible_text.splitlines()
    assert lines[:2] == ["BTC signals", "Bitcoin (BTC)"]
    assert lines[2].startswith("Daily signal: ") and lines[3].startswith("Hourly signal: ")
    assert reply.link_preview_options == {"is_disabled": True}


async def test_telegram_commands_for_other_bots_and_unknown_ones_are_ignored(bot: Bot) -> None:
    bot.tg.inject_message(GROUP, "/subscribe@some_other_bot BTC", user_id=ADMIN)
    bot.tg.inject_message(GROUP, "/frobnicate", user_id=ADMIN)
    reply = await bot.say(GROUP, "/subscriptions@alertbot_test_bot", user_id=MEMBER)
    assert reply.visible_text.startswith("Subscriptions here\nNo subscriptions yet.")
    assert len(bot.tg.sent_to(GROUP)) == 1
    assert await bot.store.subscriptions(dest(GROUP)) == []
    private = await bot.say(555, "/frobnicate")
    assert private.visible_text == "Unknown command /frobnicate. Send /help for the list."


async def test_telegram_failed_permission_lookup_refuses(bot: Bot) -> None:
    bot.tg.forget_chat(GROUP)  # getChatMember now answers 400 chat not found
    before = len(bot.tg.sent_to(GROUP))
    bot.tg.inject_message(GROUP, "/subscribe BTC", user_id=ADMIN)
    await bot.tg.wait_until(lambda: len(bot.tg.calls_of("sendMessage")) > before)
    assert await bot.store.subscriptions(dest(GROUP)) == []


async def test_telegram_bot_removed_from_group_pauses_every_topic(bot: Bot) -> None:
    await bot.say(GROUP, "/subscribe BTC", user_id=ADMIN)
    await bot.say(GROUP, "/subscribe all", user_id=ADMIN, message_thread_id=9,
                  is_topic_message=True)
    bot.tg.inject_my_chat_member(GROUP, "member", "left")

    async def both_paused() -> bool:
        infos = [await bot.store.destination(d) for d in (dest(GROUP), dest(GROUP, "9"))]
        return all(i is not None and i.paused_reason for i in infos)

    await eventually(both_paused, what="the group and its topic paused")
    info = await bot.store.destination(dest(GROUP))
    assert info is not None and info.paused_reason == "the bot was removed from the chat"
    assert (await bot.store.watched()).kinds_mask == 0


async def test_telegram_user_blocking_the_bot_pauses_the_private_chat(bot: Bot) -> None:
    await bot.say(555, "/subscribe BTC")
    bot.tg.inject_my_chat_member(555, "member", "kicked")

    async def paused() -> bool:
        info = await bot.store.destination(dest(555))
        return info is not None and info.paused_reason == "the user blocked the bot"

    await eventually(paused, what="the private chat paused")


async def test_telegram_bot_added_to_group_sends_welcome(bot: Bot) -> None:
    bot.tg.inject_my_chat_member(-1005550001, "left", "member")
    [welcome] = await bot.tg.wait_for_messages(1, chat_id=-1005550001)
    assert "/subscribe BTC" in welcome.visible_text and "/help" in welcome.visible_text
    assert "paused" not in welcome.visible_text


async def test_telegram_bot_readded_after_removal_mentions_paused_alerts(bot: Bot) -> None:
    await bot.say(GROUP, "/subscribe BTC", user_id=ADMIN)
    bot.tg.inject_my_chat_member(GROUP, "member", "kicked")
    bot.tg.inject_my_chat_member(GROUP, "kicked", "member")
    welcome = (await bot.tg.wait_for_messages(2, chat_id=GROUP))[1]
    assert "Alerts from before I was removed are paused" in welcome.visible_text
    info = await bot.store.destination(dest(GROUP))
    assert info is not None and info.paused_reason  # re-adding alone does not resume


async def test_telegram_group_migration_message_rekeys_subscriptions(bot: Bot) -> None:
    old, new = -4002, -1004002
    bot.tg.add_chat(old, "group")
    bot.tg.set_chat_member(old, ADMIN, "creator")
    await bot.say(old, "/subscribe BTC signal", user_id=ADMIN)
    now = datetime.now(UTC)
    change = Change(make_change_id(BTC.token_id, Kind.SIGNAL, -1, 1, now), BTC, Kind.SIGNAL,
                    -1.0, 1.0, Direction.UP, now, now, "bearish", "bullish", "flip")
    await bot.store.record_poll([], [change], now)  # one alert queued for the old id
    bot.tg.migrate_chat(old, new)
    chat = {"id": old, "type": "group", "title": "Old group"}
    bot.tg.inject_update({"message": {"message_id": 99, "date": int(time.time()), "chat": chat,
                                      "from": {"id": ADMIN, "is_bot": False,
                                               "first_name": "A"},
                                      "migrate_to_chat_id": new}})

    async def moved() -> bool:
        return bool(await bot.store.subscriptions(dest(new)))

    await eventually(moved, what="subscriptions moved to the migrated chat id")
    assert await bot.store.subscriptions(dest(old)) == []
    assert await bot.store.destination(dest(old)) is None
    assert (await bot.store.outbox_stats()).by_state == {"pending": 1}
    assert bot.rekeys == [1]  # the dispatcher is woken to resend at once


async def test_telegram_why_after_alerts_explains_each_decision(bot: Bot) -> None:
    await bot.say(GROUP, "/subscribe BTC", user_id=ADMIN)
    await bot.say(GROUP, "/throttle 1 1h", user_id=ADMIN)
    notifier = TelegramNotifier(bot.commands.application.bot)

    async def dispatch() -> None:
        dispatcher = Dispatcher(bot.store, {"telegram": notifier}, SystemClock(), pacer=Pacer())
        await dispatcher.run_until_idle(limit=2)

    start = datetime.now(UTC)
    for i, value in enumerate((1.0, -1.0, 1.0)):
        at = start + timedelta(milliseconds=i)
        change = Change(make_change_id(BTC.token_id, Kind.HOURLY, -value, value, at), BTC,
                        Kind.HOURLY, -value, value,
                        Direction.UP if value > 0 else Direction.DOWN, at, at,
                        "bearish" if value > 0 else "bullish",
                        "bullish" if value > 0 else "bearish", "flip")
        await bot.store.record_poll([], [change], at)
        if i == 0:
            await dispatch()
    await dispatch()
    alerts = [m for m in bot.tg.sent_to(GROUP) if m.visible_text.startswith("▲")]
    assert len(alerts) == 1  # budget 1 per hour: the later two wait for a digest
    reply = await bot.say(GROUP, "/why", user_id=MEMBER)
    lines = reply.visible_text.splitlines()
    assert lines[0] == "Recent alert decisions"
    assert lines[-1].endswith("BTC hourly signal turned bullish: sent")
    held = [line for line in lines if "held: over the alert budget" in line]
    assert len(held) == 2 and all("(until " in line for line in held)


async def runner(tg: FakeTelegram, tmp_path: Path,
                 token: str | None = None) -> tuple[TelegramCommands, SqliteStore]:
    store = SqliteStore(str(tmp_path / "r.db"))
    await store.open()
    clock = SystemClock()
    source = ReplaySource(load_demo_data(), started_wall=clock.now())
    core = CommandCore(store, Lookup(store, source, clock, fresh_for=timedelta(minutes=5)),
                       clock, band_label=Rules().band_label)
    return TelegramCommands(core, store, clock, token=token or tg.token, api_root=tg.root,
                            poll_timeout=1), store


async def test_telegram_run_retries_unreachable_start_then_serves_until_stop(
        tmp_path: Path) -> None:
    async with FakeTelegram(enforce_limits=False) as tg:
        tg.fail_next("getMe", Fault.server_error(502))
        commands, store = await runner(tg, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(commands.run(stop))
        try:
            await tg.wait_until(lambda: len(tg.calls_of("getMe")) == 1)
            await tg.wait_until(lambda: bool(tg.calls_of("getUpdates")), timeout=10)
            assert commands.health() is None
            reply_count = len(tg.sent_to(555))
            tg.inject_message(555, "/help")
            await tg.wait_for_messages(reply_count + 1, chat_id=555)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await store.close()
        assert commands.health() == "stopped"
        assert len(tg.calls_of("getMe")) == 2


async def test_telegram_run_rejected_token_reports_health_and_stops_on_request(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeTelegram(enforce_limits=False) as tg:
        commands, store = await runner(tg, tmp_path, token="999:WRONG")
        stop = asyncio.Event()
        task = asyncio.create_task(commands.run(stop))
        try:
            async def rejected() -> bool:
                return commands.health() == ("Telegram rejected the bot token (check "
                                             "TELEGRAM_BOT_TOKEN)")

            await eventually(rejected, what="health to report the rejected token")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await store.close()
        assert tg.calls_of("getUpdates") == []
        assert "999:WRONG" not in caplog.text


class HeldMemberCore(CommandCore):
    """Holds the member's commands until released, as a busy lookup or slow pacing would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()

    async def handle(self, caller: Caller, command: str, text: str = "") -> Reply:
        if caller.user_id == str(MEMBER):
            await self.release.wait()
        return await super().handle(caller, command, text)


async def test_telegram_member_burst_is_cut_to_budget_and_admin_mute_is_answered_first(
        tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "flood.db"))
    await store.open()
    async with FakeTelegram(enforce_limits=False) as tg:
        clock = SystemClock()
        source = ReplaySource(load_demo_data(), started_wall=clock.now())
        core = HeldMemberCore(store, Lookup(store, source, clock,
                                            fresh_for=timedelta(minutes=5)),
                              clock, band_label=Rules().band_label)
        commands = TelegramCommands(core, store, clock, token=tg.token, api_root=tg.root,
                                    poll_timeout=1)
        tg.set_chat_member(GROUP, ADMIN, "administrator")
        tg.set_chat_member(GROUP, MEMBER, "member")
        await commands.start()
        try:
            for _ in range(60):
                tg.inject_message(GROUP, "/why", user_id=MEMBER)
            mute = tg.inject_message(GROUP, "/mute 2h", user_id=ADMIN)

            # Answered while the member's first command is still being handled.
            [first] = await tg.wait_for_messages(1, chat_id=GROUP)
            assert first.reply_to_message_id == mute["message"]["message_id"]
            assert first.visible_text.startswith("Muted for 2h")
            core.release.set()
            await tg.wait_for_messages(12, chat_id=GROUP)
            await tg.wait_until(lambda: tg.pending_updates == 0)
            # A later command from someone else is answered: the backlog is gone, not queued.
            tg.inject_message(GROUP, "/help", user_id=ADMIN)
            sent = await tg.wait_for_messages(13, chat_id=GROUP)
        finally:
            core.release.set()
            await commands.stop()
            await store.close()
    member_replies = sent[1:-1]
    slow = [m for m in member_replies if m.visible_text.startswith("Slow down")]
    assert len(member_replies) == 11 and len(slow) == 1
    assert "at most 10 commands a minute" in slow[0].visible_text
    assert sent[-1].visible_text.startswith("Token Metrics alert bot")
