"""python-telegram-bot errors as the project's DeliveryError: no telegram.error escapes."""

from __future__ import annotations

import warnings
from datetime import timedelta

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
from telegram.warnings import PTBDeprecationWarning

from alertbot.observability.logs import Redactor
from alertbot.ports.notifier import DeliveryError

INVALID_TOKEN_WAIT = 60.0
"""Seconds every Telegram send waits after the token was rejected (an operator must fix it)."""
UNAUTHORIZED_REASON = "Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN)"
"""Why sends and polling stop when the Bot API refuses the token (InvalidToken)."""

# 400 descriptions that mean the chat (or topic) will not take our messages until someone
# acts; observed wording, not a documented contract (reference/platforms.md §3).
_GONE_400 = ("chat not found", "message thread not found", "topic_deleted", "topic deleted",
             "not enough rights", "have no rights", "need administrator rights",
             "chat_write_forbidden", "group chat was deactivated")


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
        # Nothing is wrong with the alert or the chat, and Telegram did not ask us to slow
        # down: hold every send, never dead-letter, until the operator fixes the token.
        return DeliveryError(UNAUTHORIZED_REASON, credentials=True,
                             retry_after=INVALID_TOKEN_WAIT, global_limit=True)
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
