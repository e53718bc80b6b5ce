"""The Notifier port: deliver one rendered message to one destination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from alertbot.domain.models import Destination, Message


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` sends per `period` seconds in one scope, and where the number comes from."""

    name: str
    count: int
    period: float
    source: str
    shared: bool = False
    """Drawn on by every destination of a platform: queued in order and spaced out."""
    margin: float | None = None
    """Overrides the pacer's safety margin for this limit."""


@dataclass(frozen=True, slots=True)
class Target:
    """A destination plus what only the notifier may see (its secret address)."""

    destination: Destination
    address: str | None = None

    def __repr__(self) -> str:
        # The address is a secret (webhook URLs embed tokens).
        return f"Target({self.destination}, address={'<redacted>' if self.address else None})"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The platform accepted the message."""

    message_id: str = ""


class DeliveryError(Exception):
    """A send failed; the flags tell the dispatcher what to do next.

    retryable: try again later (backoff, or `retry_after` seconds when given).
    rate_limited: the platform asked us to slow down; not a failure of the alert.
    destination_gone: the chat no longer accepts messages; pause its subscriptions.
    rekey_to: the chat moved to a new id (Telegram group -> supergroup); move and resend.
    credentials: the platform refused the bot's own token; nothing is wrong with the alert
    or the chat. Every send to the platform waits `retry_after`, and the alert is retried
    without using up its attempts, so fixing the token resumes delivery.
    Anything else is permanent and dead-letters the message.
    """

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None,
                 rate_limited: bool = False, destination_gone: bool = False,
                 rekey_to: str | None = None, global_limit: bool = False,
                 credentials: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable or rate_limited or credentials
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.destination_gone = destination_gone
        self.rekey_to = rekey_to
        self.global_limit = global_limit
        self.credentials = credentials

    def __repr__(self) -> str:
        flags = [name for name in ("retryable", "rate_limited", "destination_gone", "global_limit",
                                   "credentials")
                 if getattr(self, name)]
        return f"DeliveryError({self.reason!r}, {', '.join(flags) or 'permanent'})"


class Notifier(Protocol):
    """Sends messages to one platform.

    `send` either returns Delivered or raises DeliveryError; no library exception escapes.
    Repeating a send with the same `key` is safe where the platform supports idempotency
    (Discord nonce, webhook Idempotency-Key); elsewhere it may duplicate.
    """

    platform: str

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        """Rate limits that apply to a destination, each with its bucket key."""
        ...

    async def start(self) -> None:
        """Open connections before the first send (never raises; a failure shows at send)."""
        ...

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        """Deliver one message."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
