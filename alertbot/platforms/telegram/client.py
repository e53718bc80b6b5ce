"""The Bot API side shared by the notifier and the command bot: server URLs, chat ids, sending.

Neither side is given PTB's AIORateLimiter: the dispatcher's Pacer already keeps sends under
Telegram's limits, and the limiter's own retries would resend a message the dispatcher is
about to retry too.
"""

from __future__ import annotations

import functools
import ssl

import httpx
import telegram
from telegram import InlineKeyboardMarkup, InputFile, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.request import HTTPXRequest

from alertbot.domain.models import Destination

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def api_base_url(api_root: str) -> str:
    """PTB's base_url for a server root (PTB appends the token)."""
    return f"{api_root.rstrip('/')}/bot"


def api_file_url(api_root: str) -> str:
    """PTB's base_file_url for a server root."""
    return f"{api_root.rstrip('/')}/file/bot"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # httpx's own default for verify=True (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR),
    # built once: each client would otherwise parse the ~150 root certificates again.
    return httpx.create_ssl_context()


def bot_api_request(pool_size: int, *, read_timeout: float = 5.0, write_timeout: float = 5.0,
                    connect_timeout: float = 5.0, pool_timeout: float = 1.0) -> HTTPXRequest:
    """A PTB request object (PTB's default timeouts) sharing the process's one TLS context.

    The notifier and the command bot hold four such clients; each of its own context was
    about 0.8 MB.
    """
    return HTTPXRequest(connection_pool_size=pool_size, read_timeout=read_timeout,
                        write_timeout=write_timeout, connect_timeout=connect_timeout,
                        pool_timeout=pool_timeout, httpx_kwargs={"verify": _tls_context()})


def chat_ref(chat_id: str) -> int | str:
    """A stored chat id as the Bot API wants it (numeric id, or @channelname)."""
    text = chat_id.strip()
    return int(text) if text.lstrip("-").isdigit() else text


async def send_html(bot: telegram.Bot, destination: Destination, text: str, *,
                    silent: bool | None = None,
                    reply_parameters: ReplyParameters | None = None,
                    reply_markup: InlineKeyboardMarkup | None = None) -> telegram.Message:
    """sendMessage of one HTML text to a chat or forum topic, without link previews.

    Raises telegram.error.TelegramError (callers translate it), or ValueError for a
    non-numeric topic id.
    """
    thread = destination.thread_id.strip()
    return await bot.send_message(
        chat_id=chat_ref(destination.chat_id),
        text=text,
        parse_mode=ParseMode.HTML,
        link_preview_options=NO_PREVIEW,
        disable_notification=silent,
        reply_parameters=reply_parameters,
        message_thread_id=int(thread) if thread else None,
        reply_markup=reply_markup,
    )


async def send_photo_html(bot: telegram.Bot, destination: Destination, png: bytes,
                          filename: str, caption: str, *, silent: bool | None = None,
                          reply_parameters: ReplyParameters | None = None,
                          reply_markup: InlineKeyboardMarkup | None = None) -> telegram.Message:
    """sendPhoto of a PNG (multipart upload) with an HTML caption of at most 1024 characters.

    Raises telegram.error.TelegramError (callers translate it), or ValueError for a
    non-numeric topic id.
    """
    thread = destination.thread_id.strip()
    return await bot.send_photo(
        chat_id=chat_ref(destination.chat_id),
        photo=InputFile(png, filename=filename, attach=True),
        caption=caption or None,
        parse_mode=ParseMode.HTML,
        disable_notification=silent,
        reply_parameters=reply_parameters,
        message_thread_id=int(thread) if thread else None,
        reply_markup=reply_markup,
    )
