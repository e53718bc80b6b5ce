"""Telegram: alerts as HTML messages through python-telegram-bot's Bot.

Messages are rendered and split by `format`, sent by `client.send_html`, paced under the
limits of `limits`, and every python-telegram-bot error becomes a DeliveryError through
`errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import telegram
from telegram.error import BadRequest, TelegramError
from telegram.request import HTTPXRequest

from alertbot.domain.models import Destination, Message
from alertbot.observability.logs import Redactor
from alertbot.platforms.telegram.client import api_base_url, api_file_url, send_html
from alertbot.platforms.telegram.errors import translate_error
from alertbot.platforms.telegram.format import alert_lines, html_chunks
from alertbot.platforms.telegram.limits import pacing_scopes, telegram_limits
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)


class TelegramNotifier:
    """Sends alerts to Telegram chats, groups, channels and forum topics."""

    platform = "telegram"

    def __init__(self, bot: telegram.Bot, *, pacer: Pacer | None = None,
                 redactor: Redactor | None = None,
                 owned: Sequence[HTTPXRequest] = ()) -> None:
        self._bot = bot
        self._pacer = pacer
        self._redactor = redactor or Redactor([bot.token])
        self._owned = tuple(owned)

    @classmethod
    def connect(cls, token: str, api_root: str, *, pacer: Pacer | None = None,
                redactor: Redactor | None = None, pool_size: int = 32) -> TelegramNotifier:
        """A notifier with its own Bot and connection pool for `{api_root}/bot<token>`."""
        # Timeouts suit one sendMessage per request; the dispatcher bounds the whole send.
        request = HTTPXRequest(connection_pool_size=pool_size, read_timeout=10.0,
                               write_timeout=10.0, connect_timeout=5.0, pool_timeout=10.0)
        updates = HTTPXRequest(connection_pool_size=1)
        bot = telegram.Bot(token, base_url=api_base_url(api_root),
                           base_file_url=api_file_url(api_root), request=request,
                           get_updates_request=updates)
        return cls(bot, pacer=pacer, redactor=redactor, owned=(request, updates))

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
        chunks = html_chunks(alert_lines(message))
        ids: list[str] = []
        for index, text in enumerate(chunks):
            if index and self._pacer is not None:
                # The dispatcher paced the first part; later parts count against the limits too.
                await self._pacer.acquire(self.limits(destination), pacing_scopes(destination))
            try:
                sent = await send_html(self._bot, destination, text, silent=silent)
            except TelegramError as exc:
                error = translate_error(exc, self._redactor)
                if isinstance(exc, BadRequest) and "parse entities" in exc.message.lower():
                    log.error("Telegram could not parse message %s (part %d of %d) for %s: %s",
                              key, index + 1, len(chunks), destination, error.reason)
                raise error from None
            ids.append(str(sent.message_id))
        return Delivered(message_id=",".join(ids))

    async def check(self) -> str:
        """getMe: who the token belongs to; raises DeliveryError when it fails."""
        try:
            me = await self._bot.get_me()
        except TelegramError as exc:
            raise translate_error(exc, self._redactor) from None
        return f"connected as @{me.username}"

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
