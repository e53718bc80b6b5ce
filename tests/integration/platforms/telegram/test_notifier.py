"""TelegramNotifier with the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
import telegram
from telegram.request import HTTPXRequest

from alertbot.domain.models import (
    Change,
    ChartImage,
    Destination,
    DigestSchedule,
    Direction,
    Kind,
    Reason,
    Token,
    make_change_id,
)
from alertbot.domain.render import render, render_change, render_digest
from alertbot.domain.scheduled_digest import build_summary, digest_change, period_containing
from alertbot.platforms.telegram.format import utf16_len
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.ports.notifier import DeliveryError, Target
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.pacing import Pacer
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram, Fault, WebhookDelivery

pytestmark = pytest.mark.timeout(30)

GROUP = -1001234567890
PRIVATE = 555
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
EVIL = Token(66, "EV&L", "<b>Evil</b> & @everyone", "evil")
KEY = "a" + "k" * 23


def flip(token: Token = BTC, seconds: float = 0, kind: Kind = Kind.HOURLY,
         detected: datetime | None = None) -> Change:
    source = datetime(2026, 11, 27, 12, tzinfo=UTC) + timedelta(seconds=seconds)
    return Change(make_change_id(token.token_id, kind, -1, 1, source), token, kind, -1.0, 1.0,
                  Direction.UP, source, detected or source, "bearish", "bullish", "flip")


def dest(chat: int, thread: str = "") -> Target:
    return Target(Destination("telegram", str(chat), thread))


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def notifier(tg: FakeTelegram) -> AsyncIterator[TelegramNotifier]:
    sender = TelegramNotifier.connect(tg.token, tg.root, pacer=Pacer())
    yield sender
    await sender.close()


# --- formatting -------------------------------------------------------------------------------


async def test_telegram_send_hostile_token_name_renders_as_literal_text(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    delivered = await notifier.send(dest(GROUP), render_change(flip(EVIL)), key=KEY,
                                    silent=False)
    [sent] = tg.sent_to(GROUP)
    assert delivered.message_id == str(sent.message_id)
    assert sent.parse_mode == "HTML"
    lines = sent.visible_text.splitlines()
    assert lines[0] == "▲ EV&L hourly signal turned bullish"
    assert lines[1] == "<b>Evil</b> & @everyone (EV&L)"
    assert lines[-1] == "Open on Token Metrics"
    # Only our own markup became formatting: the bold title and the token link.
    assert [(e["type"], e["offset"]) for e in sent.entities] == [
        ("bold", 0), ("text_link", sent.visible_text.index("Open on"))]
    assert sent.entities[1]["url"] == "https://app.tokenmetrics.com/evil"


async def test_telegram_send_turns_link_previews_off_and_rings_unless_silent(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    await notifier.send(dest(PRIVATE), render_change(flip()), key=KEY, silent=False)
    await notifier.send(dest(GROUP), render_change(flip()), key=KEY, silent=True)
    [loud] = tg.sent_to(PRIVATE)
    [quiet] = tg.sent_to(GROUP)
    assert loud.link_preview_options == {"is_disabled": True}
    assert quiet.link_preview_options == {"is_disabled": True}
    assert (loud.disable_notification, quiet.disable_notification) == (False, True)
    assert loud.message_thread_id is None


async def test_telegram_send_forum_topic_sets_message_thread_id(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    tg.add_chat(GROUP, "supergroup", is_forum=True)
    await notifier.send(dest(GROUP, "42"), render_change(flip()), key=KEY, silent=False)
    [sent] = tg.sent_to(GROUP)
    assert sent.message_thread_id == 42


async def test_telegram_send_long_digest_splits_on_lines_and_paces_the_parts(
        tg: FakeTelegram) -> None:
    tokens = [Token(100 + i, f"T{i}&", f"<Token {i}>") for i in range(100)]
    message = render_digest([flip(t, seconds=i) for i, t in enumerate(tokens)])
    pacer = Pacer()
    notifier = TelegramNotifier.connect(tg.token, tg.root, pacer=pacer)
    try:
        # As the dispatcher does: the first part is paced before send() is called.
        await pacer.acquire(notifier.limits(dest(GROUP).destination))
        delivered = await notifier.send(dest(GROUP), message, key=KEY, silent=False)
    finally:
        await notifier.close()
    parts = tg.sent_to(GROUP)
    assert len(parts) == 2  # the fake enforces 1 message/s per chat: the part was paced
    assert tg.rate_limited == 0
    assert delivered.message_id == ",".join(str(p.message_id) for p in parts)
    assert all(utf16_len(p.visible_text) <= 4096 for p in parts)
    shown = [line for p in parts for line in p.visible_text.splitlines()]
    assert shown == ["100 more changes:", *message.lines]
    assert parts[0].entities[0] == {"offset": 0, "length": 17, "type": "bold"}


# --- errors -----------------------------------------------------------------------------------


FAULTS = [
    (Fault.blocked_by_user(), {"destination_gone": True, "retryable": False},
     "Telegram refused: bot was blocked by the user"),
    (Fault.kicked(), {"destination_gone": True},
     "Telegram refused: bot was kicked from the supergroup chat"),
    (Fault.chat_not_found(), {"destination_gone": True}, "Telegram: Chat not found"),
    (Fault.migrated(-100222), {"rekey_to": "-100222", "destination_gone": False},
     "Telegram group became supergroup -100222"),
    (Fault.retry_after(3), {"rate_limited": True, "retryable": True, "retry_after": 3.0},
     "Telegram asked to wait 3s"),
    (Fault.cant_parse_entities(), {"retryable": False, "destination_gone": False,
                                   "rekey_to": None}, "Telegram rejected the message: "),
    (Fault.server_error(502), {"retryable": True, "destination_gone": False},
     "Telegram unreachable: "),
    (Fault.server_error(500), {"retryable": True}, "Telegram unreachable: "),
    # A 429 without parameters.retry_after (a proxy in front of the Bot API): PTB does not
    # read HTTP headers, so it is retried with backoff, never dead-lettered.
    (Fault.error(429, "Too Many Requests"), {"retryable": True, "destination_gone": False,
                                             "rate_limited": False}, "Telegram unreachable: "),
]


@pytest.mark.parametrize(("fault", "flags", "reason"), FAULTS)
async def test_telegram_send_api_error_maps_to_delivery_error(
        tg: FakeTelegram, notifier: TelegramNotifier, fault: Fault, flags: dict[str, object],
        reason: str) -> None:
    tg.fail_next("sendMessage", fault)
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(dest(GROUP), render_change(flip()), key=KEY, silent=False)
    for name, value in flags.items():
        assert getattr(caught.value, name) == value, name
    assert caught.value.reason.startswith(reason)
    assert tg.token not in caught.value.reason
    assert tg.sent == []


async def test_telegram_send_cant_parse_entities_is_logged_without_secrets(
        tg: FakeTelegram, notifier: TelegramNotifier, caplog: pytest.LogCaptureFixture) -> None:
    tg.fail_next("sendMessage", Fault.cant_parse_entities())
    with caplog.at_level(logging.ERROR), pytest.raises(DeliveryError):
        await notifier.send(dest(GROUP), render_change(flip(EVIL)), key=KEY, silent=False)
    [record] = [r for r in caplog.records if r.name == "alertbot.platforms.telegram.notifier"]
    assert KEY in record.getMessage()
    assert "can't parse entities" in record.getMessage().lower()
    assert tg.token not in caplog.text and "Evil" not in caplog.text


async def test_telegram_send_slow_server_times_out_as_retryable(tg: FakeTelegram) -> None:
    bot = telegram.Bot(tg.token, base_url=tg.base_url,
                       request=HTTPXRequest(read_timeout=0.2, write_timeout=0.2))
    sender = TelegramNotifier(bot)
    tg.fail_next("sendMessage", Fault.slow(2))
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(dest(GROUP), render_change(flip()), key=KEY, silent=False)
    finally:
        await bot.shutdown()
    assert caught.value.retryable and not caught.value.destination_gone
    assert caught.value.reason == "Telegram did not answer in time"


async def test_telegram_send_rejected_token_holds_the_whole_platform(tg: FakeTelegram) -> None:
    sender = TelegramNotifier.connect("999:WRONG", tg.root)
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(dest(GROUP), render_change(flip()), key=KEY, silent=False)
        with pytest.raises(DeliveryError):
            await sender.check()
    finally:
        await sender.close()
    error = caught.value
    assert error.credentials and error.global_limit and not error.rate_limited
    assert "TELEGRAM_BOT_TOKEN" in error.reason and "999:WRONG" not in error.reason


async def test_telegram_check_names_the_bot(notifier: TelegramNotifier) -> None:
    assert await notifier.check() == "connected as @alertbot_test_bot"


async def test_telegram_check_updates_polling_reports_a_leftover_webhook(
        notifier: TelegramNotifier, tg: FakeTelegram) -> None:
    assert await notifier.check_updates(None) == "updates by long polling"
    tg.webhook_url = "https://old.example.com/tg"
    assert await notifier.check_updates(None) == (
        "updates by long polling (a webhook to https://old.example.com/tg is registered; "
        "alertbot run deletes it)")


async def test_telegram_check_updates_webhook_reports_registration_backlog_and_errors(
        notifier: TelegramNotifier, tg: FakeTelegram) -> None:
    url = "https://bot.example.com/tg"
    assert await notifier.check_updates(url) == (
        f"updates by webhook {url}; not registered yet, alertbot run registers it")
    tg.webhook_url = "https://old.example.com/tg"
    assert await notifier.check_updates(url) == (
        f"updates by webhook {url}; Telegram has https://old.example.com/tg, alertbot run "
        "replaces it")
    tg.webhook_url = url
    tg.inject_message(GROUP, "/help")
    tg.webhook_deliveries.append(WebhookDelivery(1, 502))
    assert await notifier.check_updates(url) == (
        f"updates by webhook {url}; 1 update waiting at Telegram; Telegram's last delivery error: "
        "Wrong response from the webhook: 502")


# --- through the dispatcher and the store -----------------------------------------------------


async def queue_alert(store: SqliteStore, destination: Destination) -> Change:
    """Subscribe `destination` to BTC hourly and commit one change (one outbox row)."""
    now = datetime.now(UTC)
    await store.subscribe(destination, BTC.token_id, [Kind.HOURLY], now - timedelta(minutes=1))
    change = flip(detected=now)
    result = await store.record_poll([], [change], now)
    assert result.outbox_rows == 1
    return change


async def deliver(store: SqliteStore, notifier: TelegramNotifier) -> None:
    dispatcher = Dispatcher(store, {"telegram": notifier}, SystemClock(), pacer=Pacer())
    await dispatcher.run_until_idle(limit=10)


async def outbox_states(store: SqliteStore) -> dict[str, int]:
    return dict((await store.outbox_stats()).by_state)


async def test_dispatcher_blocked_chat_pauses_destination_and_dead_letters(
        tg: FakeTelegram, notifier: TelegramNotifier, store: SqliteStore) -> None:
    destination = Destination("telegram", str(PRIVATE))
    await queue_alert(store, destination)
    tg.block_chat(PRIVATE)
    await deliver(store, notifier)
    info = await store.destination(destination)
    assert info is not None
    assert info.paused_reason == "Telegram refused: bot was blocked by the user"
    assert await outbox_states(store) == {"dead": 1}
    [decision] = await store.recent_decisions(destination, 1)
    assert decision.reason == Reason.DESTINATION_GONE
    assert tg.sent == []


async def test_dispatcher_unknown_chat_pauses_destination(
        tg: FakeTelegram, notifier: TelegramNotifier, store: SqliteStore) -> None:
    destination = Destination("telegram", str(GROUP))
    await queue_alert(store, destination)
    tg.forget_chat(GROUP)
    await deliver(store, notifier)
    info = await store.destination(destination)
    assert info is not None and info.paused_reason == "Telegram: Chat not found"
    assert (await store.watched()).token_masks == {}


async def test_dispatcher_migrated_group_rekeys_and_resends_to_supergroup(
        tg: FakeTelegram, notifier: TelegramNotifier, store: SqliteStore) -> None:
    old, new = -4001, -1004001
    tg.add_chat(old, "group")
    tg.migrate_chat(old, new)
    await queue_alert(store, Destination("telegram", str(old)))
    await deliver(store, notifier)
    [sent] = tg.sent_to(new)
    assert sent.visible_text.startswith("▲ BTC hourly signal turned bullish")
    assert tg.sent_to(old) == []
    assert await store.destination(Destination("telegram", str(old))) is None
    [sub] = await store.subscriptions(Destination("telegram", str(new)))
    assert sub.token_id == BTC.token_id
    assert await outbox_states(store) == {"sent": 1}


async def test_dispatcher_rate_limited_send_is_retried_once_and_delivered_once(
        tg: FakeTelegram, notifier: TelegramNotifier, store: SqliteStore) -> None:
    destination = Destination("telegram", str(GROUP))
    await queue_alert(store, destination)
    tg.fail_next("sendMessage", Fault.retry_after(1))
    await deliver(store, notifier)
    assert len(tg.sent_to(GROUP)) == 1
    assert tg.rate_limited == 1
    assert len(tg.calls_of("sendMessage")) == 2
    reasons = [d.reason for d in await store.recent_decisions(destination, 5)]
    assert reasons == [Reason.RATE_LIMITED, Reason.SENT]  # newest first
    assert await outbox_states(store) == {"sent": 1}
    info = await store.destination(destination)
    assert info is not None and info.paused_reason == ""


async def test_dispatcher_unparsable_message_is_dead_but_chat_stays_active(
        tg: FakeTelegram, notifier: TelegramNotifier, store: SqliteStore) -> None:
    destination = Destination("telegram", str(GROUP))
    await queue_alert(store, destination)
    tg.fail_next("sendMessage", Fault.cant_parse_entities())
    await deliver(store, notifier)
    assert await outbox_states(store) == {"dead": 1}
    info = await store.destination(destination)
    assert info is not None and info.paused_reason == ""
    assert len(tg.calls_of("sendMessage")) == 1


async def test_telegram_send_malformed_topic_id_pauses_instead_of_crashing(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(dest(GROUP, "general"), render_change(flip()), key=KEY,
                            silent=False)
    assert caught.value.destination_gone
    assert tg.sent == []


async def test_telegram_send_retry_after_later_part_failed_sends_only_the_rest(
        tg: FakeTelegram) -> None:
    tokens = [Token(100 + i, f"T{i}", f"Token {i}") for i in range(100)]
    message = render_digest([flip(t, seconds=i) for i, t in enumerate(tokens)])
    pacer = Pacer()
    notifier = TelegramNotifier.connect(tg.token, tg.root, pacer=pacer)
    tg.fail_next("sendMessage", Fault())  # the first part goes through
    tg.fail_next("sendMessage", Fault.error(500, "Internal Server Error"))
    try:
        await pacer.acquire(notifier.limits(dest(GROUP).destination))
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(dest(GROUP), message, key=KEY, silent=False)
        assert failed.value.retryable
        [first] = tg.sent_to(GROUP)
        # The dispatcher's retry: same key, same message.
        await pacer.acquire(notifier.limits(dest(GROUP).destination))
        delivered = await notifier.send(dest(GROUP), message, key=KEY, silent=False)
    finally:
        await notifier.close()
    parts = tg.sent_to(GROUP)
    assert len(parts) == 2 and parts[0].message_id == first.message_id
    assert delivered.message_id == ",".join(str(p.message_id) for p in parts)
    shown = [line for p in parts for line in p.visible_text.splitlines()]
    assert shown == ["100 more changes:", *message.lines]


async def test_telegram_send_scheduled_digest_bold_sections_hostile_names_literal(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    schedule = DigestSchedule(False, time(9, 0), "Europe/Berlin")
    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    grade = Change(make_change_id(EVIL.token_id, Kind.TM_GRADE, 50, 70, at), EVIL,
                   Kind.TM_GRADE, 50.0, 70.0, Direction.UP, at, at, "Neutral", "Buy", "band")
    summary = build_summary(schedule, period_containing(schedule, at), [grade, flip()], {})
    target = dest(GROUP)
    message = render([digest_change(target.destination, summary, at)])
    await notifier.send(target, message, key=KEY, silent=False)
    [sent] = tg.sent_to(GROUP)
    lines = sent.visible_text.splitlines()
    assert lines[0] == "Daily digest · 2026-11-27 09:00 → 2026-11-28 09:00 Europe/Berlin"
    assert "▲ EV&L TM grade 50.0 → 70.0 (+20.0) (Neutral → Buy)" in lines
    assert "EV&L (<b>Evil</b> & @everyone): 1 change" in lines
    bold = [sent.visible_text[e["offset"]:e["offset"] + e["length"]] for e in sent.entities]
    assert bold == [lines[0], "Biggest upgrades:", "Changes by token:"]


def small_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (400, 224), "white").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_telegram_send_scheduled_digest_with_chart_posts_text_then_photo_once(
        tg: FakeTelegram) -> None:
    schedule = DigestSchedule(False, time(9, 0), "UTC")
    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    # Too long for a photo caption (1,024 characters): the chart follows the text.
    tokens = [Token(100 + i, f"TOKEN{i}", f"Token number {i}") for i in range(40)]
    summary = build_summary(schedule, period_containing(schedule, at),
                            [flip(t, seconds=i) for i, t in enumerate(tokens)], {})
    target = dest(GROUP)
    chart = ChartImage(small_png(), "BTC grade history, 30 days", "btc-grades.png")
    message = replace(render([digest_change(target.destination, summary, at)]), image=chart)
    pacer = Pacer()
    notifier = TelegramNotifier.connect(tg.token, tg.root, pacer=pacer)
    tg.fail_next("sendPhoto", Fault.error(500, "Internal Server Error"))
    try:
        with pytest.raises(DeliveryError):
            await notifier.send(target, message, key=KEY, silent=False)
        # The dispatcher's retry: the text already went out, only the chart is sent.
        delivered = await notifier.send(target, message, key=KEY, silent=False)
    finally:
        await notifier.close()
    texts = tg.sent_to(GROUP)
    [photo] = tg.photos
    assert texts and texts[0].visible_text.startswith("Daily digest · ")
    assert photo.visible_caption == "BTC grade history, 30 days"
    assert delivered.message_id == ",".join(
        str(m) for m in [*(t.message_id for t in texts), photo.message_id])
