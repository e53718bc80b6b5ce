"""The Bot API side shared by the notifier and the command bot: server URLs, chat ids, sending.

Neither side is given PTB's AIORateLimiter: the dispatcher's Pacer already keeps sends under
Telegram's limits, and the limiter's own retries would resend a message the dispatcher is
about to retry too.
"""

from __future__ import annotations

import telegram
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode

from alertbot.domain.models import Destination

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def api_base_url(api_root: str) -> str:
    """PTB's base_url for a server root (PTB appends the token)."""
    return f"{api_root.rstrip('/')}/bot"


def api_file_url(api_root: str) -> str:
    """PTB's base_file_url for a server root."""
    return f"{api_root.rstrip('/')}/file/bot"


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
