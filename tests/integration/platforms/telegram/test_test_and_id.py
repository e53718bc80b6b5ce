"""/test and /id on Telegram, and the test alert's explanations: real PTB against the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from alertbot.domain.commands import TEST_ALERT_TITLE
from alertbot.domain.detect import Rules
from alertbot.domain.models import Destination
from alertbot.platforms.telegram.commands import TelegramCommands
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.services.commands import (
    AlertTestOutcome,
    AlertTestResult,
    CommandCore,
    send_test_alert,
)
from alertbot.services.lookup import Lookup
from alertbot.services.pacing import Pacer
from alertbot.sources.replay import ReplaySource, load_demo_data
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram, Fault, SentMessage

pytestmark = pytest.mark.timeout(30)

GROUP = -1001234567890
ADMIN, MEMBER = 7, 8


@dataclass
class Harness:
    tg: FakeTelegram
    store: SqliteStore
    notifier: TelegramNotifier
    pacer: Pacer

    async def say(self, chat: int, text: str, **options: object) -> SentMessage:
        """Inject a message and wait for the bot's answer (the last message it sends)."""
        before = len(self.tg.sent_to(chat))
        self.tg.inject_message(chat, text, **options)  # type: ignore[arg-type]
        await self.tg.wait_until(lambda: any(
            m.reply_to_message_id is not None or chat > 0
            for m in self.tg.sent_to(chat)[before:]))
        return self.tg.sent_to(chat)[-1]

    async def send_test(self, destination: Destination) -> AlertTestResult:
        return await send_test_alert(destination, notifiers={"telegram": self.notifier},
                                     pacer=self.pacer, store=self.store, clock=SystemClock())


@pytest.fixture
async def harness(store: SqliteStore) -> AsyncIterator[Harness]:
    async with FakeTelegram(enforce_limits=False) as tg:
        clock = SystemClock()
        source = ReplaySource(load_demo_data(), started_wall=clock.now())
        lookup = Lookup(store, source, clock, fresh_for=timedelta(minutes=5))
        pacer = Pacer()
        notifier = TelegramNotifier.connect(tg.token, tg.root, pacer=pacer)
        h = Harness(tg, store, notifier, pacer)
        core = CommandCore(store, lookup, clock, band_label=Rules().band_label,
                           send_test=h.send_test)
        commands = TelegramCommands(core, store, clock, token=tg.token, api_root=tg.root,
                                    poll_timeout=1, pacer=pacer)
        tg.set_chat_member(GROUP, ADMIN, "administrator")
        tg.set_chat_member(GROUP, MEMBER, "member")
        await commands.start()
        try:
            yield h
        finally:
            await commands.stop()
            await notifier.close()


def dest(chat: int, thread: str = "") -> Destination:
    return Destination("telegram", str(chat), thread)


async def test_telegram_id_in_topic_replies_chat_topic_and_user_ids(harness: Harness) -> None:
    reply = await harness.say(GROUP, "/id", user_id=MEMBER, message_thread_id=42,
                              is_topic_message=True)
    assert reply.visible_text.splitlines() == [
        "Ids",
        f"Chat id: {GROUP}",
        "Topic id: 42",
        f"Your user id: {MEMBER}",
        f"Use them in the CLI: alertbot subscribe --platform telegram --chat {GROUP} "
        f"--thread 42 BTC (or alertbot test --platform telegram --chat {GROUP} --thread 42); "
        f"for the bot's own alerts: ALERTBOT_OPS_DESTINATION=telegram:{GROUP}",
    ]
    assert reply.message_thread_id == 42
    assert harness.tg.calls_of("getChatMember") == []  # anyone may ask


async def test_telegram_admin_test_sends_marked_alert_then_confirms(harness: Harness) -> None:
    reply = await harness.say(GROUP, "/test", user_id=ADMIN)
    alert, answer = harness.tg.sent_to(GROUP)[-2:]
    assert answer is reply
    assert alert.visible_text.splitlines()[0] == TEST_ALERT_TITLE
    assert alert.parse_mode == "HTML" and alert.reply_to_message_id is None
    assert reply.visible_text == "Test alert sent: delivery to this chat works."
    assert await harness.store.destinations() == []  # nothing recorded, nothing subscribed


async def test_telegram_member_test_is_refused_and_sends_nothing(harness: Harness) -> None:
    reply = await harness.say(GROUP, "/test", user_id=MEMBER)
    assert reply.visible_text == ("Sorry, only chat admins (anyone in a private chat) can "
                                  "send a test alert.")
    assert len(harness.tg.sent_to(GROUP)) == 1


async def test_telegram_test_in_topic_reaches_the_topic(harness: Harness) -> None:
    await harness.say(GROUP, "/test", user_id=ADMIN, message_thread_id=42,
                      is_topic_message=True)
    alert = harness.tg.sent_to(GROUP)[-2]
    assert alert.visible_text.startswith(TEST_ALERT_TITLE) and alert.message_thread_id == 42


@pytest.mark.parametrize(("fault", "thread", "expected"), [
    (Fault.kicked(), "",
     ["Test alert to telegram:-1001234567890 failed: Telegram refused: bot was kicked from "
      "the supergroup chat.",
      "Fix: add the bot to the chat (in a channel, as an administrator that can post "
      "messages), then try again."]),
    (Fault.chat_not_found(), "",
     ["Test alert to telegram:-1001234567890 failed: Telegram: Chat not found.",
      "Fix: check the chat id (send /id in the chat) and that the bot was added to it; a "
      "private chat must have sent /start to the bot first."]),
    (Fault.thread_not_found(), "99",
     ["Test alert to telegram:-1001234567890/99 failed: Telegram: Message thread not found.",
      "Fix: topic 99 does not exist in this chat; send /id inside the topic to get its id."]),
])
async def test_telegram_test_failure_says_what_to_fix_and_changes_nothing(
        harness: Harness, fault: Fault, thread: str, expected: list[str]) -> None:
    harness.tg.fail_next("sendMessage", fault)
    result = await harness.send_test(dest(GROUP, thread))
    assert result.outcome is AlertTestOutcome.FAILED
    assert list(result.lines) == expected
    assert await harness.store.destinations() == []  # no pause recorded for a test


async def test_telegram_test_with_rejected_token_names_the_variable(
        harness: Harness, store: SqliteStore) -> None:
    wrong = TelegramNotifier.connect("999:WRONG", harness.tg.root)
    try:
        result = await send_test_alert(dest(GROUP), notifiers={"telegram": wrong},
                                       pacer=Pacer(), store=store, clock=SystemClock())
    finally:
        await wrong.close()
    assert result.outcome is AlertTestOutcome.FAILED
    assert result.lines[-1] == ("Fix: put the bot's current token in TELEGRAM_BOT_TOKEN (and "
                                "restart a running alertbot).")
    assert "WRONG" not in " ".join(result.lines)


async def test_telegram_test_without_token_names_the_variable(store: SqliteStore) -> None:
    result = await send_test_alert(dest(GROUP), notifiers={}, pacer=Pacer(), store=store,
                                   clock=SystemClock())
    assert result.outcome is AlertTestOutcome.NOT_CONFIGURED
    assert result.lines == ("Test alert not sent: telegram is not configured; set "
                            "TELEGRAM_BOT_TOKEN in the environment or .env (and restart a "
                            "running alertbot).",)
