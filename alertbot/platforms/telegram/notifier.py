"""Telegram: alerts as HTML messages through python-telegram-bot's Bot.

Every string that comes from outside (token names, symbols, labels, user input echoed in
replies) is HTML-escaped, so a token called `<b>&@everyone` shows exactly that. Text over
Telegram's 4096-character limit is split on line boundaries; each line carries its own tags,
so no split can break one. Every python-telegram-bot error becomes a DeliveryError here.

The bot is never given PTB's AIORateLimiter: the dispatcher's Pacer already keeps sends under
Telegram's limits, and the limiter's own retries would resend a message the dispatcher is
about to retry too.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import telegram
from telegram import LinkPreviewOptions
from telegram.constants import MessageLimit, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from alertbot.domain.models import Destination, Message
from alertbot.domain.render import ARROW
from alertbot.observability.logs import Redactor
from alertbot.platforms.telegram.limits import (
    TELEGRAM_OVERALL,
    TELEGRAM_PER_CHAT,
    TELEGRAM_PER_GROUP,
)
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
"""sendMessage text: 1-4096 characters after entities parsing (Bot API)."""
OVERALL_BUCKET = "telegram"
LINK_TEXT = "Open on Token Metrics"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
INVALID_TOKEN_WAIT = 60.0
"""Seconds every Telegram send waits after the token was rejected (an operator must fix it)."""

# 400 descriptions that mean the chat (or topic) will not take our messages until someone
# acts; observed wording, not a documented contract (reference/platforms.md §3).
_GONE_400 = ("chat not found", "message thread not found", "topic_deleted", "topic deleted",
             "not enough rights", "have no rights", "need administrator rights",
             "chat_write_forbidden", "group chat was deactivated")
_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
"""Characters kept as they are in link targets; anything else is percent-encoded."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message as plain text plus how to style it (bold, or a link)."""

    text: str
    bold: bool = False
    href: str = ""

    @property
    def html(self) -> str:
        """The line in Telegram HTML, everything escaped."""
        body = html.escape(self.text)
        if self.href:
            href = quote(self.href, safe=_URL_SAFE)
            return f'<a href="{html.escape(href)}">{body}</a>'
        return f"<b>{body}</b>" if self.bold else body

    @property
    def visible(self) -> int:
        """Characters Telegram counts for this line after parsing."""
        return utf16_len(self.text)


def alert_lines(message: Message) -> list[Line]:
    """An alert or digest as lines: bold title, the details, then the token link."""
    arrow = f"{ARROW[message.direction]} " if message.direction and not message.is_digest else ""
    title = message.title + (":" if message.is_digest else "")
    lines = [Line(arrow + title, bold=True)]
    lines.extend(Line(text) for text in message.lines)
    if message.link:
        lines.append(Line(LINK_TEXT, href=message.link))
    return lines


def _hard_split(line: Line, limit: int) -> list[Line]:
    """A single line longer than a whole message, cut into pieces of the same style."""
    pieces: list[Line] = []
    current: list[str] = []
    size = 0
    for char in line.text:
        width = utf16_len(char)
        if size + width > limit:
            pieces.append(Line("".join(current), line.bold, line.href))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append(Line("".join(current), line.bold, line.href))
    return pieces


def html_chunks(lines: Iterable[Line], limit: int = MAX_TEXT) -> list[str]:
    """HTML texts of at most `limit` visible characters each, split between lines."""
    chunks: list[str] = []
    current: list[Line] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        while current and not current[-1].text.strip():
            current.pop()
        if current:
            chunks.append("\n".join(line.html for line in current))
        current, size = [], 0

    for line in lines:
        for piece in [line] if line.visible <= limit else _hard_split(line, limit):
            extra = piece.visible + (1 if current else 0)
            if current and size + extra > limit:
                flush()
                extra = piece.visible
            if not current and not piece.text.strip():
                continue  # Telegram trims a message; a part may not start blank
            current.append(piece)
            size += extra
    flush()
    return chunks


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after in seconds; PTB returns an int or, opted in, a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | timedelta = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def translate_error(exc: TelegramError, redact: Redactor | None = None) -> DeliveryError:
    """What a python-telegram-bot error means for the dispatcher."""
    redactor = redact or Redactor()
    detail = redactor(exc.message)
    if isinstance(exc, RetryAfter):
        seconds = retry_seconds(exc)
        return DeliveryError(f"Telegram asked to wait {seconds:g}s", rate_limited=True,
                             retry_after=seconds)
    if isinstance(exc, ChatMigrated):
        return DeliveryError(f"Telegram group became supergroup {exc.new_chat_id}",
                             rekey_to=str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        reason = detail.removeprefix("Forbidden: ")
        return DeliveryError(f"Telegram refused: {reason}", destination_gone=True)
    if isinstance(exc, InvalidToken | EndPointNotFound):
        # Nothing is wrong with the alert or the chat; hold every send until it is fixed.
        return DeliveryError("Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN)",
                             rate_limited=True, retry_after=INVALID_TOKEN_WAIT,
                             global_limit=True)
    if isinstance(exc, BadRequest):
        lowered = detail.lower()
        if any(marker in lowered for marker in _GONE_400):
            return DeliveryError(f"Telegram: {detail}", destination_gone=True)
        return DeliveryError(f"Telegram rejected the message: {detail}")
    if isinstance(exc, TimedOut):
        return DeliveryError("Telegram did not answer in time", retryable=True)
    if isinstance(exc, NetworkError):
        return DeliveryError(f"Telegram unreachable: {detail}", retryable=True)
    if isinstance(exc, Conflict):
        return DeliveryError(f"Telegram conflict: {detail}", retryable=True)
    return DeliveryError(f"Telegram error: {detail}", retryable=True)


def chat_ref(chat_id: str) -> int | str:
    """A stored chat id as the Bot API wants it (numeric id, or @channelname)."""
    text = chat_id.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def is_group(chat_id: str) -> bool:
    """Groups, supergroups and channels have negative ids or @usernames; users do not."""
    text = chat_id.strip()
    return text.startswith(("-", "@"))


def telegram_limits(destination: Destination) -> list[tuple[Limit, str]]:
    """Telegram's flood limits that a message to this destination counts against."""
    limits = [(TELEGRAM_OVERALL, OVERALL_BUCKET), (TELEGRAM_PER_CHAT, destination.chat_id)]
    if is_group(destination.chat_id):
        limits.append((TELEGRAM_PER_GROUP, destination.chat_id))
    return limits


def pacing_scopes(destination: Destination) -> tuple[str, str]:
    """Pause scopes the dispatcher uses for a destination (platform, destination)."""
    return destination.platform, str(destination)


def api_base_url(api_root: str) -> str:
    """PTB's base_url for a server root (PTB appends the token)."""
    return f"{api_root.rstrip('/')}/bot"


def api_file_url(api_root: str) -> str:
    """PTB's base_file_url for a server root."""
    return f"{api_root.rstrip('/')}/file/bot"


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
                sent = await self._bot.send_message(
                    chat_id=chat_ref(destination.chat_id),
                    text=text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    disable_notification=silent,
                    message_thread_id=int(thread) if thread else None,
                )
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
