"""Telegram webhook receiver: updates POSTed by Telegram on the path of TELEGRAM_WEBHOOK_URL.

Every request must carry the secret_token given to setWebhook in the
X-Telegram-Bot-Api-Secret-Token header (compared in constant time); anything else is refused
before the body is read. An accepted update is claimed in the store by its update_id, so a
copy Telegram redelivers (after a lost answer, or to another replica behind a load balancer)
is answered 200 and not handled again. The answer comes as soon as the update is queued for
the chat-command handlers: Telegram waits for it before sending the chat's next update, and
retries whatever gets no 2xx. So a command is handled at most once: a process that dies between
the claim and the handler loses that one command (the user sends it again), never runs it twice.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import SecretStr

from alertbot.http.ingest import IngestError, read_limited
from alertbot.ports.clock import Clock
from alertbot.ports.store import StoreError, Updates

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
PLATFORM = "telegram"
MAX_UPDATE_BODY = 256 * 1024
"""An update is a few kilobytes; a message with a long quoted reply stays far below this."""
MAX_UPDATE_ID = 2**63 - 1


class UpdateSink(Protocol):
    """Where accepted updates go: the chat-command handlers of the Telegram adapter."""

    def ready(self) -> bool:
        """Whether updates can be handled now (False: answer 503, Telegram retries)."""
        ...

    def parse(self, data: dict[str, Any]) -> object:
        """The update object of a decoded body; raises ValueError for one that is not."""
        ...

    async def deliver(self, update: object) -> None:
        """Queue a parsed update for handling (returns before it is handled)."""
        ...


class TelegramWebhook:
    """The POST handler of the webhook path."""

    def __init__(self, sink: UpdateSink, store: Updates, clock: Clock,
                 secret: Callable[[], SecretStr | None], *,
                 on_result: Callable[[str], None] = lambda result: None,
                 on_refusal: Callable[[str], None] = lambda reason: None,
                 read_timeout: float = 10.0) -> None:
        self._sink = sink
        self._store = store
        self._clock = clock
        self._secret = secret
        self._on_result = on_result
        self._on_refusal = on_refusal
        self._read_timeout = read_timeout
        self._logged: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        """Check the secret, read and claim the update, queue it; answer at once."""
        try:
            result = await self._accept(request)
        except IngestError as exc:
            return self._refuse(exc)
        self._on_result(result)
        body: dict[str, Any] = {"ok": True}
        if result == "duplicate":
            body["duplicate"] = True
        return web.json_response(body)

    async def _accept(self, request: web.Request) -> str:
        expected = self._secret()
        if expected is None:
            raise IngestError(404, "Telegram webhook mode is off", "off")
        sent = request.headers.get(SECRET_HEADER)
        if sent is None:
            raise IngestError(401, f"missing {SECRET_HEADER} header", "missing_secret")
        if not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
            raise IngestError(403, f"wrong {SECRET_HEADER}", "bad_secret")
        body = await read_limited(request, self._read_timeout, MAX_UPDATE_BODY)
        update_id, data = decode_update(body)
        try:
            update = self._sink.parse(data)
        except ValueError as exc:
            raise IngestError(400, f"not a Telegram update: {exc}", "malformed") from None
        if not self._sink.ready():
            raise IngestError(503, "the Telegram adapter is not started yet; retry later",
                              "not_ready", headers={"Retry-After": "5"})
        try:
            first = await self._store.claim_update(PLATFORM, update_id, self._clock.now())
        except StoreError as exc:
            raise IngestError(503, f"database unavailable ({exc}); retry later",
                              "store_error", headers={"Retry-After": "5"}) from None
        if not first:
            log.debug("Telegram update %d was already received; not handled again", update_id)
            return "duplicate"
        await self._sink.deliver(update)
        return "accepted"

    def _refuse(self, exc: IngestError) -> web.Response:
        self._on_result(exc.result)
        self._on_refusal(f"telegram_{exc.result}")
        if exc.result not in self._logged:
            # One line per kind of refusal: a scanner or a misconfigured proxy must not flood
            # the log. The periodic refusal summary counts the rest.
            self._logged.add(exc.result)
            log.warning("Telegram webhook request refused (%d): %s; further ones like it are "
                        "only counted", exc.status, exc.message)
        response = web.json_response({"ok": False, "error": exc.message}, status=exc.status,
                                     headers=exc.headers)
        if exc.status in (401, 403, 408, 413):
            response.force_close()  # the body may be unread or the client hostile
        return response


def decode_update(body: bytes) -> tuple[int, dict[str, Any]]:
    """(update_id, the decoded object) of a body, or IngestError 400 naming the problem."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise IngestError(400, "body is not valid JSON", "malformed") from None
    if not isinstance(data, dict):
        raise IngestError(400, "body is not a JSON object", "malformed")
    update_id = data.get("update_id")
    if (not isinstance(update_id, int) or isinstance(update_id, bool)
            or not 0 <= update_id <= MAX_UPDATE_ID):
        raise IngestError(400, "body has no update_id (a non-negative integer)", "malformed")
    return update_id, data
