"""discord.py and transport errors as the project's DeliveryError: none escapes the adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import discord

from alertbot.domain.retry_after import parse_retry_after
from alertbot.platforms.discord.permissions import needed_permissions
from alertbot.ports.notifier import DeliveryError

SEND_ERRORS = (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError)
"""What a REST call (send, login) can raise; `translate_error` covers each."""

# Discord JSON error codes (topics/opcodes-and-status-codes.mdx).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_WEBHOOK = 10015
MISSING_ACCESS = 50001
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
_GONE_REASONS = {
    UNKNOWN_CHANNEL: "the channel was deleted (Discord 10003 Unknown Channel)",
    UNKNOWN_GUILD: "the bot is no longer in this server (Discord 10004 Unknown Guild)",
    MISSING_ACCESS: "the bot can no longer see this channel (Discord 50001 Missing Access): "
                    "it was removed from the server or View Channel was taken away",
    CANNOT_MESSAGE_USER: "Discord does not let the bot message this user (50007)",
}


def _http_detail(exc: discord.HTTPException) -> str:
    text = " ".join(str(exc.text or "").split())[:200]
    return f"HTTP {exc.status}, code {exc.code}" + (f": {text}" if text else "")


def _retry_after(exc: discord.HTTPException) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    now = datetime.now(UTC)
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        seconds = parse_retry_after(headers.get(name), now)
        if seconds is not None:
            return seconds
    return None


def missing_permissions_reason(missing: Sequence[str], thread: bool) -> str:
    """What moderators must grant after 50013 Missing Permissions."""
    if not missing:
        missing = needed_permissions(thread=thread)
        lead = "the bot lacks a permission here; it needs"
    else:
        lead = "the bot is missing"
    where = "this thread" if thread else "this channel"
    return (f"{lead} {', '.join(missing)} in {where} (Discord 50013 Missing Permissions); "
            f"a moderator must grant it, then run /subscribe again")


def translate_error(exc: BaseException, *, webhook: bool = False,
                    missing: Sequence[str] = (), thread: bool = False) -> DeliveryError:
    """Any discord.py or transport error as a DeliveryError (no library exception escapes)."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"Discord rate limit (retry in {exc.retry_after:.1f}s)",
                             rate_limited=True, retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        detail = _http_detail(exc)
        code = exc.code
        if exc.status == 429:
            scope = exc.response.headers.get("X-RateLimit-Scope", "") if exc.response else ""
            global_limit = bool(exc.response is not None and (
                exc.response.headers.get("X-RateLimit-Global") or scope == "global"))
            return DeliveryError(f"Discord rate limit ({detail})", rate_limited=True,
                                 retry_after=_retry_after(exc), global_limit=global_limit)
        if exc.status >= 500:
            return DeliveryError(f"Discord server error ({detail})", retryable=True)
        if webhook:
            if exc.status == 404 or code == UNKNOWN_WEBHOOK:
                return DeliveryError("the Discord webhook was deleted (Discord 10015 Unknown "
                                     "Webhook); create a new one and subscribe it again",
                                     destination_gone=True)
            if exc.status == 401 or code == INVALID_WEBHOOK_TOKEN:
                return DeliveryError("the Discord webhook token is no longer valid (Discord "
                                     "50027); create a new webhook and subscribe it again",
                                     destination_gone=True)
            if exc.status == 403:
                return DeliveryError(f"Discord refused the webhook ({detail})",
                                     destination_gone=True)
        if code == MISSING_PERMISSIONS:
            return DeliveryError(missing_permissions_reason(missing, thread),
                                 destination_gone=True)
        if code in _GONE_REASONS:
            return DeliveryError(_GONE_REASONS[code], destination_gone=True)
        if code == INVALID_FORM_BODY:
            return DeliveryError(f"Discord rejected the message ({detail})")
        return DeliveryError(f"Discord refused the message ({detail})")
    if isinstance(exc, TimeoutError):
        return DeliveryError("Discord did not answer in time", retryable=True)
    if isinstance(exc, aiohttp.ClientError | OSError):
        # The text of a transport error can contain a webhook URL: keep only its type.
        return DeliveryError(f"Discord unreachable ({type(exc).__name__})", retryable=True)
    return DeliveryError(f"unexpected Discord error ({type(exc).__name__})", retryable=True)


REJECTED_TOKEN_WAIT = 60.0
"""Seconds every Discord send waits while the bot token is rejected."""


def login_error(exc: BaseException) -> DeliveryError:
    """Why a send cannot go out while the bot fails to log in (always retryable)."""
    if isinstance(exc, discord.LoginFailure):
        # Nothing is wrong with the alert: hold every Discord send, never dead-letter, until
        # the operator fixes the token.
        return DeliveryError("Discord rejected DISCORD_BOT_TOKEN", credentials=True,
                             retry_after=REJECTED_TOKEN_WAIT, global_limit=True)
    return DeliveryError(f"the Discord bot could not log in ({type(exc).__name__})",
                         retryable=True)
