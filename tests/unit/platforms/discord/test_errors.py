"""Translation of errors that need no HTTP response into DeliveryError (pure).

HTTP statuses and Discord error codes are covered against the fake Discord in
tests/integration/platforms/discord/test_notifier.py.
"""

from __future__ import annotations

import aiohttp
import discord

from alertbot.platforms.discord.errors import (
    login_error,
    missing_permissions_reason,
    translate_error,
)


def test_translate_error_rate_limited_carries_the_wait() -> None:
    error = translate_error(discord.RateLimited(45.0))
    assert error.rate_limited and error.retry_after == 45.0


def test_translate_error_transport_errors_are_retryable_without_their_text() -> None:
    url = "https://discord.com/api/webhooks/1/secret-token"
    for exc in (TimeoutError(), aiohttp.ClientConnectionError(url), OSError(url)):
        error = translate_error(exc, webhook=True)
        assert error.retryable and "secret-token" not in error.reason


def test_login_error_rejected_token_is_named() -> None:
    assert login_error(discord.LoginFailure("401")).reason == \
        "Discord rejected DISCORD_BOT_TOKEN"
    assert login_error(TimeoutError()).retryable


def test_missing_permissions_reason_unknown_lists_everything_needed() -> None:
    reason = missing_permissions_reason([], thread=True)
    assert "View Channel, Send Messages in Threads, Embed Links in this thread" in reason
    assert missing_permissions_reason(["Embed Links"], thread=False).startswith(
        "the bot is missing Embed Links in this channel")


def test_login_error_rejected_token_holds_the_platform_without_spending_attempts() -> None:
    error = login_error(discord.LoginFailure("Improper token has been passed."))
    assert error.credentials and error.global_limit and error.retryable
    assert error.retry_after is not None and error.retry_after > 0
    assert "DISCORD_BOT_TOKEN" in error.reason


def test_login_error_connection_failure_is_a_plain_retry() -> None:
    error = login_error(aiohttp.ServerDisconnectedError())
    assert error.retryable and not error.credentials
