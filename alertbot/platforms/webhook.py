"""Outbound webhooks: each alert POSTed as JSON, signed, with an Idempotency-Key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alertbot import __version__
from alertbot.domain.models import Change, Destination, Message
from alertbot.domain.retry_after import parse_retry_after
from alertbot.domain.scheduled_digest import summary_payload
from alertbot.domain.signing import SIGNATURE_HEADER, sign
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target

if TYPE_CHECKING:
    import aiohttp

WEBHOOK_PER_DESTINATION = Limit("webhook_destination", 10, 1.0,
                                "alertbot default: at most 10 requests per second per URL")
REQUEST_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 5.0
MAX_ERROR_BODY = 200


def change_payload(change: Change) -> dict[str, Any]:
    """JSON form of one change."""
    return {
        "change_id": change.change_id,
        "token_id": change.token.token_id,
        "symbol": change.token.symbol,
        "name": change.token.name,
        "kind": change.kind.value,
        "from": change.from_value,
        "to": change.to_value,
        "from_label": change.from_label,
        "to_label": change.to_label,
        "direction": change.direction.value,
        "cause": change.cause,
        "source_timestamp": change.source_ts.isoformat(),
        "detected_at": change.detected_at.isoformat(),
        "link": change.token.link,
    }


def message_payload(message: Message, key: str) -> dict[str, Any]:
    """JSON body of one delivery (a single alert or a digest)."""
    if message.scheduled:
        return {
            "id": key,
            "type": "scheduled_digest",
            "reason": "sent",
            "title": message.title,
            "text": message.text,
            "digest": summary_payload(message.changes[0]),
            "alerts": [],
        }
    return {
        "id": key,
        "type": "digest" if message.is_digest else "alert",
        "reason": "digest" if message.is_digest else "sent",
        "title": message.title,
        "text": message.text,
        "alerts": [change_payload(c) for c in message.changes],
    }


class WebhookNotifier:
    """POSTs alerts to operator-configured URLs (DESIGN §5)."""

    platform = "webhook"

    def __init__(self, session: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession], *,
                 secret: Callable[[], str | None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        # A callable gives the shared session on the first send: a bot without webhook
        # destinations never imports aiohttp for this notifier.
        self._session = session
        self._secret = secret
        self._clock = clock

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        """A politeness limit per URL."""
        return ((WEBHOOK_PER_DESTINATION, destination.chat_id),)

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        """POST one message; maps statuses to DeliveryError as DESIGN §5 says."""
        if not target.address:
            raise DeliveryError("webhook destination has no URL", destination_gone=True)
        body = json.dumps(message_payload(message, key), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": f"alertbot/{__version__}",
        }
        secret = self._secret()
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body, int(self._clock()))
        import aiohttp

        session = (self._session if isinstance(self._session, aiohttp.ClientSession)
                   else self._session())
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        try:
            async with session.post(target.address, data=body, headers=headers,
                                    timeout=timeout, allow_redirects=False) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                                datetime.fromtimestamp(self._clock(), UTC))
                text = (await response.text(errors="replace"))[:MAX_ERROR_BODY]
        except TimeoutError:
            raise DeliveryError("webhook timed out", retryable=True) from None
        except aiohttp.ClientError as exc:
            # The exception text can contain the URL (a secret): keep only its type.
            raise DeliveryError(f"webhook unreachable ({type(exc).__name__})",
                                retryable=True) from None
        if 200 <= status < 300:
            return Delivered(message_id=key)
        reason = f"webhook answered HTTP {status}"
        if status == 429:
            raise DeliveryError(reason, rate_limited=True, retry_after=retry_after)
        if status == 408 or status >= 500:
            raise DeliveryError(reason, retryable=True, retry_after=retry_after)
        if status == 410:
            raise DeliveryError(f"{reason} (gone)", destination_gone=True)
        detail = f": {' '.join(text.split())}" if text.strip() else ""
        raise DeliveryError(f"{reason}{detail}")

    async def start(self) -> None:
        """The shared session connects on demand."""

    async def close(self) -> None:
        """The shared session is closed by its owner."""

