"""Translation of python-telegram-bot errors into DeliveryError (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from alertbot.observability.logs import Redactor
from alertbot.platforms.telegram.errors import retry_seconds, translate_error


def test_retry_seconds_reads_int_or_timedelta() -> None:
    assert retry_seconds(RetryAfter(7)) == 7.0
    assert retry_seconds(RetryAfter(timedelta(seconds=2.5))) == 2.5


TRANSLATIONS: list[tuple[TelegramError, dict[str, object]]] = [
    (RetryAfter(5), {"rate_limited": True, "retry_after": 5.0, "destination_gone": False}),
    (ChatMigrated(-100222), {"rekey_to": "-100222", "retryable": False}),
    (Forbidden("Forbidden: bot was blocked by the user"),
     {"destination_gone": True, "reason": "Telegram refused: bot was blocked by the user"}),
    (Forbidden("Forbidden: bot was kicked from the supergroup chat"),
     {"destination_gone": True}),
    (Forbidden("Forbidden: user is deactivated"), {"destination_gone": True}),
    (BadRequest("Bad Request: chat not found"),
     {"destination_gone": True, "reason": "Telegram: Chat not found"}),
    (BadRequest("Bad Request: message thread not found"), {"destination_gone": True}),
    (BadRequest("Bad Request: not enough rights to send text messages to the chat"),
     {"destination_gone": True}),
    (BadRequest("Bad Request: can't parse entities: Unsupported start tag"),
     {"retryable": False, "destination_gone": False, "rate_limited": False}),
    (BadRequest("Bad Request: message is too long"), {"retryable": False}),
    (TimedOut(), {"retryable": True, "destination_gone": False}),
    (NetworkError("Bad Gateway"), {"retryable": True}),
    (Conflict("Conflict: terminated by other getUpdates request"), {"retryable": True}),
    (InvalidToken("The token `123:ABC` was rejected by the server."),
     {"credentials": True, "rate_limited": False, "retryable": True, "global_limit": True,
      "retry_after": 60.0, "reason": "Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN)"}),
    (TelegramError("something new"), {"retryable": True}),
]


@pytest.mark.parametrize(("exc", "expected"), TRANSLATIONS)
def test_translate_error_maps_each_telegram_error(exc: TelegramError,
                                                  expected: dict[str, object]) -> None:
    error = translate_error(exc, Redactor(["123:ABC"]))
    for name, value in expected.items():
        assert getattr(error, name) == value, name
    assert "123:ABC" not in error.reason
