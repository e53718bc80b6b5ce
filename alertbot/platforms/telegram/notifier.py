"""Telegram: alerts as HTML messages through python-telegram-bot's Bot.

Messages are rendered and split by `format`, sent by `client.send_html`, paced under the
limits of `limits`, and every python-telegram-bot error becomes a DeliveryError through
`errors`.

Delivery is at least once. The Bot API has no idempotency key, so a message can repeat:
- a send that timed out (or lost its connection) after Telegram accepted it is retried and
  posted again;
- a send in flight when the process is killed (SIGKILL, power loss) is sent again after
  the restart; a clean stop lets it finish instead.
A single alert carries the Chart, Why and Mute buttons (an inline keyboard on its last part),
built at send time from the outbox row's change and key; digests carry none.
A message longer than 4096 characters goes out in parts. The parts already sent are
remembered per outbox key, so when a later part fails the retry sends only the rest; that
memory is in the process, so only a crash between two parts repeats the earlier ones.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections import OrderedDict
from collections.abc import Sequence

import telegram
from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError
from telegram.request import HTTPXRequest

from alertbot.domain.models import ChartImage, Destination, Message
from alertbot.observability.logs import Redactor
from alertbot.platforms.telegram.buttons import inline_keyboard
from alertbot.platforms.telegram.client import (
    api_base_url,
    api_file_url,
    bot_api_request,
    send_html,
    send_photo_html,
)
from alertbot.platforms.telegram.errors import translate_error
from alertbot.platforms.telegram.format import MAX_CAPTION, alert_lines, html_chunks
from alertbot.platforms.telegram.limits import pacing_scopes, telegram_limits
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.buttons import ButtonCore
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)

SENT_PARTS_KEPT = 4096
"""Partly sent messages remembered for their retry; the oldest are forgotten first."""


class TelegramNotifier:
    """Sends alerts to Telegram chats, groups, channels and forum topics."""

    platform = "telegram"

    def __init__(self, bot: telegram.Bot, *, pacer: Pacer | None = None,
                 redactor: Redactor | None = None,
                 owned: Sequence[HTTPXRequest] = (), buttons: ButtonCore | None = None) -> None:
        self._bot = bot
        self._buttons = buttons
        self._pacer = pacer
        self._redactor = redactor or Redactor([bot.token])
        self._owned = tuple(owned)
        # Outbox key -> (digest of a part's text -> its message id) for messages whose
        # later parts failed: the retry must not post the earlier parts a second time.
        self._sent_parts: OrderedDict[str, dict[str, str]] = OrderedDict()

    @classmethod
    def connect(cls, token: str, api_root: str, *, pacer: Pacer | None = None,
                redactor: Redactor | None = None, pool_size: int = 32,
                buttons: ButtonCore | None = None) -> TelegramNotifier:
        """A notifier with its own Bot and connection pool for `{api_root}/bot<token>`."""
        # Timeouts suit one sendMessage per request; the dispatcher bounds the whole send.
        request = bot_api_request(pool_size, read_timeout=10.0, write_timeout=10.0,
                                  connect_timeout=5.0, pool_timeout=10.0)
        updates = bot_api_request(1)
        bot = telegram.Bot(token, base_url=api_base_url(api_root),
                           base_file_url=api_file_url(api_root), request=request,
                           get_updates_request=updates)
        return cls(bot, pacer=pacer, redactor=redactor, owned=(request, updates),
                   buttons=buttons)

    @property
    def bot(self) -> telegram.Bot:
        """The python-telegram-bot client this notifier sends with."""
        return self._bot

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        """Overall, per chat and (for groups and channels) per group."""
        return telegram_limits(destination)

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        """Send one alert or digest (several messages if it is longer than 4096 characters)."""
        destination = target.destination
        thread = destination.thread_id.strip()
        if thread and not thread.isdigit():
            raise DeliveryError(f"invalid Telegram forum topic id {thread[:20]!r}",
                                destination_gone=True)
        markup = await self._keyboard(destination, message, key)
        if message.image is not None:
            photo = await self._send_photo(destination, message, message.image, key, silent,
                                           markup)
            if photo is not None:
                return photo
        chunks = html_chunks(alert_lines(message))
        done = self._sent_parts.get(key, {})
        ids: list[str] = []
        posted = 0
        for index, text in enumerate(chunks):
            part = hashlib.sha256(text.encode()).hexdigest()
            if part in done:
                ids.append(done[part])
                continue
            if posted and self._pacer is not None:
                # The dispatcher paced the first part; later parts count against the limits too.
                await self._pacer.acquire(self.limits(destination), pacing_scopes(destination))
            try:
                sent = await send_html(self._bot, destination, text, silent=silent,
                                       reply_markup=markup if index == len(chunks) - 1
                                       else None)
            except TelegramError as exc:
                self._remember(key, done)
                error = translate_error(exc, self._redactor)
                if isinstance(exc, BadRequest) and "parse entities" in exc.message.lower():
                    log.error("Telegram could not parse message %s (part %d of %d) for %s: %s",
                              key, index + 1, len(chunks), destination, error.reason)
                raise error from None
            except BaseException:
                # Cancelled or timed out by the dispatcher: keep what went out for the retry.
                self._remember(key, done)
                raise
            posted += 1
            done = {**done, part: str(sent.message_id)}
            ids.append(str(sent.message_id))
        if message.scheduled and message.image is not None:
            # A scheduled digest is too long for a caption: its chart follows as the last part.
            chart = await self._send_chart_part(destination, message.image, key, silent, done)
            if chart is not None:
                ids.append(chart)
        self._sent_parts.pop(key, None)
        return Delivered(message_id=",".join(ids))

    async def _send_chart_part(self, destination: Destination, image: ChartImage, key: str,
                               silent: bool, done: dict[str, str]) -> str | None:
        """The chart after a digest's text, once per message key; None when it is refused."""
        part = hashlib.sha256(b"chart:" + image.png).hexdigest()
        if part in done:
            return done[part]
        if self._pacer is not None:
            await self._pacer.acquire(self.limits(destination), pacing_scopes(destination))
        try:
            sent = await send_photo_html(self._bot, destination, image.png, image.filename,
                                         html.escape(image.caption)[:MAX_CAPTION],
                                         silent=silent)
        except BadRequest as exc:
            error = translate_error(exc, self._redactor)
            if error.destination_gone or error.rekey_to or error.retryable:
                self._remember(key, done)
                raise error from None
            log.warning("Telegram refused the chart of digest %s for %s (%s); text only",
                        key, destination, error.reason)
            return None
        except TelegramError as exc:
            self._remember(key, done)
            raise translate_error(exc, self._redactor) from None
        except BaseException:
            self._remember(key, done)
            raise
        return str(sent.message_id)

    async def _keyboard(self, destination: Destination, message: Message,
                        key: str) -> InlineKeyboardMarkup | None:
        """The alert's buttons; an alert goes out without them rather than not at all."""
        if self._buttons is None:
            return None
        try:
            return inline_keyboard(await self._buttons.keyboard(destination, message, key))
        except Exception:
            reraise_if_cancelling()
            log.warning("alert %s to %s goes without buttons: they could not be made", key,
                        destination, exc_info=True)
            return None

    async def _send_photo(self, destination: Destination, message: Message, image: ChartImage,
                          key: str, silent: bool,
                          markup: InlineKeyboardMarkup | None) -> Delivered | None:
        """The alert as a photo with the alert as caption; None: send it as text instead."""
        captions = html_chunks(alert_lines(message), MAX_CAPTION)
        if len(captions) != 1:
            return None  # too long for a caption: the text alone carries the alert
        try:
            sent = await send_photo_html(self._bot, destination, image.png, image.filename,
                                         captions[0], silent=silent, reply_markup=markup)
        except BadRequest as exc:
            error = translate_error(exc, self._redactor)
            if error.destination_gone or error.rekey_to or error.retryable:
                raise error from None
            # The picture was refused (size, format): the alert still goes out, as text.
            log.warning("Telegram refused the chart of %s for %s (%s); sending text",
                        key, destination, error.reason)
            return None
        except TelegramError as exc:
            raise translate_error(exc, self._redactor) from None
        return Delivered(message_id=str(sent.message_id))

    def _remember(self, key: str, done: dict[str, str]) -> None:
        if not done:
            return
        self._sent_parts[key] = done
        self._sent_parts.move_to_end(key)
        while len(self._sent_parts) > SENT_PARTS_KEPT:
            self._sent_parts.popitem(last=False)

    async def check(self) -> str:
        """getMe: who the token belongs to; raises DeliveryError when it fails."""
        try:
            me = await self._bot.get_me()
        except TelegramError as exc:
            raise translate_error(exc, self._redactor) from None
        return f"connected as @{me.username}"

    async def check_updates(self, webhook_url: str | None) -> str:
        """getWebhookInfo, described for `alertbot check` against the configured update mode.

        A mismatch is reported, not raised: `alertbot run` sets or deletes the webhook itself.
        """
        try:
            info = await self._bot.get_webhook_info()
        except TelegramError as exc:
            raise translate_error(exc, self._redactor) from None
        registered = info.url or ""
        if webhook_url is None:
            if not registered:
                return "updates by long polling"
            return (f"updates by long polling (a webhook to {registered} is registered; "
                    f"alertbot run deletes it)")
        parts = [f"updates by webhook {webhook_url}"]
        if registered != webhook_url:
            parts.append("not registered yet, alertbot run registers it" if not registered
                         else f"Telegram has {registered}, alertbot run replaces it")
        waiting = info.pending_update_count
        if waiting:
            parts.append(f"{waiting} update{'s' if waiting != 1 else ''} waiting at Telegram")
        if info.last_error_message:
            parts.append(f"Telegram's last delivery error: {info.last_error_message}")
        return "; ".join(parts)

    async def start(self) -> None:
        """Open the HTTP client and check the token once, before the first paced send."""
        # Done lazily, the first send would leave tens of milliseconds after its pacing slot.
        try:
            await self._bot.initialize()
        except TelegramError as exc:
            log.warning("Telegram not reachable yet: %s",
                        translate_error(exc, self._redactor).reason)

    async def close(self) -> None:
        """Close the HTTP connections this notifier created (a Bot passed in is the caller's)."""
        # Bot.shutdown() skips requests it never initialized, so they are closed here.
        for request in self._owned:
            await request.shutdown()
