"""The fake Telegram Bot API server, exercised with the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import AsyncIterator

import aiohttp
import aiohttp.web
import pytest
import telegram
from telegram import (
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CommandHandler, ContextTypes

from tests.fakes.telegram_api import (
    GROUP_ANONYMOUS_BOT_ID,
    MESSAGES_PER_MINUTE_PER_GROUP,
    MESSAGES_PER_SECOND,
    WEBHOOK_SECRET_HEADER,
    FakeTelegram,
    Fault,
)
from tests.support import ManualClock

pytestmark = pytest.mark.timeout(20)

GROUP = -1001234567890
PRIVATE = 555


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int (deprecated) or a timedelta under PTB_TIMEDELTA=1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
async def tg(clock: ManualClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(clock=clock.monotonic) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url
    ) as client:
        yield client


async def start_app(tg: FakeTelegram) -> Application:  # type: ignore[type-arg]
    """A real PTB Application polling the fake, with a /start handler that replies."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "<b>Welcome</b>",
                                       parse_mode="HTML")

    app = (
        Application.builder()
        .token(tg.token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    return app


async def stop_app(app: Application) -> None:  # type: ignore[type-arg]
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


# ---- startup and update delivery -------------------------------------------------------------


async def test_application_start_polling_calls_getme_deletewebhook_getupdates(
    tg: FakeTelegram,
) -> None:
    app = await start_app(tg)
    try:
        await tg.wait_until(lambda: len(tg.calls_of("getUpdates")) >= 1)
    finally:
        await stop_app(app)
    assert [name for name, _ in tg.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
    assert app.bot.username == "alertbot_test_bot"
    assert app.bot.id == 4242


@pytest.mark.parametrize(
    ("chat_id", "text"),
    [
        (PRIVATE, "/start"),
        (GROUP, "/start@alertbot_test_bot"),
        (GROUP, "/start@alertbot_test_bot now"),
    ],
)
async def test_command_handler_injected_start_replies_and_confirms_update(
    tg: FakeTelegram, chat_id: int, text: str
) -> None:
    app = await start_app(tg)
    try:
        tg.inject_message(chat_id, text, user_id=PRIVATE, username="alice")
        [reply] = await tg.wait_for_messages(1, timeout=5)
    finally:
        await stop_app(app)
    assert reply.chat_id == chat_id
    assert reply.text == "<b>Welcome</b>"
    assert reply.visible_text == "Welcome"
    assert reply.parse_mode == "HTML"
    assert tg.pending_updates == 0  # the final getUpdates(offset=last+1) confirmed it


async def test_command_handler_command_for_other_bot_is_ignored(tg: FakeTelegram) -> None:
    app = await start_app(tg)
    try:
        tg.inject_message(GROUP, "/start@some_other_bot", user_id=PRIVATE)
        await tg.wait_until(lambda: tg.pending_updates == 0)
        tg.inject_message(GROUP, "/start", user_id=PRIVATE)
        await tg.wait_for_messages(1)
    finally:
        await stop_app(app)
    assert len(tg.sent) == 1


async def test_inject_message_bot_command_entity_covers_command_and_username(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.inject_message(GROUP, "/subscribe@alertbot_test_bot BTC", user_id=7)
    [update] = await bot.get_updates(timeout=1)
    assert update.message is not None
    assert update.message.parse_entities(["bot_command"]).popitem()[1] == (
        "/subscribe@alertbot_test_bot"
    )
    assert update.message.chat.type == "supergroup"
    assert update.message.from_user is not None
    assert update.message.from_user.id == 7


async def test_inject_message_anonymous_admin_sender_chat_is_group(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.inject_message(GROUP, "/subscribe", sender_chat_id=GROUP)
    [update] = await bot.get_updates(timeout=1)
    message = update.message
    assert message is not None and message.from_user is not None
    assert message.from_user.id == GROUP_ANONYMOUS_BOT_ID
    assert message.from_user.username == "GroupAnonymousBot"
    assert message.sender_chat is not None
    assert message.sender_chat.id == message.chat.id == GROUP


async def test_inject_message_forum_topic_carries_thread_id(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.inject_message(GROUP, "/start", user_id=7, message_thread_id=12, is_topic_message=True)
    [update] = await bot.get_updates(timeout=1)
    assert update.message is not None
    assert update.message.message_thread_id == 12
    assert update.message.is_topic_message is True
    assert update.message.chat.is_forum is True
    reply = await bot.send_message(GROUP, "hi", message_thread_id=12)
    assert reply.message_thread_id == 12
    assert tg.sent[0].message_thread_id == 12


async def test_inject_my_chat_member_kicked_parsed_and_reflected_in_get_chat_member(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.inject_my_chat_member(GROUP, "administrator", "kicked")
    [update] = await bot.get_updates(timeout=1)
    change = update.my_chat_member
    assert change is not None
    assert isinstance(change.old_chat_member, ChatMemberAdministrator)
    assert isinstance(change.new_chat_member, ChatMemberBanned)
    assert change.new_chat_member.user.id == bot.id
    assert isinstance(await bot.get_chat_member(GROUP, bot.id), ChatMemberBanned)


async def test_get_updates_offset_confirms_earlier_updates(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    for n in range(3):
        tg.inject_message(PRIVATE, f"m{n}")
    first = await bot.get_updates(limit=2, timeout=0)
    rest = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in first if u.message] == ["m0", "m1"]
    assert [u.message.text for u in rest if u.message] == ["m2"]
    assert [u.update_id for u in first + rest] == sorted({u.update_id for u in first + rest})
    assert tg.pending_updates == 1


async def test_get_updates_long_poll_returns_when_update_injected() -> None:
    async with (
        FakeTelegram(long_poll_max=5.0) as slow_tg,
        telegram.Bot(slow_tg.token, base_url=slow_tg.base_url) as b,
    ):
        poll = asyncio.create_task(b.get_updates(timeout=5))
        await slow_tg.wait_until(lambda: len(slow_tg.calls_of("getUpdates")) == 1)
        assert not poll.done(), "the fake answered an empty queue before the long poll ended"
        slow_tg.inject_message(PRIVATE, "ping")
        updates = await poll
    # The poll already waiting got the update; an expired one would have returned ().
    assert [u.message.text for u in updates if u.message] == ["ping"]
    assert len(slow_tg.calls_of("getUpdates")) == 1


async def test_get_updates_timeout_capped_by_long_poll_max(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    # Uncapped, the fake would hold this poll for the 30 s asked, past this guard.
    async with asyncio.timeout(10):
        updates = await bot.get_updates(timeout=30)
    assert updates == ()


async def test_get_updates_second_poller_ends_first_with_conflict(tg: FakeTelegram) -> None:
    async with (
        telegram.Bot(tg.token, base_url=tg.base_url) as first_bot,
        telegram.Bot(tg.token, base_url=tg.base_url) as second_bot,
    ):
        first = asyncio.create_task(first_bot.get_updates(timeout=5))
        await tg.wait_until(lambda: len(tg.calls_of("getUpdates")) == 1)
        assert await second_bot.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await first


# ---- requests and responses ------------------------------------------------------------------


async def test_send_message_form_encoded_nested_params_recorded(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Chart", url="https://example.com")]])
    message = await bot.send_message(
        GROUP,
        "BTC <i>long</i>",
        parse_mode="HTML",
        disable_notification=True,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        reply_markup=markup,
    )
    [sent] = tg.sent_to(GROUP)
    assert sent.link_preview_options == {"is_disabled": True}
    assert sent.disable_notification is True
    assert sent.reply_markup == markup.to_dict()
    assert sent.entities == [{"type": "italic", "offset": 4, "length": 4}]
    assert message.text == "BTC long"
    assert message.reply_markup == markup
    assert message.from_user is not None and message.from_user.id == bot.id


async def test_send_message_message_ids_increase_per_chat(
    bot: telegram.Bot, clock: ManualClock
) -> None:
    ids = []
    for chat_id in (PRIVATE, PRIVATE + 1, PRIVATE):
        ids.append((chat_id, (await bot.send_message(chat_id, "x")).message_id))
        clock.advance(1.0)
    assert ids == [(PRIVATE, 1), (PRIVATE + 1, 1), (PRIVATE, 2)]


async def test_edit_and_delete_message_update_then_forget_it(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    sent = await bot.send_message(GROUP, "BTC <b>long</b>", parse_mode="HTML")
    edited = await bot.edit_message_text("BTC <b>short</b>", GROUP, sent.message_id,
                                         parse_mode="HTML")
    assert edited.text == "BTC short"
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("BTC <b>short</b>", GROUP, sent.message_id,
                                    parse_mode="HTML")
    assert await bot.delete_message(GROUP, sent.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(GROUP, sent.message_id)
    assert len(tg.edited) == 1


async def test_send_message_reply_to_unknown_message_bad_request(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(PRIVATE, "x", reply_to_message_id=99)


async def test_http_json_body_and_query_string_accepted(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{tg.root}/bot{tg.token}/sendMessage"
        async with session.post(url, json={"chat_id": str(PRIVATE), "text": "json"}) as resp:
            json_body = await resp.json()
        async with session.get(url, params={"chat_id": str(PRIVATE + 1), "text": "query"}) as resp:
            query_body = await resp.json()
    assert json_body["ok"] is True and json_body["result"]["text"] == "json"
    assert query_body["ok"] is True and query_body["result"]["chat"]["id"] == PRIVATE + 1
    assert [m.text for m in tg.sent] == ["json", "query"]


async def test_http_unknown_method_404_envelope(tg: FakeTelegram) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{tg.root}/bot{tg.token}/noSuchMethod") as resp,
    ):
        status, body = resp.status, await resp.json()
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_http_method_name_case_insensitive(tg: FakeTelegram) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{tg.root}/bot{tg.token}/GETME") as resp,
    ):
        body = await resp.json()
    assert body["result"]["username"] == "alertbot_test_bot"
    assert tg.calls[-1][0] == "getMe"


async def test_get_me_wrong_token_invalid_token(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with telegram.Bot("999:WRONG", base_url=tg.base_url):
            pass


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("creator", ChatMemberOwner),
        ("administrator", ChatMemberAdministrator),
        ("member", ChatMemberMember),
        ("restricted", ChatMemberRestricted),
        ("left", ChatMemberLeft),
        ("kicked", ChatMemberBanned),
    ],
)
async def test_get_chat_member_scripted_status_parsed_as_ptb_subclass(
    tg: FakeTelegram, bot: telegram.Bot, status: str, expected: type
) -> None:
    tg.set_chat_member(GROUP, 7, status)
    member = await bot.get_chat_member(GROUP, 7)
    assert type(member) is expected
    assert member.user.id == 7


async def test_get_chat_member_unscripted_user_is_member(bot: telegram.Bot) -> None:
    assert isinstance(await bot.get_chat_member(GROUP, 8), ChatMemberMember)


async def test_get_chat_known_supergroup_parsed(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.add_chat(GROUP, "supergroup", title="Alerts", username="alerts_grp")
    chat = await bot.get_chat("@alerts_grp")
    assert (chat.id, chat.type, chat.title) == (GROUP, "supergroup", "Alerts")


async def test_set_my_commands_recorded_per_scope(tg: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.set_my_commands([("subscribe", "Subscribe this chat")])
    await bot.set_my_commands(
        [("admin", "Admin only")],
        scope=telegram.BotCommandScopeChatAdministrators(GROUP),
    )
    assert tg.commands == {
        "default": [{"command": "subscribe", "description": "Subscribe this chat"}],
        f"chat_administrators:{GROUP}": [{"command": "admin", "description": "Admin only"}],
    }
    assert [c.command for c in await bot.get_my_commands()] == ["subscribe"]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert list(tg.commands) == [f"chat_administrators:{GROUP}"]


async def test_set_my_commands_invalid_name_bad_request(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("Bad-Name", "x")])


async def test_answer_callback_query_and_close_return_true(bot: telegram.Bot) -> None:
    assert await bot.answer_callback_query("123") is True
    assert await bot.log_out() is True
    assert await bot.close() is True


# ---- scripted faults -------------------------------------------------------------------------


async def test_fail_next_retry_after_raises_retry_after_with_seconds(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.fail_next("sendMessage", Fault.retry_after(7))
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(PRIVATE, "x")
    assert retry_seconds(info.value) == 7
    assert tg.sent == []
    assert tg.rate_limited == 1
    await bot.send_message(PRIVATE, "x")  # only the next call was scripted
    assert len(tg.sent) == 1


@pytest.mark.parametrize(
    ("fault", "exc_type", "message"),
    [
        (Fault.blocked_by_user(), Forbidden, "Forbidden: bot was blocked by the user"),
        (Fault.kicked(), Forbidden, "Forbidden: bot was kicked from the supergroup chat"),
        (Fault.chat_not_found(), BadRequest, "Chat not found"),
        (Fault.cant_parse_entities(), BadRequest, "Can't parse entities"),
        (Fault.server_error(500), NetworkError, "Internal Server Error"),
        (Fault.server_error(502), NetworkError, "Bad Gateway"),
    ],
)
async def test_fail_next_error_raises_matching_ptb_exception(
    tg: FakeTelegram, bot: telegram.Bot, fault: Fault, exc_type: type[Exception], message: str
) -> None:
    tg.fail_next("sendMessage", fault)
    with pytest.raises(exc_type) as info:
        await bot.send_message(PRIVATE, "x")
    assert message in str(info.value)
    assert tg.sent == []


async def test_fail_next_migrated_raises_chat_migrated_with_new_id(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.fail_next("sendMessage", Fault.migrated(GROUP))
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-4242, "x")
    assert info.value.new_chat_id == GROUP


async def test_fail_next_chat_filter_and_times_only_hit_that_chat(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    tg.fail_next("sendMessage", Fault.blocked_by_user(), chat_id=PRIVATE, times=2)
    await bot.send_message(PRIVATE + 1, "other chat")
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(PRIVATE, "x")
    clock.advance(1.0)
    await bot.send_message(PRIVATE, "third try")
    assert [m.text for m in tg.sent] == ["other chat", "third try"]


async def test_fail_next_slow_response_times_out_but_is_still_delivered(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.fail_next("sendMessage", Fault.slow(0.5))
    with pytest.raises(TimedOut):
        await bot.send_message(PRIVATE, "late", read_timeout=0.1)
    # Like the real API, a timed-out request may still have been delivered.
    [late] = await tg.wait_for_messages(1, timeout=3)
    assert late.text == "late"


async def test_block_chat_every_send_forbidden_until_reset(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    tg.block_chat(PRIVATE)
    for _ in range(2):
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(PRIVATE, "x")
    tg.reset_chat(PRIVATE)
    await bot.send_message(PRIVATE, "back")
    assert [m.text for m in tg.sent] == ["back"]


async def test_block_chat_group_says_kicked(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.add_chat(-4242, "group")
    tg.block_chat(-4242)
    with pytest.raises(Forbidden, match="kicked from the group chat"):
        await bot.send_message(-4242, "x")


async def test_migrate_chat_old_id_migrated_new_id_works(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.migrate_chat(-4242, GROUP)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-4242, "x")
    message = await bot.send_message(info.value.new_chat_id, "x")
    assert message.chat.type == "supergroup"
    assert [m.chat_id for m in tg.sent] == [GROUP]


async def test_forget_chat_send_and_get_chat_not_found(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    tg.forget_chat(PRIVATE)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(PRIVATE, "x")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(PRIVATE)


# ---- formatted text validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("price < 5", 'Unsupported start tag "" at byte offset 6'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_send_message_bad_html_bad_request_cant_parse_entities(
    tg: FakeTelegram, bot: telegram.Bot, text: str, detail: str
) -> None:
    with pytest.raises(BadRequest) as info:
        await bot.send_message(PRIVATE, text, parse_mode="HTML")
    # PTB capitalises the description, lower-casing the rest: compare case-insensitively.
    assert str(info.value).lower() == f"can't parse entities: {detail}".lower()
    assert tg.sent == []


async def test_send_message_html_4097_visible_chars_too_long(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(PRIVATE, "<b>" + "x" * 4097 + "</b>", parse_mode="HTML")


async def test_send_message_html_tags_do_not_count_towards_4096(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    message = await bot.send_message(PRIVATE, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert len(message.text) == 4096


async def test_send_message_escaped_entities_count_as_visible_chars(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    escaped = "&lt;b&gt;"  # 9 characters on the wire, "<b>" (3) on screen
    message = await bot.send_message(PRIVATE, escaped * 1365 + "x", parse_mode="HTML")
    assert len(message.text) == 4096
    assert message.text.startswith("<b><b>")
    clock.advance(1.0)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(PRIVATE, escaped * 1365 + "xy", parse_mode="HTML")


async def test_send_message_plain_text_markup_chars_not_parsed(bot: telegram.Bot) -> None:
    message = await bot.send_message(PRIVATE, "a <b> & c")
    assert message.text == "a <b> & c"
    assert message.entities == ()


async def test_send_message_empty_visible_text_bad_request(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(PRIVATE, "<b> </b>", parse_mode="HTML")


async def test_send_message_markdown_v2_unescaped_reserved_char_bad_request(
    bot: telegram.Bot, clock: ManualClock
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await bot.send_message(PRIVATE, "*BTC* up 1.5%", parse_mode="MarkdownV2")
    message = await bot.send_message(
        PRIVATE, telegram.helpers.escape_markdown("BTC up 1.5%", version=2),
        parse_mode="MarkdownV2",
    )
    assert message.text == "BTC up 1.5%"


# ---- flood limits ----------------------------------------------------------------------------


async def test_rate_limit_same_chat_within_one_second_second_gets_retry_after(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    await bot.send_message(PRIVATE, "first")
    clock.advance(0.5)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(PRIVATE, "second")
    assert retry_seconds(info.value) == 1
    assert [m.text for m in tg.sent] == ["first"]
    assert tg.rate_limited == 1
    assert tg.rate_limited_by_chat[PRIVATE] == 1
    clock.advance(0.5)  # exactly one second after the first: allowed again
    await bot.send_message(PRIVATE, "third")
    assert [m.text for m in tg.sent] == ["first", "third"]


async def test_rate_limit_group_21st_message_within_minute_gets_retry_after(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    for n in range(MESSAGES_PER_MINUTE_PER_GROUP):
        await bot.send_message(GROUP, f"m{n}")
        clock.advance(1.5)
    # The first message was sent 30 s ago; it leaves the window in 30 s.
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(GROUP, "one too many")
    assert retry_seconds(info.value) == 30
    assert len(tg.sent_to(GROUP)) == MESSAGES_PER_MINUTE_PER_GROUP
    assert tg.rate_limited_by_chat[GROUP] == 1
    clock.advance(30)
    await bot.send_message(GROUP, "fits again")
    assert len(tg.sent_to(GROUP)) == MESSAGES_PER_MINUTE_PER_GROUP + 1


async def test_rate_limit_31_distinct_private_chats_in_one_second_31st_gets_retry_after(
    tg: FakeTelegram, bot: telegram.Bot, clock: ManualClock
) -> None:
    for n in range(MESSAGES_PER_SECOND):
        await bot.send_message(PRIVATE + n, "broadcast")
        clock.advance(0.01)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(PRIVATE + 1000, "broadcast")
    assert retry_seconds(info.value) == 1
    assert len(tg.sent) == MESSAGES_PER_SECOND
    assert tg.sent_to(PRIVATE + 1000) == []


async def test_rate_limit_concurrent_burst_exactly_thirty_accepted(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    results = await asyncio.gather(
        *(bot.send_message(PRIVATE + n, "burst") for n in range(40)), return_exceptions=True
    )
    assert sum(isinstance(r, telegram.Message) for r in results) == MESSAGES_PER_SECOND
    assert sum(isinstance(r, RetryAfter) for r in results) == 10
    assert tg.rate_limited == 10


async def test_rate_limit_disabled_burst_to_one_chat_all_delivered(
    clock: ManualClock,
) -> None:
    async with (
        FakeTelegram(clock=clock.monotonic, enforce_limits=False) as tg,
        telegram.Bot(tg.token, base_url=tg.base_url) as bot,
    ):
        for _ in range(5):
            await bot.send_message(GROUP, "x")
    assert len(tg.sent) == 5
    assert tg.rate_limited == 0


async def test_rate_limit_slack_shortens_windows(clock: ManualClock) -> None:
    async with (
        FakeTelegram(clock=clock.monotonic, limit_slack=0.5) as tg,
        telegram.Bot(tg.token, base_url=tg.base_url) as bot,
    ):
        await bot.send_message(PRIVATE, "a")
        clock.advance(0.6)
        await bot.send_message(PRIVATE, "b")
    assert len(tg.sent) == 2


async def test_wait_for_messages_not_enough_raises_timeout(tg: FakeTelegram) -> None:
    with pytest.raises(TimeoutError, match=r"expected 1 messages within 0\.05s, got 0"):
        await tg.wait_for_messages(1, timeout=0.05)


# ---- webhook mode ----------------------------------------------------------------------------


class HookReceiver:
    """A loopback endpoint recording what the fake POSTs, answering scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[str | None, dict[str, object]]] = []
        self.runner: aiohttp.web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.received.append((request.headers.get(WEBHOOK_SECRET_HEADER), await request.json()))
        status = self.statuses.pop(0) if self.statuses else 200
        return aiohttp.web.json_response({}, status=status)

    async def __aenter__(self) -> HookReceiver:
        app = aiohttp.web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = aiohttp.web.AppRunner(app)
        await self.runner.setup()
        site = aiohttp.web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_webhook_set_delivers_updates_with_secret_retrying_non_2xx(
        tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.webhook_retry_delay = 0.01
    async with HookReceiver([500, 403]) as hook:
        await bot.set_webhook(hook.url, secret_token="s3cret_-X", allowed_updates=["message"])
        first = tg.inject_message(PRIVATE, "/start")
        tg.inject_my_chat_member(GROUP, old_status="left", new_status="member")  # not allowed
        second = tg.inject_message(PRIVATE, "/help")
        await tg.wait_until(lambda: len(hook.received) == 4, timeout=10)
        info = await bot.get_webhook_info()
    assert [secret for secret, _ in hook.received] == ["s3cret_-X"] * 4
    ids = [body["update_id"] for _, body in hook.received]
    assert ids == [first["update_id"]] * 3 + [second["update_id"]]
    assert [d.status for d in tg.webhook_deliveries] == [500, 403, 200, 200]
    assert (info.url, info.pending_update_count) == (hook.url, 0)
    assert info.last_error_message == "Wrong response from the webhook: 403"


async def test_webhook_set_get_updates_conflicts_until_deleted(
        tg: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unused")
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_webhook_secret_token_with_bad_characters_is_400(
        tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="unallowed characters"):
        await bot.set_webhook("http://127.0.0.1:9/unused", secret_token="has space")
    assert tg.webhook_url == ""
