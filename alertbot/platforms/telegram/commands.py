"""Telegram binding of the chat commands, run with python-telegram-bot inside our event loop.

The PTB Application runs with the manual lifecycle (initialize, start … stop, shutdown) so it
shares the main job's loop and shutdown. By default it long-polls getUpdates (PTB calls
deleteWebhook first). In webhook mode it registers the webhook with setWebhook instead and
never polls: the HTTP server hands it each update (`parse`, `deliver`) and the Application's
update queue feeds the same handlers. Each command becomes a `Caller` and goes through the
platform-neutral `CommandCore`; replies are HTML with everything escaped. Membership updates
pause a chat the bot was removed from and greet a chat it was added to; a group upgraded to a
supergroup has its subscriptions re-keyed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
    CallbackQuery,
    Chat,
    ChatMember,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from alertbot.domain.commands import COMMAND_NAMES, COMMANDS, Reply, ReplyKind
from alertbot.domain.flood import FloodGuard, Verdict, slow_down_text
from alertbot.domain.models import Destination
from alertbot.platforms.telegram.buttons import callback_text, inline_keyboard
from alertbot.platforms.telegram.client import (
    api_base_url,
    api_file_url,
    bot_api_request,
    chat_ref,
    send_html,
    send_photo_html,
)
from alertbot.platforms.telegram.errors import UNAUTHORIZED_REASON, translate_error
from alertbot.platforms.telegram.format import MAX_CAPTION, Line, html_chunks, reply_lines
from alertbot.platforms.telegram.limits import pacing_scopes, telegram_limits
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.store import Destinations
from alertbot.services.buttons import FORGED, ButtonAnswer, ButtonCore
from alertbot.services.commands import Caller, CommandCore
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = ("message", "channel_post", "my_chat_member", "callback_query")
REPLY_RATE_LIMIT_WAIT = 10.0
"""Longest wait a command reply takes once when Telegram asks to slow down."""
"""Everything the bot reacts to; edited messages are left alone so an edit never re-runs."""
MODERATOR_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
GONE_STATUSES = frozenset({ChatMemberStatus.LEFT, ChatMemberStatus.BANNED})
PRESENT_STATUSES = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR,
                              ChatMemberStatus.RESTRICTED})
POLL_ERROR_WINDOW = 90.0
"""Seconds a polling error keeps health failing (PTB retries at least every 30 s)."""
MAX_PENDING_UPDATES = 256
"""Updates accepted for processing at once (most wait for their sender's earlier ones)."""
START_RETRY_MAX = 60.0
INVALID_TOKEN_RETRY = 300.0
SORRY = "Something went wrong on our side; please try again in a minute."
WELCOME = ("Hi! I post changes in Token Metrics trading signals and grades. "
           "Admins: /subscribe BTC (or /subscribe all) to get alerts here. /help lists every "
           "command.")

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


@dataclass(frozen=True, slots=True)
class WebhookMode:
    """Receive updates by webhook: the public URL and the secret_token Telegram echoes."""

    url: str
    secret: str

    def __repr__(self) -> str:
        return f"WebhookMode(url={self.url!r}, secret=***)"


def destination_of(message: Message) -> Destination:
    """Where a message was posted: the chat, or its forum topic."""
    thread = ""
    if message.is_topic_message and message.message_thread_id:
        thread = str(message.message_thread_id)
    return Destination(PLATFORM, str(message.chat.id), thread)


def parse_command(message: Message, bot_username: str) -> tuple[str, str] | None:
    """(command, argument text) of a message that starts with a command for this bot."""
    text = message.text or ""
    entity = next((e for e in message.entities
                   if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None)
    if entity is None:
        return None
    command = message.parse_entity(entity)
    name, _, addressee = command[1:].partition("@")
    if addressee and addressee.lower() != bot_username.lower():
        return None  # meant for another bot in the same group
    # Commands are ASCII, so the entity's UTF-16 length is also its length in characters.
    return name.lower(), text[len(command):].strip()


def bot_commands(*, moderator: bool) -> list[BotCommand]:
    """The command menu: everything for moderators, read-only commands for everyone else."""
    return [BotCommand(c.name, c.description) for c in COMMANDS if moderator or not c.moderator]


Gate = Callable[[Update], Verdict]
Warn = Callable[[Update], Coroutine[Any, Any, None]]
LockKey = tuple[int, int | None]


def _allow_all(update: Update) -> Verdict:
    return Verdict.ALLOW


async def _no_warning(update: Update) -> None:
    return None


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Updates of different senders run concurrently; one sender's updates in a chat in order.

    A reply waiting for a busy group's pacing must not hold up every other chat, and one
    member's burst must not hold up a moderator in the same chat, yet one person's commands
    (subscribe, then unsubscribe) and the chat's membership changes (removed, then added
    again) must not overtake each other. Commands over the sender's flood budget are dropped
    (or answered once with "slow down") before they queue or take a concurrency slot.
    """

    def __init__(self, max_concurrent_updates: int, *, gate: Gate = _allow_all,
                 warn: Warn = _no_warning) -> None:
        # PTB's own slots only bound how many updates wait; handlers run under `_running`,
        # taken after the sender's lock, so updates queued behind their sender's earlier
        # ones hold no slot that other senders need.
        super().__init__(max(max_concurrent_updates, MAX_PENDING_UPDATES))
        self._running = asyncio.Semaphore(max_concurrent_updates)
        self.gate = gate
        self.warn = warn
        self._locks: dict[LockKey, asyncio.Lock] = {}
        self._users: Counter[LockKey] = Counter()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Gate the update, wait for its sender's earlier updates and a slot, then run it."""
        if not isinstance(update, Update) or update.effective_chat is None:
            async with self._running:
                await coroutine
            return
        verdict = self.gate(update)
        if verdict is Verdict.DROP and update.callback_query is not None:
            verdict = Verdict.WARN  # a press is always answered: the client spins until then
        if verdict is not Verdict.ALLOW:
            if isinstance(coroutine, Coroutine):
                coroutine.close()  # never run: it must not warn about not being awaited
            if verdict is Verdict.DROP:
                return
        key = _lock_key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock, self._running:
                # Created here, so a warning cancelled while it waits is never left unawaited.
                await (coroutine if verdict is Verdict.ALLOW else self.warn(update))
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to allocate."""


    async def shutdown(self) -> None:
        """Nothing to release."""


def _lock_key(update: Update) -> LockKey:
    chat = update.effective_chat
    assert chat is not None
    if update.callback_query is not None:
        return (chat.id, update.callback_query.from_user.id)  # a presser's presses in order
    message = update.message or update.channel_post
    if message is None:
        return (chat.id, None)  # membership changes: ordered chat-wide
    sender = message.sender_chat or message.from_user
    return (chat.id, sender.id if sender is not None else None)


class TelegramCommands:
    """Runs the PTB Application: commands, membership changes and group migrations."""

    def __init__(self, core: CommandCore, store: Destinations, clock: Clock, *, token: str,
                 api_root: str, pacer: Pacer | None = None,
                 on_rekey: Callable[[], None] = lambda: None, poll_timeout: float = 10.0,
                 concurrency: int = 8, flood: FloodGuard | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 buttons: ButtonCore | None = None,
                 webhook: WebhookMode | None = None) -> None:
        self._core = core
        self._buttons = buttons
        self._webhook = webhook
        self._flood = flood or FloodGuard()
        self._monotonic = monotonic
        self._store = store
        self._clock = clock
        self._pacer = pacer
        self._on_rekey = on_rekey
        self._poll_timeout = poll_timeout
        # No rate limiter: replies are paced by the shared Pacer.
        self.application: AnyApplication = (
            Application.builder()
            .token(token)
            .base_url(api_base_url(api_root))
            .base_file_url(api_file_url(api_root))
            # PTB's own defaults (256 and 1 connections), with the shared TLS context.
            .request(bot_api_request(256))
            .get_updates_request(bot_api_request(1))
            .concurrent_updates(PerChatUpdateProcessor(concurrency, gate=self._gate,
                                                       warn=self._slow_down))
            .build()
        )
        app = self.application
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate))
        app.add_handler(MessageHandler(
            filters.COMMAND & (filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST),
            self._on_command))
        app.add_handler(ChatMemberHandler(self._on_membership,
                                          ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_error_handler(self._on_error)
        self._status: str | None = "not started yet"
        self._poll_error: tuple[float, str] | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def health(self) -> str | None:
        """None while connected and polling, else why not."""
        if self._status is not None:
            return self._status
        if self._poll_error is not None:
            at, what = self._poll_error
            if time.monotonic() - at < POLL_ERROR_WINDOW:
                return f"polling Telegram failed recently ({what})"
        return None

    async def start(self) -> None:
        """Connect (getMe), publish the command menus, then long-poll or set the webhook."""
        app = self.application
        webhook = self._webhook
        try:
            await app.initialize()
            await self._publish_commands()
            await app.start()
            if webhook is None:
                assert app.updater is not None, "the builder always creates an updater"
                await app.updater.start_polling(
                    timeout=timedelta(seconds=self._poll_timeout),
                    allowed_updates=list(ALLOWED_UPDATES), error_callback=self._on_poll_error)
            else:
                # Repeated by every start and every replica: setWebhook is idempotent, and
                # updates queued meanwhile are kept (Telegram holds them up to 24 hours).
                await app.bot.set_webhook(
                    url=webhook.url, secret_token=webhook.secret,
                    allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False)
        except BaseException:
            await self.stop()
            raise
        self._started = True
        self._status = None
        how = "polling" if webhook is None else "receiving updates by webhook"
        log.info("Telegram: %s as @%s", how, app.bot.username)

    # ------------------------------------------------------------------ webhook updates

    def ready(self) -> bool:
        """Whether webhook updates can be handled (the Application is running)."""
        return self.application.running

    def parse(self, data: dict[str, Any]) -> object:
        """The PTB Update of a webhook body; ValueError for something that is not one."""
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:
            raise ValueError(type(exc).__name__) from None
        return update

    async def deliver(self, update: object) -> None:
        """Queue an update for the handlers; they run as for a polled update."""
        await self.application.update_queue.put(update)

    async def stop(self) -> None:
        """Stop polling and release the connections (safe to repeat).

        A webhook stays registered: Telegram keeps updates for the other replicas, or for
        this one when it is back.
        """
        app = self.application
        self._started = False
        self._status = "stopped"
        with suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
        with suppress(Exception):
            if app.running:
                await app.stop()
        with suppress(Exception):
            await app.shutdown()
        with suppress(Exception):
            # After a failed initialize (a rejected token) the Application counts as never
            # started and its shutdown skips the bot's HTTP clients; this closes them.
            await app.bot.shutdown()

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: start (retrying with backoff), serve until `stop`, then shut down."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self.start()
                break
            except InvalidToken:
                self._status = UNAUTHORIZED_REASON
                log.error("%s; retrying in %.0fs", self._status, INVALID_TOKEN_RETRY)
                delay = INVALID_TOKEN_RETRY
            except BadRequest as exc:
                # E.g. setWebhook refused: "bad webhook: Failed to resolve host".
                self._status = f"Telegram refused a start-up request: {exc.message}"
                log.error("%s; retrying in %.0fs", self._status, delay)
            except TelegramError as exc:
                self._status = f"cannot reach Telegram ({type(exc).__name__})"
                log.warning("%s; retrying in %.0fs", self._status, delay)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, START_RETRY_MAX)
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _on_poll_error(self, exc: TelegramError) -> None:
        self._poll_error = (time.monotonic(), type(exc).__name__)
        log.warning("Telegram polling failed (%s); python-telegram-bot retries",
                    type(exc).__name__)

    async def _publish_commands(self) -> None:
        bot = self.application.bot
        everyone, moderators = bot_commands(moderator=False), bot_commands(moderator=True)
        try:
            await bot.set_my_commands(everyone, scope=BotCommandScopeDefault())
            # In a private chat the user owns the chat, so they get the full menu too.
            await bot.set_my_commands(moderators, scope=BotCommandScopeAllPrivateChats())
            await bot.set_my_commands(moderators, scope=BotCommandScopeAllChatAdministrators())
        except TelegramError as exc:
            # Menus are a convenience; commands work without them.
            log.warning("could not publish the Telegram command menus: %s",
                        translate_error(exc).reason)

    # ------------------------------------------------------------------ commands

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        parsed = parse_command(message, self.application.bot.username)
        if parsed is None:
            return
        name, args = parsed
        private = message.chat.type == ChatType.PRIVATE
        if name not in COMMAND_NAMES and not private:
            return  # another bot's command in a shared group
        caller = self._caller(message)
        try:
            reply = await self._core.handle(caller, name, args)
        except Exception:
            reraise_if_cancelling()
            log.exception("/%s in %s failed", name, caller.destination)
            reply = Reply((SORRY,), kind=ReplyKind.INTERNAL)
        if reply.image is not None:
            await self._send_photo(caller.destination, reply, reply_to=message)
            return
        await self._send(caller.destination, reply_lines(reply), reply_to=message)

    async def _send_photo(self, destination: Destination, reply: Reply, *,
                          reply_to: Message) -> None:
        """A chart as a photo with its caption; as text when the photo cannot be sent."""
        assert reply.image is not None
        quote = None
        if reply_to.chat.type != ChatType.PRIVATE:
            quote = ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
        # The caption is one line within the limit (domain/charts.py); the cut is a safeguard.
        captions = html_chunks(reply_lines(reply), MAX_CAPTION)
        if self._pacer is not None:
            await self._pacer.acquire(telegram_limits(destination), pacing_scopes(destination))
        try:
            await send_photo_html(self.application.bot, destination, reply.image.png,
                                  reply.image.filename, captions[0] if captions else "",
                                  reply_parameters=quote)
        except TelegramError as exc:
            error = translate_error(exc)
            log.warning("could not send a chart in %s: %s", destination, error.reason)
            if error.rate_limited and self._pacer is not None:
                self._pacer.pause(str(destination), error.retry_after or 1.0)
                return
            await self._send(destination, reply_lines(reply), reply_to=reply_to)

    def _sender_key(self, update: Update) -> str | None:
        """The flood-budget key of a command or button press, or None for anything else."""
        if update.callback_query is not None:
            # Why and Chart post in the chat: presses share the presser's command budget.
            return f"{PLATFORM}:{update.callback_query.from_user.id}"
        message = update.message or update.channel_post
        if message is None or parse_command(message, self.application.bot.username) is None:
            return None
        sender = message.sender_chat or message.from_user
        return f"{PLATFORM}:{sender.id}" if sender is not None else None

    def _gate(self, update: Update) -> Verdict:
        key = self._sender_key(update)
        if key is None:
            return Verdict.ALLOW
        verdict = self._flood.check(key, self._monotonic())
        if verdict is Verdict.WARN:
            log.info("%s is over the command budget; ignoring its commands for a while", key)
        return verdict

    async def _slow_down(self, update: Update) -> None:
        message = update.effective_message
        key = self._sender_key(update)
        if key is None:
            return
        text = slow_down_text(self._flood.retry_in(key, self._monotonic()))
        if update.callback_query is not None:
            await self._answer(update.callback_query, text, alert=True)  # only the presser
            return
        if message is None:
            return
        await self._send(destination_of(message), [Line(text)], reply_to=message)

    def _caller(self, message: Message) -> Caller:
        chat = message.chat
        destination = destination_of(message)
        private = chat.type == ChatType.PRIVATE
        sender_chat = message.sender_chat
        if sender_chat is not None:
            # An anonymous group admin (or a channel post) is sent as the chat itself; a post
            # on behalf of some other channel is nobody's admin here.
            return Caller(destination, str(sender_chat.id), sender_chat.title or "",
                          is_private=private, is_moderator=sender_chat.id == chat.id)
        user = message.from_user
        if user is None:
            return Caller(destination, "unknown", is_private=private, is_moderator=False)
        name = f"@{user.username}" if user.username else user.full_name

        async def is_admin() -> bool:
            return await self._is_admin(chat, user.id)

        return Caller(destination, str(user.id), name, is_private=private,
                      is_moderator=is_admin)

    async def _is_admin(self, chat: Chat, user_id: int) -> bool:
        try:
            member: ChatMember = await self.application.bot.get_chat_member(chat.id, user_id)
        except TelegramError as exc:
            log.warning("getChatMember for %s in %s failed: %s", user_id, chat.id,
                        translate_error(exc).reason)
            return False
        return member.status in MODERATOR_STATUSES

    async def _send(self, destination: Destination, lines: list[Line], *,
                    reply_to: Message | None = None) -> None:
        """Send a reply or notice, paced with the alerts; failures are logged, not raised."""
        bot = self.application.bot
        quote = None
        if reply_to is not None and reply_to.chat.type != ChatType.PRIVATE:
            quote = ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
        for text in html_chunks(lines):
            for attempt in range(2):
                if self._pacer is not None:
                    await self._pacer.acquire(telegram_limits(destination),
                                              pacing_scopes(destination))
                try:
                    await send_html(bot, destination, text, reply_parameters=quote)
                except TelegramError as exc:
                    error = translate_error(exc)
                    wait = error.retry_after or 1.0
                    if error.rate_limited and self._pacer is not None:
                        self._pacer.pause(str(destination), wait)
                        if not attempt and wait <= REPLY_RATE_LIMIT_WAIT:
                            # Someone else used the chat's budget just now (a CLI test, an
                            # alert from another process): the asker still gets the answer.
                            continue
                    log.warning("could not answer in %s: %s", destination, error.reason)
                    return
                break
            quote = None

    # ------------------------------------------------------------------ buttons on alerts

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press of an alert's button: check it, answer it (always, once), then act."""
        query = update.callback_query
        if query is None:
            return
        message = query.message
        if self._buttons is None or not isinstance(message, Message) or not query.data:
            # An old message (inaccessible), or buttons this bot does not handle.
            await self._answer(query, FORGED, alert=True)
            return
        caller = self._presser(query, message)
        answer = await self._buttons.press(caller, query.data)
        # Answered before anything slower: the presser sees a spinner until then.
        await self._answer(query, answer.notice, alert=answer.refused)
        if answer.buttons is not None:
            await self._edit_buttons(caller.destination, message, answer)
        if answer.reply is not None and answer.reply.image is not None:
            await self._send_photo(caller.destination, answer.reply, reply_to=message)
        elif answer.reply is not None:
            await self._send(caller.destination, reply_lines(answer.reply), reply_to=message)

    def _presser(self, query: CallbackQuery, message: Message) -> Caller:
        chat = message.chat
        user = query.from_user
        name = f"@{user.username}" if user.username else user.full_name

        async def is_admin() -> bool:
            return await self._is_admin(chat, user.id)

        return Caller(destination_of(message), str(user.id), name,
                      is_private=chat.type == ChatType.PRIVATE, is_moderator=is_admin)

    async def _answer(self, query: CallbackQuery, text: str, *, alert: bool) -> None:
        try:
            await query.answer(callback_text(text) or None, show_alert=alert and bool(text))
        except TelegramError as exc:
            log.warning("could not answer a button press: %s", translate_error(exc).reason)

    async def _edit_buttons(self, destination: Destination, message: Message,
                            answer: ButtonAnswer) -> None:
        if self._pacer is not None:
            await self._pacer.acquire(telegram_limits(destination), pacing_scopes(destination))
        try:
            await self.application.bot.edit_message_reply_markup(
                chat_id=chat_ref(destination.chat_id), message_id=message.message_id,
                reply_markup=inline_keyboard(answer.buttons or ()))
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("could not update the buttons in %s: %s", destination,
                            translate_error(exc).reason)
        except TelegramError as exc:
            log.warning("could not update the buttons in %s: %s", destination,
                        translate_error(exc).reason)

    # ------------------------------------------------------------------ membership, migration

    async def _on_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        chat = change.chat
        old, new = change.old_chat_member.status, change.new_chat_member.status
        if new in GONE_STATUSES and old not in GONE_STATUSES:
            reason = _removal_reason(chat, new)
            paused = await self._pause_chat(chat.id, reason)
            log.info("Telegram chat %s: %s; paused %d destinations", chat.id, reason, paused)
        elif old in GONE_STATUSES and new in PRESENT_STATUSES and chat.type in (
                ChatType.GROUP, ChatType.SUPERGROUP):
            lines = [Line(WELCOME)]
            if await self._paused_destinations(chat.id):
                lines.append(Line("Alerts from before I was removed are paused; an admin can "
                                  "send /subscribe again to resume them."))
            await self._send(Destination(PLATFORM, str(chat.id)), lines)

    async def _destinations_of(self, chat_id: int) -> list[Destination]:
        wanted = str(chat_id)
        return [info.destination
                for info in await self._store.destinations(platform=PLATFORM, chat_id=wanted)]

    async def _paused_destinations(self, chat_id: int) -> list[Destination]:
        wanted = str(chat_id)
        return [info.destination
                for info in await self._store.destinations(platform=PLATFORM, chat_id=wanted)
                if info.paused_reason]

    async def _pause_chat(self, chat_id: int, reason: str) -> int:
        paused = 0
        now = self._clock.now()
        for destination in await self._destinations_of(chat_id):
            await self._store.pause(destination, reason, now)
            paused += 1
        return paused

    async def _on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id:
            old, new = message.chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id:
            old, new = message.migrate_from_chat_id, message.chat.id
        else:
            return
        now = self._clock.now()
        moved = 0
        # Both the old group and the new supergroup announce the move; the second finds
        # nothing left under the old id.
        for destination in await self._destinations_of(old):
            target = Destination(PLATFORM, str(new), destination.thread_id)
            moved += await self._store.rekey(destination, target, now)
            log.info("Telegram group %s became supergroup %s; moved %s", old, new, destination)
        if moved:
            self._on_rekey()

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram update handling failed", exc_info=context.error)


def _removal_reason(chat: Chat, status: str) -> str:
    if chat.type == ChatType.PRIVATE:
        return "the user blocked the bot"
    if status == ChatMemberStatus.BANNED:
        return "the bot was banned from the chat"
    return "the bot was removed from the chat"
